"""Experiment drivers whose JSON outputs docs/RESULTS.md is generated from (never hand-written numbers).

`run_grid` trains every missing run of a named grid (training/grids.py) and appends each finished run to the
grid's result JSON at once; baselines (colour histogram, random) are computed once per split kind.
`run_diagnostics` measures pseudo-triplet matching quality per option for trained checkpoints.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import time
from pathlib import Path
from typing import Any

from training.grids import GRIDS, MANGO, Grid

log = logging.getLogger(__name__)

DEFAULT_MANGO = Path("../shared/data/mango-outfits")
DEFAULT_SYNTH = Path("artifacts/synth-claim")
SYNTH_SPEC = {"items": 2000, "outfits": 1000, "seed": 0, "image_size": 64}


def load_results(path: Path) -> dict[str, Any]:
    if path.is_file():
        return dict(json.loads(path.read_text(encoding="utf-8")))
    return {"runs": [], "baselines": {}}


def run_key(r: dict[str, Any]) -> tuple[str, str, int]:
    return (r["cell"], r["kind"], int(r["seed"]))


def machine() -> dict[str, Any]:
    """What the timings were measured on: CPU model, cores, ISA flags that change speed, load average."""
    flags: list[str] = []
    model = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
            if line.startswith("flags"):
                have = set(line.split(":", 1)[1].split())
                flags = [f for f in ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile") if f in have]
                break
    except OSError:
        pass
    return {"cpu": model, "cores": os.cpu_count(), "flags": flags, "load_avg": [round(x, 2) for x in os.getloadavg()]}


def grid_data(grid: Grid, data: Path | None) -> Path:
    if grid.data == MANGO:
        root = data or DEFAULT_MANGO
        if not (root / "nondisjoint" / "train.json").is_file():
            raise FileNotFoundError(f"grid {grid.name} needs the Mango photo set; pass --data (not found at {root})")
        return root
    root = data or DEFAULT_SYNTH
    if not (root / "nondisjoint" / "test.json").is_file():
        from catalog.synth import generate_synthetic

        generate_synthetic(root, items=SYNTH_SPEC["items"], outfits=SYNTH_SPEC["outfits"], seed=SYNTH_SPEC["seed"],
                           image_size=SYNTH_SPEC["image_size"])
    return root


def epoch_records(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each validation of a run (its valid metrics and, with --probe-test, the probe), without timings."""
    keep = ("epoch", "step", "valid", "probe")
    return [{k: h[k] for k in keep if k in h} for h in history]


def run_grid(
    grid: Grid, *, data: Path | None, out_dir: Path, results: Path, cache_dir: Path | None = None,
    cells: list[str] | None = None, kinds: list[str] | None = None, seeds: list[int] | None = None,
) -> dict[str, Any]:
    """Train every (cell, kind, seed) of `grid` not yet in `results`; seed-major so an interrupted grid still
    covers every cell with one seed."""
    from training.config import preset
    from training.evaluate import evaluate_features
    from training.finalize import write_json
    from training.loop import train

    root = grid_data(grid, data)
    state = load_results(results)
    state.update({"grid": grid.name, "about": grid.about, "data": str(root)})
    if grid.data != MANGO:
        state["synthetic"] = SYNTH_SPEC
    done = {run_key(r) for r in state["runs"]}
    chosen = [grid.cell(n) for n in cells] if cells else list(grid.cells)
    for kind in kinds or grid.kinds:
        if kind not in state["baselines"]:
            state["baselines"][kind] = {
                "colorhist": evaluate_features(data=root, kind=kind, split="test", features="colorhist"),
                "random": evaluate_features(data=root, kind=kind, split="test", features="random"),
            }
            write_json(results, state)
    all_seeds = sorted({s for c in chosen for s in (c.seeds or grid.seeds)})
    for seed in seeds or all_seeds:
        for kind in kinds or grid.kinds:
            for cell in chosen:
                if seed not in (cell.seeds or grid.seeds) or (cell.name, kind, seed) in done:
                    continue
                config = preset(cell.preset, **{**cell.overrides, "data": str(root), "kind": kind, "seed": seed})
                run_dir = out_dir / grid.name / f"{cell.name}-{kind}-s{seed}"
                before = machine()
                t0 = time.perf_counter()
                res = train(config, out_dir=run_dir, cache_dir=cache_dir, progress=False)
                state["runs"].append({
                    "cell": cell.name, "kind": kind, "seed": seed, "about": cell.about, "test": res.test,
                    "valid": res.valid, "spread": res.spread, "steps": res.steps, "best_epoch": res.best_epoch,
                    "seconds": round(time.perf_counter() - t0, 1), "machine_before": before,
                    "machine_after": machine(), "data": res.data, "run_dir": str(run_dir),
                    "config": config.to_dict(), "epochs": epoch_records(res.history),
                })
                write_json(results, state)
                log.info("%s %s %s seed %d: test %s", grid.name, cell.name, kind, seed, res.test)
    return state


def register(sub: Any) -> None:
    p = sub.add_parser("experiment", help="run the experiment grids that docs/RESULTS.md reports")
    esub = p.add_subparsers(dest="which", required=True)
    r = esub.add_parser("run", help="train every missing run of a grid (training/grids.py)")
    r.add_argument("--grid", required=True, choices=sorted(GRIDS))
    r.add_argument("--data", type=Path, help="dataset root (Mango grids: the photo set; synthetic: generated)")
    r.add_argument("--out", type=Path, default=Path("artifacts/experiments"))
    r.add_argument("--results", type=Path, help="result JSON (default benchmarks/results/<grid>.json)")
    r.add_argument("--cells", nargs="+", help="only these cells")
    r.add_argument("--kinds", nargs="+", choices=("nondisjoint", "disjoint"))
    r.add_argument("--seeds", nargs="+", type=int)
    r.add_argument("--cache-dir", type=Path, default=Path("artifacts/cache"))
    r.set_defaults(func=cmd_run)
    d = esub.add_parser("diagnostics", help="pseudo-triplet matching quality per option (synthetic and Mango)")
    d.add_argument("--synth", type=Path, default=DEFAULT_SYNTH)
    d.add_argument("--mango", type=Path, default=DEFAULT_MANGO)
    d.add_argument("--checkpoint", action="append", default=[],
                   help="NAME=DIR of a trained checkpoint to inspect (repeatable); synthetic ones first")
    d.add_argument("--results", type=Path, default=Path("benchmarks/results/diagnostics.json"))
    d.set_defaults(func=cmd_diagnostics)


def cmd_run(args: Any) -> int:
    grid = GRIDS[args.grid]
    results = args.results or Path("benchmarks/results") / f"{grid.name}.json"
    results.parent.mkdir(parents=True, exist_ok=True)
    run_grid(grid, data=args.data, out_dir=args.out, results=results, cache_dir=args.cache_dir, cells=args.cells,
             kinds=args.kinds, seeds=args.seeds)
    print(json.dumps({"results": str(results)}))
    return 0


def cmd_diagnostics(args: Any) -> int:
    from training.diagnostics import run_diagnostics

    named = dict(item.rsplit("=", 1) for item in args.checkpoint)  # names may hold "=", paths do not
    run_diagnostics(checkpoints={k: Path(v) for k, v in named.items()}, synth=args.synth, mango=args.mango,
                    results=args.results)
    print(json.dumps({"results": str(args.results)}))
    return 0
