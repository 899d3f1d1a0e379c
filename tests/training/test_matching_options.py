"""Pseudo-triplet matching options against naive loops over every query and key."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from training.matching import match_with_options


def naive(q: np.ndarray, k: np.ndarray, qc: np.ndarray | None, kc: np.ndarray | None, acceptance: str,
          thr: float) -> tuple[list[int], list[bool]]:
    idx, ok = [], []
    for i, x in enumerate(q):
        cand = [j for j in range(len(k)) if qc is None or kc is None or qc[i] == kc[j]]
        if not cand:
            idx.append(-1)
            ok.append(False)
            continue
        d = sorted((float(np.linalg.norm(x - k[j])), j) for j in cand)
        best = d[0][1]
        good = True
        if "ratio" in acceptance and len(d) > 1:
            good &= d[0][0] <= thr * d[1][0]
        if "mutual" in acceptance:
            back = min((float(np.linalg.norm(q[m] - k[best])), m) for m in range(len(q))
                       if qc is None or kc is None or qc[m] == kc[best])[1]
            good &= back == i
        idx.append(best)
        ok.append(good)
    return idx, ok


@pytest.mark.parametrize("acceptance", ["none", "ratio", "mutual", "mutual+ratio"])
@pytest.mark.parametrize("category", [False, True])
def test_matches_naive_loops(acceptance: str, category: bool) -> None:
    rng = np.random.default_rng(3)
    b, u, d = 12, 40, 6
    trip = [rng.normal(size=(b, d)).astype(np.float32) for _ in range(3)]
    keys = rng.normal(size=(u, d)).astype(np.float32)
    tcats = rng.integers(0, 4, size=(3, b)) if category else None
    kcats = rng.integers(0, 4, size=u) if category else None
    res = match_with_options(
        *(torch.from_numpy(t) for t in trip), torch.from_numpy(keys),
        triplet_cats=None if tcats is None else torch.from_numpy(tcats),
        key_cats=None if kcats is None else torch.from_numpy(kcats), acceptance=acceptance, ratio_threshold=0.9,
    )
    all_ok = np.ones(b, dtype=bool)
    for role, got in enumerate(res.indices):
        want_idx, want_ok = naive(trip[role], keys, None if tcats is None else tcats[role], kcats, acceptance, 0.9)
        for i in range(b):
            if (want_ok[i] or acceptance == "none") and want_idx[i] >= 0:
                assert int(got[i]) == want_idx[i]
        all_ok &= np.array(want_ok)
    assert res.accepted.tolist() == all_ok.tolist()
    if not category and acceptance == "none":
        assert res.accepted.all()


def test_category_matching_stays_inside_the_category() -> None:
    keys = torch.tensor([[0.0, 0.0], [10.0, 10.0]])
    q = torch.tensor([[0.1, 0.0]])
    res = match_with_options(q, q, q, keys, triplet_cats=torch.tensor([[1], [1], [1]]),
                             key_cats=torch.tensor([0, 1]))
    assert int(res.indices.anchor[0]) == 1  # the far key, because it is the only one of category 1
    assert int(match_with_options(q, q, q, keys).indices.anchor[0]) == 0  # without categories: the near key


def test_no_key_of_the_category_rejects_the_triplet() -> None:
    keys = torch.zeros(3, 2)
    q = torch.ones(2, 2)
    res = match_with_options(q, q, q, keys, triplet_cats=torch.tensor([[5, 0], [0, 0], [0, 0]]),
                             key_cats=torch.tensor([0, 0, 0]))
    assert res.accepted.tolist() == [False, True]


def test_unknown_acceptance_and_empty_pool_are_refused() -> None:
    q = torch.zeros(1, 2)
    with pytest.raises(ValueError, match="acceptance"):
        match_with_options(q, q, q, q, acceptance="fuzzy")
    with pytest.raises(ValueError, match="empty"):
        match_with_options(q, q, q, torch.zeros(0, 2))
