"""The demo's train step: the `demo` preset on the synthetic set (well under a minute on 2 quiet CPU cores;
docs/TRAINING.md); a finished run in the workdir is reused."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DemoTraining:
    checkpoint: Path
    test: dict[str, float]
    seconds: float
    losses: str  # which loss terms trained it, e.g. "L_l"


def demo_train(workdir: Path, data_dir: Path, *, seed: int = 0, kind: str = "nondisjoint") -> DemoTraining:
    from training.config import preset
    from training.loop import train

    run_dir = workdir / "train"
    config = preset("demo", data=str(data_dir), kind=kind, seed=seed)
    result_file = run_dir / "result.json"
    if result_file.is_file():
        saved = json.loads(result_file.read_text(encoding="utf-8"))
        if saved.get("config") == config.to_dict() and Path(saved["best_checkpoint"]).is_dir():
            log.info("reusing the trained model in %s", run_dir)
            return DemoTraining(Path(saved["best_checkpoint"]), saved["test"], float(saved["seconds"]),
                                config.losses_label())
    log.info("training (%s preset, %s) in %s", config.preset, config.losses_label(), run_dir)
    result = train(config, out_dir=run_dir, cache_dir=workdir / "cache")
    return DemoTraining(result.best_checkpoint, result.test, result.seconds, config.losses_label())


def demo_category_head(checkpoint: Path, data_dir: Path, *, kind: str = "nondisjoint") -> dict[str, object]:
    """Fit the checkpoint's category head (uploads' category) unless it has a valid one: under a minute
    at the demo's 32 px. Its held-out accuracy, or the stored figure when reused."""
    from embedder.category_head import load_category_head
    from embedder.checkpoint import CheckpointError, read_model_card
    from training.category_head import HeadFitConfig, run

    try:
        head = load_category_head(checkpoint, model_version=read_model_card(checkpoint).model_version)
    except CheckpointError as e:
        log.warning("refitting the category head: %s", e)
        head = None
    if head is not None:
        return {"held_out_accuracy": head.metrics.get("held_out_accuracy"), "reused": True}
    report = run(checkpoint=checkpoint, data=data_dir, kind=kind, cfg=HeadFitConfig(), report_path=None)
    return {"held_out_accuracy": report["held_out_head"]["accuracy"],
            "neighbour_vote": report["held_out_neighbour_vote"]["accuracy"], "stored": report["stored"]}
