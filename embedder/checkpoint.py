"""Checkpoints: a directory with `model.safetensors` and `model_card.json` (config, provenance, sha256).

The card carries the preprocessing, so index and service only ever call `load_embedder(path)`.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from embedder.config import EmbedderConfig
from embedder.files import sha256_file
from embedder.model import Embedder

WEIGHTS_FILE = "model.safetensors"
CARD_FILE = "model_card.json"
CARD_FORMAT = 1


class CheckpointError(ValueError):
    """A checkpoint is missing, corrupt, or does not match its model card."""


@dataclass
class ModelCard:
    """Everything needed to rebuild, trust and describe a checkpoint."""

    config: EmbedderConfig
    weights_sha256: str = ""
    backbone_weights: str = "none"
    training_config: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    data_fingerprint: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    created_at: str = ""
    torch_version: str = ""

    @property
    def model_version(self) -> str:
        """Short content id of the weights: cache keys and index manifests are tied to it."""
        return self.weights_sha256[:16]

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": CARD_FORMAT,
            "architecture": self.config.arch,
            "embed_dim": self.config.embed_dim,
            "preprocess": self.config.preprocess.to_dict(),
            "weights_file": WEIGHTS_FILE,
            "weights_sha256": self.weights_sha256,
            "backbone_weights": self.backbone_weights,
            "training_config": self.training_config,
            "metrics": self.metrics,
            "data_fingerprint": self.data_fingerprint,
            "extra": self.extra,
            "created_at": self.created_at,
            "torch_version": self.torch_version,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelCard:
        if d.get("format") != CARD_FORMAT:
            raise CheckpointError(f"model card format {d.get('format')!r} is not supported (expected {CARD_FORMAT})")
        config = EmbedderConfig.from_dict(
            {"arch": d["architecture"], "embed_dim": d["embed_dim"], "preprocess": d["preprocess"]}
        )
        return cls(
            config=config,
            weights_sha256=str(d["weights_sha256"]),
            backbone_weights=str(d.get("backbone_weights", "none")),
            training_config=dict(d.get("training_config", {})),
            metrics=dict(d.get("metrics", {})),
            data_fingerprint=str(d.get("data_fingerprint", "")),
            extra=dict(d.get("extra", {})),
            created_at=str(d.get("created_at", "")),
            torch_version=str(d.get("torch_version", "")),
        )


def save_checkpoint(
    model: Embedder,
    path: Path | str,
    *,
    backbone_weights: str = "none",
    training_config: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
    data_fingerprint: str = "",
    extra: dict[str, Any] | None = None,
) -> ModelCard:
    """Write the checkpoint directory atomically (build beside it, then swap it in)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
        save_file(state, str(tmp / WEIGHTS_FILE))
        card = ModelCard(
            config=model.config,
            weights_sha256=sha256_file(tmp / WEIGHTS_FILE),
            backbone_weights=backbone_weights,
            training_config=training_config or {},
            metrics=metrics or {},
            data_fingerprint=data_fingerprint,
            extra=extra or {},
            created_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            torch_version=torch.__version__,
        )
        (tmp / CARD_FILE).write_text(json.dumps(card.to_dict(), indent=2, sort_keys=True), encoding="utf-8")
        old = path.with_name(f".{path.name}.old")
        if path.exists():
            if old.exists():
                shutil.rmtree(old)
            os.replace(path, old)
        os.replace(tmp, path)
        if old.exists():
            shutil.rmtree(old)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return card


def read_model_card(path: Path | str) -> ModelCard:
    """Read and validate the card without loading weights (cheap; for manifests and health checks)."""
    path = Path(path)
    card_path = path / CARD_FILE
    if not path.is_dir():
        raise CheckpointError(f"{path}: checkpoint directory does not exist")
    if not card_path.is_file():
        raise CheckpointError(f"{card_path}: model card is missing; is {path} a checkpoint directory?")
    try:
        raw = json.loads(card_path.read_text(encoding="utf-8"))
        return ModelCard.from_dict(raw)
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
        if isinstance(e, CheckpointError):
            raise
        raise CheckpointError(f"{card_path}: model card is malformed ({type(e).__name__}: {e})") from e


def load_embedder(path: Path | str, *, device: str | torch.device = "cpu") -> tuple[Embedder, ModelCard]:
    """Load a checkpoint in eval mode after verifying the weights against the card's sha256."""
    path = Path(path)
    card = read_model_card(path)
    weights = path / WEIGHTS_FILE
    if not weights.is_file():
        raise CheckpointError(f"{weights}: weights file is missing")
    actual = sha256_file(weights)
    if actual != card.weights_sha256:
        raise CheckpointError(
            f"{weights}: sha256 {actual[:16]}… does not match the model card ({card.weights_sha256[:16]}…); "
            "the file is corrupt or was replaced"
        )
    try:
        state = load_file(str(weights), device="cpu")
    except (SafetensorError, OSError) as e:
        raise CheckpointError(f"{weights}: cannot read weights: {e}") from e
    model = Embedder(card.config)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise CheckpointError(f"{weights}: weights do not match the card's architecture: {e}") from e
    model.eval()
    return model.to(device), card
