"""Writer for the Polyvore Outfits on-disk layout: the inverse of `catalog.polyvore.PolyvoreDataset`.

Splits are given as `SplitData` (item ids); the writer turns item ids back into `{set_id}_{index}` tokens
that resolve through the split's own outfits, so reading the result gives back the same `SplitData`.
Every file is written with `embedder.files.write_atomic`, so a crash never leaves a half-written file.
"""

from __future__ import annotations

import csv
import io
import json
import pickle
import shutil
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from catalog.errors import DatasetError
from catalog.polyvore import CATEGORIES_FILE, IMAGE_DIR, METADATA_FILE, SPLIT_KINDS, SPLITS
from catalog.types import CompatibilityExample, FITBQuestion, Item, Outfit, SplitData
from embedder.files import write_atomic

TYPESPACES_FILE = "typespaces.p"


def _json_bytes(obj: Any) -> bytes:
    # Default separators and no trailing newline, as in the published Polyvore/Mango files.
    return json.dumps(obj).encode("utf-8")


def item_metadata(item: Item, category_name: str, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """One entry of polyvore_item_metadata.json. `catgeories` (sic) is the key the real files use."""
    meta: dict[str, Any] = {
        "url_name": item.title,
        "description": "",
        "catgeories": [item.category, category_name] if category_name else [item.category],
        "title": item.title,
        "related": [],
        "category_id": item.category_id,
        "semantic_category": item.category,
    }
    if extra:
        meta.update(extra)
    return meta


class _Tokens:
    """Maps item ids back to `{set_id}_{index}` tokens of one split's outfits."""

    def __init__(self, path: Path, outfits: Sequence[Outfit]) -> None:
        self.path = path
        self.by_set: dict[str, dict[str, str]] = {}
        self.sets_of: dict[str, list[str]] = {}  # item id -> set ids containing it, in split order
        self.order: dict[str, int] = {o.set_id: n for n, o in enumerate(outfits)}
        for o in outfits:
            if o.set_id in self.by_set:
                raise DatasetError(path, f"set_id {o.set_id!r} appears twice; set ids must be unique")
            self.by_set[o.set_id] = {i: f"{o.set_id}_{k}" for i, k in zip(o.item_ids, o.indices, strict=True)}
            for i in o.item_ids:
                self.sets_of.setdefault(i, []).append(o.set_id)

    def in_set(self, set_id: str, item_id: str, what: str) -> str:
        token = self.by_set.get(set_id, {}).get(item_id)
        if token is None:
            raise DatasetError(self.path, f"{what}: item {item_id!r} is not in outfit {set_id!r}")
        return token

    def elsewhere(self, item_id: str, not_set: str, what: str) -> str:
        """A token for `item_id` from an outfit other than `not_set` (wrong FITB answers need one)."""
        for s in self.sets_of.get(item_id, []):
            if s != not_set:
                return self.by_set[s][item_id]
        raise DatasetError(self.path, f"{what}: item {item_id!r} appears in no other outfit of this split")

    def line(self, example: CompatibilityExample, n: int) -> list[str]:
        """Tokens for a compatibility line: the outfit sharing most items names those, the rest any outfit."""
        wanted = set(example.item_ids)
        # Only sets holding one of the items can win; ties go to the earliest set of the split.
        candidates = sorted({s for i in wanted for s in self.sets_of.get(i, [])}, key=self.order.__getitem__)
        best = max(candidates, key=lambda s: len(wanted & self.by_set[s].keys()), default="")
        out = []
        for i in example.item_ids:
            if i in self.by_set.get(best, {}):
                out.append(self.by_set[best][i])
            elif i in self.sets_of:
                out.append(self.by_set[self.sets_of[i][0]][i])
            else:
                raise DatasetError(self.path, f"compatibility line {n}: item {i!r} is in no outfit")
        return out


def _fitb_entry(tokens: _Tokens, q: FITBQuestion, n: int) -> dict[str, Any]:
    what = f"question #{n} (set {q.set_id})"
    if not 0 <= q.correct < len(q.answers):
        raise DatasetError(tokens.path, f"{what}: correct={q.correct} is not an index of its answers")
    if not q.question:
        raise DatasetError(tokens.path, f"{what}: no question items (readers find the outfit from the first one)")
    answers = [
        tokens.in_set(q.set_id, a, what) if k == q.correct else tokens.elsewhere(a, q.set_id, what)
        for k, a in enumerate(q.answers)
    ]
    return {
        "question": [tokens.in_set(q.set_id, i, what) for i in q.question],
        "answers": answers,
        "blank_position": q.blank_position,
    }


def typespaces(outfits: Iterable[Outfit], category_of: Mapping[str, str]) -> list[tuple[str, str]]:
    """Sorted (a, b), a <= b, semantic-category pairs that co-occur in an outfit.

    A sorted list rather than a set: the reference code enumerates it to number the type spaces,
    and a pickled set of strings would change byte order with PYTHONHASHSEED.
    """
    pairs: set[tuple[str, str]] = set()
    for o in outfits:
        cats = [category_of[i] for i in o.item_ids]
        for a in range(len(cats)):
            for b in range(a + 1, len(cats)):
                x, y = sorted((cats[a], cats[b]))
                pairs.add((x, y))
    return sorted(pairs)


def _write_split(base: Path, name: str, data: SplitData, category_of: Mapping[str, str]) -> None:
    outfits_path = base / f"{name}.json"
    unknown = sorted({i for o in data.outfits for i in o.item_ids} - category_of.keys())
    if unknown:
        raise DatasetError(outfits_path, f"outfits name items missing from `items`: {unknown[:10]}")
    outfits_json = [
        {
            "set_id": o.set_id,
            "items": [{"item_id": i, "index": k} for i, k in zip(o.item_ids, o.indices, strict=True)],
        }
        for o in data.outfits
    ]
    tokens = _Tokens(outfits_path, data.outfits)
    fitb = [_fitb_entry(tokens, q, n) for n, q in enumerate(data.fitb)]
    lines = []
    for n, c in enumerate(data.compatibility, start=1):
        if c.label not in (0, 1):
            raise DatasetError(base / f"compatibility_{name}.txt", f"line {n}: label {c.label} is not 0 or 1")
        lines.append(" ".join([str(c.label), *tokens.line(c, n)]) + "\n")
    write_atomic(outfits_path, _json_bytes(outfits_json))
    write_atomic(base / f"fill_in_blank_{name}.json", _json_bytes(fitb))
    write_atomic(base / f"compatibility_{name}.txt", "".join(lines).encode("utf-8"))


def _copy_image(root: Path, item: Item) -> None:
    if item.image is None:
        return
    dest = root / IMAGE_DIR / f"{item.item_id}.jpg"
    src = Path(item.image)
    if src == dest or src.resolve() == dest.resolve():  # already in place (the cheap test first)
        return
    if src.suffix.lower() not in (".jpg", ".jpeg"):
        raise DatasetError(src, f"item {item.item_id!r}: only JPEG images can be copied into {IMAGE_DIR}/")
    if not src.is_file():
        raise DatasetError(src, f"item {item.item_id!r}: image file does not exist")
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dest)


def write_polyvore_dataset(
    root: Path,
    *,
    items: Sequence[Item],
    categories: Mapping[str, tuple[str, str]],
    splits: Mapping[str, Mapping[str, SplitData]],
    item_extra: Mapping[str, Mapping[str, Any]] | None = None,
    copy_images: bool = True,
) -> None:
    """Write a dataset in the Polyvore Outfits layout under `root` (created if needed).

    `categories`: category_id -> (fine-grained name, semantic category), written to categories.csv.
    `splits`: kind ("nondisjoint"/"disjoint") -> split ("train"/"valid"/"test") -> SplitData; a kind
    with a "train" split also gets typespaces.p. `item_extra` adds or overrides metadata fields per
    item id (description, catgeories, related, ...). With `copy_images`, an item whose `image` lies
    elsewhere is copied to images/{item_id}.jpg; images already there are left alone.
    """
    root = Path(root)
    by_id: dict[str, Item] = {}
    for it in items:
        if it.item_id in by_id:
            raise DatasetError(root / METADATA_FILE, f"item id {it.item_id!r} is given twice")
        if not it.category:
            raise DatasetError(root / METADATA_FILE, f"item {it.item_id!r} has no semantic category")
        if it.category_id and it.category_id not in categories:
            message = f"item {it.item_id!r} uses category_id {it.category_id!r}, which `categories` lacks"
            raise DatasetError(root / CATEGORIES_FILE, message)
        by_id[it.item_id] = it
    for kind, by_split in splits.items():
        if kind not in SPLIT_KINDS:
            raise ValueError(f"split kind must be one of {SPLIT_KINDS}, not {kind!r}")
        bad = sorted(set(by_split) - set(SPLITS))
        if bad:
            raise ValueError(f"splits must be among {SPLITS}, not {bad}")

    root.mkdir(parents=True, exist_ok=True)
    buf = io.StringIO(newline="")
    writer = csv.writer(buf)  # default "\r\n" line ends, as in the published categories.csv
    for cid, (name, semantic) in categories.items():
        writer.writerow([cid, name, semantic])
    write_atomic(root / CATEGORIES_FILE, buf.getvalue().encode("utf-8"))
    extra = item_extra or {}
    metadata = {
        i: item_metadata(it, categories.get(it.category_id, ("", ""))[0], extra.get(i)) for i, it in by_id.items()
    }
    write_atomic(root / METADATA_FILE, _json_bytes(metadata))

    category_of = {i: it.category for i, it in by_id.items()}
    for kind, by_split in splits.items():
        base = root / kind
        for name, data in by_split.items():
            _write_split(base, name, data, category_of)
        if "train" in by_split:
            spaces = typespaces(by_split["train"].outfits, category_of)
            write_atomic(base / TYPESPACES_FILE, pickle.dumps(spaces, protocol=4))
    if copy_images:
        for it in by_id.values():
            _copy_image(root, it)
