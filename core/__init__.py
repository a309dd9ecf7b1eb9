"""What every layer shares: the request model, the error tree, the deadline and the state stores.

``pricing/``, ``backends/`` and ``proxy/`` import from here; nothing here imports from them.
"""
