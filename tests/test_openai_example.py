"""The OpenAI example: the real ``openai`` client against a local server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import sys
from collections import Counter
from pathlib import Path

import openai

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "examples"))

from local_embeddings_server import EmbeddingsServer, vector
from openai_embeddings import make_embedder, run


def test_two_hundred_callers_each_text_sent_once() -> None:
    with EmbeddingsServer(dims=16) as server:
        embed, answers = asyncio.run(run(server.base_url, "key", "m", callers=200))
        sent = Counter(server.inputs)
        requests = list(server.requests)
    asked = {text for texts, _ in answers for text in texts}
    assert set(sent) == asked
    assert max(sent.values()) == 1  # every distinct text reached the server once
    assert all(1 <= len(r) <= 2048 for r in requests)
    for texts, vectors in answers:
        assert vectors == [vector(t, 16) for t in texts]
    assert embed.cache_info().misses == len(asked)


def test_requests_respect_the_inputs_cap() -> None:
    async def main(base_url: str) -> list[tuple[list[str], list[list[float]]]]:
        async with openai.AsyncOpenAI(base_url=base_url, api_key="key", max_retries=0) as client:
            embed = make_embedder(client, "m", max_inputs=64)
            asks = [[f"text {(n * 13 + i) % 700}" for i in range(30)] for n in range(100)]
            results = await asyncio.gather(*(embed(texts) for texts in asks))
            again = await embed(asks[0])  # cached: no request
            assert again == results[0]
            return list(zip(asks, results))

    with EmbeddingsServer(dims=8, max_inputs=64) as server:
        answers = asyncio.run(main(server.base_url))
        requests = list(server.requests)
        sent = Counter(server.inputs)
    assert all(len(r) <= 64 for r in requests)
    assert max(sent.values()) == 1
    for texts, vectors in answers:
        assert vectors == [vector(t, 8) for t in texts]


def test_the_example_runs_as_a_script() -> None:
    import subprocess

    script = Path(__file__).resolve().parent.parent / "examples" / "openai_embeddings.py"
    done = subprocess.run(
        [sys.executable, str(script), "--callers", "50"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert "50 callers asked for 2,000 texts" in done.stdout
