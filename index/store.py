"""Item metadata in SQLite: the service looks items up by id or row without loading the catalog.

Row numbers are the FAISS ids and the row of `vectors.npy`. Removed items stay as tombstones
(`deleted = 1`) so rows never move within a version; a compaction renumbers them in a new version.
A catalog's typed attributes (`in_stock`, `brand`, ...) are one JSON object per row; filters do not
query them here but read the columnar copy in `columns.npz` (index.columns).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from catalog.types import AttrValue

SCHEMA = """
CREATE TABLE items (
    row INTEGER PRIMARY KEY,
    item_id TEXT NOT NULL,
    category TEXT NOT NULL,
    title TEXT NOT NULL DEFAULT '',
    image_path TEXT,
    price REAL,
    url TEXT NOT NULL DEFAULT '',
    deleted INTEGER NOT NULL DEFAULT 0,
    attributes TEXT  -- JSON object of typed attributes; NULL when the item has none
);
CREATE INDEX items_category ON items (category, deleted);
-- A replaced item keeps its old row as a tombstone, so ids are unique among live rows only.
CREATE UNIQUE INDEX items_live_id ON items (item_id) WHERE deleted = 0;
CREATE INDEX items_id ON items (item_id);
"""
# SQLite's limit on bound parameters is 32766 in modern builds; stay well below it.
_CHUNK = 900


@dataclass(frozen=True)
class ItemRecord:
    """What the service shows for an item; `image_path` is as the catalog gave it (may be None)."""

    item_id: str
    category: str
    title: str
    image_path: str | None
    price: float | None
    url: str
    # Typed catalog attributes (catalog.attributes); hash=False keeps the record hashable.
    attributes: Mapping[str, AttrValue] = field(default_factory=dict, hash=False)


def _attrs_json(attrs: Mapping[str, AttrValue]) -> str | None:
    return json.dumps(dict(attrs), sort_keys=True, separators=(",", ":")) if attrs else None


def _attrs_of(text: str | None) -> dict[str, AttrValue]:
    return dict(json.loads(text)) if text else {}


def _record(item_id: str, cat: str, title: str, image: str | None, price: float | None, url: str,
            attrs: str | None) -> ItemRecord:
    return ItemRecord(item_id, cat, title, image, None if price is None else float(price), url, _attrs_of(attrs))


def write_store(path: Path, rows: Iterable[tuple[int, ItemRecord]], *, deleted: Iterable[int] = ()) -> None:
    """Create a fresh store at `path` (the caller writes into a staging directory)."""
    conn = sqlite3.connect(path)
    try:
        conn.executescript(SCHEMA)
        dead = {int(r) for r in deleted}
        conn.executemany(
            "INSERT INTO items (row, item_id, category, title, image_path, price, url, deleted, attributes) "
            "VALUES (?,?,?,?,?,?,?,?,?)",
            ((r, it.item_id, it.category, it.title, it.image_path, it.price, it.url, int(r in dead),
              _attrs_json(it.attributes)) for r, it in rows),
        )
        conn.commit()
    finally:
        conn.close()


def _chunks(seq: Sequence[str], n: int = _CHUNK) -> Iterable[Sequence[str]]:
    for s in range(0, len(seq), n):
        yield seq[s : s + n]


class ItemStore:
    """Read-only access to a published store, safe to share between threads.

    One connection, opened here: `immutable=1` (a published version never changes) lets SQLite skip
    locking, and an open connection keeps reading after pruning deletes the version's directory, which
    a connection opened later (say, per new thread) could not. Queries are short; a lock serialises them.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db: sqlite3.Connection | None = sqlite3.connect(
            f"file:{path}?mode=ro&immutable=1", uri=True, check_same_thread=False
        )
        self._lock = threading.Lock()
        # Stores written before attributes existed lack the column; they read as items without attributes.
        names = {str(r[1]) for r in self._query("PRAGMA table_info(items)")}
        self._attrs = "attributes" if "attributes" in names else "NULL"

    def _query(self, sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            if self._db is None:
                raise RuntimeError(f"{self.path}: the item store is closed")
            return self._db.execute(sql, tuple(params)).fetchall()

    def rows_of(self, ids: Sequence[str], *, include_deleted: bool = False) -> dict[str, int]:
        out: dict[str, int] = {}
        live = "" if include_deleted else " AND deleted = 0"
        for part in _chunks(list(dict.fromkeys(ids))):
            q = f"SELECT item_id, row FROM items WHERE item_id IN ({','.join('?' * len(part))}){live}"
            out.update((str(i), int(r)) for i, r in self._query(q, part))
        return out

    def live_rows(self, ids: Sequence[str]) -> dict[str, tuple[int, str]]:
        """id -> (row, category) of the live ids among `ids`, in one query per 900 ids."""
        out: dict[str, tuple[int, str]] = {}
        for part in _chunks(list(dict.fromkeys(ids))):
            marks = ",".join("?" * len(part))
            q = f"SELECT item_id, row, category FROM items WHERE item_id IN ({marks}) AND deleted = 0"
            out.update((str(i), (int(r), str(c))) for i, r, c in self._query(q, part))
        return out

    def records_of_rows(self, rows: Sequence[int]) -> dict[int, ItemRecord]:
        """row -> record, in one query per 900 rows (search hits resolve through this)."""
        out: dict[int, ItemRecord] = {}
        uniq = list(dict.fromkeys(int(r) for r in rows))
        for s in range(0, len(uniq), _CHUNK):
            part = uniq[s : s + _CHUNK]
            q = (f"SELECT row, item_id, category, title, image_path, price, url, {self._attrs} FROM items "
                 f"WHERE row IN ({','.join('?' * len(part))})")
            for row, *fields in self._query(q, part):
                out[int(row)] = _record(*fields)
        return out

    def labels_of_rows(self, rows: Sequence[int]) -> dict[int, tuple[str, str]]:
        """row -> (item_id, category), in one query per 900 rows (search hits resolve through this)."""
        out: dict[int, tuple[str, str]] = {}
        uniq = list(dict.fromkeys(int(r) for r in rows))
        for s in range(0, len(uniq), _CHUNK):
            part = uniq[s : s + _CHUNK]
            q = f"SELECT row, item_id, category FROM items WHERE row IN ({','.join('?' * len(part))})"
            out.update((int(r), (str(i), str(c))) for r, i, c in self._query(q, part))
        return out

    def records(self, ids: Sequence[str]) -> dict[str, ItemRecord]:
        out: dict[str, ItemRecord] = {}
        for part in _chunks(list(dict.fromkeys(ids))):
            q = (
                f"SELECT item_id, category, title, image_path, price, url, {self._attrs} FROM items "
                f"WHERE deleted = 0 AND item_id IN ({','.join('?' * len(part))})"
            )
            for fields in self._query(q, part):
                out[fields[0]] = _record(*fields)
        return out

    def category_counts(self) -> dict[str, int]:
        q = "SELECT category, COUNT(*) FROM items WHERE deleted = 0 GROUP BY category ORDER BY category"
        return {str(c): int(n) for c, n in self._query(q)}

    def deleted_rows(self) -> np.ndarray:
        rows = [r for (r,) in self._query("SELECT row FROM items WHERE deleted = 1 ORDER BY row")]
        return np.asarray(rows, dtype=np.int64)

    def iter_all(self) -> Iterable[tuple[int, ItemRecord, bool]]:
        """Every row in order, tombstones included (for incremental updates)."""
        q = (f"SELECT row, deleted, item_id, category, title, image_path, price, url, {self._attrs} FROM items "
             "ORDER BY row")
        for row, deleted, *fields in self._query(q):
            yield int(row), _record(*fields), bool(deleted)

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None
