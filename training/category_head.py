"""`outfit-compat category-head`: fit the checkpoint's category head on every catalog image.

Every catalog item has a known category (labeled and unlabeled alike), so the head is fitted on all of
them and stored beside the weights (embedder/category_head.py). Its accuracy is reported honestly: a second
head, fitted without the test outfits' items, is scored on them (held out), next to the nearest-neighbour
vote the service used before (10 nearest catalog items, also without the test items).
"""

from __future__ import annotations

import argparse
import json
import logging
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from catalog.polyvore import PolyvoreDataset
from embedder.category_head import CategoryHead, fit_category_head, save_category_head
from embedder.checkpoint import read_model_card

log = logging.getLogger(__name__)
VOTE_NEIGHBOURS = 10


def neighbour_vote(train: np.ndarray, train_labels: Sequence[str], query: np.ndarray, k: int = VOTE_NEIGHBOURS
                   ) -> list[str]:
    """The service's former rule: cosine-weighted (1 + cos) vote of the k nearest training embeddings."""
    out = []
    sims = query @ train.T
    for row in sims:
        votes: dict[str, float] = defaultdict(float)
        for j in np.argsort(-row, kind="stable")[:k]:
            votes[train_labels[j]] += 1.0 + float(row[j])
        out.append(max(sorted(votes), key=lambda c: votes[c]))
    return out


def accuracy(pred: Sequence[str], truth: Sequence[str]) -> dict[str, Any]:
    per: dict[str, list[bool]] = defaultdict(list)
    for p, t in zip(pred, truth, strict=True):
        per[t].append(p == t)
    hits = sum(p == t for p, t in zip(pred, truth, strict=True))
    return {"accuracy": round(hits / max(len(truth), 1), 4), "n": len(truth),
            "per_category": {c: round(sum(v) / len(v), 4) for c, v in sorted(per.items())}}


def fit_and_report(
    features: np.ndarray, ids: Sequence[str], labels: Sequence[str], test_ids: set[str], *,
    model_version: str, c: float,
) -> tuple[CategoryHead, dict[str, Any]]:
    """The head on every item, and the held-out figures of one fitted without `test_ids`."""
    is_test = np.array([i in test_ids for i in ids])
    truth = [lab for lab, t in zip(labels, is_test, strict=True) if t]
    train_labels = [lab for lab, t in zip(labels, is_test, strict=True) if not t]
    held = fit_category_head(features[~is_test], train_labels, model_version=model_version, c=c)
    report: dict[str, Any] = {
        "features": f"L2-normalised embedding (d={features.shape[1]})",
        "items": len(ids),
        "categories": dict(sorted(Counter(labels).items())),
        "c": c,
        "held_out_head": accuracy([p for p, _ in held.predict(features[is_test])], truth),
        "held_out_neighbour_vote": accuracy(
            neighbour_vote(features[~is_test], train_labels, features[is_test]), truth),
        "majority_class": accuracy([Counter(train_labels).most_common(1)[0][0]] * len(truth), truth),
    }
    head = fit_category_head(features, list(labels), model_version=model_version, c=c)
    report["shipped_head_on_test_items"] = {
        **accuracy([p for p, _ in head.predict(features[is_test])], truth),
        "note": "the shipped head saw these items in fitting (it is fitted on every catalog image)",
    }
    return CategoryHead(head.classes, head.weight, head.bias, head.model_version, {
        "held_out_accuracy": report["held_out_head"]["accuracy"], "fitted_on": len(ids), "c": c}), report


def worth_storing(report: dict[str, Any]) -> bool:
    """A head is stored only when, held out, it beats the neighbour vote the service falls back to."""
    return bool(report["held_out_head"]["accuracy"] > report["held_out_neighbour_vote"]["accuracy"])


def run(
    *, checkpoint: Path, data: Path, kind: str, c: float, report_path: Path | None, force: bool = False
) -> dict[str, Any]:
    from training.evaluate import checkpoint_embeddings

    card = read_model_card(checkpoint)
    ds = PolyvoreDataset(data, kind)
    ids = sorted(ds.items)
    features = checkpoint_embeddings(checkpoint, ds, ids)
    test_ids = {i for o in ds.split("test").outfits for i in o.item_ids}
    head, report = fit_and_report(features, ids, [ds.items[i].category for i in ids], test_ids,
                                  model_version=card.model_version, c=c)
    stored = force or worth_storing(report)
    path = save_category_head(checkpoint, head) if stored else None
    if not stored:
        log.warning("the head is not better than the neighbour vote held out (%.3f <= %.3f); not stored "
                    "(--force stores it anyway)", report["held_out_head"]["accuracy"],
                    report["held_out_neighbour_vote"]["accuracy"])
    report = {"checkpoint": str(checkpoint), "model_version": card.model_version, "data": str(data),
              "test_split": f"{kind}/test.json", "test_items": len(test_ids), "stored": stored,
              "head_file": str(path) if path else None, **report}
    if report_path is not None:
        report_path.parent.mkdir(parents=True, exist_ok=True)
        report_path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return report


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("category-head", help="fit a checkpoint's category head (uploads' category) on a catalog")
    p.add_argument("checkpoint", type=Path, help="checkpoint directory; the head is written into it")
    p.add_argument("--data", type=Path, required=True, help="Polyvore-format catalog with known categories")
    p.add_argument("--kind", choices=("nondisjoint", "disjoint"), default="nondisjoint",
                   help="whose test outfits' items are held out for the reported accuracy")
    p.add_argument("--c", type=float, default=10.0, help="inverse L2 strength of the logistic regression")
    p.add_argument("--report", type=Path, help="also write the figures to this JSON file")
    p.add_argument("--force", action="store_true",
                   help="store the head even when the neighbour vote is as accurate held out")
    p.set_defaults(func=cmd_category_head)


def cmd_category_head(args: argparse.Namespace) -> int:
    report = run(checkpoint=args.checkpoint, data=args.data, kind=args.kind, c=args.c, report_path=args.report,
                 force=args.force)
    print(json.dumps({k: report[k] for k in ("stored", "head_file", "held_out_head", "held_out_neighbour_vote")}))
    return 0
