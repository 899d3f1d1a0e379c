"""Write one complete index version into a staging directory and publish it atomically.

Shared by the full build, incremental add/remove and the benchmarks; it needs vectors, not torch.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from index.columns import COLUMNS_FILE, columns_of, write_columns
from index.errors import IndexBuildError
from index.faiss_ops import (
    DEFAULT_EF_SEARCH,
    DEFAULT_EXACT_THRESHOLD,
    DEFAULT_NPROBE,
    build_index,
    choose_factory,
    write_index,
)
from index.layout import (
    CATEGORY_DIR,
    GLOBAL_INDEX_FILE,
    REJECTS_FILE,
    STORE_FILE,
    VECTORS_FILE,
    new_version_name,
    publish,
    staging_dir,
)
from index.manifest import METRIC, library_versions, write_manifest
from index.store import ItemRecord, write_store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IndexPolicy:
    """How factories are chosen: exact below `exact_threshold` items, else approximate (or `factory`)."""

    exact_threshold: int = DEFAULT_EXACT_THRESHOLD
    factory: str | None = None
    ef_search: int = DEFAULT_EF_SEARCH
    nprobe: int = DEFAULT_NPROBE
    seed: int = 0

    def __post_init__(self) -> None:
        if self.exact_threshold < 0:
            raise ValueError(f"exact_threshold must be >= 0, not {self.exact_threshold}")
        if self.ef_search < 1 or self.nprobe < 1:
            raise ValueError("ef_search and nprobe must be positive")

    def factory_for(self, n: int) -> str:
        """The global index: an explicit factory always wins, else the size rule."""
        return choose_factory(n, exact_threshold=self.exact_threshold, override=self.factory)

    def category_factory_for(self, n: int) -> str:
        """Per-category sub-indexes: small categories stay exact even when a factory is given."""
        return "Flat" if n <= self.exact_threshold else (self.factory or choose_factory(n, exact_threshold=-1))


@dataclass
class VersionContent:
    """Everything one version holds; row r of `vectors` is FAISS id r and store row r."""

    records: list[ItemRecord]
    vectors: np.ndarray
    global_index: faiss.Index
    category_indexes: dict[str, faiss.Index]
    factories: dict[str, str]  # "global" and each category -> factory string
    deleted: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    rejects: list[dict[str, Any]] = field(default_factory=list)


def policy_of(manifest: dict[str, Any]) -> IndexPolicy:
    """The policy an existing version was built with, so updates choose factories the same way."""
    search = manifest.get("search", {})
    return IndexPolicy(
        exact_threshold=int(manifest.get("exact_threshold", DEFAULT_EXACT_THRESHOLD)),
        factory=manifest.get("factory_override"),
        ef_search=int(search.get("ef_search", DEFAULT_EF_SEARCH)),
        nprobe=int(search.get("nprobe", DEFAULT_NPROBE)),
        seed=int(manifest.get("seed", 0)),
    )


def category_rows(records: Sequence[ItemRecord], deleted: np.ndarray) -> dict[str, np.ndarray]:
    dead = set(deleted.tolist())
    rows: dict[str, list[int]] = {}
    for r, rec in enumerate(records):
        if r not in dead:
            rows.setdefault(rec.category, []).append(r)
    return {c: np.asarray(v, dtype=np.int64) for c, v in sorted(rows.items())}


def build_content(
    records: list[ItemRecord], vectors: np.ndarray, policy: IndexPolicy, *, rejects: list[dict[str, Any]] | None = None
) -> VersionContent:
    """Full build: a global index over every row and one sub-index per category (ids = global rows)."""
    if len(records) != len(vectors):
        raise ValueError(f"{len(records)} records but {len(vectors)} vectors")
    ids = [r.item_id for r in records]
    if len(set(ids)) != len(ids):
        raise ValueError("item ids must be unique within an index")
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    t0 = time.perf_counter()
    factories = {"global": policy.factory_for(len(records))}
    global_index = build_index(vectors, factories["global"], seed=policy.seed)
    cats: dict[str, faiss.Index] = {}
    for cat, rows in category_rows(records, np.zeros(0, dtype=np.int64)).items():
        factories[cat] = policy.category_factory_for(len(rows))
        cats[cat] = build_index(vectors[rows], factories[cat], ids=rows, seed=policy.seed)
    log.info("built %s over %d vectors + %d category indexes in %.1fs", factories["global"], len(vectors),
             len(cats), time.perf_counter() - t0)
    return VersionContent(records, vectors, global_index, cats, factories, rejects=list(rejects or []))


def write_version(
    root: Path,
    content: VersionContent,
    *,
    identity: dict[str, Any],
    policy: IndexPolicy,
    operation: str,
    parent: str | None = None,
    build_seconds: float = 0.0,
    keep: int = 3,
) -> Path:
    """Stage every file, checksum it into manifest.json, then publish; returns the version directory.

    `identity` carries model_version, checkpoint_sha256, backend and source (what the vectors came from).
    """
    try:
        columns = columns_of(content.records)
    except ValueError as e:  # an attribute with two types (say, after `index add` of another catalog)
        raise IndexBuildError(str(e)) from e
    root.mkdir(parents=True, exist_ok=True)
    version = new_version_name(root)
    stage = staging_dir(root, version)
    try:
        files = [STORE_FILE, VECTORS_FILE, GLOBAL_INDEX_FILE, REJECTS_FILE, COLUMNS_FILE]
        write_store(stage / STORE_FILE, enumerate(content.records), deleted=content.deleted)
        write_columns(stage / COLUMNS_FILE, columns)
        np.save(stage / VECTORS_FILE, np.ascontiguousarray(content.vectors, dtype=np.float32))
        write_index(content.global_index, stage / GLOBAL_INDEX_FILE)
        (stage / CATEGORY_DIR).mkdir()
        category_files: dict[str, str] = {}
        for n, (cat, idx) in enumerate(sorted(content.category_indexes.items())):
            rel = f"{CATEGORY_DIR}/{n:04d}.faiss"  # category names may hold any character; files are numbered
            write_index(idx, stage / rel)
            category_files[cat] = rel
            files.append(rel)
        with (stage / REJECTS_FILE).open("w", encoding="utf-8") as f:
            for rej in content.rejects:
                f.write(json.dumps(rej, sort_keys=True) + "\n")
        per_category = {c: len(r) for c, r in category_rows(content.records, content.deleted).items()}
        manifest = {
            **identity,
            "version": version,
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "operation": operation,
            "parent": parent,
            "embed_dim": int(content.vectors.shape[1]) if content.vectors.ndim == 2 else 0,
            "metric": METRIC,
            "factory": content.factories["global"],
            "category_factories": {c: f for c, f in content.factories.items() if c != "global"},
            "category_files": category_files,
            "exact_threshold": policy.exact_threshold,
            "factory_override": policy.factory,
            "seed": policy.seed,
            "search": {"ef_search": policy.ef_search, "nprobe": policy.nprobe},
            "count": sum(per_category.values()),
            "rows": len(content.records),
            "tombstones": len(content.deleted),
            "per_category": per_category,
            "attributes": columns.schema,  # name -> number | boolean | string: the filterable fields
            "rejects": len(content.rejects),
            "build_seconds": round(build_seconds, 3),
            "libraries": {**library_versions(), **identity.get("libraries", {})},
        }
        write_manifest(stage, manifest, files)
        final = publish(root, stage, version, keep=keep)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    log.info("published index version %s (%d items) at %s", version, manifest["count"], root)
    return final
