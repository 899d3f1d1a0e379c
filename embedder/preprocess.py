"""The one preprocessing path from an RGB PIL image to a normalised model input tensor."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image

from embedder.config import PreprocessConfig


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


def preprocess_image(img: Image.Image, cfg: PreprocessConfig) -> torch.Tensor:
    """One RGB PIL image -> (3, S, S) float tensor."""
    return torch.from_numpy(normalize_array(np.asarray(resize_square(img, cfg)), cfg))


def preprocess_batch(images: Sequence[Image.Image], cfg: PreprocessConfig) -> torch.Tensor:
    """RGB PIL images -> (N, 3, S, S) float tensor."""
    if not images:
        raise ValueError("preprocess_batch needs at least one image")
    stacked = np.stack([np.asarray(resize_square(im, cfg)) for im in images])
    return torch.from_numpy(normalize_array(stacked, cfg))
