"""Concurrent asyncio callers sharing one cached async embedding function.

Run: python examples/async_concurrent_callers.py
"""

from __future__ import annotations

import asyncio

from batche import cache_batch_variable

computed: list[str] = []


@cache_batch_variable("texts", max_batch_size=64)
async def embed(texts: list[str]) -> list[int]:
    """Stands in for an async client call (``AsyncOpenAI().embeddings.create``)."""
    await asyncio.sleep(0.001)
    computed.extend(texts)
    return [len(t) for t in texts]


async def caller(n: int) -> list[int]:
    texts = [f"query {(n * 7 + i) % 50}" for i in range(20)]
    return await embed(texts)


async def main() -> None:
    for round_ in range(3):
        results = await asyncio.gather(*(caller(n) for n in range(10)))
        print(f"round {round_}: {len(results)} callers answered, {len(computed)} texts computed")
    print(embed.cache_info())


if __name__ == "__main__":
    asyncio.run(main())
