"""T_s keeps the colour histogram close, T_a changes it (measured on synthetic product images)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from catalog.polyvore import PolyvoreDataset
from embedder.colorhist import color_histogram
from embedder.config import PreprocessConfig
from embedder.image_io import load_image_file
from embedder.preprocess import resize_square
from training.transforms import AppearanceTransform, ShapeTransform, ViewTransforms


@pytest.fixture(scope="module")
def squares(synth_root: Path) -> list[Image.Image]:
    ds = PolyvoreDataset(synth_root)
    cfg = PreprocessConfig(image_size=64)
    return [resize_square(load_image_file(ds.image_path(i)), cfg) for i in sorted(ds.items)[:40]]


def hist_similarity(a: Image.Image, b: Image.Image) -> float:
    return float(color_histogram(a) @ color_histogram(b))


def test_shape_transform_keeps_colour_histogram_and_appearance_changes_it(squares: list[Image.Image]) -> None:
    rng = np.random.default_rng(0)
    t_s, t_a = ShapeTransform(), AppearanceTransform()
    sim_s = np.array([hist_similarity(im, t_s(im, rng)) for im in squares])
    sim_a = np.array([hist_similarity(im, t_a(im, rng)) for im in squares])
    # Thresholds measured on the synthetic set with margin: T_s only moves pixels (interpolation blurs
    # edges), T_a recolours most items.
    assert np.median(sim_s) > 0.85
    assert np.median(sim_a) < 0.6
    assert sim_s.mean() - sim_a.mean() > 0.3


def test_transforms_keep_size_and_are_seeded(squares: list[Image.Image]) -> None:
    views = ViewTransforms.default()
    arr = np.asarray(squares[0])
    s1, a1 = views.views(arr, np.random.default_rng(5))
    s2, a2 = views.views(arr, np.random.default_rng(5))
    assert s1.shape == a1.shape == arr.shape and s1.dtype == np.uint8
    assert np.array_equal(s1, s2) and np.array_equal(a1, a2)
    s3, _ = views.views(arr, np.random.default_rng(6))
    assert not np.array_equal(s1, s3)


def test_shape_transform_identity_parameters_leave_image_unchanged(squares: list[Image.Image]) -> None:
    from training.transforms import ShapeParams

    t = ShapeTransform(ShapeParams(max_rotation_deg=0.0, max_shear_px=0.0, max_scale=1.0))
    im = squares[1]
    assert np.array_equal(np.asarray(t(im, np.random.default_rng(0))), np.asarray(im))
