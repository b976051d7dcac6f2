"""Padded feature batches for model inference (``dynamically(pad_token=...)``).

A request is a dict of features: each a 2-D array (one row per item) or a list of 1-D
arrays of different lengths, numpy arrays or torch tensors. A batch pads every feature to
the longest row among its items with that feature's pad value, keeping the feature's
dtype (a float feature padded with 0 stays float); torch features stay torch tensors.
numpy is imported only here, when padding is asked for; torch only if the caller uses it.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Mapping
from typing import Any

from ._errors import BatchArgumentError, BatchDefinitionError

Row = dict[str, Any]


class Padder:
    """Splits feature dicts into rows and pads rows back into a batch."""

    def __init__(self, pad_token: Mapping[str, Any], fname: str) -> None:
        try:
            import numpy as np
        except ImportError:  # pragma: no cover - numpy is installed with the test extras
            raise BatchDefinitionError(
                f"{fname}: pad_token= needs numpy (pip install 'batche[numpy]')"
            ) from None
        self._np = np
        self.pad_token = dict(pad_token)
        self.fname = fname

    def rows(self, features: Any) -> list[Row]:
        """The rows (items) of one request's features."""
        np = self._np
        if not isinstance(features, Mapping) or not features:
            raise BatchArgumentError(
                f"{self.fname}: with pad_token=, a call takes a dict of feature arrays, got "
                f"{type(features).__name__}"
            )
        columns = {}
        for name, value in features.items():
            if isinstance(value, np.ndarray) or _is_tensor(value):
                if value.ndim == 0:
                    raise BatchArgumentError(
                        f"{self.fname}: feature {name!r} must have one row per item, got a scalar"
                    )
                columns[name] = list(value)
            else:
                columns[name] = [row if _is_tensor(row) else np.asarray(row) for row in value]
        counts = {name: len(rows) for name, rows in columns.items()}
        if len(set(counts.values())) > 1:
            shown = ", ".join(f"{n!r} has {c}" for n, c in counts.items())
            raise BatchArgumentError(f"{self.fname}: features must have as many rows: {shown}")
        names = list(columns)
        return [dict(zip(names, values)) for values in zip(*columns.values())]

    def single(self, features: Mapping[str, Any]) -> dict[str, list[Any]]:
        """One item's features (1-D each) as a request of one row."""
        return {
            name: [value if _is_tensor(value) else self._np.asarray(value)]
            for name, value in features.items()
        }

    def batch(self, rows: list[Row]) -> dict[str, Any]:
        """The rows as one dict of 2-D arrays, each feature padded to its longest row."""
        np = self._np
        out = {}
        for name in rows[0]:
            values = [row[name] for row in rows]
            if _is_tensor(values[0]):
                out[name] = self._torch_feature(name, values)
                continue
            dtype = np.result_type(*values)
            if name not in self.pad_token:
                shapes = {v.shape for v in values}
                if len(shapes) > 1:
                    raise BatchArgumentError(
                        f"{self.fname}: feature {name!r} has rows of different lengths and no "
                        f"pad value; add it to pad_token="
                    )
                out[name] = np.stack(values).astype(dtype, copy=False)
                continue
            longest = max((v.shape[0] if v.ndim else 1) for v in values)
            padded = np.full((len(values), longest), self.pad_token[name], dtype=dtype)
            for index, value in enumerate(values):
                flat = value.reshape(-1)
                padded[index, : flat.shape[0]] = flat
            out[name] = padded
        return out

    def _torch_feature(self, name: str, values: list[Any]) -> Any:
        """``batch`` for one feature of torch tensors."""
        torch = sys.modules["torch"]
        dtype = functools.reduce(torch.promote_types, (v.dtype for v in values))
        if name not in self.pad_token:
            if len({tuple(v.shape) for v in values}) > 1:
                raise BatchArgumentError(
                    f"{self.fname}: feature {name!r} has rows of different lengths and no "
                    f"pad value; add it to pad_token="
                )
            return torch.stack([v.to(dtype) for v in values])
        longest = max((v.shape[0] if v.ndim else 1) for v in values)
        padded = torch.full((len(values), longest), self.pad_token[name], dtype=dtype)
        for index, value in enumerate(values):
            flat = value.reshape(-1)
            padded[index, : flat.shape[0]] = flat
        return padded

    def empty(self) -> list[Any]:
        return []


def _is_tensor(value: Any) -> bool:
    """True for a torch tensor (torch is never imported here: the caller's data tells)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(value, torch.Tensor)
