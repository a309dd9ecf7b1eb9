"""Ordering routes, retrying one, failing over to the next, all within one deadline."""
