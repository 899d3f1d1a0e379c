"""Training throughput per loss configuration, and where a step's time goes.

For each loss configuration (`CONFIGS`: L_l, +L_ss, +L_pseudo, all three, all three with the pseudo-triplet
options of `training.grids.OPTIONS`) on a preset (default `cpu`: 64 px, batch 64), a real run is set up
(`training.loop.set_up`) and each step is timed in phases:
- data: the next batch from the epoch's DataLoader (cached squares -> flip, T_s/T_a views of the labeled
  triplet images when L_ss is on, normalisation);
- objective: the whole `Objective` call (unlabeled views + matching + the forward with gradients + losses);
- backward+optimizer: `training.step.optimizer_step`, the lr scheduler and `Objective.after_step` (EMA teacher).
To split the objective, its components are then called separately on the same step's inputs, outside the
timed step (the objective itself is not instrumented):
- unlabeled views: drawing the step's unlabeled batch and building the (x, T_s x, T_a x) views of its L_ss
  subset;
- matching: the objective's matching pass (unlabeled images from the cache, no-grad embedding by the teacher or
  the student, nearest neighbours with the configured options, the matched rows' images);
- forward (the rest): objective − unlabeled views − matching, i.e. the forward with gradients and the losses.
Medians over the timed steps (the first `--warmup` steps of each configuration pay one-off costs and are left
out). Writes benchmarks/results/bench_training.json with the machine's load (`uptime`) and CPU flags.

    python benchmarks/bench_training.py [--preset cpu] [--steps 12] [--threads 2] [--data ROOT --cache-dir DIR]
                                        [--configs L_l ss pseudo full options] [--set key=value ...]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch

from catalog.synth import generate_synthetic
from training.config import TrainConfig, preset
from training.distributed import DistContext
from training.finalize import write_json
from training.grids import OPTIONS, SUPERVISED
from training.loop import Run, epoch_loader, set_up
from training.step import autocast, optimizer_step

# Loss switches per benchmarked configuration. "options" starts matching at step 0 (no supervised warm-up), so its
# matching pass is measured within a short benchmark.
CONFIGS: dict[str, dict[str, Any]] = {
    "L_l": SUPERVISED,
    "ss": {"use_ss": True, "use_pseudo": False},
    "pseudo": {"use_ss": False, "use_pseudo": True},
    "full": {"use_ss": True, "use_pseudo": True},
    "options": {"use_ss": True, "use_pseudo": True, **OPTIONS, "pseudo_warmup_steps": 0},
}
PHASES = ("data", "objective", "backward_optimizer", "unlabeled_views", "matching", "forward")


def _timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def machine() -> dict[str, Any]:
    """What the figures depend on: load at the time, CPU model and instruction-set flags, core count."""
    info: dict[str, Any] = {"cpus": os.cpu_count(), "platform": platform.platform(), "torch": torch.__version__,
                            "torch_threads": torch.get_num_threads()}
    try:
        info["uptime"] = subprocess.run(["uptime"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError) as e:
        info["uptime"] = f"unavailable: {e}"
    info["loadavg"] = [round(v, 2) for v in os.getloadavg()]
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(encoding="utf-8", errors="replace").splitlines():
            key, _, value = line.partition(":")
            key = key.strip()
            if key == "model name" and "cpu_model" not in info:
                info["cpu_model"] = value.strip()
            elif key == "flags" and "cpu_flags" not in info:
                info["cpu_flags"] = value.split()
    return info


def _pseudo_on(run: Run) -> bool:
    """Whether this step runs the matching pass (not during the supervised warm-up of the ramp)."""
    return run.config.use_pseudo and run.objective.weights(run.step)[1] > 0


def _unlabeled_ids(run: Run) -> tuple[list[str], list[str]]:
    """The step's unlabeled batch and its L_ss subset, drawn as the objective draws them (seeded by step)."""
    c, src = run.config, run.objective.unlabeled
    pseudo_on = _pseudo_on(run)
    if src is None or not (pseudo_on or c.use_ss):
        return [], []
    ids = src.sample(c.unlabeled_batch if pseudo_on else (c.ss_unlabeled or c.unlabeled_batch), step=run.step,
                     rank=run.ctx.rank)
    if not c.use_ss:
        return ids, []
    return ids, (ids if c.ss_unlabeled == 0 else ids[: c.ss_unlabeled])


def probe_unlabeled_views(run: Run) -> float:
    """Seconds to draw the step's unlabeled batch and build the (x, T_s x, T_a x) inputs of its L_ss subset."""
    src = run.objective.unlabeled
    if src is None:
        return 0.0
    t0 = time.perf_counter()
    _, ss_ids = _unlabeled_ids(run)
    if ss_ids:
        src.view_triplet(ss_ids, step=run.step, rank=run.ctx.rank)
    return time.perf_counter() - t0


def probe_matching(run: Run, batch: dict[str, torch.Tensor]) -> float:
    """Seconds of the objective's matching pass on this step's inputs: the unlabeled images from the cache,
    the no-grad embedding (teacher or student), nearest neighbours with the configured options (queue,
    categories, acceptance), the matched rows' images. Calls `Objective._match` (a private method: this
    benchmark follows the objective's internals on purpose); its queue push is repeated, which only
    refreshes entries already there."""
    if not _pseudo_on(run):
        return 0.0
    u_ids, _ = _unlabeled_ids(run)
    device, fmt = run.ctx.device, run.memory_format

    def put(x: torch.Tensor) -> torch.Tensor:
        return x.to(device, non_blocking=True).contiguous(memory_format=fmt)

    trip = batch["triplet"].transpose(0, 1).reshape(-1, *batch["triplet"].shape[2:])
    t0 = time.perf_counter()
    with autocast(device, enabled=run.config.amp):
        run.objective._match(run.net, batch, trip, u_ids, put)
    _sync(run)
    return time.perf_counter() - t0


def _sync(run: Run) -> None:
    if run.ctx.device.type == "cuda":
        torch.cuda.synchronize(run.ctx.device)


def time_steps(run: Run, *, steps: int, warmup: int) -> tuple[dict[str, list[float]], list[int]]:
    """Run `warmup + steps` optimiser steps; per timed step, the seconds of every phase and images embedded."""
    times: dict[str, list[float]] = {p: [] for p in PHASES}
    images: list[int] = []
    loader: Iterator[dict[str, torch.Tensor]] = iter(epoch_loader(run))
    run.net.train()
    c, ctx = run.config, run.ctx
    for k in range(warmup + steps):
        batch, t_data = _timed(lambda: next(loader))
        t0 = time.perf_counter()
        with autocast(ctx.device, enabled=c.amp):
            out = run.objective(run.model, run.net, batch, step=run.step, rank=ctx.rank, device=ctx.device,
                                memory_format=run.memory_format)
        _sync(run)
        t1 = time.perf_counter()
        optimizer_step(loss=out.loss, parameters=run.net.parameters(), optimizer=run.optimizer, scaler=run.scaler,
                       clip_norm=c.grad_clip, step=run.step, all_finite=ctx.all_finite)
        run.scheduler.step()
        run.objective.after_step(run.net)
        _sync(run)
        t2 = time.perf_counter()
        # The components, called again on this step's inputs (not part of the step above).
        t_views = probe_unlabeled_views(run)
        t_match = probe_matching(run, batch)
        run.step += 1
        if k < warmup:
            continue
        for phase, sec in (("data", t_data), ("objective", t1 - t0), ("backward_optimizer", t2 - t1),
                           ("unlabeled_views", t_views), ("matching", t_match),
                           ("forward", max(0.0, t1 - t0 - t_views - t_match))):
            times[phase].append(sec)
        images.append(out.images)
    return times, images


def bench_config(config: TrainConfig, *, steps: int, warmup: int, out_dir: Path, cache_dir: Path | None,
                 device: torch.device) -> dict[str, Any]:
    run = set_up(config, out_dir=out_dir, resume=False, cache_dir=cache_dir, ctx=DistContext(device=device))
    times, images = time_steps(run, steps=steps, warmup=warmup)
    med = {p: statistics.median(v) for p, v in times.items()}
    step_s = med["data"] + med["objective"] + med["backward_optimizer"]
    imgs = statistics.median(images)
    return {
        "losses": config.losses_label(), "image_size": config.image_size, "batch_size": config.batch_size,
        "unlabeled_batch": config.unlabeled_batch, "ss_unlabeled": config.ss_unlabeled,
        "images_per_step": int(imgs), "seconds_per_step": round(step_s, 4),
        "images_per_s": round(imgs / step_s, 1), "triplets_per_s": round(config.batch_size / step_s, 1),
        # Flat per-phase medians (seconds), so `outfit-compat report` tabulates them; shares in a nested dict.
        **{f"{p}_s": round(med[p], 4) for p in PHASES},
        "share_of_step": {p: round(med[p] / step_s, 3) for p in PHASES},
    }


def parse_sets(pairs: list[str]) -> dict[str, Any]:
    """`key=value` overrides of TrainConfig fields, converted to each field's type."""
    types = {f.name: f.type for f in dataclasses.fields(TrainConfig)}
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or key not in types:
            raise SystemExit(f"--set {pair!r}: need key=value with a TrainConfig field as key")
        kind = str(types[key])
        if kind == "bool":
            out[key] = value.lower() in ("1", "true", "yes", "on")
        elif kind == "int":
            out[key] = int(value)
        elif kind == "float":
            out[key] = float(value)
        else:
            out[key] = value
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="cpu")
    ap.add_argument("--steps", type=int, default=12, help="timed steps per configuration")
    ap.add_argument("--warmup", type=int, default=2, help="untimed steps first (allocator, caches)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--configs", nargs="+", choices=list(CONFIGS), default=list(CONFIGS))
    ap.add_argument("--data", type=Path, help="Polyvore-format root (default: a generated synthetic set)")
    ap.add_argument("--cache-dir", type=Path, help="decoded-image cache for --data")
    ap.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    ap.add_argument("--set", dest="sets", nargs="*", default=[], metavar="KEY=VALUE",
                    help="override preset fields, e.g. unlabeled_batch=256 ss_unlabeled=32")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "bench_training.json")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    overrides = parse_sets(args.sets)
    at_start = machine()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        data = args.data
        if data is None:
            data = Path(tmp) / "synth"
            size = 64 if preset(args.preset, **overrides).image_size <= 64 else 128
            generate_synthetic(data, items=600, outfits=300, seed=0, image_size=size)
        for key in args.configs:
            switches = CONFIGS[key]
            config = preset(args.preset, **{"data": str(data), "device": args.device, "tsne_points": 0, "epochs": 1,
                                            **overrides, **switches})
            # One epoch just long enough for the steps: the sampler draws no more triplets than needed.
            config = config.replace(triplets_per_epoch=config.batch_size * (args.steps + args.warmup))
            row = {"config": key, **bench_config(config, steps=args.steps, warmup=args.warmup, out_dir=Path(tmp) / key,
                                                 cache_dir=args.cache_dir, device=torch.device(args.device))}
            rows.append(row)
            s = {p: row[f"{p}_s"] for p in PHASES}
            print(f"{key:<8} {row['losses']:<18} {row['seconds_per_step']:6.3f} s/step "
                  f"{row['images_per_s']:7.1f} img/s | "
                  f"data {s['data']:.3f} objective {s['objective']:.3f} (views {s['unlabeled_views']:.3f} "
                  f"matching {s['matching']:.3f} forward {s['forward']:.3f}) backward+opt "
                  f"{s['backward_optimizer']:.3f}", flush=True)
    at_end = machine()
    busiest = max(at_start["loadavg"][0], at_end["loadavg"][0])
    # The benchmark itself keeps `threads` cores busy; a load above the CPU count means other jobs competed.
    contention = ("above the CPU count: other jobs competed" if busiest > at_start["cpus"]
                  else "at or below the CPU count: no other job to speak of")
    payload = {
        "command": " ".join(["python benchmarks/bench_training.py", *(argv if argv is not None else sys.argv[1:])]),
        "preset": args.preset, "overrides": overrides, "device": args.device, "threads": args.threads,
        "data": str(args.data) if args.data else "synthetic (600 items, seed 0)",
        "steps_timed": args.steps, "warmup_steps": args.warmup, "rows": rows,
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {k: v for k, v in at_start.items() if k not in ("uptime", "loadavg")},
        "uptime_at_start": at_start["uptime"], "uptime_at_end": at_end["uptime"],
        "loadavg_at_start": at_start["loadavg"], "loadavg_at_end": at_end["loadavg"],
        "note": f"`{args.preset}` preset{' with ' + str(overrides) if overrides else ''}, {args.threads} torch "
                f"threads, {args.device}, median of {args.steps} steps after {args.warmup} untimed; load average "
                f"{at_start['loadavg'][0]:.2f} at start and {at_end['loadavg'][0]:.2f} at end on {at_start['cpus']} "
                f"CPUs ({contention}). seconds_per_step = data + objective + "
                "backward_optimizer; unlabeled_views_s and matching_s come from calling those components "
                "separately on the same inputs, forward_s is the objective's remainder.",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_json(args.out, payload)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
