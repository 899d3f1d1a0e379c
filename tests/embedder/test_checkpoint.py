from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from embedder import (
    CheckpointError,
    EmbedderConfig,
    PreprocessConfig,
    build_embedder,
    load_embedder,
    read_model_card,
    save_checkpoint,
)
from embedder.checkpoint import CARD_FILE, WEIGHTS_FILE


@pytest.fixture()
def ckpt(tmp_path: Path) -> Path:
    torch.manual_seed(0)
    model = build_embedder(EmbedderConfig(embed_dim=12, preprocess=PreprocessConfig(image_size=48)))
    save_checkpoint(
        model,
        tmp_path / "ck",
        training_config={"lr": 5e-5},
        metrics={"fitb": 0.5},
        data_fingerprint="abc",
        extra={"note": "x"},
    )
    return tmp_path / "ck"


def test_save_load_roundtrip_keeps_weights_and_card(ckpt: Path) -> None:
    model, card = load_embedder(ckpt)
    assert card.config.embed_dim == 12 and card.config.preprocess.image_size == 48
    assert card.training_config == {"lr": 5e-5} and card.metrics == {"fitb": 0.5}
    assert card.data_fingerprint == "abc" and card.extra == {"note": "x"}
    assert len(card.model_version) == 16
    torch.manual_seed(0)
    fresh = build_embedder(EmbedderConfig(embed_dim=12, preprocess=PreprocessConfig(image_size=48))).eval()
    x = torch.randn(2, 3, 48, 48)
    assert torch.allclose(model(x), fresh(x), atol=1e-6)
    assert not model.training


def test_overwrite_is_atomic_and_leaves_no_temp_dirs(ckpt: Path) -> None:
    before = read_model_card(ckpt).weights_sha256
    model = build_embedder(EmbedderConfig(embed_dim=12, preprocess=PreprocessConfig(image_size=48)))
    save_checkpoint(model, ckpt)
    assert read_model_card(ckpt).weights_sha256 != before
    assert sorted(p.name for p in ckpt.parent.iterdir()) == ["ck"]


def test_corrupt_weights_rejected(ckpt: Path) -> None:
    weights = ckpt / WEIGHTS_FILE
    data = bytearray(weights.read_bytes())
    data[-10] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="sha256"):
        load_embedder(ckpt)


def test_truncated_weights_with_matching_hash_rejected(ckpt: Path) -> None:
    # Even a file whose hash was (maliciously or by accident) updated must fail clearly, not crash.
    weights = ckpt / WEIGHTS_FILE
    weights.write_bytes(weights.read_bytes()[:100])
    card = json.loads((ckpt / CARD_FILE).read_text())
    import hashlib

    card["weights_sha256"] = hashlib.sha256(weights.read_bytes()).hexdigest()
    (ckpt / CARD_FILE).write_text(json.dumps(card))
    with pytest.raises(CheckpointError, match="cannot read weights"):
        load_embedder(ckpt)


def test_mismatched_architecture_rejected(ckpt: Path) -> None:
    card = json.loads((ckpt / CARD_FILE).read_text())
    card["embed_dim"] = 24
    (ckpt / CARD_FILE).write_text(json.dumps(card))
    with pytest.raises(CheckpointError, match="do not match the card"):
        load_embedder(ckpt)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda p: (p / CARD_FILE).unlink(), "model card is missing"),
        (lambda p: (p / CARD_FILE).write_text("{not json"), "malformed"),
        (lambda p: (p / WEIGHTS_FILE).unlink(), "weights file is missing"),
    ],
)
def test_broken_checkpoint_dirs_rejected(ckpt: Path, mutate, message: str) -> None:  # type: ignore[no-untyped-def]
    mutate(ckpt)
    with pytest.raises(CheckpointError, match=message):
        load_embedder(ckpt)


def test_missing_directory_rejected(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="does not exist"):
        load_embedder(tmp_path / "nope")
