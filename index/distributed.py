"""torchrun support: each rank embeds a shard of the chunks, rank 0 merges and publishes.

Launched as `torchrun --nproc_per_node N -m outfit_compat index build ...`; torchrun sets RANK,
WORLD_SIZE and the rendezvous variables. gloo works on CPU; NCCL ranks would each take one GPU.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class ShardGroup:
    """This process's shard of an index build (`training.distributed.DistContext` is the trainer's DDP context)."""

    rank: int
    world: int
    barrier: Callable[[], None]

    @classmethod
    def single(cls) -> ShardGroup:
        return cls(0, 1, lambda: None)


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def init_from_env(*, timeout_minutes: float = 240.0) -> ShardGroup:
    """Join the process group torchrun describes (gloo; a barrier waits for the slowest shard)."""
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("gloo", timeout=datetime.timedelta(minutes=timeout_minutes))

    def barrier() -> None:
        dist.barrier()

    return ShardGroup(dist.get_rank(), dist.get_world_size(), barrier)


def shutdown() -> None:
    import torch.distributed as dist

    if dist.is_initialized():
        dist.destroy_process_group()


def device_for_rank(rank: int, requested: str) -> str:
    """`cuda` with several GPUs means one GPU per local rank; everything else is used as given."""
    if requested == "cuda":
        return f"cuda:{int(os.environ.get('LOCAL_RANK', rank))}"
    return requested
