"""Incremental add/remove: visible after publish, consistent with exact search, old version untouched."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from catalog_fixture import write_image_catalog
from index_helpers import exact_topk

from index import IndexArtifactError, open_index
from index.build import build_catalog_index
from index.embed_job import EmbedJobConfig
from index.errors import IndexBuildError
from index.update import add_to_index, remove_from_index
from index.writer import IndexPolicy

JOB = EmbedJobConfig(batch_size=16, num_workers=0, chunk_size=64, progress=False)


@pytest.fixture
def built(tmp_path: Path, random_checkpoint: Path) -> Path:
    """36 items (12 per category); global HNSW above 30 items, Flat category sub-indexes."""
    catalog = write_image_catalog(tmp_path / "shop", n=36, bad=False)
    out = tmp_path / "idx"
    build_catalog_index(checkpoint=random_checkpoint, catalog=catalog, out=out, job=JOB,
                        policy=IndexPolicy(exact_threshold=30))
    return out


def _check_categories_exact(root: Path) -> None:
    """Every category search equals brute force over that category's live vectors."""
    idx = open_index(root)
    ids = sorted(idx.get_items([f"p{i:04d}" for i in range(200)]))
    recs = idx.get_items(ids)
    vecs = idx.vectors(ids)
    for cat in idx.categories():
        rows = np.asarray([n for n, i in enumerate(ids) if recs[i].category == cat])
        want, _ = exact_topk(vecs[:5], vecs, 6, rows=rows)
        got = idx.search(vecs[:5], k=6, category=cat)
        assert [[h.item_id for h in hits] for hits in got] == [[ids[r] for r in w] for w in want]


def test_add_is_visible_after_publish(built: Path, tmp_path: Path, random_checkpoint: Path) -> None:
    old = open_index(built)
    extra = write_image_catalog(tmp_path / "more", n=6, seed=5, start=100, bad=True)
    res = add_to_index(index_root=built, checkpoint=random_checkpoint, catalog=extra, job=JOB)
    assert (res.operation, res.added, res.replaced, res.rejects, res.count) == ("add", 6, 0, 2, 42)
    new = open_index(built)
    assert new.version != old.version and new.manifest["parent"] == old.version
    assert new.manifest["factory"] == "HNSW32" and new.count == 42
    assert new.has("p0100") and not old.has("p0100")
    q = new.vectors(["p0103"])
    assert new.search(q, k=1)[0][0].item_id == "p0103"
    assert new.search(new.vectors(["p0102"]), k=1, category="tops")[0][0].item_id == "p0102"  # a new top
    _check_categories_exact(built)
    assert open_index(old.root).count == 36  # the previous version is still intact on disk


def test_add_replaces_existing_ids(built: Path, tmp_path: Path, random_checkpoint: Path) -> None:
    before = open_index(built).vectors(["p0004"])
    again = write_image_catalog(tmp_path / "again", n=2, seed=9, start=4, bad=False)  # new pictures of p0004/5
    res = add_to_index(index_root=built, checkpoint=random_checkpoint, catalog=again, job=JOB)
    assert (res.added, res.replaced, res.count) == (2, 2, 36)
    idx = open_index(built)
    assert not np.allclose(idx.vectors(["p0004"]), before)
    hits = idx.search(idx.vectors(["p0004"]), k=36)[0]
    assert [h.item_id for h in hits].count("p0004") == 1 and hits[0].item_id == "p0004"


def test_remove_is_visible_after_publish(built: Path) -> None:
    old = open_index(built)
    q = old.vectors(["p0000", "p0003"])
    res = remove_from_index(index_root=built, item_ids=["p0000", "p0003"])
    assert (res.operation, res.removed, res.count) == ("remove", 2, 34)
    idx = open_index(built)
    assert idx.manifest["tombstones"] == 2 and idx.categories()["tops"] == 10
    assert not idx.has("p0000") and idx.get_items(["p0000"]) == {}
    for cat in (None, "tops"):
        for hits in idx.search(q, k=34, category=cat):
            assert not {"p0000", "p0003"} & {h.item_id for h in hits}
    assert len(idx.search(q, k=100)[0]) == 34
    with pytest.raises(KeyError, match="p0000"):
        idx.vectors(["p0000"])
    _check_categories_exact(built)
    assert old.has("p0000")  # readers of the old version are unaffected


def test_many_removals_compact(built: Path) -> None:
    res = remove_from_index(index_root=built, item_ids=[f"p{i:04d}" for i in range(0, 36, 3)])  # every top
    assert res.operation == "compact" and res.count == 24
    idx = open_index(built)
    assert idx.manifest["rows"] == 24 and idx.manifest["tombstones"] == 0
    assert "tops" not in idx.categories() and idx.manifest["factory"] == "Flat"  # 24 <= threshold 30
    _check_categories_exact(built)


def test_update_errors(built: Path, tmp_path: Path) -> None:
    with pytest.raises(IndexBuildError, match=r"not in index version .*\['nope'\]"):
        remove_from_index(index_root=built, item_ids=["p0001", "nope"])
    with pytest.raises(IndexBuildError, match="no item ids"):
        remove_from_index(index_root=built, item_ids=[])
    import torch

    from embedder import EmbedderConfig, PreprocessConfig, build_embedder, save_checkpoint

    torch.manual_seed(1)
    other = build_embedder(EmbedderConfig(embed_dim=32, preprocess=PreprocessConfig(image_size=64)))
    save_checkpoint(other, tmp_path / "other")
    extra = write_image_catalog(tmp_path / "more", n=2, start=300, bad=False)
    with pytest.raises(IndexArtifactError, match="rebuild the index with this checkpoint"):
        add_to_index(index_root=built, checkpoint=tmp_path / "other", catalog=extra, job=JOB)


def test_category_growing_past_threshold_gets_its_own_graph(built: Path, tmp_path: Path,
                                                            random_checkpoint: Path) -> None:
    more = write_image_catalog(tmp_path / "more", n=57, start=201, bad=False)  # 19 new items per category
    res = add_to_index(index_root=built, checkpoint=random_checkpoint, catalog=more, job=JOB)
    assert res.operation == "add" and res.count == 93
    idx = open_index(built)
    assert idx.categories() == {"bottoms": 31, "shoes": 31, "tops": 31}
    assert set(idx.manifest["category_factories"].values()) == {"HNSW32"}  # 31 > threshold 30: rebuilt
    for item_id in ("p0201", "p0000"):
        cat = idx.get_items([item_id])[item_id].category
        assert idx.search(idx.vectors([item_id]), k=1, category=cat)[0][0].item_id == item_id
