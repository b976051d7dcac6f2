"""SQLiteStore soaks: threads and event loops come and go, open files and threads stay put.

Run as a script to print the figures the README quotes:
``python tests/test_soak_sqlite.py``.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any, NamedTuple

if __package__ in (None, ""):  # run as a script: import the worktree's batche
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from batche import cache_batch_variable
from batche.stores import SQLiteStore
from batche.stores._sqlite_pool import POOL_SIZE
from tests.conftest import in_threads

THREADS = 1_000
WAVE = 10  # threads started together, so that the store sees concurrent callers
RUNS = 200
# A connection holds the database file and its -wal file open; the process also keeps one
# -shm file per database. Whatever the number of threads, this is as far as fds may grow.
FD_BOUND = 2 * POOL_SIZE + 1


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


class Figures(NamedTuple):
    fds: tuple[int, int]
    threads: tuple[int, int]
    stored: int


def soak(path: Path, threads: int = THREADS, runs: int = RUNS) -> Figures:
    """``threads`` short-lived threads calling a sync cached function, then ``runs`` calls
    of ``asyncio.run`` awaiting an async one, on one SQLiteStore; fds and threads around."""
    store = SQLiteStore(path)

    @cache_batch_variable("items", cache=store, namespace="sync")
    def double(items: list[int]) -> list[int]:
        return [2 * i for i in items]

    @cache_batch_variable("items", cache=store, namespace="async")
    async def triple(items: list[int]) -> list[int]:
        return [3 * i for i in items]

    fds_before, threads_before = open_fds(), threading.active_count()

    def call(n: int) -> None:  # a new item and one a previous thread stored: a miss, a hit
        assert double([n, n // 2]) == [2 * n, 2 * (n // 2)]

    for wave in range(0, threads, WAVE):
        in_threads(WAVE, lambda k, wave=wave: call(wave + k))

    async def one_run(n: int) -> None:
        assert await triple([n, n // 2]) == [3 * n, 3 * (n // 2)]

    for n in range(runs):
        asyncio.run(one_run(n))
    figures = Figures(
        (fds_before, open_fds()), (threads_before, threading.active_count()), len(store)
    )
    store.close()
    return figures


def test_open_files_and_threads_stay_bounded(tmp_path: Path) -> None:
    figures = soak(tmp_path / "soak.db")
    assert figures.stored == THREADS + RUNS  # every result was stored: the store kept working
    fds_before, fds_after = figures.fds
    assert fds_after - fds_before <= FD_BOUND, figures
    threads_before, threads_after = figures.threads
    assert threads_after == threads_before, figures


def test_close_releases_every_file(tmp_path: Path) -> None:
    baseline = open_fds()
    store = SQLiteStore(tmp_path / "closed.db")
    barrier = threading.Barrier(4)

    def use(n: int) -> None:
        barrier.wait()  # four threads at once: the pool opens several connections
        store.set_many({f"k{n}": n})

    workers = [threading.Thread(target=use, args=(n,)) for n in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert open_fds() > baseline
    store.close()
    assert open_fds() == baseline
    assert store.get_many(["k0", "k3"]) == {"k0": 0, "k3": 3}  # used again: reopens
    asyncio.run(store.aclose())
    assert open_fds() == baseline


def main() -> None:
    with tempfile.TemporaryDirectory() as scratch:
        figures: Any = soak(Path(scratch) / "soak.db")
    print(f"{THREADS:,} threads (in waves of {WAVE}) and {RUNS} asyncio.run() calls:")
    print(f"  open fds:  {figures.fds[0]} before, {figures.fds[1]} after")
    print(f"  threads:   {figures.threads[0]} before, {figures.threads[1]} after")
    print(f"  entries stored: {figures.stored:,}")


if __name__ == "__main__":
    main()
