"""Everything a run reads before its first step: splits, the α split, the unlabeled pool, cached images."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from catalog.polyvore import PolyvoreDataset
from catalog.types import Outfit, SplitData
from embedder.config import PreprocessConfig
from training.config import TrainConfig
from training.data import ImageStore, folder_images
from training.evaluate import data_fingerprint
from training.sampler import TripletSampler, split_labeled, unlabeled_pool

log = logging.getLogger(__name__)


@dataclass
class TrainingData:
    dataset: PolyvoreDataset
    labeled: list[Outfit]
    unlabeled_ids: list[str]
    sampler: TripletSampler
    store: ImageStore
    valid: SplitData
    valid_ids: list[str]
    test: SplitData
    test_ids: list[str]
    fingerprint: str
    category_codes: dict[str, int]  # every catalog item -> index of its category in sorted order

    def summary(self) -> dict[str, int]:
        return {
            "labeled_outfits": len(self.labeled),
            "labeled_items": len({i for o in self.labeled for i in o.item_ids}),
            "unlabeled_items": len(self.unlabeled_ids),
            "valid_items": len(self.valid_ids),
            "test_items": len(self.test_ids),
        }


def prepare_data(config: TrainConfig, *, cache_dir: Path | None = None, threads: int = 2) -> TrainingData:
    if not config.data:
        raise FileNotFoundError("no dataset given: pass --data ROOT (a Polyvore-format directory)")
    ds = PolyvoreDataset(config.data, config.kind)
    train = ds.split("train")
    labeled, unlabeled_outfits = split_labeled(train.outfits, config.labeled_fraction, seed=config.seed)
    pool = unlabeled_pool(
        dataset_unlabeled=ds.unlabeled_item_ids(("train",)),
        unlabeled_outfits=unlabeled_outfits,
        labeled_outfits=labeled,
    )
    paths = {i: ds.image_path(i) for i in ds.items}
    if config.unlabeled_dir:
        extra = folder_images(Path(config.unlabeled_dir))
        paths.update(extra)
        pool = sorted(set(pool) | set(extra))
    sampler = TripletSampler(labeled, ds.items, fallback_items=ds.items)
    valid, test = ds.split("valid"), ds.split("test")
    valid_ids, test_ids = sorted(valid.item_ids()), sorted(test.item_ids())
    store = ImageStore(paths, PreprocessConfig(image_size=config.image_size))
    needs_pool = config.use_ss or config.use_pseudo
    wanted = {i for o in labeled for i in o.item_ids} | set(valid_ids) | set(test_ids)
    wanted |= {i for lst in sampler.by_category.values() for i in lst}
    if needs_pool:
        wanted |= set(pool)
    log.info("decoding %d images at %d px", len(wanted), config.image_size)
    store.load(sorted(wanted) if not needs_pool or cache_dir is None else None, threads=threads, cache_dir=cache_dir)
    return TrainingData(
        dataset=ds,
        labeled=labeled,
        unlabeled_ids=pool if needs_pool else [],
        sampler=sampler,
        store=store,
        valid=valid,
        valid_ids=valid_ids,
        test=test,
        test_ids=test_ids,
        fingerprint=data_fingerprint(config.data, config.kind),
        category_codes=category_codes(ds),
    )


def category_codes(ds: PolyvoreDataset) -> dict[str, int]:
    """Categories are known for labeled and unlabeled items alike (the catalog records them)."""
    names = sorted({item.category for item in ds.items.values()})
    code = {name: k for k, name in enumerate(names)}
    return {i: code[item.category] for i, item in ds.items.items()}
