"""The training run as named phases: set_up (with restore on --resume), run_epoch of train_steps, end_epoch
(validate, keep best, save the resume state), then `training.finalize.finalize_run`.

Outputs in the run directory: config.json (merged), metrics.jsonl, state.pt (resume), best/ (the product
checkpoint via `embedder.save_checkpoint`), result.json, curves.png and tsne.png.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler

from embedder import EmbedderConfig, PreprocessConfig, build_embedder, save_checkpoint
from embedder.model import Embedder
from training.config import TrainConfig, write_config
from training.data import TripletDataset, UnlabeledSource
from training.distributed import DistContext, init_distributed, parameters_in_sync, shutdown, wrap_model
from training.evaluate import embed_items
from training.finalize import TrainResult, finalize_run
from training.metrics import evaluate_split
from training.objective import Objective
from training.prepare import TrainingData, prepare_data
from training.schedules import lr_multiplier
from training.state import STATE_FILE, load_state, rng_state, save_state, set_rng_state
from training.step import autocast, load_scaler_state, make_scaler, optimizer_step
from training.teacher import EmaTeacher
from training.transforms import ViewTransforms

__all__ = ["Run", "TrainResult", "end_epoch", "restore", "run_epoch", "set_up", "train", "train_step"]

log = logging.getLogger(__name__)


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


@dataclass
class Run:
    """Everything one training run holds between phases: its parts and its position (what state.pt saves)."""

    config: TrainConfig
    ctx: DistContext
    out_dir: Path
    data: TrainingData
    views: ViewTransforms | None
    objective: Objective
    net: Embedder  # the bare module: no_grad passes, state dicts, checkpoints
    model: nn.Module  # what receives gradients: `net`, DDP-wrapped under torchrun
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    scaler: torch.amp.GradScaler
    memory_format: torch.memory_format
    metrics_log: JsonlLog
    averaged: EmaTeacher | None  # --weight-ema: the moving average that becomes the product
    n_triplets: int
    steps_per_epoch: int
    total_steps: int
    # position
    epoch: int = 0
    batch_in_epoch: int = 0
    step: int = 0
    best_score: float = -float("inf")
    best_epoch: int = -1
    epoch_started: float = 0.0

    @property
    def product(self) -> Embedder:
        """The weights that are validated and saved: the moving average when there is one."""
        return self.averaged.module if self.averaged is not None else self.net  # type: ignore[return-value]

    @property
    def budget_hit(self) -> bool:
        return bool(self.config.max_steps) and self.step >= self.config.max_steps

    def snapshot(self) -> dict[str, Any]:
        """The resume state: weights, optimiser, scheduler, scaler, position, config, RNG, best so far."""
        return {
            "model": self.net.state_dict(), "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(), "scaler": self.scaler.state_dict(), "epoch": self.epoch,
            "batch_in_epoch": self.batch_in_epoch, "step": self.step, "config": self.config.to_dict(),
            "rng": rng_state(), "best_score": self.best_score, "best_epoch": self.best_epoch,
            "objective": self.objective.state_dict(),
            "weight_ema": self.averaged.state_dict() if self.averaged is not None else None,
        }


def set_up(
    config: TrainConfig, *, out_dir: Path, resume: bool, cache_dir: Path | None, ctx: DistContext
) -> Run:
    """Config and logs on disk, seeds, data, objective, model, optimiser, lr schedule, grad scaler; on
    `resume`, the saved state restored before the model is wrapped for DDP."""
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
    run = Run(
        config=config, ctx=ctx, out_dir=out_dir, data=data, views=views, objective=objective, net=net, model=net,
        optimizer=optimizer, scheduler=scheduler, scaler=make_scaler(ctx.device, enabled=config.amp),
        memory_format=memory_format, metrics_log=metrics_log,
        averaged=EmaTeacher(net, decay=config.weight_ema) if config.weight_ema > 0 else None, n_triplets=n_triplets,
        steps_per_epoch=steps_per_epoch, total_steps=total_steps,
    )
    if resume:
        restore(run, out_dir / STATE_FILE)
    run.model = wrap_model(net, ctx)
    if ctx.is_main:
        log.info("data %s; %d steps/epoch, %d in all; losses %s", data.summary(), steps_per_epoch, total_steps,
                 config.losses_label())
    return run


def restore(run: Run, path: Path) -> None:
    """Load a resume state (checked against the config) into the run: weights, optimiser, position, RNG, and the
    objective's own state (teacher, queue)."""
    st = load_state(path, run.config)
    run.net.load_state_dict(st["model"])
    run.optimizer.load_state_dict(st["optimizer"])
    run.scheduler.load_state_dict(st["scheduler"])
    load_scaler_state(run.scaler, st["scaler"])
    run.epoch, run.batch_in_epoch, run.step = st["epoch"], st["batch_in_epoch"], st["step"]
    run.best_score, run.best_epoch = st["best_score"], st["best_epoch"]
    set_rng_state(st["rng"])
    run.objective.load_state_dict(st.get("objective", {}))
    if run.averaged is not None:
        saved = st.get("weight_ema")
        if saved is None:
            raise ValueError(f"{path} holds no weight average although --weight-ema is {run.config.weight_ema}")
        run.averaged.load_state_dict(saved)
    log.info("resumed from %s at epoch %d, batch %d (step %d)", path, run.epoch, run.batch_in_epoch, run.step)


def log_untrained(run: Run) -> None:
    """The untrained model's validation score: the reference point the run has to improve on."""
    if run.ctx.is_main:
        valid = validate(run.net, run.data, run.config)
        run.metrics_log.write({"type": "epoch", "epoch": -1, "step": 0, "valid": valid, "seconds": 0})


def epoch_loader(run: Run) -> DataLoader[dict[str, torch.Tensor]]:
    """This rank's batches of the current epoch, from the current batch on (a resumed epoch skips the rest)."""
    c, ctx = run.config, run.ctx
    triplets = run.data.sampler.sample(run.n_triplets, np.random.default_rng([c.seed, run.epoch, 0x7E]))
    dataset = TripletDataset(triplets, run.data.store, views=run.views, seed=c.seed, epoch=run.epoch, hflip=c.hflip,
                             shape_aug=c.shape_aug, category_codes=run.data.category_codes)
    dsampler: DistributedSampler[int] = DistributedSampler(
        dataset, num_replicas=ctx.world_size, rank=ctx.rank, shuffle=True, seed=c.seed, drop_last=True
    )
    dsampler.set_epoch(run.epoch)
    order = list(dsampler)[: run.steps_per_epoch * c.batch_size][run.batch_in_epoch * c.batch_size :]
    return DataLoader(dataset, batch_size=c.batch_size, sampler=order, num_workers=c.workers,
                      pin_memory=ctx.device.type == "cuda", drop_last=True, persistent_workers=False)


def train_step(run: Run, batch: dict[str, torch.Tensor]) -> dict[str, float]:
    """One optimiser step on one batch; returns the logged terms (averaged over ranks)."""
    c, ctx = run.config, run.ctx
    t0 = time.perf_counter()
    with autocast(ctx.device, enabled=c.amp):
        out = run.objective(run.model, run.net, batch, step=run.step, rank=ctx.rank, device=ctx.device,
                            memory_format=run.memory_format)
    grad_norm = optimizer_step(loss=out.loss, parameters=run.net.parameters(), optimizer=run.optimizer,
                               scaler=run.scaler, clip_norm=c.grad_clip, step=run.step, all_finite=ctx.all_finite)
    run.scheduler.step()
    run.objective.after_step(run.net)  # after the optimizer step: the EMA teacher follows the updated weights
    if run.averaged is not None:
        run.averaged.update(run.net)
    run.step += 1
    run.batch_in_epoch += 1
    terms = ctx.mean({"loss": float(out.loss.detach()), **out.terms})
    if run.step % c.log_every == 0 or run.batch_in_epoch == run.steps_per_epoch:
        dt = time.perf_counter() - t0
        run.metrics_log.write({"type": "step", "epoch": run.epoch, "step": run.step, **terms, **out.stats,
                               "grad_norm": grad_norm, "lr": run.scheduler.get_last_lr()[0], "step_seconds": dt,
                               "images": out.images * ctx.world_size,
                               "images_per_s": out.images * ctx.world_size / dt})
    return terms


def run_epoch(run: Run, *, progress: bool) -> None:
    """The current epoch's steps, from `batch_in_epoch` to its end or to the step budget; mid-epoch resume
    states every `checkpoint_every` steps."""
    from tqdm import tqdm

    c, ctx = run.config, run.ctx
    loader = epoch_loader(run)
    run.net.train()
    bar = tqdm(loader, total=run.steps_per_epoch, initial=run.batch_in_epoch, desc=f"epoch {run.epoch + 1}/{c.epochs}",
               disable=not (progress and ctx.is_main), dynamic_ncols=True, leave=False)
    run.epoch_started = time.perf_counter()
    for batch in bar:
        terms = train_step(run, batch)
        bar.set_postfix({k: f"{v:.3f}" for k, v in terms.items()})
        if c.checkpoint_every and run.step % c.checkpoint_every == 0 and ctx.is_main:
            save_state(run.out_dir / STATE_FILE, run.snapshot())
        if run.budget_hit:
            break
    bar.close()


def probe(run: Run) -> dict[str, dict[str, dict[str, float]]]:
    """Valid and test metrics of the trained weights and (with --weight-ema) of their average: a diagnostic
    for comparing selection policies after the fact; the run never reads it."""
    models = {"weights": run.net, **({"average": run.product} if run.averaged is not None else {})}
    out: dict[str, dict[str, dict[str, float]]] = {}
    for name, model in models.items():
        test_emb = embed_items(model, run.data.store, run.data.test_ids, batch_size=run.config.eval_batch)
        out[name] = {"valid": validate(model, run.data, run.config),
                     "test": evaluate_split(run.data.test, run.data.test_ids, test_emb)}
    return out


def end_epoch(run: Run) -> None:
    """Validate, keep the best checkpoint, move to the next epoch if this one is done, save the resume state."""
    c, ctx = run.config, run.ctx
    epoch_done = run.batch_in_epoch >= run.steps_per_epoch
    if ctx.is_main:
        seconds = round(time.perf_counter() - run.epoch_started, 2)
        valid = validate(run.product, run.data, c)
        record: dict[str, Any] = {"type": "epoch", "epoch": run.epoch, "step": run.step, "valid": valid,
                                  "seconds": seconds}
        if c.probe_test:
            record["probe"] = probe(run)
        run.metrics_log.write(record)
        log.info("epoch %d step %d valid %s", run.epoch + 1, run.step, {k: round(v, 4) for k, v in valid.items()})
        if c.select_epoch == "last" or selection_score(valid) > run.best_score:
            run.best_score, run.best_epoch = selection_score(valid), run.epoch
            save_checkpoint(run.product, run.out_dir / "best", backbone_weights=c.backbone_weights,
                            training_config=c.to_dict(), metrics={"valid": valid},
                            data_fingerprint=run.data.fingerprint)
    if epoch_done:
        run.epoch, run.batch_in_epoch = run.epoch + 1, 0
    if ctx.is_main:
        save_state(run.out_dir / STATE_FILE, run.snapshot())
    ctx.barrier()


def train(
    config: TrainConfig, *, out_dir: Path, resume: bool = False, cache_dir: Path | None = None, progress: bool = True
) -> TrainResult:
    config.validate()
    t_start = time.perf_counter()
    ctx = init_distributed(config.device)
    try:
        run = set_up(config, out_dir=out_dir, resume=resume, cache_dir=cache_dir, ctx=ctx)
        if not resume:
            log_untrained(run)
        while run.epoch < config.epochs and not run.budget_hit:
            run_epoch(run, progress=progress)
            end_epoch(run)
        if not parameters_in_sync(run.net, ctx):
            raise RuntimeError("DDP replicas diverged: parameters differ across ranks")
        return finalize_run(config, data=run.data, out_dir=out_dir, step=run.step, best_epoch=run.best_epoch,
                            ctx=ctx, t_start=t_start)
    finally:
        shutdown(ctx)
