"""What a decorated function knows: its default namespace (shared by its processes), its store."""

from __future__ import annotations

import functools
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import cachetools
import pytest

from batche import BatchDefinitionError, cache_batch_variable
from batche.stores import LRUStore, MemoryStore, SQLiteStore

from .conftest import Stores

SPAWN_SCRIPT = '''
import multiprocessing
import os
from batche import cache_batch_variable
from batche.stores import SQLiteStore

calls = []


@cache_batch_variable("texts", cache=SQLiteStore(os.environ["BATCHE_TEST_DB"]))
def embed(texts):
    calls.append(list(texts))
    return [t.upper() for t in texts]


def work(texts):
    """In a spawn worker, where this module is __mp_main__."""
    return __name__, embed(texts), calls, embed._core.encoder.namespace


if __name__ == "__main__":
    print(__name__, embed(["a", "b"]), calls, embed._core.encoder.namespace)
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        for result in pool.map(work, [["a", "b", "c"], ["b", "a"]]):
            print(*result)
'''


def test_spawn_workers_share_the_parents_entries(tmp_path: Path) -> None:
    script = tmp_path / "spawned.py"
    script.write_text(SPAWN_SCRIPT)
    env = {**os.environ, "BATCHE_TEST_DB": str(tmp_path / "shared.db")}
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120,
        check=True, env=env, cwd=tmp_path,
    )  # fmt: skip
    lines = done.stdout.strip().splitlines()
    assert lines[0] == "__main__ ['A', 'B'] [['a', 'b']] __main__.embed"
    # the worker imports the script as __mp_main__, and reads what the parent wrote
    assert lines[1:] == [
        "__mp_main__ ['A', 'B', 'C'] [['c']] __main__.embed",
        "__mp_main__ ['B', 'A'] [['c']] __main__.embed",  # its calls so far: no new one
    ]


def score(prefix: str, texts: list[str], dims: int = 2) -> list[str]:
    return [f"{prefix}{t}{dims}" for t in texts]


def test_partials_have_their_functions_namespace_and_their_own_entries(tmp_path: Path) -> None:
    path = tmp_path / "partials.db"
    hash_ = cache_batch_variable("texts", cache=SQLiteStore(path))(functools.partial(score, "#"))
    at = cache_batch_variable("texts", cache=SQLiteStore(path))(functools.partial(score, "@"))
    assert hash_._core.encoder.namespace.startswith(f"{__name__}.score/")
    assert hash_(["a"]) == ["#a2"]
    assert at(["a"]) == ["@a2"]  # another bound argument: other entries
    again = cache_batch_variable("texts", cache=SQLiteStore(path))(functools.partial(score, "#"))
    assert again(["a"]) == ["#a2"]
    assert again.cache_info().misses == 0  # the same partial, as another process makes it

    with pytest.raises(BatchDefinitionError, match=r"score\(\): a positional argument the partial"):
        cache_batch_variable("texts", cache=SQLiteStore(path))(functools.partial(score, object()))
    named = cache_batch_variable("texts", cache=SQLiteStore(path), namespace="mine")(
        functools.partial(score, object())
    )
    assert len(named(["a"])) == 1


@pytest.mark.parametrize(
    "make",
    [dict, lambda: LRUStore(3), lambda: cachetools.TTLCache(3, 60), lambda: MemoryStore({})],
    ids=["dict", "LRUStore", "TTLCache", "MemoryStore"],
)
def test_the_cache_is_the_very_object_passed(make: Any) -> None:
    store = make()
    f = cache_batch_variable("texts", cache=store)(lambda texts: list(texts))
    assert f.cache is store
    assert f(["a"]) == ["a"]
    assert f.cache_info().currsize == 1


def test_the_cache_is_the_very_store_passed(stores: Stores) -> None:
    store = stores.new()
    f = cache_batch_variable("texts", cache=store)(lambda texts: list(texts))
    assert f.cache is store
