"""The queue engine: a request split across batches in order, small requests first."""

from __future__ import annotations

from batche import dynamically

from ._batcher_helpers import Blocker, Watch, start


def test_a_request_spans_several_batches_in_order() -> None:
    seen: list[list[int]] = []

    @dynamically(batch_size=4, timeout_ms=0)
    def double(xs: list[int]) -> list[int]:
        seen.append(list(xs))
        return [x * 2 for x in xs]

    assert double(list(range(10))) == [x * 2 for x in range(10)]
    assert seen == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert double.one(21) == 42
    assert double([]) == []
    double.close()


def test_small_requests_go_first() -> None:
    body = Blocker()
    f = dynamically(batch_size=3, timeout_ms=0, small_batch_threshold=1)(body)
    watch = Watch(f._driver.queue)
    first, _ = start(f, ["first"])
    assert body.entered.wait(timeout=30)
    big, _ = start(f, ["b1", "b2", "b3"])
    watch.wait_for(4)
    small = [start(f, [f"s{i}"]) for i in range(2)]
    watch.wait_for(6)
    body.release.set()
    for thread, _ in [(first, {}), (big, {}), *small]:
        thread.join()
    assert body.batches[1] == ["s0", "s1", "b1"]
    assert body.batches[2] == ["b2", "b3"]
    f.close()
