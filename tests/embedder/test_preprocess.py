from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageFilter

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


def test_every_entry_point_is_the_same_model_input_bit_for_bit() -> None:
    """Uploads and the index job call to_model_input, the int8 export and backends inputs_of, torch callers the
    tensor wrappers: one set of numbers, and the same as the two cached training steps (resize, normalise)."""
    from embedder.preprocess import inputs_of, normalize_array, resize_square, to_model_input

    cfg = PreprocessConfig(image_size=24)
    rng = np.random.default_rng(0)
    imgs = [Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)) for h, w in ((30, 50), (64, 17), (24, 24))]
    many = inputs_of(imgs, cfg)
    assert many.dtype == np.float32 and many.shape == (3, 3, 24, 24)
    for k, im in enumerate(imgs):
        one = to_model_input(im, cfg)
        np.testing.assert_array_equal(one, many[k])
        np.testing.assert_array_equal(one, preprocess_image(im, cfg).numpy())
        np.testing.assert_array_equal(one, normalize_array(np.asarray(resize_square(im, cfg)), cfg))
    np.testing.assert_array_equal(preprocess_batch(imgs, cfg).numpy(), many)


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


def _pad_then_resize(img: Image.Image, cfg: PreprocessConfig) -> np.ndarray:
    """The pre-issue-12 geometry (pad to max(w, h)², then shrink): the reference the new order must match."""
    side = max(img.size)
    canvas = Image.new("RGB", (side, side), cfg.pad_fill)
    canvas.paste(img, ((side - img.width) // 2, (side - img.height) // 2))
    return np.asarray(canvas.resize((cfg.image_size,) * 2, Image.Resampling.BILINEAR, reducing_gap=3.0))


def test_resize_then_pad_matches_the_pad_then_resize_geometry() -> None:
    from embedder.preprocess import resize_square

    cfg = PreprocessConfig(image_size=64)
    rng = np.random.default_rng(0)
    for w, h in ((239, 334), (500, 120), (64, 30), (31, 64)):
        img = Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).filter(ImageFilter.GaussianBlur(3))
        new = np.asarray(resize_square(img, cfg)).astype(np.int16)
        assert new.shape == (64, 64, 3)
        # Same placement and scale; only the one-pixel seam against the padding may blend differently.
        assert np.abs(new - _pad_then_resize(img, cfg)).mean() < 3.0, (w, h)


def test_resize_square_never_allocates_the_padded_canvas() -> None:
    """A 10000x500 strip used to be padded to 10000² (300 MB) before shrinking; peak RSS must stay flat."""
    code = (
        "import resource, sys\n"
        "from PIL import Image\n"
        "from embedder.config import PreprocessConfig\n"
        "from embedder.preprocess import resize_square\n"
        "img = Image.new('RGB', (10000, 500), (10, 20, 30))\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "out = resize_square(img, PreprocessConfig(image_size=224))\n"
        "assert out.size == (224, 224)\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         cwd=Path(__file__).resolve().parents[2])
    assert res.returncode == 0, res.stderr
    rise_kb = int(res.stdout.strip())
    assert rise_kb < 50 * 1024, f"peak RSS rose by {rise_kb / 1024:.0f} MB"
