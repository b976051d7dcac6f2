"""Store URLs shown without their password (no optional dependency: any module may use it)."""

from __future__ import annotations

from urllib.parse import parse_qs, parse_qsl, unquote, urlencode, urlsplit

__all__ = ["database_fault", "masked", "secrets_of"]


def masked(url: str) -> str:
    """``url`` with its password shown as ``***``, as SQLAlchemy shows it.

    ``redis://user:pass@host/0`` -> ``redis://user:***@host/0``; a ``password=`` in the
    query is masked too. The rest is left exactly as written.
    """
    parts = urlsplit(url)
    userinfo, at, host = parts.netloc.rpartition("@")
    if at and ":" in userinfo:
        start = url.index(parts.netloc)
        hidden = f"{userinfo.partition(':')[0]}:***@{host}"
        url = url[:start] + hidden + url[start + len(parts.netloc) :]
    if "password" in parts.query:
        head, _, rest = url.partition("?")
        query, hash_mark, fragment = rest.partition("#")
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode([(k, "***" if k == "password" else v) for k, v in pairs], safe="*")
        url = f"{head}?{query}{hash_mark}{fragment}"
    return url


def secrets_of(url: str) -> tuple[str, ...]:
    """The passwords ``url`` holds, as written and decoded (never to show in a message)."""
    parts = urlsplit(url)
    found = [parts.password or ""]
    found += [v for k, v in parse_qsl(parts.query, keep_blank_values=True) if k == "password"]
    return tuple({s for p in found if p for s in (p, unquote(p))})


def database_fault(url: str) -> str | None:
    """What is wrong with the database number a ``redis://`` or ``rediss://`` URL's path
    gives (``/abc``, ``/0/1``), or None (no path, ``/``, or a number; another scheme).

    redis-py takes a path that is not a number as database 0, without a word: a typo
    would then read and write another database than the one meant.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss") or "db" in parse_qs(parts.query):
        return None  # unix:// takes ?db=, which redis-py checks itself
    path = unquote(parts.path)
    if path in ("", "/") or (path[1:].isascii() and path[1:].isdigit()):
        return None
    return f"the database must be a number, as in redis://host:6379/0, got {path[1:]!r}"
