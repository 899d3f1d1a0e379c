"""The int8 sketch behind loose filters (index.filtered): its error bound holds, and searches through it
return exactly what the float pass returns, ties and exclusions included."""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np
import pytest
from index_helpers import exact_topk
from test_filters import hnsw_shop, naive_allowed  # noqa: F401  # the module fixture, reused

from index import filtered, open_index
from index.filtered import FlatView, build_sketch, exact_search, sketch_search
from index.filters import ItemFilter
from index.store import ItemRecord


def view_of(x: np.ndarray) -> FlatView:
    return FlatView(np.arange(len(x), dtype=np.int64), np.ascontiguousarray(x, dtype=np.float32))


@pytest.mark.parametrize("seed", range(4))
def test_the_bound_holds_for_every_item(seed: int) -> None:
    """|q.x - step * (q_int8 . code)| <= bound for every item, on spread and on skewed data."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((3_000, 32)) * rng.uniform(0.01, 3.0, size=32)  # per-dimension scales differ
    x[:5] *= 40  # a few outliers stretch the ranges
    x = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    sketch = build_sketch(view_of(x), np.arange(len(x)), x)
    codes = sketch.codes.sa_decode(sketch.codes.sa_encode(np.zeros((1, 32), np.float32)))  # direct: exact
    assert np.all(codes == 0)
    for q in rng.standard_normal((20, 32)):
        q = (q / np.linalg.norm(q)).astype(np.float32)
        a, step, bound = sketch.quantise_query(q)
        approx, ids = sketch.codes.search(a[None], len(x))
        exact = x[ids[0]] @ q
        err = np.abs(exact - step * approx[0])
        assert err.max() <= bound
        assert bound < 0.05  # tight enough to prune: the scores spread over [-1, 1]


@pytest.mark.parametrize("k", [1, 10, 100])
def test_sketch_search_equals_the_float_pass(k: int) -> None:
    rng = np.random.default_rng(3)
    x = rng.standard_normal((20_000, 16)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    view = view_of(x)
    allowed = np.sort(rng.choice(len(x), 12_000, replace=False))
    sketch = build_sketch(view, allowed, x)
    exclude = allowed[[5, 17, 999]].astype(np.int64)
    for q in rng.standard_normal((25, 16)).astype(np.float32):
        q /= np.linalg.norm(q)
        want = exact_search(q[None], view, allowed[~np.isin(allowed, exclude)], k, x)[0]
        assert sketch_search(q, sketch, view, x, k, exclude) == want


def test_ties_force_the_candidates_to_grow_and_keep_the_row_order(monkeypatch: pytest.MonkeyPatch) -> None:
    """Identical vectors: no bound separates them, so every item is re-ranked and ties go by row."""
    x = np.tile(np.array([[0.6, 0.8, 0.0, 0.0]], np.float32), (3_000, 1))
    x[::7] = [0.0, 0.0, 1.0, 0.0]  # a second, worse group
    view = view_of(x)
    positions = np.arange(len(x))
    sketch = build_sketch(view, positions, x)
    calls: list[int] = []
    search = sketch.codes.search

    def counting(a: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        calls.append(n)
        return search(a, n)

    monkeypatch.setattr(sketch.codes, "search", counting)
    q = np.array([0.6, 0.8, 0.0, 0.0], np.float32)
    got = sketch_search(q, sketch, view, x, 10, None)
    assert got == exact_search(q[None], view, positions, 10, x)[0]
    assert [r for _, r in got] == [1, 2, 3, 4, 5, 6, 8, 9, 10, 11]
    assert len(calls) > 1 and calls[-1] >= len(x)  # it could not prove a shorter list


def test_fewer_allowed_than_k_returns_them_all() -> None:
    x = np.eye(8, dtype=np.float32)
    view = view_of(x)
    sketch = build_sketch(view, np.array([1, 3, 5]), x)
    got = sketch_search(x[3], sketch, view, x, 10, np.array([5]))
    assert [r for _, r in got] == [3, 1]


@pytest.mark.parametrize("selectivity", [0.1, 0.5])
def test_loose_filters_through_the_index_use_the_sketch_and_stay_exact(
    hnsw_shop: tuple[Path, list[ItemRecord], np.ndarray, np.ndarray],  # noqa: F811
    selectivity: float, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(filtered, "SKETCH_MIN_ALLOWED", 100)  # the fixture's sets are small
    root, records, vectors, deleted = hnsw_shop
    idx = open_index(root)
    flt = ItemFilter.of(attributes={"bucket": [float(b) for b in range(round(1000 * selectivity))]})
    allowed = naive_allowed(records, flt)
    allowed[deleted] = False
    queries = np.ascontiguousarray(vectors[:30])
    faiss.normalize_L2(queries)
    cats = np.array([r.category for r in records])
    for category in (None, "shoes"):
        rows = np.flatnonzero(allowed & (cats == category if category else True))
        want, _ = exact_topk(queries, vectors, 10, rows=rows)
        got = idx.search(queries, k=10, category=category, filters=flt, exclude=[records[int(rows[0])].item_id])
        for w, g in zip(want, got, strict=True):
            expected = [records[r].item_id for r in w if r != rows[0]]
            assert [h.item_id for h in g][: len(expected)] == expected[:10]
    assert idx._sketches, "the sketch path was not taken"
