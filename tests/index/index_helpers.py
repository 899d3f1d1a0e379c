"""Reference computations for index tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from index.store import ItemRecord

# publish_synthetic(n, dim, *, policy=None, seed=0, root=None) -> (root, records, vectors)
Publish = Callable[..., tuple[Path, list[ItemRecord], np.ndarray]]


def exact_topk(
    queries: np.ndarray, vectors: np.ndarray, k: int, rows: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Reference: brute-force inner product over `rows` (default all), returned as (row ids, scores)."""
    rows = np.arange(len(vectors)) if rows is None else rows
    scores = queries @ vectors[rows].T
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return rows[order], np.take_along_axis(scores, order, axis=1)
