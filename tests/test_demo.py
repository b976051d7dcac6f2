"""``python -m batche demo`` and the command line."""

from __future__ import annotations

import io

from batche._demo import main as demo

from .conftest import run_batche


def test_demo_saves_work_and_gives_the_same_answers() -> None:
    out = io.StringIO()
    code = demo(["--requests", "30", "--request-ms", "0", "--item-ms", "0"], out=out)
    text = out.getvalue()
    assert code == 0
    assert "Same answers" in text
    computed = next(line for line in text.splitlines() if "texts computed" in line).split()
    assert int(computed[-1].replace(",", "")) < int(computed[-2].replace(",", ""))


def test_demo_rejects_bad_options() -> None:
    done = run_batche("demo", "--requests", "0")
    assert done.returncode == 2
    assert "--requests must be at least 1" in done.stderr


def test_unknown_command_and_help() -> None:
    bad = run_batche("nope")
    assert bad.returncode == 2
    assert "unknown command 'nope'" in bad.stderr
    ok = run_batche("--help")
    assert ok.returncode == 0
    assert "demo" in ok.stdout
    assert "stats URL" in ok.stdout
