"""Shared state behind one interface: in memory (the embedded default) or in Redis (replicas)."""

from core.state.base import StateStore

__all__ = ["StateStore"]
