"""``python -m batche stats URL`` and ``python -m batche clear URL``: look into a store."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlparse

from .stores._base import StoreError

URL_HELP = (
    "sqlite:///relative/path.db, sqlite:////absolute/path.db (SQLAlchemy's convention) "
    "or redis://host:port/db"
)


class UsageError(Exception):
    """A bad URL or option: the message is for the user."""


def open_store(url: str) -> Any:
    """The store a URL names; an existing one only (stats and clear create nothing)."""
    if url.startswith("sqlite:///"):
        path = Path(url[len("sqlite:///") :])
        if not str(path) or str(path) == ".":
            raise UsageError(f"{url!r} names no file; expected {URL_HELP}")
        if not path.is_file():
            raise UsageError(f"no SQLite store at {str(path)!r} (from {url!r})")
        from .stores._sqlite import SQLiteStore

        return SQLiteStore(path, on_store_error="raise")
    scheme = urlparse(url).scheme
    if scheme in ("redis", "rediss", "unix"):
        try:
            from .stores._redis import RedisStore
        except ImportError as exc:
            raise UsageError(str(exc)) from None
        store = RedisStore(url, on_store_error="raise", timeout=3.0)
        try:
            store.client.ping()
        except Exception as exc:  # noqa: BLE001 - any failure to reach it is reported
            raise UsageError(f"cannot reach the Redis server at {url!r}: {exc}") from None
        return store
    raise UsageError(f"{url!r} is not a store URL; expected {URL_HELP}")


def stats(url: str, out: TextIO) -> None:
    store = open_store(url)
    figures = store.stats()
    out.write(f"{url}\n  entries: {figures['entries']:,}\n  bytes:   {figures['bytes']:,}\n")
    if figures["groups"]:
        out.write("  namespace:version                        entries\n")
        for group, count in sorted(figures["groups"].items()):
            out.write(f"  {group:<40} {count:>7,}\n")


def clear(url: str, namespace: str | None, version: str | None, out: TextIO) -> None:
    if version is not None and namespace is None:
        raise UsageError("--version needs --namespace (versions belong to a namespace)")
    store = open_store(url)
    before = len(store)
    if namespace is None:
        store.clear()
    else:
        store.clear(f"{namespace}:" if version is None else f"{namespace}:{version}:")
    out.write(f"{url}: removed {before - len(store):,} entries\n")


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
    except (UsageError, StoreError) as exc:
        sys.stderr.write(f"python -m batche {command}: {exc}\n")
        return 2 if isinstance(exc, UsageError) else 1
    return 0
