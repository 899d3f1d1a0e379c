"""Inference backends behind one interface, chosen by setting (`torch`, later `onnx`, `onnx-int8`).

The index job and the service embed through `load_backend`, and the index manifest records the backend
name so an index is only served by a compatible backend.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from PIL import Image

from embedder.checkpoint import ModelCard, load_embedder
from embedder.config import PreprocessConfig
from embedder.model import Embedder
from embedder.preprocess import preprocess_batch

BACKENDS: tuple[str, ...] = ("torch",)


class EmbeddingBackend(Protocol):
    """Embeds preprocessed batches; returns L2-normalised float32 embeddings."""

    name: str
    card: ModelCard

    @property
    def preprocess(self) -> PreprocessConfig: ...

    def embed_batch(self, batch: np.ndarray) -> np.ndarray:
        """(N, 3, S, S) float32 preprocessed images -> (N, d) normalised float32 embeddings."""
        ...


class TorchBackend:
    """Plain PyTorch eager inference (the reference every faster backend is compared with)."""

    name = "torch"

    def __init__(self, model: Embedder, card: ModelCard, *, device: str = "cpu") -> None:
        self.model = model.to(device).eval()
        self.card = card
        self.device = torch.device(device)

    @property
    def preprocess(self) -> PreprocessConfig:
        return self.card.config.preprocess

    @torch.inference_mode()
    def embed_batch(self, batch: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)).to(self.device)
        return self.model(x, normalize=True).float().cpu().numpy()


def embed_pil(backend: EmbeddingBackend, images: Sequence[Image.Image], *, batch_size: int = 64) -> np.ndarray:
    """RGB PIL images -> (N, d) normalised embeddings through any backend."""
    out = [
        backend.embed_batch(preprocess_batch(images[s : s + batch_size], backend.preprocess).numpy())
        for s in range(0, len(images), batch_size)
    ]
    if not out:
        return np.zeros((0, backend.card.config.embed_dim), dtype=np.float32)
    return np.concatenate(out)


def load_backend(checkpoint: Path | str, *, backend: str = "torch", device: str = "cpu") -> EmbeddingBackend:
    """Load a checkpoint for inference with the named backend."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose one of {BACKENDS}")
    model, card = load_embedder(checkpoint, device=device)
    return TorchBackend(model, card, device=device)
