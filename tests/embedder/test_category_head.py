"""The category head: a linear probe on embeddings, stored beside the checkpoint and checked on load."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from embedder.category_head import (
    HEAD_FILE,
    fit_category_head,
    load_category_head,
    save_category_head,
)
from embedder.checkpoint import CheckpointError


def _blobs(n: int = 300, d: int = 16, seed: int = 0) -> tuple[np.ndarray, list[str]]:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((3, d)) * 3
    y = rng.integers(0, 3, n)
    x = centres[y] + rng.standard_normal((n, d))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x.astype(np.float32), [("bags", "shoes", "tops")[i] for i in y]


def test_probabilities_equal_sklearn_and_predict_is_right_on_separable_data() -> None:
    from sklearn.linear_model import LogisticRegression

    x, y = _blobs()
    head = fit_category_head(x[:200], y[:200], model_version="m" * 16)
    assert head.classes == ("bags", "shoes", "tops") and head.dim == 16
    x64 = x.astype(np.float64)
    ref = LogisticRegression(C=10.0, max_iter=2000, random_state=0).fit(x64[:200], y[:200])
    assert head.probabilities(x[200:]) == pytest.approx(ref.predict_proba(x64[200:]), abs=1e-9)
    pred = head.predict(x[200:])
    assert np.mean([p == t for (p, _), t in zip(pred, y[200:], strict=True)]) > 0.95
    assert all(0.0 < conf <= 1.0 for _, conf in pred)
    assert head.predict(x[0])[0][0] == head.predict(x[:1])[0][0]
    with pytest.raises(ValueError):
        fit_category_head(x[:10], ["tops"] * 10, model_version="m")


def test_save_load_roundtrip_and_refusals(tmp_path: Path) -> None:
    x, y = _blobs()
    head = fit_category_head(x, y, model_version="abc")
    assert load_category_head(tmp_path, model_version="abc") is None  # no head: the service falls back
    save_category_head(tmp_path, head)
    back = load_category_head(tmp_path, model_version="abc")
    assert back is not None and back.classes == head.classes
    assert back.probabilities(x) == pytest.approx(head.probabilities(x), abs=1e-12)
    with pytest.raises(CheckpointError, match="fitted on model abc"):
        load_category_head(tmp_path, model_version="other")
    raw = json.loads((tmp_path / HEAD_FILE).read_text())
    for broken in ("{not json", json.dumps({**raw, "bias": [0.0]}), json.dumps({**raw, "format": 9}),
                   json.dumps({**raw, "weight": [[float("nan")] * 16] * 3}), json.dumps({"format": 1})):
        (tmp_path / HEAD_FILE).write_text(broken)
        with pytest.raises(CheckpointError, match="category head is unreadable"):
            load_category_head(tmp_path, model_version="abc")
