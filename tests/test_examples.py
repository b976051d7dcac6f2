"""The scripts in examples/ run and do what they say."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def run(name: str, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout


def test_overlapping_batches() -> None:
    out = run("overlapping_batches.py")
    assert out.splitlines() == [
        "request 1: ['the cat', 'the dog']",
        "request 2: ['a bird']",
        "request 3: ['a bird']",
        "CacheInfo(hits=6, misses=4, maxsize=10000, currsize=4, joined=0, cost_paid=0, "
        "cost_saved=0)",
    ]


def test_async_concurrent_callers() -> None:
    out = run("async_concurrent_callers.py").splitlines()
    # 50 distinct texts in all: concurrent callers join each other's computations in
    # flight, and later rounds come from the cache.
    assert out[:3] == [f"round {n}: 10 callers answered, 50 texts computed" for n in range(3)]
    assert out[-1].startswith("CacheInfo(hits=550, misses=50, maxsize=None, currsize=50, joined=")


def test_stream_corpus() -> None:
    out = run("stream_corpus.py", "20000").splitlines()
    expected = sum(
        len(f"paragraph {i % 2_000}: lorem ipsum dolor sit amet") / 100 for i in range(20_000)
    )
    assert out[0] == f"20,000 lines embedded, sum {expected:.1f}"
    assert out[1] == "computed 2,000, served from cache 18,000"
