from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from catalog.polyvore import PolyvoreDataset
from catalog.types import Item, Outfit
from training.sampler import SamplingError, TripletSampler, split_labeled, unlabeled_pool


def test_triplet_invariants_on_synthetic_outfits(synth_root: Path) -> None:
    ds = PolyvoreDataset(synth_root)
    outfits = ds.split("train").outfits
    sampler = TripletSampler(outfits, ds.items, fallback_items=ds.items)
    by_id = {o.set_id: set(o.item_ids) for o in outfits}
    labeled_items = {i for o in outfits for i in o.item_ids}
    triplets = sampler.sample(500, np.random.default_rng(0))
    assert len(triplets) == 500
    for a, p, n in triplets:
        assert any(a in s and p in s for s in by_id.values()), "anchor and positive share an outfit"
        assert ds.items[a].category != ds.items[p].category
        assert ds.items[n].category == ds.items[p].category
        assert all(not (a in s and p in s and n in s) for s in by_id.values())
        assert n in labeled_items
    # Seeded: the same generator state gives the same triplets.
    assert sampler.sample(50, np.random.default_rng(1)) == sampler.sample(50, np.random.default_rng(1))


def test_negative_is_never_in_the_anchor_positive_outfit() -> None:
    items = {f"{c}{k}": Item(f"{c}{k}", c) for c in "ab" for k in range(3)}
    outfits = [Outfit("s1", ("a0", "b0"), (1, 2)), Outfit("s2", ("a1", "b1"), (1, 2))]
    sampler = TripletSampler(outfits, items, fallback_items=items)
    for a, p, n in sampler.sample(200, np.random.default_rng(2)):
        outfit = next(o for o in outfits if a in o.item_ids)
        assert n not in outfit.item_ids and items[n].category == items[p].category


def test_sampler_rejects_single_category_outfits() -> None:
    items = {f"a{k}": Item(f"a{k}", "tops") for k in range(4)}
    with pytest.raises(SamplingError, match="two different categories"):
        TripletSampler([Outfit("s", ("a0", "a1"), (1, 2))], items)


def test_split_labeled_fraction_seed_and_bad_fraction() -> None:
    outfits = [Outfit(str(k), (f"i{k}",), (1,)) for k in range(200)]
    lab, unl = split_labeled(outfits, 0.05, seed=3)
    assert len(lab) == 10 and len(unl) == 190
    assert {o.set_id for o in lab} == {o.set_id for o in split_labeled(outfits, 0.05, seed=3)[0]}
    assert {o.set_id for o in lab} != {o.set_id for o in split_labeled(outfits, 0.05, seed=4)[0]}
    assert len(split_labeled(outfits, 1.0, seed=0)[0]) == 200
    assert len(split_labeled(outfits, 0.0001, seed=0)[0]) == 1
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        split_labeled(outfits, 0.0, seed=0)
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        split_labeled(outfits, 1.5, seed=0)


def test_unlabeled_pool_excludes_labeled_items() -> None:
    lab = [Outfit("l", ("x", "y"), (1, 2))]
    unl = [Outfit("u", ("y", "z"), (1, 2))]
    assert unlabeled_pool(dataset_unlabeled=["w"], unlabeled_outfits=unl, labeled_outfits=lab) == ["w", "z"]
