"""A generated shop catalog (CSV or JSONL) with real image files and stylist outfits (JSONL), as a shop exports.

Photos are drawn products (JPEG, PNG and transparent PNG mixed), attributes are typed columns
(`in_stock` boolean, `gender`/`brand`/`colour` strings, `size` number). Some products are in no outfit.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

CATEGORIES = ("tops", "bottoms", "shoes", "bags")
BRANDS = ("acme", "bolt", "corto")
COLOURS = ("red", "navy", "olive", "black")


@dataclass(frozen=True)
class ShopFiles:
    catalog: Path
    outfits: Path
    rows: list[dict[str, Any]]
    outfit_ids: list[list[str]]


def _photo(rng: np.random.Generator, colour: tuple[int, int, int], shape: int) -> Image.Image:
    img = Image.new("RGB", (int(rng.integers(56, 96)), int(rng.integers(56, 96))), (255, 255, 255))
    draw = ImageDraw.Draw(img)
    w, h = img.size
    box = (w // 6, h // 6, w - w // 6, h - h // 6)
    (draw.ellipse if shape % 2 else draw.rectangle)(box, fill=colour)
    return img


def write_shop(
    root: Path, *, items: int = 120, outfits: int = 60, seed: int = 0, fmt: str = "csv", unused: int = 12
) -> ShopFiles:
    """`items` products (the last `unused` in no outfit) and `outfits` outfits of 2-4 categories."""
    rng = np.random.default_rng(seed)
    img_dir = root / "photos"
    img_dir.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    for i in range(items):
        cat = CATEGORIES[i % len(CATEGORIES)]
        colour = COLOURS[int(rng.integers(len(COLOURS)))]
        rgb = tuple(int(c) for c in rng.integers(0, 256, 3))
        img = _photo(rng, rgb, i)  # type: ignore[arg-type]
        kind = ("jpg", "png", "rgba.png")[i % 3]
        name = f"{cat}-{i:04d}.{kind}"
        if kind == "rgba.png":
            img = img.convert("RGBA")
            img.putalpha(200)
        img.save(img_dir / name)
        rows.append({
            "item_id": f"P-{i:04d}", "image": f"photos/{name}", "category": cat, "title": f"{colour} {cat} {i}",
            "price": round(float(rng.uniform(5, 200)), 2), "url": f"https://shop.example/p/{i}",
            "in_stock": bool(rng.random() < 0.7), "gender": ("women", "men")[i % 2],
            "brand": BRANDS[int(rng.integers(len(BRANDS)))], "colour": colour, "size": int(rng.integers(34, 46)),
        })
    used = [r["item_id"] for r in rows[: items - unused]]
    by_cat: dict[str, list[str]] = {}
    for r in rows[: items - unused]:
        by_cat.setdefault(r["category"], []).append(r["item_id"])
    outfit_ids = []
    for _ in range(outfits):
        cats = rng.choice(len(CATEGORIES), size=int(rng.integers(2, 5)), replace=False)
        outfit_ids.append([by_cat[CATEGORIES[int(c)]][int(rng.integers(len(by_cat[CATEGORIES[int(c)]])))]
                           for c in cats])
    assert set(used) >= {i for o in outfit_ids for i in o}
    catalog = root / f"products.{fmt}"
    if fmt == "csv":
        with catalog.open("w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            for r in rows:
                writer.writerow({**r, "in_stock": str(r["in_stock"]).lower()})
    else:
        catalog.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    outfits_path = root / "outfits.jsonl"
    outfits_path.write_text(
        "".join(json.dumps({"set_id": f"look{n}", "items": o}) + "\n" for n, o in enumerate(outfit_ids)),
        encoding="utf-8",
    )
    return ShopFiles(catalog, outfits_path, rows, outfit_ids)
