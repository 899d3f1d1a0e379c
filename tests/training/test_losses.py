"""Each loss against a naive per-triplet loop (as pytorch-metric-learning's tests do)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from training.losses import PseudoTripletLoss, SelfSupervisedLoss, TripletMarginLoss
from training.matching import match_with_options

TOL = 1e-5


def naive_triplet(a: torch.Tensor, p: torch.Tensor, n: torch.Tensor, margin: float) -> float:
    total = 0.0
    for k in range(len(a)):
        d_ap = math.sqrt(sum((float(a[k, j]) - float(p[k, j])) ** 2 for j in range(a.shape[1])))
        d_an = math.sqrt(sum((float(a[k, j]) - float(n[k, j])) ** 2 for j in range(a.shape[1])))
        total += max(0.0, d_ap - d_an + margin)
    return total / len(a)


def unit(n: int, d: int, seed: int) -> torch.Tensor:
    return F.normalize(torch.randn(n, d, generator=torch.Generator().manual_seed(seed)), dim=1)


@pytest.mark.parametrize("margin", [0.1, 0.4, 1.0])
def test_triplet_loss_matches_naive_loop(margin: float) -> None:
    a, p, n = unit(17, 8, 0), unit(17, 8, 1), unit(17, 8, 2)
    got = float(TripletMarginLoss(margin=margin)(a, p, n))
    assert got == pytest.approx(naive_triplet(a, p, n, margin), abs=TOL)
    assert got > 0


def test_triplet_loss_zero_when_negatives_far() -> None:
    a = unit(5, 4, 3)
    assert float(TripletMarginLoss(margin=0.4)(a, a, -a)) == pytest.approx(0.0, abs=TOL)


def test_triplet_loss_gradient_finite_when_anchor_equals_positive() -> None:
    a = unit(4, 6, 4).requires_grad_(True)
    loss = TripletMarginLoss(margin=0.4)(a, a, unit(4, 6, 5))
    loss.backward()
    assert a.grad is not None and torch.isfinite(a.grad).all()


def test_triplet_loss_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="margin must be positive"):
        TripletMarginLoss(margin=0.0)
    with pytest.raises(ValueError, match="share one"):
        TripletMarginLoss()(unit(3, 4, 0), unit(2, 4, 1), unit(3, 4, 2))


def test_self_supervised_loss_is_triplet_of_original_shape_appearance() -> None:
    x, s, a = unit(9, 8, 10), unit(9, 8, 11), unit(9, 8, 12)
    got = float(SelfSupervisedLoss(triplet=TripletMarginLoss(margin=0.4))(x, s, a))
    assert got == pytest.approx(naive_triplet(x, s, a, 0.4), abs=TOL)


def test_pseudo_loss_matches_naive_nearest_neighbour_triplets() -> None:
    a, p, n = unit(6, 8, 20), unit(6, 8, 21), unit(6, 8, 22)
    unl = unit(40, 8, 23)
    loss = PseudoTripletLoss(triplet=TripletMarginLoss(margin=0.4))
    idx = match_with_options(a, p, n, unl).indices
    got = float(loss(unl[idx.anchor], unl[idx.positive], unl[idx.negative]))

    def nearest(q: torch.Tensor) -> int:
        return min(range(len(unl)), key=lambda j: float(torch.dist(q, unl[j])))

    pa = torch.stack([unl[nearest(q)] for q in a])
    pp = torch.stack([unl[nearest(q)] for q in p])
    pn = torch.stack([unl[nearest(q)] for q in n])
    assert got == pytest.approx(naive_triplet(pa, pp, pn, 0.4), abs=TOL)
