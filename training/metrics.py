"""Evaluation protocol of the paper: FITB accuracy and compatibility AUC from item embeddings.

All metrics work on L2-normalised embeddings, the space the model is trained and indexed in; the formulas
are `embedder.compatibility`'s, shared with the service.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from sklearn.metrics import roc_auc_score

from catalog.types import CompatibilityExample, FITBQuestion, SplitData
from embedder.compatibility import fitb_scores, outfit_distance


class EmbeddingLookup:
    """item_id -> row of an (N, d) matrix, normalised once; unknown ids raise a KeyError naming them."""

    def __init__(self, ids: Sequence[str], emb: np.ndarray) -> None:
        if len(ids) != len(emb):
            raise ValueError(f"{len(ids)} ids but {len(emb)} embedding rows")
        norms = np.linalg.norm(emb, axis=1, keepdims=True)
        self.emb = (emb / np.maximum(norms, 1e-12)).astype(np.float32)
        self.row = {i: k for k, i in enumerate(ids)}

    def __call__(self, item_ids: Sequence[str]) -> np.ndarray:
        missing = [i for i in item_ids if i not in self.row]
        if missing:
            raise KeyError(f"no embedding for item ids {missing[:10]}")
        return self.emb[[self.row[i] for i in item_ids]]


def fitb_predictions(questions: Sequence[FITBQuestion], lookup: EmbeddingLookup) -> dict[str, np.ndarray]:
    """Chosen answer index per question for both protocols (`embedder.compatibility.fitb_scores`).

    `cosine` (the paper): highest cosine similarity to the mean outfit embedding.
    `distance` (reference code): smallest mean Euclidean distance to the outfit's items.
    """
    cos_pred = np.empty(len(questions), dtype=np.int64)
    dist_pred = np.empty(len(questions), dtype=np.int64)
    for n, q in enumerate(questions):
        cos, dist = fitb_scores(lookup(q.question), lookup(q.answers))
        cos_pred[n] = int(np.argmax(cos))
        dist_pred[n] = int(np.argmin(dist))
    return {"cosine": cos_pred, "distance": dist_pred}


def fitb_accuracy(questions: Sequence[FITBQuestion], lookup: EmbeddingLookup) -> dict[str, float]:
    if not questions:
        raise ValueError("no FITB questions to evaluate")
    truth = np.array([q.correct for q in questions])
    preds = fitb_predictions(questions, lookup)
    return {f"fitb_{name}": float(np.mean(p == truth)) for name, p in preds.items()}


def compatibility_scores(examples: Sequence[CompatibilityExample], lookup: EmbeddingLookup) -> np.ndarray:
    """Negative mean pairwise distance per outfit (higher = more compatible)."""
    return np.array([-outfit_distance(lookup(c.item_ids)) for c in examples], dtype=np.float64)


def compatibility_auc(examples: Sequence[CompatibilityExample], lookup: EmbeddingLookup) -> float:
    labels = np.array([c.label for c in examples])
    if len(set(labels.tolist())) < 2:
        raise ValueError("compatibility AUC needs both positive and negative outfits")
    return float(roc_auc_score(labels, compatibility_scores(examples, lookup)))


def evaluate_split(split: SplitData, ids: Sequence[str], emb: np.ndarray) -> dict[str, float]:
    """FITB (both protocols) and compatibility AUC of one split."""
    lookup = EmbeddingLookup(ids, emb)
    out = fitb_accuracy(split.fitb, lookup)
    out["auc"] = compatibility_auc(split.compatibility, lookup)
    out["fitb"] = out["fitb_cosine"]
    return out


def random_baseline(split: SplitData, *, dim: int = 64, seed: int = 0) -> dict[str, float]:
    """Random embeddings: the chance level the other features are compared against."""
    ids = sorted(split.item_ids())
    emb = np.random.default_rng(seed).standard_normal((len(ids), dim)).astype(np.float32)
    return evaluate_split(split, ids, emb)


def metrics_table(rows: Mapping[str, Mapping[str, float]]) -> str:
    """Markdown table of {name: {fitb, auc, ...}} for logs and docs."""
    lines = ["| features | FITB (cosine) | FITB (distance) | AUC |", "|---|---|---|---|"]
    for name, m in rows.items():
        lines.append(f"| {name} | {m['fitb_cosine']:.3f} | {m['fitb_distance']:.3f} | {m['auc']:.3f} |")
    return "\n".join(lines)
