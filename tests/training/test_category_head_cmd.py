"""`outfit-compat category-head` on the synthetic catalog: head written beside the weights, honest figures."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from embedder.category_head import load_category_head
from embedder.checkpoint import read_model_card
from outfit_compat.cli import main
from training.category_head import MIN_FINE_ITEMS, FineClasses, accuracy, neighbour_vote, worth_storing


def test_neighbour_vote_and_accuracy_by_hand() -> None:
    train = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]])
    assert neighbour_vote(train, ["a", "a", "b"], np.array([[1.0, 0.0], [0.0, 1.0]]), k=1) == ["a", "b"]
    # k=3: two 'a' votes outweigh one closer 'b'
    assert neighbour_vote(train, ["a", "a", "b"], np.array([[0.2, 1.0]]), k=3) == ["a"]
    got = accuracy(["a", "b", "b"], ["a", "a", "b"])
    assert got["accuracy"] == round(2 / 3, 4) and got["per_category"] == {"a": 0.5, "b": 1.0} and got["n"] == 3


def test_command_writes_head_and_report(tmp_path: Path, synth_root: Path, random_checkpoint: Path) -> None:
    ckpt = tmp_path / "ckpt"
    shutil.copytree(random_checkpoint, ckpt)
    report = tmp_path / "report.json"
    argv = ["category-head", str(ckpt), "--data", str(synth_root), "--report", str(report), "--epochs", "1", "--force"]
    assert main(argv) == 0
    figures = json.loads(report.read_text())
    assert figures["stored"] is True and figures["head_file"] == str(ckpt / "category_head.json")
    head = load_category_head(ckpt, model_version=read_model_card(ckpt).model_version)
    assert head is not None and set(head.classes) == set(figures["categories"])
    assert figures["items"] == sum(figures["categories"].values()) == 300 and figures["fit"]["epochs"] == 1
    assert 0 < figures["test_items"] < 300 and figures["held_out_head"]["n"] == figures["test_items"]
    assert head.metrics["held_out_accuracy"] == figures["held_out_head"]["accuracy"]
    for key in ("held_out_head", "held_out_neighbour_vote", "majority_class"):
        assert 0.0 <= figures[key]["accuracy"] <= 1.0
    with pytest.raises(SystemExit, match="--epochs must be >= 1"):
        main(["category-head", str(ckpt), "--data", str(synth_root), "--epochs", "0"])


def test_fine_classes_pool_small_sub_categories_into_their_category() -> None:
    labels = ["tops"] * 30 + ["shoes"] * 25
    fine = ["shirt"] * 22 + ["vest"] * 8 + ["boot"] * 25
    train = np.ones(55, dtype=bool)
    train[:3] = False  # 19 training shirts: fewer than MIN_FINE_ITEMS, so pooled as "tops"
    got = FineClasses.of(labels, fine, ("shoes", "tops"), train, use_fine=True)
    assert MIN_FINE_ITEMS == 20 and got.names == ("shoes", "shoes/boot", "tops")
    assert got.to_class == (0, 0, 1) and list(got.of_item[[0, 29, 30]]) == [2, 2, 1]
    plain = FineClasses.of(labels, fine, ("shoes", "tops"), train, use_fine=False)
    assert plain.names == ("shoes", "tops") and plain.to_class == (0, 1)


def test_a_head_no_better_than_the_vote_is_not_stored() -> None:
    def report(head: float, vote: float) -> dict[str, dict[str, float]]:
        return {"held_out_head": {"accuracy": head}, "held_out_neighbour_vote": {"accuracy": vote}}

    assert worth_storing(report(0.9, 0.6)) and not worth_storing(report(0.25, 0.46))
    assert not worth_storing(report(0.5, 0.5))
