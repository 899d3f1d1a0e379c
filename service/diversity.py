"""Maximal marginal relevance (Carbonell & Goldstein, 1998): varied results within a category.

Each next pick maximises `(1 - diversity) * relevance - diversity * (highest similarity to the picks so far)`,
so near-duplicates of an item already shown fall back behind slightly less relevant but different ones.
"""

from __future__ import annotations

from collections.abc import Sequence

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
    return mmr_orders([relevance], [vectors], k=k, diversity=diversity)[0]


def mmr_orders(relevances: Sequence[np.ndarray], vectors: Sequence[np.ndarray], *, k: int, diversity: float
               ) -> list[list[int]]:
    """`mmr_order` of several independent pools (one per category) at once: the pools are padded into one
    array, so a request pays k rounds of array operations, not k per category."""
    if not 0.0 <= diversity <= 1.0:
        raise ValueError(f"diversity must be in [0, 1], not {diversity}")
    rels = [np.asarray(r, dtype=np.float64) for r in relevances]
    if diversity == 0.0:
        return [[int(i) for i in np.argsort(-r, kind="stable")[:max(k, 0)]] for r in rels]
    sizes = np.array([len(r) for r in rels], dtype=np.int64)
    n = int(sizes.max(initial=0))
    picks = np.minimum(max(k, 0), sizes)  # per pool
    chosen: list[list[int]] = [[] for _ in rels]
    if n == 0 or not picks.any():
        return chosen
    d = max(np.asarray(v).shape[-1] for v in vectors)
    rel = np.zeros((len(rels), n))
    x = np.zeros((len(rels), n, d))
    free = np.zeros((len(rels), n), dtype=bool)  # padding is never free
    for p, (r, v) in enumerate(zip(rels, vectors, strict=True)):
        rel[p, :len(r)] = r
        x[p, :len(r)] = np.asarray(v, dtype=np.float64).reshape(len(r), d)
        free[p, :len(r)] = True
    sim = np.matmul(x, x.transpose(0, 2, 1))
    # Highest similarity of each candidate to anything chosen so far in its pool (-inf before the first pick).
    closest = np.full((len(rels), n), -np.inf)
    every = np.arange(len(rels))
    for step in range(int(picks.max())):
        penalty = np.where(np.isfinite(closest), closest, 0.0)
        gain = np.where(free, (1.0 - diversity) * rel - diversity * penalty, -np.inf)
        pick = np.argmax(gain, axis=1)  # first maximum: ties keep the input order
        active = np.flatnonzero(picks > step)
        for a in active.tolist():
            chosen[a].append(int(pick[a]))
        free[active, pick[active]] = False
        closest = np.maximum(closest, sim[every, pick])
    return chosen


def mean_pairwise_similarity(vectors: np.ndarray) -> float:
    """Mean cosine over unordered pairs of normalised vectors (lower = more varied); nan below 2 items."""
    x = np.asarray(vectors, dtype=np.float64)
    n = len(x)
    if n < 2:
        return float("nan")
    sim = x @ x.T
    return float(sim[np.triu_indices(n, k=1)].mean())
