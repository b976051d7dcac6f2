"""A SQLite file that is locked by another connection or cannot be written: every call is
correct, and the store costs a bounded time (one wait for the lock, then nothing while
the circuit is open), as a Redis store that hangs."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from batche import cache_batch_variable
from batche.stores import SQLiteStore, StoreError

from ._timing import timed, warnings_of
from .conftest import Harness, Recorder, in_threads

TIMEOUT = 0.5  # the store's wait for a lock in these tests


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Another connection holds the write lock of ``path`` (an exclusive transaction)."""
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    try:
        yield
    finally:
        other.execute("ROLLBACK")
        other.close()


@contextlib.contextmanager
def unwritable(path: Path) -> Iterator[None]:
    """``path`` cannot be written: read-only, or immutable for root (who writes through
    permissions)."""
    if os.geteuid() != 0:
        path.chmod(0o444)
        try:
            yield
        finally:
            path.chmod(0o644)
        return
    chattr = shutil.which("chattr")
    if chattr is None:
        message = "chattr is not installed (root needs it to make a file unwritable)"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(message)
        pytest.skip(message)
    subprocess.run([chattr, "+i", str(path)], check=True)
    try:
        yield
    finally:
        subprocess.run([chattr, "-i", str(path)], check=True)


def test_a_locked_file_costs_one_wait_then_is_skipped(
    tmp_path: Path, harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    store = SQLiteStore(tmp_path / "c.db", timeout=TIMEOUT, retry_after=600)
    recorder = Recorder(lambda i: i * i)
    square = harness.decorate(recorder, cache=store)
    assert harness.run(square([1, 2])) == [1, 4]
    with locked(tmp_path / "c.db"), caplog.at_level(logging.WARNING, logger="batche"):
        value, first = timed(lambda: harness.run(square([1, 2, 3])))
        assert value == [1, 4, 9]
        # the hits are read (WAL readers never wait), the write waits out the lock once
        assert TIMEOUT <= first < 2 * TIMEOUT
        for _ in range(5):
            value, later = timed(lambda: harness.run(square([1, 2, 3])))
            assert value == [1, 4, 9]
            assert later < TIMEOUT  # skipped: touching the store would wait for the lock
    assert recorder.calls == [[1, 2], [3], [1, 2, 3], [1, 2, 3], [1, 2, 3], [1, 2, 3], [1, 2, 3]]
    messages = warnings_of(caplog)
    assert len(messages) == 1
    assert "could not write (database is locked)" in messages[0]
    assert "tried again every 600 s" in messages[0]
    store.close()


def test_a_lock_given_back_is_used_again_by_the_next_probe(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = SQLiteStore(tmp_path / "c.db", timeout=TIMEOUT, retry_after=0)  # probe each call
    recorder = Recorder()
    f = cache_batch_variable("items", cache=store)(recorder)
    with caplog.at_level(logging.WARNING, logger="batche"):
        with locked(tmp_path / "c.db"):
            assert f(["a"]) == ["<a>"]  # could not be written
        assert f(["a", "b"]) == ["<a>", "<b>"]  # the probe writes: back in use
        assert f(["b", "a"]) == ["<b>", "<a>"]  # hits
    assert recorder.calls == [["a"], ["a", "b"]]
    messages = warnings_of(caplog)
    assert len(messages) == 2
    assert "the store is back; caching again" in messages[1]
    store.close()


def test_an_unwritable_file_never_fails_a_call(
    tmp_path: Path, harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "c.db"
    store = SQLiteStore(path, timeout=TIMEOUT, retry_after=600)
    recorder = Recorder(lambda i: -i)
    negate = harness.decorate(recorder, cache=store)
    assert harness.run(negate([1])) == [-1]
    store.close()  # the next operation opens a connection: to a file it cannot write
    with unwritable(path), caplog.at_level(logging.WARNING, logger="batche"):
        for _ in range(3):
            value, took = timed(lambda: harness.run(negate([1, 2])))
            assert value == [-1, -2]
            assert took < TIMEOUT
    messages = warnings_of(caplog)
    assert len(messages) == 1
    assert "SQLiteStore(" in messages[0]
    assert "could not" in messages[0]
    assert len(recorder.calls) >= 3  # the store was empty to them: computed
    store.close()


def test_with_on_store_error_raise_a_locked_file_raises_naming_the_function(
    tmp_path: Path,
) -> None:
    store = SQLiteStore(tmp_path / "c.db", timeout=TIMEOUT, on_store_error="raise")

    @cache_batch_variable("items", cache=store)
    def strict(items: list[int]) -> list[int]:
        return items

    with locked(tmp_path / "c.db"):
        with pytest.raises(StoreError, match=r"strict\(\): SQLiteStore\(.*could not write: "):
            strict([1])
        # while the circuit is open: at once, without waiting for the lock again
        start = time.monotonic()
        with pytest.raises(StoreError, match=r"could not read: the store failed"):
            strict([2])
        assert time.monotonic() - start < TIMEOUT
    store.close()


def test_bad_options_are_named(tmp_path: Path) -> None:
    for options, message in (
        ({"timeout": 0}, "timeout must be a number of seconds > 0, got 0"),
        ({"retry_after": -1}, "retry_after must be a number of seconds >= 0, got -1"),
    ):
        with pytest.raises(ValueError, match=message):
            SQLiteStore(tmp_path / "c.db", **options)


def test_a_file_deleted_while_open_is_opened_afresh(
    tmp_path: Path, harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    # Before, the store's connections went on with the deleted file for good: what it
    # wrote was seen by no other process (they open the path: a new, empty file), and
    # lost with the process.
    path = tmp_path / "c.db"
    store = SQLiteStore(path, timeout=TIMEOUT)
    recorder = Recorder(lambda i: i * i)
    square = harness.decorate(recorder, cache=store)
    assert harness.run(square([1, 2])) == [1, 4]
    for name in ("c.db", "c.db-wal", "c.db-shm"):  # as `rm c.db*` does
        (tmp_path / name).unlink(missing_ok=True)
    with caplog.at_level(logging.WARNING, logger="batche"):
        assert harness.run(square([2, 3])) == [4, 9]  # the file is gone with its entries
        assert harness.run(square([2, 3])) == [4, 9]
    assert recorder.calls == [[1, 2], [2, 3]]
    other = SQLiteStore(path)  # what another process opens
    assert len(other) == 2
    assert len(store) == 2
    messages = warnings_of(caplog)
    assert len(messages) == 1
    assert "the file was deleted or replaced while open" in messages[0]
    other.close()
    store.close()


def test_a_file_replaced_while_threads_use_it_is_followed(tmp_path: Path) -> None:
    # The connections busy in other threads when the file is replaced are closed when
    # given back; every thread then writes to the file at the path.
    path = tmp_path / "c.db"
    store = SQLiteStore(path)
    recorder = Recorder(lambda i: i + 1)

    @cache_batch_variable(cache=store)
    def plus(items: list[int]) -> list[int]:
        return recorder(items)

    in_threads(8, lambda i: plus([i, 100 + i]) and None)
    for name in ("c.db", "c.db-wal", "c.db-shm"):  # all three: a -shm left behind would be
        (tmp_path / name).unlink(missing_ok=True)  # shared by the old file and the new one
    replacement = SQLiteStore(path)  # another process made a new cache at the path
    in_threads(8, lambda i: plus([200 + i]) and None)
    assert len(replacement) == 8
    assert plus([200, 201]) == [201, 202]
    replacement.close()
    store.close()
