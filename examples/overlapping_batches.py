"""Overlapping batches through a cached embedding function: what the function sees.

Run: python examples/overlapping_batches.py
"""

from __future__ import annotations

from batche import cache_batch_variable

requests: list[list[str]] = []


@cache_batch_variable(batch_variable_name="texts", maxsize=10_000)
def embed(texts: list[str], model: str = "small") -> list[list[float]]:
    """Stands in for a paid embedding API: records what it is asked to compute."""
    requests.append(list(texts))
    return [[float(len(t)), float(sum(map(ord, t)) % 97)] for t in texts]


def main() -> None:
    embed(["the cat", "the dog"])
    embed(["the dog", "a bird", "the cat", "a bird"])
    embed(["a bird"], model="large")
    embed(["the cat", "the dog", "a bird"])  # everything cached: no request
    for n, batch in enumerate(requests, 1):
        print(f"request {n}: {batch}")
    print(embed.cache_info())


if __name__ == "__main__":
    main()
