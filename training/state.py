"""The resume state (a torch file in the run dir, separate from the product checkpoint)."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from embedder.files import atomic_path
from training.config import ConfigError, TrainConfig

STATE_FILE = "state.pt"
# Options a resumed run may change: the step budget, logging, and where it runs.
RESUMABLE_CHANGES = frozenset({"epochs", "max_steps", "log_every", "checkpoint_every", "workers", "device",
                               "tsne_points", "eval_batch"})


def rng_state() -> dict[str, Any]:
    return {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])


def save_state(path: Path, state: dict[str, Any]) -> None:
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_state(path: Path, config: TrainConfig) -> dict[str, Any]:
    """Read a resume state and check it belongs to a compatible configuration."""
    if not path.is_file():
        raise FileNotFoundError(f"--resume: no resume state at {path}; train once without --resume first")
    state: dict[str, Any] = torch.load(path, map_location="cpu", weights_only=False)
    saved = state["config"]
    diff = sorted(k for k, v in config.to_dict().items() if saved.get(k) != v and k not in RESUMABLE_CHANGES)
    if diff:
        raise ConfigError(f"--resume: the saved run used different {diff}; start a new run directory instead")
    return state
