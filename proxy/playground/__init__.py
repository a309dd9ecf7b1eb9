"""The playground: a page at ``/`` to try the gateway in a browser (no build step, no CDN).

The page is plain HTML, CSS and JavaScript modules shipped as package data in ``static/`` and
served by ``page.py``; everything it shows comes from the public API the page calls with the
visitor's key (``/v1/images/generations``, ``/v1/backends`` or ``/readyz``).
"""
