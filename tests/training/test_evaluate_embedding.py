"""Training's evaluation embeds through the same preprocessing and batch call as the index and the service."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from catalog.polyvore import PolyvoreDataset
from embedder.backend import embed_pil, load_backend
from embedder.image_io import load_image_file
from training.data import ImageStore
from training.evaluate import embed_items


def test_evaluation_embeddings_equal_the_torch_backend_bit_for_bit(random_checkpoint: Path, synth_root: Path) -> None:
    ds = PolyvoreDataset(synth_root, "nondisjoint")
    ids = sorted(ds.split("valid").item_ids())[:20]
    backend = load_backend(random_checkpoint, backend="torch")
    reference = embed_pil(backend, [load_image_file(ds.image_path(i)) for i in ids], batch_size=8)
    model = backend.model.train()  # evaluation must run in eval mode (BatchNorm) and give the mode back
    store = ImageStore({i: ds.image_path(i) for i in ids}, backend.preprocess)
    store.load(ids)
    np.testing.assert_array_equal(embed_items(model, store, ids, batch_size=8), reference)
    assert model.training
    assert embed_items(model, store, [], batch_size=8).shape == (0, 32)
