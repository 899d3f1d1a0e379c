"""The build job on real product photos (a slice of mango-outfits; skipped where the set is absent)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from catalog.polyvore import PolyvoreDataset
from index import open_index
from index.build import build_catalog_index
from index.embed_job import EmbedJobConfig


@pytest.mark.mango
def test_real_photos_index_and_find_themselves(tmp_path: Path, mango_root: Path, random_checkpoint: Path) -> None:
    ds = PolyvoreDataset(mango_root)
    items = sorted(ds.items.values(), key=lambda it: it.item_id)[:24]
    catalog = tmp_path / "slice.jsonl"  # image paths are absolute: the photos stay where they are
    catalog.write_text("".join(json.dumps({"item_id": it.item_id, "image": str(ds.image_path(it.item_id)),
                                           "category": it.category, "title": it.title}) + "\n" for it in items))
    res = build_catalog_index(checkpoint=random_checkpoint, catalog=catalog, out=tmp_path / "idx",
                              job=EmbedJobConfig(batch_size=12, num_workers=0, chunk_size=12, progress=False))
    idx = open_index(tmp_path / "idx")
    assert res.count + res.rejects == 24 and idx.count == res.count > 20
    ids = [it.item_id for it in items if idx.has(it.item_id)][:5]
    assert [hits[0].item_id for hits in idx.search(idx.vectors(ids), k=1)] == ids
