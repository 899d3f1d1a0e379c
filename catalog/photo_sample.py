"""Seeded samples of a Polyvore-format split's item photos: the photos an int8 export is calibrated on and
checked against (`embedder.quantize` takes them as paths and reads no dataset itself)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from catalog.errors import DatasetError
from catalog.polyvore import PolyvoreDataset

if TYPE_CHECKING:
    from embedder.quantize import Int8Photos, QuantizeConfig


def sample_item_ids(dataset_root: Path | str, *, split: str, n: int, kind: str, seed: int) -> list[str]:
    """A seeded sample of the item ids used by one split's outfits (sorted first: order-independent)."""
    ds = PolyvoreDataset(dataset_root, kind=kind)
    ids = sorted(ds.outfit_item_ids((split,)))
    if not ids:
        raise DatasetError(Path(dataset_root), f"the {kind}/{split} split has no items to calibrate on")
    rng = np.random.default_rng(seed)
    take = rng.choice(len(ids), size=min(n, len(ids)), replace=False)
    return [ids[i] for i in sorted(take)]


def fingerprint_ids(item_ids: Sequence[str]) -> str:
    return hashlib.sha256("\n".join(item_ids).encode("utf-8")).hexdigest()[:16]


def int8_photos(dataset_root: Path | str, config: QuantizeConfig) -> Int8Photos:
    """Train-split photos to calibrate on and test-split photos (never the calibration split) to check parity,
    `config.calibration_images` and `config.parity_images` of them, drawn with `config.seed`."""
    from embedder.quantize import Int8Photos

    ds = PolyvoreDataset(dataset_root, kind=config.kind)
    calib = sample_item_ids(dataset_root, split="train", n=config.calibration_images, kind=config.kind,
                            seed=config.seed)
    parity = sample_item_ids(dataset_root, split="test", n=config.parity_images, kind=config.kind, seed=config.seed)
    return Int8Photos(
        calibration=tuple(ds.image_path(i) for i in calib),
        parity=tuple(ds.image_path(i) for i in parity),
        source={"dataset": str(Path(dataset_root).resolve()), "kind": config.kind, "split": "train",
                "item_ids_sha256": fingerprint_ids(calib), "seed": config.seed},
        parity_split="test",
    )
