"""Vendor adapters: each a frozen ``VendorSpec`` (two pure functions and some data).

The shared mechanics (HTTP, status classification, fetching output URLs, polling jobs) live once
in ``transport``, ``classify`` and ``polling``; adding a vendor is adding one small module.
"""
