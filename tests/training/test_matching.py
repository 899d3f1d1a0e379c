from __future__ import annotations

import pytest
import torch

from training.matching import PseudoTripletIndices, match_with_options


def nearest(q: torch.Tensor, k: torch.Tensor) -> list[int]:
    """The default (paper) matching of one role, through the one matching path."""
    return match_with_options(q, q, q, k).indices.anchor.tolist()


def match_plain(a: torch.Tensor, p: torch.Tensor, n: torch.Tensor, u: torch.Tensor) -> PseudoTripletIndices:
    return match_with_options(a, p, n, u).indices


def brute_force(q: torch.Tensor, k: torch.Tensor) -> list[int]:
    return [min(range(len(k)), key=lambda j: float(((qi - k[j]) ** 2).sum())) for qi in q]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_default_matching_equals_brute_force(seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    q, k = torch.randn(25, 16, generator=g), torch.randn(70, 16, generator=g) * 2
    assert nearest(q, k) == brute_force(q, k)


def test_nearest_neighbor_of_a_key_is_itself() -> None:
    k = torch.randn(30, 5, generator=torch.Generator().manual_seed(3))
    assert nearest(k[[4, 9, 0]], k) == [4, 9, 0]


def test_matching_roles_and_unique_rows_reconstruct() -> None:
    g = torch.Generator().manual_seed(4)
    a_, p_, n_ = (torch.randn(8, 6, generator=g) for _ in range(3))
    u = torch.randn(20, 6, generator=g)
    idx = match_plain(a_, p_, n_, u)
    assert idx.anchor.tolist() == brute_force(a_, u)
    assert idx.negative.tolist() == brute_force(n_, u)
    rows, inverse = idx.unique()
    assert len(set(rows.tolist())) == len(rows)
    assert rows[inverse].tolist() == torch.cat([idx.anchor, idx.positive, idx.negative]).tolist()


def test_matching_rejects_bad_shapes() -> None:
    with pytest.raises(ValueError, match="empty unlabeled batch"):
        match_plain(torch.zeros(2, 3), torch.zeros(2, 3), torch.zeros(2, 3), torch.zeros(0, 3))
    with pytest.raises(ValueError, match=r"\(Q, d\)"):
        match_plain(torch.zeros(2, 3), torch.zeros(2, 3), torch.zeros(2, 3), torch.zeros(4, 5))
