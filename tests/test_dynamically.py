"""The decorator: its option checks at decoration time."""

from __future__ import annotations

import pytest

from batche import BatchArgumentError, BatchDefinitionError, dynamically


def test_bad_input_and_options() -> None:
    f = dynamically(lambda xs: xs)
    with pytest.raises(BatchArgumentError, match=r"must be a list of items, got str; use .one"):
        f("abc")
    with pytest.raises(BatchDefinitionError, match="batch_size must be an int >= 1, got 0"):
        dynamically(batch_size=0)
    with pytest.raises(BatchDefinitionError, match="timeout_ms must be a number >= 0"):
        dynamically(timeout_ms=-1)
    with pytest.raises(BatchDefinitionError, match="pad_token must be a dict"):
        dynamically(pad_token=[0])
    f.close()
