"""Outfit scoring on L2-normalised embeddings: pairwise distances, calibrated score, weakest item, FITB.

Same formulas as the evaluation protocol (compatibility = mean pairwise Euclidean distance of normalised
embeddings; FITB = cosine to the normalised outfit mean). Restated here in a few lines of numpy because
the service never imports `training`; tests check both agree.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from embedder.calibration import Calibration


def pairwise_distances(x: np.ndarray) -> np.ndarray:
    """(n, d) -> (n, n) Euclidean distances, exactly zero on the diagonal."""
    x = np.asarray(x, dtype=np.float64)
    sq = np.sum(x * x, axis=1)
    d = np.sqrt(np.maximum(sq[:, None] + sq[None, :] - 2.0 * (x @ x.T), 0.0))
    np.fill_diagonal(d, 0.0)
    return d


def mean_pairwise_distance(d: np.ndarray) -> float:
    """Mean over unordered pairs of a distance matrix (n >= 2)."""
    n = len(d)
    if n < 2:
        raise ValueError("an outfit needs at least 2 items to score")
    return float(d[np.triu_indices(n, k=1)].mean())


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
    mean = mean_pairwise_distance(d)
    n = len(d)
    weakest: int | None = None
    without: list[float] | None = None
    if n >= 3:
        keep = [np.delete(np.arange(n), i) for i in range(n)]
        without = [calibration.probability(mean_pairwise_distance(d[np.ix_(k, k)])) for k in keep]
        weakest = int(np.argmax(without))
    return OutfitScore(
        score=calibration.probability(mean),
        mean_distance=mean,
        pairwise=d,
        weakest=weakest,
        score_without_weakest=None if weakest is None or without is None else without[weakest],
        scores_without=without,
    )


def completion_distances(outfit: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """(n,) mean pairwise distance of `outfit` plus each candidate: what `score_outfit` sees for the outfit
    with that one item added (for a one-item outfit, the pair's distance)."""
    x = np.asarray(outfit, dtype=np.float64)
    c = np.asarray(candidates, dtype=np.float64)
    m = len(x)
    if m < 1:
        raise ValueError("an outfit needs at least 1 item to be completed")
    within = float(pairwise_distances(x)[np.triu_indices(m, k=1)].sum()) if m >= 2 else 0.0
    to_outfit = np.linalg.norm(c[:, None, :] - x[None, :, :], axis=2).sum(axis=1)
    return np.asarray((within + to_outfit) / (m * (m + 1) / 2), dtype=np.float64)


def outfit_query_vector(emb: np.ndarray) -> np.ndarray:
    """Normalised mean of the outfit's normalised embeddings: the query for complements and FITB."""
    emb = np.asarray(emb, dtype=np.float32)
    # One item (the common query): its own row, bit for bit what mean() returns, without mean()'s overhead.
    mean = emb[0] if len(emb) == 1 else emb.mean(axis=0)
    norm = float(np.linalg.norm(mean))
    if norm < 1e-12:
        # Opposite embeddings cancel out; any direction is as good as another, keep it deterministic.
        return np.asarray(emb[0], dtype=np.float32)
    return (mean / norm).astype(np.float32)


def rank_candidates(outfit: np.ndarray, candidates: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """FITB: (order best-first, cosine to outfit mean, mean distance to the outfit's items)."""
    q = outfit_query_vector(outfit)
    cos = candidates.astype(np.float64) @ q.astype(np.float64)
    dist = np.linalg.norm(candidates[:, None, :].astype(np.float64) - outfit[None, :, :], axis=2).mean(axis=1)
    # Stable sort on -cos: ties keep the caller's candidate order.
    order = np.argsort(-cos, kind="stable")
    return order, cos, dist
