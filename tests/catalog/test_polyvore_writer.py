"""The Polyvore writer: what it writes reads back unchanged, in the exact layout of the real files."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest
from PIL import Image

from catalog.errors import DatasetError
from catalog.polyvore import SPLIT_KINDS, SPLITS, PolyvoreDataset
from catalog.polyvore_writer import write_polyvore_dataset
from catalog.stats import dataset_stats
from catalog.types import CompatibilityExample, FITBQuestion, Item, Outfit, SplitData

CATEGORIES = {"1": ("Shirt", "tops"), "2": ("Jeans", "bottoms"), "3": ("Sneakers", "shoes")}
ITEMS = [
    Item(item_id, semantic, cid, title=f"item {item_id}")
    for item_id, cid, semantic in [
        ("t1", "1", "tops"),
        ("t2", "1", "tops"),
        ("t3", "1", "tops"),
        ("b1", "2", "bottoms"),
        ("b2", "2", "bottoms"),
        ("b3", "2", "bottoms"),
        ("s1", "3", "shoes"),
        ("s2", "3", "shoes"),
        ("s3", "3", "shoes"),
        ("u1", "3", "shoes"),  # in no outfit: the unlabeled pool
    ]
]
OUTFITS = [
    Outfit("100", ("t1", "b1", "s1"), (1, 2, 4)),
    Outfit("200", ("t2", "b2", "s2"), (1, 3, 4)),
    Outfit("300", ("t3", "b3", "s3"), (2, 3, 5)),
    Outfit("400", ("t1", "b2"), (1, 2)),  # reuses items of 100 and 200, as Polyvore does
]
FITB = [
    FITBQuestion("100", question=("t1", "s1"), answers=("b2", "b1", "b3"), correct=1, blank_position=2),
    # t1 is also in set 100; as the right answer of set 400 it must be named through 400.
    FITBQuestion("400", question=("b2",), answers=("t1", "t2", "t3"), correct=0, blank_position=1),
]
COMPAT = [
    CompatibilityExample(1, ("t1", "b1", "s1")),
    CompatibilityExample(0, ("t1", "b3", "s2")),
    CompatibilityExample(1, ("t1", "b2")),
]


def _splits(kind: str) -> dict[str, SplitData]:
    return {name: SplitData(kind, name, list(OUTFITS), list(FITB), list(COMPAT)) for name in SPLITS}


def _write(root: Path, **overrides: object) -> None:
    args: dict[str, object] = {
        "items": ITEMS,
        "categories": CATEGORIES,
        "splits": {kind: _splits(kind) for kind in SPLIT_KINDS},
    }
    write_polyvore_dataset(root, **{**args, **overrides})  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", SPLIT_KINDS)
def test_round_trip_through_the_reader(tmp_path: Path, kind: str) -> None:
    _write(tmp_path)
    ds = PolyvoreDataset(tmp_path, kind)
    assert ds.categories == CATEGORIES
    assert {i: (it.category, it.category_id, it.title) for i, it in ds.items.items()} == {
        it.item_id: (it.category, it.category_id, it.title) for it in ITEMS
    }
    for name in SPLITS:
        assert ds.split(name) == SplitData(kind, name, OUTFITS, FITB, COMPAT)
    assert ds.unlabeled_item_ids() == ["u1"]
    stats = dataset_stats(tmp_path, kind, check_images=False)
    assert stats["ok"], stats["problems"]


def test_files_follow_the_published_layout(tmp_path: Path) -> None:
    _write(tmp_path, item_extra={"t1": {"description": "BLUE SHIRT", "related": ["t2"]}})
    assert (tmp_path / "categories.csv").read_bytes() == b"1,Shirt,tops\r\n2,Jeans,bottoms\r\n3,Sneakers,shoes\r\n"
    meta = json.loads((tmp_path / "polyvore_item_metadata.json").read_text())
    keys = {"semantic_category", "category_id", "title", "url_name", "description", "catgeories", "related"}
    assert all(set(m) == keys for m in meta.values())
    assert meta["t1"]["description"] == "BLUE SHIRT" and meta["t1"]["related"] == ["t2"]
    assert meta["b1"]["catgeories"] == ["bottoms", "Jeans"]
    base = tmp_path / "nondisjoint"
    assert json.loads((base / "train.json").read_text())[0] == {
        "set_id": "100",
        "items": [{"item_id": "t1", "index": 1}, {"item_id": "b1", "index": 2}, {"item_id": "s1", "index": 4}],
    }
    assert json.loads((base / "fill_in_blank_test.json").read_text()) == [
        {"question": ["100_1", "100_4"], "answers": ["200_3", "100_2", "300_3"], "blank_position": 2},
        {"question": ["400_2"], "answers": ["400_1", "200_1", "300_2"], "blank_position": 1},
    ]
    # Kept items are named through their own outfit; a swapped-in item through any outfit holding it.
    assert (base / "compatibility_valid.txt").read_text() == "1 100_1 100_2 100_4\n0 100_1 300_3 200_4\n1 400_1 400_2\n"
    with (base / "typespaces.p").open("rb") as f:
        assert pickle.load(f) == [("bottoms", "shoes"), ("bottoms", "tops"), ("shoes", "tops")]
    leftovers = [p for p in tmp_path.rglob("*") if p.name.startswith(".")]
    assert not leftovers, "temporary files are renamed into place"


def test_rewriting_gives_the_same_bytes(tmp_path: Path) -> None:
    _write(tmp_path / "a")
    _write(tmp_path / "b")
    _write(tmp_path / "b")
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    assert files and all((tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes() for f in files)


def test_images_lying_elsewhere_are_copied(tmp_path: Path) -> None:
    src = tmp_path / "src" / "photo.jpg"
    src.parent.mkdir()
    Image.new("RGB", (8, 8), (200, 10, 10)).save(src)
    items = [Item(it.item_id, it.category, it.category_id, it.title, image=src) for it in ITEMS]
    _write(tmp_path / "out", items=items)
    assert (tmp_path / "out" / "images" / "u1.jpg").read_bytes() == src.read_bytes()
    assert dataset_stats(tmp_path / "out")["ok"]


def test_a_wrong_answer_must_appear_in_another_outfit(tmp_path: Path) -> None:
    bad = FITBQuestion("100", question=("t1", "s1"), answers=("b1", "b3", "u1"), correct=0, blank_position=2)
    splits = {"nondisjoint": {"test": SplitData("nondisjoint", "test", OUTFITS, [bad], [])}}
    with pytest.raises(DatasetError, match="'u1' appears in no other outfit"):
        _write(tmp_path, splits=splits)


def test_the_right_answer_must_be_in_the_question_outfit(tmp_path: Path) -> None:
    bad = FITBQuestion("300", question=("t3", "s3"), answers=("b1", "b2"), correct=0, blank_position=2)
    splits = {"nondisjoint": {"test": SplitData("nondisjoint", "test", OUTFITS, [bad], [])}}
    with pytest.raises(DatasetError, match="'b1' is not in outfit '300'"):
        _write(tmp_path, splits=splits)


def test_a_question_needs_items(tmp_path: Path) -> None:
    bad = FITBQuestion("400", question=(), answers=("t1", "t2"), correct=0, blank_position=1)
    splits = {"nondisjoint": {"test": SplitData("nondisjoint", "test", OUTFITS, [bad], [])}}
    with pytest.raises(DatasetError, match="no question items"):
        _write(tmp_path, splits=splits)


def test_outfits_may_only_name_known_items(tmp_path: Path) -> None:
    splits = {"disjoint": {"train": SplitData("disjoint", "train", [Outfit("9", ("t1", "zz"), (1, 2))])}}
    with pytest.raises(DatasetError, match="zz"):
        _write(tmp_path, splits=splits)


def test_compatibility_items_must_be_in_the_split(tmp_path: Path) -> None:
    line = CompatibilityExample(0, ("t1", "u1"))
    splits = {"disjoint": {"train": SplitData("disjoint", "train", OUTFITS, [], [line])}}
    with pytest.raises(DatasetError, match="'u1' is in no outfit"):
        _write(tmp_path, splits=splits)


def test_unlisted_category_ids_and_unknown_kinds_are_refused(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="category_id '7'"):
        _write(tmp_path, items=[*ITEMS, Item("x", "hats", "7")])
    with pytest.raises(ValueError, match="split kind"):
        _write(tmp_path, splits={"random": {}})
    with pytest.raises(ValueError, match="splits must be among"):
        _write(tmp_path, splits={"disjoint": {"dev": SplitData("disjoint", "dev")}})
