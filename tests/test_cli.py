"""``python -m batche stats|clear URL`` on SQLite and Redis stores."""

from __future__ import annotations

from pathlib import Path

from batche import cache_batch_variable
from batche.stores import RedisStore, SQLiteStore

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
