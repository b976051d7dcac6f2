"""The nodes of a Redis Cluster as a RedisStore uses them: redis-py's cluster clients (one
shared by threads, one per event loop), a request grouped by node and sent through each
node's circuit breaker, and the slot map with when to read it again."""

from __future__ import annotations

import asyncio
import inspect
import threading
import time
from collections.abc import Awaitable, Generator, Sequence
from typing import Any, TypeVar, Union
from urllib.parse import urlsplit, urlunsplit

import redis
from redis.asyncio.cluster import ClusterNode as AsyncClusterNode
from redis.asyncio.cluster import NodesManager as AsyncNodesManager
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.cluster import ClusterNode, NodesManager, RedisCluster
from redis.exceptions import AskError, ResponseError, TryAgainError
from redis.retry import Retry

from ._circuit import PROBE, SKIP, USE
from ._node_circuits import NodeCircuits
from ._redis_fanout import Late, Outcome, afan_out, fan_out
from ._redis_io import ERRORS, BoundedPool, LoopClients, apump, bounded, pump

__all__ = ["MISSING", "PRIMARIES", "NodeFailed", "Nodes", "Request"]

T = TypeVar("T")
#: where a command goes: the node serving a slot, or a node by name (``"host:port"``)
Target = Union[int, str]
#: what a step asks: commands with their targets (or ``PRIMARIES``: the primaries' names)
Request = Sequence[tuple[Target, tuple[Any, ...]]]

#: the reply of a command whose node was skipped, failed or no longer serves its slot
MISSING: Any = object()
#: a request for the names of the primaries
PRIMARIES: Any = object()


class NodeFailed(redis.RedisError):
    """An explicit operation (clear, delete, stats) met a node that failed or a slot that
    moved."""


def _accepted(initialize: Any) -> frozenset[str]:
    return frozenset(inspect.signature(initialize).parameters)


# What this redis-py's slot-map refresh accepts (newer ones take the node to ask last).
_SYNC_REFRESH = _accepted(NodesManager.initialize)
_ASYNC_REFRESH = _accepted(AsyncNodesManager.initialize)


def _refresh_options(accepted: frozenset[str], failed: str | None) -> dict[str, Any]:
    options: dict[str, Any] = {}
    if "last_failed_node_name" in accepted:  # the failing node is asked last
        options["last_failed_node_name"] = failed
    if "disconnect_startup_nodes_pools" in accepted:  # keep the connections of the others
        options["disconnect_startup_nodes_pools"] = False
    return options


class Nodes:
    """A store's view of a cluster: clients, slot map and a circuit breaker per node.

    A step's commands are grouped by the node that serves their slot and sent as one
    pipeline per node, every node at once, within one deadline (``_redis_fanout``). A
    node that fails opens its own circuit: for ``retry_after`` seconds its commands are
    not sent (their replies are ``MISSING``: reads find nothing, writes are dropped), then
    one call probes it, after the nodes in use have answered. Explicit operations
    (``strict``) ignore the circuits and raise ``NodeFailed`` instead. A failure or a
    redirection marks the slot map stale: it is refreshed after the step (never before:
    the nodes that answer are served first), at most once a second while a node is down,
    so that a replica promoted in a failover is found and used.
    """

    def __init__(self, store: Any, url: str, address_remap: Any) -> None:
        self._store = store  # where, timeout, retry_after, on_store_error, _scrub
        self._url = url
        self._options = {
            "require_full_coverage": False,  # serve the slots that are served
            "address_remap": address_remap,
            "socket_timeout": store.timeout,
            "socket_connect_timeout": store.timeout,
        }
        self._sync: RedisCluster | None = None
        #: redis-py's asyncio cluster clients, one per event loop
        self.loops: LoopClients[AsyncRedisCluster] = LoopClients(self._make_async)
        #: a circuit breaker per node
        self.circuits = NodeCircuits(store)
        # Guards _sync and the refresh state (_stale, _refresh_after).
        self._lock = threading.Lock()
        self._stale = False
        self._refresh_after = 0.0
        self._last_failed: str | None = None
        #: the nodes of the last slot map read, (host, port): where a new loop's client
        #: starts, so that it finds the cluster when the node of the URL is down
        self._known: list[tuple[str, int]] = []

    # -- clients ---------------------------------------------------------------------------

    def client(self) -> Any:
        """The sync ``RedisCluster``, made (its slot map read) within the running deadline."""
        cluster: Any = self._sync
        if cluster is None:
            # made outside the lock (it connects); a thread that loses the race drops its own
            url, known = starts(self._url, self._known, self.circuits)
            made: RedisCluster | None = RedisCluster.from_url(
                url,
                startup_nodes=[ClusterNode(host, port) for host, port in known] or None,  # type: ignore[no-untyped-call]
                retry=Retry(NoBackoff(), 0),  # our deadline, never redis-py's retries
                connection_pool_class=BoundedPool,  # every node's sockets keep it
                **self._options,
            )
            with self._lock:
                if self._sync is None:
                    self._sync, made = made, None
                cluster = self._sync
            if made is not None:
                _close(made)
            self._remember(cluster)
        return cluster

    def _make_async(self) -> AsyncRedisCluster:
        # the nodes known to answer first, those whose circuit is open next (redis-py adds
        # the URL's node last): a loop made after that node died still finds the cluster
        url, known = starts(self._url, self._known, self.circuits)
        return AsyncRedisCluster.from_url(
            url,
            startup_nodes=[AsyncClusterNode(host, port) for host, port in known] or None,
            retry=AsyncRetry(NoBackoff(), 0),
            **self._options,
        )

    async def aclient(self, ends: float) -> Any:
        """The running loop's cluster client, its slot map read by ``ends`` if need be."""
        cluster = self.loops.get()
        await _until(ends, cluster.initialize())
        self._remember(cluster)
        return cluster

    def _remember(self, cluster: Any) -> None:
        """Keep the nodes of ``cluster``'s slot map for the clients made after it."""
        nodes = [(node.host, node.port) for node in cluster.get_nodes()]
        if nodes:
            self._known = nodes  # one assignment: readers see the old list or the new

    def close(self) -> None:
        """Close the sync client (the next use makes another) and forget dead loops'."""
        with self._lock:
            cluster, self._sync = self._sync, None
        if cluster is not None:
            _close(cluster)
        self.loops.drop_closed()

    # -- running steps ---------------------------------------------------------------------

    def run(self, action: str, steps: Generator[Any, Any, T], *, strict: bool = False) -> T:
        """``steps`` on the cluster: each request within the store's timeout, its replies
        sent back in; what ``steps`` returns."""
        timeout = self._store.timeout
        return pump(steps, lambda request: bounded(timeout, self._send, action, request, strict))

    async def arun(
        self,
        action: str,
        steps: Generator[Any, Any, T],
        *,
        strict: bool = False,
        ends: float | None = None,
    ) -> T:
        """``run`` on the running loop's client (``ends``: the first request's deadline,
        when the operation began before it)."""

        async def answer(request: Any) -> Any:
            nonlocal ends
            deadline = time.monotonic() + self._store.timeout if ends is None else ends
            ends = None  # the next requests have a deadline of their own
            return await self._asend(action, request, strict, deadline)

        return await apump(steps, answer)

    def _send(self, action: str, request: Any, strict: bool) -> Any:
        cluster = self.client()
        if request is PRIMARIES:
            return [node.name for node in cluster.get_primaries()]
        plan = _Plan(self, cluster.nodes_manager, request, action, strict)
        try:
            for phase in (plan.used, plan.probed):  # probes last: they may hang
                if phase:
                    work = [(cluster.get_redis_connection(node), cmds) for node, cmds in phase]
                    plan.settle(phase, fan_out(work))
        finally:
            plan.leave()
        if self._due():
            self._refresh(cluster.nodes_manager)
        return plan.finish()

    async def _asend(self, action: str, request: Any, strict: bool, ends: float) -> Any:
        cluster = await self.aclient(ends)
        if request is PRIMARIES:
            return [node.name for node in cluster.get_primaries()]
        plan = _Plan(self, cluster.nodes_manager, request, action, strict)
        try:
            phase = plan.used + plan.probed  # all at once: none holds up another
            plan.settle(phase, await afan_out(phase, ends))
        finally:
            plan.leave()
        if self._due():
            await self._arefresh(cluster.nodes_manager, ends)
        return plan.finish()

    # -- the slot map ------------------------------------------------------------------------

    def _due(self) -> bool:
        """Whether to refresh the slot map now (one caller at a time claims it)."""
        if not self._stale or time.monotonic() < self._refresh_after:
            return False
        with self._lock:
            now = time.monotonic()
            if now < self._refresh_after:
                return False
            self._refresh_after = now + min(1.0, self._store.retry_after)
            return True

    def _refresh(self, manager: Any) -> None:
        try:  # within what is left of the deadline
            manager.initialize(**_refresh_options(_SYNC_REFRESH, self._last_failed))
        except ERRORS:  # the map in hand serves until the next try
            return
        self._known = [(node.host, node.port) for node in manager.nodes_cache.values()]
        self._still_stale(manager)

    async def _arefresh(self, manager: Any, ends: float) -> None:
        try:
            await _until(
                ends, manager.initialize(**_refresh_options(_ASYNC_REFRESH, self._last_failed))
            )
        except ERRORS:
            return
        self._known = [(node.host, node.port) for node in manager.nodes_cache.values()]
        self._still_stale(manager)

    def _still_stale(self, manager: Any) -> None:
        """After a refresh: stale while a node that serves slots has its circuit open."""
        names = [nodes[0].name for nodes in list(manager.slots_cache.values()) if nodes]
        self._stale = self.circuits.any_open(list(set(names)))

    def stale(self, failed: str | None = None) -> None:
        """Refresh the slot map after this step (``failed``: the node to ask last)."""
        self._stale = True
        if failed is not None:
            self._last_failed = failed

    @property
    def timeout(self) -> float:
        return float(self._store.timeout)

    @property
    def raises(self) -> bool:
        """Whether a node that fails, or is skipped, raises ``StoreError`` in a call."""
        return bool(self._store.on_store_error == "raise")


class _Plan:
    """One request grouped by node, the circuit's ticket of each node, and the replies."""

    def __init__(
        self, nodes: Nodes, manager: Any, request: Request, action: str, strict: bool
    ) -> None:
        self.nodes, self.action, self.strict = nodes, action, strict
        self.replies: list[Any] = [MISSING] * len(request)
        groups: dict[str, tuple[Any, list[int], list[tuple[Any, ...]]]] = {}
        slots, named = manager.slots_cache, manager.nodes_cache
        for index, (target, command) in enumerate(request):
            serving = slots.get(target) if isinstance(target, int) else [named.get(target)]
            node = serving[0] if serving else None
            if node is None:  # a slot no node serves (yet): as if its node failed
                if strict:
                    raise NodeFailed(f"no node serves {target!r} in the slot map in hand")
                nodes.stale()
                continue
            group = groups.get(node.name)
            if group is None:
                group = groups[node.name] = (node, [], [])
            group[1].append(index)
            group[2].append(command)
        self.used: list[tuple[Any, list[tuple[Any, ...]]]] = []
        self.probed: list[tuple[Any, list[tuple[Any, ...]]]] = []
        self._indexes: dict[str, list[int]] = {}
        self._tickets: dict[str, int] = {}  # the nodes whose outcome is still to record
        for name, (node, indexes, commands) in groups.items():
            ticket = USE if strict else nodes.circuits[name].enter()
            if ticket == SKIP:
                if nodes.raises:
                    raise nodes.circuits.skipped(action, name)
                continue
            self._tickets[name] = ticket
            self._indexes[name] = indexes
            (self.probed if ticket == PROBE else self.used).append((node, commands))

    def settle(self, phase: Sequence[tuple[Any, Any]], outcomes: Sequence[Outcome]) -> None:
        """Record each node's outcome: its replies in place, its circuit told."""
        for (node, _), outcome in zip(phase, outcomes):
            name = node.name
            ticket = self._tickets.pop(name)
            error = self._place(name, outcome)
            if self.strict:
                if error is not None:
                    self.nodes.stale(name)
                    raise NodeFailed(f"node {name}: {error}") from error
            elif isinstance(outcome, Late):  # never asked: not its fault
                self.nodes.circuits[name].leave(ticket)
            elif error is not None:
                self.nodes.stale(name)
                self.nodes.circuits.failed(self.action, name, error, ticket)
            else:
                self.nodes.circuits.succeeded(name, ticket)

    def _place(self, name: str, outcome: Outcome) -> BaseException | None:
        """Put ``outcome``'s replies in place; the error that fails the node, if any."""
        if isinstance(outcome, BaseException):
            return outcome
        error: BaseException | None = None
        for index, reply in zip(self._indexes[name], outcome):
            if isinstance(reply, (AskError, TryAgainError)):  # MOVED, ASK: the map is old
                self.nodes.stale()
                if self.strict and error is None:
                    error = reply
            elif isinstance(reply, ResponseError):  # CLUSTERDOWN, OOM...: the node fails
                error = error or reply
            else:
                self.replies[index] = reply
        return error

    def leave(self) -> None:
        """The nodes never settled (an error was raised first) leave their circuits."""
        for name, ticket in self._tickets.items():
            self.nodes.circuits[name].leave(ticket)
        self._tickets.clear()

    def finish(self) -> list[Any]:
        return self.replies


def _close(cluster: Any) -> None:
    """Close a sync cluster client's connections: every node's pool (redis-py's ``close``
    leaves the pools it was given open, until the garbage collector finds them)."""
    manager = cluster.nodes_manager
    nodes = [*manager.nodes_cache.values(), *manager.startup_nodes.values()]
    cluster.close()
    for node in nodes:
        if node.redis_connection is not None:
            node.redis_connection.connection_pool.disconnect()


def starts(
    url: str, known: list[tuple[str, int]], circuits: NodeCircuits
) -> tuple[str, list[tuple[str, int]]]:
    """Where a new client starts: ``url`` at the known node most likely to answer (redis-py
    asks the URL's node for the command table), and the ``known`` nodes, those whose
    circuit is closed first."""
    ordered = sorted(known, key=lambda n: circuits.any_open([f"{n[0]}:{n[1]}"]))
    if not ordered:
        return url, []
    return at_node(url, *ordered[0]), ordered


def at_node(url: str, host: str, port: int) -> str:
    """``url`` with its host and port replaced (its scheme, user, password, query kept)."""
    parts = urlsplit(url)
    user = parts.netloc.rpartition("@")[0]
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return urlunsplit(parts._replace(netloc=f"{user}@{where}" if user else where))


async def _until(ends: float, awaitable: Awaitable[T]) -> T:
    """``await awaitable``, cancelled at the monotonic time ``ends`` (``TimeoutError``)."""
    try:
        return await asyncio.wait_for(awaitable, max(0.0, ends - time.monotonic()))
    except asyncio.TimeoutError:
        raise asyncio.TimeoutError("no answer before the deadline") from None
