"""RedisStore beyond the store contract: its size, its leases, its clients per event loop,
its options, and credentials that never show (ACL users, TLS, masked URLs)."""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import redis
from hypothesis import given
from hypothesis import strategies as st

from batche import BatchConfigError, RateLimit, cache_batch_variable
from batche.stores import RedisStore, StoreError
from batche.stores._urls import masked

from .conftest import RedisServer, run_batche

ROOT = str(Path(__file__).resolve().parent.parent)
pytestmark = pytest.mark.redis


# -- size and leases -------------------------------------------------------------------------


@pytest.mark.parametrize("prefix", ["batche:", "app"])
def test_leases_are_never_entries(redis_url: str, prefix: str) -> None:
    store = RedisStore(redis_url, prefix=prefix)
    store.set_many({"ns:1:a": 1, "ns:1:b": 2, "ns:2:c": 3})
    store.client.set("another-application", b"x")  # not ours: never counted
    assert store.lease_many(["ns:1:x", "ns:1:a"], "token", 30) == ["ns:1:x", "ns:1:a"]
    assert len(store) == 3
    assert store.stats()["entries"] == 3
    store.clear("ns:1:")
    assert len(store) == 1
    store.clear()
    assert len(store) == 0
    assert store.get_many(["ns:1:a", "ns:2:c"]) == {}
    # the leases of the computations in progress are still held
    assert store.lease_many(["ns:1:x", "ns:1:a"], "another-process", 30) == []
    store.close()


def test_len_of_a_large_database_is_a_bounded_sample(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    for start in range(0, 20_000, 5_000):
        client.mset({f"other:{i}": b"x" for i in range(start, start + 5_000)})
    client.mset({f"batche:ns:1:{i}": b"x" for i in range(5_000)})
    store = RedisStore(redis_url)

    @cache_batch_variable("texts", cache=store, namespace="ns", version=1)
    def embed(texts: list[str]) -> list[str]:
        return list(texts)

    client.config_resetstat()
    info = embed.cache_info()
    commands = client.info("commandstats")
    # a sample of a thousand keys, not a scan of the 25,000: a few commands at most
    assert commands["cmdstat_scan"]["calls"] <= 3
    assert "cmdstat_keys" not in commands
    assert 3_500 <= info.currsize <= 6_500  # 5,000 entries, estimated
    assert store.stats()["entries"] == 5_000  # exact, by a scan of everything
    client.close()
    store.close()


# -- options --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"timeout": 0}, "timeout must be a number of seconds > 0, got 0"),
        ({"timeout": "1"}, "timeout must be a number of seconds > 0, got '1'"),
        ({"retry_after": -1}, "retry_after must be a number of seconds >= 0, got -1"),
        ({"prefix": None}, "prefix must be a non-empty str, got None"),
        (
            {"prefix": ""},
            "prefix must be a non-empty str, got '' (an empty prefix would make "
            "clear(), len() and stats() take every key of the database)",
        ),
        ({"ttl": 0}, "ttl must be None or a number of seconds > 0, got 0"),
    ],
)
def test_bad_options_are_named(options: dict[str, Any], message: str) -> None:
    with pytest.raises(BatchConfigError, match=r"RedisStore\('redis://127.0.0.1:1/0'\): "):
        RedisStore("redis://127.0.0.1:1/0", **options)
    with pytest.raises(ValueError, match=re.escape(message)):
        RedisStore("redis://127.0.0.1:1/0", **options)


# -- credentials ------------------------------------------------------------------------------


@given(
    user=st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=8),
    password=st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1),
)
def test_a_password_in_a_url_is_masked(user: str, password: str) -> None:
    user, secret = quote(user, safe=""), quote(password, safe="")
    url = f"rediss://{user}:{secret}@127.0.0.1:6380/2?ssl_cert_reqs=none"
    assert masked(url) == f"rediss://{user}:***@127.0.0.1:6380/2?ssl_cert_reqs=none"
    query = f"redis://127.0.0.1:6379/0?password={secret}&db=1"
    assert masked(query) == "redis://127.0.0.1:6379/0?password=***&db=1"


def test_a_url_without_a_password_is_shown_as_it_is() -> None:
    for url in ("redis://127.0.0.1:6379/0", "redis://user@host/0", "unix:///tmp/r.sock?db=1"):
        assert masked(url) == url


def leaked(secret: str, caplog: pytest.LogCaptureFixture, *texts: Any) -> list[str]:
    """The texts (and log lines) that show ``secret``."""
    shown = [str(t) for t in texts] + [repr(t) for t in texts]
    shown += [r.getMessage() for r in caplog.records]
    return [text for text in shown if secret in text]


def test_an_acl_user_works_and_its_password_never_shows(
    redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    admin = redis.Redis.from_url(redis_url)
    admin.acl_setuser(
        "batche-user", enabled=True, passwords=["+s3cret-pass"], keys=["*"],
        channels=["*"], commands=["+@all"],
    )  # fmt: skip
    try:
        url = redis_url.replace("redis://", "redis://batche-user:s3cret-pass@")
        store = RedisStore(url, ttl=60)
        assert store.client.acl_whoami() == "batche-user"
        calls: list[list[str]] = []

        @cache_batch_variable("texts", cache=store, lock=True)
        def upper(texts: list[str]) -> list[str]:
            calls.append(list(texts))
            return [t.upper() for t in texts]

        assert upper(["a", "b"]) == upper(["b", "a"])[::-1] == ["A", "B"]
        assert calls == [["a", "b"]]  # leased, stored and read back as that user
        assert repr(store) == (
            f"RedisStore({url.replace('s3cret-pass', '***')!r}, ttl=60, prefix='batche:')"
        )
        wrong = url.replace("s3cret-pass", "wr0ng-pass")
        with caplog.at_level(logging.WARNING, logger="batche"):
            bad = RedisStore(wrong)
            assert bad.get_many(["k"]) == {}  # refused: logged, computed
            strict = RedisStore(wrong, on_store_error="raise")
            with pytest.raises(StoreError, match="could not read") as error:
                strict.get_many(["k"])
        assert any("could not read" in r.getMessage() for r in caplog.records)
        assert leaked("wr0ng-pass", caplog, bad, strict, bad.url, error.value) == []
        assert leaked("s3cret-pass", caplog, store, store.url, store.where) == []
        for each in (store, bad, strict):
            each.close()
    finally:
        admin.acl_deluser("batche-user")
        admin.close()


def test_a_default_user_password_never_shows(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server = RedisServer(str(tmp_path), "--requirepass", "top-secret")
    server.start()
    try:
        good = RedisStore(server.url.replace("redis://", "redis://:top-secret@"))
        good.set_many({"k": 1})
        assert good.get_many(["k"]) == {"k": 1}
        assert good.url == server.url.replace("redis://", "redis://:***@")
        with caplog.at_level(logging.WARNING, logger="batche"):
            bad = RedisStore(server.url.replace("redis://", "redis://:n0t-it@"))
            assert bad.get_many(["k"]) == {}
        assert leaked("n0t-it", caplog, bad) == []
        assert leaked("top-secret", caplog, good) == []
        good.close()
        bad.close()
    finally:
        server.stop()


@pytest.mark.parametrize("path", ["abc", "0/1", "1x", "-1", " 2"])
def test_a_database_that_is_not_a_number_is_refused(redis_url: str, path: str) -> None:
    url = redis_url.rsplit("/", 1)[0].replace("redis://", "redis://:s3cret@") + "/" + path
    fault = f"the database must be a number, as in redis://host:6379/0, got {path!r}"
    with pytest.raises(BatchConfigError) as error:
        RedisStore(url)
    assert str(error.value).endswith(f"): url: {fault}")  # redis-py would take database 0
    assert "s3cret" not in str(error.value)
    with pytest.raises(BatchConfigError, match=r"RateLimit\(\): redis \(.*\): the database"):
        RateLimit(requests=1, redis=url)
    shown = run_batche("stats", url)
    assert shown.returncode == 2
    assert fault in shown.stderr


def test_the_database_of_the_url_is_the_one_used(redis_url: str) -> None:
    base = redis_url.rsplit("/", 1)[0]
    three, default = RedisStore(base + "/3"), RedisStore(base + "/")
    three.set_many({"k": 3})
    assert default.get_many(["k"]) == {}  # "/" is database 0, as no path is
    assert RedisStore(base).get_many(["k"]) == {}
    assert RedisStore(base + "/3").get_many(["k"]) == {"k": 3}
    three.clear()
    for store in (three, default):
        store.close()


def test_a_bad_url_is_refused_without_its_password() -> None:
    for url in ("redis://:s3cret@127.0.0.1:notaport/0", "http://user:s3cret@127.0.0.1/0"):
        with pytest.raises(BatchConfigError, match="not a Redis URL") as error:
            RedisStore(url)
        assert "s3cret" not in str(error.value)
        assert ":***@" in str(error.value)


def _tls_files(directory: Path) -> tuple[Path, Path, Path]:
    """A certificate authority and a server certificate for 127.0.0.1 (openssl)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        message = "openssl is not installed (it makes the TLS test's certificates)"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(message)
        pytest.skip(message)
    (directory / "ext").write_text("subjectAltName=IP:127.0.0.1\n")
    for command in (
        "req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 1 -subj /CN=ca",
        "req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj /CN=127.0.0.1",
        "x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out server.crt "
        "-days 1 -extfile ext",
    ):
        subprocess.run(
            [openssl, *command.split()], cwd=directory, check=True, capture_output=True,
            timeout=60,
        )  # fmt: skip
    return directory / "ca.crt", directory / "server.crt", directory / "server.key"


def test_tls_with_an_acl_user_and_a_deadline(tmp_path: Path) -> None:
    ca, certificate, key = _tls_files(tmp_path)
    server = RedisServer(str(tmp_path))
    server.options = (
        "--port", "0", "--tls-port", str(server.port), "--tls-cert-file", str(certificate),
        "--tls-key-file", str(key), "--tls-ca-cert-file", str(ca), "--tls-auth-clients", "no",
    )  # fmt: skip
    server.start()
    try:
        query = f"?ssl_ca_certs={quote(str(ca))}"
        admin = redis.Redis.from_url(f"rediss://127.0.0.1:{server.port}/0{query}")
        admin.acl_setuser(
            "tls-user", enabled=True, passwords=["+tls-pass"], keys=["*"], commands=["+@all"]
        )
        admin.close()
        store = RedisStore(f"rediss://tls-user:tls-pass@127.0.0.1:{server.port}/0{query}",
                           timeout=1.0, retry_after=600)  # fmt: skip
        assert store.url.startswith("rediss://tls-user:***@")
        store.set_many({"k": [1.0, 2.0]})
        assert store.get_many(["k"]) == {"k": [1.0, 2.0]}
        assert store.client.acl_whoami() == "tls-user"
        server.freeze()
        try:
            start = time.monotonic()
            assert store.get_many(["k"]) == {}  # no answer: the deadline holds over TLS
            assert 1.0 <= time.monotonic() - start < 2.0
        finally:
            server.thaw()
        store.close()
    finally:
        server.stop()


# -- asyncio clients: one per loop, closed with it -------------------------------------------

LOOPS = """
import asyncio, gc, logging, sys, weakref
sys.path.insert(0, {root!r})
# -X dev logs callbacks slower than 0.1 s (a busy machine): not what this test looks for;
# warnings (unclosed transports) and asyncio's errors still show
logging.getLogger("asyncio").setLevel(logging.ERROR)
import redis
from batche import cache_batch_variable
from batche.stores import RedisStore

url = sys.argv[1]
store = RedisStore(url)
control = redis.Redis.from_url(url)

@cache_batch_variable("texts", cache=store)
async def embed(texts):
    return [len(t) for t in texts]

async def call(i):
    assert await embed(["a", str(i)]) == [1, len(str(i))]

# the server is shared with the other tests of the session: count from where it stands
clients = [control.info("clients")["connected_clients"]]
for i in range(200):
    asyncio.run(call(i))
    if i % 50 == 49:
        clients.append(control.info("clients")["connected_clients"])

loops = []

async def use(i):
    loops.append(weakref.ref(asyncio.get_running_loop()))
    await store.aset_many({{str(i): i}})
    assert await store.aget_many([str(i)]) == {{str(i): i}}

for i in range(50):
    asyncio.run(use(i))
gc.collect()
print(clients, sum(ref() is not None for ref in loops), len(store._loops))
control.close()
store.close()
"""


def test_200_asyncio_runs_leave_no_client_no_loop_and_no_warning(redis_url: str) -> None:
    done = subprocess.run(
        [sys.executable, "-X", "dev", "-W", "error", "-c", LOOPS.format(root=ROOT), redis_url],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.stderr == ""  # no "unclosed transport", no ResourceWarning
    assert done.returncode == 0
    clients, alive, kept = done.stdout.strip().rsplit(" ", 2)
    before, *counts = [int(n) for n in clients.strip("[],").split(",")]
    # the control connection was counted before; at most the last run's client besides
    assert max(counts) <= before + 1
    assert alive == "0"  # the store keeps no event loop alive
    assert kept == "0"  # nor any client


MANUAL = """
import asyncio, gc, sys, weakref
sys.path.insert(0, {root!r})
from batche.stores import RedisStore

store = RedisStore(sys.argv[1])

async def main():
    await store.aset_many({{"k": 1}})

loop = asyncio.new_event_loop()
loop.run_until_complete(main())
loop.close()  # without shutting down its async generators: the client cannot close
ref = weakref.ref(loop)
del loop
store.close()  # forgets the closed loop's client
gc.collect()
print(ref() is None)
"""


def test_a_loop_closed_by_hand_is_not_kept_alive(redis_url: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", MANUAL.format(root=ROOT), redis_url],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    assert done.stdout.strip() == "True"


def test_aclose_closes_the_running_loops_client(redis_url: str) -> None:
    import asyncio

    store = RedisStore(redis_url)
    control = redis.Redis.from_url(redis_url)
    before = control.info("clients")["connected_clients"]

    async def main() -> None:
        await store.aset_many({"k": 1})
        assert control.info("clients")["connected_clients"] == before + 1
        await store.aclose()
        assert len(store._loops) == 0
        assert await store.aget_many(["k"]) == {"k": 1}  # usable again: a new client
        await store.aclose()

    asyncio.run(main())
    control.close()
