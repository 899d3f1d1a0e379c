"""Compatibility-score calibration: mean pairwise distance -> probability the outfit is compatible.

"Calibration" in this module and in the card, the service and the API always means this score mapping; the
int8 export's activation-range calibration lives in `embedder.quantize` (names prefixed `int8`).

Fitted (Platt scaling) on the validation split's compatibility lines after training and stored in the
checkpoint card under `extra["calibration"]`, so the service turns raw distances into a [0, 1] score.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

CARD_KEY = "calibration"


@dataclass(frozen=True)
class Calibration:
    """p(compatible | d) = sigmoid(slope * d + intercept); slope < 0 when distance means incompatibility."""

    slope: float
    intercept: float
    fitted_on: str = ""
    n_examples: int = 0
    auc: float | None = None

    def probability(self, distance: float) -> float:
        z = self.slope * distance + self.intercept
        # Numerically stable sigmoid for large |z|.
        if z >= 0:
            return 1.0 / (1.0 + math.exp(-z))
        e = math.exp(z)
        return e / (1.0 + e)

    def probabilities(self, distances: np.ndarray) -> np.ndarray:
        """`probability` of many distances at once (float64; stable for large |z| as well)."""
        z = self.slope * np.asarray(distances, dtype=np.float64) + self.intercept
        return np.asarray(0.5 * (1.0 + np.tanh(0.5 * z)), dtype=np.float64)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Calibration:
        auc = d.get("auc")
        return cls(
            slope=float(d["slope"]),
            intercept=float(d["intercept"]),
            fitted_on=str(d.get("fitted_on", "")),
            n_examples=int(d.get("n_examples", 0)),
            auc=None if auc is None else float(auc),
        )


# Used when a checkpoint carries no fitted calibration (e.g. a random-init model): a fixed, documented
# mapping of normalised-embedding distance (range 0..2) centred at distance 1. Responses say it is
# uncalibrated.
UNCALIBRATED = Calibration(slope=-6.0, intercept=6.0, fitted_on="uncalibrated-default")


def fit_calibration(distances: np.ndarray, labels: np.ndarray, *, fitted_on: str) -> Calibration:
    """Platt scaling of mean pairwise distances against compatible (1) / incompatible (0) labels."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    d = np.asarray(distances, dtype=np.float64).reshape(-1, 1)
    y = np.asarray(labels, dtype=np.int64)
    if len(d) != len(y) or len(set(y.tolist())) < 2:
        raise ValueError("calibration needs matching distances and labels with both classes present")
    lr = LogisticRegression(C=1e4).fit(d, y)
    return Calibration(
        slope=float(lr.coef_[0, 0]),
        intercept=float(lr.intercept_[0]),
        fitted_on=fitted_on,
        n_examples=len(y),
        auc=float(roc_auc_score(y, -d[:, 0])),
    )


def calibration_from_card_extra(extra: dict[str, Any]) -> Calibration | None:
    raw = extra.get(CARD_KEY)
    return Calibration.from_dict(raw) if isinstance(raw, dict) else None
