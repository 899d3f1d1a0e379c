"""Which category head (issue 14)? Held-out accuracy of branch variants on one checkpoint.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/category_head_variants.py CHECKPOINT \
        '{"epochs": 10, "fine_classes": false}' '{"epochs": 6, "start": 2}' [--out FILE]

Each argument is a `training.category_head.HeadFitConfig` as JSON. Same protocol as `outfit-compat
category-head`: fitted on every Mango item except those of the nondisjoint test outfits, scored on those
(1,880), beside the neighbour vote; no head is stored. Appends one JSON line per variant to --out
(default benchmarks/results/category_head_variants.jsonl).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main(argv: list[str] | None = None) -> int:
    from catalog.polyvore import PolyvoreDataset
    from embedder.checkpoint import load_embedder
    from embedder.int8_parity import cpu_kind
    from training.category_head import HeadFitConfig, fit_and_report, trunk_maps
    from training.data import ImageStore

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint", type=Path)
    ap.add_argument("variants", nargs="+", help="HeadFitConfig fields as JSON")
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "mango-outfits")
    ap.add_argument("--cache-dir", type=Path)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "category_head_variants.jsonl")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    model, card = load_embedder(args.checkpoint)
    ds = PolyvoreDataset(args.data, "nondisjoint")
    ids = sorted(ds.items)
    store = ImageStore({i: ds.image_path(i) for i in ids}, card.config.preprocess)
    store.load(ids, cache_dir=args.cache_dir)
    images = store.batch(ids)
    test = {i for o in ds.split("test").outfits for i in o.item_ids}
    is_test = np.array([i in test for i in ids])
    labels = [ds.items[i].category for i in ids]
    fine = [ds.items[i].category_id for i in ids]
    views: dict[int, list[torch.Tensor]] = {}
    for spec in args.variants:
        cfg = HeadFitConfig(**json.loads(spec))
        if cfg.start not in views:
            views[cfg.start] = [trunk_maps(model, images, store.cfg, flip=f, upto=cfg.start) for f in (False, True)]
        started = time.perf_counter()
        _, _, report = fit_and_report(model, views[cfg.start], labels, is_test, cfg, fine=fine, final=False)
        row = {"checkpoint": str(args.checkpoint), "model_version": card.model_version, "variant": json.loads(spec),
               "fine_classes": report["fine_classes"], "held_out_head": report["held_out_head"],
               "held_out_head_mean_confidence": report["held_out_head_mean_confidence"],
               "held_out_neighbour_vote": report["held_out_neighbour_vote"]["accuracy"],
               "seconds": round(time.perf_counter() - started), "torch_threads": torch.get_num_threads(),
               "cpu": cpu_kind(), "load_average_end": os.getloadavg()}
        print(json.dumps(row), flush=True)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        with args.out.open("a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
