"""Evaluation: embed a split's items with a checkpoint, colour histograms or random vectors, then score
FITB and compatibility AUC with `training.metrics`; write split embeddings as .npz."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from functools import partial
from pathlib import Path

import numpy as np
import torch

from catalog.polyvore import PolyvoreDataset
from embedder.backend import embed_batches, torch_embed_batch
from embedder.files import atomic_path
from embedder.model import Embedder
from embedder.preprocess import normalize_array
from training.data import ImageStore
from training.metrics import evaluate_split, random_baseline

FEATURES: tuple[str, ...] = ("checkpoint", "colorhist", "random")


def data_fingerprint(root: Path | str, kind: str) -> str:
    """sha256 over the split files of one kind (outfits, FITB, compatibility), in a fixed order."""
    base = Path(root) / kind
    h = hashlib.sha256(kind.encode())
    for name in ("train", "valid", "test"):
        for fname in (f"{name}.json", f"fill_in_blank_{name}.json", f"compatibility_{name}.txt"):
            path = base / fname
            h.update(fname.encode())
            h.update(path.read_bytes() if path.is_file() else b"<missing>")
    return h.hexdigest()


def embed_items(
    model: Embedder, store: ImageStore, ids: Sequence[str], *, batch_size: int = 128, device: torch.device | None = None
) -> np.ndarray:
    """(N, d) L2-normalised float32 embeddings of cached images through the torch backend's batch call; the
    model runs in eval mode and gets its mode back."""
    was_training = model.training
    model.eval()
    try:
        batches = (normalize_array(store.batch(ids[s : s + batch_size]), store.cfg)
                   for s in range(0, len(ids), batch_size))
        return embed_batches(partial(torch_embed_batch, model, device=device), batches, model.config.embed_dim)
    finally:
        model.train(was_training)


def colorhist_embeddings(ds: PolyvoreDataset, ids: Sequence[str]) -> np.ndarray:
    from embedder.colorhist import color_histogram_features
    from embedder.image_io import load_image_file

    return color_histogram_features(load_image_file(ds.image_path(i)) for i in ids)


def checkpoint_embeddings(
    checkpoint: Path | str, ds: PolyvoreDataset, ids: Sequence[str], *, batch_size: int = 128
) -> np.ndarray:
    from embedder.checkpoint import load_embedder

    model, card = load_embedder(checkpoint)
    store = ImageStore({i: ds.image_path(i) for i in ids}, card.config.preprocess)
    store.load(ids)
    return embed_items(model, store, ids, batch_size=batch_size)


def evaluate_features(
    *, data: Path | str, kind: str, split: str, features: str, checkpoint: Path | str | None = None, seed: int = 0
) -> dict[str, float]:
    """FITB (both protocols) and AUC of one split with the chosen features."""
    if features not in FEATURES:
        raise ValueError(f"features must be one of {FEATURES}, not {features!r}")
    ds = PolyvoreDataset(data, kind)
    sd = ds.split(split)
    if features == "random":
        return random_baseline(sd, seed=seed)
    ids = sorted(sd.item_ids())
    if features == "colorhist":
        return evaluate_split(sd, ids, colorhist_embeddings(ds, ids))
    if checkpoint is None:
        raise ValueError("--features checkpoint needs --checkpoint")
    return evaluate_split(sd, ids, checkpoint_embeddings(checkpoint, ds, ids))


def write_embeddings(path: Path | str, ids: Sequence[str], emb: np.ndarray) -> Path:
    """Atomically write `ids` (str) and `emb` (float32, one row per id) to an .npz file."""
    path = Path(path)
    if path.suffix != ".npz":
        raise ValueError(f"--out must end in .npz, not {path.name!r}")
    if len(ids) != len(emb):
        raise ValueError(f"{len(ids)} ids but {len(emb)} embedding rows")
    with atomic_path(path) as tmp:
        np.savez(tmp, ids=np.array(list(ids), dtype=str), emb=np.asarray(emb, dtype=np.float32))
    return path


def embed_split(*, checkpoint: Path | str, data: Path | str, kind: str, split: str, out: Path | str) -> Path:
    ds = PolyvoreDataset(data, kind)
    ids = sorted(ds.split(split).item_ids())
    return write_embeddings(out, ids, checkpoint_embeddings(checkpoint, ds, ids))
