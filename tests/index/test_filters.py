"""Filtered search: typed attribute columns in the index, filter checks, and exactness against brute force."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from index_helpers import exact_topk

from catalog.types import AttrValue
from index import open_index
from index.columns import columns_of
from index.filters import FilterError, ItemFilter, filter_mask
from index.layout import COLUMNS_FILE, MANIFEST_FILE
from index.store import ItemRecord
from index.synthetic import synthetic_records, synthetic_vectors
from index.update import remove_from_index
from index.writer import IndexPolicy, build_content, write_version

IDENTITY = {"model_version": "abcdef0123456789", "checkpoint_sha256": "ab" * 32, "backend": "torch"}
BRANDS = ("acme", "bolt", "corda", "dune", "ember")


def shop_records(n: int, *, seed: int = 0) -> list[ItemRecord]:
    """Synthetic records with typed attributes; about 1 in 20 items lacks each attribute (missing values)."""
    rng = np.random.default_rng(seed)
    out = []
    for rec in synthetic_records(n, seed=seed, categories=("tops", "bottoms", "shoes", "bags")):
        attrs: dict[str, AttrValue] = {"bucket": float(rng.integers(0, 1000))}  # selectivity by membership
        if rng.random() > 0.05:
            attrs["in_stock"] = bool(rng.random() < 0.7)
        if rng.random() > 0.05:
            attrs["brand"] = str(BRANDS[rng.integers(0, len(BRANDS))])
        if rng.random() > 0.05:
            attrs["size"] = float(rng.integers(34, 46))
        price = None if rng.random() < 0.05 else float(np.round(rng.uniform(5, 500), 2))
        out.append(dataclasses.replace(rec, price=price, attributes=attrs))
    return out


def publish(root: Path, records: list[ItemRecord], vectors: np.ndarray, policy: IndexPolicy,
            deleted: np.ndarray | None = None) -> Path:
    content = build_content(records, vectors, policy)
    if deleted is not None:
        content.deleted = deleted
    return write_version(root, content, identity=IDENTITY, policy=policy, operation="build")


def naive_allowed(records: list[ItemRecord], flt: ItemFilter) -> np.ndarray:
    """Reference: the filter's meaning, one record at a time."""
    ok = []
    for r in records:
        good = True
        if flt.price_min is not None:
            good &= r.price is not None and r.price >= flt.price_min
        if flt.price_max is not None:
            good &= r.price is not None and r.price <= flt.price_max
        for name, values in flt.attributes.items():
            good &= name in r.attributes and r.attributes[name] in values
        ok.append(good)
    return np.array(ok)


@pytest.fixture(scope="module")
def hnsw_shop(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[ItemRecord], np.ndarray, np.ndarray]:
    """8k items, HNSW for the global and every category index, 80 tombstones."""
    import faiss

    n, dim = 8_000, 16
    records = shop_records(n, seed=1)
    vectors = synthetic_vectors(n, dim, clusters=64, seed=1)
    deleted = np.sort(np.random.default_rng(2).choice(n, 80, replace=False)).astype(np.int64)
    root = tmp_path_factory.mktemp("hnsw_shop")
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)  # module fixtures run before the single-threaded autouse one
    try:
        publish(root, records, vectors, IndexPolicy(exact_threshold=100), deleted=deleted)
    finally:
        faiss.omp_set_num_threads(threads)
    return root, records, vectors, deleted


@pytest.mark.parametrize("selectivity", [0.001, 0.01, 0.1, 0.5])
def test_filtered_search_equals_brute_force_at_every_selectivity(
    hnsw_shop: tuple[Path, list[ItemRecord], np.ndarray, np.ndarray], selectivity: float
) -> None:
    root, records, vectors, deleted = hnsw_shop
    idx = open_index(root)
    assert idx.manifest["factory"] == "HNSW32" and set(idx.manifest["category_factories"].values()) == {"HNSW32"}
    flt = ItemFilter.of(attributes={"bucket": [float(b) for b in range(round(1000 * selectivity))]})
    allowed = naive_allowed(records, flt)
    allowed[deleted] = False
    assert abs(allowed.mean() - selectivity) < max(0.3 * selectivity, 0.001)
    queries = synthetic_vectors(8_040, 16, clusters=64, seed=1)[8_000:]
    k = 10
    cats = np.array([r.category for r in records])
    for category in (None, "shoes"):
        rows = np.flatnonzero(allowed & (cats == category if category else True))
        want, want_scores = exact_topk(queries, vectors, k, rows=rows)
        got = idx.search(queries, k=k, category=category, filters=flt)
        for w, ws, g in zip(want, want_scores, got, strict=True):
            assert len(g) == min(k, len(rows))  # never fewer than k while k items pass
            assert [h.item_id for h in g] == [records[r].item_id for r in w]  # recall@k = 1.0, same order
            np.testing.assert_allclose([h.score for h in g], ws, atol=1e-5)


def test_an_index_without_flat_vectors_reads_them_from_the_version(tmp_path: Path) -> None:
    """IVF keeps no flat copy: filtered searches score the allowed rows of vectors.npy, still exactly."""
    records = shop_records(3_000, seed=8)
    vectors = synthetic_vectors(3_000, 16, clusters=32, seed=8)
    publish(tmp_path, records, vectors, IndexPolicy(exact_threshold=100, factory="IVF8,Flat"))
    idx = open_index(tmp_path)
    assert idx.manifest["factory"] == "IVF8,Flat"
    q = synthetic_vectors(3_010, 16, clusters=32, seed=8)[3_000:]
    for fraction in (0.01, 0.5):
        flt = ItemFilter.of(attributes={"bucket": [float(b) for b in range(int(1000 * fraction))]})
        want, _ = exact_topk(q, vectors, 7, rows=np.flatnonzero(naive_allowed(records, flt)))
        got = idx.search(q, k=7, filters=flt)
        assert [[h.item_id for h in g] for g in got] == [[records[r].item_id for r in w] for w in want]


def test_filters_combine_with_exclusions_and_search_categories(
    hnsw_shop: tuple[Path, list[ItemRecord], np.ndarray, np.ndarray],
) -> None:
    root, records, vectors, deleted = hnsw_shop
    idx = open_index(root)
    flt = ItemFilter.of(price_max=120.0, attributes={"in_stock": True, "brand": ["acme", "dune"]})
    allowed = naive_allowed(records, flt)
    allowed[deleted] = False
    q = vectors[7]
    first = idx.search(q[None], k=30, category="tops", filters=flt)[0]
    exclude = [h.item_id for h in first[:3]]
    per_cat = idx.search_categories(q, ["tops", "bags"], k=10, exclude=exclude, filters=flt, records=True)
    cats = np.array([r.category for r in records])
    excluded_rows = [int(h.item_id[1:]) for h in first[:3]]  # ids are s<row>
    for cat in ("tops", "bags"):
        ok = allowed & (cats == cat)
        ok[excluded_rows] = False
        want, _ = exact_topk(q[None], vectors, 10, rows=np.flatnonzero(ok))
        assert [h.item_id for h in per_cat[cat]] == [records[r].item_id for r in want[0]]
        for h in per_cat[cat]:
            assert h.record is not None and h.record.attributes["in_stock"] is True
            assert h.record.price is not None and h.record.price <= 120.0
    # Many exclusions (past the over-fetch limit) still give the exact allowed set.
    many = [h.item_id for h in idx.search(q[None], k=100, category="tops", filters=flt)[0]]
    got = idx.search(q[None], k=10, category="tops", exclude=many[:80], filters=flt)[0]
    assert [h.item_id for h in got] == many[80:90]


def test_filter_mask_matches_a_naive_loop() -> None:
    records = shop_records(2_000, seed=4)
    cols = columns_of(records)
    assert cols.schema == {"brand": "string", "bucket": "number", "in_stock": "boolean", "size": "number"}
    filters = [
        ItemFilter.of(price_min=50.0),
        ItemFilter.of(price_min=50.0, price_max=60.0),
        ItemFilter.of(attributes={"in_stock": False}),
        ItemFilter.of(attributes={"in_stock": [True, False]}),  # any known value: missing ones still fail
        ItemFilter.of(attributes={"brand": "bolt", "size": [38, 40.0]}),
        ItemFilter.of(attributes={"brand": ["nobody"]}),  # a value no item has matches nothing
        ItemFilter.of(price_max=100.0, attributes={"brand": ["acme", "ember", "nobody"], "in_stock": True}),
    ]
    for flt in filters:
        np.testing.assert_array_equal(filter_mask(flt, cols), naive_allowed(records, flt), err_msg=flt.key)
    assert not filter_mask(filters[5], cols).any()
    # Missing values never match, whatever the filter allows.
    no_stock = np.array(["in_stock" not in r.attributes for r in records])
    assert no_stock.any() and not filter_mask(filters[3], cols)[no_stock].any()


def test_unknown_attribute_and_wrong_type_name_the_known_fields(tmp_path: Path) -> None:
    records = shop_records(300)
    publish(tmp_path, records, synthetic_vectors(300, 16, seed=0), IndexPolicy())
    idx = open_index(tmp_path)
    q = synthetic_vectors(1, 16, seed=9)
    with pytest.raises(FilterError) as e:
        idx.search(q, k=5, filters=ItemFilter.of(attributes={"colour": "red"}))
    assert e.value.unknown == ["colour"]
    assert e.value.known == ["price_min", "price_max", "brand", "bucket", "in_stock", "size"]
    assert "colour" in str(e.value) and "in_stock" in str(e.value)
    with pytest.raises(FilterError, match="'in_stock' is a boolean attribute"):
        idx.search(q, k=5, filters=ItemFilter.of(attributes={"in_stock": "yes"}))
    with pytest.raises(FilterError, match="'size' is a number attribute"):
        idx.search_categories(q[0], ["tops"], k=5, filters=ItemFilter.of(attributes={"size": True}))
    with pytest.raises(FilterError, match="above price_max"):
        ItemFilter.of(price_min=10, price_max=5)
    with pytest.raises(FilterError, match="lists no values"):
        ItemFilter.of(attributes={"brand": []})
    with pytest.raises(FilterError, match="mixes value types"):
        ItemFilter.of(attributes={"brand": ["acme", 3]})


def test_filter_keys_are_canonical() -> None:
    a = ItemFilter.of(price_max=80, attributes={"brand": ["b", "a", "a"], "in_stock": True})
    b = ItemFilter.of(attributes={"in_stock": [True], "brand": ["a", "b"]}, price_max=80.0)
    assert a.key == b.key and a == b
    assert a.key != ItemFilter.of(price_max=81, attributes={"brand": ["a", "b"], "in_stock": True}).key
    assert ItemFilter.of().empty and not a.empty


def test_manifest_lists_attributes_and_records_keep_them(tmp_path: Path) -> None:
    records = shop_records(400, seed=5)
    vectors = synthetic_vectors(400, 16, seed=5)
    publish(tmp_path, records, vectors, IndexPolicy())
    idx = open_index(tmp_path)
    assert idx.manifest["attributes"] == {"brand": "string", "bucket": "number", "in_stock": "boolean",
                                          "size": "number"}
    assert COLUMNS_FILE in idx.manifest["files"]  # checksummed like every artifact
    got = idx.get_items([records[3].item_id])[records[3].item_id]
    assert dict(got.attributes) == dict(records[3].attributes) and got.price == records[3].price
    info = idx.describe_filters()
    assert set(info["attributes"]) == {"brand", "bucket", "in_stock", "size"}
    brands = info["attributes"]["brand"]["values"]
    assert sum(brands.values()) == sum("brand" in r.attributes for r in records)
    idx.close()
    # A removal (a new version from the stored records) keeps attributes and filters.
    remove_from_index(index_root=tmp_path, item_ids=[records[0].item_id])
    idx2 = open_index(tmp_path)
    flt = ItemFilter.of(attributes={"brand": "acme"})
    allowed = naive_allowed(records, flt)
    allowed[0] = False
    hits = idx2.search(vectors[:1], k=400, filters=flt)[0]
    assert sorted(h.item_id for h in hits) == sorted(records[r].item_id for r in np.flatnonzero(allowed))


def test_a_version_without_attribute_columns_filters_on_price(tmp_path: Path) -> None:
    """Versions published before attributes existed have no columns file: price filters still work."""
    records = [dataclasses.replace(r, attributes={}) for r in shop_records(200, seed=6)]
    vectors = synthetic_vectors(200, 16, seed=6)
    vdir = publish(tmp_path, records, vectors, IndexPolicy())
    manifest = json.loads((vdir / MANIFEST_FILE).read_text())
    del manifest["attributes"], manifest["files"][COLUMNS_FILE]
    (vdir / MANIFEST_FILE).write_text(json.dumps(manifest))
    (vdir / COLUMNS_FILE).unlink()
    idx = open_index(tmp_path)
    assert idx.attributes == {}
    hits = idx.search(vectors[:1], k=200, filters=ItemFilter.of(price_max=50.0))[0]
    assert {h.item_id for h in hits} == {r.item_id for r in records if r.price is not None and r.price <= 50}
    with pytest.raises(FilterError, match=r"\['price_min', 'price_max'\]"):
        idx.search(vectors[:1], k=5, filters=ItemFilter.of(attributes={"brand": "acme"}))


def test_corrupt_columns_file_is_refused(tmp_path: Path) -> None:
    from index import IndexArtifactError

    vdir = publish(tmp_path, shop_records(100), synthetic_vectors(100, 16, seed=0), IndexPolicy())
    (vdir / COLUMNS_FILE).write_bytes(b"not a zip")
    with pytest.raises(IndexArtifactError, match=r"columns\.npz"):
        open_index(tmp_path)
