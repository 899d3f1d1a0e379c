"""Factory choice, factory overrides (IVF) and their clear failures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from index_helpers import Publish, exact_topk

from index import open_index
from index.faiss_ops import DEFAULT_APPROX_FACTORY, build_index, choose_factory
from index.writer import IndexPolicy


def test_size_rule_and_override() -> None:
    assert choose_factory(50_000) == "Flat" and choose_factory(50_001) == DEFAULT_APPROX_FACTORY
    assert choose_factory(10, override="IVF4,Flat") == "IVF4,Flat"
    policy = IndexPolicy(exact_threshold=100, factory="IVF4,Flat")
    assert policy.factory_for(10) == "IVF4,Flat"  # the global index follows the explicit factory
    assert policy.category_factory_for(100) == "Flat" and policy.category_factory_for(101) == "IVF4,Flat"


def test_ivf_override_searches_like_exact_when_probing_all_lists(publish_synthetic: Publish) -> None:
    policy = IndexPolicy(exact_threshold=100, factory="IVF8,Flat", nprobe=8)  # nprobe = nlist: exhaustive
    root, records, vectors = publish_synthetic(800, 16, policy=policy)
    idx = open_index(root)
    assert idx.manifest["factory"] == "IVF8,Flat"
    want, _ = exact_topk(vectors[:10], vectors, 5)
    got = idx.search(vectors[:10], k=5, exclude=[records[0].item_id])
    assert [[h.item_id for h in g] for g in got[1:]] == [[records[r].item_id for r in w] for w in want[1:]]
    assert records[0].item_id not in [h.item_id for h in got[0]]


def test_bad_factory_and_untrainable_sets_raise_clearly(tmp_path: Path) -> None:
    x = np.random.default_rng(0).standard_normal((50, 8)).astype(np.float32)
    with pytest.raises(ValueError, match="factory string 'Bogus12' is not valid"):
        build_index(x, "Bogus12")
    with pytest.raises(ValueError, match=r"cannot train FAISS 'IVF256,Flat' on 50 vectors.*--exact-threshold"):
        build_index(x, "IVF256,Flat")
    with pytest.raises(ValueError, match="vectors must be 2-D"):
        build_index(x[0], "Flat")
    with pytest.raises(ValueError, match="exact_threshold must be >= 0"):
        IndexPolicy(exact_threshold=-1)
