"""Learning-rate and loss-weight schedules."""

from __future__ import annotations

import itertools
import math

import pytest

from training.schedules import lr_multiplier, rampup_weight


def test_cosine_warms_up_linearly_then_decays_to_zero() -> None:
    m = lr_multiplier("cosine", total_steps=100, warmup_steps=10)
    assert m(0) == pytest.approx(0.1)
    assert m(9) == pytest.approx(1.0)
    assert m(10) == pytest.approx(1.0)
    assert m(55) == pytest.approx(0.5)
    assert m(100) == pytest.approx(0.0)
    values = [m(s) for s in range(10, 101)]
    assert all(a >= b for a, b in itertools.pairwise(values))


def test_constant_is_one_after_warm_up() -> None:
    m = lr_multiplier("constant", total_steps=50, warmup_steps=5)
    assert m(2) == pytest.approx(0.6)
    assert {m(s) for s in range(5, 60)} == {1.0}


def test_unknown_schedule_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown lr schedule"):
        lr_multiplier("step", total_steps=10)


def test_rampup_is_zero_in_warm_up_then_mean_teacher_ramp() -> None:
    assert rampup_weight(4, warmup_steps=5, rampup_steps=10) == 0.0
    assert rampup_weight(5, warmup_steps=5, rampup_steps=10) == pytest.approx(math.exp(-5.0))
    assert rampup_weight(10, warmup_steps=5, rampup_steps=10) == pytest.approx(math.exp(-5.0 * 0.25))
    assert rampup_weight(15, warmup_steps=5, rampup_steps=10) == 1.0
    assert rampup_weight(0, warmup_steps=0, rampup_steps=0) == 1.0
