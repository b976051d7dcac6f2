"""What a call returns: arrays stay arrays on every store and on a warm start; sets are refused."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from batche import BatchResultError, cache_batch_variable

from .conftest import Harness, Stores

ROOT = str(Path(__file__).resolve().parent.parent)


def vectors(texts: list[str]) -> Any:  # no annotations: nothing says it returns arrays
    return np.asarray([[len(t), 0.5] for t in texts], dtype=np.float32)


def scores(texts: list[str]) -> Any:
    return np.asarray([len(t) for t in texts], dtype=np.float16)


def list_of_arrays(texts: list[str]) -> Any:
    return [np.full(2, len(t), dtype=np.int8) for t in texts]


def cached(body: Any, store: Any, calls: list[list[str]]) -> Any:
    """``body`` cached in ``store`` under one namespace, recording the batches it computes."""

    def counted(texts: list[str]) -> Any:
        calls.append(list(texts))
        return body(texts)

    counted.__qualname__ = body.__name__  # the namespace: the same in every process
    return cache_batch_variable("texts", cache=store)(counted)


def same_answer(got: Any, expected: Any, row_shape: tuple[int, ...] = ()) -> None:
    """``got`` is ``expected``: same type, dtype, shape and values (an empty array has
    the shape of the rows, ``row_shape``, which the function cannot tell without rows)."""
    assert type(got) is type(expected)
    if isinstance(expected, np.ndarray):
        shape = expected.shape if len(expected) else (0, *row_shape)
        assert (got.dtype, got.shape) == (expected.dtype, shape)
        np.testing.assert_array_equal(got, expected.reshape(shape))
    else:
        assert len(got) == len(expected)
        for row, want in zip(got, expected):
            same_answer(row, want)


@pytest.mark.parametrize("body", [vectors, scores, list_of_arrays])
def test_every_store_answers_as_the_function_also_on_a_warm_start(
    stores: Stores, body: Any
) -> None:
    """Every call answers what the plain function would, whatever the store, and a new
    process that finds every item in SQLite or Redis answers the same (arrays stacked)."""
    calls: list[list[str]] = []
    first = cached(body, stores.new(), calls)
    row_shape = np.shape(body(["a"])[0])
    for batch in [["a", "bb"], ["bb", "ccc", "a"], ["a", "a"], []]:
        same_answer(first(batch), body(batch), row_shape)
    if stores.kind == "memory":
        return  # a dict dies with its process: no warm start
    warm = cached(body, stores.new(), calls)  # what another process would make
    computed = len(calls)
    for batch in [["ccc", "a", "bb"], [], ["a"]]:
        same_answer(warm(batch), body(batch), row_shape)
    assert len(calls) == computed  # every item was a hit


WARM_SCRIPT = """
import sys
sys.path.insert(0, {root!r})
import numpy as np
from batche import cache_batch_variable
from batche.stores import SQLiteStore

calls = []

@cache_batch_variable("texts", cache=SQLiteStore({path!r}), namespace="vectors")
def vectors(texts):
    calls.append(list(texts))
    return np.asarray([[len(t), 0.5] for t in texts], dtype=np.float32)

out = vectors({batch!r})
print(type(out).__name__, out.dtype, out.shape, out.tolist(), calls)
"""


def test_a_new_process_stacks_what_it_reads_from_a_sqlite_file(tmp_path: Path) -> None:
    path = str(tmp_path / "warm.db")
    outputs = []
    for batch in (["a", "bb"], ["bb", "a", "bb"]):  # two processes, one after the other
        script = WARM_SCRIPT.format(root=ROOT, path=path, batch=batch)
        done = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
        )
        outputs.append(done.stdout.strip())
    assert outputs == [
        "ndarray float32 (2, 2) [[1.0, 0.5], [2.0, 0.5]] [['a', 'bb']]",
        "ndarray float32 (3, 2) [[2.0, 0.5], [1.0, 0.5], [2.0, 0.5]] []",  # all hits
    ]


# -- results that are not one per item ---------------------------------------------------


@pytest.mark.parametrize("result", [{"x", "y"}, frozenset({"x", "y"})])
def test_a_set_of_results_is_refused(harness: Harness, result: Any) -> None:
    def body(items: list[Any]) -> Any:
        return result

    if harness.kind == "sync":
        f = cache_batch_variable(body)
    else:

        async def abody(items: list[Any]) -> Any:
            return result

        f = cache_batch_variable(abody)
    with pytest.raises(BatchResultError) as caught:
        harness.run(f(["a", "b"]))
    message = str(caught.value)
    assert f"body() returned {type(result).__name__}, not a list of 2 results" in message
    assert "for 'items'; a set has no order to match the items by" in message
    assert f.cache_info().currsize == 0


def test_a_dicts_keys_and_values_keep_their_order_and_are_results() -> None:
    @cache_batch_variable
    def keys(items: list[str]) -> Any:
        return {f"<{i}>": None for i in items}.keys()

    assert keys(["a", "b"]) == ["<a>", "<b>"]
