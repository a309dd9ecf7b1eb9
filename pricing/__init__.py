"""Pricing: the vendor price catalog, client quotes, the credit ledger and client API keys.

Pure parts (``config``, ``money``, ``vendor_price``, ``quote``, ``catalog``,
``report``) need no I/O beyond reading the catalog file; ``ledger``, ``idempotency`` and
``keys`` keep their state behind ``core.state.base.StateStore``.
"""
