"""Learning-rate schedules as multipliers of the base lr, for `torch.optim.lr_scheduler.LambdaLR`."""

from __future__ import annotations

import math
from collections.abc import Callable


def lr_multiplier(schedule: str, *, total_steps: int, warmup_steps: int = 0) -> Callable[[int], float]:
    """`constant`: 1 after the warm-up. `cosine`: linear warm-up, then half a cosine from 1 to 0 at `total_steps`.

    The multiplier of step `s` (0-based, the step about to run) is returned; warm-up starts at 1/warmup so the
    first step already moves the weights.
    """
    if schedule not in ("constant", "cosine"):
        raise ValueError(f"unknown lr schedule {schedule!r}")
    total = max(1, total_steps)
    warm = max(0, min(warmup_steps, total - 1))

    def multiplier(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        if schedule == "constant":
            return 1.0
        progress = min(1.0, (step - warm) / max(1, total - warm))
        return 0.5 * (1.0 + math.cos(math.pi * progress))

    return multiplier


def rampup_weight(step: int, *, warmup_steps: int, rampup_steps: int) -> float:
    """0 during a supervised warm-up, then Mean Teacher's ramp exp(-5(1-t)²) over `rampup_steps`, then 1."""
    if step < warmup_steps:
        return 0.0
    if rampup_steps <= 0:
        return 1.0
    t = min(1.0, (step - warmup_steps) / rampup_steps)
    return math.exp(-5.0 * (1.0 - t) ** 2)
