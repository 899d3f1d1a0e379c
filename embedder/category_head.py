"""A category head: a linear probe (multinomial logistic regression) on the frozen embedder's output.

It reads the same L2-normalised embedding every backend returns, so an uploaded photo's category costs a
(C, d) matrix product after the embedding the service computes anyway. Stored beside the weights as
`category_head.json`, tied to them by `model_version` (checked on load).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from embedder.checkpoint import CheckpointError
from embedder.files import write_atomic

HEAD_FILE = "category_head.json"
HEAD_FORMAT = 1


@dataclass(frozen=True)
class CategoryHead:
    classes: tuple[str, ...]
    weight: np.ndarray  # (C, d)
    bias: np.ndarray  # (C,)
    model_version: str  # the embedder whose features it was fitted on
    metrics: dict[str, Any] = field(default_factory=dict)

    @property
    def dim(self) -> int:
        return int(self.weight.shape[1])

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        """(n, d) embeddings -> (n, C) class probabilities (softmax of the logits)."""
        z = np.asarray(features, dtype=np.float64) @ self.weight.T + self.bias
        z -= z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return np.asarray(e / e.sum(axis=1, keepdims=True), dtype=np.float64)

    def predict(self, features: np.ndarray) -> list[tuple[str, float]]:
        """Per embedding, (category, its probability)."""
        p = self.probabilities(np.asarray(features).reshape(-1, self.dim))
        best = p.argmax(axis=1)
        return [(self.classes[int(b)], float(p[i, b])) for i, b in enumerate(best)]

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": HEAD_FORMAT,
            "model_version": self.model_version,
            "classes": list(self.classes),
            "weight": self.weight.tolist(),
            "bias": self.bias.tolist(),
            "metrics": self.metrics,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CategoryHead:
        if d.get("format") != HEAD_FORMAT:
            raise ValueError(f"format {d.get('format')!r} is not {HEAD_FORMAT}")
        weight = np.asarray(d["weight"], dtype=np.float64)
        bias = np.asarray(d["bias"], dtype=np.float64)
        classes = tuple(str(c) for c in d["classes"])
        if weight.ndim != 2 or weight.shape[0] != len(classes) or bias.shape != (len(classes),) or len(classes) < 2:
            raise ValueError(f"shapes do not fit: weight {weight.shape}, bias {bias.shape}, {len(classes)} classes")
        if not (np.isfinite(weight).all() and np.isfinite(bias).all()):
            raise ValueError("weights are not finite")
        return cls(classes, weight, bias, str(d["model_version"]), dict(d.get("metrics", {})))


def fit_category_head(
    features: np.ndarray, labels: Sequence[str], *, model_version: str, c: float = 10.0, seed: int = 0
) -> CategoryHead:
    """Multinomial logistic regression of categories on embeddings (lbfgs, L2 strength 1/c)."""
    from sklearn.linear_model import LogisticRegression

    x = np.asarray(features, dtype=np.float64)
    classes = sorted(set(labels))
    if len(classes) < 2 or len(x) != len(labels):
        raise ValueError("a category head needs matching features and labels with at least 2 categories")
    y = np.array([classes.index(lab) for lab in labels])
    lr = LogisticRegression(C=c, max_iter=2000, random_state=seed).fit(x, y)
    return CategoryHead(tuple(classes), np.asarray(lr.coef_, dtype=np.float64),
                        np.asarray(lr.intercept_, dtype=np.float64), model_version)


def save_category_head(checkpoint: Path | str, head: CategoryHead) -> Path:
    """Write `category_head.json` into the checkpoint directory atomically."""
    path = Path(checkpoint) / HEAD_FILE
    write_atomic(path, json.dumps(head.to_dict(), sort_keys=True))
    return path


def load_category_head(checkpoint: Path | str, *, model_version: str) -> CategoryHead | None:
    """The checkpoint's head, None when it has none; CheckpointError when it is corrupt or was fitted on
    another model's embeddings."""
    path = Path(checkpoint) / HEAD_FILE
    if not path.is_file():
        return None
    try:
        head = CategoryHead.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{path}: category head is unreadable ({e}); refit it with "
                              "`outfit-compat category-head`") from e
    if head.model_version != model_version:
        raise CheckpointError(f"{path}: category head was fitted on model {head.model_version}, not "
                              f"{model_version}; refit it with `outfit-compat category-head`")
    return head
