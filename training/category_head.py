"""`outfit-compat category-head`: fit the checkpoint's category head on every catalog image.

Every catalog item has a known category (labeled and unlabeled alike). The head (embedder/category_head.py)
is fine-tuned copies of the embedder's layer3 and layer4 (or layer4 alone) plus a linear layer over the frozen
trunk's layer2 (layer3) maps, trained with cross-entropy on all of them. Its accuracy is reported held out: a
second head, fitted without the test outfits' items, is scored on them, next to the nearest-neighbour vote the
service falls back to (10 nearest catalog embeddings, also without the test items) and the majority class.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from catalog.polyvore import PolyvoreDataset
from embedder.category_head import CategoryBranch, branch_stages, save_category_head
from embedder.checkpoint import load_embedder
from embedder.model import Embedder
from training.data import ImageStore, to_input

log = logging.getLogger(__name__)
VOTE_NEIGHBOURS = 10
MIN_FINE_ITEMS = 20  # a sub-category with fewer training items joins its category's pooled class


@dataclass(frozen=True)
class HeadFitConfig:
    # Chosen on the Mango nondisjoint split held out (docs/SERVICE.md, "Category head";
    # benchmarks/results/category_head_variants.jsonl): a branch from layer2 beat one from layer3 by ~2 points;
    # 12 epochs beat 8 by ~2 points and 16 added nothing.
    epochs: int = 12
    lr: float = 1e-3
    weight_decay: float = 0.05
    batch_size: int = 128
    label_smoothing: float = 0.1
    start: int = 2  # the branch reads the trunk's layer2 maps, fine-tuning layer3 and layer4 (3: layer4 only)
    fine_classes: bool = True  # learn the catalog's sub-categories, summed into categories (FineClasses)
    seed: int = 0


def neighbour_vote(train: np.ndarray, train_labels: Sequence[str], query: np.ndarray, k: int = VOTE_NEIGHBOURS
                   ) -> list[str]:
    """The service's fallback rule: cosine-weighted (1 + cos) vote of the k nearest training embeddings."""
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


@torch.inference_mode()
def trunk_maps(
    model: Embedder, images: np.ndarray, store_cfg: Any, *, flip: bool, upto: int = 3, batch: int = 256
) -> torch.Tensor:
    """uint8 (N, S, S, 3) images -> the frozen trunk's layer`upto` maps, optionally of the mirrored images."""
    out = []
    for k in range(0, len(images), batch):
        x = to_input(images[k:k + batch], store_cfg)
        out.append(model.trunk(x.flip(-1) if flip else x, upto=upto))
    return torch.cat(out)


@torch.inference_mode()
def branch_probabilities(branch: CategoryBranch, maps: torch.Tensor, batch: int = 512) -> np.ndarray:
    branch.eval()
    return torch.cat([branch.probabilities(maps[k:k + batch]) for k in range(0, len(maps), batch)]).numpy()


@dataclass(frozen=True)
class FineClasses:
    """The classes the branch's linear layer scores: catalog sub-categories (`category_id`) with at least
    MIN_FINE_ITEMS training items, the rest of each category pooled as one class."""

    names: tuple[str, ...]
    to_class: tuple[int, ...]  # fine class -> index into the categories
    of_item: np.ndarray  # per item, its fine class

    @classmethod
    def of(cls, labels: Sequence[str], fine: Sequence[str], classes: Sequence[str], train: np.ndarray,
           use_fine: bool) -> FineClasses:
        keyed = [f"{c}/{f}" if use_fine and f else c for c, f in zip(labels, fine, strict=True)]
        counts = Counter(k for k, t in zip(keyed, train, strict=True) if t)
        keyed = [k if counts[k] >= MIN_FINE_ITEMS else c for k, c in zip(keyed, labels, strict=True)]
        names = tuple(sorted(set(keyed) | set(classes)))  # every category keeps a class of its own
        return cls(names, tuple(classes.index(n.split("/")[0]) for n in names),
                   np.array([names.index(k) for k in keyed]))


def fit_branch(model: Embedder, views: Sequence[torch.Tensor], y: np.ndarray, fine: FineClasses, n_classes: int,
               cfg: HeadFitConfig) -> CategoryBranch:
    """Cross-entropy over the fine classes `y` on copies of the trained stages (each step sees a random view:
    the image or its mirror).

    Classes are weighted by the square root of their inverse frequency (capped): the catalog has 87 tops per
    hat, and unweighted the rare classes are never predicted.
    """
    gen = torch.Generator().manual_seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    branch = CategoryBranch(n_classes, start=cfg.start, stages=branch_stages(model, cfg.start),
                            fine_to_class=fine.to_class)
    target = torch.from_numpy(y).long()
    n_fine = len(fine.names)
    counts = torch.bincount(target, minlength=n_fine).float().clamp(min=1)
    weight = (counts.sum() / counts / n_fine).clamp(max=25.0).sqrt()
    opt = torch.optim.AdamW(branch.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    n = len(target)
    per_epoch = (n + cfg.batch_size - 1) // cfg.batch_size
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=cfg.epochs * per_epoch,
                                                pct_start=0.1)
    started = time.perf_counter()
    for epoch in range(cfg.epochs):
        branch.train()
        perm = torch.randperm(n, generator=gen)
        for k in range(0, n, cfg.batch_size):
            idx = perm[k:k + cfg.batch_size]
            view = torch.randint(len(views), (len(idx),), generator=gen)
            x = torch.stack([views[int(v)][int(i)] for v, i in zip(view, idx, strict=True)])
            loss = F.cross_entropy(branch(x), target[idx], weight=weight, label_smoothing=cfg.label_smoothing)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        log.info("category head epoch %d/%d: loss %.3f (%.0f s)", epoch + 1, cfg.epochs, loss.item(),
                 time.perf_counter() - started)
    return branch.eval()


def worth_storing(report: dict[str, Any]) -> bool:
    """A head is stored only when, held out, it beats the neighbour vote the service falls back to."""
    return bool(report["held_out_head"]["accuracy"] > report["held_out_neighbour_vote"]["accuracy"])


def fit_and_report(
    model: Embedder, views: Sequence[torch.Tensor], labels: Sequence[str], is_test: np.ndarray, cfg: HeadFitConfig,
    *, fine: Sequence[str] | None = None, final: bool = True,
) -> tuple[CategoryBranch | None, tuple[str, ...], dict[str, Any]]:
    """Held-out figures of a head fitted without the `is_test` items; then (with `final`) the head on all.
    `fine`: each item's sub-category (`category_id`), used when `cfg.fine_classes`."""
    classes = tuple(sorted(set(labels)))
    sub = list(fine) if fine is not None else [""] * len(labels)
    truth = [c for c, t in zip(labels, is_test, strict=True) if t]
    train_labels = [c for c, t in zip(labels, is_test, strict=True) if not t]
    keep = torch.from_numpy(~is_test)
    held_fine = FineClasses.of(labels, sub, classes, ~is_test, cfg.fine_classes)
    held = fit_branch(model, [v[keep] for v in views], held_fine.of_item[~is_test], held_fine, len(classes), cfg)
    probs = branch_probabilities(held, views[0][torch.from_numpy(is_test)])
    with torch.inference_mode():
        maps = views[0] if cfg.start == 3 else model.backbone.layer3(views[0])
        emb = model.embed_from_trunk(maps, normalize=True).numpy()
    report: dict[str, Any] = {
        "head": f"fine-tuned copies of the stages after layer{cfg.start} + linear, on the frozen trunk's "
                f"layer{cfg.start} maps (embedder/category_head.py)",
        "fit": asdict(cfg),
        "items": len(labels),
        "categories": dict(sorted(Counter(labels).items())),
        "fine_classes": len(held_fine.names),
        "held_out_head": accuracy([classes[k] for k in probs.argmax(axis=1)], truth),
        "held_out_head_mean_confidence": round(float(probs.max(axis=1).mean()), 4),
        "held_out_neighbour_vote": accuracy(neighbour_vote(emb[~is_test], train_labels, emb[is_test]), truth),
        "majority_class": accuracy([Counter(train_labels).most_common(1)[0][0]] * len(truth), truth),
    }
    if not final:
        return held, classes, report
    all_fine = FineClasses.of(labels, sub, classes, np.ones(len(labels), dtype=bool), cfg.fine_classes)
    head = fit_branch(model, views, all_fine.of_item, all_fine, len(classes), cfg)
    return head, classes, report


def run(
    *, checkpoint: Path, data: Path, kind: str, cfg: HeadFitConfig, report_path: Path | None, force: bool = False,
    cache_dir: Path | None = None,
) -> dict[str, Any]:
    model, card = load_embedder(checkpoint)
    model.eval()
    ds = PolyvoreDataset(data, kind)
    ids = sorted(ds.items)
    store = ImageStore({i: ds.image_path(i) for i in ids}, card.config.preprocess)
    store.load(ids, cache_dir=cache_dir)
    images = store.batch(ids)
    views = [trunk_maps(model, images, store.cfg, flip=f, upto=cfg.start) for f in (False, True)]
    del images
    test_ids = {i for o in ds.split("test").outfits for i in o.item_ids}
    is_test = np.array([i in test_ids for i in ids])
    labels = [ds.items[i].category for i in ids]
    started = time.perf_counter()
    fine = [ds.items[i].category_id for i in ids]
    branch, classes, report = fit_and_report(model, views, labels, is_test, cfg, fine=fine)
    assert branch is not None
    stored = force or worth_storing(report)
    path = None
    if stored:
        path = save_category_head(checkpoint, branch, classes, model_version=card.model_version, metrics={
            "held_out_accuracy": report["held_out_head"]["accuracy"], "fitted_on": len(ids),
            "held_out_split": f"{kind}/test.json", "data": str(data)})
    else:
        log.warning("the head is not better than the neighbour vote held out (%.3f <= %.3f); not stored "
                    "(--force stores it anyway)", report["held_out_head"]["accuracy"],
                    report["held_out_neighbour_vote"]["accuracy"])
    report = {"checkpoint": str(checkpoint), "model_version": card.model_version, "data": str(data),
              "image_size": card.config.preprocess.image_size, "test_split": f"{kind}/test.json",
              "test_items": len(test_ids), "stored": stored, "head_file": str(path) if path else None,
              "fit_seconds": round(time.perf_counter() - started, 1), "torch_threads": torch.get_num_threads(),
              **report}
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
    p.add_argument("--epochs", type=int, default=HeadFitConfig.epochs)
    p.add_argument("--lr", type=float, default=HeadFitConfig.lr)
    p.add_argument("--seed", type=int, default=HeadFitConfig.seed)
    p.add_argument("--start", type=int, choices=(2, 3), default=HeadFitConfig.start,
                   help="the branch reads the trunk's layer2 maps, fine-tuning copies of layer3 and layer4 (2), or "
                        "layer3 maps, fine-tuning layer4 only (3: about half the extra inference cost)")
    p.add_argument("--no-fine-classes", dest="fine_classes", action="store_false",
                   help="learn the categories only, not the catalog's sub-categories (category_id)")
    p.add_argument("--cache-dir", type=Path, help="keep decoded images here as .npz (training's cache)")
    p.add_argument("--report", type=Path, help="also write the figures to this JSON file")
    p.add_argument("--force", action="store_true",
                   help="store the head even when the neighbour vote is as accurate held out")
    p.set_defaults(func=cmd_category_head)


def cmd_category_head(args: argparse.Namespace) -> int:
    if args.epochs < 1 or args.lr <= 0:
        raise SystemExit("--epochs must be >= 1 and --lr > 0")
    cfg = HeadFitConfig(epochs=args.epochs, lr=args.lr, seed=args.seed, start=args.start,
                        fine_classes=args.fine_classes)
    report = run(checkpoint=args.checkpoint, data=args.data, kind=args.kind, cfg=cfg, report_path=args.report,
                 force=args.force, cache_dir=args.cache_dir)
    print(json.dumps({k: report[k] for k in ("stored", "head_file", "held_out_head", "held_out_neighbour_vote")}))
    return 0
