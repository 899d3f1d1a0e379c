"""FAISS in plain functions: choose a factory string, build, search with selectors, read and write.

Metric: inner product on L2-normalised embeddings (= cosine). For unit vectors
||a - b||^2 = 2 - 2 a.b, so this ranks exactly like the Euclidean distance the model is trained with.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from index.errors import IndexArtifactError

log = logging.getLogger(__name__)

# Exact search is fast enough below this many vectors (~1 ms per query at d=64) and needs no tuning.
DEFAULT_EXACT_THRESHOLD = 50_000
# HNSW needs no training and supports incremental adds. efSearch 256 keeps recall@10 >= 0.95 up to 1M
# vectors on a deliberately hard synthetic set (0.989 at 100k, 0.956 at 1M; 128 gives only 0.934 at 1M)
# for ~1 ms per query (benchmarks/bench_index_search.py, docs/INDEX.md).
DEFAULT_APPROX_FACTORY = "HNSW32"
DEFAULT_EF_SEARCH = 256
DEFAULT_EF_CONSTRUCTION = 80
DEFAULT_NPROBE = 16


def choose_factory(n: int, *, exact_threshold: int = DEFAULT_EXACT_THRESHOLD, override: str | None = None) -> str:
    """`Flat` for small catalogs, the approximate factory above the threshold; an override always wins."""
    if override:
        return override
    return "Flat" if n <= exact_threshold else DEFAULT_APPROX_FACTORY


def _innermost(index: faiss.Index) -> faiss.Index:
    index = faiss.downcast_index(index)
    while isinstance(index, faiss.IndexIDMap | faiss.IndexIDMap2 | faiss.IndexPreTransform):
        index = faiss.downcast_index(index.index)
    return index


def new_index(dim: int, factory: str) -> faiss.Index:
    try:
        index = faiss.index_factory(dim, factory, faiss.METRIC_INNER_PRODUCT)
    except RuntimeError as e:
        raise ValueError(f"FAISS factory string {factory!r} is not valid for dim {dim}: {e}") from e
    inner = _innermost(index)
    if isinstance(inner, faiss.IndexHNSW):
        inner.hnsw.efConstruction = DEFAULT_EF_CONSTRUCTION
    return index


def _gpu_available() -> bool:
    return hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0


def build_index(
    vectors: np.ndarray, factory: str, *, ids: np.ndarray | None = None, seed: int = 0, max_train: int = 200_000
) -> faiss.Index:
    """Train (if the factory needs it, on a seeded sample) and fill an index; ids wrap it in IndexIDMap."""
    x = np.ascontiguousarray(vectors, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError(f"vectors must be 2-D, got shape {x.shape}")
    index = new_index(x.shape[1], factory)
    if ids is not None:
        index = faiss.IndexIDMap(index)
    if not index.is_trained:
        if len(x) == 0:
            raise ValueError(f"factory {factory!r} needs training vectors; the catalog is empty")
        rng = np.random.default_rng(seed)
        sample = x if len(x) <= max_train else x[np.sort(rng.choice(len(x), max_train, replace=False))]
        _train_ivf_on_gpu_if_present(index)
        try:
            index.train(sample)
        except RuntimeError as e:
            raise ValueError(
                f"cannot train FAISS {factory!r} on {len(sample)} vectors ({str(e).splitlines()[0][-160:]}); "
                "use a smaller factory or raise --exact-threshold so small sets are searched exactly"
            ) from e
    if len(x):
        if ids is not None:
            index.add_with_ids(x, np.ascontiguousarray(ids, dtype=np.int64))
        else:
            index.add(x)
    return index


def _train_ivf_on_gpu_if_present(index: faiss.Index) -> None:
    """IVF k-means is the costly build step; with faiss-gpu and a CUDA device it runs on the GPU(s).

    Guarded: faiss-cpu has no GPU symbols and get_num_gpus() is 0 here, so CPU training is unchanged.
    HNSW (the default) has no GPU build in FAISS; the trained index is always saved as a CPU index.
    """
    inner = _innermost(index)
    if _gpu_available() and isinstance(inner, faiss.IndexIVF):
        log.info("training the IVF quantiser on %d GPU(s)", faiss.get_num_gpus())
        inner.clustering_index = faiss.index_cpu_to_all_gpus(faiss.IndexFlatIP(inner.d))


def index_kind(index: faiss.Index) -> str:
    """"hnsw", "ivf" or "other": which search parameters apply (readers compute it once per index)."""
    inner = _innermost(index)
    return "hnsw" if isinstance(inner, faiss.IndexHNSW) else "ivf" if isinstance(inner, faiss.IndexIVF) else "other"


def search_params(
    index: faiss.Index,
    *,
    k: int,
    selector: faiss.IDSelector | None,
    ef_search: int = DEFAULT_EF_SEARCH,
    nprobe: int = DEFAULT_NPROBE,
    kind: str | None = None,
) -> faiss.SearchParameters | None:
    """Per-call parameters (never mutate the shared index: the service searches from many threads).

    `kind` is `index_kind(index)` when the caller has it already (unwrapping costs more than a Flat search
    of a small category).
    """
    kind = kind or index_kind(index)
    params: Any
    if kind == "hnsw":
        params = faiss.SearchParametersHNSW()  # type: ignore[attr-defined]  # absent from faiss's generated stub
        params.efSearch = max(ef_search, k)
    elif kind == "ivf":
        params = faiss.SearchParametersIVF()
        params.nprobe = nprobe
    elif selector is None:
        return None
    else:
        params = faiss.SearchParameters()
    if selector is not None:
        params.sel = selector
    return params


def exclusion_selector(rows: np.ndarray) -> faiss.IDSelector | None:
    """A selector that rejects the given ids (tombstones and caller exclusions), or None."""
    if len(rows) == 0:
        return None
    batch = faiss.IDSelectorBatch(np.ascontiguousarray(rows, dtype=np.int64))
    sel = faiss.IDSelectorNot(batch)
    sel.referenced = batch  # type: ignore[attr-defined]  # keep the inner selector alive with the outer
    return sel


def write_index(index: faiss.Index, path: Path) -> None:
    faiss.write_index(index, str(path))


def read_index(path: Path) -> faiss.Index:
    try:
        return faiss.read_index(str(path))
    except RuntimeError as e:
        raise IndexArtifactError(f"{path}: FAISS cannot read this index file ({str(e).splitlines()[0]})") from e


def memory_bytes(index: faiss.Index) -> int:
    """Serialized size: a close proxy for the resident size of Flat, HNSW and IVF indexes."""
    return int(faiss.serialize_index(index).nbytes)
