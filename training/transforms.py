"""The paper's two transform families, applied to the model-sized square PIL image.

T_s (shape; the positive of the self-supervised triplet): rotation ±5°, shear up to 30 px, scale up to 1.2,
center crop back to the input size. Colours are untouched, so an item's colour histogram barely moves.
T_a (appearance; the negative): random grayscale, colour jitter, random crop. The item's shape survives,
its colours do not, so the model learns that appearance matters for compatibility.

Randomness comes from an explicit `np.random.Generator`, so views are reproducible from (seed, sample).
After a transform the image goes through the shared `embedder.preprocess.normalize_array`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torchvision.transforms.v2.functional as TF
from PIL import Image

# The paper states shear in pixels of a 224 px input; it is scaled to the actual image size.
REFERENCE_SIZE = 224


@dataclass(frozen=True)
class ShapeParams:
    max_rotation_deg: float = 5.0
    max_shear_px: float = 30.0
    max_scale: float = 1.2


@dataclass(frozen=True)
class AppearanceParams:
    grayscale_p: float = 0.3
    brightness: float = 0.4
    contrast: float = 0.4
    saturation: float = 0.6
    hue: float = 0.25
    min_crop_area: float = 0.6


class ShapeTransform:
    """T_s: a random affine (rotation, shear, zoom) about the centre, output cropped to the input size."""

    def __init__(self, params: ShapeParams | None = None, *, fill: tuple[int, int, int] = (255, 255, 255)) -> None:
        self.params = params or ShapeParams()
        self.fill = fill

    def __call__(self, img: Image.Image, rng: np.random.Generator) -> Image.Image:
        p = self.params
        size = img.size[0]
        angle = float(rng.uniform(-p.max_rotation_deg, p.max_rotation_deg))
        # A shear that moves the image edge (half a side from the centre) by up to max_shear_px.
        shear_px = p.max_shear_px * size / REFERENCE_SIZE
        max_shear_deg = math.degrees(math.atan(shear_px / (size / 2)))
        shear = float(rng.uniform(-max_shear_deg, max_shear_deg))
        # Zooming in about the centre and keeping the input size is the centre crop.
        scale = float(rng.uniform(1.0, p.max_scale))
        out = TF.affine(img, angle=angle, translate=[0, 0], scale=scale, shear=[shear, 0.0],
                        interpolation=TF.InterpolationMode.BILINEAR, fill=list(self.fill))
        assert isinstance(out, Image.Image)
        return out


class AppearanceTransform:
    """T_a: colour jitter (always), grayscale (with probability), then a random crop resized back."""

    def __init__(self, params: AppearanceParams | None = None) -> None:
        self.params = params or AppearanceParams()

    def __call__(self, img: Image.Image, rng: np.random.Generator) -> Image.Image:
        p = self.params
        size = img.size[0]
        out: Image.Image = img
        # Jitter in a random order, as torchvision's ColorJitter does.
        for op in rng.permutation(4):
            if op == 0:
                out = TF.adjust_brightness(out, float(rng.uniform(1 - p.brightness, 1 + p.brightness)))
            elif op == 1:
                out = TF.adjust_contrast(out, float(rng.uniform(1 - p.contrast, 1 + p.contrast)))
            elif op == 2:
                out = TF.adjust_saturation(out, float(rng.uniform(1 - p.saturation, 1 + p.saturation)))
            else:
                out = TF.adjust_hue(out, float(rng.uniform(-p.hue, p.hue)))
        if rng.random() < p.grayscale_p:
            out = out.convert("L").convert("RGB")
        area = float(rng.uniform(p.min_crop_area, 1.0))
        side = max(1, round(size * math.sqrt(area)))
        left = int(rng.integers(0, size - side + 1))
        top = int(rng.integers(0, size - side + 1))
        out = out.crop((left, top, left + side, top + side)).resize((size, size), Image.Resampling.BILINEAR)
        return out


@dataclass(frozen=True)
class ViewTransforms:
    """The pair used by L_ss, built once per run."""

    shape: ShapeTransform
    appearance: AppearanceTransform

    @classmethod
    def default(cls, fill: tuple[int, int, int] = (255, 255, 255)) -> ViewTransforms:
        return cls(ShapeTransform(fill=fill), AppearanceTransform())

    def views(self, arr: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """uint8 (S, S, 3) -> (T_s, T_a) as uint8 arrays of the same shape."""
        img = Image.fromarray(arr)
        return np.asarray(self.shape(img, rng)), np.asarray(self.appearance(img, rng))
