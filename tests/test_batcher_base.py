"""What every batcher shares: at interpreter exit, queued calls run instead of waiting."""

from __future__ import annotations

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


def test_interpreter_exit_runs_queued_calls() -> None:
    import subprocess
    import sys
    from pathlib import Path

    root = str(Path(__file__).resolve().parent.parent)
    done = subprocess.run(
        [sys.executable, "-c", EXIT_SCRIPT.format(root=root)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    # the queued call ran at exit instead of holding the exit up for ten minutes
    assert done.stdout.splitlines() == ["main exits", "result [42]"]
