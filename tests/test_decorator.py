"""cache_batch_variable: the behaviour its users rely on, call by call."""

from __future__ import annotations

import threading
from typing import Any

import cachetools
import pytest

from batche import (
    BatchArgumentError,
    BatchDefinitionError,
    BatcheException,
    BatchResultError,
    CacheInfo,
    cache_batch_variable,
)
from batche.stores import LRUStore, SQLiteStore

from .conftest import Harness, Recorder, in_threads

# -- split and merge ---------------------------------------------------------------------


def test_only_misses_reach_the_function_each_distinct_item_once(harness: Harness) -> None:
    rec = Recorder()
    f = harness.decorate(rec)
    assert harness.run(f(["a", "b", "a", "c", "b"])) == ["<a>", "<b>", "<a>", "<c>", "<b>"]
    assert harness.run(f(["d", "a", "d", "e"])) == ["<d>", "<a>", "<d>", "<e>"]
    assert rec.calls == [["a", "b", "c"], ["d", "e"]]


def test_fully_cached_call_and_empty_batch_do_not_call(harness: Harness) -> None:
    rec = Recorder()
    f = harness.decorate(rec)
    harness.run(f(["x", "y"]))
    assert harness.run(f(["y", "x", "y"])) == ["<y>", "<x>", "<y>"]
    assert harness.run(f([])) == []
    assert rec.calls == [["x", "y"]]


def test_cache_info_counts_items(harness: Harness) -> None:
    f = harness.decorate(Recorder(), maxsize=10)
    harness.run(f(["a", "b", "a"]))
    harness.run(f(["a", "c"]))
    assert f.cache_info() == CacheInfo(hits=2, misses=3, maxsize=10, currsize=3)
    f.cache_clear()
    assert f.cache_info() == CacheInfo(hits=0, misses=0, maxsize=10, currsize=0)


def test_cache_clear_empties_the_store(harness: Harness) -> None:
    rec = Recorder()
    f = harness.decorate(rec)
    harness.run(f(["a"]))
    f.cache_clear()
    harness.run(f(["a"]))
    assert rec.calls == [["a"], ["a"]]


def test_cache_clear_of_a_shared_mapping_empties_it_for_every_function() -> None:
    # In memory an entry's key is the item (and the other arguments): functions sharing a
    # mapping share its entries, so clearing one function's entries clears theirs; each
    # keeps its own counts. A SQLite or Redis store clears one namespace and version.
    shared: dict[str, int] = {}
    one, two = Recorder(len), Recorder(len)
    f = cache_batch_variable("items", cache=shared)(lambda items: one(items))
    g = cache_batch_variable("items", cache=shared)(lambda items: two(items))
    f(["a"])
    g(["a", "bb"])  # "a" is a hit: f's entry is g's too
    f.cache_clear()
    assert shared == {}
    assert (g.cache_info().hits, g.cache_info().misses) == (1, 1)
    assert g(["a", "bb"]) == [1, 2]  # computed again, correctly
    assert two.calls == [["bb"], ["a", "bb"]]


def test_cache_clear_of_a_shared_sqlite_store_keeps_the_other_namespaces(tmp_path: Any) -> None:
    store = SQLiteStore(tmp_path / "c.db")
    f = cache_batch_variable("items", cache=store, namespace="f")(lambda items: list(items))
    g = cache_batch_variable("items", cache=store, namespace="g")(lambda items: list(items))
    f(["a"])
    g(["a"])
    f.cache_clear()
    assert len(store) == 1  # g's entry
    store.close()


def test_none_is_a_cached_result(harness: Harness) -> None:
    rec = Recorder(lambda item: None)
    f = harness.decorate(rec)
    assert harness.run(f([1, 2])) == [None, None]
    assert harness.run(f([2, 1])) == [None, None]
    assert rec.calls == [[1, 2]]


def test_other_arguments_are_part_of_the_key() -> None:
    rec = Recorder(lambda item, model: f"{item}@{model}")

    @cache_batch_variable(batch_variable_name="texts")
    def embed(texts: list[str], model: str = "small") -> list[str]:
        return rec(texts, model)

    assert embed(["a"]) == ["a@small"]
    assert embed(["a"], model="large") == ["a@large"]
    # positional, keyword and defaulted spellings of one call share entries
    assert embed(["a"], "small") == ["a@small"]
    assert embed(texts=["a"], model="small") == ["a@small"]
    assert embed(["a"], "large") == ["a@large"]
    assert rec.calls == [["a"], ["a"]]


def test_batch_through_kwargs_and_extra_kwargs_in_key() -> None:
    rec = Recorder(lambda item, opts: f"{item}{opts}")

    @cache_batch_variable("texts")
    def embed(**kwargs: Any) -> list[str]:
        return rec(kwargs["texts"], sorted((k, v) for k, v in kwargs.items() if k != "texts"))

    assert embed(texts=["a"], dim=3) == ["a[('dim', 3)]"]
    assert embed(texts=["a"], dim=3) == ["a[('dim', 3)]"]
    assert embed(texts=["a"], dim=4) == ["a[('dim', 4)]"]
    assert rec.calls == [["a"], ["a"]]
    with pytest.raises(BatchArgumentError, match=r"embed\(\): texts must be a valid argument"):
        embed(dim=3)


def test_ignore_leaves_an_argument_out_of_the_key() -> None:
    rec = Recorder()

    @cache_batch_variable("texts", ignore=("timeout",))
    def embed(texts: list[str], timeout: float = 1.0) -> list[str]:
        return rec(texts)

    embed(["a"], timeout=1.0)
    embed(["a"], timeout=5.0)
    assert rec.calls == [["a"]]


def test_batch_parameter_found_alone() -> None:
    @cache_batch_variable
    def one(items):  # type: ignore[no-untyped-def]
        return [i * 2 for i in items]

    @cache_batch_variable()
    def listy(model: str, texts: list[str]) -> list[str]:
        return [model + t for t in texts]

    assert one([1, 2]) == [2, 4]
    assert listy("m", ["a"]) == ["ma"]


def test_several_batch_parameters_zip_item_by_item() -> None:
    seen: list[tuple[list[int], list[str]]] = []

    @cache_batch_variable(("ids", "texts"))
    def f(ids: list[int], texts: list[str]) -> list[str]:
        seen.append((list(ids), list(texts)))
        return [f"{i}:{t}" for i, t in zip(ids, texts)]

    assert f([1, 2], ["a", "b"]) == ["1:a", "2:b"]
    assert f([2, 3, 1], ["b", "c", "z"]) == ["2:b", "3:c", "1:z"]
    assert seen == [([1, 2], ["a", "b"]), ([3, 1], ["c", "z"])]
    with pytest.raises(BatchArgumentError, match=r"'ids' has 2, 'texts' has 1"):
        f([1, 2], ["a"])
    assert list(f.map([(5, "e"), (1, "a")], chunk_size=1)) == ["5:e", "1:a"]


def test_key_function_for_unhashable_items(harness: Harness) -> None:
    rec = Recorder(lambda item: item["id"] * 10)
    f = harness.decorate(rec, key=lambda item: item["id"])
    assert harness.run(f([{"id": 1}, {"id": 2}, {"id": 1}])) == [10, 20, 10]
    assert harness.run(f([{"id": 2}])) == [20]
    assert rec.calls == [[{"id": 1}, {"id": 2}]]


def test_max_batch_size_chunks_misses_and_stores_each_chunk(harness: Harness) -> None:
    boom = RuntimeError("third chunk fails")
    rec = Recorder()

    def per_item(item: int) -> int:
        if item == 99:
            raise boom
        return item + 1

    rec.per_item = per_item
    f = harness.decorate(rec, max_batch_size=2)
    assert harness.run(f([1, 2, 3, 1, 4, 5])) == [2, 3, 4, 2, 5, 6]
    assert rec.calls == [[1, 2], [3, 4], [5]]
    with pytest.raises(RuntimeError) as caught:
        harness.run(f([6, 7, 8, 9, 99, 10]))
    assert caught.value is boom
    # the finished chunks were stored before the failing one ran
    rec.calls.clear()
    assert harness.run(f([6, 7, 8, 9])) == [7, 8, 9, 10]
    assert rec.calls == []


# -- stores ------------------------------------------------------------------------------


def test_maxsize_evicts_least_recently_used(harness: Harness) -> None:
    rec = Recorder()
    f = harness.decorate(rec, maxsize=2)
    harness.run(f(["a", "b"]))
    harness.run(f(["a"]))  # a is now more recent than b
    harness.run(f(["c"]))  # evicts b
    harness.run(f(["a", "b"]))
    assert rec.calls == [["a", "b"], ["c"], ["b"]]
    assert isinstance(f.cache, LRUStore)
    assert f.cache_info().currsize == 2


def test_maxsize_zero_caches_nothing(harness: Harness) -> None:
    rec = Recorder()
    f = harness.decorate(rec, maxsize=0)
    assert harness.run(f(["a", "a"])) == ["<a>", "<a>"]
    harness.run(f(["a"]))
    assert rec.calls == [["a"], ["a"]]


def test_ttl_uses_a_ttl_cache(harness: Harness) -> None:
    f = harness.decorate(Recorder(), ttl=60, maxsize=5)
    assert isinstance(f.cache, cachetools.TTLCache)
    assert f.cache.maxsize == 5
    unbounded = harness.decorate(Recorder(), ttl=60)
    harness.run(unbounded(list(range(100))))
    assert unbounded.cache_info().currsize == 100


def test_ttl_expiry_recomputes() -> None:
    now = [0.0]
    store: cachetools.TTLCache[Any, Any] = cachetools.TTLCache(
        maxsize=10, ttl=5, timer=lambda: now[0]
    )
    rec = Recorder()
    f = cache_batch_variable("items", cache=store)(lambda items: rec(items))
    f(["a"])
    now[0] = 4.9
    f(["a"])
    now[0] = 5.1
    f(["a"])
    assert rec.calls == [["a"], ["a"]]


def test_cache_passed_in_is_used_and_can_be_shared(harness: Harness) -> None:
    shared: dict[Any, Any] = {}
    rec = Recorder()
    f = harness.decorate(rec, cache=shared)
    g = harness.decorate(rec, cache=shared)
    assert f.cache is shared
    harness.run(f(["a"]))
    harness.run(g(["a", "b"]))
    assert rec.calls == [["a"], ["b"]]
    assert shared == {"a": "<a>", "b": "<b>"}


def test_each_decorated_function_has_its_own_store() -> None:
    f = cache_batch_variable("items")(lambda items: [1 for _ in items])
    g = cache_batch_variable("items")(lambda items: [2 for _ in items])
    assert f(["a"]) == [1]
    assert g(["a"]) == [2]


def test_lfu_cache_from_cachetools() -> None:
    rec = Recorder()
    f = cache_batch_variable("items", cache=cachetools.LFUCache(maxsize=2))(
        lambda items: rec(items)
    )
    f(["a", "b"])
    f(["a"])
    f(["c"])  # evicts b, the least frequently used
    f(["a"])
    assert rec.calls == [["a", "b"], ["c"]]


# -- methods -----------------------------------------------------------------------------


class Embedder:
    def __init__(self, name: str) -> None:
        self.name = name
        self.calls: list[list[str]] = []

    @cache_batch_variable("texts")
    def embed(self, texts: list[str]) -> list[str]:
        self.calls.append(list(texts))
        return [f"{self.name}:{t}" for t in texts]

    @cache_batch_variable("texts", ignore="self")
    def shared(self, texts: list[str]) -> list[str]:
        self.calls.append(list(texts))
        return [f"{self.name}:{t}" for t in texts]

    @classmethod
    @cache_batch_variable("texts")
    def klass(cls, texts: list[str]) -> list[str]:
        return [f"{cls.__name__}:{t}" for t in texts]

    @cache_batch_variable("texts")
    @staticmethod
    def static(texts: list[str]) -> list[str]:
        return [t.upper() for t in texts]

    @cache_batch_variable("texts")
    @classmethod
    def klass_inner(cls, texts: list[str]) -> list[str]:
        return [f"{cls.__name__}!{t}" for t in texts]


def test_methods_are_cached_per_instance() -> None:
    a, b = Embedder("a"), Embedder("b")
    assert a.embed(["x"]) == ["a:x"]
    assert a.embed(["x", "y"]) == ["a:x", "a:y"]
    assert b.embed(["x"]) == ["b:x"]
    assert a.calls == [["x"], ["y"]]
    assert b.calls == [["x"]]
    assert list(a.embed.map(["x", "z"], chunk_size=1)) == ["a:x", "a:z"]
    assert a.embed.cache_info()[:2] == (2, 4)  # counted per function, over instances
    a.embed.invalidate(["x"])
    a.embed(["x"])
    assert a.calls[-1] == ["x"]


def test_ignore_self_shares_across_instances() -> None:
    a, b = Embedder("a"), Embedder("b")
    assert a.shared(["x"]) == ["a:x"]
    assert b.shared(["x"]) == ["a:x"]
    assert b.calls == []


def test_classmethods_and_staticmethods() -> None:
    assert Embedder.klass(["x"]) == ["Embedder:x"]
    assert Embedder("a").klass(["x"]) == ["Embedder:x"]
    assert Embedder.static(["x"]) == ["X"]
    assert Embedder("a").static(["y"]) == ["Y"]
    assert Embedder.klass_inner(["x"]) == ["Embedder!x"]


# -- results of several kinds ---------------------------------------------------------------


def test_tuple_results_come_back_as_lists(harness: Harness) -> None:
    rec = Recorder()
    f = harness.decorate(rec)
    original = f.__wrapped__

    if harness.kind == "sync":
        f = cache_batch_variable(lambda items: tuple(original(items)))
    else:

        async def tupled(items: list[Any]) -> tuple[Any, ...]:
            return tuple(await original(items))

        f = cache_batch_variable(tupled)
    assert harness.run(f(["a"])) == ["<a>"]
    assert harness.run(f(["a", "b"])) == ["<a>", "<b>"]


def test_numpy_results_come_back_as_arrays() -> None:
    np = pytest.importorskip("numpy")
    calls: list[list[str]] = []

    @cache_batch_variable("texts")
    def embed(texts: list[str]) -> Any:
        calls.append(list(texts))
        return np.array([[len(t), 0.5] for t in texts], dtype=np.float32)

    first = embed(["aa", "b"])
    assert isinstance(first, np.ndarray)
    assert first.dtype == np.float32
    np.testing.assert_array_equal(first, [[2, 0.5], [1, 0.5]])
    first[:] = -1  # the caller's array is not the cache's
    every_hit = embed(["b", "aa", "b"])
    assert isinstance(every_hit, np.ndarray)
    assert every_hit.shape == (3, 2)
    np.testing.assert_array_equal(every_hit, [[1, 0.5], [2, 0.5], [1, 0.5]])
    assert every_hit.dtype == np.float32
    empty = embed([])
    assert isinstance(empty, np.ndarray)
    assert empty.shape == (0, 2)
    mixed = embed(["ccc", "aa"])
    np.testing.assert_array_equal(mixed, [[3, 0.5], [2, 0.5]])
    assert calls == [["aa", "b"], ["ccc"]]


def test_numpy_annotation_makes_first_all_hit_call_an_array() -> None:
    np = pytest.importorskip("numpy")
    shared = {"a": np.float64(1.0)}

    @cache_batch_variable("texts", cache=shared)
    def score(texts: list[str]) -> np.ndarray:
        return np.ones(len(texts))

    result = score(["a", "a"])
    assert isinstance(result, np.ndarray)
    np.testing.assert_array_equal(result, [1.0, 1.0])


def test_numpy_batch_is_sliced_for_misses() -> None:
    np = pytest.importorskip("numpy")
    seen: list[Any] = []

    @cache_batch_variable("xs")
    def square(xs: np.ndarray) -> np.ndarray:
        seen.append(xs)
        return xs * xs

    out = square(np.array([1, 2, 3]))
    np.testing.assert_array_equal(out, [1, 4, 9])
    out = square(np.array([3, 4, 1, 4]))
    np.testing.assert_array_equal(out, [9, 16, 1, 16])
    assert isinstance(seen[1], np.ndarray)
    np.testing.assert_array_equal(seen[1], [4])


def test_generator_and_tuple_batches_are_accepted(harness: Harness) -> None:
    f = harness.decorate(Recorder())
    assert harness.run(f(x for x in "ab")) == ["<a>", "<b>"]
    assert harness.run(f(("b", "c"))) == ["<b>", "<c>"]


# -- bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize("batch", ["abc", b"abc", {"a": 1}])
def test_a_string_or_dict_is_not_a_batch(harness: Harness, batch: Any) -> None:
    rec = Recorder()
    f = harness.decorate(rec)
    with pytest.raises(BatchArgumentError, match=r"f\(\): 'items' must be a list of items, got"):
        harness.run(f(batch))
    assert isinstance(BatchArgumentError("x"), TypeError)
    assert rec.calls == []


def test_non_iterable_batch(harness: Harness) -> None:
    f = harness.decorate(Recorder())
    with pytest.raises(BatchArgumentError, match="must be a list of items, got int"):
        harness.run(f(3))


def test_unhashable_item_names_its_type_and_key(harness: Harness) -> None:
    f = harness.decorate(Recorder())
    with pytest.raises(TypeError, match=r"item 1 of 'items' is unhashable \(dict\); pass key="):
        harness.run(f(["a", {"b": 1}]))


def test_unhashable_key_from_key_function(harness: Harness) -> None:
    f = harness.decorate(Recorder(), key=lambda item: [item])
    with pytest.raises(BatchArgumentError, match=r"key= returned an unhashable list for item 0"):
        harness.run(f(["a"]))


def test_unhashable_other_argument_is_named() -> None:
    @cache_batch_variable("texts")
    def embed(texts: list[str], options: dict[str, Any] | None = None) -> list[str]:
        return list(texts)

    with pytest.raises(BatchArgumentError, match=r"argument 'options' is part of the cache key"):
        embed(["a"], options={"x": 1})


def test_wrong_number_of_results_caches_nothing(harness: Harness) -> None:
    def broken(items: list[Any]) -> list[Any]:
        return [f"<{i}>" for i in items][:-1]

    if harness.kind == "sync":
        g = cache_batch_variable(broken)
    else:

        async def abroken(items: list[Any]) -> list[Any]:
            return broken(items)

        g = cache_batch_variable(abroken)
    with pytest.raises(BatchResultError) as caught:
        harness.run(g(["a", "b", "c", "a"]))
    message = str(caught.value)
    assert "returned 2 results for 3 items of 'items'" in message
    assert "same length as the batch" in message
    assert isinstance(caught.value, ValueError)
    assert isinstance(caught.value, BatcheException)
    assert g.cache_info().currsize == 0


def test_non_sequence_result_is_an_error(harness: Harness) -> None:
    if harness.kind == "sync":
        g = cache_batch_variable(lambda items: 42)
    else:

        async def g_(items: list[Any]) -> Any:
            return 42

        g = cache_batch_variable(g_)
    with pytest.raises(
        BatchResultError, match=r"returned int, not a list of 1 results for 'items'"
    ):
        harness.run(g(["a"]))


def test_exception_propagates_unchanged_and_next_call_retries(harness: Harness) -> None:
    failing = [False]
    boom = KeyError("upstream said no")
    rec = Recorder()

    def per_item(item: str) -> str:
        if failing[0]:
            raise boom
        return item * 2 if item == "a" else f"<{item}>"

    rec.per_item = per_item
    f = harness.decorate(rec)
    harness.run(f(["z"]))
    failing[0] = True
    with pytest.raises(KeyError) as caught:
        harness.run(f(["a", "z"]))
    assert caught.value is boom
    assert f.cache_info().currsize == 1
    failing[0] = False
    assert harness.run(f(["a", "z"])) == ["aa", "<z>"]
    assert rec.calls[-1] == ["a"]


def test_missing_batch_parameter_at_decoration_lists_parameters() -> None:
    with pytest.raises(BatchDefinitionError) as caught:

        @cache_batch_variable("txts")
        def embed(texts: list[str], model: str) -> list[str]:
            return texts

    assert "embed(): txts must be a valid argument of the batch function" in str(caught.value)
    assert "texts, model" in str(caught.value)
    assert isinstance(caught.value, BatcheException)
    assert isinstance(caught.value, TypeError)


@pytest.mark.parametrize(
    ("annotation", "ok"),
    [
        ("list[str]", True),
        ("List[str]", True),
        ("Sequence[str]", True),
        ("tuple[str, ...]", True),
        ("Optional[List[str]]", True),
        ("Iterable[str]", True),
        ("str", False),
        ("int", False),
        ("dict[str, int]", False),
        ("Optional[str]", False),
    ],
)
def test_batch_annotation_is_checked(annotation: str, ok: bool) -> None:
    namespace: dict[str, Any] = {}
    exec(  # build the function with the annotation under test
        f"from typing import *\ndef f(items: {annotation}) -> list:\n    return list(items)\n",
        namespace,
    )
    if ok:
        cache_batch_variable("items")(namespace["f"])
    else:
        message = r"f\(\): items annotation must be a list of hashable objects, not"
        with pytest.raises(BatchDefinitionError, match=message):
            cache_batch_variable("items")(namespace["f"])


@pytest.mark.parametrize(
    ("annotation", "ok"),
    [("list", True), ("tuple", True), ("Optional[list]", True), ("int", False), ("str", False)],
)
def test_return_annotation_is_checked(annotation: str, ok: bool) -> None:
    namespace: dict[str, Any] = {}
    exec(
        f"from typing import *\ndef f(items: list) -> {annotation}:\n    return list(items)\n",
        namespace,
    )
    if ok:
        cache_batch_variable("items")(namespace["f"])
    else:
        with pytest.raises(BatchDefinitionError, match="return annotation must be a list"):
            cache_batch_variable("items")(namespace["f"])


def test_string_annotations_that_cannot_be_resolved_do_not_crash() -> None:
    namespace: dict[str, Any] = {}
    exec(
        "from __future__ import annotations\n"
        "def f(items: list[Missing], model: Unknown = 1) -> list[np.ndarray]:\n"
        "    return list(items)\n"
        "def g(items: Optional[str]) -> list:\n    return list(items)\n",
        namespace,
    )
    f = cache_batch_variable("items")(namespace["f"])
    assert f([1]) == [1]
    with pytest.raises(BatchDefinitionError, match="annotation must be a list"):
        cache_batch_variable("items")(namespace["g"])


def test_definition_errors_name_the_function() -> None:
    def two(a: list[str], b: list[str]) -> list[str]:
        return a

    with pytest.raises(BatchDefinitionError, match=r"two\(\): cannot tell which parameter"):
        cache_batch_variable(two)
    with pytest.raises(BatchDefinitionError, match=r"ignore= names 'c', which is not a parameter"):
        cache_batch_variable("a", ignore="c")(two)
    with pytest.raises(BatchDefinitionError, match=r"ignore= names the batch parameter 'a'"):
        cache_batch_variable("a", ignore="a")(two)

    def star(*items: str) -> list[str]:
        return list(items)

    with pytest.raises(BatchDefinitionError, match=r"cannot be \*items"):
        cache_batch_variable("items")(star)


def test_wrong_call_is_a_clear_error(harness: Harness) -> None:
    f = harness.decorate(Recorder())
    with pytest.raises(BatchArgumentError, match=r"f\(\): items must be a valid argument") as e:
        harness.run(f())
    assert "(missing a required argument: 'items')" in str(e.value)
    with pytest.raises(TypeError, match=r"f\(\): got an unexpected keyword argument 'x'"):
        harness.run(f(["a"], x=1))


# -- threads -------------------------------------------------------------------------------


@pytest.mark.parametrize("options", [{}, {"maxsize": 50}, {"ttl": 60, "maxsize": 50}])
def test_many_threads_get_correct_results(options: dict[str, Any]) -> None:
    f = cache_batch_variable("items", **options)(lambda items: [i * 3 for i in items])

    def worker(seed: int) -> None:
        for round_ in range(300):
            batch = [(seed * 7 + round_ * 13 + j) % 120 for j in range(10)]
            assert f(batch) == [i * 3 for i in batch]

    in_threads(8, worker)
    info = f.cache_info()
    assert info.hits + info.misses == 8 * 300 * 10
    if "maxsize" in options:
        assert info.currsize <= 50


def test_lock_is_not_held_while_the_function_runs() -> None:
    entered = threading.Event()
    release = threading.Event()

    def slow(items: list[str]) -> list[str]:
        if "slow" in items:
            entered.set()
            release.wait(timeout=30)
        return list(items)

    f = cache_batch_variable("items", maxsize=10)(slow)
    f(["fast"])
    t = threading.Thread(target=f, args=(["slow"],))
    t.start()
    assert entered.wait(timeout=30)
    # another thread is inside the function: hits and other misses still go through
    assert f(["fast"]) == ["fast"]
    assert f(["other"]) == ["other"]
    release.set()
    t.join()


@pytest.mark.parametrize("where", ["memory", "sqlite"])
def test_counts_stay_exact_and_bounded_over_many_calls(where: str, tmp_path: Any) -> None:
    from batche.stores import SQLiteStore

    store: Any = {} if where == "memory" else SQLiteStore(tmp_path / "c.db")
    f = cache_batch_variable("items", cache=store)(lambda items: [i + 1 for i in items])
    f([1, 2])
    for _ in range(5_000):
        assert f([1, 2, 1]) == [2, 3, 2]
    assert len(f._core._hit_log) <= 4097  # folded as it goes, not kept per call
    assert f.cache_info()[:2] == (15_000, 2)
