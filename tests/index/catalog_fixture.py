"""A small generic catalog of real image files, with a missing and a corrupt image among them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

CATEGORIES = ("tops", "bottoms", "shoes")


def write_image_catalog(root: Path, *, n: int = 36, seed: int = 0, bad: bool = True, start: int = 0) -> Path:
    """JSONL catalog with n drawn product images (+ one missing and one corrupt file when `bad`)."""
    rng = np.random.default_rng(seed)
    img_dir = root / "images"
    img_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(start, start + n):
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        img = Image.new("RGB", (int(rng.integers(48, 96)), int(rng.integers(48, 96))), (255, 255, 255))
        draw = ImageDraw.Draw(img)
        w, h = img.size
        draw.ellipse((w // 6, h // 6, w - w // 6, h - h // 5), fill=colour)
        name = f"p{i:04d}.{'png' if i % 2 else 'jpg'}"
        img.save(img_dir / name)
        rows.append({"item_id": f"p{i:04d}", "image": f"images/{name}", "category": CATEGORIES[i % 3],
                     "title": f"product {i}", "price": 10.0 + i, "url": f"https://shop.example/p{i}"})
    if bad:
        rows.append({"item_id": "zz-missing", "image": "images/nope.jpg", "category": "tops"})
        (img_dir / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 definitely not a jpeg")
        rows.append({"item_id": "zz-corrupt", "image": "images/broken.jpg", "category": "shoes"})
    path = root / f"catalog-{start}.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path
