"""Product-photo-like drawings of synthetic items: a category silhouette filled with a patterned
fabric, shaded, with a soft shadow on an off-white studio background.

Silhouettes (`synth_shapes`) are posed by a small random affine map (scale, rotation, shift, mirror),
so the same product type never lands on exactly the same pixels.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from catalog.synth_shapes import Point, silhouette
from catalog.synth_themes import RGB, ItemLook, jittered

SUPERSAMPLE = 3  # silhouettes are drawn at 3x the size and downsampled, for anti-aliased edges


def _texture(pattern: str, base: RGB, accent: RGB, n: int, period: float, rng: np.random.Generator) -> np.ndarray:
    """An n x n x 3 float32 fabric in [0, 255]; `period` is the pattern repeat as a fraction of the image."""
    axis = np.arange(n, dtype=np.float32) / n
    # Random phase, so the repeat never lines up the same way; coordinates in units of the repeat.
    u = ((axis + rng.random()) / period)[None, :]
    v = ((axis + rng.random()) / period)[:, None]
    lo, hi = np.asarray(base, dtype=np.float32), np.asarray(accent, dtype=np.float32)
    if pattern == "solid":
        return np.broadcast_to(lo, (n, n, 3))
    if pattern == "stripes":
        on = np.broadcast_to(v % 1.0 < 0.45, (n, n))
    elif pattern == "diagonal":
        on = (u + v) % 1.0 < 0.45
    elif pattern == "dots":
        du = (u + 0.5 * np.floor(v)) % 1.0 - 0.5  # every other row shifted by half a repeat
        dv = v % 1.0 - 0.5
        on = du * du + dv * dv < 0.28**2
    elif pattern == "checks":  # gingham: accent where both bands cross, a half tone where one does
        a, b = u % 1.0 < 0.5, v % 1.0 < 0.5
        out = np.where((a & b)[..., None], hi, lo)
        return np.where((a ^ b)[..., None], (lo + hi) / 2, out)
    elif pattern == "zigzag":
        on = (v + 0.6 * np.abs(u % 1.0 - 0.5)) % 1.0 < 0.4
    else:
        raise ValueError(f"unknown pattern {pattern!r}")
    return np.where(on[..., None], hi, lo)


def _pose(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A random placement: unit-square points p map to A @ p + t, still in units of the image side."""
    scale = rng.uniform(0.82, 1.0)
    angle = math.radians(rng.uniform(-6.0, 6.0))
    squash = rng.uniform(0.92, 1.08)
    flip = -1.0 if rng.random() < 0.5 else 1.0
    c, s = math.cos(angle), math.sin(angle)
    a = scale * np.array([[c * flip * squash, -s], [s * flip * squash, c]])
    t = np.array([0.5, 0.5]) - a @ np.array([0.5, 0.5]) + rng.uniform(-0.05, 0.05, size=2)
    return a, t


def _coverage(size: int, draw_on: Callable[[ImageDraw.ImageDraw, int], None]) -> Image.Image:
    """An anti-aliased coverage mask: drawn at SUPERSAMPLE times the size, then box-downsampled."""
    big = Image.new("L", (size * SUPERSAMPLE, size * SUPERSAMPLE), 0)
    draw_on(ImageDraw.Draw(big), size * SUPERSAMPLE)
    return big.resize((size, size), Image.Resampling.BOX)


def render_item(look: ItemLook, *, size: int, rng: np.random.Generator, jitter: float) -> Image.Image:
    """One product photo of `look`, `size` x `size` RGB."""
    base, accent = jittered(rng, look.base, jitter), jittered(rng, look.accent, jitter)
    shape = silhouette(look.shape)
    a, t = _pose(rng)

    def px(points: Sequence[Point], n: int) -> list[tuple[float, float]]:
        arr = (np.asarray(points, dtype=np.float64) / 100.0 @ a.T + t) * n
        return [(float(x), float(y)) for x, y in arr]

    def outline(draw: ImageDraw.ImageDraw, n: int) -> None:
        for poly in shape.fills:
            draw.polygon(px(poly, n), fill=255)
        for line, width in shape.strokes:
            draw.line(px(line, n), fill=255, width=max(1, round(width * n / 100.0)), joint="curve")
        for poly in shape.holes:
            draw.polygon(px(poly, n), fill=0)

    def details(draw: ImageDraw.ImageDraw, n: int) -> None:
        for line, width in shape.details:
            draw.line(px(line, n), fill=255, width=max(1, round(width * n / 100.0)), joint="curve")

    mask = _coverage(size, outline)
    m = np.asarray(mask, dtype=np.float32)[..., None] / 255.0
    d = np.asarray(_coverage(size, details), dtype=np.float32)[..., None] / 255.0

    # Off-white studio background with a faint vertical falloff, and a soft drop shadow.
    ramp = np.linspace(0.0, 1.0, size, dtype=np.float32)[:, None, None]
    shift = (1, 0, -size // 40, 0, 1, -size // 30)
    shadow = mask.transform((size, size), Image.Transform.AFFINE, shift).filter(ImageFilter.GaussianBlur(size / 40))
    sh = np.asarray(shadow, dtype=np.float32)[..., None] / 255.0
    bg = (np.float32(rng.uniform(240.0, 252.0)) - 8.0 * ramp) * (1.0 - 0.10 * sh)

    period = (0.16 if look.bold else 0.07) * rng.uniform(0.85, 1.15)
    fabric = _texture(look.pattern, base, accent, size, period, rng) * (1.06 - 0.14 * ramp)  # lit from above
    fabric = fabric + d * (0.55 * np.asarray(base, dtype=np.float32) - fabric)  # seams, soles, buttons
    img = bg + m * (np.minimum(fabric, 255.0) - bg)
    return Image.fromarray((img + 0.5).astype(np.uint8), "RGB")


def jpeg_bytes(image: Image.Image, quality: int = 90) -> bytes:
    """Encode without timestamps or random state, so the same pixels always give the same bytes."""
    buf = io.BytesIO()
    image.save(buf, format="JPEG", quality=quality)
    return buf.getvalue()
