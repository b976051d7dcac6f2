"""The pool of SQLite connections: bounded, reused, closed, never handed to two threads."""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from batche.stores._sqlite_pool import Pool

from .conftest import in_threads


def opener(path: Path, opened: list[sqlite3.Connection]) -> Callable[[], sqlite3.Connection]:
    def open_() -> sqlite3.Connection:
        connection = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        opened.append(connection)
        return connection

    return open_


def test_threads_share_at_most_size_connections_and_never_one_at_once(tmp_path: Path) -> None:
    opened: list[sqlite3.Connection] = []
    pool = Pool(opener(tmp_path / "p.db", opened), 3, 30.0, "test")
    holders: dict[int, int] = {}  # id of a connection -> the thread using it
    lock = threading.Lock()  # guards holders

    def work(n: int) -> None:
        for _ in range(50):
            with pool.connection() as connection:
                with lock:
                    assert id(connection) not in holders, "handed to two threads at once"
                    holders[id(connection)] = n
                connection.execute("SELECT 1").fetchone()
                with lock:
                    del holders[id(connection)]

    in_threads(16, work)
    assert 1 <= len(opened) <= 3
    pool.close()


def test_a_quiet_process_reuses_one_connection(tmp_path: Path) -> None:
    opened: list[sqlite3.Connection] = []
    pool = Pool(opener(tmp_path / "p.db", opened), 8, 30.0, "test")
    for _ in range(100):
        with pool.connection():
            pass
        _run_in_thread(lambda: _use(pool))
    assert len(opened) == 1
    pool.close()


def _use(pool: Pool) -> None:
    with pool.connection() as connection:
        connection.execute("SELECT 1")


def test_when_every_connection_is_busy_a_caller_waits_a_bounded_time(tmp_path: Path) -> None:
    opened: list[sqlite3.Connection] = []
    pool = Pool(opener(tmp_path / "p.db", opened), 2, 0.05, "test")
    taken = threading.Barrier(3)
    release = threading.Event()

    def hold() -> None:
        with pool.connection():
            taken.wait()
            release.wait()

    holders = [threading.Thread(target=hold) for _ in range(2)]
    for holder in holders:
        holder.start()
    taken.wait()  # both connections are checked out
    with pytest.raises(sqlite3.OperationalError, match=r"no connection free after 0.05 s"):
        pool.connection().__enter__()
    release.set()
    for holder in holders:
        holder.join()
    with pool.connection() as connection:  # put back: free again
        assert connection in opened
    assert len(opened) == 2
    pool.close()


def test_close_closes_idle_connections_now_and_busy_ones_when_put_back(tmp_path: Path) -> None:
    opened: list[sqlite3.Connection] = []
    pool = Pool(opener(tmp_path / "p.db", opened), 4, 30.0, "test")
    with pool.connection() as busy:
        _run_in_thread(lambda: _use(pool))  # another thread opens and puts back a second one
        idle = opened[1]
        pool.close()
        with pytest.raises(sqlite3.ProgrammingError):
            idle.execute("SELECT 1")
        busy.execute("SELECT 1")  # still usable by the thread that has it
    with pytest.raises(sqlite3.ProgrammingError):
        busy.execute("SELECT 1")
    with pool.connection() as fresh:  # used again after close(): a new one
        assert fresh not in (busy, idle)
    pool.close()


def test_a_connection_left_in_a_transaction_is_not_reused(tmp_path: Path) -> None:
    opened: list[sqlite3.Connection] = []
    pool = Pool(opener(tmp_path / "p.db", opened), 4, 30.0, "test")
    with pool.connection() as broken:
        broken.execute("BEGIN")
    with pool.connection() as connection:
        assert connection is not broken
    with pytest.raises(sqlite3.ProgrammingError):
        broken.execute("SELECT 1")
    pool.close()


def test_a_connection_that_cannot_be_opened_while_others_are_is_given_up_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bad = tmp_path / "a-directory"
    bad.mkdir()
    paths = [tmp_path / "p.db"]
    opened: list[sqlite3.Connection] = []

    def open_() -> sqlite3.Connection:  # the first connection opens, the next ones cannot
        connection = sqlite3.connect(paths[-1], check_same_thread=False, isolation_level=None)
        paths.append(bad)
        opened.append(connection)
        return connection

    pool = Pool(open_, 2, 0.05, "SQLiteStore('p.db')")
    errors: list[BaseException] = []

    def use_while_busy() -> None:
        try:
            _use(pool)
        except sqlite3.OperationalError as exc:
            errors.append(exc)

    with caplog.at_level(logging.WARNING, logger="batche"):
        with pool.connection() as busy:
            for _ in range(3):  # cannot open a second one, then waits for the first
                _run_in_thread(use_while_busy)
        _run_in_thread(lambda: _use(pool))  # the first one, put back: used by the thread
    assert [str(e) for e in errors] == ["no connection free after 0.05 s (1 in use)"] * 3
    assert opened == [busy]
    assert [r.getMessage() for r in caplog.records] == [
        "SQLiteStore('p.db'): could not open another connection (unable to open database "
        "file); going on with the 1 open (further ones are not logged)"
    ]
    pool.close()


def _run_in_thread(work: Callable[[], None]) -> None:
    worker = threading.Thread(target=work)
    worker.start()
    worker.join()


def test_a_connection_that_cannot_be_opened_at_all_raises(tmp_path: Path) -> None:
    (tmp_path / "dir").mkdir()
    pool = Pool(opener(tmp_path / "dir", []), 4, 30.0, "test")
    for _ in range(3):  # the place is given back: every attempt tries again, and fails
        with pytest.raises(sqlite3.OperationalError, match="unable to open database file"):
            pool.connection().__enter__()
    pool.close()
