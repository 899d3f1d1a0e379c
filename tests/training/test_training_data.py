from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from catalog.polyvore import PolyvoreDataset
from embedder.config import PreprocessConfig
from training.config import preset
from training.data import ImageStore, TripletDataset, UnlabeledSource, folder_images
from training.prepare import prepare_data
from training.sampler import Triplet
from training.transforms import ViewTransforms


def _folder(tmp_path: Path) -> Path:
    d = tmp_path / "extra" / "sub"
    d.mkdir(parents=True)
    for k, colour in enumerate([(200, 0, 0), (0, 0, 200)]):
        Image.new("RGB", (40, 60), colour).save(d / f"p{k}.png")
    (d / "notes.txt").write_text("not an image")
    return tmp_path / "extra"


def test_unlabeled_dir_joins_the_pool(synth_root: Path, tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    assert sorted(folder_images(folder)) == ["extra:sub/p0.png", "extra:sub/p1.png"]
    config = preset("smoke", data=str(synth_root), unlabeled_dir=str(folder), labeled_fraction=0.5)
    data = prepare_data(config)
    assert {"extra:sub/p0.png", "extra:sub/p1.png"} <= set(data.unlabeled_ids)
    labeled = {i for o in data.labeled for i in o.item_ids}
    assert not labeled & set(data.unlabeled_ids)
    assert data.store.get("extra:sub/p1.png").shape == (32, 32, 3)
    with pytest.raises(FileNotFoundError, match="not a directory"):
        folder_images(tmp_path / "nope")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="holds no"):
        folder_images(empty)


def test_image_store_cache_roundtrip(synth_root: Path, tmp_path: Path) -> None:
    ds = PolyvoreDataset(synth_root)
    ids = sorted(ds.items)[:12]
    cfg = PreprocessConfig(image_size=24)
    store = ImageStore({i: ds.image_path(i) for i in ids}, cfg)
    store.load(cache_dir=tmp_path)
    (cache,) = tmp_path.glob("images_24px_*.npz")
    again = ImageStore({i: ds.image_path(i) for i in ids}, cfg)
    again.load(cache_dir=tmp_path)
    assert np.array_equal(again.batch(ids), store.batch(ids))
    with pytest.raises(KeyError, match="no image known"):
        store.get("missing")
    assert cache.is_file()


def test_triplet_dataset_and_unlabeled_source_are_seeded(synth_root: Path) -> None:
    ds = PolyvoreDataset(synth_root)
    ids = sorted(ds.items)
    store = ImageStore({i: ds.image_path(i) for i in ids}, PreprocessConfig(image_size=24))
    views = ViewTransforms.default()
    trips = [Triplet(ids[0], ids[1], ids[2]), Triplet(ids[3], ids[4], ids[5])]
    a = TripletDataset(trips, store, views=views, seed=1, epoch=0)[1]
    b = TripletDataset(trips, store, views=views, seed=1, epoch=0)[1]
    assert a["triplet"].shape == a["shape"].shape == a["appearance"].shape == (3, 3, 24, 24)
    assert all(torch.equal(a[k], b[k]) for k in a)
    c = TripletDataset(trips, store, views=views, seed=1, epoch=1)[1]
    assert torch.equal(a["triplet"], c["triplet"]) and not torch.equal(a["appearance"], c["appearance"])
    src = UnlabeledSource(ids, store, views=views, seed=3)
    assert src.sample(10, step=4) == src.sample(10, step=4) != src.sample(10, step=5)
    assert len(src.sample(10_000, step=0)) == len(ids)
    with pytest.raises(ValueError, match="unlabeled pool is empty"):
        UnlabeledSource([], store, views=None, seed=0)


def test_shape_augmentation_of_labeled_images_is_seeded_and_keeps_colour(synth_root: Path) -> None:
    ds = PolyvoreDataset(synth_root)
    ids = sorted(ds.items)
    store = ImageStore({i: ds.image_path(i) for i in ids}, PreprocessConfig(image_size=24))
    trips = [Triplet(ids[0], ids[1], ids[2])]
    plain = TripletDataset(trips, store, views=None, seed=1, epoch=0)[0]["triplet"]
    aug = TripletDataset(trips, store, views=None, seed=1, epoch=0, shape_aug=1.0)[0]["triplet"]
    again = TripletDataset(trips, store, views=None, seed=1, epoch=0, shape_aug=1.0)[0]["triplet"]
    other_epoch = TripletDataset(trips, store, views=None, seed=1, epoch=1, shape_aug=1.0)[0]["triplet"]
    assert torch.equal(aug, again) and not torch.equal(aug, plain) and not torch.equal(aug, other_epoch)
    # T_s moves pixels, not colours: each image's mean colour stays close (white fill at the corners aside).
    assert (aug.mean(dim=(2, 3)) - plain.mean(dim=(2, 3))).abs().max() < 0.5
    assert torch.equal(TripletDataset(trips, store, views=None, seed=1, epoch=0, shape_aug=0.0)[0]["triplet"], plain)
    with pytest.raises(ValueError, match="shape-aug"):
        preset("smoke", shape_aug=1.5)
