"""rate_limit=: every call of the function waits for the budget; retries are a wrapper's job."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import tenacity

from batche import RateLimit, cache_batch_variable

from .conftest import in_threads
from .test_ratelimit import Recorded
from .test_slidinglog import assert_within_budget


class BadItemError(Exception):
    pass


class TransientError(Exception):
    """A failure worth retrying (a 429, a timeout)."""


def words(text: str) -> int:
    return len(text.split())


def test_each_chunk_and_each_half_is_paced_by_its_cost() -> None:
    limit = Recorded(requests=3, cost=10, per=0.2)
    sent: list[tuple[list[str], int]] = []

    @cache_batch_variable(
        "texts", cost=words, max_batch_cost=6, rate_limit=limit, isolate=BadItemError,
        return_exceptions=True,
    )  # fmt: skip
    def embed(texts: list[str]) -> list[int]:
        assert limit.local_late()  # never before the slot the limiter gave this call
        sent.append((list(texts), sum(map(words, texts))))
        if "bad" in texts:
            raise BadItemError("bad")
        return [len(t) for t in texts]

    texts = ["a b", "c d", "e", "bad", "f g h", "i j k l m n o p", "q"]
    out = embed(texts)
    assert isinstance(out[3], BadItemError)
    assert out[:3] == [3, 3, 1]
    assert [cost for _, cost in sent] == [cost for _, cost in limit.stamps]  # one slot a call
    assert sent[0] == (["a b", "c d", "e", "bad"], 6)  # the first chunk, then its halves
    assert ["i j k l m n o p"] in [t for t, _ in sent]  # over the budget: alone
    limit.check()
    embed(texts[:3])  # hits: no call, no slot
    assert len(limit.stamps) == len(sent)


def test_threads_and_two_functions_share_one_budget() -> None:
    limit = Recorded(requests=4, per=0.2)  # requests only: no cost= needed

    @cache_batch_variable("items", max_batch_size=3, rate_limit=limit)
    def double(items: list[int]) -> list[int]:
        assert limit.local_late()
        return [i * 2 for i in items]

    @cache_batch_variable("items", rate_limit=limit)
    def triple(items: list[int]) -> list[int]:
        assert limit.local_late()
        return [i * 3 for i in items]

    def work(n: int) -> None:
        batch = list(range(n * 7, n * 7 + 7))
        assert double(batch) == [i * 2 for i in batch]
        assert triple(batch) == [i * 3 for i in batch]

    in_threads(4, work)
    assert len(limit.stamps) == 4 * 3 + 4  # 3 chunks of double and 1 call of triple each
    assert {cost for _, cost in limit.stamps} == {0}
    limit.check()


@pytest.mark.redis
def test_two_limits_on_one_redis_budget_pace_two_functions_together(redis_url: str) -> None:
    # Two RateLimit objects with the same URL, numbers and name: what two processes hold.
    first = Recorded(requests=3, per=0.3, redis=redis_url, name="embeddings")
    second = Recorded(requests=3, per=0.3, redis=redis_url, name="embeddings")

    @cache_batch_variable("items", rate_limit=first)
    def double(items: list[int]) -> list[int]:
        return [i * 2 for i in items]

    @cache_batch_variable("items", rate_limit=second)
    def triple(items: list[int]) -> list[int]:
        return [i * 3 for i in items]

    def work(n: int) -> None:
        for k in range(3):
            (double if n % 2 else triple)([n * 10 + k])

    in_threads(4, work)
    stamps = first.stamps + second.stamps
    assert len(stamps) == 12
    assert_within_budget(stamps, 3, None, 300_000)  # slots on the Redis server's clock
    first.close()
    second.close()


def test_asyncio_callers_are_paced() -> None:
    limit = Recorded(requests=2, cost=6, per=0.2)

    @cache_batch_variable("texts", cost=words, max_batch_size=2, rate_limit=limit)
    async def embed(texts: list[str]) -> list[int]:
        assert limit.local_late()
        return [len(t) for t in texts]

    async def main() -> list[list[int]]:
        batches = [[f"t{n} x", f"u{n}", f"v{n} y z"] for n in range(4)]
        return await asyncio.gather(*(embed(b) for b in batches))

    out = asyncio.run(main())
    assert out[0] == [4, 2, 6]
    assert [cost for _, cost in limit.stamps] == [3] * 8  # ["t x", "u"], then ["v y z"]
    limit.check()


def test_a_cost_budget_without_cost_fails_at_decoration() -> None:
    from batche import BatchDefinitionError

    with pytest.raises(BatchDefinitionError, match=r"has a cost budget; pass cost="):
        cache_batch_variable("texts", rate_limit=RateLimit(cost=1_000))


# -- retries: a wrapper around the cached function --------------------------------------


def flaky(transient: list[int], calls: list[list[str]]) -> Any:
    """A batch function whose chunk holding "c" fails ``transient[0]`` times first."""

    def embed(texts: list[str]) -> list[str]:
        calls.append(list(texts))
        if "c" in texts and transient[0]:
            transient[0] -= 1
            raise TransientError("try again")
        return [t.upper() for t in texts]

    return embed


RETRY = {
    "retry": tenacity.retry_if_exception_type(TransientError),
    "stop": tenacity.stop_after_attempt(3),
    "wait": tenacity.wait_none(),
    "reraise": True,
}


def test_a_retrying_wrapper_retries_only_the_failing_chunk() -> None:
    calls: list[list[str]] = []
    embed = cache_batch_variable("texts", max_batch_size=2)(flaky([1], calls))
    embed_retrying = tenacity.retry(**RETRY)(embed)
    assert embed_retrying(["a", "b", "c", "d", "e"]) == ["A", "B", "C", "D", "E"]
    assert calls == [["a", "b"], ["c", "d"], ["c", "d"], ["e"]]  # ["a", "b"] stayed cached


def test_a_retrying_wrapper_around_an_async_function() -> None:
    calls: list[list[str]] = []
    body = flaky([2], calls)

    @tenacity.retry(**RETRY)
    @cache_batch_variable("texts", max_batch_size=2)
    async def embed(texts: list[str]) -> list[str]:
        return body(texts)

    assert asyncio.run(embed(["a", "b", "c", "d", "e"])) == ["A", "B", "C", "D", "E"]
    assert calls == [["a", "b"], ["c", "d"], ["c", "d"], ["c", "d"], ["e"]]


def test_retries_give_up_and_the_error_propagates() -> None:
    calls: list[list[str]] = []
    embed = tenacity.retry(**RETRY)(
        cache_batch_variable("texts", max_batch_size=2)(flaky([5], calls))
    )
    with pytest.raises(TransientError):
        embed(["a", "b", "c"])
    assert calls == [["a", "b"], ["c"], ["c"], ["c"]]
