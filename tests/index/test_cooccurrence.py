"""Category co-occurrence of the training outfits, counted at build time and kept in the manifest (issue 14)."""

from __future__ import annotations

import json
from pathlib import Path

from catalog.polyvore import PolyvoreDataset
from index import open_index
from index.cooccurrence import MANIFEST_KEY, count_cooccurrence
from index.update import remove_from_index
from outfit_compat.cli import main


def test_build_counts_the_training_outfits_for_a_csv_catalog_too(
    tmp_path: Path, synth_root: Path, random_checkpoint: Path
) -> None:
    ds = PolyvoreDataset(synth_root)
    items = sorted(ds.items.values(), key=lambda it: it.item_id)[:40]
    catalog = tmp_path / "slice.jsonl"
    catalog.write_text("".join(json.dumps({"item_id": it.item_id, "image": str(ds.image_path(it.item_id)),
                                           "category": it.category}) + "\n" for it in items))
    kept = {it.item_id: it.category for it in items}
    want = count_cooccurrence(
        cats for cats in ([kept[i] for i in o.item_ids if i in kept] for o in ds.split("train").outfits)
        if len(cats) >= 2)
    base = ["index", "build", "--checkpoint", str(random_checkpoint), "--catalog", str(catalog), "--workers", "0",
            "--no-progress"]
    assert main([*base, "--out", str(tmp_path / "plain")]) == 0
    assert MANIFEST_KEY not in open_index(tmp_path / "plain").manifest  # a CSV alone has no outfits
    assert main([*base, "--out", str(tmp_path / "shop"), "--outfits", str(synth_root)]) == 0
    got = open_index(tmp_path / "shop").manifest[MANIFEST_KEY]
    assert got == {"source": "nondisjoint/train.json", **want} and got["outfits"] > 0
    remove_from_index(index_root=tmp_path / "shop", item_ids=[items[0].item_id])
    assert open_index(tmp_path / "shop").manifest[MANIFEST_KEY] == got  # carried by updates
