"""Stores batche keeps results in."""

from __future__ import annotations

from ._memory import LRUStore, MemoryStore

__all__ = ["LRUStore", "MemoryStore"]
