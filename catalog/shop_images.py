"""Product photos of an imported catalog: checked with the safe decoder, written as images/{item_id}.jpg.

The Polyvore layout (and so the trainer) reads `images/{item_id}.jpg`. A JPEG that decodes is copied
byte for byte; PNG, WebP and the other accepted formats are decoded once and re-encoded as JPEG
(transparency flattened onto white, as everywhere else). Every photo is decoded with the checks uploads
get (`embedder.image_io`: corrupt files, decompression bombs), so a bad photo fails the import, naming
its catalog line, instead of a training run hours later.
"""

from __future__ import annotations

import io
import shutil
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from catalog.errors import problems_error
from catalog.polyvore import IMAGE_DIR
from catalog.types import Item

JPEG_MAGIC = b"\xff\xd8\xff"
# Catalog photos may be larger than an upload; bombs are still refused by the pixel limit.
MAX_IMAGE_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class ImageCounts:
    copied: int  # JPEGs copied unchanged
    converted: int  # other formats re-encoded as JPEG


def _stage_one(item: Item, dest: Path, quality: int) -> str:
    """Write one item's photo; returns "copied" or "converted", raises ImageDecodeError/OSError."""
    from embedder.image_io import ImageDecodeError, ImageLimits, decode_image

    if item.image is None:
        raise ImageDecodeError("missing", "the row names no image")
    if not item.image.is_file():
        raise ImageDecodeError("missing", f"image {item.image} does not exist")
    data = item.image.read_bytes()
    img = decode_image(data, ImageLimits(max_bytes=MAX_IMAGE_BYTES))
    target = dest / f"{item.item_id}.jpg"
    if data.startswith(JPEG_MAGIC):
        shutil.copyfile(item.image, target)
        return "copied"
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=quality)
    target.write_bytes(buf.getvalue())
    return "converted"


def stage_images(
    rows: Sequence[tuple[int, Item]], root: Path, *, catalog: Path, threads: int = 2, quality: int = 95
) -> ImageCounts:
    """Check and write every row's photo under root/images/; one DatasetError lists every bad photo."""
    from embedder.image_io import ImageDecodeError

    dest = root / IMAGE_DIR
    dest.mkdir(parents=True, exist_ok=True)

    def run(row: tuple[int, Item]) -> tuple[int, Item, str]:
        n, item = row
        try:
            return n, item, _stage_one(item, dest, quality)
        except (ImageDecodeError, OSError) as e:
            return n, item, f"error: {e}"

    # Decoding releases the GIL: threads keep both cores busy without pickling images between processes.
    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        results = list(pool.map(run, rows))
    problems = [f"line {n}: item {it.item_id!r}: {outcome[len('error: '):]}"
                for n, it, outcome in results if outcome.startswith("error: ")]
    if problems:
        raise problems_error(catalog, problems, "unusable image(s)")
    copied = sum(outcome == "copied" for _, _, outcome in results)
    return ImageCounts(copied=copied, converted=len(results) - copied)
