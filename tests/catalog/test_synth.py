"""The synthetic benchmark: determinism, Polyvore round-trip, and the properties its splits promise."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from catalog.polyvore import SPLIT_KINDS, SPLITS, PolyvoreDataset
from catalog.stats import dataset_stats
from catalog.synth import META_FILE, SynthSummary, generate_synthetic
from catalog.synth_themes import ThemeConfig, category_table
from catalog.types import CompatibilityExample, Outfit, SplitData
from embedder.colorhist import color_histogram_features
from embedder.image_io import load_image_file
from training.metrics import evaluate_split

SMALL = {"items": 320, "outfits": 140, "seed": 5, "image_size": 48}
TINY = {"items": 120, "outfits": 40, "image_size": 32}
Looks = dict[str, dict[str, Any]]


@dataclass(frozen=True)
class SmallSynth:
    root: Path
    summary: SynthSummary
    meta: dict[str, Any]  # synth_meta.json: per-item ground truth


@pytest.fixture(scope="module")
def small_synth(tmp_path_factory: pytest.TempPathFactory) -> SmallSynth:
    root = tmp_path_factory.mktemp("catalog_synth") / "data"
    summary = generate_synthetic(root, **SMALL)  # type: ignore[arg-type]
    return SmallSynth(root, summary, json.loads((root / META_FILE).read_text(encoding="utf-8")))


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_gives_identical_files_and_another_seed_does_not(tmp_path: Path) -> None:
    a = _files(generate_synthetic(tmp_path / "a", seed=1, **TINY).root)
    # The twin run is another process with another hash seed: set and dict orders must not leak into files.
    code = (
        f"from catalog.synth import generate_synthetic; generate_synthetic({str(tmp_path / 'b')!r}, seed=1, **{TINY!r})"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=Path(__file__).parents[2], timeout=300)
    b = _files(tmp_path / "b")
    c = _files(generate_synthetic(tmp_path / "c", seed=2, **TINY).root)
    assert a == b
    assert a.keys() - c.keys() or any(a[k] != c[k] for k in a)
    assert a["nondisjoint/train.json"] != c["nondisjoint/train.json"]
    shared_images = [k for k in a.keys() & c.keys() if k.startswith("images/")]
    assert any(a[k] != c[k] for k in shared_images)


def test_regenerating_replaces_the_dataset_but_never_foreign_data(tmp_path: Path) -> None:
    out = tmp_path / "data"
    generate_synthetic(out, seed=1, **TINY)
    (out / "stale.txt").write_text("from an earlier run")
    generate_synthetic(out, seed=1, **TINY)
    assert not (out / "stale.txt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]  # no temporary directories left behind
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="not a synthetic dataset"):
        generate_synthetic(foreign, seed=1, **TINY)
    assert (foreign / "notes.txt").read_text() == "keep me"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"outfits": 5}, "outfits=5"), ({"image_size": 8}, "image_size=8"), ({"unlabeled_fraction": 1.0}, "unlabeled")],
)
def test_bad_arguments_are_refused(tmp_path: Path, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        generate_synthetic(tmp_path / "x", **{**TINY, **kwargs})


def test_the_cli_minimum_size_still_generates(tmp_path: Path) -> None:
    summary = generate_synthetic(tmp_path / "d", items=50, outfits=20, seed=0, image_size=32)
    assert all(dataset_stats(summary.root, kind)["ok"] for kind in SPLIT_KINDS)


@pytest.mark.parametrize("kind", SPLIT_KINDS)
def test_reader_loads_both_kinds_and_matches_the_summary(small_synth: SmallSynth, kind: str) -> None:
    stats = dataset_stats(small_synth.root, kind)
    assert stats["ok"], stats["problems"]
    assert stats["items"] == SMALL["items"]
    ds = PolyvoreDataset(small_synth.root, kind)
    expected = small_synth.summary.splits[kind]
    for name in SPLITS:
        split = ds.split(name)
        assert len(split.outfits) == expected[name]["outfits"]
        assert len(split.fitb) == expected[name]["fitb"]
        assert len(split.compatibility) == expected[name]["compatibility"]
        assert sum(c.label for c in split.compatibility) == len(split.outfits)  # one positive per outfit
    assert sum(expected[s]["outfits"] for s in SPLITS) == SMALL["outfits"]
    assert ds.categories == category_table()
    assert {it.category for it in ds.items.values()} >= {"tops", "bottoms", "shoes", "bags", "outerwear"}


def test_outfits_are_one_theme_across_distinct_categories(small_synth: SmallSynth) -> None:
    looks = small_synth.meta["items"]
    for o in PolyvoreDataset(small_synth.root).split("train").outfits:
        categories = [looks[i]["category"] for i in o.item_ids]
        assert 3 <= len(o.item_ids) <= 5
        assert len(set(categories)) == len(categories)
        assert len({looks[i]["theme"] for i in o.item_ids}) == 1
        assert small_synth.meta["outfit_themes"][o.set_id] == looks[o.item_ids[0]]["theme"]


def test_silhouette_is_independent_of_theme(small_synth: SmallSynth) -> None:
    themes_per_shape: dict[str, set[str]] = {}
    for look in small_synth.meta["items"].values():
        themes_per_shape.setdefault(look["shape"], set()).add(look["theme"])
    assert all(len(t) >= 2 for t in themes_per_shape.values())


def test_twin_themes_share_a_palette_but_not_pattern_rules(small_synth: SmallSynth) -> None:
    themes = small_synth.meta["themes"]
    twins = ThemeConfig().twins
    for k in range(0, len(themes), twins):
        group = themes[k : k + twins]
        assert len({tuple(t["palette"]) for t in group}) == 1
        for cat in ("tops", "bottoms", "shoes", "bags"):
            assert len({t["patterns"][cat] for t in group}) == twins


def _swapped(negative: CompatibilityExample, source: Outfit) -> list[str]:
    return [n for n, i in zip(negative.item_ids, source.item_ids, strict=True) if n != i]


def _check_fitb_and_negatives(split: SplitData, looks: Looks, eligible: set[str] | None) -> None:
    """Answers and swapped-in items: same category, other theme, from other outfits of the split, eligible."""
    by_set = {o.set_id: o for o in split.outfits}
    category = {i: look["category"] for i, look in looks.items()}
    in_split = {i for o in split.outfits for i in o.item_ids}
    for q in split.fitb:
        o = by_set[q.set_id]
        right = q.answers[q.correct]
        assert o.item_ids[q.blank_position - 1] == right
        assert q.question == tuple(i for i in o.item_ids if i != right)
        assert len(set(q.answers)) == 4
        assert {category[a] for a in q.answers} == {category[right]}
        for wrong in (a for k, a in enumerate(q.answers) if k != q.correct):
            assert wrong in in_split and wrong not in o.item_ids
            assert looks[wrong]["theme"] != looks[right]["theme"]
        if eligible is not None:
            assert set(q.answers) <= eligible
    by_categories: dict[tuple[str, ...], list[Outfit]] = {}
    for o in split.outfits:
        by_categories.setdefault(tuple(category[i] for i in o.item_ids), []).append(o)
    negatives = [c for c in split.compatibility if c.label == 0]
    assert negatives
    for neg in negatives:
        cats = tuple(category[i] for i in neg.item_ids)
        assert cats in by_categories, "a negative keeps its outfit's categories, position by position"
        assert set(neg.item_ids) <= in_split
        sources = [
            o
            for o in by_categories[cats]
            if _swapped(neg, o) and (eligible is None or set(_swapped(neg, o)) <= eligible)
        ]
        assert sources, f"no outfit of the split explains negative {neg.item_ids}"
        assert len({looks[i]["theme"] for i in neg.item_ids}) >= 2


@pytest.mark.parametrize("name", SPLITS)
def test_nondisjoint_fitb_and_negatives_swap_within_a_category(small_synth: SmallSynth, name: str) -> None:
    split = PolyvoreDataset(small_synth.root, "nondisjoint").split(name)
    _check_fitb_and_negatives(split, small_synth.meta["items"], None)


def test_disjoint_valid_and_test_ask_only_about_items_unseen_in_train(small_synth: SmallSynth) -> None:
    ds = PolyvoreDataset(small_synth.root, "disjoint")
    train_items = ds.outfit_item_ids(["train"])
    cold = set(small_synth.meta["cold_items"])
    assert cold and not cold & train_items
    asked = 0
    for name in ("valid", "test"):
        split = ds.split(name)
        assert all(set(o.item_ids) & cold for o in split.outfits), "every held-out outfit holds a cold item"
        _check_fitb_and_negatives(split, small_synth.meta["items"], cold)
        asked += len(split.fitb)
    assert asked > 0
    train = ds.split("train")
    _check_fitb_and_negatives(train, small_synth.meta["items"], None)


def test_unlabeled_pool_is_in_no_outfit_but_has_metadata_and_images(small_synth: SmallSynth) -> None:
    looks = small_synth.meta["items"]
    pool = {i for i, look in looks.items() if not look["labeled"]}
    assert len(pool) == small_synth.summary.unlabeled_items > 0
    for kind in SPLIT_KINDS:
        ds = PolyvoreDataset(small_synth.root, kind)
        assert not pool & ds.outfit_item_ids()
        assert pool <= set(ds.unlabeled_item_ids())
        assert all(i in ds.items and ds.image_path(i).is_file() for i in pool)


def test_images_are_product_photos_of_the_requested_size(small_synth: SmallSynth) -> None:
    ds = PolyvoreDataset(small_synth.root)
    ids = sorted(ds.items)
    assert len(ids) == SMALL["items"] and all(i.startswith("s") for i in ids)
    for item_id in ids[:: max(1, len(ids) // 40)]:
        with Image.open(ds.image_path(item_id)) as im:
            assert im.format == "JPEG"
            assert im.size == (SMALL["image_size"], SMALL["image_size"])
            pixels = np.asarray(im.convert("RGB"), dtype=np.int32)
        corners = pixels[[0, 0, -1, -1], [0, -1, 0, -1]]
        assert corners.min() > 215, "studio background is off-white"
        product = np.abs(pixels - corners.mean(axis=0)).max(axis=2) > 20  # cream items on cream paper too
        assert 0.03 < product.mean() < 0.9, "the product covers part of the picture"


def test_typespaces_list_the_category_pairs_of_train_outfits(small_synth: SmallSynth) -> None:
    looks = small_synth.meta["items"]
    for kind in SPLIT_KINDS:
        with (small_synth.root / kind / "typespaces.p").open("rb") as f:
            spaces = pickle.load(f)
        outfits = PolyvoreDataset(small_synth.root, kind).split("train").outfits
        expected = {
            tuple(sorted((looks[a]["category"], looks[b]["category"])))
            for o in outfits
            for a in o.item_ids
            for b in o.item_ids
            if a != b
        }
        assert spaces == sorted(expected)


@pytest.mark.slow
@pytest.mark.parametrize("kind", SPLIT_KINDS)
def test_colour_alone_beats_chance_but_leaves_room(tmp_path_factory: pytest.TempPathFactory, kind: str) -> None:
    """At the default size, colour histograms score well above chance (25% / 0.5) and far from perfect."""
    root = tmp_path_factory.getbasetemp() / "synth_default"
    if not (root / META_FILE).is_file():
        generate_synthetic(root, seed=0)
    ds = PolyvoreDataset(root, kind)
    test = ds.split("test")
    # The project's own baseline and metrics, exactly as `evaluate --features colorhist` runs them.
    ids = sorted(test.item_ids())
    feats = color_histogram_features(load_image_file(ds.image_path(i)) for i in ids)
    result = evaluate_split(test, ids, feats)
    fitb, auc = result["fitb_cosine"], result["auc"]
    assert 0.38 < fitb < 0.68, fitb
    assert 0.58 < auc < 0.85, auc
