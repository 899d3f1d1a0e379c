"""The one preprocessing path from an RGB PIL image to a normalised model input tensor."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image

from embedder.config import PreprocessConfig


def pad_to_square(img: Image.Image, fill: tuple[int, int, int]) -> Image.Image:
    """Pad (never crop) to a square so tall product shots keep their whole silhouette."""
    w, h = img.size
    if w == h:
        return img
    side = max(w, h)
    canvas = Image.new("RGB", (side, side), fill)
    canvas.paste(img, ((side - w) // 2, (side - h) // 2))
    return canvas


def resize_square(img: Image.Image, cfg: PreprocessConfig) -> Image.Image:
    """RGB image -> padded, resized `image_size` square (the geometry step, before normalisation)."""
    img = pad_to_square(img.convert("RGB"), cfg.pad_fill)
    size = cfg.image_size
    if img.size != (size, size):
        img = img.resize((size, size), Image.Resampling.BILINEAR, reducing_gap=3.0)
    return img


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
