"""The EMA teacher that pseudo-triplet matching may use, and a guard that keeps a no-grad pass from moving
batch-norm statistics.

Mean Teacher (Tarvainen & Valpola, 2017): the teacher's weights are an exponential moving average of the
student's, so its neighbours change slowly and are less noisy than those of the weights being updated.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator

import torch
from torch import nn


@contextlib.contextmanager
def frozen_bn_stats(module: nn.Module) -> Iterator[None]:
    """Run a pass in the module's current mode (batch statistics in train mode) without updating the
    running mean/var of its batch-norm layers: a matching pass is not a training example."""
    saved = [
        (m, m.running_mean.clone(), m.running_var.clone(), m.num_batches_tracked.clone())
        for m in module.modules()
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats
        and m.running_mean is not None and m.running_var is not None and m.num_batches_tracked is not None
    ]
    try:
        yield
    finally:
        with torch.no_grad():
            for m, mean, var, count in saved:
                m.running_mean.copy_(mean)  # type: ignore[union-attr]
                m.running_var.copy_(var)  # type: ignore[union-attr]
                m.num_batches_tracked.copy_(count)  # type: ignore[union-attr]


class EmaTeacher:
    """θ_t ← d·θ_t + (1 − d)·θ_s after every optimiser step; buffers (BN statistics) are copied. The teacher
    embeds in eval mode, so its own pass never changes anything."""

    def __init__(self, student: nn.Module, *, decay: float) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"EMA decay must be in (0, 1), not {decay}")
        self.decay = decay
        self.module = copy.deepcopy(student).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, student: nn.Module) -> None:
        for tp, sp in zip(self.module.parameters(), student.parameters(), strict=True):
            tp.mul_(self.decay).add_(sp.detach(), alpha=1.0 - self.decay)
        for tb, sb in zip(self.module.buffers(), student.buffers(), strict=True):
            tb.copy_(sb)

    @torch.no_grad()
    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.module(x, normalize=True)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.module.state_dict()

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.module.load_state_dict(state)
