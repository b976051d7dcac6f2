"""Padded feature batches (``pad_token=``): numpy and torch features keep their kind and dtype."""

from __future__ import annotations

from typing import Any

import pytest

from batche import dynamically


def test_padded_features_keep_their_dtype() -> None:
    np = pytest.importorskip("numpy")
    seen: list[dict[str, Any]] = []

    @dynamically(batch_size=8, timeout_ms=0, pad_token={"input_ids": 0, "weights": 0.5})
    def model(features: dict[str, Any]) -> Any:
        seen.append(features)
        return features["input_ids"].sum(axis=1) + features["weights"].sum(axis=1)

    out = model(
        {
            "input_ids": [np.array([1, 2, 3]), np.array([4])],
            "weights": [
                np.array([0.25, 0.25, 0.25], dtype=np.float32),
                np.array([1.0], dtype=np.float32),
            ],
        }
    )
    batch = seen[0]
    assert batch["input_ids"].tolist() == [[1, 2, 3], [4, 0, 0]]
    assert batch["weights"].dtype == np.float32
    assert batch["weights"].tolist() == [[0.25, 0.25, 0.25], [1.0, 0.5, 0.5]]
    np.testing.assert_allclose(out, [6.75, 6.0])
    single = model.one({"input_ids": np.array([7, 7]), "weights": np.array([0.0, 0.0])})
    assert single == pytest.approx(14.0)
    model.close()


def test_padded_torch_features_stay_tensors() -> None:
    torch = pytest.importorskip("torch")  # optional: not among the test extras (it is large)
    seen: list[dict[str, Any]] = []

    @dynamically(batch_size=8, timeout_ms=0, pad_token={"input_ids": 0, "weights": 0.5})
    def model(features: dict[str, Any]) -> Any:
        seen.append(features)
        return features["input_ids"].sum(dim=1) + features["weights"].sum(dim=1)

    out = model(
        {
            "input_ids": [torch.tensor([1, 2, 3]), torch.tensor([4])],
            "weights": [torch.tensor([0.25, 0.25, 0.25]), torch.tensor([1.0])],
        }
    )
    batch = seen[0]
    assert batch["input_ids"].tolist() == [[1, 2, 3], [4, 0, 0]]
    assert batch["weights"].dtype == torch.float32
    assert batch["weights"].tolist() == [[0.25, 0.25, 0.25], [1.0, 0.5, 0.5]]
    assert isinstance(out, torch.Tensor)
    assert out.tolist() == pytest.approx([6.75, 6.0])
    model.close()
