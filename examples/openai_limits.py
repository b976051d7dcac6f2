"""Embeddings within an API's limits: bad inputs isolated, requests sized by tokens, paced.

Run against the local stand-in server, which refuses what the real API refuses (no key,
no network):
    python examples/openai_limits.py
or against a real endpoint (its published limits; tokens counted by your tokenizer):
    OPENAI_API_KEY=... python examples/openai_limits.py --base-url https://api.openai.com/v1

Many coroutines ask for overlapping texts, a few of them too long for the model. batche
sends each good text once, in requests the API accepts (at most ``max_inputs`` inputs
and ``max_request_tokens`` tokens), never faster than the rate limit allows, and reports
each bad text to the callers that asked for it, at its positions: the good texts of the
same requests still get their vectors.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import openai
from openai import AsyncOpenAI

from batche import BatchItemsError, RateLimit, cache_batch_variable, dynamically

sys.path.insert(0, str(Path(__file__).resolve().parent))

from local_embeddings_server import EmbeddingsServer, count_tokens


def make_embedder(
    client: AsyncOpenAI,
    model: str,
    *,
    limit: RateLimit,
    tokens: Callable[[str], int] = count_tokens,
    max_inputs: int = 2048,
    max_request_tokens: int = 300_000,
) -> Any:
    """An ``embed(texts)`` that caches each text, batches concurrent callers into
    requests within the API's caps, paces them by ``limit`` and isolates bad inputs."""

    @cache_batch_variable(
        "texts", maxsize=1_000_000, isolate=openai.BadRequestError, cost=tokens,
        max_batch_size=max_inputs, max_batch_cost=max_request_tokens,
    )  # fmt: skip
    @dynamically(
        batch_size=max_inputs, timeout_ms=5, concurrency=4, isolate=openai.BadRequestError,
        cost=tokens, max_batch_cost=max_request_tokens, rate_limit=limit,
    )  # fmt: skip
    async def embed(texts: list[str]) -> list[list[float]]:
        response = await client.embeddings.create(model=model, input=texts)
        return [item.embedding for item in sorted(response.data, key=lambda d: d.index)]

    return embed


def corpus(size: int, longest: int, bad: int, bad_words: int) -> tuple[list[str], set[str]]:
    """``size`` texts of 1 to ``longest`` words, and ``bad`` texts of ``bad_words`` words,
    more than the model takes."""
    rng = random.Random(0)
    texts = [" ".join(f"w{n}-{i}" for i in range(rng.randint(1, longest))) for n in range(size)]
    too_long = {f"too long {n} " + "x " * bad_words for n in range(bad)}
    return texts + sorted(too_long), too_long


async def ask(embed: Any, texts: list[str]) -> tuple[list[str], Any]:
    """One caller: its texts, and its vectors or the BatchItemsError naming its bad ones."""
    try:
        return texts, await embed(texts)
    except BatchItemsError as error:
        return texts, error


async def run(
    base_url: str,
    api_key: str,
    model: str,
    callers: int,
    limit: RateLimit,
    *,
    max_inputs: int = 2048,
    max_request_tokens: int = 300_000,
    bad_words: int = 9_000,
) -> tuple[Any, list[tuple[list[str], Any]]]:
    """``callers`` coroutines at once, each asking for 30 texts of a corpus of 605."""
    texts, _ = corpus(600, longest=60, bad=5, bad_words=bad_words)
    rng = random.Random(1)
    asks = [rng.sample(texts, 30) for _ in range(callers)]
    async with AsyncOpenAI(base_url=base_url, api_key=api_key, max_retries=0) as client:
        embed = make_embedder(
            client, model, limit=limit, max_inputs=max_inputs,
            max_request_tokens=max_request_tokens,
        )  # fmt: skip
        answers = await asyncio.gather(*(ask(embed, texts) for texts in asks))
        await embed.__wrapped__.aclose()
    return embed, answers


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", help="an OpenAI-compatible endpoint (default: local)")
    parser.add_argument("--model", default="text-embedding-3-small")
    parser.add_argument("--callers", type=int, default=100)
    options = parser.parse_args()
    if options.base_url:  # the published limits of a low tier; set your own
        limit = RateLimit(requests=3_000, cost=1_000_000, per=60)
        embed, answers = asyncio.run(
            run(options.base_url, os.environ.get("OPENAI_API_KEY", ""), options.model,
                options.callers, limit)
        )  # fmt: skip
    else:
        # The local server's limits, small so that a run shows them: 64 inputs and 2,000
        # tokens a request, 200 tokens an input, 20 requests and 8,000 tokens a second.
        caps = {"max_inputs": 64, "max_input_tokens": 200, "max_request_tokens": 2_000}
        with EmbeddingsServer(rpm=20, tpm=8_000, window=1.0, **caps) as server:
            limit = RateLimit(requests=20, cost=8_000, per=1.25)  # a margin for the network
            embed, answers = asyncio.run(
                run(server.base_url, "local", options.model, options.callers, limit,
                    max_inputs=64, max_request_tokens=2_000, bad_words=250)
            )  # fmt: skip
            statuses = [record["status"] for record in server.log]
            print(
                f"server: {statuses.count(200)} requests accepted, {statuses.count(400)} "
                f"refused for a bad input, {statuses.count(429)} over the rate limit"
            )
    failed = [answer for _, answer in answers if isinstance(answer, BatchItemsError)]
    info = embed.cache_info()
    print(f"{options.callers} callers; {len(failed)} were told which of their texts are bad")
    print(f"{info.misses:,} distinct texts sent ({info.cost_paid:,} tokens), "
          f"{info.hits:,} answered by the cache ({info.cost_saved:,} tokens saved)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
