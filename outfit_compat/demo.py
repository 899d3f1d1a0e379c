"""`outfit-compat demo`: the embedded default, end to end on synthetic data, CPU, no Redis.

Steps: synthesise the benchmark -> colour-histogram baseline -> (train -> index -> serve as they land).
Each step reuses what an earlier run left in --workdir, so a second run is quick.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

from embedder.backend_family import BACKENDS
from index.demo_step import DEFAULT_BACKEND

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="run the whole pipeline on the embedded synthetic default")
    p.add_argument("--workdir", type=Path, default=Path("artifacts/demo"))
    p.add_argument("--items", type=int, default=2000)
    p.add_argument("--outfits", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-serve", action="store_true", help="stop after the index step instead of serving it")
    p.add_argument(
        "--backend", choices=BACKENDS, default=DEFAULT_BACKEND,
        help="embedder backend for the index and the server (default openvino-int8, the fastest on CPUs: "
        "docs/PERFORMANCE.md); torch is the fp32 reference",
    )
    p.add_argument("--host", default="127.0.0.1", help="where the final serve step listens")
    p.add_argument("--port", type=int, default=8000)
    p.set_defaults(func=cmd_demo)


def ensure_synthetic(data_dir: Path, *, items: int, outfits: int, seed: int) -> Path:
    """Generate the synthetic dataset unless a complete one is already there."""
    from catalog.synth import generate_synthetic

    marker = data_dir / "nondisjoint" / "test.json"
    if marker.is_file() and (data_dir / "disjoint" / "test.json").is_file():
        log.info("reusing synthetic data in %s", data_dir)
        return data_dir
    log.info("generating synthetic data (%d items, %d outfits) in %s", items, outfits, data_dir)
    generate_synthetic(data_dir, items=items, outfits=outfits, seed=seed)
    return data_dir


def colorhist_baseline(data_dir: Path, kind: str = "nondisjoint", split: str = "test") -> dict[str, float]:
    from catalog.polyvore import PolyvoreDataset
    from embedder.colorhist import color_histogram_features
    from embedder.image_io import load_image_file
    from training.metrics import evaluate_split

    ds = PolyvoreDataset(data_dir, kind)
    data = ds.split(split)
    ids = sorted(data.item_ids())
    feats = color_histogram_features(load_image_file(ds.image_path(i)) for i in ids)
    return evaluate_split(data, ids, feats)


def cmd_demo(args: argparse.Namespace) -> int:
    workdir: Path = args.workdir
    data_dir = ensure_synthetic(workdir / "data", items=args.items, outfits=args.outfits, seed=args.seed)
    results: dict[str, Any] = {"colorhist": colorhist_baseline(data_dir)}
    from index.demo_step import demo_index
    from training.demo_step import demo_category_head, demo_train

    trained = demo_train(workdir, data_dir, seed=args.seed)
    results[f"trained ({trained.losses})"] = trained.test
    # Before the index step, whose export then carries the head as a second output.
    results["category_head"] = demo_category_head(trained.checkpoint, data_dir)
    results["index"] = demo_index(workdir, data_dir, checkpoint=trained.checkpoint, seed=args.seed,
                                  backend=args.backend)
    print(json.dumps({"data": str(data_dir), "test_nondisjoint": results}, indent=2))
    if not args.no_serve:
        from service.cli import serve

        # Last step: serve the demo index (web page at /, API docs at /docs) until interrupted.
        serve(host=args.host, port=args.port, index=Path(results["index"]["index"]), checkpoint=trained.checkpoint,
              backend=args.backend)
    return 0
