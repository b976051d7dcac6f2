"""Helpers for the tests of ``dynamically``: a batch function that blocks, a queue watcher,
a call in a thread of its own."""

from __future__ import annotations

import threading
from typing import Any

from batche._queue import Queue


class Watch:
    """Observes a batcher's queue: counts the items added and wakes whoever waits for them."""

    def __init__(self, queue: Queue) -> None:
        self.added = 0
        self.refused = threading.Event()
        self._cond = threading.Condition()
        add, has_room = queue.add, queue.has_room

        def counting_add(request: Any, now: float) -> None:
            add(request, now)
            with self._cond:
                self.added += len(request.items)
                self._cond.notify_all()

        def watching_room(count: int) -> bool:
            room = has_room(count)
            if not room:
                self.refused.set()
            return room

        queue.add = counting_add  # type: ignore[method-assign]
        queue.has_room = watching_room  # type: ignore[method-assign]

    def wait_for(self, items: int) -> None:
        with self._cond:
            assert self._cond.wait_for(lambda: self.added >= items, timeout=30)


class Blocker:
    """A batch function whose first batch blocks until released; records every batch."""

    def __init__(self, fail_on: object = None) -> None:
        self.batches: list[list[Any]] = []
        self.entered = threading.Event()
        self.release = threading.Event()
        self.fail_on = fail_on

    def __call__(self, items: list[Any]) -> list[Any]:
        self.batches.append(list(items))
        if len(self.batches) == 1:
            self.entered.set()
            assert self.release.wait(timeout=30)
        if self.fail_on is not None and self.fail_on in items:
            raise ValueError(f"cannot do {self.fail_on!r}")
        return [f"<{i}>" for i in items]


def start(target: Any, *args: Any) -> tuple[threading.Thread, dict[str, Any]]:
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = target(*args)
        except BaseException as exc:  # noqa: BLE001 - looked at by the test
            box["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    return thread, box
