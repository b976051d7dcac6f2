"""What a batcher has done: batches, items, batch sizes, and timing percentiles."""

from __future__ import annotations

from collections import Counter, deque

__all__ = ["BatcherStats", "Percentiles"]


class Percentiles:
    """The latest samples of a duration (milliseconds), with their median and 99th centile."""

    __slots__ = ("_samples",)

    def __init__(self, keep: int = 10_000) -> None:
        self._samples: deque[float] = deque(maxlen=keep)

    def add(self, value: float) -> None:
        self._samples.append(value)

    def _at(self, fraction: float) -> float:
        if not self._samples:
            return 0.0
        ordered = sorted(self._samples)
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]

    @property
    def p50(self) -> float:
        return self._at(0.50)

    @property
    def p99(self) -> float:
        return self._at(0.99)

    @property
    def count(self) -> int:
        return len(self._samples)

    def __repr__(self) -> str:
        return f"Percentiles(p50={self.p50:.3f}, p99={self.p99:.3f}, count={self.count})"


class BatcherStats:
    """What a batcher has done: batches run, items, batch sizes and timings (ms)."""

    def __init__(self) -> None:
        self.batches = 0
        self.items = 0
        #: batch size -> number of batches of that size
        self.batch_sizes: Counter[int] = Counter()
        #: per batch, how long its oldest item waited in the queue before the batch started
        self.queue_wait_ms = Percentiles()
        #: how long the function took per batch
        self.batch_ms = Percentiles()

    def __repr__(self) -> str:
        return (
            f"BatcherStats(batches={self.batches}, items={self.items}, "
            f"queue_wait_ms={self.queue_wait_ms!r}, batch_ms={self.batch_ms!r})"
        )
