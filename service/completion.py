"""Whole outfits: beam search over per-category candidates for the best calibrated outfit score.

Independent per-category top-1 picks each item for its closeness to the seeds only; two such picks can
clash with each other. Here every partial outfit is scored as a whole (mean pairwise distance of all its
items, the quantity the calibrated score is monotone in), the `beam_width` best survive each category,
and the finished outfits are ranked by that score. Work per request is bounded:
candidates x beam_width distance rows per target category.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

# A category is a default target when at least this share of training outfits holding each seed category
# (and each target already chosen) also hold it: on Mango, tops -> bottoms, shoes, jewellery, bags;
# all-body -> shoes, jewellery, bags (docs/SERVICE.md).
MIN_COOCCURRENCE = 0.5


@dataclass(frozen=True)
class SearchBounds:
    """Per-request work: candidates per target category and partial outfits kept after each category."""

    candidates: int = 20
    beam_width: int = 10


@dataclass(frozen=True)
class Beam:
    """One finished outfit: the index of the chosen candidate in each target category's pool."""

    picks: tuple[int, ...]
    mean_distance: float


def default_targets(
    cooccurrence: Mapping[str, Any] | None, seed_categories: Sequence[str], known: Iterable[str],
    *, min_share: float = MIN_COOCCURRENCE,
) -> tuple[list[str], str]:
    """(targets, how they were chosen): categories that commonly co-occur with the seeds' in the training
    outfits, added greedily (most common first) while each co-occurs with every seed and every earlier
    target (so tops+bottoms and all-body do not both come). Without counts: every other category."""
    seeds = list(dict.fromkeys(seed_categories))
    others = [c for c in sorted(known) if c not in seeds]
    per = (cooccurrence or {}).get("per_category") or {}
    pairs = (cooccurrence or {}).get("pairs") or {}
    if not per or not all(per.get(s) for s in seeds):
        return others, "all-other-categories"

    def share(given: str, cat: str) -> float:
        return float(pairs.get(given, {}).get(cat, 0)) / float(per[given])

    chosen: list[str] = []
    while True:
        scored = [(min(share(g, c) for g in seeds + chosen), c) for c in others if c not in chosen and c in per]
        scored = [(s, c) for s, c in scored if s >= min_share]
        if not scored:
            return chosen, "co-occurrence"
        chosen.append(min(scored, key=lambda t: (-t[0], t[1]))[1])  # most common; ties by name


def _distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(n, d) x (m, d) -> (n, m) Euclidean distances (float64)."""
    sq = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * (a @ b.T)
    return np.sqrt(np.maximum(sq, 0.0))


def beam_search(
    seeds: np.ndarray, pools: Sequence[np.ndarray], *, beam_width: int
) -> tuple[list[Beam], int]:
    """Outfits of the seeds plus one candidate from each pool, best (lowest mean pairwise distance) first.

    Returns up to `beam_width` distinct outfits and the number of partial outfits evaluated. A partial outfit
    keeps the sum of its pairwise distances, so adding a candidate costs one distance row, not a rescore.
    """
    s = np.asarray(seeds, dtype=np.float64)
    if len(s) < 1 or any(len(p) == 0 for p in pools):
        raise ValueError("beam search needs at least one seed and a non-empty pool per category")
    seed_sum = float(np.triu(_distances(s, s), k=1).sum())
    # Each state: picks so far, their vectors (stacked after the seeds) and the sum of pairwise distances.
    states: list[tuple[tuple[int, ...], np.ndarray, float]] = [((), s, seed_sum)]
    evaluated = 0
    for pool in pools:
        p = np.asarray(pool, dtype=np.float64)
        sums = np.array([[total + float(row) for row in _distances(p, items).sum(1)] for _, items, total in states])
        evaluated += sums.size
        # Lowest sums first; ties broken by state then candidate order, so results are deterministic.
        order = np.argsort(sums, axis=None, kind="stable")[:beam_width]
        states = [
            (states[i][0] + (j,), np.vstack([states[i][1], p[j]]), float(sums[i, j]))
            for i, j in (divmod(int(o), len(p)) for o in order)
        ]
    n = len(s) + len(pools)
    pairs = n * (n - 1) / 2
    return [Beam(picks, total / pairs) for picks, _, total in states], evaluated


def pick_outfits(beams: Sequence[Beam], scores: Sequence[float], *, n: int, diversity: float) -> list[int]:
    """Indices of n outfits: best score first, then by MMR over outfits (similarity = share of the added
    items two outfits have in common), so at diversity > 0 the outfits differ in more than one item."""
    if not beams:
        return []
    order = sorted(range(len(beams)), key=lambda i: -scores[i])
    if diversity <= 0:
        return order[:n]
    slots = max(len(beams[0].picks), 1)
    chosen = [order[0]]
    while len(chosen) < min(n, len(beams)):
        def gain(i: int) -> float:
            overlap = max(sum(a == b for a, b in zip(beams[i].picks, beams[j].picks, strict=True)) / slots
                          for j in chosen)
            return (1.0 - diversity) * scores[i] - diversity * overlap

        chosen.append(max((i for i in order if i not in chosen), key=gain))
    return chosen
