"""``python -m batche demo``: an embedding workload run with and without batche.

A simulated embedding service charges a fixed cost per request plus a cost per item (as a
hosted API or a GPU model does). Callers send overlapping batches drawn from a corpus with
a few popular texts and a long tail, the way real traffic repeats itself. The same
requests run twice, through the plain function and through ``cache_batch_variable``; the
demo checks the answers are identical and prints what the cache saved.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import struct
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TextIO

from ._decorator import cache_batch_variable

_SUBJECTS = [
    "The checkout page", "My last order", "The mobile app", "Customer support", "The invoice",
    "Shipping to Canada", "The refund", "Password reset", "The search bar", "Dark mode",
    "The premium plan", "Two-factor login", "The export to CSV", "The API rate limit",
    "The onboarding email", "The delivery driver", "The warranty claim", "The size chart",
]  # fmt: skip
_VERBS = [
    "keeps timing out", "was charged twice", "works great now", "is missing an item",
    "crashes on startup", "took three weeks", "has the wrong address", "is hard to find",
    "needs a clearer label", "was resolved quickly", "shows an old price", "never arrived",
]  # fmt: skip
_TAILS = [
    "since the last update.", "for the second time this month.", "- please advise.",
    "and I would like a refund.", "which is great, thanks!", "on both Android and iOS.",
    "when I use a discount code.", "after I changed my email.", "", "again today.",
]  # fmt: skip


def corpus(size: int, rng: random.Random) -> list[str]:
    """``size`` distinct support-ticket-like texts."""
    texts: dict[str, None] = {}
    while len(texts) < size:
        text = f"{rng.choice(_SUBJECTS)} {rng.choice(_VERBS)} {rng.choice(_TAILS)}".strip()
        if text in texts:
            text = f"{text} (ticket {len(texts)})"
        texts[text] = None
    return list(texts)


class EmbeddingService:
    """A stand-in for a paid embedding API: fixed latency per request plus per item."""

    def __init__(self, request_ms: float, item_ms: float, dims: int = 8) -> None:
        self.request_s = request_ms / 1000
        self.item_s = item_ms / 1000
        self.dims = dims
        self.requests = 0
        self.items = 0

    def embed(self, texts: list[str]) -> list[tuple[float, ...]]:
        """One request: waits as the remote service would, returns a vector per text."""
        self.requests += 1
        self.items += len(texts)
        time.sleep(self.request_s + self.item_s * len(texts))
        return [self.vector(t) for t in texts]

    def vector(self, text: str) -> tuple[float, ...]:
        digest = hashlib.blake2b(text.encode(), digest_size=4 * self.dims).digest()
        return tuple(round(v / 2**32, 6) for v in struct.unpack(f"<{self.dims}I", digest))


@dataclass
class Run:
    label: str
    requests: int
    items_asked: int
    items_computed: int
    seconds: float


class Progress:
    """A one-line progress bar on a terminal; nothing but the final line elsewhere."""

    def __init__(self, label: str, total: int, stream: TextIO) -> None:
        self.label = label
        self.total = total
        self.stream = stream
        self.live = stream.isatty()

    def update(self, done: int, note: str = "") -> None:
        if not self.live and done < self.total:
            return
        width = 30
        filled = width * done // self.total if self.total else width
        bar = "#" * filled + "-" * (width - filled)
        end = "\n" if done >= self.total else ""
        self.stream.write(f"\r{self.label:<14} [{bar}] {done}/{self.total} {note}{end}")
        self.stream.flush()


def workload(
    texts: Sequence[str], requests: int, batch: int, rng: random.Random
) -> list[list[str]]:
    """Batches of about ``batch`` texts; popular texts come up again and again (Zipf-like)."""
    weights = [1 / (rank + 1) ** 0.9 for rank in range(len(texts))]
    return [
        rng.choices(texts, weights=weights, k=rng.randint(batch // 2, batch * 3 // 2))
        for _ in range(requests)
    ]


def run(label: str, embed: object, batches: list[list[str]], service: EmbeddingService,
        out: TextIO) -> tuple[Run, list[list[tuple[float, ...]]]]:  # fmt: skip
    """Send every batch through ``embed``, timing the whole run."""
    progress = Progress(label, len(batches), out)
    answers = []
    start = time.perf_counter()
    for done, texts in enumerate(batches, 1):
        answers.append(embed(texts))  # type: ignore[operator]
        progress.update(done, f"{service.requests} requests, {service.items} items computed")
    seconds = time.perf_counter() - start
    asked = sum(len(b) for b in batches)
    return Run(label, service.requests, asked, service.items, seconds), answers


def main(argv: Sequence[str] | None = None, out: TextIO = sys.stdout) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m batche demo",
        description="An embedding workload with overlapping batches, with and without batche.",
    )
    parser.add_argument("--requests", type=int, default=120, help="batches sent (default 120)")
    parser.add_argument("--batch", type=int, default=48, help="mean batch size (default 48)")
    parser.add_argument("--corpus", type=int, default=400, help="distinct texts (default 400)")
    parser.add_argument("--request-ms", type=float, default=50.0, help="cost per request (50)")
    parser.add_argument("--item-ms", type=float, default=0.2, help="cost per item (0.2)")
    parser.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    options = parser.parse_args(argv)
    for name in ("requests", "batch", "corpus"):
        if getattr(options, name) < 1:
            parser.error(f"--{name} must be at least 1")
    if options.request_ms < 0 or options.item_ms < 0:
        parser.error("costs must be >= 0")

    rng = random.Random(options.seed)
    batches = workload(corpus(options.corpus, rng), options.requests, options.batch, rng)
    out.write(
        f"Embedding {len(batches)} batches ({sum(map(len, batches)):,} texts, "
        f"{options.corpus} distinct) through a service costing {options.request_ms:g} ms per "
        f"request + {options.item_ms:g} ms per text.\n"
    )

    plain_service = EmbeddingService(options.request_ms, options.item_ms)
    plain, plain_answers = run("without batche", plain_service.embed, batches, plain_service, out)

    cached_service = EmbeddingService(options.request_ms, options.item_ms)
    embed = cache_batch_variable("texts")(cached_service.embed)
    cached, cached_answers = run("with batche", embed, batches, cached_service, out)

    if cached_answers != plain_answers:
        out.write("error: the cached answers differ from the plain ones\n")
        return 1
    info = embed.cache_info()
    rows = [
        ("", "without batche", "with batche"),
        ("requests to the service", f"{plain.requests:,}", f"{cached.requests:,}"),
        ("texts asked for", f"{plain.items_asked:,}", f"{cached.items_asked:,}"),
        ("texts computed", f"{plain.items_computed:,}", f"{cached.items_computed:,}"),
        ("hit rate", "0.0%", f"{info.hits / max(1, info.hits + info.misses):.1%}"),
        ("wall time", f"{plain.seconds:.2f} s", f"{cached.seconds:.2f} s"),
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    out.write("\n")
    for row in rows:
        out.write(f"  {row[0]:<{widths[0]}}  {row[1]:>{widths[1]}}  {row[2]:>{widths[2]}}\n")
    speedup = plain.seconds / cached.seconds if cached.seconds else float("inf")
    out.write(
        f"\nSame answers, {speedup:.1f}x faster, "
        f"{1 - cached.items_computed / max(1, plain.items_computed):.0%} fewer texts paid for.\n"
    )
    return 0
