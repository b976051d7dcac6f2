"""dynamically with isolate=, cost=, max_batch_cost= and rate_limit=, in threads and asyncio."""

from __future__ import annotations

import asyncio
import math
from typing import Any

import pytest

from batche import (
    BatchArgumentError,
    BatchItemsError,
    cache_batch_variable,
    dynamically,
)

from ._batcher_helpers import Blocker, Watch, start
from .test_isolation import ItemError
from .test_ratelimit import Recorded


class DownError(Exception):
    """Not isolated (like a 500)."""


def words(text: str) -> int:
    return len(text.split())


def upper_unless_bad(calls: list[list[str]]) -> Any:
    """An async batch function that fails a batch holding "bad"; records its batches."""

    async def body(items: list[str]) -> list[str]:
        calls.append(list(items))
        if "bad" in items:
            raise ItemError("bad")
        return [i.upper() for i in items]

    return body


def test_only_the_caller_whose_request_fails_alone_gets_the_exception() -> None:
    body = Blocker()
    batches = body.batches

    def failing(items: list[str]) -> list[str]:
        out = body(items)
        if "bad" in items:
            raise ItemError("bad")
        return out

    f = dynamically(batch_size=64, timeout_ms=0, isolate=ItemError)(failing)
    watch = Watch(f._driver.queue)
    first, _ = start(f, ["first"])
    assert body.entered.wait(timeout=30)  # the next batch gathers every request below
    requests = [[f"a{n}", f"b{n}"] for n in range(8)]
    requests[5] = ["c5", "bad"]
    callers = [start(f, items) for items in requests]
    watch.wait_for(1 + 16)
    body.release.set()
    first.join()
    for thread, _ in callers:
        thread.join()
    for n, (_, outcome) in enumerate(callers):
        if n == 5:
            assert outcome["error"] == ItemError("bad")
        else:
            assert outcome["value"] == [f"<a{n}>", f"<b{n}>"]
    assert sorted(batches[1]) == sorted(x for r in requests for x in r)  # one batch first
    assert len(batches) - 1 <= 2 * math.ceil(math.log2(8)) + 1
    assert f.stats.items == 1 + 16  # each item counted once, in the call that settled it
    f.close()


def test_asyncio_callers_and_one() -> None:
    calls: list[list[str]] = []
    f = dynamically(batch_size=64, timeout_ms=0, isolate=ItemError)(upper_unless_bad(calls))

    async def main() -> list[Any]:
        asks: list[Any] = [f([f"a{n}"]) for n in range(6)]
        asks += [f.one("bad"), f(["b", "bad", "c"]), f.one("z")]
        return await asyncio.gather(*asks, return_exceptions=True)

    out = asyncio.run(main())
    assert out[:6] == [[f"A{n}"] for n in range(6)]
    assert out[6:] == [ItemError("bad"), ItemError("bad"), "Z"]
    assert ["bad"] in calls  # halved down to the request that fails alone
    f.close()


def test_an_error_not_isolated_reaches_every_caller_not_answered_yet() -> None:
    @dynamically(batch_size=64, timeout_ms=0, isolate=ItemError)
    async def f(items: list[str]) -> list[str]:
        if "bad" in items:
            raise ItemError("bad")
        if "down" in items:
            raise DownError("503")
        return [i.upper() for i in items]

    async def main() -> list[Any]:
        asks = [f(["a"]), f(["bad"]), f(["b"]), f(["down"]), f(["c"])]
        return await asyncio.gather(*asks, return_exceptions=True)

    out = asyncio.run(main())
    # halves: [a, bad, b] then [down, c]; the first splits down to "bad"; the second
    # fails whole with an error that is not isolated, for both its callers
    assert out[:3] == [["A"], ItemError("bad"), ["B"]]
    assert isinstance(out[3], DownError)
    assert type(out[4]) is DownError  # a copy of its own
    assert out[4].args == out[3].args
    f.close()


def test_batches_close_before_a_request_that_would_go_past_the_cost() -> None:
    calls: list[list[str]] = []

    @dynamically(batch_size=10, timeout_ms=0, cost=words, max_batch_cost=6)
    async def f(texts: list[str]) -> list[int]:
        calls.append(list(texts))
        return [words(t) for t in texts]

    async def main() -> list[Any]:
        asks = [f(["a b", "c"]), f(["d e f"]), f(["g h i j k l m n"]), f(["o"]), f(["p q"])]
        return await asyncio.gather(*asks)

    out = asyncio.run(main())
    assert out == [[2, 1], [3], [8], [1], [2]]
    # 3, then 3 more = 6; the 8-word request over the budget alone; then 1 + 2
    assert calls == [["a b", "c", "d e f"], ["g h i j k l m n"], ["o", "p q"]]
    f.close()


def test_a_full_batch_by_cost_goes_without_waiting_for_the_timeout() -> None:
    body = Blocker()
    f = dynamically(batch_size=100, timeout_ms=60_000, cost=len, max_batch_cost=4)(body)
    caller, outcome = start(f, ["ab", "cd"])  # cost 4: full, although 2 items of 100
    assert body.entered.wait(timeout=30)  # it went, long before its timeout of a minute
    body.release.set()
    caller.join()
    assert outcome["value"] == ["<ab>", "<cd>"]
    f.close()


def test_each_batch_is_paced_by_its_cost() -> None:
    limit = Recorded(requests=2, cost=8, per=0.2)
    calls: list[int] = []

    @dynamically(batch_size=3, timeout_ms=0, cost=words, rate_limit=limit)
    async def f(texts: list[str]) -> list[int]:
        assert limit.local_late()
        calls.append(sum(map(words, texts)))
        return [words(t) for t in texts]

    async def main() -> list[Any]:
        return await asyncio.gather(*(f([f"w{n} x", f"y{n}"]) for n in range(6)))

    assert asyncio.run(main()) == [[2, 1]] * 6
    assert [cost for _, cost in limit.stamps] == calls
    assert sum(calls) == 18
    limit.check()
    f.close()


@pytest.mark.parametrize(("bad", "fault"), [(-1, "a negative number"), (True, "a bool")])
def test_a_bad_cost_is_named_for_the_caller(bad: Any, fault: str) -> None:
    f = dynamically(batch_size=4, timeout_ms=0, cost=lambda text: bad if text == "x" else 1)(
        lambda texts: texts
    )
    with pytest.raises(BatchArgumentError) as caught:
        f(["a", "x"])
    assert str(caught.value).endswith(
        f"<lambda>(): cost= returned {bad!r} for item 1 of 'texts' ('x'); it must return a "
        f"finite number >= 0, not {fault}"
    )
    assert f(["a"]) == ["a"]
    f.close()


def test_cache_over_batcher_isolates_down_to_the_item() -> None:
    calls: list[list[str]] = []
    batched = dynamically(batch_size=64, timeout_ms=0, isolate=ItemError)(upper_unless_bad(calls))
    embed = cache_batch_variable("items", isolate=ItemError)(batched)

    async def main() -> list[Any]:
        asks = [embed(["a", "b", "bad", "c"]), embed(["d", "e"]), embed(["bad", "f"])]
        return await asyncio.gather(*asks, return_exceptions=True)

    first, second, third = asyncio.run(main())
    assert isinstance(first, BatchItemsError)
    assert first.results == ["A", "B", ItemError("bad"), "C"]
    assert second == ["D", "E"]
    assert isinstance(third, BatchItemsError)
    assert third.results == [ItemError("bad"), "F"]
    assert sum(call.count("bad") for call in calls) >= 1
    assert embed.cache_info().currsize == 6  # every good item, nothing of "bad"
    batched.close()


def test_with_isolate_a_request_is_never_cut_in_two() -> None:
    calls: list[list[int]] = []

    @dynamically(batch_size=4, timeout_ms=0, isolate=ItemError)
    async def f(items: list[int]) -> list[int]:
        calls.append(list(items))
        return items

    async def main() -> list[Any]:
        return await asyncio.gather(f([1, 2, 3]), f([4, 5]), f([6]), f([7, 8, 9, 10, 11]))

    assert asyncio.run(main()) == [[1, 2, 3], [4, 5], [6], [7, 8, 9, 10, 11]]
    # [4, 5] waits for the next batch rather than leave 5 for another; a request
    # larger than a batch is still cut
    assert calls == [[1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11]]
    f.close()


def test_a_batched_method_isolates_on_its_instance() -> None:
    class Embedder:
        def __init__(self, prefix: str) -> None:
            self.prefix = prefix

        @dynamically(batch_size=8, timeout_ms=0, isolate=ItemError, cost=len, max_batch_cost=50)
        def embed(self, texts: list[str]) -> list[str]:
            if "bad" in texts:
                raise ItemError("bad")
            return [self.prefix + t for t in texts]

    embedder = Embedder("e:")
    assert embedder.embed(["a", "b"]) == ["e:a", "e:b"]
    with pytest.raises(ItemError):
        embedder.embed(["bad"])
    embedder.embed.close()
