"""Outfit scoring against the evaluation protocol's formulas and naive loops (tolerance 1e-6)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from embedder.calibration import UNCALIBRATED, Calibration
from embedder.compatibility import mean_pair_distance, outfit_distance, outfit_query_vector, pairwise_distances
from service.scoring import rank_candidates, score_outfit


def _unit(n: int, d: int, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.mark.parametrize("n", [2, 3, 7, 20])
def test_mean_distance_matches_training_metrics(n: int) -> None:
    x = _unit(n, 16, seed=n)
    naive = float(np.mean([np.linalg.norm(a - b) for a, b in itertools.combinations(x, 2)]))
    assert mean_pair_distance(pairwise_distances(x)) == pytest.approx(naive, abs=1e-6)
    assert outfit_distance(x) == pytest.approx(naive, abs=1e-6)  # what training.metrics scores outfits with


def test_pairwise_matches_naive_loop() -> None:
    x = _unit(6, 8, seed=1)
    d = pairwise_distances(x)
    for i, j in itertools.product(range(6), repeat=2):
        assert d[i, j] == pytest.approx(float(np.linalg.norm(x[i] - x[j])), abs=1e-6)
    assert np.all(np.diag(d) == 0.0)


def test_weakest_item_is_the_one_whose_removal_raises_the_score_most() -> None:
    x = _unit(5, 8, seed=3)
    cal = Calibration(slope=-4.0, intercept=3.0)
    s = score_outfit(x, cal)
    naive = []
    for i in range(5):
        rest = np.delete(x, i, axis=0)
        dists = [np.linalg.norm(a - b) for a, b in itertools.combinations(rest, 2)]
        naive.append(cal.probability(float(np.mean(dists))))
    assert s.weakest == int(np.argmax(naive))
    assert s.score_without_weakest == pytest.approx(max(naive), abs=1e-6)  # naive loop runs in float32
    assert 0.0 <= s.score <= 1.0
    assert s.score == pytest.approx(1 / (1 + math.exp(-(-4.0 * s.mean_distance + 3.0))), abs=1e-12)


def test_an_outlier_is_the_weakest_item() -> None:
    base = np.array([1.0, 0.0, 0.0, 0.0], dtype=np.float32)
    near = [base + 0.05 * np.eye(4, dtype=np.float32)[k] for k in (1, 2, 3)]
    outlier = np.array([-1.0, 0.0, 0.0, 0.0], dtype=np.float32)
    x = np.stack([*near, outlier])
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    assert score_outfit(x, UNCALIBRATED).weakest == 3


def test_two_item_outfit_has_no_weakest_item() -> None:
    s = score_outfit(_unit(2, 4, seed=0), UNCALIBRATED)
    assert s.weakest is None and s.score_without_weakest is None


def test_single_item_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 2"):
        score_outfit(_unit(1, 4, seed=0), UNCALIBRATED)


def test_fitb_ranking_matches_training_protocol() -> None:
    outfit, cands = _unit(3, 16, seed=5), _unit(4, 16, seed=6)
    order, cos, dist = rank_candidates(outfit, cands)
    mean = outfit.mean(axis=0)
    expected_cos = cands @ mean / np.linalg.norm(mean)
    np.testing.assert_allclose(cos, expected_cos, atol=1e-6)
    assert order[0] == int(np.argmax(expected_cos))
    assert list(cos[order]) == sorted(cos, reverse=True)
    naive = [np.mean([np.linalg.norm(c - o) for o in outfit]) for c in cands]
    np.testing.assert_allclose(dist, naive, atol=1e-6)


def test_query_vector_is_normalised_and_survives_cancellation() -> None:
    x = _unit(3, 8, seed=2)
    assert np.linalg.norm(outfit_query_vector(x)) == pytest.approx(1.0, abs=1e-6)
    v = x[:1]
    assert np.allclose(outfit_query_vector(np.concatenate([v, -v])), v[0])
