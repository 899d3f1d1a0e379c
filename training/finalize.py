"""End of a run and its result: reload the best checkpoint, test it, fit the score calibration on valid,
write the card, plots and result.json (rank 0 only); `TrainResult` is what `training.loop.train` returns."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from embedder import load_embedder, save_checkpoint
from embedder.calibration import CARD_KEY, fit_calibration
from embedder.files import write_atomic
from training.config import TrainConfig
from training.distributed import DistContext
from training.evaluate import embed_items
from training.metrics import EmbeddingLookup, compatibility_scores, evaluate_split
from training.prepare import TrainingData
from training.spread import COLLAPSE_MEAN_COSINE, embedding_spread

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    run_dir: Path
    best_checkpoint: Path
    best_epoch: int
    steps: int
    valid: dict[str, float]
    test: dict[str, float]
    data: dict[str, int]
    seconds: float
    history: list[dict[str, Any]] = field(default_factory=list)
    # Spread of the best model's test embeddings (training.spread): mean cosine, effective rank, collapsed.
    spread: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_dir": str(self.run_dir), "best_checkpoint": str(self.best_checkpoint), "best_epoch": self.best_epoch,
            "steps": self.steps, "valid": self.valid, "test": self.test, "data": self.data,
            "seconds": round(self.seconds, 1), "spread": self.spread, "history": self.history,
        }


def write_json(path: Path, payload: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, json.dumps(payload, indent=2, sort_keys=True))


def read_history(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def finalize_run(
    config: TrainConfig, *, data: TrainingData, out_dir: Path, step: int, best_epoch: int, ctx: DistContext,
    t_start: float,
) -> TrainResult:
    best = out_dir / "best"
    if not ctx.is_main:
        return TrainResult(out_dir, best, best_epoch, step, {}, {}, data.summary(), time.perf_counter() - t_start)
    model, card = load_embedder(best, device=ctx.device)
    valid_emb = embed_items(model, data.store, data.valid_ids, batch_size=config.eval_batch)
    test_emb = embed_items(model, data.store, data.test_ids, batch_size=config.eval_batch)
    valid = evaluate_split(data.valid, data.valid_ids, valid_emb)
    test = evaluate_split(data.test, data.test_ids, test_emb)
    spread = embedding_spread(test_emb)
    if spread["collapsed"]:
        log.warning("the embedding space is collapsed: mean pairwise cosine %.3f on the %d test items (≥ %.1f), "
                    "effective rank %.1f of %d; every item will look compatible with every other",
                    spread["mean_cosine"], spread["items"], COLLAPSE_MEAN_COSINE, spread["effective_rank"],
                    spread["dim"])
    lookup = EmbeddingLookup(data.valid_ids, valid_emb)
    distances = -compatibility_scores(data.valid.compatibility, lookup)
    labels = np.array([c.label for c in data.valid.compatibility])
    cal = fit_calibration(distances, labels, fitted_on=f"{config.kind}/valid")
    save_checkpoint(model, best, backbone_weights=config.backbone_weights, training_config=config.to_dict(),
                    metrics={"valid": valid, "test": test, "best_epoch": best_epoch, "steps": step,
                             "test_spread": spread},
                    data_fingerprint=data.fingerprint, extra={CARD_KEY: cal.to_dict(), "data": data.summary()})
    history = read_history(out_dir / "metrics.jsonl")
    epochs = [h for h in history if h.get("type") == "epoch" and h["epoch"] >= 0]
    result = TrainResult(out_dir, best, best_epoch, step, valid, test, data.summary(), time.perf_counter() - t_start,
                        epochs, spread)
    if config.tsne_points:
        from training.plots import plot_curves, plot_tsne

        plot_curves(history, out_dir / "curves.png")
        plot_tsne(model, data, out_dir / "tsne.png", points=config.tsne_points, seed=config.seed,
                  batch_size=config.eval_batch)
    write_json(out_dir / "result.json", {"config": config.to_dict(), **result.to_dict(),
                                         "model_version": card.model_version})
    log.info("best epoch %d; test %s; spread %s", best_epoch + 1, {k: round(v, 4) for k, v in test.items()}, spread)
    return result
