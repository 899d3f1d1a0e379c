"""Can a linear category head reach the issue's 90 %? Probe the backbone's 512-d features against the 64-d
embedding the shipped head reads (issue 14).

    .venv/bin/python benchmarks/probe_category_features.py CHECKPOINT --data ../shared/data/mango-outfits

Held out as `outfit-compat category-head` reports it: fitted on every catalog item except those of the test
outfits, scored on them. Standardised features, multinomial logistic regression at two L2 strengths.
Writes benchmarks/results/category_probe.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "benchmarks" / "results" / "category_probe.json"


def features(
    checkpoint: Path, data: Path, kind: str, cache_dir: Path | None
) -> tuple[list[str], np.ndarray, np.ndarray, Any]:
    from catalog.polyvore import PolyvoreDataset
    from embedder.checkpoint import load_embedder
    from training.data import ImageStore, to_input

    model, card = load_embedder(checkpoint)
    model.eval()
    ds = PolyvoreDataset(data, kind)
    ids = sorted(ds.items)
    store = ImageStore({i: ds.image_path(i) for i in ids}, card.config.preprocess)
    store.load(ids, cache_dir=cache_dir)
    backbone, embedded = [], []
    with torch.no_grad():
        for k in range(0, len(ids), 256):
            f = model.backbone(to_input(store.batch(ids[k:k + 256]), store.cfg))
            backbone.append(f.numpy())
            embedded.append(torch.nn.functional.normalize(model.projection(f), dim=1).numpy())
    return ids, np.concatenate(backbone), np.concatenate(embedded), (ds, card)


def main(argv: list[str] | None = None) -> int:
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    from training.category_head import accuracy

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint", type=Path)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--kind", default="nondisjoint")
    ap.add_argument("--cache-dir", type=Path, help="reuse/write the decoded images here (training's cache)")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    ids, backbone, embedded, (ds, card) = features(args.checkpoint, args.data, args.kind, args.cache_dir)
    labels = np.array([ds.items[i].category for i in ids])
    test = {i for o in ds.split("test").outfits for i in o.item_ids}
    held = np.array([i in test for i in ids])
    rows = []
    probes = (("backbone (512-d, before the projection)", backbone), ("embedding (64-d, L2-normalised)", embedded))
    for name, x in probes:
        scaler = StandardScaler().fit(x[~held])
        for c in (0.1, 1.0):
            clf = LogisticRegression(C=c, max_iter=3000).fit(scaler.transform(x[~held]), labels[~held])
            pred = clf.predict(scaler.transform(x[held]))
            row = {"features": name, "c": c, **accuracy(list(pred), list(labels[held]))}
            rows.append(row)
            print(json.dumps({k: v for k, v in row.items() if k != "per_category"}), flush=True)
    result = {"checkpoint": str(args.checkpoint), "model_version": card.model_version, "data": str(args.data),
              "test_split": f"{args.kind}/test.json", "fitted_on": int((~held).sum()), "scored_on": int(held.sum()),
              "rows": rows, "cpu": os.uname().machine, "load_average_end": os.getloadavg()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
