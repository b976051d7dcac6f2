"""Embed a corpus far larger than memory, a chunk at a time, with ``.map``.

Run: python examples/stream_corpus.py [N]
"""

from __future__ import annotations

import sys
from collections.abc import Iterator

from batche import cache_batch_variable


@cache_batch_variable("texts", maxsize=5_000)
def embed(texts: list[str]) -> list[float]:
    return [len(t) / 100 for t in texts]


def corpus(n: int) -> Iterator[str]:
    """Lines of a large corpus; real corpora repeat (boilerplate, quotes, headers)."""
    for i in range(n):
        yield f"paragraph {i % 2_000}: lorem ipsum dolor sit amet"


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    total = sum(embed.map(corpus(n), chunk_size=1_024))
    info = embed.cache_info()
    print(f"{n:,} lines embedded, sum {total:.1f}")
    print(f"computed {info.misses:,}, served from cache {info.hits:,}")


if __name__ == "__main__":
    main()
