"""The full objective for one step: L = L_l + λ_ss·L_ss + λ_pseudo·L_pseudo.

Two forward passes per step:
1. no_grad over the labeled triplet images and the unlabeled batch -> nearest-neighbour matching. The
   paper embeds its 1024-image unlabeled batch with gradients; matching (an argmin) has no gradient, and
   L_pseudo's gradient only reaches the matched rows, so re-embedding just those rows with gradients (pass 2)
   gives the same gradient at a fraction of the cost (up to batch-norm statistics of the concatenated batch).
2. one forward with gradients over everything the losses need, concatenated, so DDP sees one forward
   per backward.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from training.config import TrainConfig
from training.data import UnlabeledSource
from training.losses import PseudoTripletLoss, SelfSupervisedLoss, TripletMarginLoss


@dataclass
class StepOutput:
    loss: torch.Tensor
    terms: dict[str, float]
    images: int  # images embedded with gradients (throughput accounting)


def _flat(x: torch.Tensor) -> torch.Tensor:
    """(B, 3, C, S, S) triplet-major -> (3B, C, S, S) ordered anchors, positives, negatives."""
    return x.transpose(0, 1).reshape(-1, *x.shape[2:])


class Objective:
    def __init__(self, config: TrainConfig, *, unlabeled: UnlabeledSource | None) -> None:
        self.config = config
        triplet = TripletMarginLoss(margin=config.margin)
        self.labeled = triplet
        self.ss = SelfSupervisedLoss(triplet=triplet)
        self.pseudo = PseudoTripletLoss(triplet=triplet)
        if (config.use_ss or config.use_pseudo) and unlabeled is None:
            raise ValueError("L_ss and L_pseudo need an unlabeled source")
        self.unlabeled = unlabeled

    def _unlabeled_ids(self, step: int, rank: int) -> tuple[list[str], list[str]]:
        """(batch for matching, subset that also takes part in L_ss)."""
        c = self.config
        if self.unlabeled is None:
            return [], []
        size = c.unlabeled_batch if c.use_pseudo else (c.ss_unlabeled or c.unlabeled_batch)
        ids = self.unlabeled.sample(size, step=step, rank=rank)
        if not c.use_ss:
            return ids, []
        n_ss = len(ids) if c.ss_unlabeled == 0 else min(c.ss_unlabeled, len(ids))
        return ids, ids[:n_ss]

    def __call__(
        self, model: nn.Module, net: nn.Module, batch: dict[str, torch.Tensor], *, step: int, rank: int = 0,
        device: torch.device, memory_format: torch.memory_format = torch.contiguous_format,
    ) -> StepOutput:
        """`model` is what receives gradients (DDP-wrapped or not); `net` the bare module for no_grad passes."""
        c = self.config

        def put(x: torch.Tensor) -> torch.Tensor:
            return x.to(device, non_blocking=True).contiguous(memory_format=memory_format)

        trip = _flat(batch["triplet"])
        b = batch["triplet"].shape[0]
        u_ids, ss_ids = self._unlabeled_ids(step, rank)
        parts: list[torch.Tensor] = [trip]
        if c.use_ss:
            parts += [_flat(batch["shape"]), _flat(batch["appearance"])]
            if ss_ids:
                assert self.unlabeled is not None
                parts += list(self.unlabeled.view_triplet(ss_ids, step=step, rank=rank))
        rows = inverse = None
        if c.use_pseudo:
            assert self.unlabeled is not None
            u_imgs = self.unlabeled.images(u_ids)
            with torch.no_grad():
                e = net(put(torch.cat([trip, u_imgs])), normalize=True)
            idx = self.pseudo.match(e[:b], e[b : 2 * b], e[2 * b : 3 * b], e[3 * b :])
            rows, inverse = idx.unique()
            parts.append(u_imgs[rows.cpu()])
        # Losses in float32 even under float16 autocast: distances near the margin need the precision.
        emb = model(put(torch.cat(parts)), normalize=True).float()
        sizes = [len(p) for p in parts]
        chunks = list(torch.split(emb, sizes))
        a, p, n = chunks[0][:b], chunks[0][b : 2 * b], chunks[0][2 * b :]
        zero = emb.sum() * 0.0
        terms: dict[str, torch.Tensor] = {}
        terms["L_l"] = self.labeled(a, p, n) if c.use_l else zero
        if c.use_ss:
            # chunks: 0 triplet images, 1 their T_s, 2 their T_a, then (x, T_s x, T_a x) of unlabeled images.
            orig = torch.cat([chunks[0], chunks[3]]) if ss_ids else chunks[0]
            shp = torch.cat([chunks[1], chunks[4]]) if ss_ids else chunks[1]
            app = torch.cat([chunks[2], chunks[5]]) if ss_ids else chunks[2]
            terms["L_ss"] = self.ss(orig, shp, app)
        if c.use_pseudo:
            assert inverse is not None
            pe = chunks[-1]
            terms["L_pseudo"] = self.pseudo(pe[inverse[:b]], pe[inverse[b : 2 * b]], pe[inverse[2 * b :]])
        loss = terms["L_l"]
        if "L_ss" in terms:
            loss = loss + c.lambda_ss * terms["L_ss"]
        if "L_pseudo" in terms:
            loss = loss + c.lambda_pseudo * terms["L_pseudo"]
        logged = {k: float(v.detach()) for k, v in terms.items()}
        return StepOutput(loss=loss, terms=logged, images=sum(sizes))
