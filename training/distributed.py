"""Process-group setup for `torchrun` (DDP): NCCL on CUDA, gloo on CPU; a single process needs none.

Every call is guarded by the device actually present, so the same code runs on a laptop, on 2 CPU
processes with gloo (how the tests exercise DDP here) and on a multi-GPU node.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from training.config import ConfigError


@dataclass(frozen=True)
class DistContext:
    """The trainer's DDP process: rank, world size and device (`index.distributed.ShardGroup` is the index
    build's shard of a catalog)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def all_finite(self, value: torch.Tensor) -> bool:
        flag = torch.tensor([1.0 if bool(torch.isfinite(value).all()) else 0.0], device=self.device)
        if self.distributed:
            dist.all_reduce(flag, op=dist.ReduceOp.MIN)
        return bool(flag.item() == 1.0)

    def mean(self, values: dict[str, float]) -> dict[str, float]:
        """Average scalar logs over processes (for the rank-0 log)."""
        if not self.distributed or not values:
            return values
        keys = sorted(values)
        t = torch.tensor([values[k] for k in keys], dtype=torch.float64, device=self.device)
        dist.all_reduce(t)
        return {k: float(v) / self.world_size for k, v in zip(keys, t.tolist(), strict=True)}

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    if name == "cpu" or (name == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise ConfigError("--device cuda was requested but no CUDA device is available")
    return torch.device("cuda", local_rank % torch.cuda.device_count())


def init_distributed(device_name: str) -> DistContext:
    """Read torchrun's environment; join the process group when WORLD_SIZE > 1."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = resolve_device(device_name, local_rank)
    if world > 1 and not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return DistContext(rank=rank, world_size=world, local_rank=local_rank, device=device)


def wrap_model(model: nn.Module, ctx: DistContext) -> nn.Module:
    if not ctx.distributed:
        return model
    ids = [ctx.device.index] if ctx.device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids)


def parameters_in_sync(model: nn.Module, ctx: DistContext) -> bool:
    """True when every rank holds the same weights (checked once at the end of a DDP run)."""
    if not ctx.distributed:
        return True
    total = torch.stack([p.detach().double().sum() for p in model.parameters()]).sum().reshape(1)
    lo, hi = total.clone(), total.clone()
    dist.all_reduce(lo, op=dist.ReduceOp.MIN)
    dist.all_reduce(hi, op=dist.ReduceOp.MAX)
    return bool(torch.isclose(lo, hi, rtol=0, atol=1e-6 * max(1.0, abs(float(total.item())))).item())


def shutdown(ctx: DistContext) -> None:
    if ctx.distributed and dist.is_initialized():
        dist.destroy_process_group()
