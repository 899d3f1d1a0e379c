"""`index build`: catalog -> embeddings (resumable chunks, optionally sharded) -> FAISS -> published version."""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from catalog.types import Item
from embedder.backend import EmbeddingBackend, load_backend
from index.cooccurrence import MANIFEST_KEY, dataset_cooccurrence
from index.distributed import ShardGroup
from index.embed_job import EmbedJobConfig, EmbedStats, collect_chunks, embed_catalog, prepare_work_dir
from index.errors import IndexBuildError
from index.layout import WORK_DIR
from index.sources import CatalogSource, load_source, record_of
from index.store import ItemRecord
from index.writer import IndexPolicy, build_content, write_version

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BuildResult:
    version_dir: Path | None  # None on torchrun ranks other than 0 (rank 0 publishes)
    count: int
    rejects: int
    stats: EmbedStats
    seconds: float


@dataclass(frozen=True)
class Embedded:
    records: list[ItemRecord]
    vectors: np.ndarray
    rejects: list[dict[str, str]]
    stats: EmbedStats


def identity_of(
    backend: EmbeddingBackend, checkpoint: Path, source: CatalogSource, *, outfits: Path | None = None
) -> dict[str, Any]:
    """Manifest fields tying the index to the exact model, backend and catalog it was built from, and the
    category co-occurrence of the training outfits: those of `outfits` (a Polyvore-layout dataset, e.g.
    `data import`'s output for a CSV catalog), else the catalog's own when it is one."""
    import torch

    card = backend.card
    root = outfits if outfits is not None else source.path if source.kind == "polyvore" else None
    cooc = dataset_cooccurrence(root, {it.item_id: it.category for it in source.items}) if root else None
    return {
        **({MANIFEST_KEY: cooc} if cooc else {}),
        "model_version": card.model_version,
        "checkpoint_sha256": card.weights_sha256,
        "checkpoint_path": str(Path(checkpoint).resolve()),
        "backend": backend.name,
        "preprocess": card.config.preprocess.to_dict(),
        "source": source.describe(),
        "image_root": str(source.image_root),
        "libraries": {"torch": torch.__version__},
    }


def embed_and_merge(
    items: Sequence[Item],
    backend: EmbeddingBackend,
    work_root: Path,
    *,
    job: EmbedJobConfig,
    fingerprint: str,
    dist: ShardGroup | None = None,
    on_chunk: Callable[[int], None] | None = None,
    image_root: Path | None = None,
) -> Embedded | None:
    """Embed a catalog's items (resuming from `work_root`; each rank its shard) and merge the shards into
    records + vectors on rank 0; returns None on the other ranks after their shard."""
    key = {
        "model": backend.card.weights_sha256,
        "backend": backend.name,
        "catalog": fingerprint,
        "items": len(items),
        "chunk_size": job.chunk_size,
    }
    work_dir = work_root / hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    dist = dist or ShardGroup.single()
    if dist.rank == 0:
        prepare_work_dir(work_dir, key)
    dist.barrier()
    stats = embed_catalog(items, backend, work_dir, config=job, shard=(dist.rank, dist.world), on_chunk=on_chunk)
    log.info("rank %d: embedded %d items (%.1f items/s), reused %d chunks", dist.rank, stats.embedded,
             stats.items_per_second, stats.reused_chunks)
    dist.barrier()  # every shard's chunks are on disk before rank 0 merges them
    if dist.rank != 0:
        return None
    positions, vectors, rejects = collect_chunks(work_dir, len(items), job.chunk_size)
    records = [record_of(items[int(p)], image_root) for p in positions]
    return Embedded(records, vectors, rejects, stats)


def build_catalog_index(
    *,
    checkpoint: Path,
    catalog: Path,
    out: Path,
    backend: str = "torch",
    device: str = "cpu",
    policy: IndexPolicy | None = None,
    job: EmbedJobConfig | None = None,
    keep: int = 3,
    dist: ShardGroup | None = None,
    on_chunk: Callable[[int], None] | None = None,
    outfits: Path | None = None,
) -> BuildResult:
    """Build and publish a new index version of `catalog` under `out` (see docs/INDEX.md)."""
    t0 = time.perf_counter()
    policy = policy or IndexPolicy()
    job = job or EmbedJobConfig()
    source = load_source(catalog)
    model = load_backend(checkpoint, backend=backend, device=device)
    out.mkdir(parents=True, exist_ok=True)
    done = embed_and_merge(
        source.items, model, out / WORK_DIR, job=job, fingerprint=source.fingerprint, dist=dist, on_chunk=on_chunk,
        image_root=source.image_root,
    )
    if done is None:
        return BuildResult(None, 0, 0, EmbedStats(0, 0, 0, 0.0), time.perf_counter() - t0)
    if not done.records:
        raise IndexBuildError(f"{catalog}: none of the {len(source.items)} images could be read; see the rejects")
    if done.rejects:
        log.warning("%d of %d items rejected (unreadable or missing images); listed in rejects.jsonl",
                    len(done.rejects), len(source.items))
    content = build_content(done.records, done.vectors, policy, rejects=done.rejects)
    version_dir = write_version(
        out,
        content,
        identity=identity_of(model, checkpoint, source, outfits=outfits),
        policy=policy,
        operation="build",
        build_seconds=time.perf_counter() - t0,
        keep=keep,
    )
    shutil.rmtree(out / WORK_DIR, ignore_errors=True)  # published: the resume state is no longer needed
    return BuildResult(version_dir, len(done.records), len(done.rejects), done.stats, time.perf_counter() - t0)
