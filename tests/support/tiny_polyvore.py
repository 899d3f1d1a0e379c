"""A tiny hand-made Polyvore-format dataset written by tests (9 items, 3 outfits per split)."""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image

ITEMS = {
    "t1": ("1", "tops"),
    "t2": ("1", "tops"),
    "t3": ("1", "tops"),
    "b1": ("2", "bottoms"),
    "b2": ("2", "bottoms"),
    "b3": ("2", "bottoms"),
    "s1": ("3", "shoes"),
    "s2": ("3", "shoes"),
    "u1": ("3", "shoes"),
}


def write_tiny(root: Path) -> Path:
    """Three outfits per split, item ids deliberately non-numeric, one unlabeled item (u1)."""
    (root / "images").mkdir(parents=True)
    meta = {i: {"semantic_category": c, "category_id": cid, "title": f"item {i}"} for i, (cid, c) in ITEMS.items()}
    (root / "polyvore_item_metadata.json").write_text(json.dumps(meta))
    (root / "categories.csv").write_text("1,Shirt,tops\n2,Jeans,bottoms\n3,Sneakers,shoes\n")
    for i in ITEMS:
        Image.new("RGB", (8, 8), (10, 10, 10)).save(root / "images" / f"{i}.jpg")
    outfits = [
        {"set_id": "100", "items": [{"item_id": "t1", "index": 1}, {"item_id": "b1", "index": 2}]},
        {
            "set_id": "200",
            "items": [{"item_id": "t2", "index": 1}, {"item_id": "b2", "index": 3}, {"item_id": "s1", "index": 4}],
        },
        {
            "set_id": "300",
            "items": [{"item_id": "t3", "index": 2}, {"item_id": "b3", "index": 5}, {"item_id": "s2", "index": 6}],
        },
    ]
    fitb = [{"question": ["200_1", "200_4"], "answers": ["100_2", "200_3", "300_5"], "blank_position": 2}]
    compat = "1 100_1 100_2\n0 200_1 300_5 200_4\n"
    for kind in ("nondisjoint", "disjoint"):
        (root / kind).mkdir()
        for split in ("train", "valid", "test"):
            (root / kind / f"{split}.json").write_text(json.dumps(outfits))
            (root / kind / f"fill_in_blank_{split}.json").write_text(json.dumps(fitb))
            (root / kind / f"compatibility_{split}.txt").write_text(compat)
    return root
