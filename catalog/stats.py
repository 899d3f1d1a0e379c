"""`data stats`: counts and every problem found in a Polyvore-format dataset."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from catalog.errors import DatasetError
from catalog.polyvore import SPLITS, PolyvoreDataset


def dataset_stats(root: Path | str, kind: str = "nondisjoint", check_images: bool = True) -> dict[str, Any]:
    """Summarise a dataset. Problems are collected, not raised, so one run lists them all."""
    problems: list[str] = []
    try:
        ds = PolyvoreDataset(root, kind)
    except DatasetError as e:
        return {"root": str(root), "kind": kind, "ok": False, "problems": [str(e)]}
    stats: dict[str, Any] = {
        "root": str(ds.root),
        "kind": kind,
        "items": len(ds.items),
        "items_per_category": dict(sorted(Counter(it.category for it in ds.items.values()).items())),
        "splits": {},
    }
    unknown_categories = sorted({it.category_id for it in ds.items.values()} - set(ds.categories) - {""})
    if unknown_categories:
        problems.append(f"{ds.root / 'categories.csv'}: category ids used but not listed {unknown_categories}")
    train_items: set[str] | None = None
    for name in SPLITS:
        try:
            split = ds.split(name, problems=problems)
        except DatasetError as e:
            problems.append(str(e))
            continue
        if name == "train":
            train_items = {i for o in split.outfits for i in o.item_ids}
        stats["splits"][name] = {
            "outfits": len(split.outfits),
            "fitb_questions": len(split.fitb),
            "compatibility_lines": len(split.compatibility),
            "compatibility_positive": sum(c.label for c in split.compatibility),
        }
    # Items in no training outfit: the unlabeled pool for semi-supervised training.
    stats["unlabeled_items"] = None if train_items is None else sum(i not in train_items for i in ds.items)
    if check_images:
        missing = sorted(i for i in ds.items if not ds.image_path(i).is_file())
        stats["missing_images"] = len(missing)
        problems.extend(f"{ds.image_path(i)}: image is missing" for i in missing[:50])
        if len(missing) > 50:
            problems.append(f"... and {len(missing) - 50} more missing images")
    stats["problems"] = problems
    stats["ok"] = not problems
    return stats
