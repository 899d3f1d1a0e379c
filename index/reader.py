"""The service's view of a published index: verified on open, read-only, safe for concurrent searches.

Imports neither torch nor training, so the service can load it without the model stack.
"""

from __future__ import annotations

import numbers
import threading
from collections import OrderedDict
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import faiss
import numpy as np

from index import filtered
from index.columns import COLUMNS_FILE, ItemColumns, columns_of, read_columns
from index.errors import IndexArtifactError
from index.faiss_ops import (
    DEFAULT_EF_SEARCH,
    DEFAULT_NPROBE,
    exclusion_selector,
    index_kind,
    read_index,
    search_params,
)
from index.filtered import FlatView, Int8Sketch, build_sketch, exact_search, flat_view, sketch_search
from index.filters import ItemFilter, check_filter, filter_mask
from index.images import confined_image, image_root_of
from index.layout import GLOBAL_INDEX_FILE, STORE_FILE, VECTORS_FILE, resolve_version_dir
from index.manifest import check_compatible, read_manifest, verify_files
from index.store import ItemRecord, ItemStore

# Up to this many excluded ids are over-fetched and filtered; more go into an ID selector.
SMALL_EXCLUDE = 64
# Allowed sets of this many recent filters are kept per index (a shop repeats a few filters all day).
FILTER_CACHE_SIZE = 32
# Memory for the int8 sketches of large allowed sets (index.filtered), least recently used dropped first; a
# set whose sketch alone exceeds it is searched in float. 64 bytes per allowed item at d = 64.
SKETCH_CACHE_BYTES = 512 * 2**20
K = TypeVar("K")
V = TypeVar("V")


@dataclass(frozen=True)
class Hit:
    """One search result; `score` is the inner product (cosine) of normalised vectors, higher is closer."""

    item_id: str
    category: str
    score: float
    # The item's whole record when the search was asked for it (`records=True`); not part of equality.
    record: ItemRecord | None = field(default=None, compare=False, repr=False)
    # Row of the item's stored vector (`vectors_of_rows`), for callers that re-rank hits (diversity).
    row: int = field(default=-1, compare=False, repr=False)


@dataclass(frozen=True)
class _Exclusion:
    """A request's exclusions resolved once: rows dropped after an over-fetch, or an ID selector."""

    selector: faiss.IDSelector | None
    drop: frozenset[int]


class CatalogIndex:
    """One verified index version. Construct with `open_index`."""

    def __init__(self, version_dir: Path, manifest: dict[str, Any]) -> None:
        self.root = version_dir
        self.manifest = manifest
        self.version = str(manifest["version"])
        self.count = int(manifest["count"])
        self.dim = int(manifest["embed_dim"])
        self.ef_search = int(manifest.get("search", {}).get("ef_search", DEFAULT_EF_SEARCH))
        self.nprobe = int(manifest.get("search", {}).get("nprobe", DEFAULT_NPROBE))
        self._global = read_index(version_dir / GLOBAL_INDEX_FILE)
        self._by_category: dict[str, faiss.Index] = {
            cat: read_index(version_dir / rel) for cat, rel in manifest.get("category_files", {}).items()
        }
        self._store = ItemStore(version_dir / STORE_FILE)
        try:
            # A plain ndarray over the memory map: gathers skip np.memmap's per-result bookkeeping.
            self._vectors: np.ndarray = np.load(version_dir / VECTORS_FILE, mmap_mode="r").view(np.ndarray)
        except (ValueError, OSError) as e:
            raise IndexArtifactError(f"{version_dir / VECTORS_FILE}: cannot read vectors ({e})") from e
        rows = int(manifest["rows"])
        if self._vectors.shape != (rows, self.dim) or self._global.ntotal != rows or self._global.d != self.dim:
            raise IndexArtifactError(
                f"{version_dir}: vectors {self._vectors.shape} / index ({self._global.ntotal}, {self._global.d}) "
                f"do not match the manifest ({rows}, {self.dim}); the version is inconsistent, rebuild it"
            )
        self._tombstones = self._store.deleted_rows()
        self._tombstone_selector = exclusion_selector(self._tombstones)
        self._kinds = {id(ix): index_kind(ix) for ix in (self._global, *self._by_category.values())}
        self._categories = {str(c): int(n) for c, n in manifest["per_category"].items()}
        self.image_root = image_root_of(manifest)
        self._columns = self._load_columns(version_dir, rows)
        self._live = np.ones(rows, dtype=bool)
        self._live[self._tombstones] = False
        self._views: dict[int, FlatView] = {}  # filled on the first filtered search of each index
        self._allowed_cache: OrderedDict[tuple[str, int], np.ndarray] = OrderedDict()
        self._mask_cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._sketches: OrderedDict[tuple[str, int], Int8Sketch] = OrderedDict()
        self._filter_lock = threading.Lock()

    def _load_columns(self, version_dir: Path, rows: int) -> ItemColumns:
        if "attributes" in self.manifest:
            return read_columns(version_dir / COLUMNS_FILE, self.manifest["attributes"], rows)
        # A version written before attributes existed: its prices are in the store.
        return columns_of([rec for _, rec, _ in self._store.iter_all()], schema={})

    @property
    def attributes(self) -> dict[str, str]:
        """Attribute name -> type ("number", "boolean", "string") of this catalog (a copy)."""
        return dict(self._columns.schema)

    def describe_filters(self) -> dict[str, object]:
        """What a filter form needs: the live price range and each attribute's values or range."""
        prices = self._columns.price[self._live & ~np.isnan(self._columns.price)]
        return {
            "price": {"min": float(prices.min()), "max": float(prices.max())} if len(prices) else None,
            "attributes": self._columns.describe(self._live),
        }

    def check_filter(self, flt: ItemFilter) -> None:
        """FilterError naming the known fields when `flt` does not fit this catalog."""
        check_filter(flt, self._columns.schema)

    def categories(self) -> dict[str, int]:
        """category -> number of live items (a copy: callers may change it)."""
        return dict(self._categories)

    def has(self, item_id: str) -> bool:
        return bool(self._store.rows_of([item_id]))

    def get_items(self, ids: Sequence[str]) -> dict[str, ItemRecord]:
        """Records of the known ids; unknown ids are simply absent."""
        return self._store.records(ids)

    def vectors(self, ids: Sequence[str]) -> np.ndarray:
        """(n, d) stored L2-normalised embeddings in the order of `ids`."""
        rows = self._store.rows_of(ids)
        unknown = [i for i in ids if i not in rows]
        if unknown:
            raise KeyError(f"item ids not in index version {self.version}: {unknown[:20]}")
        if not ids:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.asarray(self._vectors[[rows[i] for i in ids]], dtype=np.float32)

    def resolve(self, ids: Sequence[str]) -> dict[str, tuple[int, str]]:
        """id -> (row, category) for the live ids among `ids` (one metadata query); unknown ids are absent."""
        return self._store.live_rows(ids)

    def vectors_of_rows(self, rows: Sequence[int]) -> np.ndarray:
        """(n, d) stored embeddings of rows (from `resolve`), in order."""
        return np.asarray(self._vectors[list(rows)], dtype=np.float32).reshape(len(rows), self.dim)

    def image_path(self, item_id: str) -> Path | None:
        """The real path of a live item's image under the index's image root; None for an unknown item, one
        without an image, or one whose path (or a symlink on it) leads outside the root."""
        rec = self._store.records([item_id]).get(item_id)
        return confined_image(self.image_root, rec.image_path) if rec is not None and rec.image_path else None

    def search(
        self, queries: np.ndarray, *, k: int, category: str | None = None, exclude: Collection[str] = (),
        filters: ItemFilter | None = None,
    ) -> list[list[Hit]]:
        """Per query, up to k hits best first; tombstoned and `exclude`d items never appear.

        With `filters`, only items they allow, found by exact search (see index.filtered).
        """
        q = self._check_queries(queries)
        k = _check_k(k)
        index = self._global if category is None else self._category_index(category)
        if filters is not None and not filters.empty:
            self.check_filter(filters)
            rows = self._filtered_rows(index, q, k=k, flt=filters, exclude=self._excluded_rows(exclude))
        else:
            rows = self._search_rows(index, q, k=k, exclusion=self._exclusion(exclude))
        return self.hits_of_rows(rows)

    def search_categories(
        self, query: np.ndarray, categories: Sequence[str], *, k: int, exclude: Collection[str] = (),
        records: bool = False, filters: ItemFilter | None = None,
    ) -> dict[str, list[Hit]]:
        """Up to k hits per category for one (d,) query, best first; one metadata look-up for all of them.

        The same hits as `search(query[None], k=k, category=c, exclude=exclude)[0]` for each c, without
        paying for id resolution once per category (the complementary-items request path). With `records`,
        each hit carries its whole ItemRecord, from the same single query. `filters` as in `search`.
        """
        rows = self.search_category_rows(query, categories, k=k, exclude=exclude, filters=filters)
        return dict(zip(rows, self.hits_of_rows(list(rows.values()), records=records), strict=True))

    def search_category_rows(
        self, query: np.ndarray, categories: Sequence[str], *, k: int, exclude: Collection[str] = (),
        filters: ItemFilter | None = None,
    ) -> dict[str, list[tuple[float, int]]]:
        """`search_categories` as (score, row) pairs, with no metadata look-up: for callers that re-rank a
        pool and then resolve only the rows they keep (`hits_of_rows`)."""
        q = self._check_queries(np.asarray(query).reshape(1, -1))
        k = _check_k(k)
        indexes = [self._category_index(c) for c in categories]  # every name checked before any search
        if filters is not None and not filters.empty:
            self.check_filter(filters)
            excluded = self._excluded_rows(exclude)
            per_cat = [self._filtered_rows(index, q, k=k, flt=filters, exclude=excluded)[0] for index in indexes]
        else:
            exclusion = self._exclusion(exclude)
            per_cat = [self._search_rows(index, q, k=k, exclusion=exclusion)[0] for index in indexes]
        return dict(zip(categories, per_cat, strict=True))

    def _category_index(self, category: str) -> faiss.Index:
        try:
            return self._by_category[category]
        except KeyError:
            raise KeyError(f"unknown category {category!r}; this index has {sorted(self._by_category)}") from None

    def _exclusion(self, exclude: Collection[str]) -> _Exclusion:
        excluded = self._store.rows_of(list(exclude)) if exclude else {}
        if len(excluded) > SMALL_EXCLUDE:
            rows = np.union1d(self._tombstones, np.fromiter(excluded.values(), dtype=np.int64))
            return _Exclusion(exclusion_selector(rows), frozenset())
        # A few exclusions (the query item itself, the rest of an outfit): fetch that many more and drop
        # them; cheaper than an ID selector inside an HNSW walk, and exact for Flat.
        return _Exclusion(self._tombstone_selector, frozenset(excluded.values()))

    def _excluded_rows(self, exclude: Collection[str]) -> np.ndarray:
        rows = self._store.rows_of(list(exclude)) if exclude else {}
        return np.fromiter(rows.values(), dtype=np.int64, count=len(rows))

    def _mask(self, flt: ItemFilter) -> np.ndarray:
        """Bool mask over rows of the live items `flt` allows, evaluated once per filter (cached)."""
        with self._filter_lock:
            mask = _cache_get(self._mask_cache, flt.key)
        if mask is None:
            mask = filter_mask(flt, self._columns) & self._live
            with self._filter_lock:
                _cache_put(self._mask_cache, flt.key, mask, FILTER_CACHE_SIZE)
        return mask

    def _allowed(self, index: faiss.Index, flt: ItemFilter) -> tuple[FlatView, np.ndarray]:
        """The index's flat view and the internal ids of its items that `flt` allows (cached per filter)."""
        key = (flt.key, id(index))
        with self._filter_lock:
            view = self._views.get(id(index))
            if view is None:
                view = self._views[id(index)] = flat_view(index)
            positions = _cache_get(self._allowed_cache, key)
        if positions is None:
            positions = np.flatnonzero(self._mask(flt)[view.members])
            with self._filter_lock:
                _cache_put(self._allowed_cache, key, positions, FILTER_CACHE_SIZE * (1 + len(self._by_category)))
        return view, positions

    def matching(self, ids: Sequence[str], flt: ItemFilter) -> set[str]:
        """The live ids among `ids` that `flt` allows."""
        self.check_filter(flt)
        rows = self._store.rows_of(ids)
        mask = self._mask(flt)
        return {i for i, r in rows.items() if mask[r]}

    def _filtered_rows(
        self, index: faiss.Index, q: np.ndarray, *, k: int, flt: ItemFilter, exclude: np.ndarray
    ) -> list[list[tuple[float, int]]]:
        view, positions = self._allowed(index, flt)
        sketch = self._sketch(index, flt, view, positions)
        if sketch is not None:
            return [sketch_search(qi, sketch, view, self._vectors, k, exclude) for qi in q]
        if len(exclude):
            positions = positions[~np.isin(view.members[positions], exclude)]
        return exact_search(q, view, positions, k, self._vectors)

    def _sketch(self, index: faiss.Index, flt: ItemFilter, view: FlatView, positions: np.ndarray) -> Int8Sketch | None:
        """The int8 sketch of a large allowed set (built on the filter's first use, then cached), else None."""
        if len(positions) < filtered.SKETCH_MIN_ALLOWED or len(positions) * (self.dim + 8) > SKETCH_CACHE_BYTES:
            return None
        key = (flt.key, id(index))
        with self._filter_lock:
            sketch = _cache_get(self._sketches, key)
        if sketch is not None:
            return sketch
        sketch = build_sketch(view, positions, self._vectors)
        with self._filter_lock:
            self._sketches[key] = sketch
            while sum(s.nbytes for s in self._sketches.values()) > SKETCH_CACHE_BYTES:
                self._sketches.popitem(last=False)
        return sketch

    def _search_rows(
        self, index: faiss.Index, q: np.ndarray, *, k: int, exclusion: _Exclusion
    ) -> list[list[tuple[float, int]]]:
        """Per query, up to k (score, row) pairs best first, tombstones and exclusions removed."""
        drop = exclusion.drop
        fetch = k + len(drop)
        params = search_params(index, k=fetch, selector=exclusion.selector, ef_search=self.ef_search,
                               nprobe=self.nprobe, kind=self._kinds[id(index)])
        scores, labels = index.search(q, fetch, params=params)
        return [
            [(float(s), int(r)) for s, r in zip(srow, lrow, strict=True) if r >= 0 and int(r) not in drop][:k]
            for srow, lrow in zip(scores, labels, strict=True)
        ]

    def hits_of_rows(self, rows: Sequence[Sequence[tuple[float, int]]], *, records: bool = False) -> list[list[Hit]]:
        """Groups of (score, row) as Hits, resolved in one metadata query; with `records`, each carries its
        whole ItemRecord."""
        flat = [r for row in rows for _, r in row]
        if records:
            recs = self._store.records_of_rows(flat)
            return [[Hit(recs[r].item_id, recs[r].category, score, recs[r], r) for score, r in row] for row in rows]
        labels = self._store.labels_of_rows(flat)
        return [[Hit(*labels[r], score, row=r) for score, r in row] for row in rows]

    def _check_queries(self, queries: np.ndarray) -> np.ndarray:
        q = np.asarray(queries)
        if q.ndim != 2 or q.shape[1] != self.dim:
            raise ValueError(f"queries must have shape (n, {self.dim}), not {q.shape}")
        if not np.issubdtype(q.dtype, np.floating) or not np.isfinite(q).all():
            raise ValueError("queries must be finite floating-point vectors")
        q = np.array(q, dtype=np.float32, order="C")  # a copy: normalising must not touch the caller's array
        faiss.normalize_L2(q)
        return q

    def close(self) -> None:
        self._store.close()


def _cache_get(cache: OrderedDict[K, V], key: K) -> V | None:
    value = cache.get(key)
    if value is not None:
        cache.move_to_end(key)
    return value


def _cache_put(cache: OrderedDict[K, np.ndarray], key: K, value: np.ndarray, size: int) -> None:
    cache[key] = value
    cache.move_to_end(key)
    while len(cache) > size:
        cache.popitem(last=False)


def _check_k(k: int) -> int:
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 1:
        raise ValueError(f"k must be a positive integer, not {k!r}")
    return int(k)


def open_index(
    root: Path | str, *, expected_model_version: str | None = None, backend: str | None = None
) -> CatalogIndex:
    """Open the published index at `root` (or a version directory), verifying manifest and checksums.

    Raises IndexArtifactError when files are missing or corrupt, or when the index was built by another
    model (`expected_model_version`) or with embeddings of an incompatible backend family.
    """
    version_dir = resolve_version_dir(Path(root))
    manifest = read_manifest(version_dir)
    check_compatible(manifest, expected_model_version=expected_model_version, backend=backend, where=version_dir)
    verify_files(version_dir, manifest)
    return CatalogIndex(version_dir, manifest)
