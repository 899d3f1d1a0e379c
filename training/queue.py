"""A FIFO of recent teacher embeddings of unlabeled images, so that pseudo-triplet matching searches more
images than one step embeds (MoCo's queue, used here only as a matching pool). It stores ids, not images:
a matched queue entry is re-embedded with gradients from the image cache like any matched row."""

from __future__ import annotations

from collections.abc import Sequence

import torch


class EmbeddingQueue:
    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError(f"queue size must be ≥ 1, not {size}")
        self.size = size
        self.ids: list[str] = []
        self.emb: torch.Tensor | None = None
        self.categories: torch.Tensor | None = None

    def __len__(self) -> int:
        return len(self.ids)

    def push(self, ids: Sequence[str], emb: torch.Tensor, categories: torch.Tensor) -> None:
        """Newest first; the oldest entries fall off. An id already queued keeps only its newest embedding."""
        new = set(ids)
        keep = [k for k, i in enumerate(self.ids) if i not in new]
        old_emb = self.emb[keep] if self.emb is not None else emb[:0]
        old_cat = self.categories[keep] if self.categories is not None else categories[:0]
        self.ids = (list(ids) + [self.ids[k] for k in keep])[: self.size]
        self.emb = torch.cat([emb.detach(), old_emb.to(emb.device)])[: self.size]
        self.categories = torch.cat([categories, old_cat.to(categories.device)])[: self.size]
