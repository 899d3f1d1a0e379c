"""Outfit scoring on L2-normalised embeddings: calibrated score, weakest item, FITB ranking.

The formulas are the evaluation protocol's, imported from `embedder.compatibility` (which
`training.metrics` uses too), so what the service answers is what the model was evaluated on.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from embedder.calibration import Calibration
from embedder.compatibility import (
    completion_distances,
    fitb_scores,
    mean_pair_distance,
    outfit_query_vector,
    pairwise_distances,
)

# Re-exported: the routes and recommenders score through this module.
__all__ = ["OutfitScore", "completion_distances", "outfit_query_vector", "rank_candidates", "score_outfit"]


@dataclass(frozen=True)
class OutfitScore:
    score: float
    mean_distance: float
    pairwise: np.ndarray
    # Index of the item whose removal raises the score most, and the score without it (n >= 3 only).
    weakest: int | None
    score_without_weakest: float | None
    scores_without: list[float] | None


def score_outfit(emb: np.ndarray, calibration: Calibration) -> OutfitScore:
    d = pairwise_distances(emb)
    mean = mean_pair_distance(d)
    n = len(d)
    weakest: int | None = None
    without: list[float] | None = None
    if n >= 3:
        keep = [np.delete(np.arange(n), i) for i in range(n)]
        without = [calibration.probability(mean_pair_distance(d[np.ix_(k, k)])) for k in keep]
        weakest = int(np.argmax(without))
    return OutfitScore(
        score=calibration.probability(mean),
        mean_distance=mean,
        pairwise=d,
        weakest=weakest,
        score_without_weakest=None if weakest is None or without is None else without[weakest],
        scores_without=without,
    )


def rank_candidates(outfit: np.ndarray, candidates: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """FITB: (order best-first, cosine to outfit mean, mean distance to the outfit's items)."""
    cos, dist = fitb_scores(outfit, candidates)
    # Stable sort on -cos: ties keep the caller's candidate order.
    order = np.argsort(-cos, kind="stable")
    return order, cos, dist
