"""Shared fixtures: a small synthetic dataset and a random-init checkpoint, built once per session."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# One OpenMP runtime in the test process. faiss-cpu's wheel bundles its own libgomp and torch ships another;
# FAISS uses torch's only when torch is loaded first. Collection imported faiss (tests/index/conftest.py,
# index.*) before torch, leaving two GNU OpenMP runtimes with two thread pools in one process: the state in
# which the suite segfaulted under load in tests/index/test_cli.py. This conftest is imported before every
# other one, and OMP_NUM_THREADS must be set before libgomp initialises, so both happen here (two threads on
# two cores: torch does not oversubscribe when pytest and a server process both run).
os.environ.setdefault("OMP_NUM_THREADS", "2")
import torch

MANGO_ROOT = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mango-outfits"


@pytest.fixture(scope="session")
def synth_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small synthetic Polyvore-format dataset (both split kinds), generated once."""
    from catalog.synth import generate_synthetic

    root = tmp_path_factory.mktemp("synth") / "data"
    generate_synthetic(root, items=300, outfits=160, seed=7, image_size=64)
    return root


@pytest.fixture(scope="session")
def random_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random-initialised embedder checkpoint at 64 px (enough for index and service tests)."""
    from embedder import EmbedderConfig, PreprocessConfig, build_embedder, save_checkpoint

    torch.manual_seed(0)
    model = build_embedder(EmbedderConfig(embed_dim=32, preprocess=PreprocessConfig(image_size=64)))
    path = tmp_path_factory.mktemp("ckpt") / "random"
    save_checkpoint(model, path, training_config={"preset": "random-init"})
    return path


@pytest.fixture(scope="session")
def mango_root() -> Iterator[Path]:
    """The real-photo set beside the checkout; tests using it skip cleanly when it is absent."""
    root = Path(os.environ.get("MANGO_ROOT", MANGO_ROOT))
    if not (root / "polyvore_item_metadata.json").is_file():
        pytest.skip(f"real-photo dataset not found at {root}")
    yield root


# Test-support modules (image corpus, tiny datasets) live in tests/support. Only that folder goes on
# sys.path: putting tests/ itself there would let tests/catalog shadow the real `catalog` package.
sys.path.insert(0, str(Path(__file__).parent / "support"))
