"""The full objective for one step: L = L_l + w_ss(t)·λ_ss·L_ss + w_pseudo(t)·λ_pseudo·L_pseudo.

Two forward passes per step:
1. no grad, for matching: the labeled triplet images and the unlabeled batch are embedded by the EMA teacher
   (eval mode) or, as in the paper, by the weights being trained (then under `frozen_bn_stats`, so matching
   is not a training example for batch norm). The matched rows come from this batch and, optionally, a
   queue of earlier teacher embeddings.
2. one forward with gradients over everything the losses need, concatenated, so DDP sees one forward per
   backward. The paper embeds its whole unlabeled batch with gradients; matching (an argmin) has no
   gradient and L_pseudo's gradient only reaches the matched rows, so re-embedding just those rows gives
   the same gradient at a fraction of the cost (exactly so with batch norm in eval mode; tests check it).

Options beyond the paper (TrainConfig; each off by default): supervised warm-up then Mean Teacher ramp of
the L_pseudo (and L_ss) weight, EMA teacher, category-aware matching, an acceptance filter (mutual nearest
neighbours and/or a distance-ratio test; failed pseudo-triplets count as zero in the batch mean, as
FixMatch's mask does), and a matching queue. The acceptance rate is logged every step.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from training.config import TrainConfig
from training.data import UnlabeledSource
from training.losses import InBatchTripletLoss, PseudoTripletLoss, SelfSupervisedLoss, TripletMarginLoss
from training.matching import match_with_options
from training.queue import EmbeddingQueue
from training.schedules import rampup_weight
from training.teacher import EmaTeacher, frozen_bn_stats


@dataclass
class StepOutput:
    loss: torch.Tensor
    terms: dict[str, float]
    images: int  # images embedded with gradients (throughput accounting)
    stats: dict[str, float] = field(default_factory=dict)  # acceptance rate, ramp weights (logged, not losses)


def _flat(x: torch.Tensor) -> torch.Tensor:
    """(B, 3, C, S, S) triplet-major -> (3B, C, S, S) ordered anchors, positives, negatives."""
    return x.transpose(0, 1).reshape(-1, *x.shape[2:])


class Objective:
    def __init__(self, config: TrainConfig, *, unlabeled: UnlabeledSource | None) -> None:
        self.config = config
        triplet = TripletMarginLoss(margin=config.margin)
        self.labeled = triplet
        self.in_batch = (InBatchTripletLoss(triplet=triplet, mode=config.negatives.removeprefix("batch-"))
                         if config.negatives != "given" else None)
        self.ss = SelfSupervisedLoss(triplet=triplet)
        self.pseudo = PseudoTripletLoss(triplet=triplet)
        if (config.use_ss or config.use_pseudo) and unlabeled is None:
            raise ValueError("L_ss and L_pseudo need an unlabeled source")
        if config.category_matching and unlabeled is not None and unlabeled.category_codes is None:
            raise ValueError("category-aware matching needs the unlabeled items' categories")
        self.unlabeled = unlabeled
        self.teacher: EmaTeacher | None = None
        self._pending_teacher: Mapping[str, torch.Tensor] | None = None
        self.queue = EmbeddingQueue(config.queue_size) if config.use_pseudo and config.queue_size else None

    # --- teacher ---------------------------------------------------------------------------------------
    def _teacher_for(self, net: nn.Module) -> EmaTeacher | None:
        if not (self.config.use_pseudo and self.config.ema_decay > 0):
            return None
        if self.teacher is None:
            self.teacher = EmaTeacher(net, decay=self.config.ema_decay)
            if self._pending_teacher is not None:
                self.teacher.load_state_dict(dict(self._pending_teacher))
                self._pending_teacher = None
        return self.teacher

    def after_step(self, net: nn.Module) -> None:
        """Called after each optimiser step: the EMA teacher follows the student."""
        teacher = self._teacher_for(net)
        if teacher is not None:
            teacher.update(net)

    def state_dict(self) -> dict[str, Any]:
        """What a resume needs beyond the model (the queue refills within a few steps and is not kept)."""
        return {"teacher": self.teacher.state_dict() if self.teacher is not None else None}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if state.get("teacher") is not None:
            if self.teacher is not None:
                self.teacher.load_state_dict(state["teacher"])
            else:
                self._pending_teacher = state["teacher"]

    # --- weights ---------------------------------------------------------------------------------------
    def weights(self, step: int) -> tuple[float, float]:
        """(w_ss, w_pseudo) multipliers of λ_ss and λ_pseudo at `step`."""
        c = self.config
        ramp = rampup_weight(step, warmup_steps=c.pseudo_warmup_steps, rampup_steps=c.pseudo_rampup_steps)
        return (ramp if c.rampup_ss else 1.0), ramp

    def _unlabeled_ids(self, step: int, rank: int, *, pseudo_on: bool) -> tuple[list[str], list[str]]:
        """(batch for matching, subset that also takes part in L_ss)."""
        c = self.config
        if self.unlabeled is None or not (pseudo_on or c.use_ss):
            return [], []
        size = c.unlabeled_batch if pseudo_on else (c.ss_unlabeled or c.unlabeled_batch)
        ids = self.unlabeled.sample(size, step=step, rank=rank)
        if not c.use_ss:
            return ids, []
        n_ss = len(ids) if c.ss_unlabeled == 0 else min(c.ss_unlabeled, len(ids))
        return ids, ids[:n_ss]

    # --- the step --------------------------------------------------------------------------------------
    def __call__(
        self, model: nn.Module, net: nn.Module, batch: dict[str, torch.Tensor], *, step: int, rank: int = 0,
        device: torch.device, memory_format: torch.memory_format = torch.contiguous_format,
    ) -> StepOutput:
        """`model` is what receives gradients (DDP-wrapped or not); `net` the bare module for no-grad passes."""
        c = self.config

        def put(x: torch.Tensor) -> torch.Tensor:
            return x.to(device, non_blocking=True).contiguous(memory_format=memory_format)

        w_ss, w_pseudo = self.weights(step)
        # During the supervised warm-up L_pseudo weighs 0: skip its matching pass entirely.
        pseudo_on = c.use_pseudo and w_pseudo > 0
        trip = _flat(batch["triplet"])
        b = batch["triplet"].shape[0]
        u_ids, ss_ids = self._unlabeled_ids(step, rank, pseudo_on=pseudo_on)
        parts: list[torch.Tensor] = [trip]
        if c.use_ss:
            parts += [_flat(batch["shape"]), _flat(batch["appearance"])]
            if ss_ids:
                assert self.unlabeled is not None
                parts += list(self.unlabeled.view_triplet(ss_ids, step=step, rank=rank))
        stats: dict[str, float] = {}
        inverse = accepted = None
        if pseudo_on:
            assert self.unlabeled is not None
            matched_imgs, inverse, accepted = self._match(net, batch, trip, u_ids, put)
            parts.append(matched_imgs)
            stats["accept_rate"] = float(accepted.float().mean())
        # Losses in float32 even under float16 autocast: distances near the margin need the precision.
        emb = model(put(torch.cat(parts)), normalize=True).float()
        sizes = [len(p) for p in parts]
        chunks = list(torch.split(emb, sizes))
        a, p, n = chunks[0][:b], chunks[0][b : 2 * b], chunks[0][2 * b :]
        zero = emb.sum() * 0.0
        terms: dict[str, torch.Tensor] = {}
        if not c.use_l:
            terms["L_l"] = zero
        elif self.in_batch is not None:
            terms["L_l"] = self.in_batch(a, p, n, categories=batch["categories"].to(emb.device),
                                         keys=batch["keys"].to(emb.device))
        else:
            terms["L_l"] = self.labeled(a, p, n)
        if c.use_ss:
            # chunks: 0 triplet images, 1 their T_s, 2 their T_a, then (x, T_s x, T_a x) of unlabeled images.
            orig = torch.cat([chunks[0], chunks[3]]) if ss_ids else chunks[0]
            shp = torch.cat([chunks[1], chunks[4]]) if ss_ids else chunks[1]
            app = torch.cat([chunks[2], chunks[5]]) if ss_ids else chunks[2]
            terms["L_ss"] = self.ss(orig, shp, app)
        if c.use_pseudo:
            if pseudo_on:
                assert inverse is not None and accepted is not None
                pe = chunks[-1]
                hinge = self.pseudo.triplet.per_triplet(pe[inverse[:b]], pe[inverse[b : 2 * b]],
                                                        pe[inverse[2 * b :]])
                # Rejected pseudo-triplets count as zero in a mean over the whole batch (FixMatch's mask).
                terms["L_pseudo"] = (hinge * accepted.to(hinge.dtype)).sum() / b
            else:
                terms["L_pseudo"] = zero
            stats["w_pseudo"] = w_pseudo
        if c.use_ss:
            stats["w_ss"] = w_ss
        loss = terms["L_l"]
        if "L_ss" in terms:
            loss = loss + (w_ss * c.lambda_ss) * terms["L_ss"]
        if "L_pseudo" in terms and pseudo_on:
            loss = loss + (w_pseudo * c.lambda_pseudo) * terms["L_pseudo"]
        logged = {k: float(v.detach()) for k, v in terms.items()}
        return StepOutput(loss=loss, terms=logged, images=sum(sizes), stats=stats)

    def _match(
        self, net: nn.Module, batch: dict[str, torch.Tensor], trip: torch.Tensor, u_ids: list[str], put: Any,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Match each labeled triplet into the unlabeled batch (and queue); returns the images of the distinct
        matched rows of accepted triplets, each (role, triplet)'s position in them, and the acceptance mask."""
        c = self.config
        assert self.unlabeled is not None
        b = len(trip) // 3
        u_imgs = self.unlabeled.images(u_ids)
        teacher = self._teacher_for(net)
        with torch.no_grad():
            x = put(torch.cat([trip, u_imgs]))
            if teacher is not None:
                e = teacher.embed(x).float()
            else:
                with frozen_bn_stats(net):
                    e = net(x, normalize=True).float()
        u_emb = e[3 * b :]
        u_cats = self.unlabeled.categories(u_ids).to(e.device)
        key_ids, keys, key_cats = list(u_ids), u_emb, u_cats
        if self.queue is not None and len(self.queue):
            assert self.queue.emb is not None and self.queue.categories is not None
            in_batch = set(u_ids)
            extra = [k for k, i in enumerate(self.queue.ids) if i not in in_batch]
            key_ids += [self.queue.ids[k] for k in extra]
            keys = torch.cat([keys, self.queue.emb[extra].to(e.device)])
            key_cats = torch.cat([key_cats, self.queue.categories[extra].to(e.device)])
        trip_cats = batch["categories"].T.to(e.device) if c.category_matching else None
        result = match_with_options(
            e[:b], e[b : 2 * b], e[2 * b : 3 * b], keys, triplet_cats=trip_cats,
            key_cats=key_cats if c.category_matching else None, acceptance=c.acceptance,
            ratio_threshold=c.ratio_threshold,
        )
        if self.queue is not None:
            self.queue.push(u_ids, u_emb, u_cats)
        idx = torch.cat([result.indices.anchor, result.indices.positive, result.indices.negative])
        # Rows of rejected triplets need no gradient pass: point them at the first accepted row (masked anyway).
        keep = result.accepted.repeat(3)
        idx = torch.where(keep, idx, idx[keep][0]) if bool(keep.any()) else torch.zeros_like(idx)
        rows, inverse = torch.unique(idx, return_inverse=True)
        imgs = self.unlabeled.images([key_ids[r] for r in rows.tolist()])
        return imgs, inverse, result.accepted
