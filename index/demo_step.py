"""The demo's index step: export the serving backend, build and publish the synthetic catalog's index (both
reused when already current).

The demo serves `openvino-int8` by default, the fastest backend on CPUs (docs/PERFORMANCE.md): the checkpoint
is exported to ONNX, quantised to int8 on the dataset's train photos (which also writes the parity probe
every int8 backend checks on load), and the index is embedded with that backend. `backend="torch"` keeps the
fp32 reference with no export.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from embedder.quantize import QuantizeConfig

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


DEFAULT_BACKEND = "openvino-int8"


def ensure_exports(checkpoint: Path, data_dir: Path, backend: str, int8: QuantizeConfig | None = None) -> None:
    """The ONNX exports `backend` needs beside the checkpoint, made unless current ones are already there."""
    from embedder.backend import ONNX_VARIANT
    from embedder.onnx_export import ExportError, export_onnx, verify_export

    variant = ONNX_VARIANT.get(backend)
    if variant is None:
        return
    try:
        verify_export(checkpoint, "fp32")
    except ExportError:
        log.info("exporting %s to ONNX", checkpoint)
        export_onnx(checkpoint)
    if variant == "int8":
        try:
            verify_export(checkpoint, "int8")
        except ExportError:
            from catalog.photo_sample import int8_photos
            from embedder.quantize import QuantizeConfig, quantize_int8

            log.info("quantising %s to int8 on the train photos of %s", checkpoint, data_dir)
            cfg = int8 or QuantizeConfig()
            quantize_int8(checkpoint, photos=int8_photos(data_dir, cfg), config=cfg)


def demo_index(
    workdir: Path, data_dir: Path, *, checkpoint: Path | None = None, seed: int = 0, backend: str = DEFAULT_BACKEND,
    int8: QuantizeConfig | None = None,
) -> dict[str, Any]:
    """Publish `workdir/index` for `data_dir` embedded with `backend`; rebuilds only when the model, the
    catalog or the backend's numeric family changed."""
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
    ensure_exports(ckpt, data_dir, backend, int8)
    try:
        idx = open_index(out, expected_model_version=card.model_version, backend=backend)
        if idx.manifest["source"]["fingerprint"] != source.fingerprint:
            raise IndexArtifactError("catalog changed")
        if idx.manifest.get("backend") != backend:
            raise IndexArtifactError(f"built with {idx.manifest.get('backend')}, not {backend}")
        log.info("reusing index version %s in %s", idx.version, out)
    except (IndexArtifactError, ValueError):  # ValueError: built by a backend of the other numeric family
        build_catalog_index(checkpoint=ckpt, catalog=data_dir, out=out, backend=backend,
                            job=EmbedJobConfig(num_workers=1))
        idx = open_index(out, expected_model_version=card.model_version)
    probe = next(it.item_id for it in source.items if idx.has(it.item_id))
    hits = idx.search(idx.vectors([probe]), k=3, exclude=[probe])[0]
    return {
        "index": str(out),
        "version": idx.version,
        "model_version": idx.manifest["model_version"],
        "count": idx.count,
        "factory": idx.manifest["factory"],
        "backend": idx.manifest.get("backend"),
        "per_category": idx.categories(),
        "example": {"query": probe, "nearest": [(h.item_id, round(h.score, 4)) for h in hits]},
    }

