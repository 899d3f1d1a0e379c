"""Maximal marginal relevance (Carbonell & Goldstein, 1998): varied results within a category.

Each next pick maximises `(1 - diversity) * relevance - diversity * (highest similarity to the picks so far)`,
so near-duplicates of an item already shown fall back behind slightly less relevant but different ones.
"""

from __future__ import annotations

import numpy as np

# Candidates fetched per shown item when diversity > 0: MMR can only choose among what it is given.
POOL_FACTOR = 4
MAX_POOL = 50


def pool_size(per_category: int, diversity: float) -> int:
    """How many nearest items of a category to fetch for `per_category` shown ones."""
    if diversity <= 0:
        return per_category
    return max(per_category, min(MAX_POOL, per_category * POOL_FACTOR))


def mmr_order(relevance: np.ndarray, vectors: np.ndarray, *, k: int, diversity: float) -> list[int]:
    """Indices of up to k candidates in MMR order; `vectors` are L2-normalised (similarity = cosine).

    diversity 0 is the relevance order itself (ties keep the input order); 1 ignores relevance after the
    first pick. Bounded work: O(k * n) similarities for n candidates.
    """
    if not 0.0 <= diversity <= 1.0:
        raise ValueError(f"diversity must be in [0, 1], not {diversity}")
    rel = np.asarray(relevance, dtype=np.float64)
    n = len(rel)
    k = min(k, n)
    if k <= 0:
        return []
    if diversity == 0.0:
        return [int(i) for i in np.argsort(-rel, kind="stable")[:k]]
    x = np.asarray(vectors, dtype=np.float64)
    sim = x @ x.T
    chosen: list[int] = []
    # Highest similarity of each candidate to anything chosen so far (-inf before the first pick).
    closest = np.full(n, -np.inf)
    free = np.ones(n, dtype=bool)
    for _ in range(k):
        penalty = np.where(np.isfinite(closest), closest, 0.0)
        gain = np.where(free, (1.0 - diversity) * rel - diversity * penalty, -np.inf)
        pick = int(np.argmax(gain))  # first maximum: ties keep the input order
        chosen.append(pick)
        free[pick] = False
        closest = np.maximum(closest, sim[pick])
    return chosen


def mean_pairwise_similarity(vectors: np.ndarray) -> float:
    """Mean cosine over unordered pairs of normalised vectors (lower = more varied); nan below 2 items."""
    x = np.asarray(vectors, dtype=np.float64)
    n = len(x)
    if n < 2:
        return float("nan")
    sim = x @ x.T
    return float(sim[np.triu_indices(n, k=1)].mean())
