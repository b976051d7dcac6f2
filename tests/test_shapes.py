"""What a batch call looks like: results checked per batch, parallel lists, other arguments."""

from __future__ import annotations

import pytest

from batche import BatchArgumentError, dynamically


def test_a_wrong_number_of_results_is_an_error_for_that_batch() -> None:
    @dynamically(batch_size=8, timeout_ms=0)
    def f(xs: list[int]) -> list[int]:
        return xs[:-1]

    with pytest.raises(ValueError, match=r"returned 1 results for a batch of 2 items"):
        f([1, 2])
    f.close()


def test_requests_of_parallel_lists_and_keywords() -> None:
    seen: list[tuple[list[str], list[str]]] = []

    @dynamically(batch_size=8, timeout_ms=0)
    def translate(texts: list[str], lang: list[str]) -> list[str]:
        seen.append((list(texts), list(lang)))
        return [f"{t}@{g}" for t, g in zip(texts, lang)]

    assert translate(texts=["a", "b"], lang=["en", "fr"]) == ["a@en", "b@fr"]
    assert translate.one(texts="c", lang="de") == "c@de"
    with pytest.raises(BatchArgumentError, match="'texts' has 2, 'lang' has 1"):
        translate(texts=["a", "b"], lang=["en"])
    translate.close()


def test_other_arguments_are_refused_not_mixed_across_callers() -> None:
    @dynamically(batch_size=4, timeout_ms=0)
    def embed(texts: list[str], model: str = "small") -> list[str]:
        return [f"{model}:{t}" for t in texts]

    assert embed(["a"]) == ["small:a"]
    with pytest.raises(BatchArgumentError, match=r"other arguments \('model'\) would be shared"):
        embed(["a"], model="large")
    embed.close()
