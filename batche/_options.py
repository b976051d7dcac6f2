"""The checks of ``cache_batch_variable``'s options, at decoration time (and ``map``'s).

Each check turns what the user passed into what ``_Core`` takes, or raises an error that
names the option and the fault.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, MutableMapping, Sequence
from typing import Any

from ._checks import MAX_SECONDS_TEXT, int_at_least, number_above, seconds
from ._errors import BatchArgumentError, BatchDefinitionError
from .stores._base import Store
from .stores._memory import LRUStore, MemoryStore


def check_names(names: Any) -> tuple[str, ...] | None:
    """``batch_variable_name`` as a tuple of names (None: guessed from the signature)."""
    if names is None:
        return None
    if isinstance(names, str) and names:
        return (names,)
    if isinstance(names, Sequence) and names and all(isinstance(n, str) and n for n in names):
        return tuple(names)
    raise BatchDefinitionError(
        "cache_batch_variable(): batch_variable_name must be a parameter name or a tuple of "
        f"names, got {names!r}"
    )


def check_ignore(ignore: Any) -> tuple[str, ...]:
    """``ignore`` as a tuple of names."""
    if isinstance(ignore, str):
        return (ignore,)
    try:
        names = tuple(ignore)
    except TypeError:
        names = None
    if names is None or not all(isinstance(n, str) for n in names):
        raise BatchDefinitionError(
            f"cache_batch_variable(): ignore must be a name or names of parameters, got {ignore!r}"
        )
    return names


def check_store(
    maxsize: Any, cache: Any, ttl: Any
) -> MutableMapping[Hashable, Any] | MemoryStore | Store | None:
    """The store ``maxsize``, ``cache`` and ``ttl`` describe (None: a new dict).

    A store passed with ``cache=`` is used as it is: ``embed.cache`` is that object.
    """
    if maxsize is not None and not int_at_least(maxsize, 0):
        raise BatchDefinitionError(
            f"cache_batch_variable(): maxsize must be None or an int >= 0, got {maxsize!r}"
        )
    if ttl is not None and not number_above(ttl, 0):
        raise BatchDefinitionError(
            f"cache_batch_variable(): ttl must be a number of seconds > 0, got {ttl!r}"
        )
    if cache is not None:
        if maxsize is not None or ttl is not None:
            raise BatchDefinitionError(
                "cache_batch_variable(): pass either cache= or maxsize=/ttl=, not both; "
                "bound the cache you pass instead"
            )
        if not isinstance(cache, (MutableMapping, MemoryStore, Store)):
            raise BatchDefinitionError(
                f"cache_batch_variable(): cache must be a MutableMapping (dict, cachetools "
                f"cache) or a store (SQLiteStore, RedisStore), got {type(cache).__name__}"
            )
        return cache
    if ttl is not None:
        from cachetools import TTLCache

        return TTLCache(maxsize=math.inf if maxsize is None else maxsize, ttl=ttl)
    if maxsize is not None:
        return LRUStore(maxsize)
    return None


def check_remote_options(
    cache: Any, namespace: Any, version: Any, local_maxsize: Any, lock: Any, lock_timeout: Any
) -> dict[str, Any]:
    """The options that only a store outside the process takes."""
    remote = cache is not None and not isinstance(cache, (MutableMapping, MemoryStore))
    if not isinstance(lock, bool):  # lock="no" would be true: refused, as typed= is
        raise BatchDefinitionError(f"cache_batch_variable(): lock must be a bool, got {lock!r}")
    given = [
        name
        for name, value, default in (
            ("namespace", namespace, None),
            ("version", version, 1),
            ("local_maxsize", local_maxsize, None),
            ("lock", lock, False),
        )
        if value != default
    ]
    if given and not remote:
        names = given[0] if len(given) == 1 else f"{', '.join(given[:-1])} and {given[-1]}"
        verb = "applies" if len(given) == 1 else "apply"
        raise BatchDefinitionError(
            f"cache_batch_variable(): {names} {verb} to a store outside the process "
            "(cache=SQLiteStore(...) or RedisStore(...)), not to an in-memory cache"
        )
    if namespace is not None and (not isinstance(namespace, str) or not namespace):
        raise BatchDefinitionError(
            f"cache_batch_variable(): namespace must be a non-empty str, got {namespace!r}"
        )
    if isinstance(version, bool) or not isinstance(version, (str, int)):
        raise BatchDefinitionError(
            f"cache_batch_variable(): version must be a str or an int, got {version!r}"
        )
    if local_maxsize is not None and not int_at_least(local_maxsize, 1):
        raise BatchDefinitionError(
            f"cache_batch_variable(): local_maxsize must be None or an int >= 1, got "
            f"{local_maxsize!r}"
        )
    if lock and not callable(getattr(cache, "lease_many", None)):
        raise BatchDefinitionError(
            f"cache_batch_variable(): lock=True needs a store that leases keys across "
            f"processes (RedisStore); {type(cache).__name__} does not"
        )
    if not seconds(lock_timeout):  # a lease's PX, and a waiter's wait, must be finite
        raise BatchDefinitionError(
            f"cache_batch_variable(): lock_timeout must be a number of seconds > 0, got "
            f"{lock_timeout!r} {MAX_SECONDS_TEXT}"
        )
    if not remote:
        return {}
    return {
        "namespace": namespace,
        "version": str(version),
        "local_maxsize": local_maxsize,
        "lock_timeout": float(lock_timeout) if lock else None,
    }


def check_key_and_batch_size(key: Any, max_batch_size: Any, typed: Any = False) -> None:
    """``key`` is None or callable; ``max_batch_size`` is None or an int >= 1; ``typed`` a bool."""
    if key is not None and not callable(key):
        raise BatchDefinitionError(f"cache_batch_variable(): key must be callable, got {key!r}")
    if not isinstance(typed, bool):
        raise BatchDefinitionError(f"cache_batch_variable(): typed must be a bool, got {typed!r}")
    if max_batch_size is not None and not int_at_least(max_batch_size, 1):
        raise BatchDefinitionError(
            f"cache_batch_variable(): max_batch_size must be None or an int >= 1, got "
            f"{max_batch_size!r}"
        )


def check_chunk_size(fname: str, chunk_size: Any) -> None:
    """``map``'s ``chunk_size`` is an int >= 1 (checked at the call: an argument error)."""
    if not int_at_least(chunk_size, 1):
        raise BatchArgumentError(f"{fname}: chunk_size must be an int >= 1, got {chunk_size!r}")
