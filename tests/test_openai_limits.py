"""The real ``openai`` client within an API's limits: the stand-in server refuses what the
API refuses (400 for a bad input or an oversized request, 429 over its rate limits)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import openai

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "examples"))

from local_embeddings_server import EmbeddingsServer, vector
from openai_limits import corpus, run

from batche import BatchItemsError, RateLimit

CAPS = {"max_inputs": 64, "max_input_tokens": 200, "max_request_tokens": 2_000}
RPM, TPM, WINDOW = 20, 8_000, 1.0


def within_budget(accepted: list[tuple[float, int]]) -> None:
    """No window of the server's log holds more than its requests and tokens."""
    accepted = sorted(accepted)
    for i, (start, _) in enumerate(accepted):
        inside = [tokens for when, tokens in accepted[i:] if when < start + WINDOW]
        assert len(inside) <= RPM, (start, inside)
        assert sum(inside) <= TPM, (start, inside)


def test_many_callers_every_good_text_once_bad_ones_named_no_refusal(tmp_path: Path) -> None:
    log = tmp_path / "requests.jsonl"
    _, bad = corpus(600, longest=60, bad=5, bad_words=250)
    server = EmbeddingsServer(8, rpm=RPM, tpm=TPM, window=WINDOW, log_path=str(log), **CAPS)
    with server:
        # the server's numbers, over a window a quarter longer: a margin for the network
        limit = RateLimit(requests=RPM, cost=TPM, per=WINDOW * 1.25)
        embed, answers = asyncio.run(
            run(server.base_url, "key", "m", 80, limit, max_inputs=64,
                max_request_tokens=2_000, bad_words=250)
        )  # fmt: skip
        accepted = list(server.requests)
    records = [json.loads(line) for line in log.read_text().splitlines()]

    asked = {text for texts, _ in answers for text in texts}
    assert asked & bad  # the workload has bad texts, asked by several callers
    sent = Counter(text for request in accepted for text in request)
    assert set(sent) == asked - bad
    assert max(sent.values()) == 1  # every good text embedded exactly once

    told = 0
    for texts, answer in answers:
        positions = {i for i, text in enumerate(texts) if text in bad}
        results: Any = answer
        if positions:
            assert isinstance(answer, BatchItemsError)
            assert set(answer.errors) == positions  # each bad text at its positions
            for error in answer.errors.values():
                assert isinstance(error, openai.BadRequestError)
                assert "tokens per input" in str(error)
            results = answer.results
            told += 1
        for i, text in enumerate(texts):
            if i not in positions:
                assert results[i] == vector(text, 8)
    assert told >= 5

    statuses = Counter(record["status"] for record in records)
    assert statuses[429] == 0  # paced: never over the rate limit
    assert statuses[200] == len(accepted)
    refusals = [record["error"] for record in records if record["status"] == 400]
    assert refusals
    assert all("tokens per input" in error for error in refusals)  # none for its size
    assert all(1 <= len(request) <= 64 for request in accepted)
    within_budget([(r["time"], r["tokens"]) for r in records if r["status"] == 200])
    info = embed.cache_info()
    assert info.cost_paid > 0
    assert info.cost_saved > 0


def test_the_example_runs_as_a_script() -> None:
    script = Path(__file__).resolve().parent.parent / "examples" / "openai_limits.py"
    done = subprocess.run(
        [sys.executable, str(script), "--callers", "30"],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    assert ", 0 over the rate limit" in done.stdout
    assert "30 callers;" in done.stdout
