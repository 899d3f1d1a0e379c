"""Metrics on toy cases computed by hand."""

from __future__ import annotations

import numpy as np
import pytest

from catalog.types import CompatibilityExample, FITBQuestion, SplitData
from embedder.compatibility import outfit_distance
from training.metrics import EmbeddingLookup, evaluate_split, fitb_predictions


def test_mean_pairwise_distance_by_hand() -> None:
    x = np.array([[0.0, 0.0], [3.0, 4.0], [0.0, 4.0]])
    assert outfit_distance(x) == pytest.approx((5.0 + 4.0 + 3.0) / 3)


def test_fitb_protocols_can_disagree_by_hand() -> None:
    # Outfit items at angles 0° and 90°: their mean points at 45°.
    ids = ["q1", "q2", "c45", "c0"]
    emb = np.array([[1, 0], [0, 1], [np.cos(np.pi / 4), np.sin(np.pi / 4)], [1, 0.001]], dtype=np.float32)
    lookup = EmbeddingLookup(ids, emb)
    q = FITBQuestion("s", ("q1", "q2"), ("c0", "c45"), correct=1, blank_position=3)
    preds = fitb_predictions([q], lookup)
    assert preds["cosine"][0] == 1  # c45 is exactly along the mean
    # Summed distances: c45 -> 2·|(0.707-1, 0.707)| = 1.531; c0 -> ~0 + sqrt(2) = 1.413: c0 wins.
    assert preds["distance"][0] == 0


def test_auc_and_fitb_by_hand() -> None:
    ids = ["a", "b", "c", "d"]
    emb = np.array([[1, 0], [0.9, 0.1], [0, 1], [-1, 0]], dtype=np.float32)
    split = SplitData(
        kind="nondisjoint", name="test",
        fitb=[FITBQuestion("s", ("a",), ("d", "b", "c"), correct=1, blank_position=2)],
        compatibility=[CompatibilityExample(1, ("a", "b")), CompatibilityExample(0, ("a", "d")),
                       CompatibilityExample(0, ("b", "c"))],
    )
    m = evaluate_split(split, ids, emb)
    assert m["fitb"] == 1.0 and m["fitb_distance"] == 1.0
    assert m["auc"] == 1.0  # the positive pair is the closest one
    split.compatibility[0] = CompatibilityExample(1, ("a", "d"))
    split.compatibility[1] = CompatibilityExample(0, ("a", "b"))
    assert evaluate_split(split, ids, emb)["auc"] == pytest.approx(0.0)
