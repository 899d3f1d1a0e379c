"""Fixtures for index tests: published indexes built straight from seeded vectors (no model needed)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from index.store import ItemRecord
from index.synthetic import synthetic_records, synthetic_vectors
from index.writer import IndexPolicy, build_content, write_version

# Helpers beside this file (index_helpers) are imported by name, as tests/conftest.py does for its own.
sys.path.insert(0, str(Path(__file__).parent))

from index_helpers import Publish

IDENTITY = {"model_version": "abcdef0123456789", "checkpoint_sha256": "ab" * 32, "backend": "torch"}


@pytest.fixture(autouse=True)
def single_threaded_math() -> Iterator[None]:
    """Index tests embed and search tiny batches; on a busy 2-core machine two OpenMP threads spin-wait
    on each other (7x slower here), so torch and FAISS run single-threaded here and are restored after."""
    import faiss
    import torch

    before = torch.get_num_threads(), faiss.omp_get_max_threads()
    torch.set_num_threads(1)
    faiss.omp_set_num_threads(1)
    yield
    torch.set_num_threads(before[0])
    faiss.omp_set_num_threads(before[1])


@pytest.fixture
def publish_synthetic(tmp_path: Path) -> Publish:
    """Build and publish an index of n seeded vectors; returns (root, records, vectors)."""

    def make(
        n: int = 600, dim: int = 16, *, policy: IndexPolicy | None = None, seed: int = 0, root: Path | None = None
    ) -> tuple[Path, list[ItemRecord], np.ndarray]:
        policy = policy or IndexPolicy()
        records = synthetic_records(n, seed=seed, categories=("tops", "bottoms", "shoes", "bags"))
        vectors = synthetic_vectors(n, dim, clusters=12, seed=seed)
        root = root or tmp_path / "index"
        content = build_content(records, vectors, policy)
        write_version(root, content, identity=IDENTITY, policy=policy, operation="build")
        return root, records, vectors

    return make
