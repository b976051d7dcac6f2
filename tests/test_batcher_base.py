"""What every batcher shares: at interpreter exit, queued calls run instead of waiting; in
a forked child, batchers start afresh."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from batche import dynamically

EXIT_SCRIPT = """
import sys, threading
sys.path.insert(0, {root!r})
from batche import dynamically

@dynamically(batch_size=8, timeout_ms=600_000)   # would wait ten minutes for company
def f(xs):
    return [x * 2 for x in xs]

queued = threading.Event()
add = f._driver.queue.add
def watched_add(request, now):
    add(request, now)
    queued.set()
f._driver.queue.add = watched_add

def caller():
    print("result", f([21]), flush=True)

threading.Thread(target=caller).start()   # not a daemon: the exit waits for it
queued.wait(30)
print("main exits", flush=True)
"""


def run_script(script: str) -> list[str]:
    """The lines a script printed, run in a fresh interpreter (60 s at most: a bound)."""
    root = str(Path(__file__).resolve().parent.parent)
    done = subprocess.run(
        [sys.executable, "-c", script.format(root=root)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout.splitlines()


def test_interpreter_exit_runs_queued_calls() -> None:
    # the queued call ran at exit instead of holding the exit up for ten minutes
    assert run_script(EXIT_SCRIPT) == ["main exits", "result [42]"]


FORK_SCRIPT = """
import os, sys
sys.path.insert(0, {root!r})
from batche import dynamically

@dynamically(batch_size=8, timeout_ms=0)
def double(xs):
    return [x * 2 for x in xs]

class Model:
    @dynamically(batch_size=8, timeout_ms=0)
    def triple(self, xs):
        return [x * 3 for x in xs]

model = Model()
print("parent", double([1]), model.triple([1]), flush=True)   # workers run in the parent
pid = os.fork()
if pid == 0:   # the child: the parent's workers are not here
    print("child", double([2]), model.triple([2]), Model().triple.one(3), flush=True)
    os._exit(0)
_, status = os.waitpid(pid, 0)
print("child exit", os.waitstatus_to_exitcode(status), flush=True)
print("parent", double([4]), flush=True)
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform")
def test_batchers_used_before_a_fork_work_in_the_child() -> None:
    # a child waiting on the parent's workers would hang until the timeout
    assert run_script(FORK_SCRIPT) == [
        "parent [2] [3]",
        "child [4] [6] 9",
        "child exit 0",
        "parent [8]",
    ]


# -- pickling: by reference, as functions and cache_batch_variable functions -------------


def test_module_level_batchers_pickle_and_copy_as_themselves() -> None:
    import copy
    import pickle

    from . import _pickled

    for f in (_pickled.batched, _pickled.abatched, _pickled.Model.score):
        assert pickle.loads(pickle.dumps(f)) is f
        assert copy.copy(f) is f
        assert copy.deepcopy(f) is f
    assert copy.deepcopy([_pickled.batched])[0] is _pickled.batched  # inside a structure too
    assert _pickled.batched(["ab"]) == [2]  # still working here


def test_a_bound_batched_method_pickles_with_its_instance() -> None:
    import pickle

    from ._pickled import Model

    bound = pickle.loads(pickle.dumps(Model(3).score))
    assert bound.__self__ == Model(3)
    assert bound(["ab", "c"]) == [32, 31]


def test_a_local_batcher_cannot_be_pickled_and_says_so() -> None:
    import functools
    import pickle

    @dynamically(batch_size=2)
    def local(texts: list[str]) -> list[str]:
        return texts

    with pytest.raises((pickle.PicklingError, AttributeError), match="local"):
        pickle.dumps(local)
    unnamed = dynamically(batch_size=2)(functools.partial(lambda k, texts: texts, 1))
    with pytest.raises(pickle.PicklingError, match="partial, which has no name"):
        pickle.dumps(unnamed)
    local.close()
    unnamed.close()


def test_spawned_process_pool_workers_call_the_batcher() -> None:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from ._pickled import Model, batched, run_abatched

    batches = [["a", "bb"], ["ccc"], ["a", "dddd"]]
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=2, mp_context=spawn) as pool:
        assert list(pool.map(batched, batches)) == [[1, 2], [3], [1, 4]]
        assert list(pool.map(run_abatched, batches)) == [[1, 2], [3], [1, 4]]
        assert pool.submit(Model(2).score, ["x"]).result() == [21]


def test_a_call_from_inside_its_own_batch_is_refused_not_hung() -> None:
    # With one batch at a time, a batch function calling its own batcher waited for a batch
    # that could not start before it returned: the caller hung for good.
    import asyncio

    from batche import BatcherClosedError

    @dynamically(batch_size=4, timeout_ms=0)
    def depth(xs: list[int]) -> list[int]:
        return [depth.one(x - 1) + 1 if x else 0 for x in xs]

    @dynamically(batch_size=4, timeout_ms=0)
    async def adepth(xs: list[int]) -> list[int]:
        return [await adepth.one(x - 1) + 1 if x else 0 for x in xs]

    assert depth([0, 0]) == [0, 0]
    with pytest.raises(BatcherClosedError, match=r"depth\(\): .* from inside the batch"):
        depth([1])
    with pytest.raises(BatcherClosedError, match=r"call the function itself \(adepth.__wrapped"):
        asyncio.run(adepth([1]))
    assert depth([0]) == [0]  # the batcher goes on
    depth.close()

    @dynamically(batch_size=4, timeout_ms=0, concurrency=2)
    def two(xs: list[int]) -> list[int]:  # another worker can take the inner batch
        return [two.one(x - 1) + 1 if x else 0 for x in xs]

    assert two([1]) == [1]
    two.close()
