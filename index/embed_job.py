"""The embedding phase of the build job: a DataLoader decodes in workers, the model runs in inference mode.

Work is cut into fixed chunks of the (sorted) catalog; each finished chunk is written atomically to the
work directory, so a crashed or interrupted job resumes at the first missing chunk. Under torchrun each
rank embeds the chunks `c % world_size == rank` of the same work directory.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from catalog.types import Item
from embedder.backend import EmbeddingBackend
from embedder.config import PreprocessConfig
from embedder.files import atomic_path, write_atomic
from embedder.image_io import ImageDecodeError, ImageLimits, load_image_file
from embedder.preprocess import to_model_input
from index.errors import IndexBuildError

log = logging.getLogger(__name__)

JOB_FILE = "job.json"


@dataclass(frozen=True)
class EmbedJobConfig:
    batch_size: int = 64
    num_workers: int = 2
    chunk_size: int = 2048
    progress: bool = True

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.chunk_size < 1 or self.num_workers < 0:
            raise ValueError("batch_size and chunk_size must be >= 1 and num_workers >= 0")


@dataclass(frozen=True)
class EmbedStats:
    embedded: int  # images run through the model in this call
    reused_chunks: int  # chunks found complete from an earlier (interrupted) run
    written_chunks: int
    seconds: float

    @property
    def items_per_second(self) -> float:
        return self.embedded / self.seconds if self.seconds > 0 else 0.0


Sample = tuple[int, np.ndarray | None, str, str]  # (position, image array or None, reject code, message)


class CatalogImages(Dataset[Sample]):
    """Decodes and preprocesses one catalog image per index; failures become reject samples, not exceptions."""

    def __init__(self, items: Sequence[Item], cfg: PreprocessConfig, limits: ImageLimits | None = None) -> None:
        self.items = items
        self.cfg = cfg
        self.limits = limits or ImageLimits()

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> Sample:
        item = self.items[i]
        if item.image is None:
            return i, None, "missing_image", "the catalog gives no image for this item"
        try:
            img = load_image_file(item.image, self.limits)
        except ImageDecodeError as e:
            return i, None, e.code, str(e)
        return i, to_model_input(img, self.cfg), "", ""


Batch = tuple[list[int], torch.Tensor | None, list[tuple[int, str, str]]]


def collate(samples: list[Sample]) -> Batch:
    """Stack the good images (a tensor crosses process boundaries through shared memory) and list rejects."""
    good = [(i, x) for i, x, _, _ in samples if x is not None]
    rejects = [(i, code, msg) for i, x, code, msg in samples if x is None]
    stacked = torch.from_numpy(np.stack([x for _, x in good])) if good else None
    return [i for i, _ in good], stacked, rejects


def chunk_path(work_dir: Path, c: int) -> Path:
    return work_dir / f"chunk-{c:06d}.npz"


def prepare_work_dir(work_dir: Path, job: dict[str, Any]) -> None:
    """Create the work directory, or check that an existing one belongs to exactly this job."""
    work_dir.mkdir(parents=True, exist_ok=True)
    path = work_dir / JOB_FILE
    if path.is_file():
        existing = json.loads(path.read_text(encoding="utf-8"))
        if existing != job:
            raise IndexBuildError(
                f"{work_dir} holds chunks of a different job ({existing} != {job}); delete it to start over"
            )
        return
    write_atomic(path, json.dumps(job, sort_keys=True))


def _write_chunk(path: Path, positions: list[int], vectors: list[np.ndarray], rejects: list[dict[str, str]],
                 dim: int) -> None:
    order = np.argsort(positions, kind="stable")
    vec = np.concatenate(vectors)[order] if vectors else np.zeros((0, dim), np.float32)
    with atomic_path(path) as tmp:
        np.savez(tmp, positions=np.asarray(positions, np.int64)[order], vectors=vec.astype(np.float32),
                 rejects=np.asarray(json.dumps(rejects)))


def read_chunk(path: Path) -> tuple[np.ndarray, np.ndarray, list[dict[str, str]]]:
    with np.load(path) as z:
        return z["positions"], z["vectors"], json.loads(str(z["rejects"]))


def _batches(chunks: Sequence[int], n: int, chunk_size: int, batch_size: int) -> Iterator[list[int]]:
    """Batches never straddle chunks, so a chunk is complete exactly when its last batch arrives."""
    for c in chunks:
        lo, hi = c * chunk_size, min((c + 1) * chunk_size, n)
        for s in range(lo, hi, batch_size):
            yield list(range(s, min(s + batch_size, hi)))


def embed_catalog(
    items: Sequence[Item],
    backend: EmbeddingBackend,
    work_dir: Path,
    *,
    config: EmbedJobConfig,
    shard: tuple[int, int] = (0, 1),
    on_chunk: Callable[[int], None] | None = None,
) -> EmbedStats:
    """Embed every chunk of this shard that the work directory does not already hold."""
    from tqdm import tqdm

    rank, world = shard
    n_chunks = (len(items) + config.chunk_size - 1) // config.chunk_size
    mine = [c for c in range(n_chunks) if c % world == rank]
    todo = [c for c in mine if not chunk_path(work_dir, c).is_file()]
    t0 = time.perf_counter()
    if not todo:
        return EmbedStats(0, len(mine), 0, 0.0)
    dataset = CatalogImages(items, backend.preprocess)
    batch_sampler = list(_batches(todo, len(items), config.chunk_size, config.batch_size))
    loader: DataLoader[Sample] = DataLoader(
        dataset,
        batch_sampler=batch_sampler,
        num_workers=config.num_workers,
        collate_fn=collate,
        prefetch_factor=4 if config.num_workers else None,
        persistent_workers=False,
    )
    total = sum(min((c + 1) * config.chunk_size, len(items)) - c * config.chunk_size for c in todo)
    dim = backend.card.config.embed_dim
    pending = iter(todo)
    current = next(pending)
    pos: list[int] = []
    vecs: list[np.ndarray] = []
    rejects: list[dict[str, str]] = []
    embedded = written = 0
    bar = tqdm(total=total, unit="item", unit_scale=True, desc=f"embed[{rank}/{world}]", disable=not config.progress)
    with torch.inference_mode(), bar:
        for positions, images, bad in loader:
            if images is not None:
                vecs.append(backend.embed_batch(images.numpy()))
                pos.extend(positions)
                embedded += len(positions)
            for i, code, msg in bad:
                rejects.append({"item_id": items[i].item_id, "image": str(items[i].image), "code": code,
                                "message": msg})
            bar.update(len(positions) + len(bad))
            last = min((current + 1) * config.chunk_size, len(items)) - 1
            if _last_position(positions, bad) == last:  # the chunk's final batch (batches arrive in order)
                _write_chunk(chunk_path(work_dir, current), pos, vecs, rejects, dim)
                written += 1
                if on_chunk is not None:
                    on_chunk(current)
                pos, vecs, rejects = [], [], []
                current = next(pending, -1)
    return EmbedStats(embedded, len(mine) - len(todo), written, time.perf_counter() - t0)


def _last_position(positions: list[int], bad: list[tuple[int, str, str]]) -> int:
    return max([*positions, *(i for i, _, _ in bad)], default=-1)


def collect_chunks(
    work_dir: Path, n_items: int, chunk_size: int
) -> tuple[np.ndarray, np.ndarray, list[dict[str, str]]]:
    """All chunks in order -> (positions of embedded items, their vectors, rejects); every chunk must exist."""
    n_chunks = (n_items + chunk_size - 1) // chunk_size
    missing = [c for c in range(n_chunks) if not chunk_path(work_dir, c).is_file()]
    if missing:
        raise IndexBuildError(f"{work_dir}: chunks {missing[:10]} are missing; rerun the build to finish them")
    parts = [read_chunk(chunk_path(work_dir, c)) for c in range(n_chunks)]
    positions = np.concatenate([p for p, _, _ in parts]) if parts else np.zeros(0, np.int64)
    vectors = np.concatenate([v for _, v, _ in parts]) if parts else np.zeros((0, 0), np.float32)
    rejects = [r for _, _, rej in parts for r in rej]
    return positions, vectors, rejects
