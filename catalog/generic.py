"""The generic catalog format for a shop's own products.

Items: CSV with a header, or JSONL, with `item_id, image, category` and optional `title, price, url`.
`image` is a path relative to the catalog file (or absolute). Outfits: JSONL, one JSON list of item ids
per line (or an object with an `items` list).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from catalog.errors import DatasetError
from catalog.types import Item, Outfit

REQUIRED = ("item_id", "image", "category")


def _item_from_row(path: Path, where: str, row: dict[str, Any]) -> Item:
    missing = [k for k in REQUIRED if not str(row.get(k) or "").strip()]
    if missing:
        raise DatasetError(path, f"{where}: missing required field(s) {missing}")
    price_raw = row.get("price")
    price: float | None = None
    if price_raw not in (None, ""):
        try:
            price = float(price_raw)
        except (TypeError, ValueError) as e:
            raise DatasetError(path, f"{where}: price {price_raw!r} is not a number") from e
    image = Path(str(row["image"]))
    if not image.is_absolute():
        image = path.parent / image
    return Item(
        item_id=str(row["item_id"]).strip(),
        category=str(row["category"]).strip(),
        title=str(row.get("title") or ""),
        image=image,
        price=price,
        url=str(row.get("url") or ""),
    )


def _jsonl_rows(path: Path) -> Iterator[tuple[int, Any]]:
    """(line number, parsed JSON) for every non-blank line; malformed JSON names the line."""
    with path.open(encoding="utf-8") as f:
        for n, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                yield n, json.loads(line)
            except json.JSONDecodeError as e:
                raise DatasetError(path, f"line {n}: malformed JSON: {e.msg}") from e


def read_catalog(path: Path | str) -> list[Item]:
    """Read a .csv or .jsonl product catalog; duplicate ids and missing fields are errors."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(path, "catalog file is missing")
    items: list[Item] = []
    if path.suffix.lower() == ".csv":
        with path.open(encoding="utf-8", newline="") as f:
            reader = csv.DictReader(f)
            if reader.fieldnames is None or not set(REQUIRED) <= set(reader.fieldnames):
                raise DatasetError(path, f"CSV header must contain {list(REQUIRED)}")
            items = [_item_from_row(path, f"line {n}", row) for n, row in enumerate(reader, start=2)]
    elif path.suffix.lower() in (".jsonl", ".ndjson"):
        for n, row in _jsonl_rows(path):
            if not isinstance(row, dict):
                raise DatasetError(path, f"line {n}: expected a JSON object")
            items.append(_item_from_row(path, f"line {n}", row))
    else:
        raise DatasetError(path, "catalog must be .csv or .jsonl")
    seen: set[str] = set()
    for it in items:
        if it.item_id in seen:
            raise DatasetError(path, f"duplicate item_id {it.item_id!r}")
        seen.add(it.item_id)
    return items


def read_outfits_jsonl(path: Path | str, known_ids: set[str] | None = None) -> list[Outfit]:
    """Read outfits, one JSON list of item ids (or {"set_id", "items"}) per line."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(path, "outfits file is missing")
    outfits: list[Outfit] = []
    for n, row in _jsonl_rows(path):
        set_id = str(n)
        if isinstance(row, dict):
            set_id = str(row.get("set_id", n))
            row = row.get("items")
        if not isinstance(row, list) or not row:
            raise DatasetError(path, f"line {n}: expected a non-empty list of item ids")
        ids = tuple(str(i) for i in row)
        if known_ids is not None and (unknown := [i for i in ids if i not in known_ids]):
            raise DatasetError(path, f"line {n}: unknown item ids {unknown}")
        outfits.append(Outfit(set_id, ids, tuple(range(1, len(ids) + 1))))
    return outfits


def write_catalog_jsonl(path: Path | str, items: list[Item]) -> None:
    """Write items in the generic JSONL format (image paths relative to the file where possible)."""
    path = Path(path)
    with path.open("w", encoding="utf-8") as f:
        for it in items:
            image = it.image
            if image is not None:
                try:
                    image = image.resolve().relative_to(path.parent.resolve())
                except ValueError:
                    image = image.resolve()
            row: dict[str, Any] = {"item_id": it.item_id, "image": str(image), "category": it.category}
            if it.title:
                row["title"] = it.title
            if it.price is not None:
                row["price"] = it.price
            if it.url:
                row["url"] = it.url
            f.write(json.dumps(row) + "\n")
