"""A real Redis Cluster for the tests: redis-server processes in cluster mode on free loopback
ports, joined by ``redis-cli --cluster create``, stopped, killed or restarted at will."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ._proxy import Proxy

#: a node that stops answering its peers is marked failing after this (ms); the tests
#: promote replicas themselves (CLUSTER FAILOVER TAKEOVER), so this only bounds how long
#: the other nodes take to agree on a failure
NODE_TIMEOUT_MS = 5000
#: how long a cluster may take to form, to agree, or to notice a change (seconds)
SETTLE = 60.0


def binary(name: str) -> str:
    """The path of ``name``; under CI a missing binary fails the test, elsewhere skips it."""
    found = shutil.which(name)
    if found is None:
        import pytest  # the benchmarks use this module too, without pytest

        message = f"{name} is not installed (.ci/run installs it with apt-get)"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(message)  # under CI a missing server is a failure, never a skip
        pytest.skip(message)
    return found


def free_ports(count: int) -> list[int]:
    """``count`` distinct ports where nothing listens now (held open together while picked)."""
    probes = []
    try:
        for _ in range(count):
            probe = socket.socket()
            probe.bind(("127.0.0.1", 0))
            probes.append(probe)
        return [probe.getsockname()[1] for probe in probes]
    finally:
        for probe in probes:
            probe.close()


def cluster_client(url: str) -> Any:
    """A redis-py cluster client of the cluster a node's URL names, whose ``close()``
    closes its connections (made from a URL, its node pools would be left open)."""
    from urllib.parse import urlsplit

    import redis

    parts = urlsplit(url)
    return redis.RedisCluster(host=parts.hostname, port=parts.port)


def eventually(check: Callable[[], Any], what: str, timeout: float = SETTLE) -> Any:
    """Poll ``check`` until it returns something true, for ``timeout`` seconds at most: the
    other processes' state has no event to wait on, so it is polled (every 50 ms)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = check()
        except Exception as exc:  # noqa: BLE001 - a node restarting refuses for a while
            value, error = None, exc
        else:
            error = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:g} s (last error: {error})")
        time.sleep(0.05)


class Node:
    """One redis-server in cluster mode; its cluster state kept in ``directory``."""

    def __init__(self, directory: Path, port: int, bus: int) -> None:
        self.directory = directory
        self.port = port
        self.bus = bus
        self.process: subprocess.Popen[str] | None = None

    @property
    def address(self) -> tuple[str, int]:
        return ("127.0.0.1", self.port)

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                binary("redis-server"), "--port", str(self.port), "--bind", "127.0.0.1",
                "--cluster-enabled", "yes", "--cluster-port", str(self.bus),
                "--cluster-config-file", f"nodes-{self.port}.conf",
                "--cluster-node-timeout", str(NODE_TIMEOUT_MS),
                "--cluster-require-full-coverage", "no",
                "--repl-diskless-sync", "yes", "--repl-diskless-sync-delay", "0",
                "--save", "", "--appendonly", "no", "--dir", str(self.directory),
            ],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        assert self.process.stdout is not None
        for line in self.process.stdout:  # ready when it says so
            if "Ready to accept connections" in line:
                return
        raise RuntimeError(f"redis-server on {self.port} exited with {self.process.wait()}")

    def send(self, number: int) -> None:
        """Send a signal (SIGSTOP: it hangs; SIGCONT: it goes on)."""
        assert self.process is not None
        self.process.send_signal(number)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Stop the server (SIGKILL: killed, as a crash), and wait until it is gone."""
        if self.process is None:
            return
        self.process.send_signal(signal.SIGCONT)  # a frozen server cannot act on SIGTERM
        self.process.send_signal(sig)
        self.process.wait(timeout=30)
        if self.process.stdout is not None:
            self.process.stdout.close()
        self.process = None

    def client(self) -> Any:
        import redis

        return redis.Redis(*self.address, socket_timeout=5, socket_connect_timeout=5)

    def info(self, section: str) -> dict[str, Any]:
        client = self.client()
        try:
            return dict(client.info(section))
        finally:
            client.close()

    def command(self, *args: Any) -> Any:
        client = self.client()
        try:
            return client.execute_command(*args)
        finally:
            client.close()


class Cluster:
    """A Redis Cluster of ``primaries`` primaries, each with ``replicas`` replicas, on free
    loopback ports; no data kept on disk, only the cluster's configuration (so that a
    node restarted on its port rejoins with its slots)."""

    def __init__(self, directory: Path, primaries: int = 3, replicas: int = 0) -> None:
        count = primaries * (1 + replicas)
        ports = free_ports(2 * count)
        self.replicas = replicas
        self.nodes = [Node(directory, ports[i], ports[count + i]) for i in range(count)]

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.nodes[0].port}/0"

    def node(self, port: int) -> Node:
        return next(node for node in self.nodes if node.port == port)

    def start(self) -> Cluster:
        for node in self.nodes:
            node.start()
        subprocess.run(
            [binary("redis-cli"), "--cluster", "create",
             *[f"127.0.0.1:{node.port}" for node in self.nodes],
             "--cluster-replicas", str(self.replicas), "--cluster-yes"],
            capture_output=True, text=True, timeout=SETTLE, check=True,
        )  # fmt: skip
        self.wait_ok()
        return self

    def alive(self) -> list[Node]:
        return [node for node in self.nodes if node.process is not None]

    def wait_ok(self, timeout: float = SETTLE) -> None:
        """Until every running node says ``cluster_state:ok``, every one agrees on which
        node serves each slot, and every replica's link to its primary is up."""

        def settled() -> bool:
            nodes = self.alive()
            states = {n.command("CLUSTER", "INFO").split(b"cluster_state:")[1][:2] for n in nodes}
            views = {self._slot_owners(n) for n in nodes}
            linked = all(
                n.info("replication").get("master_link_status", "up") == "up" for n in nodes
            )
            return states == {b"ok"} and len(views) == 1 and linked

        eventually(settled, "the cluster settles", timeout)

    @staticmethod
    def _slot_owners(node: Node) -> tuple[tuple[int, int, int], ...]:
        return tuple(sorted((int(s[0]), int(s[1]), int(s[2][1])) for s in node.command(
            "CLUSTER", "SLOTS"
        )))  # fmt: skip

    def primaries(self) -> list[Node]:
        """The running nodes that serve slots, as a running node sees it."""
        owners = {port for _, _, port in self._slot_owners(self.alive()[0])}
        return [node for node in self.alive() if node.port in owners]

    def replica_of(self, primary: Node) -> Node:
        """A running replica of ``primary``."""
        for node in self.alive():
            info = node.info("replication")
            if info.get("role") == "slave" and int(info.get("master_port", 0)) == primary.port:
                return node
        raise AssertionError(f"no replica of {primary.port}")

    def owner(self, key: bytes) -> Node:
        """The primary that serves ``key``'s slot, as a running node sees it."""
        return self.owners([key])[0]

    def owners(self, keys: list[bytes], seen_by: Node | None = None) -> list[Node]:
        """The primary that serves each key's slot, as ``seen_by`` (a running node) sees it."""
        from redis.crc import key_slot

        ranges = self._slot_owners(seen_by or self.alive()[0])
        found = []
        for key in keys:
            slot = key_slot(key)
            port = next((p for low, high, p in ranges if low <= slot <= high), None)
            if port is None:
                raise AssertionError(f"slot {slot} is served by no node")
            found.append(self.node(port))
        return found

    def flush(self) -> None:
        for node in self.primaries():
            node.command("FLUSHALL")

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()

    @contextlib.contextmanager
    def proxied(self) -> Iterator[Proxied]:
        """A proxy in front of each node: the URL of the first node's proxy, and the
        ``address_remap`` that sends a client to the proxies of the nodes it finds."""
        proxies = {node.port: Proxy(node.address).start() for node in self.nodes}
        try:
            yield Proxied(proxies, self.nodes[0].port)
        finally:
            for proxy in proxies.values():
                proxy.stop()


class Proxied:
    """The proxies of a cluster's nodes (by the node's port), and how a client uses them."""

    def __init__(self, proxies: dict[int, Proxy], first: int) -> None:
        self.proxies = proxies
        self.url = f"redis://127.0.0.1:{proxies[first].port}/0"

    def remap(self, address: tuple[str, int]) -> tuple[str, int]:
        """redis-py's ``address_remap``: a node's address -> its proxy's."""
        return ("127.0.0.1", self.proxies[address[1]].port)

    def of(self, node: Node) -> Proxy:
        return self.proxies[node.port]

    def mode(self, mode: str, latency: float = 0.0) -> None:
        """Every proxy in ``mode``."""
        for proxy in self.proxies.values():
            proxy.mode(mode, latency)
