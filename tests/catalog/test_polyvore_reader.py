"""The reader on a tiny hand-made Polyvore fixture, and its errors on broken datasets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tiny_polyvore import write_tiny

from catalog import DatasetError, PolyvoreDataset
from catalog.stats import dataset_stats


@pytest.fixture()
def tiny(tmp_path: Path) -> Path:
    return write_tiny(tmp_path / "tiny")


def test_reads_items_outfits_tokens_and_answers(tiny: Path) -> None:
    ds = PolyvoreDataset(tiny, "disjoint")
    assert ds.items["b2"].category == "bottoms" and ds.items["b2"].title == "item b2"
    assert ds.categories["3"] == ("Sneakers", "shoes")
    test = ds.split("test")
    assert [o.set_id for o in test.outfits] == ["100", "200", "300"]
    assert test.outfits[1].item_ids == ("t2", "b2", "s1") and test.outfits[1].indices == (1, 3, 4)
    q = test.fitb[0]
    # Tokens resolve through the split's outfits; the right answer is the one from the question's set.
    assert q.question == ("t2", "s1") and q.answers == ("b1", "b2", "b3")
    assert q.correct == 1 and q.blank_position == 2 and q.set_id == "200"
    assert [(c.label, c.item_ids) for c in test.compatibility] == [(1, ("t1", "b1")), (0, ("t2", "b3", "s1"))]
    assert ds.unlabeled_item_ids() == ["u1"]
    assert ds.image_path("u1") == tiny / "images" / "u1.jpg"


def test_stats_are_ok_on_a_good_dataset(tiny: Path) -> None:
    stats = dataset_stats(tiny)
    assert stats["ok"] and stats["problems"] == []
    assert stats["items"] == 9 and stats["items_per_category"] == {"bottoms": 3, "shoes": 3, "tops": 3}
    assert stats["splits"]["test"] == {
        "outfits": 3,
        "fitb_questions": 1,
        "compatibility_lines": 2,
        "compatibility_positive": 1,
    }
    assert stats["unlabeled_items"] == 1


def _break(root: Path, how: str) -> str:
    """Damage the dataset; return the file name the error must mention."""
    if how == "missing_file":
        (root / "nondisjoint" / "valid.json").unlink()
        return "valid.json"
    if how == "malformed_json":
        (root / "nondisjoint" / "fill_in_blank_test.json").write_text('[{"question": ["200_1"')
        return "fill_in_blank_test.json"
    if how == "unknown_token":
        (root / "nondisjoint" / "compatibility_train.txt").write_text("1 100_1 999_9\n")
        return "compatibility_train.txt"
    if how == "unknown_item":
        bad = [{"set_id": "9", "items": [{"item_id": "ghost", "index": 1}]}]
        (root / "nondisjoint" / "test.json").write_text(json.dumps(bad))
        return "test.json"
    if how == "missing_metadata":
        (root / "polyvore_item_metadata.json").unlink()
        return "polyvore_item_metadata.json"
    raise AssertionError(how)


@pytest.mark.parametrize("how", ["missing_file", "malformed_json", "unknown_token", "unknown_item", "missing_metadata"])
def test_broken_dataset_error_names_the_file(tiny: Path, how: str) -> None:
    fname = _break(tiny, how)
    with pytest.raises(DatasetError) as err:
        ds = PolyvoreDataset(tiny, "nondisjoint")
        for split in ("train", "valid", "test"):
            ds.split(split)
    assert fname in str(err.value)
    stats = dataset_stats(tiny, "nondisjoint")
    assert not stats["ok"] and any(fname in p for p in stats["problems"])


def test_missing_image_is_a_problem(tiny: Path) -> None:
    (tiny / "images" / "s2.jpg").unlink()
    stats = dataset_stats(tiny)
    assert not stats["ok"] and stats["missing_images"] == 1
    assert any("s2.jpg" in p for p in stats["problems"])


def test_fitb_with_no_answer_from_the_question_set_is_rejected(tiny: Path) -> None:
    path = tiny / "nondisjoint" / "fill_in_blank_valid.json"
    path.write_text(json.dumps([{"question": ["200_1"], "answers": ["100_1", "300_2"], "blank_position": 1}]))
    with pytest.raises(DatasetError, match="exactly one answer"):
        PolyvoreDataset(tiny).split("valid")


def test_bad_kind_and_root(tmp_path: Path, tiny: Path) -> None:
    with pytest.raises(ValueError, match="split kind"):
        PolyvoreDataset(tiny, "random")
    with pytest.raises(DatasetError, match="does not exist"):
        PolyvoreDataset(tmp_path / "nothing")
