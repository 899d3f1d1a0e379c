"""Colour-histogram features: the paper's appearance baseline (no learning)."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from PIL import Image

HIST_SIZE = 128
# A pixel within this max-channel distance of the background estimate is background. Studio backgrounds
# are white or off-white with soft shadows, so a fixed "near white" cut would count shadows as product.
BACKGROUND_TOLERANCE = 28


def background_colour(arr: np.ndarray) -> np.ndarray:
    """Median colour of the one-pixel image border: product photos are framed by their backdrop."""
    border = np.concatenate([arr[0], arr[-1], arr[:, 0], arr[:, -1]])
    return np.median(border, axis=0)


def foreground_pixels(arr: np.ndarray) -> np.ndarray:
    """(K, 3) pixels that differ from the backdrop; all pixels when nothing does (a white product)."""
    pix = arr.reshape(-1, 3)
    bg = background_colour(arr).astype(np.int16)
    fg = pix[np.abs(pix.astype(np.int16) - bg).max(axis=1) > BACKGROUND_TOLERANCE]
    return fg if len(fg) else pix


def color_histogram(img: Image.Image, bins: int = 8) -> np.ndarray:
    """L2-normalised `bins`³ RGB histogram of the product's (non-background) pixels (float32)."""
    arr = np.asarray(img.convert("RGB").resize((HIST_SIZE, HIST_SIZE), Image.Resampling.BILINEAR))
    q = (foreground_pixels(arr).astype(np.int64) * bins) // 256
    codes = (q[:, 0] * bins + q[:, 1]) * bins + q[:, 2]
    hist = np.bincount(codes, minlength=bins**3).astype(np.float32)
    return hist / max(float(np.linalg.norm(hist)), 1e-12)


def color_histogram_features(images: Iterable[Image.Image], bins: int = 8) -> np.ndarray:
    """(N, bins³) float32 matrix of colour histograms."""
    rows = [color_histogram(im, bins) for im in images]
    if not rows:
        return np.zeros((0, bins**3), dtype=np.float32)
    return np.stack(rows)
