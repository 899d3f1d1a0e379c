"""The demo's index step: build and publish the synthetic catalog's index (reused when already current)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def random_init_checkpoint(path: Path, *, seed: int = 0) -> Path:
    """A seeded random-init checkpoint: stands in until a trained one is passed (same artifacts, same code path)."""
    from embedder import build_embedder, read_model_card, save_checkpoint
    from embedder.config import EmbedderConfig

    if (path / "model_card.json").is_file():
        read_model_card(path)  # validates; a corrupt one raises CheckpointError instead of being reused
        return path
    import torch

    torch.manual_seed(seed)
    save_checkpoint(build_embedder(EmbedderConfig()), path, training_config={"preset": "random-init", "seed": seed})
    return path


def demo_index(workdir: Path, data_dir: Path, *, checkpoint: Path | None = None, seed: int = 0) -> dict[str, Any]:
    """Publish `workdir/index` for `data_dir`; rebuilds only when the model or the catalog changed."""
    from embedder import read_model_card
    from index.build import build_catalog_index
    from index.embed_job import EmbedJobConfig
    from index.errors import IndexArtifactError
    from index.reader import open_index
    from index.sources import load_source

    ckpt = checkpoint or random_init_checkpoint(workdir / "checkpoints" / "random-init", seed=seed)
    out = workdir / "index"
    card = read_model_card(ckpt)
    source = load_source(data_dir)
    try:
        idx = open_index(out, expected_model_version=card.model_version)
        if idx.manifest["source"]["fingerprint"] != source.fingerprint:
            raise IndexArtifactError("catalog changed")
        log.info("reusing index version %s in %s", idx.version, out)
    except IndexArtifactError:
        build_catalog_index(checkpoint=ckpt, catalog=data_dir, out=out, job=EmbedJobConfig(num_workers=1))
        idx = open_index(out, expected_model_version=card.model_version)
    probe = next(it.item_id for it in source.items if idx.has(it.item_id))
    hits = idx.search(idx.vectors([probe]), k=3, exclude=[probe])[0]
    return {
        "index": str(out),
        "version": idx.version,
        "model_version": idx.manifest["model_version"],
        "count": idx.count,
        "factory": idx.manifest["factory"],
        "per_category": idx.categories(),
        "example": {"query": probe, "nearest": [(h.item_id, round(h.score, 4)) for h in hits]},
    }

