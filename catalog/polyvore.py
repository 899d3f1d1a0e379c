"""Reader for the Polyvore Outfits on-disk layout (Vasileva et al., ECCV 2018).

Layout (both split kinds share the item metadata and images):
    polyvore_item_metadata.json, categories.csv, images/{item_id}.jpg,
    {kind}/{split}.json, {kind}/compatibility_{split}.txt, {kind}/fill_in_blank_{split}.json
Tokens in the compatibility and FITB files are `{set_id}_{index}` and resolve through the split's outfits.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from catalog.errors import DatasetError
from catalog.types import CompatibilityExample, FITBQuestion, Item, Outfit, SplitData

SPLIT_KINDS: tuple[str, ...] = ("nondisjoint", "disjoint")
SPLITS: tuple[str, ...] = ("train", "valid", "test")
METADATA_FILE = "polyvore_item_metadata.json"
CATEGORIES_FILE = "categories.csv"
IMAGE_DIR = "images"


def _load_json(path: Path) -> Any:
    if not path.is_file():
        raise DatasetError(path, "file is missing")
    try:
        with path.open(encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise DatasetError(path, f"malformed JSON at line {e.lineno} column {e.colno}: {e.msg}") from e


def _report(problems: list[str] | None, path: Path, message: str) -> None:
    """Raise at once (strict reading) or collect the problem (validation)."""
    if problems is None:
        raise DatasetError(path, message)
    problems.append(f"{path}: {message}")


def read_categories(root: Path) -> dict[str, tuple[str, str]]:
    """category_id -> (fine-grained name, semantic category)."""
    path = root / CATEGORIES_FILE
    if not path.is_file():
        raise DatasetError(path, "file is missing")
    out: dict[str, tuple[str, str]] = {}
    with path.open(encoding="utf-8", newline="") as f:
        for lineno, row in enumerate(csv.reader(f), start=1):
            if not row:
                continue
            if len(row) < 3:
                raise DatasetError(path, f"line {lineno}: expected 'category_id,name,semantic_category'")
            out[row[0].strip()] = (row[1].strip(), row[2].strip())
    return out


def read_items(root: Path) -> dict[str, Item]:
    """item_id -> Item, from polyvore_item_metadata.json; image paths point into images/."""
    path = root / METADATA_FILE
    raw = _load_json(path)
    if not isinstance(raw, dict):
        raise DatasetError(path, "expected a JSON object mapping item_id to metadata")
    items: dict[str, Item] = {}
    image_dir = root / IMAGE_DIR
    for item_id, meta in raw.items():
        if not isinstance(meta, dict) or not meta.get("semantic_category"):
            raise DatasetError(path, f"item {item_id!r} has no semantic_category")
        title = str(meta.get("title") or meta.get("url_name") or "")
        items[str(item_id)] = Item(
            item_id=str(item_id),
            category=str(meta["semantic_category"]),
            category_id=str(meta.get("category_id", "")),
            title=title,
            image=image_dir / f"{item_id}.jpg",
        )
    return items


def parse_outfits(path: Path, raw: Any, items: dict[str, Item], problems: list[str] | None) -> list[Outfit]:
    if not isinstance(raw, list):
        raise DatasetError(path, "expected a JSON list of outfits")
    outfits: list[Outfit] = []
    for n, entry in enumerate(raw):
        try:
            set_id = str(entry["set_id"])
            pairs = [(str(it["item_id"]), int(it["index"])) for it in entry["items"]]
        except (KeyError, TypeError, ValueError):
            _report(problems, path, f"outfit #{n} is not {{'set_id', 'items': [{{'item_id', 'index'}}]}}")
            continue
        unknown = [i for i, _ in pairs if i not in items]
        if unknown:
            _report(problems, path, f"outfit {set_id} names unknown item ids {unknown}")
            continue
        outfits.append(Outfit(set_id, tuple(i for i, _ in pairs), tuple(k for _, k in pairs)))
    return outfits


def token_table(outfits: Iterable[Outfit]) -> dict[str, str]:
    """`{set_id}_{index}` -> item_id for every item of the given outfits."""
    return {f"{o.set_id}_{k}": i for o in outfits for i, k in zip(o.item_ids, o.indices, strict=True)}


def _set_of(token: str) -> str:
    return token.rsplit("_", 1)[0]


def parse_fitb(path: Path, raw: Any, tokens: dict[str, str], problems: list[str] | None) -> list[FITBQuestion]:
    if not isinstance(raw, list):
        raise DatasetError(path, "expected a JSON list of questions")
    out: list[FITBQuestion] = []
    for n, q in enumerate(raw):
        try:
            question = [str(t) for t in q["question"]]
            answers = [str(t) for t in q["answers"]]
            blank = int(q.get("blank_position", 0))
        except (KeyError, TypeError, ValueError):
            _report(problems, path, f"question #{n} lacks 'question'/'answers' lists")
            continue
        unknown = [t for t in question + answers if t not in tokens]
        if unknown:
            _report(problems, path, f"question #{n} has unknown tokens {unknown}")
            continue
        set_id = _set_of(question[0]) if question else ""
        # The right answer is the one taken from the question's own outfit (reference-code convention).
        correct = [k for k, t in enumerate(answers) if _set_of(t) == set_id]
        if len(correct) != 1:
            _report(problems, path, f"question #{n}: expected exactly one answer from set {set_id}")
            continue
        out.append(
            FITBQuestion(
                set_id=set_id,
                question=tuple(tokens[t] for t in question),
                answers=tuple(tokens[t] for t in answers),
                correct=correct[0],
                blank_position=blank,
            )
        )
    return out


def parse_compatibility(
    path: Path, lines: Iterable[str], tokens: dict[str, str], problems: list[str] | None
) -> list[CompatibilityExample]:
    out: list[CompatibilityExample] = []
    for lineno, line in enumerate(lines, start=1):
        parts = line.split()
        if not parts:
            continue
        if parts[0] not in ("0", "1") or len(parts) < 2:
            _report(problems, path, f"line {lineno}: expected '1|0 token token ...'")
            continue
        unknown = [t for t in parts[1:] if t not in tokens]
        if unknown:
            _report(problems, path, f"line {lineno}: unknown tokens {unknown}")
            continue
        out.append(CompatibilityExample(int(parts[0]), tuple(tokens[t] for t in parts[1:])))
    return out


class PolyvoreDataset:
    """One Polyvore-format dataset root, read for one split kind (nondisjoint or disjoint)."""

    def __init__(self, root: Path | str, kind: str = "nondisjoint") -> None:
        self.root = Path(root)
        if kind not in SPLIT_KINDS:
            raise ValueError(f"split kind must be one of {SPLIT_KINDS}, not {kind!r}")
        if not self.root.is_dir():
            raise DatasetError(self.root, "dataset directory does not exist")
        self.kind = kind
        self.categories = read_categories(self.root)
        self.items = read_items(self.root)
        self._splits: dict[str, SplitData] = {}

    def image_path(self, item_id: str) -> Path:
        return self.root / IMAGE_DIR / f"{item_id}.jpg"

    def split(self, name: str, problems: list[str] | None = None) -> SplitData:
        """Read one split. Strict (raises DatasetError) unless a `problems` list collects issues."""
        if name not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, not {name!r}")
        if problems is None and name in self._splits:
            return self._splits[name]
        base = self.root / self.kind
        outfits_path = base / f"{name}.json"
        outfits = parse_outfits(outfits_path, _load_json(outfits_path), self.items, problems)
        tokens = token_table(outfits)
        fitb_path = base / f"fill_in_blank_{name}.json"
        fitb = parse_fitb(fitb_path, _load_json(fitb_path), tokens, problems)
        compat_path = base / f"compatibility_{name}.txt"
        if not compat_path.is_file():
            raise DatasetError(compat_path, "file is missing")
        compat = parse_compatibility(
            compat_path, compat_path.read_text(encoding="utf-8").splitlines(), tokens, problems
        )
        data = SplitData(kind=self.kind, name=name, outfits=outfits, fitb=fitb, compatibility=compat)
        if problems is None:
            self._splits[name] = data
        return data

    def outfit_item_ids(self, splits: Iterable[str] = SPLITS) -> set[str]:
        return {i for s in splits for o in self.split(s).outfits for i in o.item_ids}

    def unlabeled_item_ids(self, labeled_splits: Iterable[str] = ("train",)) -> list[str]:
        """Items in no outfit of `labeled_splits`: their photos are the unlabeled pool (no outfit label)."""
        used = self.outfit_item_ids(labeled_splits)
        return sorted(i for i in self.items if i not in used)
