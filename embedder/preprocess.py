"""The one preprocessing path from an RGB PIL image to a normalised model input: `to_model_input`.

Every consumer (index job, service uploads, int8 export, backends) calls `to_model_input` (or the torch
wrappers below, which call it); training caches `resize_square`'s uint8 output and applies
`normalize_array` after its augmentations, the same two steps split at the cache. Torch-free at import.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from embedder.config import PreprocessConfig

if TYPE_CHECKING:
    import torch


def pad_to_square(img: Image.Image, fill: tuple[int, int, int], side: int | None = None) -> Image.Image:
    """Pad (never crop) to a `side` square (default max(w, h)) so tall product shots keep their silhouette."""
    w, h = img.size
    side = side or max(w, h)
    if w == h == side:
        return img
    canvas = Image.new("RGB", (side, side), fill)
    canvas.paste(img, ((side - w) // 2, (side - h) // 2))
    return canvas


def fit_size(width: int, height: int, side: int) -> tuple[int, int]:
    """(w, h) scaled so the longer side is `side`, aspect kept, at least one pixel each way."""
    scale = side / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def resize_square(img: Image.Image, cfg: PreprocessConfig) -> Image.Image:
    """RGB image -> resized, then padded `image_size` square (the geometry step, before normalisation).

    Resize first, pad second: padding first would allocate a max(w, h)² canvas, ~1 GB for a 16000x250 strip.
    """
    if img.mode != "RGB":
        img = img.convert("RGB")
    size = cfg.image_size
    target = fit_size(img.width, img.height, size)
    if img.size != target:
        img = img.resize(target, Image.Resampling.BILINEAR, reducing_gap=3.0)
    return pad_to_square(img, cfg.pad_fill, size)


def normalize_array(arr: np.ndarray, cfg: PreprocessConfig) -> np.ndarray:
    """uint8 (..., H, W, 3) -> float32 (..., 3, H, W) normalised with the model's mean/std."""
    mean = np.asarray(cfg.mean, dtype=np.float32) * 255.0
    inv_std = 1.0 / (np.asarray(cfg.std, dtype=np.float32) * 255.0)
    out = (arr.astype(np.float32) - mean) * inv_std
    return np.ascontiguousarray(np.moveaxis(out, -1, -3))


def to_model_input(img: Image.Image, cfg: PreprocessConfig) -> np.ndarray:
    """One PIL image -> (3, S, S) float32 model input: resize, pad to a square, normalise."""
    return normalize_array(np.asarray(resize_square(img, cfg)), cfg)


def inputs_of(images: Sequence[Image.Image], cfg: PreprocessConfig) -> np.ndarray:
    """PIL images -> (N, 3, S, S) float32 model inputs; row k is `to_model_input(images[k])` bit for bit
    (the normalisation is elementwise), normalised in one pass over the stacked uint8 images."""
    if not images:
        raise ValueError("preprocessing needs at least one image")
    return normalize_array(np.stack([np.asarray(resize_square(im, cfg)) for im in images]), cfg)


def preprocess_image(img: Image.Image, cfg: PreprocessConfig) -> torch.Tensor:
    """One RGB PIL image -> (3, S, S) float tensor."""
    import torch  # here, not at import: the service's upload path needs only numpy

    return torch.from_numpy(to_model_input(img, cfg))


def preprocess_batch(images: Sequence[Image.Image], cfg: PreprocessConfig) -> torch.Tensor:
    """RGB PIL images -> (N, 3, S, S) float tensor."""
    import torch

    return torch.from_numpy(inputs_of(images, cfg))
