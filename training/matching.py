"""Nearest-neighbour matching of labeled triplets into an unlabeled batch (the pseudo-triplets of L_pseudo).

For each labeled triplet (A, P, N) the unlabeled images nearest to A, P and N in the current embedding
space form (Ã, P̃, Ñ). Matching runs on detached embeddings every step; argmin has no gradient anyway.
"""

from __future__ import annotations

from typing import NamedTuple

import torch


class PseudoTripletIndices(NamedTuple):
    """Rows of the unlabeled batch matched to each labeled triplet's anchor, positive and negative."""

    anchor: torch.Tensor
    positive: torch.Tensor
    negative: torch.Tensor

    def unique(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Distinct matched rows and, per (role, triplet), its position in them (to re-embed each once)."""
        allrows = torch.cat([self.anchor, self.positive, self.negative])
        rows, inverse = torch.unique(allrows, return_inverse=True)
        return rows, inverse


@torch.no_grad()
def nearest_neighbors(queries: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
    """Index of the Euclidean-nearest key for every query: (Q, d), (K, d) -> (Q,) int64."""
    if queries.dim() != 2 or keys.dim() != 2 or queries.shape[1] != keys.shape[1]:
        raise ValueError(f"need (Q, d) queries and (K, d) keys, got {tuple(queries.shape)} and {tuple(keys.shape)}")
    if keys.shape[0] == 0:
        raise ValueError("cannot match against an empty unlabeled batch")
    q = queries.float()
    k = keys.float()
    # |q - k|² = |q|² - 2 q·k + |k|²; |q|² does not change the argmin over keys.
    d2 = (k * k).sum(dim=1)[None, :] - 2.0 * q @ k.T
    return torch.argmin(d2, dim=1)


def match_pseudo_triplets(
    anchor: torch.Tensor, positive: torch.Tensor, negative: torch.Tensor, unlabeled: torch.Tensor
) -> PseudoTripletIndices:
    """(B, d) triplet embeddings and (U, d) unlabeled embeddings -> matched unlabeled rows per role."""
    return PseudoTripletIndices(
        nearest_neighbors(anchor.detach(), unlabeled.detach()),
        nearest_neighbors(positive.detach(), unlabeled.detach()),
        nearest_neighbors(negative.detach(), unlabeled.detach()),
    )
