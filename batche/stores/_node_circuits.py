"""A circuit breaker per node of a Redis Cluster, and what the store says of them: a node
that fails costs its own keys, for ``retry_after`` seconds, and nobody else's."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

from ._base import StoreError, log
from ._circuit import Circuit

__all__ = ["NodeCircuits"]


class NodeCircuits:
    """The circuits of a store's nodes, by node name (``"host:port"``), made on first use.

    A failure opens a node's circuit and is logged once, when it opens (or raised, with
    ``on_store_error="raise"``); the call that closes it logs that the node is back.
    """

    def __init__(self, store: Any) -> None:
        self._store = store  # where, retry_after, on_store_error, _scrub
        self._circuits: dict[str, Circuit] = {}
        self._lock = threading.Lock()  # guards _circuits

    def __getitem__(self, name: str) -> Circuit:
        with self._lock:
            circuit = self._circuits.get(name)
            if circuit is None:
                circuit = self._circuits[name] = Circuit(self._store.retry_after)
            return circuit

    def any_open(self, names: Sequence[str]) -> bool:
        """Whether the circuit of any of ``names`` is open."""
        with self._lock:
            found = [self._circuits.get(name) for name in names]
        return any(c is not None and c.reopens is not None for c in found)

    def answering(self, nodes: Sequence[Any]) -> Any:
        """The first of ``nodes`` whose circuit is closed (else the first)."""
        for node in nodes:
            if not self.any_open([node.name]):
                return node
        return nodes[0]

    def failed(self, action: str, name: str, exc: BaseException, ticket: int) -> None:
        store = self._store
        error = store._scrub(str(exc) or type(exc).__name__)
        opened = self[name].failed(ticket, error)
        if store.on_store_error == "raise":
            raise StoreError(f"{store.where}: could not {action} on node {name}: {error}")
        if opened:
            log.warning(
                "%s: could not %s on node %s (%s); computing its keys without it until it "
                "is back, tried again every %g s",
                store.where, action, name, error, store.retry_after,
            )  # fmt: skip

    def succeeded(self, name: str, ticket: int) -> None:
        if self[name].succeeded(ticket):
            log.warning("%s: node %s is back; caching its keys again", self._store.where, name)

    def skipped(self, action: str, name: str) -> StoreError:
        """The error of a call that would use a skipped node, when asked to raise."""
        circuit = self[name]
        wait = max(0.0, (circuit.reopens or 0.0) - time.monotonic())
        return StoreError(
            f"{self._store.where}: could not {action}: node {name} failed ({circuit.error}); "
            f"it is tried again in {wait:.1f} s"
        )
