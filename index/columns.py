"""Columnar copies of price and the typed attributes, one array per field with one entry per row.

Filters are evaluated with numpy over these arrays (a few hundred microseconds at 1M rows) instead of
querying SQLite per request. Stored as `columns.npz` in each index version and listed in the manifest:

    price            float64, NaN where the item has no price
    num:<name>       float64, NaN = missing               (number attributes)
    bool:<name>      int8, 1 / 0, -1 = missing            (boolean attributes)
    str:<name>       int32 code into vocab:<name>, -1 = missing (string attributes)
    vocab:<name>     str, the distinct values of a string attribute, sorted
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from catalog.attributes import BOOLEAN, NUMBER, STRING, schema_of
from embedder.files import write_atomic
from index.errors import IndexArtifactError
from index.layout import COLUMNS_FILE
from index.store import ItemRecord

__all__ = ["COLUMNS_FILE", "ItemColumns", "columns_of", "read_columns", "write_columns"]


@dataclass(frozen=True)
class ItemColumns:
    """Price and attribute columns of every row of one index version (tombstones included)."""

    price: np.ndarray
    schema: dict[str, str]  # attribute name -> "number" | "boolean" | "string"
    values: dict[str, np.ndarray] = field(default_factory=dict)  # name -> column (see the module docstring)
    vocab: dict[str, dict[str, int]] = field(default_factory=dict)  # string attribute -> value -> code

    @property
    def rows(self) -> int:
        return len(self.price)

    def describe(self, live: np.ndarray) -> dict[str, dict[str, object]]:
        """Per attribute, what a filter form needs: its type and, over live rows, the string values
        (with counts) or the number range. `live` is a bool mask of the rows to count."""
        out: dict[str, dict[str, object]] = {}
        for name, kind in self.schema.items():
            col = self.values[name]
            info: dict[str, object] = {"type": kind}
            if kind == STRING:
                codes = col[live & (col >= 0)]
                counts = np.bincount(codes, minlength=len(self.vocab[name]))
                info["values"] = {v: int(counts[c]) for v, c in self.vocab[name].items() if counts[c]}
            elif kind == NUMBER:
                nums = col[live & ~np.isnan(col)]
                info["min"], info["max"] = (float(nums.min()), float(nums.max())) if len(nums) else (None, None)
            else:
                info["true"] = int(np.count_nonzero(col[live] == 1))
                info["false"] = int(np.count_nonzero(col[live] == 0))
            out[name] = info
        return out


def columns_of(records: Sequence[ItemRecord], schema: Mapping[str, str] | None = None) -> ItemColumns:
    """Columns of `records` in row order; the schema is inferred when not given (a mixed type is a ValueError)."""
    if schema is None:
        schema = schema_of((f"item {r.item_id!r}", r.attributes) for r in records)
    n = len(records)
    price = np.array([np.nan if r.price is None else r.price for r in records], dtype=np.float64).reshape(n)
    values: dict[str, np.ndarray] = {}
    vocab: dict[str, dict[str, int]] = {}
    for name, kind in schema.items():
        raw = [r.attributes.get(name) for r in records]
        if kind == NUMBER:
            values[name] = np.array([np.nan if v is None else float(v) for v in raw], dtype=np.float64).reshape(n)
        elif kind == BOOLEAN:
            values[name] = np.array([-1 if v is None else int(bool(v)) for v in raw], dtype=np.int8).reshape(n)
        elif kind == STRING:
            codes = {v: c for c, v in enumerate(sorted({str(v) for v in raw if v is not None}))}
            values[name] = np.array([-1 if v is None else codes[str(v)] for v in raw], dtype=np.int32).reshape(n)
            vocab[name] = codes
        else:
            raise ValueError(f"attribute {name!r} has unknown type {kind!r}")
    return ItemColumns(price, dict(schema), values, vocab)


_PREFIX = {NUMBER: "num", BOOLEAN: "bool", STRING: "str"}


def write_columns(path: Path, columns: ItemColumns) -> None:
    """Write `columns.npz` (the caller writes into a staging directory, checksummed by the manifest)."""
    arrays: dict[str, np.ndarray] = {"price": columns.price}
    for name, kind in columns.schema.items():
        arrays[f"{_PREFIX[kind]}:{name}"] = columns.values[name]
        if kind == STRING:
            arrays[f"vocab:{name}"] = np.array(list(columns.vocab[name]), dtype=np.str_)
    buf = io.BytesIO()
    np.savez(buf, **arrays)  # type: ignore[arg-type]  # numpy's stub types **kwds as allow_pickle
    write_atomic(path, buf.getvalue())


def read_columns(path: Path, schema: Mapping[str, str], rows: int) -> ItemColumns:
    """Load and check `columns.npz` against the manifest's attribute schema and row count."""
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError, zipfile.BadZipFile) as e:
        raise IndexArtifactError(f"{path}: cannot read the attribute columns ({e})") from e
    values: dict[str, np.ndarray] = {}
    vocab: dict[str, dict[str, int]] = {}
    try:
        price = arrays["price"]
        for name, kind in schema.items():
            values[name] = arrays[f"{_PREFIX[kind]}:{name}"]
            if kind == STRING:
                vocab[name] = {str(v): c for c, v in enumerate(arrays[f"vocab:{name}"].tolist())}
    except KeyError as e:
        raise IndexArtifactError(f"{path}: column {e} listed by the manifest is missing; rebuild the index") from e
    if any(len(col) != rows for col in (price, *values.values())):
        raise IndexArtifactError(f"{path}: columns do not have the manifest's {rows} rows; rebuild the index")
    return ItemColumns(price, dict(schema), values, vocab)
