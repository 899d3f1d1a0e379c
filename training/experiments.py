"""Experiment drivers whose JSON outputs docs/RESULTS.md is generated from (never hand-written numbers).

- `run_ablation`: the synthetic-benchmark ablation (colour histogram; L_l; +L_ss; +L_pseudo; full) at
  several labeled fractions and seeds.
- `run_real`: the same methods on a real Polyvore-format photo set (both split kinds).
Each finished run is appended to the results file at once, so an interrupted sweep keeps its results and
a rerun skips what is done.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from training.config import preset

log = logging.getLogger(__name__)

METHODS: dict[str, dict[str, bool]] = {
    "supervised (L_l)": {"use_ss": False, "use_pseudo": False},
    "+L_ss": {"use_ss": True, "use_pseudo": False},
    "+L_pseudo": {"use_ss": False, "use_pseudo": True},
    "full (L_l+L_ss+L_pseudo)": {"use_ss": True, "use_pseudo": True},
}


def _load(path: Path) -> dict[str, Any]:
    if path.is_file():
        return dict(json.loads(path.read_text(encoding="utf-8")))
    return {"runs": [], "baselines": {}}


def _key(r: dict[str, Any]) -> tuple[str, str, float, int]:
    return (r["kind"], r["method"], float(r["labeled_fraction"]), int(r["seed"]))


def run_sweep(
    *, data: Path, out_dir: Path, results: Path, preset_name: str, kinds: Sequence[str], fractions: Sequence[float],
    seeds: Sequence[int], methods: Sequence[str], cache_dir: Path | None = None, meta: dict[str, Any] | None = None,
    refresh_baselines: bool = False,
) -> dict[str, Any]:
    """Train every (kind, method, α, seed) not yet in `results`; baselines once per kind."""
    # Heavy (torch) imports stay inside the commands so `outfit-compat --help` stays fast.
    from training.evaluate import evaluate_features
    from training.finalize import write_json
    from training.loop import train

    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"unknown methods {unknown}; choose from {list(METHODS)}")
    state = _load(results)
    if refresh_baselines:
        state["baselines"] = {}
    state["preset"] = preset_name
    state["data"] = str(data)
    state.update(meta or {})
    done = {_key(r) for r in state["runs"]}
    for kind in kinds:
        if kind not in state["baselines"]:
            state["baselines"][kind] = {
                "colorhist": evaluate_features(data=data, kind=kind, split="test", features="colorhist"),
                "random": evaluate_features(data=data, kind=kind, split="test", features="random"),
            }
            write_json(results, state)
    # Seed-major order: an interrupted sweep still covers every cell with at least one seed.
    for seed in seeds:
        for kind in kinds:
            for alpha in fractions:
                for method in methods:
                    if (kind, method, float(alpha), int(seed)) in done:
                        continue
                    config = preset(preset_name, data=str(data), kind=kind, labeled_fraction=alpha, seed=seed,
                                    **METHODS[method])
                    run_dir = out_dir / f"{kind}-{method.split()[0].strip('+')}-a{alpha:g}-s{seed}"
                    t0 = time.perf_counter()
                    res = train(config, out_dir=run_dir, cache_dir=cache_dir, progress=False)
                    state["runs"].append({
                        "kind": kind, "method": method, "labeled_fraction": alpha, "seed": seed,
                        "test": res.test, "valid": res.valid, "steps": res.steps, "best_epoch": res.best_epoch,
                        "seconds": round(time.perf_counter() - t0, 1), "data": res.data, "run_dir": str(run_dir),
                        "config": config.to_dict(),
                    })
                    write_json(results, state)
                    log.info("%s %s α=%g seed %d: test %s", kind, method, alpha, seed, res.test)
    return state


def register(sub: Any) -> None:
    p = sub.add_parser("experiment", help="run the ablation / real-photo sweeps that docs/RESULTS.md reports")
    p.add_argument("which", choices=("ablation", "real", "diagnostics"))
    p.add_argument("--data", type=Path, help="dataset root (ablation: generated when absent)")
    p.add_argument("--out", type=Path, default=Path("artifacts/experiments"))
    p.add_argument("--results", type=Path, help="result JSON (default benchmarks/results/<which>.json)")
    p.add_argument("--preset", help="training preset (ablation: ablation; real: cpu)")
    p.add_argument("--kinds", nargs="+", choices=("nondisjoint", "disjoint"))
    p.add_argument("--fractions", nargs="+", type=float, default=[0.05, 1.0])
    p.add_argument("--seeds", nargs="+", type=int)
    p.add_argument("--methods", nargs="+", choices=list(METHODS))
    p.add_argument("--cache-dir", type=Path, default=Path("artifacts/cache"))
    p.add_argument("--refresh-baselines", action="store_true",
                   help="recompute the colour-histogram and random baselines (e.g. after a feature change)")
    p.add_argument("--source", type=Path, default=Path("benchmarks/results/ablation.json"),
                   help="diagnostics: the sweep whose seed-0 checkpoints are inspected")
    p.set_defaults(func=cmd_experiment)


def run_diagnostics(*, ablation: Path, results: Path) -> dict[str, Any]:
    """Matching quality and transform strength for the ablation's trained checkpoints (seed 0)."""
    from training.diagnostics import pseudo_triplet_quality, transform_distances
    from training.finalize import write_json

    state = _load(ablation)
    if not state["runs"]:
        raise FileNotFoundError(f"{ablation} holds no finished runs; run `outfit-compat experiment ablation` first")
    data = Path(state["data"])
    out: dict[str, Any] = {}
    for r in state["runs"]:
        if r["seed"] != 0:
            continue
        ckpt = Path(r["run_dir"]) / "best"
        out[f"{r['method']} α={r['labeled_fraction']:g}"] = {
            "pseudo_triplets": pseudo_triplet_quality(ckpt, data),
            "transforms": transform_distances(ckpt, data),
        }
    write_json(results, out)
    return out


def cmd_experiment(args: Any) -> int:
    import torch

    if args.which == "diagnostics":
        results = args.results or Path("benchmarks/results/diagnostics.json")
        run_diagnostics(ablation=args.source, results=results)
        print(json.dumps({"results": str(results)}))
        return 0
    if args.which == "ablation":
        data = args.data or Path("artifacts/synth-ablation")
        meta: dict[str, Any] = {}
        if not (data / "nondisjoint" / "test.json").is_file():
            from catalog.synth import generate_synthetic

            generate_synthetic(data, items=2000, outfits=1000, seed=0, image_size=64)
        meta["synthetic"] = {"items": 2000, "outfits": 1000, "seed": 0, "image_size": 64}
        kinds, seeds, methods = ["nondisjoint"], [0, 1, 2], list(METHODS)
        preset_name = args.preset or "ablation"
    else:
        if args.data is None:
            raise SystemExit("error: experiment real needs --data ROOT")
        data, meta = args.data, {}
        kinds, seeds, preset_name = ["nondisjoint", "disjoint"], [0], args.preset or "cpu"
        methods = ["supervised (L_l)", "full (L_l+L_ss+L_pseudo)"]
    meta["torch_threads"] = torch.get_num_threads()
    results = args.results or Path("benchmarks/results") / f"{args.which}.json"
    results.parent.mkdir(parents=True, exist_ok=True)
    run_sweep(data=data, out_dir=args.out / args.which, results=results, preset_name=preset_name,
              kinds=args.kinds or kinds, fractions=args.fractions, seeds=args.seeds or seeds,
              methods=args.methods or methods, cache_dir=args.cache_dir, meta=meta,
              refresh_baselines=args.refresh_baselines)
    print(json.dumps({"results": str(results)}))
    return 0
