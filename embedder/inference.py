"""Batched embedding of PIL images with a loaded embedder (shared by evaluation, index and service)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image

from embedder.model import Embedder
from embedder.preprocess import preprocess_batch


@torch.inference_mode()
def embed_images(
    model: Embedder, images: Sequence[Image.Image], *, batch_size: int = 64, normalize: bool = False
) -> np.ndarray:
    """(N, embed_dim) float32 embeddings; the model must be in eval mode."""
    device = next(model.parameters()).device
    out: list[np.ndarray] = []
    for start in range(0, len(images), batch_size):
        batch = preprocess_batch(images[start : start + batch_size], model.config.preprocess).to(device)
        out.append(model(batch, normalize=normalize).float().cpu().numpy())
    if not out:
        return np.zeros((0, model.config.embed_dim), dtype=np.float32)
    return np.concatenate(out).astype(np.float32, copy=False)
