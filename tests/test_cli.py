"""``python -m batche stats|clear URL`` on SQLite and Redis stores."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from batche import cache_batch_variable
from batche.stores import RedisStore, SQLiteStore

from .conftest import RedisServer
from .conftest import run_batche as run


def fill(store: object) -> None:
    cache_batch_variable("t", cache=store, namespace="emb", version=2)(lambda t: list(t))(
        ["a", "b"]
    )
    cache_batch_variable("t", cache=store, namespace="other")(lambda t: list(t))(["z"])


def test_sqlite_stats_and_clear(tmp_path: Path) -> None:
    fill(SQLiteStore(tmp_path / "c.db"))
    relative = run("stats", "sqlite:///c.db", cwd=tmp_path)
    assert relative.returncode == 0, relative.stderr
    assert "entries: 3" in relative.stdout
    assert "emb:2" in relative.stdout
    assert "other:1" in relative.stdout
    absolute = f"sqlite:///{tmp_path / 'c.db'}"  # sqlite:////abs/path
    assert absolute.startswith("sqlite:////")
    cleared = run("clear", absolute, "--namespace", "emb", "--version", "2")
    assert cleared.stdout.strip().endswith("removed 2 entries")
    assert "entries: 1" in run("stats", absolute).stdout
    assert run("clear", absolute).stdout.strip().endswith("removed 1 entries")


def test_a_path_with_a_doubled_slash_is_a_path(tmp_path: Path) -> None:
    # sqlite://///abs (one slash too many) read "//abs" as a URI's host: "invalid uri
    # authority", exit status 1; it is the same file, as POSIX has it
    fill(SQLiteStore(tmp_path / "c.db"))
    doubled = run("stats", f"sqlite:////{tmp_path / 'c.db'}")
    assert doubled.returncode == 0, doubled.stderr
    assert "entries: 3" in doubled.stdout


def test_redis_stats_and_clear(redis_url: str) -> None:
    fill(RedisStore(redis_url))
    shown = run("stats", redis_url)
    assert shown.returncode == 0, shown.stderr
    assert "entries: 3" in shown.stdout
    assert (
        run("clear", redis_url, "--namespace", "other").stdout.strip().endswith("removed 1 entries")
    )
    assert "entries: 2" in run("stats", redis_url).stdout


def test_clear_errors() -> None:
    bad = run("stats", "http://example/")
    assert bad.returncode == 2
    assert "is not a store URL; expected sqlite:///" in bad.stderr
    missing = run("stats", "sqlite:///does/not/exist.db")
    assert missing.returncode == 2
    assert "no SQLite store at 'does/not/exist.db'" in missing.stderr
    unreachable = run("clear", "redis://127.0.0.1:1/0")
    assert unreachable.returncode == 2
    assert "cannot reach the Redis server at 'redis://127.0.0.1:1/0'" in unreachable.stderr
    version_alone = run("clear", "sqlite:///x.db", "--version", "3")
    assert version_alone.returncode == 2
    empty = run("clear", "sqlite:///x.db", "--namespace", "")
    assert empty.returncode == 2
    assert "--namespace must not be empty" in empty.stderr


def snapshot(directory: Path) -> dict[str, tuple[bytes, int]]:
    """Every file of ``directory``: its bytes and its modification time."""
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(directory.iterdir())}


def foreign_database(path: Path) -> None:
    """Someone else's SQLite database (rollback journal, as sqlite3 makes by default)."""
    connection = sqlite3.connect(path)
    connection.execute("CREATE TABLE notes (body TEXT)")
    connection.execute("INSERT INTO notes VALUES ('mine')")
    connection.commit()
    connection.close()


def test_stats_reads_a_cache_without_writing_to_it(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "c.db")
    fill(store)
    with store._pool.connection() as connection:  # a file of a batche without this index:
        connection.execute("DROP INDEX batche_entries_expires")  # opening a store adds it
    store.close()  # the WAL is checkpointed into the file and removed
    before = snapshot(tmp_path)
    assert list(before) == ["c.db"]
    shown = run("stats", "sqlite:///c.db", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert "entries: 3" in shown.stdout
    # SQLite may leave the empty -wal and -shm files a reader of a WAL file needs
    assert snapshot(tmp_path)["c.db"] == before["c.db"]


def junk_file(path: Path) -> None:
    path.write_bytes(b"not a database at all\n" * 100)


@pytest.mark.parametrize(
    ("make", "fault"),
    [
        (foreign_database, "is a SQLite database but not a batche cache "
                           "(no batche_entries table); left unchanged"),
        (junk_file, "is not a SQLite database (file is not a database)"),
    ],
    ids=["another-sqlite-database", "not-sqlite"],
)  # fmt: skip
def test_a_file_that_is_not_a_cache_is_a_one_line_error_and_left_untouched(
    tmp_path: Path, make: Callable[[Path], None], fault: str
) -> None:
    make(tmp_path / "other.db")
    before = snapshot(tmp_path)
    for command in ("stats", "clear"):
        refused = run(command, "sqlite:///other.db", cwd=tmp_path)
        assert refused.returncode == 2
        assert refused.stderr == f"python -m batche {command}: 'other.db' {fault}\n"
        assert snapshot(tmp_path) == before  # same files, same bytes, same times


def test_a_missing_file_is_not_created(tmp_path: Path) -> None:
    for command in ("stats", "clear"):
        missing = run(command, "sqlite:///absent.db", cwd=tmp_path)
        assert missing.returncode == 2
        assert "no SQLite store at 'absent.db'" in missing.stderr
        assert list(tmp_path.iterdir()) == []


# -- passwords never shown ----------------------------------------------------------------


@pytest.fixture
def password_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of this test's own that wants the password ``s3cret-pw``."""
    server = RedisServer(str(tmp_path), "--requirepass", "s3cret-pw")
    server.start()
    try:
        yield server
    finally:
        server.stop()


def test_no_message_of_stats_or_clear_shows_a_password(password_redis: RedisServer) -> None:
    port = password_redis.port
    urls = [
        f"redis://:s3cret-pw@127.0.0.1:{port}/0",
        f"redis://default:s3cret-pw@127.0.0.1:{port}/0",
        f"redis://127.0.0.1:{port}/0?password=s3cret-pw",
    ]
    fill(RedisStore(urls[0]))
    for url in urls:
        shown = run("stats", url)
        assert shown.returncode == 0, shown.stderr
        assert "entries: 3" in shown.stdout
        assert "***" in shown.stdout
        assert "s3cret-pw" not in shown.stdout + shown.stderr
        cleared = run("clear", url, "--namespace", "nothing-here")
        assert cleared.returncode == 0, cleared.stderr
        assert "***" in cleared.stdout
        assert "s3cret-pw" not in cleared.stdout + cleared.stderr
    failures = [
        run("stats", f"redis://:wrong-pw@127.0.0.1:{port}/0"),  # refused by the server
        run("stats", f"redis://:wrong-pw@127.0.0.1:{port}/0?password=wrong-pw"),
        run("clear", "redis://user:wrong-pw@127.0.0.1:1/0"),  # nobody listens
        run("stats", "http://user:wrong-pw@example/"),  # not a store URL
        run("stats", f"redis://:wrong-pw@127.0.0.1:{port}/abc"),  # no database
    ]
    for failed in failures:
        assert failed.returncode == 2, failed.stderr
        assert "***" in failed.stderr
        assert "wrong-pw" not in failed.stdout + failed.stderr


def test_clear_reports_the_exact_count_in_a_large_database(redis_url: str) -> None:
    import redis

    client = redis.Redis.from_url(redis_url)
    # 20,000 keys that are not ours: len() estimates from a sample beyond 1,000 keys
    for start in range(0, 20_000, 5_000):
        client.mset({f"other:{n}": b"x" for n in range(start, start + 5_000)})
    client.close()
    store = RedisStore(redis_url)
    cache_batch_variable("t", cache=store, namespace="emb")(lambda t: list(t))(range(1_001))
    cleared = run("clear", redis_url, "--namespace", "emb")
    assert cleared.returncode == 0, cleared.stderr
    assert cleared.stdout.strip().endswith("removed 1,001 entries")
    assert store.clear() == 0
    store.close()


@pytest.mark.parametrize("kind", ["sqlite", "redis", "redis-cluster"])
def test_counts_are_of_entries_not_of_the_arrays_template(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    import numpy as np

    if kind == "sqlite":
        store: object = SQLiteStore(tmp_path / "c.db")
        url = f"sqlite:///{tmp_path / 'c.db'}"
    else:
        url = request.getfixturevalue("redis_url" if kind == "redis" else "redis_cluster_url")
        store = RedisStore(url)

    @cache_batch_variable("texts", cache=store, namespace="emb")
    def embed(texts: list[str]) -> np.ndarray:
        return np.ones((len(texts), 4), dtype=np.float32)

    embed(["a", "b", "c"])  # three entries, and the arrays' template of emb:1
    assert len(store) == 3  # type: ignore[arg-type]
    shown = run("stats", url)
    assert shown.returncode == 0, shown.stderr
    assert "entries: 3\n" in shown.stdout
    assert "emb:1                                          3" in shown.stdout
    cleared = run("clear", url, "--namespace", "emb")
    assert cleared.stdout.strip().endswith("removed 3 entries")  # the template goes too
    assert run("stats", url).stdout.startswith(f"{url}\n  entries: 0\n  bytes:   0\n")
    store.close()  # type: ignore[attr-defined]
