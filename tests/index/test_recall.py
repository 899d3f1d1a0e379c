"""The approximate index at its documented setting (HNSW32, efSearch 256) against exact search."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from index_helpers import exact_topk

from index import open_index
from index.faiss_ops import DEFAULT_APPROX_FACTORY, DEFAULT_EF_SEARCH
from index.synthetic import synthetic_records, synthetic_vectors
from index.writer import IndexPolicy, build_content, write_version

RECALL_AT_10_FLOOR = 0.95  # docs/INDEX.md


def test_hnsw_recall_at_10_against_exact(tmp_path: Path) -> None:
    n, dim = 12_000, 64
    vectors = synthetic_vectors(n, dim, seed=3)
    queries = synthetic_vectors(n + 300, dim, seed=3)[n:]  # held-out draws from the same mixture
    records = synthetic_records(n, seed=3)
    policy = IndexPolicy(exact_threshold=1_000)
    write_version(tmp_path, build_content(records, vectors, policy), identity={"model_version": "m" * 16,
                  "checkpoint_sha256": "0" * 64, "backend": "torch"}, policy=policy, operation="build")
    idx = open_index(tmp_path)
    assert idx.manifest["factory"] == DEFAULT_APPROX_FACTORY and idx.ef_search == DEFAULT_EF_SEARCH
    want, _ = exact_topk(queries, vectors, 10)
    got = idx.search(queries, k=10)
    recall = np.mean([len({records[r].item_id for r in w} & {h.item_id for h in g}) / 10
                      for w, g in zip(want, got, strict=True)])
    print(f"recall@10 {recall:.4f}")
    assert recall >= RECALL_AT_10_FLOOR, f"recall@10 {recall:.3f}"
    # Category sub-indexes above the threshold are approximate too; same floor.
    cats = np.array([r.category for r in records])
    big = max(idx.categories(), key=lambda c: idx.categories()[c])
    assert idx.manifest["category_factories"][big] == DEFAULT_APPROX_FACTORY
    rows = np.flatnonzero(cats == big)
    want_c, _ = exact_topk(queries, vectors, 10, rows=rows)
    got_c = idx.search(queries, k=10, category=big)
    recall_c = np.mean([len({records[r].item_id for r in w} & {h.item_id for h in g}) / 10
                        for w, g in zip(want_c, got_c, strict=True)])
    assert recall_c >= RECALL_AT_10_FLOOR, f"category recall@10 {recall_c:.3f}"
