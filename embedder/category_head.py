"""The category head: which category an uploaded photo shows (issue 14).

A branch of the embedder: fine-tuned copies of ResNet-18's later stages (layer3 and layer4, or layer4 alone)
plus a linear layer, reading the embedder's frozen layer2 (layer3) maps. The compatibility embedding pulls an
outfit's items of different categories together by design, so linear probes on it, or on the pooled backbone
features, tell categories apart poorly (docs/SERVICE.md); the branch shares the trunk, costs those stages once
more per image and leaves the embedding bit for bit unchanged.

Stored beside the weights as `category_head.safetensors` plus `category_head.json` (classes, the embedder's
`model_version`, the branch's sha256, fit figures). Exports carry it as a second output, `category_probs`,
and name its sha256, so an export made before the head was (re)fitted is refused as stale.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
import torchvision
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors
from torch import nn

from embedder.checkpoint import CheckpointError
from embedder.files import sha256_file, write_atomic
from embedder.model import Embedder

HEAD_FILE = "category_head.json"
HEAD_WEIGHTS = "category_head.safetensors"
HEAD_FORMAT = 2  # 1 was a linear probe on the 64-d embedding (42 % held out on Mango), no longer read
FEATURES = 512  # ResNet-18's layer4 width
BRANCH_STARTS = (2, 3)  # the branch reads layer2 or layer3 maps
_REFIT = "refit it with `outfit-compat category-head`"


class CategoryBranch(nn.Module):
    """The trunk's layer`start` maps -> category probabilities (N, C): copies of the later ResNet-18 stages
    (layer4 for start 3; layer3 and layer4 for start 2), pooled, then a linear layer.

    The linear layer may score finer classes than the C categories (`fine_to_class[j]` is the category of
    output j, e.g. belt, beanie and kerchief for accessories): a category's probability is then the sum of
    its fine classes'. Each fine class looks alike, where a category can be several unlike things.
    """

    def __init__(
        self, n_classes: int, *, start: int = 3, stages: nn.Module | None = None,
        fine_to_class: Sequence[int] | None = None,
    ) -> None:
        super().__init__()
        if start not in BRANCH_STARTS:
            raise ValueError(f"a branch starts after layer2 or layer3, not layer{start}")
        fine = list(fine_to_class) if fine_to_class is not None else list(range(n_classes))
        if not fine or sorted(set(fine)) != list(range(n_classes)):
            raise ValueError(f"fine_to_class must map onto every one of the {n_classes} categories")
        self.start = start
        self.fine_to_class = fine
        if stages is None:
            r = torchvision.models.resnet18(weights=None)
            stages = r.layer4 if start == 3 else nn.Sequential(r.layer3, r.layer4)
        self.stages = stages
        self.fc = nn.Linear(FEATURES, len(fine))
        self.register_buffer("groups", F.one_hot(torch.tensor(fine), n_classes).float(), persistent=False)

    @property
    def n_classes(self) -> int:
        return int(self._groups().shape[1])

    def forward(self, maps: torch.Tensor) -> torch.Tensor:
        """Logits of the fine classes (what training's cross-entropy reads)."""
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(self.stages(maps), 1), 1))

    def probabilities(self, maps: torch.Tensor) -> torch.Tensor:
        return F.softmax(self(maps), dim=1) @ self._groups()

    def _groups(self) -> torch.Tensor:
        groups = self.groups
        assert isinstance(groups, torch.Tensor)
        return groups


def branch_stages(model: Embedder, start: int) -> nn.Module:
    """Trainable copies of the embedder's stages after layer`start`: where a branch's fine-tuning begins."""
    b = model.backbone
    return copy.deepcopy(b.layer4 if start == 3 else nn.Sequential(b.layer3, b.layer4))


class CategorisingEmbedder(nn.Module):
    """images -> (L2-normalised embeddings, category probabilities), one trunk pass for both."""

    def __init__(self, model: Embedder, branch: CategoryBranch) -> None:
        super().__init__()
        self.model = model
        self.branch = branch

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        maps = self.model.trunk(images, upto=self.branch.start)
        shared = maps if self.branch.start == 3 else self.model.backbone.layer3(maps)
        return self.model.embed_from_trunk(shared, normalize=True), self.branch.probabilities(maps)


@dataclass(frozen=True)
class CategoryHead:
    classes: tuple[str, ...]
    # None when loaded without its weights (`with_weights=False`): a service whose export computes the branch needs
    # only the classes and the sha256, not ~40 MB of torch parameters per worker.
    branch: CategoryBranch | None
    model_version: str  # the embedder whose trunk it reads
    sha256: str  # of HEAD_WEIGHTS: exports name it
    metrics: dict[str, Any] = field(default_factory=dict)

    def pick(self, probabilities: np.ndarray) -> tuple[str, float]:
        """One image's probabilities (C,) -> (category, its probability)."""
        k = int(np.argmax(probabilities))
        return self.classes[k], float(probabilities[k])


def save_category_head(
    checkpoint: Path | str, branch: CategoryBranch, classes: tuple[str, ...], *, model_version: str,
    metrics: dict[str, Any] | None = None,
) -> Path:
    """Write the branch weights, then the JSON naming their sha256 (last: a crash leaves a detectable pair)."""
    import hashlib

    if branch.n_classes != len(classes) or len(classes) < 2:
        raise ValueError(f"{len(classes)} classes for a branch of {branch.n_classes} categories")
    data = save_safetensors({k: v.detach().contiguous().cpu() for k, v in branch.state_dict().items()})
    write_atomic(Path(checkpoint) / HEAD_WEIGHTS, data)
    meta = {"format": HEAD_FORMAT, "model_version": model_version, "classes": list(classes), "start": branch.start,
            "fine_to_class": branch.fine_to_class,
            "weights_sha256": hashlib.sha256(data).hexdigest(), "metrics": metrics or {}}
    path = Path(checkpoint) / HEAD_FILE
    write_atomic(path, json.dumps(meta, indent=2, sort_keys=True))
    return path


def head_sha256(checkpoint: Path | str) -> str:
    """The sha256 the checkpoint's head JSON names ("" without a head); cheap, no weights read."""
    path = Path(checkpoint) / HEAD_FILE
    if not path.is_file():
        return ""
    return str(_read_meta(path)["weights_sha256"])


def _read_meta(path: Path) -> dict[str, Any]:
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(meta, dict):
            raise ValueError("not a JSON object")
        if meta.get("format") != HEAD_FORMAT:
            raise ValueError(f"format {meta.get('format')!r} is not {HEAD_FORMAT}")
        classes = meta["classes"]
        if not isinstance(classes, list) or len(classes) < 2 or not all(isinstance(c, str) for c in classes):
            raise ValueError("classes must be a list of at least 2 names")
        str(meta["weights_sha256"]), str(meta["model_version"])
        if meta.get("start", 3) not in BRANCH_STARTS:
            raise ValueError(f"start must be one of {BRANCH_STARTS}")
        fine = meta.get("fine_to_class", list(range(len(classes))))
        if not isinstance(fine, list) or sorted(set(fine)) != list(range(len(classes))):
            raise ValueError("fine_to_class must map onto every class")
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{path}: category head is unreadable ({e}); {_REFIT}") from e
    return meta


def load_category_head(
    checkpoint: Path | str, *, model_version: str, with_weights: bool = True
) -> CategoryHead | None:
    """The checkpoint's head, None when it has none; CheckpointError when it is corrupt, its weights do not
    match the JSON, or it was fitted on another model's trunk. With `with_weights=False` the weights file is still
    checked against the JSON's sha256, but no branch is built (`branch` is None)."""
    path = Path(checkpoint) / HEAD_FILE
    if not path.is_file():
        return None
    meta = _read_meta(path)
    if meta["model_version"] != model_version:
        raise CheckpointError(f"{path}: category head was fitted on model {meta['model_version']}, not "
                              f"{model_version}; {_REFIT}")
    weights = Path(checkpoint) / HEAD_WEIGHTS
    if not weights.is_file() or sha256_file(weights) != meta["weights_sha256"]:
        raise CheckpointError(f"{weights}: missing or does not match {HEAD_FILE}'s sha256; {_REFIT}")
    classes = tuple(meta["classes"])
    if not with_weights:
        return CategoryHead(classes, None, model_version, str(meta["weights_sha256"]), dict(meta.get("metrics") or {}))
    branch = CategoryBranch(len(classes), start=int(meta.get("start", 3)),
                            fine_to_class=meta.get("fine_to_class"))
    try:
        branch.load_state_dict(load_safetensors(weights.read_bytes()))
    except (SafetensorError, RuntimeError) as e:
        raise CheckpointError(f"{weights}: category head weights do not fit ({e}); {_REFIT}") from e
    return CategoryHead(classes, branch.eval(), model_version, str(meta["weights_sha256"]),
                        dict(meta.get("metrics") or {}))
