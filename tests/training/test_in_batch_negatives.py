"""--negatives batch-all | batch-hard: L_l over every in-batch item of P's category (never A or P itself);
with only the triplet's own negative available it is the paper's loss exactly."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from training.config import ConfigError, TrainConfig, preset
from training.loop import train
from training.losses import InBatchTripletLoss, TripletMarginLoss


def _unit(x: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.normalize(x, dim=1)


def _loss(mode: str) -> InBatchTripletLoss:
    return InBatchTripletLoss(triplet=TripletMarginLoss(margin=0.4), mode=mode)


def _batch(b: int = 5, d: int = 8) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(0)
    a, p, n = (_unit(torch.randn(b, d, generator=g)) for _ in range(3))
    keys = torch.arange(3 * b).reshape(b, 3)
    return a, p, n, keys


@pytest.mark.parametrize("mode", ["all", "hard"])
def test_with_only_the_own_negative_it_is_the_paper_loss(mode: str) -> None:
    a, p, n, keys = _batch()
    # Every triplet's positive in a category of its own: its own N is its only in-batch negative.
    cats = torch.stack([torch.arange(5) + 10, torch.arange(5), torch.arange(5)], dim=1)
    expected = TripletMarginLoss(margin=0.4)(a, p, n)
    assert _loss(mode)(a, p, n, categories=cats, keys=keys) == pytest.approx(float(expected), abs=1e-6)


def test_batch_all_averages_and_batch_hard_takes_the_closest_negative() -> None:
    a, p, n, keys = _batch()
    cats = torch.tensor([[9, 0, 0]] * 5)  # one category: each anchor has 4 other P's and 5 N's as negatives
    cand = torch.cat([p, n])
    d_ap = (a - p).norm(dim=1)
    d_an = torch.cdist(a, cand)
    mask = torch.ones(5, 10, dtype=torch.bool)
    mask[torch.arange(5), torch.arange(5)] = False  # P_i itself is not a negative
    hinge = torch.relu(d_ap[:, None] - d_an + 0.4)
    expected_all = ((hinge * mask).sum(1) / mask.sum(1)).mean()
    expected_hard = torch.relu(d_ap - d_an.masked_fill(~mask, float("inf")).min(1).values + 0.4).mean()
    assert _loss("all")(a, p, n, categories=cats, keys=keys) == pytest.approx(float(expected_all), abs=1e-5)
    assert _loss("hard")(a, p, n, categories=cats, keys=keys) == pytest.approx(float(expected_hard), abs=1e-5)


def test_copies_of_the_positive_elsewhere_in_the_batch_are_not_negatives() -> None:
    a, p, n, keys = _batch(3)
    n[0] = -a[0]  # anchor 0's own negative is as far as it can be: its hinge is 0
    # Triplets 1 and 2 have positives of category 1; triplet 1's N is another view of P_0 (same item key).
    n[1] = p[0]
    cats = torch.tensor([[5, 0, 0], [5, 1, 0], [5, 1, 1]])
    copy_keys = keys.clone()
    copy_keys[1, 2] = keys[0, 1]
    unused = cats.clone()
    unused[1, 2] = 7  # the same batch with that item in a category nobody's positive has
    hard = _loss("hard")
    without = float(hard(a, p, n, categories=unused, keys=keys))
    assert float(hard(a, p, n, categories=cats, keys=copy_keys)) == pytest.approx(without)
    # Had the copy counted (a different key), it would be anchor 0's hardest negative: hinge = margin.
    counted = float(hard(a, p, n, categories=cats, keys=keys))
    assert counted == pytest.approx(without + 0.4 / 3, abs=1e-6)


def test_an_anchor_without_any_negative_is_an_error() -> None:
    a, p, n, keys = _batch(2)
    cats = torch.tensor([[5, 0, 1], [5, 1, 1]])  # triplet 0's N is of another category than its P
    with pytest.raises(ValueError, match="no in-batch negative"):
        _loss("all")(a, p, n, categories=cats, keys=keys)


def test_bad_values_are_refused_by_name() -> None:
    with pytest.raises(ConfigError, match="--negatives"):
        TrainConfig(negatives="hardest").validate()
    with pytest.raises(ValueError, match="mode"):
        InBatchTripletLoss(triplet=TripletMarginLoss(), mode="semi")


@pytest.mark.parametrize("negatives", ["batch-all", "batch-hard"])
def test_a_run_trains_with_in_batch_negatives(synth_root: Path, tmp_path: Path, negatives: str) -> None:
    torch.set_num_threads(2)
    cfg = preset("smoke", data=str(synth_root), use_ss=False, use_pseudo=False, tsne_points=0, epochs=1,
                 triplets_per_epoch=64, negatives=negatives)
    result = train(cfg, out_dir=tmp_path / "run", progress=False)
    assert 0.0 <= result.test["fitb"] <= 1.0 and result.history
    losses = [h for h in result.history if "L_l" in h]
    assert all(torch.isfinite(torch.tensor(h["L_l"])) for h in losses)
