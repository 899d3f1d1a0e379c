"""Nearest-neighbour matching of labeled triplets into an unlabeled batch (the pseudo-triplets of L_pseudo).

For each labeled triplet (A, P, N) the unlabeled images nearest to A, P and N in the current embedding
space form (Ã, P̃, Ñ). Matching runs on detached embeddings every step; argmin has no gradient anyway.
`match_with_options` is the one matching path: with its defaults it is the paper's plain nearest neighbour,
and TrainConfig's options (category-aware search, acceptance filters) are its keyword arguments.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from training.config import ACCEPTANCE


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


class MatchResult(NamedTuple):
    indices: PseudoTripletIndices
    accepted: torch.Tensor  # (B,) bool: all three roles passed the acceptance filter


@torch.no_grad()
def _match_role(
    queries: torch.Tensor, keys: torch.Tensor, *, query_cats: torch.Tensor | None, key_cats: torch.Tensor | None,
    acceptance: str, ratio_threshold: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Nearest key per query and whether the match is accepted.

    - category mask: a query may only match keys of its own category (no such key -> not accepted);
    - ratio (Lowe's test): nearest distance ≤ threshold × second-nearest, i.e. the match is not ambiguous;
    - mutual: the matched key's nearest query (among this role's queries) is this query.
    """
    q, k = queries.float(), keys.float()
    d2 = ((q * q).sum(1)[:, None] - 2.0 * q @ k.T + (k * k).sum(1)[None, :]).clamp_min(0.0)
    if query_cats is not None and key_cats is not None:
        d2 = d2.masked_fill(query_cats[:, None] != key_cats[None, :], float("inf"))
    n_best = min(2, k.shape[0])
    best = torch.topk(d2, n_best, dim=1, largest=False)
    idx = best.indices[:, 0]
    ok = torch.isfinite(best.values[:, 0])
    if "ratio" in acceptance and n_best == 2:
        d1, d2nd = best.values[:, 0].sqrt(), best.values[:, 1].sqrt()
        ok &= d1 <= ratio_threshold * d2nd  # an infinite second distance passes: the match is unique
    if "mutual" in acceptance:
        back = torch.argmin(d2, dim=0)  # each key's nearest query
        ok &= back[idx] == torch.arange(len(q), device=q.device)
    return idx, ok


def match_with_options(
    anchor: torch.Tensor, positive: torch.Tensor, negative: torch.Tensor, keys: torch.Tensor, *,
    triplet_cats: torch.Tensor | None = None, key_cats: torch.Tensor | None = None, acceptance: str = "none",
    ratio_threshold: float = 0.9,
) -> MatchResult:
    """Pseudo-triplet matching with the options of TrainConfig. `triplet_cats` is (3, B) category codes of
    A, P, N (category-aware matching when given with `key_cats`)."""
    if acceptance not in ACCEPTANCE:
        raise ValueError(f"acceptance must be one of {ACCEPTANCE}, not {acceptance!r}")
    for x in (anchor, positive, negative):
        if x.dim() != 2 or keys.dim() != 2 or x.shape[1] != keys.shape[1]:
            raise ValueError(f"need (Q, d) queries and (K, d) keys, got {tuple(x.shape)} and {tuple(keys.shape)}")
    if keys.shape[0] == 0:
        raise ValueError("cannot match against an empty unlabeled batch")
    out = [
        _match_role(x.detach(), keys.detach(), query_cats=None if triplet_cats is None else triplet_cats[r],
                    key_cats=key_cats, acceptance=acceptance, ratio_threshold=ratio_threshold)
        for r, x in enumerate((anchor, positive, negative))
    ]
    accepted = out[0][1] & out[1][1] & out[2][1]
    return MatchResult(PseudoTripletIndices(out[0][0], out[1][0], out[2][0]), accepted)
