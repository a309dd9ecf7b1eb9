"""``boltgate generate``: a client of a running gateway that turns a file of prompts into images.

``command`` parses the flags, ``prompts`` reads and checks the prompts (``names`` the file names),
``run`` sends them with bounded concurrency through ``client`` (retries per ``retry``), ``output``
writes images atomically and keeps the manifest, ``summary`` adds it up and picks the exit code.
It imports nothing of the server: it talks to it over HTTP like any other client.
"""
