"""The compatibility formulas, in one place for evaluation (`training.metrics`) and serving (`service.scoring`).

On L2-normalised item embeddings (the space the model is trained and indexed in):
- outfit compatibility is the mean pairwise Euclidean distance of its items (lower = more compatible),
  and a candidate completes an outfit by the distance of the outfit with it added;
- a FITB candidate is ranked by cosine to the normalised mean of the outfit (the paper's protocol), or by
  its mean Euclidean distance to the outfit's items (the reference code's protocol).
Numpy only, float64 arithmetic: the service imports it without torch or training.
"""

from __future__ import annotations

import numpy as np


def pairwise_distances(x: np.ndarray) -> np.ndarray:
    """(n, d) -> (n, n) Euclidean distances of the rows, exactly zero on the diagonal."""
    x = np.asarray(x, dtype=np.float64)
    sq = np.sum(x * x, axis=1)
    d = np.sqrt(np.maximum(sq[:, None] + sq[None, :] - 2.0 * (x @ x.T), 0.0))
    np.fill_diagonal(d, 0.0)
    return d


def mean_pair_distance(d: np.ndarray) -> float:
    """Mean over the unordered pairs of an (n, n) distance matrix (n >= 2)."""
    n = len(d)
    if n < 2:
        raise ValueError("an outfit needs at least 2 items to score")
    return float(d[np.triu_indices(n, k=1)].mean())


def outfit_distance(x: np.ndarray) -> float:
    """Mean pairwise distance of an outfit's (n, d) embeddings: its compatibility, lower is better."""
    if len(x) < 2:
        raise ValueError("an outfit needs at least 2 items to score")
    return mean_pair_distance(pairwise_distances(x))


def completion_distances(outfit: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """(n,) mean pairwise distance of `outfit` plus each candidate: what `outfit_distance` gives for the
    outfit with that one item added (for a one-item outfit, the pair's distance)."""
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


def fitb_scores(outfit: np.ndarray, candidates: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per candidate: (cosine to the outfit's query vector, mean Euclidean distance to the outfit's items)."""
    outfit = np.asarray(outfit, dtype=np.float64)
    candidates = np.asarray(candidates, dtype=np.float64)
    cos = candidates @ outfit_query_vector(outfit).astype(np.float64)
    dist = np.linalg.norm(candidates[:, None, :] - outfit[None, :, :], axis=2).mean(axis=1)
    return cos, dist
