"""End of a run: reload the best checkpoint, test it, fit the score calibration on valid, write the card,
plots and result.json (rank 0 only)."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
    from training.loop import TrainResult

log = logging.getLogger(__name__)


def write_json(path: Path, payload: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, json.dumps(payload, indent=2, sort_keys=True))


def read_history(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def finalize_run(
    config: TrainConfig, *, data: TrainingData, out_dir: Path, step: int, best_epoch: int, ctx: DistContext,
    t_start: float, result_cls: type[TrainResult],
) -> TrainResult:
    best = out_dir / "best"
    if not ctx.is_main:
        return result_cls(out_dir, best, best_epoch, step, {}, {}, data.summary(), time.perf_counter() - t_start)
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
    result = result_cls(out_dir, best, best_epoch, step, valid, test, data.summary(), time.perf_counter() - t_start,
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
