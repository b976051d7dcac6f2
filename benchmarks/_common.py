"""Helpers the benchmark scripts share: interleaved timing, batche 0.1.1 on the side, tables,
a redis-server of their own."""

from __future__ import annotations

import contextlib
import gc
import importlib.util
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

#: One round of one contender: does its own untimed setup, returns seconds per call.
Round = Callable[[], float]


def loop(func: Callable[[], Any], min_time: float = 0.02) -> Round:
    """A round that calls ``func`` enough times to be timed well."""
    number = 1
    while True:
        start = time.perf_counter()
        for _ in range(number):
            func()
        if time.perf_counter() - start >= min_time:
            break
        number *= 2

    def one_round() -> float:
        start = time.perf_counter()
        for _ in range(number):
            func()
        return (time.perf_counter() - start) / number

    return one_round


def compare(contenders: dict[str, Round], rounds: int) -> dict[str, float]:
    """Best seconds per call of each contender, timed in interleaved rounds.

    Each round runs every contender once, in turn, so a slow phase of the machine
    touches them all alike and the ratios between them stay honest.
    """
    best = dict.fromkeys(contenders, float("inf"))
    was_enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        for _ in range(rounds):
            for name, one_round in contenders.items():
                best[name] = min(best[name], one_round())
    finally:
        if was_enabled:
            gc.enable()
    return best


def legacy_batche(target: Path | None = None) -> ModuleType | None:
    """PyPI batche 0.1.1, installed in a separate directory (its package name is ours),
    imported as ``batche_legacy``; None if it cannot be installed."""
    if target is None:
        target = Path(tempfile.gettempdir()) / "batche-0.1.1-bench"
    if not (target / "batche").exists():
        done = subprocess.run(
            [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target),
             "batche==0.1.1"],
            capture_output=True,
            check=False,
        )  # fmt: skip
        if done.returncode != 0:
            print("batche 0.1.1 could not be installed; its column is left out", file=sys.stderr)
            return None
    package = target / "batche"
    spec = importlib.util.spec_from_file_location(
        "batche_legacy", package / "__init__.py", submodule_search_locations=[str(package)]
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["batche_legacy"] = module
    spec.loader.exec_module(module)
    return module


def table(headers: list[str], rows: list[list[str]]) -> str:
    """A Markdown table."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    line = "| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths)) + " |"
    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    body = ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |" for r in rows]
    return "\n".join([line, rule, *body])


@contextlib.contextmanager
def redis_url(given: str | None) -> Iterator[str]:
    """``given``, or else the URL of a redis-server started on a free loopback port (and
    stopped on exit), nothing kept on disk."""
    if given is not None:
        yield given
        return
    with redis_server() as (url, _):
        yield url


@contextlib.contextmanager
def redis_server() -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """A redis-server started on a free loopback port (stopped on exit), nothing kept on
    disk: its URL and its process."""
    binary = shutil.which("redis-server")
    if binary is None:
        sys.exit("redis-server is not installed; pass --redis-url")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with tempfile.TemporaryDirectory() as directory:
        process = subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly",
             "no", "--dir", directory],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        assert process.stdout is not None
        try:
            for line in process.stdout:
                if "Ready to accept connections" in line:
                    break
            else:
                sys.exit("redis-server did not start")
            yield f"redis://127.0.0.1:{port}/0", process
        finally:
            process.terminate()
            process.wait()
            process.stdout.close()
