"""The category head: a fine-tuned layer4 branch on the embedder's trunk, stored beside the checkpoint,
checked on load, exported as a second output."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from embedder.category_head import (
    HEAD_FILE,
    HEAD_WEIGHTS,
    CategorisingEmbedder,
    CategoryBranch,
    branch_stages,
    head_sha256,
    load_category_head,
    save_category_head,
)
from embedder.checkpoint import CheckpointError, load_embedder, read_model_card
from training.category_head import FineClasses, HeadFitConfig, branch_probabilities, fit_branch

CLASSES = ("bags", "shoes", "tops")


def _maps(n: int, seed: int) -> tuple[torch.Tensor, np.ndarray]:
    """layer3-shaped maps whose class shows as a shifted block of channels."""
    gen = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 3, (n,), generator=gen)
    x = torch.randn(n, 256, 2, 2, generator=gen)
    for c in range(3):
        x[y == c, c * 80:(c + 1) * 80] += 1.5
    return x, y.numpy()


def test_branch_shares_the_trunk_and_learns_categories(random_checkpoint: Path) -> None:
    model, _ = load_embedder(random_checkpoint)
    x_train, y_train = _maps(160, 0)
    x_test, y_test = _maps(90, 1)
    # Six fine classes, two per category: the branch scores them and sums each category's pair.
    fine = FineClasses(tuple(f"{c}/{k}" for c in CLASSES for k in "ab"), (0, 0, 1, 1, 2, 2), np.zeros(0))
    y_fine = y_train * 2 + (x_train[:, 255, 0, 0] > 0).numpy()
    cfg = HeadFitConfig(epochs=3, batch_size=32, start=3)
    branch = fit_branch(model, [x_train, x_train.flip(-1)], y_fine, fine, 3, cfg)
    probs = branch_probabilities(branch, x_test)
    assert probs.shape == (90, 3) and probs.sum(axis=1) == pytest.approx(np.ones(90), abs=1e-5)
    assert float(np.mean(probs.argmax(axis=1) == y_test)) > 0.9
    # The embedding through the categorising wrapper is the embedder's own, unchanged.
    images = torch.randn(3, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    with torch.inference_mode():
        want = model(images, normalize=True)
        for b in (branch, CategoryBranch(3, start=2, stages=branch_stages(model, 2)).eval()):
            emb, p = CategorisingEmbedder(model, b).eval()(images)
            assert torch.equal(emb, want) and p.shape == (3, 3)
        with pytest.raises(ValueError, match="layer2 or layer3"):
            model.trunk(images, upto=4)


def test_save_load_roundtrip_and_refusals(tmp_path: Path, random_checkpoint: Path) -> None:
    ckpt = tmp_path / "ckpt"
    shutil.copytree(random_checkpoint, ckpt)
    version = read_model_card(ckpt).model_version
    assert load_category_head(ckpt, model_version=version) is None and head_sha256(ckpt) == ""
    torch.manual_seed(0)
    branch = CategoryBranch(3).eval()
    save_category_head(ckpt, branch, CLASSES, model_version=version, metrics={"held_out_accuracy": 0.5})
    head = load_category_head(ckpt, model_version=version)
    assert head is not None and head.classes == CLASSES and head.sha256 == head_sha256(ckpt)
    maps, _ = _maps(5, 3)
    assert branch_probabilities(head.branch, maps) == pytest.approx(branch_probabilities(branch, maps), abs=1e-6)
    assert head.pick(np.array([0.1, 0.7, 0.2])) == ("shoes", pytest.approx(0.7))
    with pytest.raises(ValueError):
        save_category_head(ckpt, branch, ("tops",), model_version=version)
    deeper = CategoryBranch(3, start=2).eval()  # reads layer2 maps: its start survives the round trip
    save_category_head(ckpt, deeper, CLASSES, model_version=version)
    back = load_category_head(ckpt, model_version=version)
    assert back is not None and back.branch.start == 2
    maps2 = torch.randn(2, 128, 8, 8, generator=torch.Generator().manual_seed(4))
    assert branch_probabilities(back.branch, maps2) == pytest.approx(branch_probabilities(deeper, maps2), abs=1e-6)
    save_category_head(ckpt, branch, CLASSES, model_version=version)
    with pytest.raises(CheckpointError, match="fitted on model"):
        load_category_head(ckpt, model_version="other")
    weights = (ckpt / HEAD_WEIGHTS).read_bytes()
    (ckpt / HEAD_WEIGHTS).write_bytes(weights[:-8] + b"\0" * 8)  # swapped or corrupt weights
    with pytest.raises(CheckpointError, match="does not match"):
        load_category_head(ckpt, model_version=version)
    with pytest.raises(CheckpointError, match="does not match"):  # checked without building the branch too
        load_category_head(ckpt, model_version=version, with_weights=False)
    (ckpt / HEAD_WEIGHTS).write_bytes(weights)
    light = load_category_head(ckpt, model_version=version, with_weights=False)  # what an export-serving engine keeps
    assert light is not None and light.branch is None and (light.classes, light.sha256) == (CLASSES, head_sha256(ckpt))
    raw = json.loads((ckpt / HEAD_FILE).read_text())
    for broken in ("{not json", "[]", json.dumps({**raw, "format": 1}), json.dumps({**raw, "classes": ["x"]}),
                   json.dumps({**raw, "start": 4}),
                   json.dumps({k: v for k, v in raw.items() if k != "weights_sha256"})):
        (ckpt / HEAD_FILE).write_text(broken)
        with pytest.raises(CheckpointError, match="category head is unreadable"):
            load_category_head(ckpt, model_version=version)


def test_export_carries_the_head_and_a_refit_makes_it_stale(tmp_path: Path, random_checkpoint: Path) -> None:
    """fp32 export with a head: two outputs that match torch in ONNX Runtime and OpenVINO; a head saved after
    the export (or removed) makes the export stale, refused with the command that fixes it."""
    from embedder.backend import load_backend
    from embedder.onnx_export import ExportError, export_onnx, verify_export

    ckpt = tmp_path / "ckpt"
    shutil.copytree(random_checkpoint, ckpt)
    version = read_model_card(ckpt).model_version
    torch.manual_seed(1)
    save_category_head(ckpt, CategoryBranch(3).eval(), CLASSES, model_version=version)
    info = export_onnx(ckpt)
    assert info.category_output == "category_probs" and info.category_head_sha256 == head_sha256(ckpt)
    assert info.parity["max_category_probability_gap"] < 1e-3
    batch = np.random.default_rng(0).standard_normal((4, 3, 64, 64)).astype(np.float32)
    ref = load_backend(ckpt, backend="torch")
    want_emb, want_p = ref.embed_with_categories(batch)
    assert want_p is not None and ref.has_categories
    for name in ("onnx", "openvino"):
        got = load_backend(ckpt, backend=name)
        emb, p = got.embed_with_categories(batch)
        assert got.has_categories and p is not None
        assert emb == pytest.approx(want_emb, abs=1e-4) and p == pytest.approx(want_p, abs=1e-4)
        assert got.embed_batch(batch) == pytest.approx(want_emb, abs=1e-4)
    torch.manual_seed(2)
    save_category_head(ckpt, CategoryBranch(3).eval(), CLASSES, model_version=version)
    with pytest.raises(ExportError, match=r"stale: exported with category head .*re-run `outfit-compat export"):
        verify_export(ckpt, "fp32")
    (ckpt / HEAD_FILE).unlink()
    with pytest.raises(ExportError, match="but the checkpoint has no category head"):
        verify_export(ckpt, "fp32")
