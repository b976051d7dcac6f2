"""The options for real APIs (``isolate``, ``cost``, ``max_batch_cost``, ``rate_limit``),
checked at decoration time, for ``cache_batch_variable`` and for ``dynamically`` alike."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Union

from ._checks import number_above
from ._errors import BatchDefinitionError
from ._ratelimit import RateLimit

__all__ = ["ApiOptions", "IsolateSpec", "check_api_options"]

#: what ``isolate=`` takes: an exception type, a tuple of them, or a predicate
IsolateSpec = Union[type[BaseException], tuple[type[BaseException], ...], Callable[[Any], Any]]


class ApiOptions:
    """The checked options: who isolates, what an item costs, the budgets."""

    __slots__ = ("cost", "isolates", "max_batch_cost", "rate_limit", "return_exceptions")

    def __init__(
        self,
        isolates: Callable[[BaseException], bool] | None,
        cost: Callable[[Any], Any] | None,
        max_batch_cost: float | None,
        rate_limit: RateLimit | None,
        return_exceptions: bool,
    ) -> None:
        #: True for an exception that ``isolate`` matches (None: nothing is isolated)
        self.isolates = isolates
        self.cost = cost
        self.max_batch_cost = max_batch_cost
        self.rate_limit = rate_limit
        self.return_exceptions = return_exceptions


def check_api_options(
    owner: str,
    isolate: Any,
    cost: Any,
    max_batch_cost: Any,
    rate_limit: Any,
    return_exceptions: Any = False,
) -> ApiOptions | None:
    """The options as ``ApiOptions`` (None when none is given), or an error naming the
    decorator (``owner``), the option and the fault."""
    if not isinstance(return_exceptions, bool):
        raise BatchDefinitionError(
            f"{owner}: return_exceptions must be a bool, got {return_exceptions!r}"
        )
    if return_exceptions and isolate is None:
        raise BatchDefinitionError(
            f"{owner}: return_exceptions=True returns the exceptions of items that fail on "
            "their own; pass isolate= (the exceptions to isolate) too"
        )
    if isolate is None and cost is None and max_batch_cost is None and rate_limit is None:
        return None
    if cost is not None and not callable(cost):
        raise BatchDefinitionError(
            f"{owner}: cost must be a function of one item returning a number >= 0 "
            f"(e.g. its tokens), got {cost!r}"
        )
    if max_batch_cost is not None:
        if not number_above(max_batch_cost, 0) or not math.isfinite(max_batch_cost):
            raise BatchDefinitionError(
                f"{owner}: max_batch_cost must be None or a number > 0, got {max_batch_cost!r}"
            )
        if cost is None:
            raise BatchDefinitionError(
                f"{owner}: max_batch_cost={max_batch_cost!r} needs cost= (a function giving "
                "each item's cost) to size the batches"
            )
    if rate_limit is not None:
        if not isinstance(rate_limit, RateLimit):
            raise BatchDefinitionError(
                f"{owner}: rate_limit must be a batche.RateLimit, got {rate_limit!r}"
            )
        if rate_limit.cost is not None and cost is None:
            raise BatchDefinitionError(
                f"{owner}: rate_limit={rate_limit!r} has a cost budget; pass cost= (a "
                "function giving each item's cost, e.g. its tokens) so that each call can "
                "be paced by what it costs"
            )
    return ApiOptions(
        _isolates(owner, isolate), cost, max_batch_cost, rate_limit, return_exceptions
    )


def _isolates(owner: str, isolate: Any) -> Callable[[BaseException], bool] | None:
    """The test of ``isolate=``: an exception type, a tuple of them, or a predicate."""
    if isolate is None:
        return None
    if isinstance(isolate, type):
        types: tuple[type[BaseException], ...] = (isolate,)
    elif isinstance(isolate, tuple):
        types = isolate
    elif callable(isolate):
        predicate = isolate
        return lambda exc: bool(predicate(exc))
    else:
        types = ()
    if not types or not all(isinstance(t, type) and issubclass(t, Exception) for t in types):
        raise BatchDefinitionError(
            f"{owner}: isolate must be an exception type (a subclass of Exception), a tuple "
            f"of them, or a function taking an exception and returning a bool, got {isolate!r}"
        )
    return lambda exc: isinstance(exc, types)
