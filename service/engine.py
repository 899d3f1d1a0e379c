"""The serving engine: one model + one index + calibration + micro-batcher, swapped as a unit on reload.

Requests take a reference to the current Engine once and use only it, so a reload never mixes the old
model's embeddings with the new index.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
import anyio.to_thread
import numpy as np

from embedder.calibration import UNCALIBRATED, Calibration, calibration_from_card_extra
from service.batcher import MicroBatcher
from service.errors import ServiceError
from service.metrics import ServiceMetrics
from service.schemas import ReadyResponse
from service.timing import stage

if TYPE_CHECKING:
    from embedder.backend import EmbeddingBackend
    from embedder.category_head import CategoryHead
    from embedder.config import PreprocessConfig
    from index import CatalogIndex

log = logging.getLogger(__name__)
T = TypeVar("T")


def _with_search_threads(threads: int, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    import faiss

    # OpenMP thread counts are per calling thread, so set it in the worker that searches. One query per
    # request gains nothing from OpenMP and, on a busy machine, its spinning threads cost ~20 ms a search.
    faiss.omp_set_num_threads(threads)
    return fn(*args, **kwargs)


class EngineLoadError(ServiceError):
    """The configured checkpoint or index cannot be served (missing, corrupt or mismatched)."""

    status = 409
    code = "load_failed"


@dataclass
class Engine:
    backend: EmbeddingBackend
    index: CatalogIndex
    calibration: Calibration
    calibrated: bool
    batcher: MicroBatcher
    index_root: Path
    checkpoint: Path
    search_threads: int = 1
    # Uploaded photos' category (embedder/category_head.py); None: a vote of the nearest catalog items.
    category_head: CategoryHead | None = None
    # Requests' index work running at once (`index_workers`); the rest wait their turn in order.
    index_workers: int = 1
    _limiter: anyio.CapacityLimiter | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def model_version(self) -> str:
        return self.backend.card.model_version

    @property
    def embedding_version(self) -> str:
        """What an upload's cached row depends on: the model, and the category head whose probabilities
        follow the embedding in the row."""
        head = self.category_head
        return self.model_version if head is None else f"{self.model_version}+head-{head.sha256[:12]}"

    @property
    def index_version(self) -> str:
        return self.index.version

    @property
    def preprocess(self) -> PreprocessConfig:
        return self.backend.preprocess

    @property
    def backend_family(self) -> str:
        """fp32 or int8: backends of one family give interchangeable embeddings (embedder.backend_family)."""
        from embedder.backend_family import BACKEND_FAMILY

        return BACKEND_FAMILY.get(self.backend.name, self.backend.name)

    @functools.cached_property
    def index_content_id(self) -> str:
        """A digest of every artifact's sha256: two versions with the same content share it, no others do.

        (The version name is made from the publish second: two roots published in the same second share it.)
        """
        files = json.dumps(self.index.manifest.get("files", {}), sort_keys=True)
        return hashlib.sha256(files.encode()).hexdigest()[:24]

    @property
    def cache_scope(self) -> str:
        """Cached results are valid for one model, backend family and index content only."""
        return f"{self.model_version}:{self.backend_family}:{self.index_content_id}"

    def describe(self, *, cache: str | None = None) -> ReadyResponse:
        return ReadyResponse(
            status="ready",
            model_version=self.model_version,
            index_version=self.index_version,
            items=self.index.count,
            backend=self.backend.name,
            calibrated=self.calibrated,
            cache=cache,
            worker=os.getpid(),
        )

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run index/scoring work on a worker thread, off the event loop, at most `index_workers` at once.

        The work is CPU-bound and holds the GIL between FAISS calls: threads well beyond the cores add no
        throughput, and sixteen of them contending for the GIL finish in lottery order (p99 of id answers at
        concurrency 16 was 3-4x the limited one; docs/SERVICE.md). Waiters are served first come, first served.
        """
        if self._limiter is None:  # made on the event loop, at first use (no await before the assignment)
            self._limiter = anyio.CapacityLimiter(self.index_workers)
        call = functools.partial(_with_search_threads, self.search_threads, fn, *args, **kwargs)
        with stage("index"):
            return await anyio.to_thread.run_sync(call, limiter=self._limiter)

    async def aclose(self) -> None:
        await self.batcher.close()


def _read_manifest(index_root: Path) -> dict[str, Any]:
    from index.layout import resolve_version_dir
    from index.manifest import read_manifest

    return read_manifest(resolve_version_dir(index_root))


def _checkpoint_from_manifest(index_root: Path, manifest: dict[str, Any]) -> Path:
    recorded = manifest.get("checkpoint_path")
    if not recorded:
        raise EngineLoadError(f"{index_root}: the index manifest records no checkpoint path; pass --checkpoint")
    path = Path(str(recorded))
    if not path.is_dir():
        raise EngineLoadError(
            f"the index was built from checkpoint {path}, which does not exist here; pass --checkpoint"
        )
    return path


def packed_embed_fn(backend: EmbeddingBackend) -> Callable[[np.ndarray], np.ndarray]:
    """The batcher's function: (N, d) embeddings, or with a category head (N, d + C) rows of the embedding
    followed by the head's probabilities, both from one forward pass (service.uploads splits them)."""
    if not backend.has_categories:
        return backend.embed_batch

    def embed(batch: np.ndarray) -> np.ndarray:
        emb, probs = backend.embed_with_categories(batch)
        assert probs is not None
        return np.concatenate([emb, probs], axis=1)

    return embed


def load_engine(
    *,
    index_root: Path,
    checkpoint: Path | None,
    backend: str | None,
    batch_max_size: int,
    batch_max_wait_s: float,
    queue_size: int,
    retry_after_s: int,
    metrics: ServiceMetrics | None,
    search_threads: int = 1,
    index_workers: int = 1,
) -> Engine:
    """Blocking load (run it in a thread from async code). Raises EngineLoadError with a clear message."""
    from embedder.backend import TorchBackend, load_backend
    from embedder.category_head import load_category_head
    from embedder.checkpoint import CheckpointError
    from index import IndexArtifactError, open_index

    try:
        manifest = _read_manifest(index_root)
        ckpt = checkpoint if checkpoint is not None else _checkpoint_from_manifest(index_root, manifest)
        # Default to the backend the index was built with: its embeddings are then served unchanged.
        model = load_backend(ckpt, backend=backend or str(manifest.get("backend", "torch")))
        # An int8 backend that failed its parity check on this CPU came back as its fp32 export (with a
        # warning): it still serves the int8 index, whose embeddings approximate exactly that model.
        family = getattr(model, "fallback_from", None) or model.name
        idx = open_index(index_root, expected_model_version=model.card.model_version, backend=family)
        # The torch backend holds the head it runs (or None); an export computes the branch itself, so the
        # engine only needs the head's classes and sha256 (its weights are still checked against the JSON).
        head = (model.category_head if isinstance(model, TorchBackend)
                else load_category_head(ckpt, model_version=model.card.model_version, with_weights=False))
    except (CheckpointError, IndexArtifactError, FileNotFoundError, ValueError) as e:
        if isinstance(e, EngineLoadError):
            raise
        raise EngineLoadError(str(e)) from e
    if idx.dim != model.card.config.embed_dim:
        raise EngineLoadError(f"index dim {idx.dim} != model embed_dim {model.card.config.embed_dim}")
    if (head is not None) != model.has_categories:  # the export checks name the head's sha256; belt and braces
        raise EngineLoadError(f"{ckpt}: the category head and the {model.name} model disagree; re-export it")
    cal = calibration_from_card_extra(model.card.extra)  # fitted by training, stored in the model card
    batcher = MicroBatcher(
        packed_embed_fn(model),
        max_batch=batch_max_size,
        max_wait_s=batch_max_wait_s,
        queue_size=queue_size,
        metrics=metrics,
        retry_after_s=retry_after_s,
    )
    # Warm-up: the first forward pass allocates; do it here rather than in the first user's request.
    size = model.preprocess.image_size
    model.embed_batch(np.zeros((1, 3, size, size), dtype=np.float32))
    log.info("loaded model %s (%s) and index %s (%d items) from %s", model.card.model_version, model.name,
             idx.version, idx.count, index_root)
    return Engine(
        backend=model,
        index=idx,
        calibration=cal or UNCALIBRATED,
        calibrated=cal is not None,
        batcher=batcher,
        index_root=Path(index_root),
        checkpoint=Path(ckpt),
        search_threads=search_threads,
        category_head=head,
        index_workers=index_workers,
    )
