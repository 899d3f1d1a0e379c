"""The generic catalog format for a shop's own products.

Items: CSV with a header, or JSONL, with `item_id, image, category` and optional `title, price, url`.
`image` is a path relative to the catalog file (or absolute). Every other column is kept as a typed
attribute (`catalog.attributes`: number, boolean or string), e.g. `in_stock`, `gender`, `brand`.
Outfits: JSONL, one JSON list of item ids per line (or an object with an `items` list).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from catalog.attributes import check_name, csv_column_type, json_value, json_value_type, parse_csv_cell
from catalog.errors import DatasetError
from catalog.types import AttrValue, Item, Outfit

REQUIRED = ("item_id", "image", "category")
OPTIONAL = ("title", "price", "url")


def _item_from_row(path: Path, where: str, row: dict[str, Any], attributes: dict[str, AttrValue]) -> Item:
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
        attributes=attributes,
    )


def _csv_rows(path: Path) -> list[tuple[int, Item]]:
    with path.open(encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        header = reader.fieldnames
        if header is None or not set(REQUIRED) <= set(header):
            raise DatasetError(path, f"CSV header must contain {list(REQUIRED)}")
        if repeated := sorted({h for h in header if header.count(h) > 1}):
            raise DatasetError(path, f"line 1: repeated column names {repeated}")
        extra = [h for h in header if h not in REQUIRED + OPTIONAL]
        for name in extra:
            if (problem := check_name(name)) is not None:
                raise DatasetError(path, f"line 1: {problem}")
        rows: list[tuple[int, dict[str, Any]]] = []
        for row in reader:
            if None in row:  # more cells than header columns
                raise DatasetError(path, f"line {reader.line_num}: more values than the header has columns")
            rows.append((reader.line_num, row))
    types = {name: csv_column_type(str(r.get(name) or "") for _, r in rows) for name in extra}
    out = []
    for n, row in rows:
        attrs = {name: v for name in extra if (v := parse_csv_cell(str(row.get(name) or ""), types[name])) is not None}
        out.append((n, _item_from_row(path, f"line {n}", row, attrs)))
    return out


def _jsonl_attributes(
    path: Path, n: int, row: dict[str, Any], first: dict[str, tuple[str, int]]
) -> dict[str, AttrValue]:
    """Typed extra fields of one JSONL object; `first` remembers each name's type and first line."""
    attrs: dict[str, AttrValue] = {}
    for name, raw in row.items():
        if name in REQUIRED or name in OPTIONAL:
            continue
        if (problem := check_name(name)) is not None:
            raise DatasetError(path, f"line {n}: {problem}")
        try:
            kind = json_value_type(raw)
        except ValueError as e:
            raise DatasetError(path, f"line {n}: attribute {name!r} {e}") from e
        if kind is None:
            continue
        seen_kind, seen_line = first.setdefault(name, (kind, n))
        if seen_kind != kind:
            raise DatasetError(
                path, f"line {n}: attribute {name!r} is a {kind} here but a {seen_kind} on line {seen_line}"
            )
        value = json_value(raw)
        assert value is not None  # kind is not None
        attrs[name] = value
    return attrs


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


def read_catalog_rows(path: Path | str) -> list[tuple[int, Item]]:
    """(line number, item) of a .csv or .jsonl catalog; duplicate ids and missing fields are errors."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(path, "catalog file is missing")
    rows: list[tuple[int, Item]] = []
    if path.suffix.lower() == ".csv":
        rows = _csv_rows(path)
    elif path.suffix.lower() in (".jsonl", ".ndjson"):
        first: dict[str, tuple[str, int]] = {}
        for n, row in _jsonl_rows(path):
            if not isinstance(row, dict):
                raise DatasetError(path, f"line {n}: expected a JSON object")
            rows.append((n, _item_from_row(path, f"line {n}", row, _jsonl_attributes(path, n, row, first))))
    else:
        raise DatasetError(path, "catalog must be .csv or .jsonl")
    seen: dict[str, int] = {}
    for n, it in rows:
        if (where := seen.setdefault(it.item_id, n)) != n:
            raise DatasetError(path, f"line {n}: duplicate item_id {it.item_id!r} (first on line {where})")
    return rows


def read_catalog(path: Path | str) -> list[Item]:
    """Read a .csv or .jsonl product catalog; duplicate ids and missing fields are errors."""
    return [it for _, it in read_catalog_rows(path)]


def read_outfit_rows(path: Path | str, known_ids: set[str] | None = None) -> list[tuple[int, Outfit]]:
    """(line number, outfit) per line: a JSON list of item ids, or {"set_id", "items": [...]}."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(path, "outfits file is missing")
    outfits: list[tuple[int, Outfit]] = []
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
        outfits.append((n, Outfit(set_id, ids, tuple(range(1, len(ids) + 1)))))
    return outfits


def read_outfits_jsonl(path: Path | str, known_ids: set[str] | None = None) -> list[Outfit]:
    """Read outfits, one JSON list of item ids (or {"set_id", "items"}) per line."""
    return [o for _, o in read_outfit_rows(path, known_ids)]


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
            row.update(it.attributes)
            f.write(json.dumps(row) + "\n")
