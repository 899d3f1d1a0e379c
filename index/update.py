"""`index add` / `index remove`: a new version from the published one, without re-embedding the catalog.

Adds append rows (FAISS `add` on the loaded indexes); an id that is already indexed is replaced
(its old row becomes a tombstone). Removals mark rows as tombstones, which searches skip through an
ID selector. When tombstones pass `compact_fraction` of the rows, or the catalog grows past the exact
threshold, the version is rebuilt from the stored vectors (still no re-embedding).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from embedder.backend import load_backend
from index.build import embed_and_merge
from index.embed_job import EmbedJobConfig
from index.errors import IndexBuildError
from index.faiss_ops import build_index, read_index
from index.layout import GLOBAL_INDEX_FILE, STORE_FILE, VECTORS_FILE, WORK_DIR
from index.manifest import check_compatible
from index.reader import open_index
from index.sources import load_source
from index.store import ItemRecord, ItemStore
from index.writer import IndexPolicy, VersionContent, build_content, category_rows, policy_of, write_version

log = logging.getLogger(__name__)

DEFAULT_COMPACT_FRACTION = 0.2
IDENTITY_KEYS = (
    "model_version", "checkpoint_sha256", "checkpoint_path", "backend", "preprocess", "source", "libraries",
    "category_cooccurrence",
    "image_root",
)


@dataclass(frozen=True)
class UpdateResult:
    version_dir: Path
    operation: str  # "add", "remove" or "compact" (rebuilt from stored vectors)
    added: int
    replaced: int
    removed: int
    rejects: int
    count: int


def load_content(version_dir: Path, manifest: dict[str, Any]) -> VersionContent:
    """Everything of a published version in memory, ready to be extended."""
    store = ItemStore(version_dir / STORE_FILE)
    try:
        rows = list(store.iter_all())
    finally:
        store.close()
    return VersionContent(
        records=[rec for _, rec, _ in rows],
        vectors=np.load(version_dir / VECTORS_FILE),
        global_index=read_index(version_dir / GLOBAL_INDEX_FILE),
        category_indexes={c: read_index(version_dir / rel) for c, rel in manifest["category_files"].items()},
        factories={"global": manifest["factory"], **manifest["category_factories"]},
        deleted=np.asarray([r for r, _, dead in rows if dead], dtype=np.int64),
    )


def live_rows(content: VersionContent, ids: Sequence[str]) -> dict[str, int]:
    dead = set(content.deleted.tolist())
    wanted = set(ids)
    return {r.item_id: n for n, r in enumerate(content.records) if n not in dead and r.item_id in wanted}


def _compact(content: VersionContent, policy: IndexPolicy) -> VersionContent:
    live = np.setdiff1d(np.arange(len(content.records)), content.deleted)
    records = [content.records[r] for r in live]
    return build_content(records, content.vectors[live], policy, rejects=content.rejects)


def _needs_compaction(content: VersionContent, policy: IndexPolicy, compact_fraction: float) -> bool:
    live = len(content.records) - len(content.deleted)
    too_many_dead = len(content.deleted) > compact_fraction * max(len(content.records), 1)
    return too_many_dead or policy.factory_for(live) != content.factories["global"]


def _append(content: VersionContent, records: list[ItemRecord], vectors: np.ndarray, policy: IndexPolicy) -> None:
    """Add rows to the loaded indexes in place; a category that changes size class gets a fresh sub-index."""
    start = len(content.records)
    content.records.extend(records)
    content.vectors = np.concatenate([content.vectors, vectors.astype(np.float32)])
    content.global_index.add(np.ascontiguousarray(vectors, dtype=np.float32))
    all_rows = category_rows(content.records, content.deleted)
    new_rows = np.arange(start, start + len(records), dtype=np.int64)
    for cat in sorted({r.category for r in records}):
        rows = all_rows[cat]
        factory = policy.category_factory_for(len(rows))
        if cat in content.category_indexes and content.factories.get(cat) == factory:
            mine = new_rows[[records[i].category == cat for i in range(len(records))]]
            content.category_indexes[cat].add_with_ids(content.vectors[mine], mine)
        else:
            content.category_indexes[cat] = build_index(content.vectors[rows], factory, ids=rows, seed=policy.seed)
            content.factories[cat] = factory


def _drop_empty_categories(content: VersionContent) -> None:
    live = category_rows(content.records, content.deleted)
    for cat in [c for c in content.category_indexes if c not in live]:
        del content.category_indexes[cat]
        content.factories.pop(cat, None)


def add_to_index(
    *,
    index_root: Path,
    checkpoint: Path,
    catalog: Path,
    backend: str | None = None,
    device: str = "cpu",
    job: EmbedJobConfig | None = None,
    compact_fraction: float = DEFAULT_COMPACT_FRACTION,
    keep: int = 3,
) -> UpdateResult:
    """Embed the items of `catalog` and publish a version with them added (or replaced)."""
    t0 = time.perf_counter()
    current = open_index(index_root)
    manifest = current.manifest
    model = load_backend(checkpoint, backend=backend or str(manifest["backend"]), device=device)
    check_compatible(manifest, expected_model_version=model.card.model_version, backend=model.name,
                     where=current.root)
    source = load_source(catalog)
    # New items' images are stored relative to the index's image root; any outside it is never served.
    done = embed_and_merge(source.items, model, index_root / WORK_DIR, job=job or EmbedJobConfig(),
                           fingerprint=source.fingerprint, image_root=current.image_root)
    assert done is not None  # single process: rank 0 always merges
    policy = policy_of(manifest)
    content = load_content(current.root, manifest)
    content.rejects = list(done.rejects)
    old_rows = live_rows(content, [r.item_id for r in done.records])
    content.deleted = np.union1d(content.deleted, np.fromiter(old_rows.values(), dtype=np.int64))
    if done.records:
        _append(content, done.records, done.vectors, policy)
    _drop_empty_categories(content)
    operation = "add"
    if _needs_compaction(content, policy, compact_fraction):
        content, operation = _compact(content, policy), "compact"
    identity = {k: manifest[k] for k in IDENTITY_KEYS if k in manifest}
    identity["update"] = {"operation": "add", "source": source.describe(), "added": len(done.records),
                          "replaced": len(old_rows)}
    vdir = write_version(index_root, content, identity=identity, policy=policy, operation=operation,
                         parent=current.version, build_seconds=time.perf_counter() - t0, keep=keep)
    current.close()
    return UpdateResult(vdir, operation, len(done.records), len(old_rows), 0, len(done.rejects),
                        len(content.records) - len(content.deleted))


def remove_from_index(
    *, index_root: Path, item_ids: Sequence[str], compact_fraction: float = DEFAULT_COMPACT_FRACTION, keep: int = 3
) -> UpdateResult:
    """Publish a version without `item_ids` (tombstones, or a compaction once there are many)."""
    t0 = time.perf_counter()
    if not item_ids:
        raise IndexBuildError("no item ids to remove")
    current = open_index(index_root)
    manifest = current.manifest
    policy = policy_of(manifest)
    content = load_content(current.root, manifest)
    rows = live_rows(content, item_ids)
    unknown = [i for i in item_ids if i not in rows]
    if unknown:
        raise IndexBuildError(f"item ids not in index version {current.version}: {unknown[:20]}")
    content.deleted = np.union1d(content.deleted, np.fromiter(rows.values(), dtype=np.int64))
    _drop_empty_categories(content)
    operation = "remove"
    if _needs_compaction(content, policy, compact_fraction):
        content, operation = _compact(content, policy), "compact"
    identity = {k: manifest[k] for k in IDENTITY_KEYS if k in manifest}
    identity["update"] = {"operation": "remove", "removed": len(rows)}
    vdir = write_version(index_root, content, identity=identity, policy=policy, operation=operation,
                         parent=current.version, build_seconds=time.perf_counter() - t0, keep=keep)
    current.close()
    return UpdateResult(vdir, operation, 0, 0, len(rows), 0, len(content.records) - len(content.deleted))


