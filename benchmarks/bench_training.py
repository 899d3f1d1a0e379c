"""Training throughput per loss configuration (images embedded with gradients per second).

Runs a few real optimiser steps of each configuration on the synthetic set through `training.loop.train`
and reads the per-step timings it logs. Prints a table and writes benchmarks/results/bench_training.json.

    python benchmarks/bench_training.py [--preset cpu] [--steps 8] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from catalog.synth import generate_synthetic
from training.config import preset
from training.experiments import METHODS
from training.finalize import write_json
from training.loop import train


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="cpu")
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "bench_training.json")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    load_at_start = os.getloadavg()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "synth"
        generate_synthetic(data, items=600, outfits=300, seed=0, image_size=64)
        for method, switches in METHODS.items():
            config = preset(args.preset, data=str(data), max_steps=args.steps, log_every=1, tsne_points=0,
                            triplets_per_epoch=0, epochs=1, **switches)
            run = Path(tmp) / method.split()[0].strip("+")
            train(config, out_dir=run, progress=False)
            steps = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
            steps = [s for s in steps if s["type"] == "step"][1:]  # the first step pays warm-up costs
            sec = statistics.median(s["step_seconds"] for s in steps)
            imgs = statistics.median(s["images"] for s in steps)
            rows.append({"losses": config.losses_label(), "image_size": config.image_size,
                         "batch_size": config.batch_size, "unlabeled_batch": config.unlabeled_batch,
                         "images_per_step": int(imgs), "seconds_per_step": sec, "images_per_s": imgs / sec,
                         "triplets_per_s": config.batch_size / sec, "steps_timed": len(steps)})
            print(f"{rows[-1]['losses']:<22} {sec:6.2f} s/step  {imgs / sec:7.1f} img/s  "
                  f"{config.batch_size / sec:6.1f} triplets/s")
    payload = {"preset": args.preset, "threads": args.threads, "rows": rows,
               "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "torch": torch.__version__,
               "note": f"`{args.preset}` preset, {args.threads} torch threads, median of {args.steps - 1} steps; "
                       f"2-core machine, load average {load_at_start[0]:.2f} at start and {os.getloadavg()[0]:.2f} "
                       "at end (above ~1: other jobs competed).",
               "loadavg_at_start": [round(v, 2) for v in load_at_start]}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_json(args.out, payload)
    print(json.dumps({"out": str(args.out)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
