"""`data import`: a shop's catalog (CSV/JSONL) and stylist outfits (JSONL) -> the Polyvore layout the trainer reads.

Writes both split kinds: `nondisjoint` (outfits shuffled 70/10/20 over one item pool) and the cold-start
`disjoint` (held-out items in no train outfit; every valid/test FITB answer and every swapped-in item of
a negative is one of them), FITB questions and compatibility lines (one positive and one same-category
swap negative per outfit), and every product: the ones in no training outfit form the unlabeled pool.
The splits reuse the synthetic benchmark's builder with each product as its own "theme", so a wrong
answer is any other product of the category from another outfit of the split, as in Polyvore.

Everything follows from `seed`. Input problems (unknown or duplicate ids, missing or undecodable images,
outfits of one category) are collected per file and raised as one DatasetError naming each line.
The dataset is written beside `out` and swapped in only when complete.
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from catalog.attributes import schema_of
from catalog.dataset_dir import prepare_out, staging_dir, swap_in
from catalog.errors import DatasetError, problems_error
from catalog.generic import read_catalog_rows, read_outfit_rows
from catalog.polyvore_writer import write_polyvore_dataset
from catalog.shop_images import stage_images
from catalog.synth_splits import Truth, disjoint_splits, nondisjoint_splits
from catalog.types import Item, Outfit, SplitData
from embedder.files import sha256_file

META_FILE = "import_meta.json"
VERSION = 1
MIN_OUTFITS = 20  # fewer cannot fill train, valid and test of both split kinds
MAX_ID_LENGTH = 200  # the service's limit on an item id
_NONDISJOINT, _DISJOINT = range(2)  # independent random streams per split kind


@dataclass(frozen=True)
class ImportSummary:
    root: Path
    items: int
    labeled_items: int  # in at least one outfit
    unlabeled_items: int  # in no outfit at all (the trainer's pool also holds items of valid/test outfits)
    outfits: int
    categories: dict[str, int]
    attributes: dict[str, str]  # name -> type
    images_copied: int
    images_converted: int
    cold_items: int  # disjoint: held out of every train outfit
    splits: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "root": str(self.root)}


def _id_problem(item_id: str) -> str | None:
    """Ids name files (images/{id}.jpg): no path separators, no hidden or relative names."""
    if len(item_id) > MAX_ID_LENGTH:
        return f"item_id is {len(item_id)} characters; at most {MAX_ID_LENGTH}"
    if item_id.startswith(".") or any(c in item_id for c in "/\\") or any(ord(c) < 32 for c in item_id):
        return f"item_id {item_id!r} cannot name a file: no '/', '\\', control characters or leading '.'"
    return None


def check_catalog(path: Path, rows: Sequence[tuple[int, Item]]) -> None:
    problems = [f"line {n}: {p}" for n, it in rows if (p := _id_problem(it.item_id)) is not None]
    if problems:
        raise problems_error(path, problems, "unusable item id(s)")


def check_outfits(path: Path, rows: Sequence[tuple[int, Outfit]], items: dict[str, Item]) -> None:
    """Unknown ids, repeated items or set ids, and outfits of one category, every one named by line."""
    problems: list[str] = []
    first_line: dict[str, int] = {}
    for n, o in rows:
        if (seen := first_line.setdefault(o.set_id, n)) != n:
            problems.append(f"line {n}: set_id {o.set_id!r} repeats line {seen}")
        if not o.set_id or any(c.isspace() for c in o.set_id):
            problems.append(f"line {n}: set_id {o.set_id!r} must be non-empty without spaces")
        if unknown := [i for i in o.item_ids if i not in items]:
            problems.append(f"line {n}: unknown item ids {unknown[:10]} (not in the catalog)")
            continue
        if repeated := sorted(i for i, c in Counter(o.item_ids).items() if c > 1):
            problems.append(f"line {n}: items {repeated} appear twice in the outfit")
        categories = {items[i].category for i in o.item_ids}
        if len(categories) < 2:
            problems.append(
                f"line {n}: all {len(o.item_ids)} item(s) are {sorted(categories)[0]!r}; an outfit needs "
                "items of at least two categories"
            )
    if problems:
        raise problems_error(path, problems, "problem(s) in the outfits")
    if len(rows) < MIN_OUTFITS:
        raise DatasetError(path, f"{len(rows)} outfits; at least {MIN_OUTFITS} are needed for train/valid/test")


def _rng(seed: int, stream: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(stream,)))


def build_splits(
    outfits: Sequence[Outfit], items: dict[str, Item], *, seed: int
) -> tuple[dict[str, dict[str, SplitData]], set[str]]:
    """Both split kinds and the cold (disjoint held-out) item ids."""
    used = {i for o in outfits for i in o.item_ids}
    # Each product is its own theme: any other product of the category may be a wrong answer.
    truth = Truth(category={i: items[i].category for i in used}, theme={i: i for i in used})
    splits = {"nondisjoint": nondisjoint_splits(outfits, truth=truth, rng=_rng(seed, _NONDISJOINT))}
    splits["disjoint"], cold = disjoint_splits(outfits, truth=truth, rng=_rng(seed, _DISJOINT))
    return splits, cold


def import_shop(
    *, catalog: Path, outfits: Path, out: Path, seed: int = 0, threads: int = 2, jpeg_quality: int = 95
) -> ImportSummary:
    """Validate the shop's files and write the Polyvore-format dataset to `out` (see the module doc)."""
    catalog, outfits, out = Path(catalog), Path(outfits), Path(out)
    prepare_out(out, META_FILE, "an imported shop dataset")
    rows = read_catalog_rows(catalog)
    if not rows:
        raise DatasetError(catalog, "the catalog has no items")
    check_catalog(catalog, rows)
    items = {it.item_id: it for _, it in rows}
    outfit_rows = read_outfit_rows(outfits)
    check_outfits(outfits, outfit_rows, items)
    outfit_list = [o for _, o in outfit_rows]
    attributes = schema_of((f"line {n}", it.attributes) for n, it in rows)  # typed per file already

    names = sorted({it.category for it in items.values()})
    category_id = {c: str(k) for k, c in enumerate(names, start=1)}
    categories = {category_id[c]: (c, c) for c in names}
    catalogue = [
        Item(it.item_id, it.category, category_id[it.category], it.title, None, it.price, it.url, it.attributes)
        for it in items.values()
    ]
    splits, cold = build_splits(outfit_list, items, seed=seed)
    labeled = {i for o in outfit_list for i in o.item_ids}
    meta = {
        "importer": "catalog.shop_import",
        "version": VERSION,
        "params": {"seed": seed},
        "sources": {
            "catalog": {"path": str(catalog.resolve()), "sha256": sha256_file(catalog)},
            "outfits": {"path": str(outfits.resolve()), "sha256": sha256_file(outfits)},
        },
        "attributes": attributes,
        "cold_items": sorted(cold),
    }
    tmp = staging_dir(out)
    try:
        counts = stage_images(rows, tmp, catalog=catalog, threads=threads, quality=jpeg_quality)
        write_polyvore_dataset(tmp, items=catalogue, categories=categories, splits=splits, copy_images=False)
        (tmp / META_FILE).write_text(json.dumps(meta, indent=1), encoding="utf-8")
        swap_in(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # gone already after a successful swap
    split_counts = {
        kind: {s: {"outfits": len(d.outfits), "fitb": len(d.fitb), "compatibility": len(d.compatibility)}
               for s, d in by_split.items()}
        for kind, by_split in splits.items()
    }
    # A split without FITB questions still trains; its FITB figure is then simply missing.
    warnings = [
        f"{kind}/{name} has no FITB question: fewer than 4 products of any category fit there"
        + (" (held-out products only)" if kind == "disjoint" else "") + "; more outfits or products help"
        for kind, by_split in split_counts.items() for name, c in by_split.items() if c["fitb"] == 0
    ]
    return ImportSummary(
        root=out,
        items=len(items),
        labeled_items=len(labeled),
        unlabeled_items=len(items) - len(labeled),
        outfits=len(outfit_list),
        categories=dict(sorted(Counter(it.category for it in items.values()).items())),
        attributes=attributes,
        images_copied=counts.copied,
        images_converted=counts.converted,
        cold_items=len(cold),
        splits=split_counts,
        warnings=warnings,
    )
