"""Reader: exact equivalence, per-category filtering, exclusions, validation, thread safety."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from index_helpers import Publish, exact_topk

from index import CatalogIndex, Hit, ItemRecord, open_index
from index.writer import IndexPolicy


def _ids(hits: list[Hit]) -> list[str]:
    return [h.item_id for h in hits]


def test_flat_search_equals_exact_search(publish_synthetic: Publish) -> None:
    root, records, vectors = publish_synthetic(600, 16)
    idx = open_index(root)
    assert idx.manifest["factory"] == "Flat"
    queries = vectors[::37]
    ref_rows, ref_scores = exact_topk(queries, vectors, 10)
    got = idx.search(queries, k=10)
    for hits, rows, scores in zip(got, ref_rows, ref_scores, strict=True):
        assert _ids(hits) == [records[r].item_id for r in rows]
        np.testing.assert_allclose([h.score for h in hits], scores, atol=1e-5)


@pytest.mark.parametrize("threshold", [10_000, 300])  # Flat everywhere / HNSW global with Flat categories
def test_category_search_equals_filtered_exact(publish_synthetic: Publish, threshold: int) -> None:
    root, records, vectors = publish_synthetic(600, 16, policy=IndexPolicy(exact_threshold=threshold))
    idx = open_index(root)
    cats = np.array([r.category for r in records])
    for cat in idx.categories():
        rows = np.flatnonzero(cats == cat)
        assert idx.manifest["category_factories"][cat] == "Flat"
        ref_rows, ref_scores = exact_topk(vectors[:20], vectors, 7, rows=rows)
        for hits, want, scores in zip(idx.search(vectors[:20], k=7, category=cat), ref_rows, ref_scores, strict=True):
            assert _ids(hits) == [records[r].item_id for r in want]
            np.testing.assert_allclose([h.score for h in hits], scores, atol=1e-5)


def test_exclude_removes_ids_and_keeps_k(publish_synthetic: Publish) -> None:
    root, _, vectors = publish_synthetic(300, 16)
    idx = open_index(root)
    first = _ids(idx.search(vectors[:1], k=5)[0])
    excluded = first[:3]
    again = _ids(idx.search(vectors[:1], k=5, exclude=excluded)[0])
    assert len(again) == 5 and not set(again) & set(excluded)
    assert again[:2] == first[3:5]


def test_k_larger_than_catalog_returns_everything_once(publish_synthetic: Publish) -> None:
    root, records, vectors = publish_synthetic(40, 8)
    hits = open_index(root).search(vectors[:1], k=100)[0]
    assert sorted(_ids(hits)) == sorted(r.item_id for r in records)


def test_metadata_and_vectors(publish_synthetic: Publish) -> None:
    root, records, vectors = publish_synthetic(100, 8)
    idx = open_index(root)
    assert isinstance(idx, CatalogIndex)
    assert idx.count == 100 and idx.dim == 8 and idx.root.parent.name == "versions"
    assert sum(idx.categories().values()) == 100
    rec = records[5]
    assert idx.has(rec.item_id) and not idx.has("nope")
    got = idx.get_items([rec.item_id, "nope"])
    assert got == {rec.item_id: rec} and isinstance(got[rec.item_id], ItemRecord)
    np.testing.assert_allclose(idx.vectors([records[7].item_id, rec.item_id]), vectors[[7, 5]])
    with pytest.raises(KeyError, match="nope"):
        idx.vectors([rec.item_id, "nope"])
    assert idx.image_path(rec.item_id) is None


def test_bad_queries_raise_clear_errors(publish_synthetic: Publish) -> None:
    root, _, vectors = publish_synthetic(50, 8)
    idx = open_index(root)
    with pytest.raises(ValueError, match=r"shape \(n, 8\)"):
        idx.search(vectors[0], k=3)
    with pytest.raises(ValueError, match=r"shape \(n, 8\)"):
        idx.search(np.zeros((1, 9), np.float32), k=3)
    with pytest.raises(ValueError, match="finite"):
        idx.search(np.full((1, 8), np.nan, np.float32), k=3)
    with pytest.raises(ValueError, match="k must be"):
        idx.search(vectors[:1], k=0)
    with pytest.raises(ValueError, match="k must be"):
        idx.search(vectors[:1], k=2.0)  # type: ignore[arg-type]
    assert len(idx.search(vectors[:1], k=np.int64(2))[0]) == 2
    with pytest.raises(KeyError, match="unknown category 'hats'"):
        idx.search(vectors[:1], k=3, category="hats")


def test_concurrent_searches_match_serial(publish_synthetic: Publish) -> None:
    root, _, vectors = publish_synthetic(800, 16, policy=IndexPolicy(exact_threshold=100))
    idx = open_index(root)
    queries = [vectors[i : i + 4] for i in range(0, 200, 4)]
    serial = [idx.search(q, k=10, category="tops", exclude=["s0000001"]) for q in queries]
    with ThreadPoolExecutor(max_workers=8) as pool:
        parallel = list(pool.map(lambda q: idx.search(q, k=10, category="tops", exclude=["s0000001"]), queries))
    assert parallel == serial
    with ThreadPoolExecutor(max_workers=4) as pool:
        metas = list(pool.map(lambda i: idx.get_items([f"s{i:07d}"]), range(100)))
    assert all(len(m) == 1 for m in metas)


def test_reader_does_not_import_torch(tmp_path: Path) -> None:
    import subprocess
    import sys

    code = "import sys, index; index.open_index; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("n_excluded", [3, 100])  # over-fetch and filter / ID selector inside FAISS
def test_exclusions_equal_exact_search_without_them(publish_synthetic: Publish, n_excluded: int) -> None:
    root, records, vectors = publish_synthetic(400, 16)
    idx = open_index(root)
    q = vectors[5:6]
    order, _ = exact_topk(q, vectors, 400)
    excluded = [records[r].item_id for r in order[0][:n_excluded]]
    keep = np.setdiff1d(np.arange(400), order[0][:n_excluded])
    want, _ = exact_topk(q, vectors, 8, rows=keep)
    assert [h.item_id for h in idx.search(q, k=8, exclude=excluded)[0]] == [records[r].item_id for r in want[0]]


@pytest.mark.parametrize("exclude", [(), ("s0000001", "s0000002")])
def test_search_categories_equals_one_search_per_category(publish_synthetic: Publish, exclude: tuple[str, ...]) -> None:
    """The request path's multi-category search: same hits as separate searches, and each hit's category."""
    root, records, vectors = publish_synthetic(400, 16)
    idx = open_index(root)
    by_id = {r.item_id: r for r in records}
    cats = ["shoes", "tops", "bags"]
    for q in vectors[:12]:
        got = idx.search_categories(q, cats, k=5, exclude=exclude)
        assert list(got) == cats
        # The rows-only form (what complementary re-ranks before resolving its picks) names the same hits.
        rows = idx.search_category_rows(q, cats, k=5, exclude=exclude)
        assert {c: [(h.score, h.row) for h in got[c]] for c in cats} == rows
        assert idx.hits_of_rows(list(rows.values()), records=True)[0][0].record == by_id[got[cats[0]][0].item_id]
        for cat in cats:
            want = idx.search(q[None], k=5, category=cat, exclude=exclude)[0]
            assert got[cat] == want
            assert all(h.category == cat == by_id[h.item_id].category for h in got[cat])
            assert not {h.item_id for h in got[cat]} & set(exclude)
    with pytest.raises(KeyError, match="unknown category 'hats'"):
        idx.search_categories(vectors[0], ["tops", "hats"], k=3)
    assert idx.search_categories(vectors[0], [], k=3) == {}


def test_hits_carry_the_items_category(publish_synthetic: Publish) -> None:
    root, records, vectors = publish_synthetic(200, 16)
    by_id = {r.item_id: r for r in records}
    for hit in open_index(root).search(vectors[:3], k=10)[1]:
        assert hit.category == by_id[hit.item_id].category
