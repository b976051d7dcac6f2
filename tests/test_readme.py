"""Every Python example in README.md runs, and the commands it gives are the real ones."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)


@pytest.mark.parametrize("source", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_readme_example_runs(source: str, capsys: pytest.CaptureFixture[str]) -> None:
    exec(compile(source, str(README), "exec"), {"__name__": "readme_example"})
    capsys.readouterr()


def test_readme_has_examples_and_the_two_commands() -> None:
    text = README.read_text()
    assert len(BLOCKS) >= 10
    assert "pip install . && python -m batche demo" in text
    command = (
        "python3 -m venv .venv && . .venv/bin/activate && "
        'pip install -e ".[test]" && python -m pytest'
    )
    assert f"<!-- test-command -->\n```bash\n{command}\n" in text


def test_first_example_prints_what_the_readme_says(capsys: pytest.CaptureFixture[str]) -> None:
    exec(compile(BLOCKS[0], str(README), "exec"), {"__name__": "readme_example"})
    printed = capsys.readouterr().out.strip()
    assert printed in BLOCKS[0]


def test_every_error_of_the_table_is_importable_and_what_the_table_says() -> None:
    import builtins

    import batche

    section = README.read_text().split("## Errors", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `(\w+)` \| ([^|]*) \|", section, flags=re.MULTILINE)
    names = [name for name, _ in rows]
    for expected in ("StoreError", "BatchConfigError", "BatcherClosedError", "UnstableKeyError"):
        assert expected in names
    for name, also in rows:
        error = getattr(batche, name)  # from batche itself, as every other name
        assert issubclass(error, batche.BatcheError), name
        assert name in batche.__all__
        for builtin in re.findall(r"`(\w+Error)`", also):
            base = getattr(batche, builtin, None) or getattr(builtins, builtin)
            assert issubclass(error, base), (name, builtin)
