"""Stores outside the process: Redis and SQLite hit paths, and the size of stored vectors.

Run: python benchmarks/bench_stores.py [--quick] [--redis-url redis://127.0.0.1:6379/15]
                                        [--cluster-url redis://127.0.0.1:7000/0]

Redis (a 1,000-item batch of 384-float embeddings, every item cached):
- batche: the decorated function, RedisStore (one MGET, floats packed as doubles);
- a loop of per-item GETs (what a per-key cache does), decoding each entry the same way;
- the floor: one raw MGET of the same entries plus building the result's floats;
- on a 3-primary Redis Cluster, in the same rounds: batche (RedisStore on the cluster: one
  pipeline of MGETs per node, every node at once), and redis-py's ``mget_nonatomic`` on
  the same entries stored under plain keys (no hash tags), decoded the same way.
SQLite: the same batch through SQLiteStore, and the file size of 10,000 float32
embeddings of 384 dimensions next to their raw bytes and to pickle in SQLite.
Without --redis-url a redis-server is started on a free loopback port; without
--cluster-url a cluster (redis-server in cluster mode, joined by redis-cli) as well.
"""

from __future__ import annotations

import argparse
import contextlib
import platform
import sys
import tempfile
from array import array
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
import redis
from _common import compare, loop, redis_url, table

from batche import cache_batch_variable
from batche.stores import RedisStore, SQLiteStore

DIMS = 384


def embeddings(texts: list[str]) -> list[list[float]]:
    rng = np.random.default_rng(len(texts))
    return rng.random((len(texts), DIMS)).tolist()


def redis_rows(url: str, cluster_url: str, rounds: int, batch: int) -> list[list[str]]:
    store = RedisStore(url)
    store.clear()
    texts = [f"document {i}" for i in range(batch)]
    embed = cache_batch_variable("texts", cache=store, namespace="bench")(embeddings)
    expected = embed(texts)  # every item is now cached
    keys = [store.prefix + k for k in embed._core.keys_of(texts, ())]
    client = redis.Redis.from_url(url)
    loads = store.serializer.loads

    def per_item_get() -> list[Any]:
        return [loads(client.get(key)) for key in keys]

    def raw_mget() -> list[list[float]]:
        out = []
        for data in client.mget(keys):
            floats = array("d")
            floats.frombytes(data[8:])  # the packed doubles after the header
            out.append(floats.tolist())
        return out

    on_cluster, nonatomic, done = cluster_contenders(cluster_url, texts, keys, client)
    assert embed(texts) == expected
    assert per_item_get() == expected
    assert raw_mget() == expected
    assert on_cluster() == expected
    assert nonatomic() == expected
    best = compare(
        {
            "floor": loop(raw_mget),
            "batche": loop(lambda: embed(texts)),
            "per-item GET": loop(per_item_get),
            "cluster": loop(on_cluster),
            "mget_nonatomic": loop(nonatomic),
        },
        rounds,
    )
    floor, single = best["floor"], best["batche"]
    rows = []
    for name in ("floor", "batche", "per-item GET"):
        seconds = best[name]
        rows.append([f"Redis hit, {batch:,} x {DIMS} floats", name,
                     f"{seconds * 1000:.2f} ms", f"{seconds / floor:.2f}x floor",
                     f"{best['per-item GET'] / seconds:.1f}x faster than per-item GET"
                     if name == "batche" else ""])  # fmt: skip
    for name, label in (("cluster", "batche"), ("mget_nonatomic", "redis-py mget_nonatomic")):
        seconds = best[name]
        rows.append([f"Redis Cluster hit (3 primaries), {batch:,} x {DIMS} floats", label,
                     f"{seconds * 1000:.2f} ms", f"{seconds / floor:.2f}x floor",
                     f"{seconds / single:.2f}x batche on one server"])  # fmt: skip
    done()
    store.clear()
    store.close()
    client.close()
    return rows


def cluster_contenders(
    url: str, texts: list[str], keys: list[str], single: redis.Redis
) -> tuple[Callable[[], Any], Callable[[], Any], Callable[[], None]]:
    """batche on the cluster, and redis-py's ``mget_nonatomic`` on the same entries under
    plain keys; then what cleans up."""
    store = RedisStore(url)
    store.clear()
    embed = cache_batch_variable("texts", cache=store, namespace="bench")(embeddings)
    embed(texts)
    parts = urlsplit(url)
    client = redis.RedisCluster(host=parts.hostname, port=parts.port)  # its close() closes
    plain = [f"plain:{key}" for key in keys]
    client.mset_nonatomic(dict(zip(plain, single.mget(keys))))
    loads = store.serializer.loads

    def nonatomic() -> list[Any]:
        return [loads(data) for data in client.mget_nonatomic(plain)]

    def done() -> None:
        store.clear()
        store.close()
        client.delete(*plain)
        client.close()

    return (lambda: embed(texts)), nonatomic, done


@contextlib.contextmanager
def cluster_url(given: str | None) -> Iterator[str]:
    """``given``, or the URL of a 3-primary cluster started on free loopback ports."""
    if given is not None:
        yield given
        return
    from tests._cluster import Cluster  # the cluster the test suite starts

    with tempfile.TemporaryDirectory() as directory:
        cluster = Cluster(Path(directory))
        try:
            yield cluster.start().url
        finally:
            cluster.stop()


def sqlite_rows(directory: Path, rounds: int, batch: int, count: int) -> list[list[str]]:
    texts = [f"document {i}" for i in range(batch)]
    store = SQLiteStore(directory / "hits.db")
    embed = cache_batch_variable("texts", cache=store, namespace="bench")(embeddings)
    embed(texts)
    seconds = compare({"batche": loop(lambda: embed(texts))}, rounds)["batche"]
    rows = [[f"SQLite hit, {batch:,} x {DIMS} floats", "batche", f"{seconds * 1000:.2f} ms",
             f"{seconds / batch * 1e6:.1f} µs per item", ""]]  # fmt: skip
    vectors = np.random.default_rng(0).random((count, DIMS), dtype=np.float32)
    raw = vectors.nbytes
    for label, serializer in (("batche (safe format)", "safe"), ("pickle in SQLite", "pickle")):
        path = directory / f"size-{serializer}.db"
        sized = SQLiteStore(path, serializer=serializer)
        for start in range(0, count, 1000):
            sized.set_many({f"ns:1:{i:032x}": vectors[i] for i in range(start, start + 1000)})
        with sized._pool.connection() as connection:
            connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            connection.execute("VACUUM")
        size = path.stat().st_size
        sized.close()
        rows.append([f"SQLite file, {count:,} float32 x {DIMS}", label, f"{size / 1e6:.2f} MB",
                     f"{size / raw:.3f}x raw bytes ({raw / 1e6:.2f} MB)", ""])  # fmt: skip
    store.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds (a smoke run)")
    parser.add_argument("--redis-url", help="an existing server (its keys are cleared)")
    parser.add_argument("--cluster-url", help="an existing cluster (its keys are cleared)")
    args = parser.parse_args()
    rounds = 3 if args.quick else 9
    with contextlib.ExitStack() as stack:
        scratch = stack.enter_context(tempfile.TemporaryDirectory())
        url = stack.enter_context(redis_url(args.redis_url))
        on_cluster = stack.enter_context(cluster_url(args.cluster_url))
        rows = redis_rows(url, on_cluster, rounds, 1_000)
        rows += sqlite_rows(Path(scratch), rounds, 1_000, 2_000 if args.quick else 10_000)
    print(f"Python {platform.python_version()} on {platform.machine()}, {platform.system()}")
    print(table(["workload", "contender", "time or size", "ratio", "note"], rows))


if __name__ == "__main__":
    main()
