"""``python -m batche stats URL`` and ``python -m batche clear URL``: look into a store."""

from __future__ import annotations

import argparse
import sqlite3
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlparse

from ._errors import BatchConfigError
from .stores._base import StoreError
from .stores._sqlite import SQLiteStore, is_batche_cache, open_read_only, summary
from .stores._urls import masked, secrets_of

URL_HELP = (
    "sqlite:///relative/path.db, sqlite:////absolute/path.db (SQLAlchemy's convention) "
    "or redis://host:port/db (a Redis Cluster: any node's redis://host:port)"
)


class UsageError(Exception):
    """A bad URL or option: the message is for the user."""


def sqlite_path(url: str) -> Path | None:
    """The file a ``sqlite:///`` URL names (None for another URL); it must exist."""
    if not url.startswith("sqlite:///"):
        return None
    path = Path(url[len("sqlite:///") :])
    if not str(path) or str(path) == ".":
        raise UsageError(f"{masked(url)!r} names no file; expected {URL_HELP}")
    if not path.is_file():
        raise UsageError(f"no SQLite store at {str(path)!r} (from {masked(url)!r})")
    return path


def read_only(path: Path) -> sqlite3.Connection:
    """A read-only connection to a batche cache; anything else is refused, left as it is."""
    connection = open_read_only(path)
    try:
        if not is_batche_cache(connection):
            raise UsageError(
                f"{str(path)!r} is a SQLite database but not a batche cache "
                "(no batche_entries table); left unchanged"
            )
    except sqlite3.OperationalError:  # locked, unreadable: a fault, not a wrong file
        connection.close()
        raise
    except sqlite3.DatabaseError as exc:
        connection.close()
        raise UsageError(f"{str(path)!r} is not a SQLite database ({exc})") from None
    except BaseException:
        connection.close()
        raise
    return connection


def scrubbed(text: str, url: str) -> str:
    """``text`` without the passwords of ``url`` (a server's error may quote them)."""
    for secret in secrets_of(url):
        text = text.replace(secret, "***")
    return text


def open_redis(url: str) -> Any:
    """The Redis store a URL names (one server or a cluster), once it answers."""
    scheme = urlparse(url).scheme
    if scheme not in ("redis", "rediss", "unix"):
        raise UsageError(f"{masked(url)!r} is not a store URL; expected {URL_HELP}")
    try:
        from .stores._redis import RedisStore
    except ImportError as exc:
        raise UsageError(str(exc)) from None
    try:
        store = RedisStore(url, on_store_error="raise", timeout=3.0)
    except BatchConfigError as exc:  # a URL redis-py refuses (masked by the store)
        raise UsageError(str(exc)) from None
    try:
        store._ping()
    except BatchConfigError as exc:  # a cluster found by asking, on a database other than 0
        store.close()
        raise UsageError(str(exc)) from None
    except Exception as exc:  # noqa: BLE001 - any failure to reach it is reported
        store.close()
        detail = scrubbed(str(exc), url)
        raise UsageError(f"cannot reach the Redis server at {store.url!r}: {detail}") from None
    return store


def stats(url: str, out: TextIO) -> None:
    path = sqlite_path(url)
    if path is None:
        store = open_redis(url)
        try:
            figures = store.stats()
        finally:
            store.close()
    else:  # read only: stats never writes to the file, whatever the file is
        connection = read_only(path)
        try:
            figures = summary(connection)
        finally:
            connection.close()
    out.write(
        f"{masked(url)}\n  entries: {figures['entries']:,}\n  bytes:   {figures['bytes']:,}\n"
    )
    if figures["groups"]:
        out.write("  namespace:version                        entries\n")
        for group, count in sorted(figures["groups"].items()):
            out.write(f"  {group:<40} {count:>7,}\n")


def clear(url: str, namespace: str | None, version: str | None, out: TextIO) -> None:
    if version is not None and namespace is None:
        raise UsageError("--version needs --namespace (versions belong to a namespace)")
    for option, value in (("--namespace", namespace), ("--version", version)):
        if value is not None and not value:
            raise UsageError(f"{option} must not be empty (it would match no entry)")
    path = sqlite_path(url)
    if path is None:
        store = open_redis(url)
    else:
        read_only(path).close()  # a file that is not a batche cache is refused untouched
        store = SQLiteStore(path, on_store_error="raise", timeout=30.0)  # explicit: it waits
    try:
        # the store counts what it removed: exact, whatever else writes meanwhile
        if namespace is None:
            removed = store.clear()
        else:
            removed = store.clear(f"{namespace}:" if version is None else f"{namespace}:{version}:")
        out.write(f"{masked(url)}: removed {removed:,} entries\n")
    finally:
        store.close()


def main(command: str, argv: Sequence[str], out: TextIO = sys.stdout) -> int:
    parser = argparse.ArgumentParser(prog=f"python -m batche {command}")
    parser.add_argument("url", help=URL_HELP)
    if command == "clear":
        parser.add_argument("--namespace", help="only this namespace's entries")
        parser.add_argument("--version", help="only this version of the namespace")
    options = parser.parse_args(argv)
    try:
        if command == "stats":
            stats(options.url, out)
        else:
            clear(options.url, options.namespace, options.version, out)
    except (UsageError, StoreError, sqlite3.Error) as exc:
        # masked already where batche writes the URL; scrubbed again for what others wrote
        sys.stderr.write(f"python -m batche {command}: {scrubbed(str(exc), options.url)}\n")
        return 2 if isinstance(exc, UsageError) else 1
    return 0
