"""Vendor adapters: each a frozen ``VendorSpec`` (two pure functions and some data).

The shared mechanics (HTTP, status classification, fetching and checking output, polling jobs)
live once in ``backend``, ``http_client``, ``classify``, ``image_check`` and ``polling``; each
vendor's documented examples in ``contracts``. Adding a vendor is adding one small module, which
``registry`` finds.
"""
