"""Colour-histogram features: the paper's appearance baseline (no learning)."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from PIL import Image

# Product photos sit on white; counting background pixels would make every histogram alike.
WHITE_THRESHOLD = 240
HIST_SIZE = 128


def color_histogram(img: Image.Image, bins: int = 8) -> np.ndarray:
    """L2-normalised `bins`³ RGB histogram of the non-background pixels (float32)."""
    arr = np.asarray(img.convert("RGB").resize((HIST_SIZE, HIST_SIZE), Image.Resampling.BILINEAR))
    pix = arr.reshape(-1, 3)
    fg = pix[(pix < WHITE_THRESHOLD).any(axis=1)]
    if len(fg) == 0:
        fg = pix  # an all-white product still gets a (white) histogram
    q = (fg.astype(np.int64) * bins) // 256
    codes = (q[:, 0] * bins + q[:, 1]) * bins + q[:, 2]
    hist = np.bincount(codes, minlength=bins**3).astype(np.float32)
    return hist / max(float(np.linalg.norm(hist)), 1e-12)


def color_histogram_features(images: Iterable[Image.Image], bins: int = 8) -> np.ndarray:
    """(N, bins³) float32 matrix of colour histograms."""
    rows = [color_histogram(im, bins) for im in images]
    if not rows:
        return np.zeros((0, bins**3), dtype=np.float32)
    return np.stack(rows)
