"""The training run as named phases: setup, (resume), epochs of steps, validate, keep best, finalise.

Outputs in the run directory: config.json (merged), metrics.jsonl, state.pt (resume), best/ (the product
checkpoint via `embedder.save_checkpoint`), result.json, curves.png and tsne.png.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, DistributedSampler

from embedder import EmbedderConfig, PreprocessConfig, build_embedder
from embedder.model import Embedder
from training.config import TrainConfig, write_config
from training.data import TripletDataset, UnlabeledSource
from training.distributed import DistContext, init_distributed, parameters_in_sync, shutdown, wrap_model
from training.evaluate import embed_items
from training.metrics import evaluate_split
from training.objective import Objective
from training.prepare import TrainingData, prepare_data
from training.schedules import lr_multiplier
from training.state import STATE_FILE, load_state, rng_state, save_state, set_rng_state
from training.step import autocast, make_scaler, optimizer_step
from training.transforms import ViewTransforms

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


class JsonlLog:
    def __init__(self, path: Path, *, enabled: bool) -> None:
        self.path, self.enabled = path, enabled

    def write(self, record: dict[str, Any]) -> None:
        if self.enabled:
            with self.path.open("a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")


def selection_score(metrics: dict[str, float]) -> float:
    """Best-checkpoint criterion on the valid split: AUC + FITB, both in [0, 1]."""
    return metrics["auc"] + metrics["fitb"]


def validate(model: Embedder, data: TrainingData, config: TrainConfig) -> dict[str, float]:
    emb = embed_items(model, data.store, data.valid_ids, batch_size=config.eval_batch)
    return evaluate_split(data.valid, data.valid_ids, emb)


def train(
    config: TrainConfig, *, out_dir: Path, resume: bool = False, cache_dir: Path | None = None, progress: bool = True
) -> TrainResult:
    config.validate()
    t_start = time.perf_counter()
    ctx = init_distributed(config.device)
    try:
        return _train(config, out_dir=out_dir, resume=resume, cache_dir=cache_dir, progress=progress, ctx=ctx,
                      t_start=t_start)
    finally:
        shutdown(ctx)


def _train(
    config: TrainConfig, *, out_dir: Path, resume: bool, cache_dir: Path | None, progress: bool, ctx: DistContext,
    t_start: float,
) -> TrainResult:
    from tqdm import tqdm

    from training.finalize import finalize_run

    # --- setup -------------------------------------------------------------------------------------
    out_dir.mkdir(parents=True, exist_ok=True)
    if ctx.is_main:
        write_config(config, out_dir / "config.json")
    metrics_log = JsonlLog(out_dir / "metrics.jsonl", enabled=ctx.is_main)
    if ctx.is_main and not resume:
        (out_dir / "metrics.jsonl").unlink(missing_ok=True)
    torch.manual_seed(config.seed)
    np.random.seed(config.seed)
    data = prepare_data(config, cache_dir=cache_dir)
    views = ViewTransforms.default() if config.use_ss else None
    unlabeled = (
        UnlabeledSource(data.unlabeled_ids, data.store, views=views, seed=config.seed,
                        category_codes=data.category_codes)
        if config.use_ss or config.use_pseudo else None
    )
    objective = Objective(config, unlabeled=unlabeled)
    net = build_embedder(
        EmbedderConfig(embed_dim=config.embed_dim, preprocess=PreprocessConfig(image_size=config.image_size)),
        backbone_weights=config.backbone_weights,
    ).to(ctx.device)
    cuda = ctx.device.type == "cuda"
    memory_format = torch.channels_last if (cuda and config.channels_last) else torch.contiguous_format
    net = net.to(memory_format=memory_format)
    optimizer = torch.optim.Adam(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    n_triplets = config.triplets_per_epoch or data.sampler.default_epoch_size()
    steps_per_epoch = n_triplets // (config.batch_size * ctx.world_size)
    if steps_per_epoch < 1:
        raise ValueError(f"{n_triplets} triplets per epoch do not fill one batch of {config.batch_size} per process")
    total_steps = steps_per_epoch * config.epochs
    if config.max_steps:
        total_steps = min(total_steps, config.max_steps)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lr_multiplier(config.lr_schedule, total_steps=total_steps, warmup_steps=config.warmup_steps)
    )
    scaler = make_scaler(ctx.device, enabled=config.amp)
    epoch, batch_in_epoch, step = 0, 0, 0
    best_score, best_epoch = -float("inf"), -1
    if resume:
        st = load_state(out_dir / STATE_FILE, config)
        net.load_state_dict(st["model"])
        optimizer.load_state_dict(st["optimizer"])
        scheduler.load_state_dict(st["scheduler"])
        scaler.load_state_dict(st["scaler"])
        epoch, batch_in_epoch, step = st["epoch"], st["batch_in_epoch"], st["step"]
        best_score, best_epoch = st["best_score"], st["best_epoch"]
        set_rng_state(st["rng"])
        objective.load_state_dict(st.get("objective", {}))
        log.info("resumed from %s at epoch %d, batch %d (step %d)", out_dir / STATE_FILE, epoch, batch_in_epoch, step)
    model = wrap_model(net, ctx)
    if ctx.is_main:
        log.info("data %s; %d steps/epoch, %d in all; losses %s", data.summary(), steps_per_epoch, total_steps,
                 config.losses_label())

    def snapshot(next_epoch: int, next_batch: int) -> dict[str, Any]:
        return {
            "model": net.state_dict(), "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
            "scaler": scaler.state_dict(), "epoch": next_epoch, "batch_in_epoch": next_batch, "step": step,
            "config": config.to_dict(), "rng": rng_state(), "best_score": best_score, "best_epoch": best_epoch,
            "objective": objective.state_dict(),
        }

    if ctx.is_main and not resume:
        # The untrained model's validation score: the reference point the run has to improve on.
        metrics_log.write({"type": "epoch", "epoch": -1, "step": 0, "valid": validate(net, data, config), "seconds": 0})

    # --- epochs ------------------------------------------------------------------------------------
    budget_hit = False
    while epoch < config.epochs and not budget_hit:
        triplets = data.sampler.sample(n_triplets, np.random.default_rng([config.seed, epoch, 0x7E]))
        dataset = TripletDataset(triplets, data.store, views=views, seed=config.seed, epoch=epoch,
                                 hflip=config.hflip, category_codes=data.category_codes)
        dsampler: DistributedSampler[int] = DistributedSampler(
            dataset, num_replicas=ctx.world_size, rank=ctx.rank, shuffle=True, seed=config.seed, drop_last=True
        )
        dsampler.set_epoch(epoch)
        order = list(dsampler)[: steps_per_epoch * config.batch_size][batch_in_epoch * config.batch_size :]
        loader = DataLoader(dataset, batch_size=config.batch_size, sampler=order, num_workers=config.workers,
                            pin_memory=cuda, drop_last=True, persistent_workers=False)
        net.train()
        bar = tqdm(loader, total=steps_per_epoch, initial=batch_in_epoch, desc=f"epoch {epoch + 1}/{config.epochs}",
                   disable=not (progress and ctx.is_main), dynamic_ncols=True, leave=False)
        t_epoch = time.perf_counter()
        for batch in bar:
            t0 = time.perf_counter()
            with autocast(ctx.device, enabled=config.amp):
                out = objective(model, net, batch, step=step, rank=ctx.rank, device=ctx.device,
                                memory_format=memory_format)
            grad_norm = optimizer_step(loss=out.loss, parameters=net.parameters(), optimizer=optimizer, scaler=scaler,
                                       clip_norm=config.grad_clip, step=step, all_finite=ctx.all_finite)
            scheduler.step()
            objective.after_step(net)
            step += 1
            batch_in_epoch += 1
            terms = ctx.mean({"loss": float(out.loss.detach()), **out.terms})
            bar.set_postfix({k: f"{v:.3f}" for k, v in terms.items()})
            if step % config.log_every == 0 or batch_in_epoch == steps_per_epoch:
                dt = time.perf_counter() - t0
                metrics_log.write({"type": "step", "epoch": epoch, "step": step, **terms, **out.stats,
                                   "grad_norm": grad_norm,
                                   "lr": scheduler.get_last_lr()[0], "step_seconds": dt,
                                   "images": out.images * ctx.world_size,
                                   "images_per_s": out.images * ctx.world_size / dt})
            budget_hit = bool(config.max_steps) and step >= config.max_steps
            if config.checkpoint_every and step % config.checkpoint_every == 0 and ctx.is_main:
                save_state(out_dir / STATE_FILE, snapshot(epoch, batch_in_epoch))
            if budget_hit:
                break
        bar.close()
        # --- validate, keep best, save the resume state --------------------------------------------
        epoch_done = batch_in_epoch >= steps_per_epoch
        if ctx.is_main:
            valid = validate(net, data, config)
            record = {"type": "epoch", "epoch": epoch, "step": step, "valid": valid,
                      "seconds": round(time.perf_counter() - t_epoch, 2)}
            metrics_log.write(record)
            log.info("epoch %d step %d valid %s", epoch + 1, step, {k: round(v, 4) for k, v in valid.items()})
            if selection_score(valid) > best_score:
                best_score, best_epoch = selection_score(valid), epoch
                from embedder import save_checkpoint

                save_checkpoint(net, out_dir / "best", backbone_weights=config.backbone_weights,
                                training_config=config.to_dict(), metrics={"valid": valid},
                                data_fingerprint=data.fingerprint)
        if epoch_done:
            epoch, batch_in_epoch = epoch + 1, 0
        if ctx.is_main:
            save_state(out_dir / STATE_FILE, snapshot(epoch, batch_in_epoch))
        ctx.barrier()

    # --- finalise ----------------------------------------------------------------------------------
    if not parameters_in_sync(net, ctx):
        raise RuntimeError("DDP replicas diverged: parameters differ across ranks")
    return finalize_run(config, data=data, out_dir=out_dir, step=step, best_epoch=best_epoch, ctx=ctx,
                        t_start=t_start, result_cls=TrainResult)
