"""Images for training: an in-memory cache of model-sized uint8 squares, the labeled-triplet Dataset and
the unlabeled source.

Decoding a product photo costs far more than a training step's worth of small-image transforms, so every
image is decoded and resized once (`embedder.preprocess.resize_square`, optionally kept on disk as .npz)
and the transforms run on the cached squares. Randomness is derived from (seed, epoch, index) so batches
do not depend on the number of DataLoader workers or on resuming.
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from embedder.config import PreprocessConfig
from embedder.files import atomic_path
from embedder.image_io import load_image_file
from embedder.preprocess import normalize_array, resize_square
from training.sampler import Triplet
from training.transforms import ShapeTransform, ViewTransforms

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")


def folder_images(folder: Path) -> dict[str, Path]:
    """Every image below `folder` keyed `extra:<relative path>` (for --unlabeled-dir)."""
    if not folder.is_dir():
        raise FileNotFoundError(f"--unlabeled-dir {folder} is not a directory")
    found = {
        f"extra:{p.relative_to(folder).as_posix()}": p
        for p in sorted(folder.rglob("*"))
        if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
    }
    if not found:
        raise FileNotFoundError(f"--unlabeled-dir {folder} holds no {'/'.join(IMAGE_SUFFIXES)} images")
    return found


class ImageStore:
    """item id -> (S, S, 3) uint8 square, decoded once and kept in memory."""

    def __init__(self, paths: Mapping[str, Path], cfg: PreprocessConfig) -> None:
        self.paths = dict(paths)
        self.cfg = cfg
        self._arrays: dict[str, np.ndarray] = {}

    def _decode(self, item_id: str) -> np.ndarray:
        return np.asarray(resize_square(load_image_file(self.paths[item_id]), self.cfg), dtype=np.uint8)

    def cache_key(self) -> str:
        h = hashlib.sha256(f"{self.cfg.image_size}|{self.cfg.pad_fill}".encode())
        for k in sorted(self.paths):
            h.update(f"{k}={self.paths[k]}\n".encode())
        return h.hexdigest()[:16]

    def load(self, ids: Sequence[str] | None = None, *, threads: int = 2, cache_dir: Path | None = None) -> None:
        """Decode `ids` (default: all) now; with `cache_dir`, reuse/write an .npz of the whole store."""
        cache = cache_dir / f"images_{self.cfg.image_size}px_{self.cache_key()}.npz" if cache_dir else None
        if cache is not None and cache.is_file() and not self._arrays:
            with np.load(cache) as z:
                self._arrays = dict(zip(z["ids"].tolist(), z["images"], strict=True))
        todo = [i for i in (ids if ids is not None else sorted(self.paths)) if i not in self._arrays]
        if not todo:
            return
        with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
            for item_id, arr in zip(todo, pool.map(self._decode, todo), strict=True):
                self._arrays[item_id] = arr
        if cache is not None and len(self._arrays) == len(self.paths):
            cache.parent.mkdir(parents=True, exist_ok=True)
            keys = sorted(self._arrays)
            with atomic_path(cache) as tmp:
                np.savez(tmp, ids=np.array(keys), images=np.stack([self._arrays[k] for k in keys]))

    def get(self, item_id: str) -> np.ndarray:
        arr = self._arrays.get(item_id)
        if arr is None:
            if item_id not in self.paths:
                raise KeyError(f"no image known for item {item_id!r}")
            arr = self._arrays[item_id] = self._decode(item_id)
        return arr

    def batch(self, ids: Sequence[str]) -> np.ndarray:
        return np.stack([self.get(i) for i in ids])


def to_input(arr: np.ndarray, cfg: PreprocessConfig) -> torch.Tensor:
    """uint8 (..., S, S, 3) -> normalised float (..., 3, S, S) through the shared preprocessing."""
    return torch.from_numpy(normalize_array(arr, cfg))


class TripletDataset(Dataset[dict[str, torch.Tensor]]):
    """Item k of an epoch: the (3, 3, S, S) triplet images, plus their T_s and T_a views when L_ss is on."""

    def __init__(
        self, triplets: Sequence[Triplet], store: ImageStore, *, views: ViewTransforms | None, seed: int, epoch: int,
        hflip: bool = False, shape_aug: float = 0.0, category_codes: Mapping[str, int] | None = None,
    ) -> None:
        self.triplets = list(triplets)
        self.hflip = hflip
        self.shape_aug = shape_aug
        self.shape = ShapeTransform() if shape_aug > 0 else None
        self.category_codes = category_codes
        self.store = store
        self.views = views
        self.seed = seed
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.triplets)

    def __getitem__(self, k: int) -> dict[str, torch.Tensor]:
        arrs = self.store.batch(self.triplets[k])
        if self.hflip:
            flip = np.random.default_rng([self.seed, self.epoch, k, 0xF1]).random(len(arrs)) < 0.5
            arrs = np.stack([a[:, ::-1] if f else a for a, f in zip(arrs, flip, strict=True)])
        if self.shape is not None:
            rng = np.random.default_rng([self.seed, self.epoch, k, 0x5A])
            arrs = np.stack([np.asarray(self.shape(Image.fromarray(np.ascontiguousarray(a)), rng))
                             if rng.random() < self.shape_aug else a for a in arrs])
        out = {"triplet": to_input(arrs, self.store.cfg)}
        if self.category_codes is not None:
            out["categories"] = torch.tensor([self.category_codes.get(i, -1) for i in self.triplets[k]])
        # A stable key per item id, so in-batch negatives can exclude the anchor's and positive's own items.
        out["keys"] = torch.tensor([zlib.crc32(i.encode()) for i in self.triplets[k]], dtype=torch.int64)
        if self.views is not None:
            rng = np.random.default_rng([self.seed, self.epoch, k, 0x55])
            pairs = [self.views.views(a, rng) for a in arrs]
            out["shape"] = to_input(np.stack([s for s, _ in pairs]), self.store.cfg)
            out["appearance"] = to_input(np.stack([a for _, a in pairs]), self.store.cfg)
        return out


class UnlabeledSource:
    """Random unlabeled batches for one step, seeded by (seed, step, rank)."""

    def __init__(
        self, ids: Sequence[str], store: ImageStore, *, views: ViewTransforms | None, seed: int,
        category_codes: Mapping[str, int] | None = None,
    ) -> None:
        if not ids:
            raise ValueError("the unlabeled pool is empty; L_ss on unlabeled images and L_pseudo need images")
        self.ids = list(ids)
        # Item -> category code, for category-aware matching; images of unknown category (--unlabeled-dir) get -1
        # and are never matched by a category-aware query.
        self.category_codes = category_codes
        self.store = store
        self.views = views
        self.seed = seed

    def sample(self, size: int, *, step: int, rank: int = 0) -> list[str]:
        rng = np.random.default_rng([self.seed, step, rank, 0x0B])
        idx = rng.choice(len(self.ids), size=min(size, len(self.ids)), replace=False)
        return [self.ids[i] for i in sorted(idx.tolist())]

    def categories(self, ids: Sequence[str]) -> torch.Tensor:
        codes = self.category_codes or {}
        return torch.tensor([codes.get(i, -1) for i in ids], dtype=torch.long)

    def images(self, ids: Sequence[str]) -> torch.Tensor:
        return to_input(self.store.batch(ids), self.store.cfg)

    def view_triplet(self, ids: Sequence[str], *, step: int, rank: int = 0) -> tuple[torch.Tensor, ...]:
        """(x, T_s x, T_a x) inputs for the unlabeled images that take part in L_ss this step."""
        if self.views is None:
            raise RuntimeError("view_triplet needs the view transforms (L_ss is off)")
        rng = np.random.default_rng([self.seed, step, rank, 0x5E])
        arrs = self.store.batch(ids)
        pairs = [self.views.views(a, rng) for a in arrs]
        cfg = self.store.cfg
        return (
            to_input(arrs, cfg),
            to_input(np.stack([s for s, _ in pairs]), cfg),
            to_input(np.stack([a for _, a in pairs]), cfg),
        )
