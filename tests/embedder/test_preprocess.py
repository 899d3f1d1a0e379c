from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from embedder import PreprocessConfig, preprocess_batch, preprocess_image
from embedder.colorhist import color_histogram, color_histogram_features
from embedder.preprocess import pad_to_square


def test_pad_keeps_whole_product_and_centres_it() -> None:
    img = Image.new("RGB", (40, 80), (10, 20, 30))
    sq = pad_to_square(img, (255, 255, 255))
    arr = np.asarray(sq)
    assert sq.size == (80, 80)
    assert tuple(arr[40, 40]) == (10, 20, 30) and tuple(arr[40, 5]) == (255, 255, 255)


def test_normalisation_matches_mean_std() -> None:
    cfg = PreprocessConfig(image_size=32)
    img = Image.new("RGB", (32, 32), (124, 116, 104))  # ≈ ImageNet mean * 255
    t = preprocess_image(img, cfg)
    assert t.shape == (3, 32, 32) and t.dtype == torch.float32
    assert t.abs().max() < 0.02


def test_batch_equals_single() -> None:
    cfg = PreprocessConfig(image_size=24)
    imgs = [Image.new("RGB", (30, 50), (i * 40, 0, 0)) for i in range(3)]
    batch = preprocess_batch(imgs, cfg)
    assert batch.shape == (3, 3, 24, 24)
    for i, im in enumerate(imgs):
        assert torch.allclose(batch[i], preprocess_image(im, cfg))


def test_colour_histogram_ignores_white_background() -> None:
    red_small = Image.new("RGB", (64, 64), (255, 255, 255))
    red_small.paste(Image.new("RGB", (10, 10), (200, 0, 0)), (0, 0))
    red_big = Image.new("RGB", (64, 64), (200, 0, 0))
    blue = Image.new("RGB", (64, 64), (0, 0, 200))
    h = color_histogram_features([red_small, red_big, blue])
    assert h.shape == (3, 512)
    assert np.allclose(np.linalg.norm(h, axis=1), 1.0)
    assert h[0] @ h[1] > 0.9 and h[0] @ h[2] < 0.01
    assert color_histogram(Image.new("RGB", (8, 8), (255, 255, 255))).sum() > 0


def test_colour_histogram_ignores_off_white_shadowed_backdrop() -> None:
    # Synthetic studio shots: off-white backdrop darkening towards the bottom (a soft shadow).
    ramp = np.linspace(248, 226, 64, dtype=np.float32)[:, None, None]
    backdrop = np.broadcast_to(ramp, (64, 64, 3)).astype(np.uint8).copy()
    a, b = backdrop.copy(), backdrop.copy()
    a[20:40, 20:40] = (30, 90, 200)
    b[10:50, 5:30] = (30, 90, 200)
    product_only = Image.new("RGB", (16, 16), (30, 90, 200))
    imgs = [Image.fromarray(a), Image.fromarray(b), Image.fromarray(backdrop), product_only]
    h = color_histogram_features(imgs)
    # Shadowed backdrop pixels must not enter the histogram: it is that of the product alone.
    assert h[0] @ h[3] > 0.95 and h[1] @ h[3] > 0.95
    assert h[2].sum() > 0  # nothing but backdrop still yields a histogram
