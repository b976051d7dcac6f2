"""The options for real APIs, checked at decoration time with errors that name them."""

from __future__ import annotations

from typing import Any

import pytest

from batche import BatchDefinitionError, RateLimit, cache_batch_variable, dynamically

DECORATORS = {
    "cache_batch_variable()": lambda **options: cache_batch_variable("items", **options),
    "dynamically()": lambda **options: dynamically(**options),
}

BAD = [
    ({"isolate": 42}, "isolate must be an exception type (a subclass of Exception), a tuple"),
    ({"isolate": ()}, "isolate must be an exception type"),
    ({"isolate": (ValueError, "x")}, "isolate must be an exception type"),
    ({"isolate": KeyboardInterrupt}, "isolate must be an exception type (a subclass of Exc"),
    ({"cost": 3}, "cost must be a function of one item returning a number >= 0"),
    ({"cost": len, "max_batch_cost": 0}, "max_batch_cost must be None or a number > 0, got 0"),
    ({"cost": len, "max_batch_cost": "9"}, "max_batch_cost must be None or a number > 0"),
    ({"cost": len, "max_batch_cost": float("inf")}, "max_batch_cost must be None or a number"),
    ({"max_batch_cost": 100}, "max_batch_cost=100 needs cost="),
    ({"rate_limit": 3000}, "rate_limit must be a batche.RateLimit, got 3000"),
    (
        {"rate_limit": RateLimit(requests=10, cost=1000)},
        "rate_limit=RateLimit(requests=10, cost=1000, per=60.0) has a cost budget; pass cost=",
    ),
]


@pytest.mark.parametrize("owner", list(DECORATORS))
@pytest.mark.parametrize(("options", "words"), BAD)
def test_bad_options_are_named(owner: str, options: dict[str, Any], words: str) -> None:
    with pytest.raises(BatchDefinitionError) as caught:
        DECORATORS[owner](**options)
    assert str(caught.value).startswith(f"{owner}: ")
    assert words in str(caught.value)
    assert isinstance(caught.value, TypeError)


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"return_exceptions": True}, "return_exceptions=True returns the exceptions of items"),
        ({"isolate": ValueError, "return_exceptions": 1}, "return_exceptions must be a bool"),
    ],
)
def test_return_exceptions_needs_isolate(options: dict[str, Any], words: str) -> None:
    with pytest.raises(BatchDefinitionError, match="cache_batch_variable") as caught:
        cache_batch_variable("items", **options)
    assert words in str(caught.value)


@pytest.mark.parametrize("owner", list(DECORATORS))
def test_good_options_are_accepted(owner: str) -> None:
    DECORATORS[owner](
        isolate=(ValueError, KeyError),
        cost=len,
        max_batch_cost=1_000,
        rate_limit=RateLimit(requests=10, cost=1_000, per=1.0),
    )
    DECORATORS[owner](isolate=lambda exc: True, rate_limit=RateLimit(requests=1))
