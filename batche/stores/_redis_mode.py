"""Whether a RedisStore talks to one server or to a Redis Cluster: as given (``cluster=``),
or found on first use by asking the server (``INFO cluster``)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from redis.connection import parse_url

from .._errors import BatchConfigError
from ._base import RemoteStore
from ._redis_cluster import OnCluster
from ._redis_io import LoopClients, acluster_enabled, bounded, cluster_enabled, until

if TYPE_CHECKING:
    import redis

__all__ = ["ClusterMode"]


class ClusterMode(RemoteStore):
    """A store that may be on a cluster: ``_clustered()`` is its ``OnCluster`` there, None
    on one server. Not known until the server answers, unless ``cluster=`` said it."""

    client: redis.Redis
    timeout: float
    prefix: str
    lease_prefix: str
    _loops: LoopClients[Any]

    def _init_mode(self, url: str, cluster: Any, address_remap: Any) -> None:
        if cluster not in (None, True, False):
            raise BatchConfigError(
                f"{self.where}: cluster must be True, False or None (found by asking the "
                f"server), got {cluster!r}"
            )
        if address_remap is not None and not callable(address_remap):
            raise BatchConfigError(
                f"{self.where}: address_remap must be a function of (host, port) or None, "
                f"got {address_remap!r}"
            )
        if address_remap is not None and cluster is False:
            raise BatchConfigError(
                f"{self.where}: address_remap maps the addresses of a cluster's nodes; "
                "it needs cluster=True or None"
            )
        self._url = url
        self._remap = address_remap
        self._cluster: bool | None = cluster  # None: not known yet
        self._on_cluster: OnCluster | None = None
        self._mode_lock = threading.Lock()  # guards _cluster and _on_cluster
        if cluster:
            self._settle(True, "cluster=True")

    def _on(self) -> OnCluster | None:
        """The cluster's operations if the store is known to be on one (no I/O)."""
        return self._on_cluster if self._cluster else None

    def _clustered(self) -> OnCluster | None:
        """``_on()``, asking the server first if need be (within the running deadline)."""
        if self._cluster is None:
            return self._settle(cluster_enabled(self.client), "INFO cluster")
        return self._on()

    async def _aclustered(self, ends: float) -> OnCluster | None:
        """``_clustered`` on the running loop's client, by the monotonic time ``ends``."""
        if self._cluster is None:
            enabled = await until(ends, acluster_enabled(self._loops.get()))
            return self._settle(enabled, "INFO cluster")
        return self._on()

    def _settle(self, enabled: bool, how: str) -> OnCluster | None:
        if enabled:
            self._check_cluster(how)
        with self._mode_lock:
            if enabled and self._on_cluster is None:
                self._on_cluster = OnCluster(self, self._url, self._remap)  # no I/O
            self._cluster = enabled
        return self._on()

    def _check_cluster(self, how: str) -> None:
        """What a cluster cannot do: a database other than 0, a Unix socket, a prefix with a
        hash tag of its own (it would put every entry in one slot)."""
        try:
            options = parse_url(self._url)  # type: ignore[no-untyped-call]
        except ValueError:  # refused with its own words when the client is made
            return
        where = f"{self.where} (a Redis Cluster, by {how})"
        if "path" in options:
            raise BatchConfigError(
                f"{where}: url must be redis:// or rediss://; a cluster is not reached "
                "through a Unix socket"
            )
        database = int(options.get("db", 0) or 0)
        if database != 0:
            raise BatchConfigError(
                f"{where}: url names database {database}, but a cluster has database 0 only; "
                "drop the database from the url (or make it /0)"
            )
        if "{" in self.prefix or "}" in self.prefix:
            raise BatchConfigError(
                f"{where}: prefix must not hold '{{' or '}}' (a hash tag of its own would put "
                f"every entry in one slot), got {self.prefix!r}"
            )

    def _full(self, keys: Sequence[str]) -> list[str]:
        """The Redis keys of entries."""
        on = self._on()
        if on is not None:
            return on.full(keys)
        prefix = self.prefix
        return [prefix + key for key in keys]

    def _leases(self, keys: Sequence[str]) -> list[str]:
        """The Redis keys of leases."""
        on = self._on()
        if on is not None:
            return on.leases(keys)
        prefix = self.lease_prefix
        return [prefix + key for key in keys]

    def _ping(self) -> None:
        """Reach the server, or the cluster (its slot map read), now; raise what fails."""
        bounded(self.timeout, self._reach)

    def _reach(self) -> None:
        on = self._clustered()
        if on is None:
            self.client.ping()
        else:
            on.nodes.client()
