"""One optimiser step, kept small and tested: finite check, scaled backward, unscale, clip, step, update."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn


class NonFiniteLossError(FloatingPointError):
    """The loss became NaN/inf: the run stops instead of writing a broken checkpoint."""


def autocast(device: torch.device, *, enabled: bool) -> torch.autocast:
    """float16 autocast on CUDA when AMP is on; a no-op context everywhere else."""
    return torch.autocast(device_type=device.type, dtype=torch.float16, enabled=enabled and device.type == "cuda")


def make_scaler(device: torch.device, *, enabled: bool) -> torch.amp.GradScaler:
    return torch.amp.GradScaler(device.type, enabled=enabled and device.type == "cuda")


def load_scaler_state(scaler: torch.amp.GradScaler, state: dict[str, Any]) -> None:
    """Restore a saved scaler; an empty state (saved by a disabled scaler, e.g. a CPU run) means a fresh one.

    `GradScaler.load_state_dict({})` raises on an enabled scaler, which made CPU runs unresumable on CUDA.
    """
    if state:
        scaler.load_state_dict(state)


def _local_finite(loss: torch.Tensor) -> bool:
    return bool(torch.isfinite(loss).all())


def optimizer_step(
    *,
    loss: torch.Tensor,
    parameters: Iterable[nn.Parameter],
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    clip_norm: float,
    step: int,
    all_finite: Callable[[torch.Tensor], bool] = _local_finite,
) -> float:
    """Backward and update; returns the (pre-clip) gradient norm.

    `all_finite` is agreed across processes under DDP, so every rank stops together on a NaN.
    """
    if not all_finite(loss.detach()):
        raise NonFiniteLossError(
            f"loss is {loss.item()} at step {step}; stopping. Lower --lr, check the input images, or resume "
            "from the last good state with a smaller learning rate."
        )
    params = [p for p in parameters if p.requires_grad]
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    scaler.unscale_(optimizer)  # clip on true gradients, not scaled ones
    max_norm = clip_norm if clip_norm > 0 else float("inf")
    grad_norm = torch.nn.utils.clip_grad_norm_(params, max_norm)
    scaler.step(optimizer)  # skipped by the scaler when AMP found inf gradients
    scaler.update()
    return float(grad_norm)
