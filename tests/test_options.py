"""The option checks of cache_batch_variable: each fault fails at decoration, named."""

from __future__ import annotations

from typing import Any

import pytest

from batche import BatchDefinitionError, cache_batch_variable


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"maxsize": -1}, "maxsize must be None or an int >= 0, got -1"),
        ({"maxsize": "10"}, "maxsize must be None or an int >= 0, got '10'"),
        ({"ttl": 0}, "ttl must be a number of seconds > 0, got 0"),
        ({"cache": {}, "maxsize": 3}, "pass either cache= or maxsize=/ttl=, not both"),
        ({"cache": [1]}, "cache must be a MutableMapping"),
        ({"key": "id"}, "key must be callable"),
        ({"max_batch_size": 0}, "max_batch_size must be None or an int >= 1, got 0"),
        ({"ignore": [1]}, "ignore must be a name or names of parameters"),
        ({"batch_variable_name": 3}, "batch_variable_name must be a parameter name"),
        ({"batch_variable_name": ""}, "batch_variable_name must be a parameter name or a tuple"),
        ({"batch_variable_name": ("ids", "")}, "batch_variable_name must be a parameter name"),
        ({"typed": 1}, "typed must be a bool, got 1"),
        ({"lock": True}, "lock applies to a store outside the process (cache=SQLiteStore"),
        ({"namespace": "n", "lock": True}, "namespace and lock apply to a store outside"),
        (
            {"namespace": "n", "version": 2, "local_maxsize": 9},
            "namespace, version and local_maxsize apply to a store outside the process",
        ),
    ],
)
def test_bad_options_fail_at_decoration(options: dict[str, Any], message: str) -> None:
    with pytest.raises(BatchDefinitionError, match=message.replace("(", r"\(").replace(")", r"\)")):
        cache_batch_variable(**options)
