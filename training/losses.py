"""The three loss terms as small classes; the distance comes in the constructor.

All take L2-normalised embeddings: margin 0.4 is a distance on the unit sphere.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

Distance = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def euclidean(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Row-wise Euclidean distance; the clamp keeps the gradient finite when x == y."""
    return (x - y).pow(2).sum(dim=-1).clamp_min(1e-12).sqrt()


class TripletMarginLoss(nn.Module):
    """mean over triplets of max(0, d(a, p) - d(a, n) + margin)."""

    def __init__(self, *, margin: float = 0.4, distance: Distance = euclidean) -> None:
        super().__init__()
        if margin <= 0:
            raise ValueError(f"margin must be positive, not {margin}")
        self.margin = margin
        self.distance = distance

    def forward(self, anchor: torch.Tensor, positive: torch.Tensor, negative: torch.Tensor) -> torch.Tensor:
        return self.per_triplet(anchor, positive, negative).mean()

    def per_triplet(self, anchor: torch.Tensor, positive: torch.Tensor, negative: torch.Tensor) -> torch.Tensor:
        """(B,) hinge values, for losses that weight or mask triplets."""
        if not anchor.shape == positive.shape == negative.shape or anchor.dim() != 2:
            raise ValueError(
                f"triplet embeddings must share one (B, d) shape, got {tuple(anchor.shape)}, "
                f"{tuple(positive.shape)}, {tuple(negative.shape)}"
            )
        d_ap = self.distance(anchor, positive)
        d_an = self.distance(anchor, negative)
        return torch.relu(d_ap - d_an + self.margin)


class InBatchTripletLoss(nn.Module):
    """L_l with the batch's items as negatives: for anchor i, every positive or negative of the batch that is of
    P_i's category and is neither A_i nor P_i (compared by item key; the triplet's own N always qualifies, so
    each anchor has at least one). `mode` "all" averages the hinge over an anchor's negatives, "hard" keeps
    the closest negative. Returns the mean over anchors."""

    def __init__(self, *, triplet: TripletMarginLoss, mode: str) -> None:
        super().__init__()
        if mode not in ("all", "hard"):
            raise ValueError(f"mode must be all or hard, not {mode!r}")
        self.triplet = triplet
        self.mode = mode

    def forward(
        self, anchor: torch.Tensor, positive: torch.Tensor, negative: torch.Tensor, *,
        categories: torch.Tensor, keys: torch.Tensor,
    ) -> torch.Tensor:
        """`categories`, `keys`: (B, 3) integer codes of each triplet's (A, P, N)."""
        candidates = torch.cat([positive, negative])
        candidate_category, candidate_key = categories[:, 1:].T.reshape(-1), keys[:, 1:].T.reshape(-1)
        valid = ((candidate_category[None, :] == categories[:, 1, None])
                 & (candidate_key[None, :] != keys[:, 1, None])
                 & (candidate_key[None, :] != keys[:, 0, None]))
        if not bool(valid.any(dim=1).all()):
            raise ValueError("an anchor has no in-batch negative of its positive's category")
        d_ap = self.triplet.distance(anchor, positive)
        d_an = self.triplet.distance(anchor[:, None, :], candidates[None, :, :])  # (B, 2B)
        if self.mode == "hard":
            d_an = d_an.masked_fill(~valid, float("inf")).min(dim=1).values
            return torch.relu(d_ap - d_an + self.triplet.margin).mean()
        hinge = torch.relu(d_ap[:, None] - d_an + self.triplet.margin) * valid
        return (hinge.sum(dim=1) / valid.sum(dim=1)).mean()


class SelfSupervisedLoss(nn.Module):
    """L_ss: the triplet (x, T_s(x), T_a(x)); shape changes stay close, appearance changes move away."""

    def __init__(self, *, triplet: TripletMarginLoss) -> None:
        super().__init__()
        self.triplet = triplet

    def forward(self, original: torch.Tensor, shape_view: torch.Tensor, appearance_view: torch.Tensor) -> torch.Tensor:
        return self.triplet(original, shape_view, appearance_view)


class PseudoTripletLoss(nn.Module):
    """L_pseudo: the triplet loss on (Ã, P̃, Ñ), the unlabeled nearest neighbours of (A, P, N).

    Finding them is `training.matching.match_with_options` (called by the Objective, which owns the teacher,
    queue and category codes the options need)."""

    def __init__(self, *, triplet: TripletMarginLoss) -> None:
        super().__init__()
        self.triplet = triplet

    def forward(
        self, pseudo_anchor: torch.Tensor, pseudo_positive: torch.Tensor, pseudo_negative: torch.Tensor
    ) -> torch.Tensor:
        return self.triplet(pseudo_anchor, pseudo_positive, pseudo_negative)
