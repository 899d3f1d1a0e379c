"""Does a pseudo-triplet carry compatibility signal? Matching quality per option of TrainConfig.

For labeled triplets (A, P, N) of a trained checkpoint, the matcher picks (Ã, P̃, Ñ) in an unlabeled batch
(optionally category-aware, filtered, or searching a larger queue-sized pool). A pseudo-triplet is useful when
Ã and P̃ are compatible. Ground truth:
- synthetic set: compatible = same theme (every item's theme is recorded in synth_meta.json);
- Mango: a proxy, compatible = Ã and P̃ appear together in a training outfit that was *held out* from the
  labels (α < 100 %): stylists put them together, the trainer never saw it; for an α = 100 % checkpoint the
  valid and test outfits play that part (and their items are the pool). Its chance level is the same rate
  for random pool pairs with the matched items' categories, reported beside it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np
import torch

from catalog.polyvore import PolyvoreDataset
from embedder import load_embedder
from training.data import ImageStore
from training.evaluate import embed_items
from training.matching import match_with_options
from training.prepare import category_codes
from training.sampler import Triplet, TripletSampler, split_labeled, unlabeled_pool

Compatible = Callable[[str, str], bool]

# Each option on its own, as TrainConfig spells it, with the pool it searches (queue: batch + 1,024 queued).
OPTIONS: dict[str, dict[str, Any]] = {
    "paper (batch 256)": {"pool": 256},
    "category-aware": {"pool": 256, "category": True},
    "ratio test 0.9": {"pool": 256, "acceptance": "ratio"},
    "mutual NN": {"pool": 256, "acceptance": "mutual"},
    "queue (pool 1280)": {"pool": 1280},
    "all: category + ratio + queue": {"pool": 1280, "category": True, "acceptance": "ratio"},
}


def matching_quality(
    emb: dict[str, np.ndarray], triplets: Sequence[Triplet], pool: Sequence[str], codes: dict[str, int],
    compatible: Compatible, *, seed: int = 0, repeats: int = 4,
) -> dict[str, Any]:
    """Per option: acceptance rate, compatible(Ã, P̃) among accepted, compatible(Ã, Ñ), category(Ã)=category(A)."""
    rng = np.random.default_rng(seed)
    a, p, n = ([t[k] for t in triplets] for k in range(3))

    def vecs(ids: Sequence[str]) -> torch.Tensor:
        return torch.from_numpy(np.stack([emb[i] for i in ids]))

    def cats(ids: Sequence[str]) -> torch.Tensor:
        return torch.tensor([codes.get(i, -1) for i in ids])

    out: dict[str, Any] = {}
    for name, opt in OPTIONS.items():
        size = min(opt["pool"], len(pool))
        acc, good_ap, good_an, same_cat = [], [], [], []
        for _ in range(repeats):
            batch = sorted(rng.choice(len(pool), size=size, replace=False).tolist())
            ids = [pool[k] for k in batch]
            res = match_with_options(
                vecs(a), vecs(p), vecs(n), vecs(ids),
                triplet_cats=torch.stack([cats(a), cats(p), cats(n)]) if opt.get("category") else None,
                key_cats=cats(ids) if opt.get("category") else None, acceptance=opt.get("acceptance", "none"),
            )
            ok = res.accepted.numpy()
            ma, mp, mn = ([ids[k] for k in idx.tolist()] for idx in res.indices)
            acc.append(ok.mean())
            for t in np.flatnonzero(ok):
                good_ap.append(compatible(ma[t], mp[t]))
                good_an.append(compatible(ma[t], mn[t]))
                same_cat.append(codes.get(ma[t]) == codes.get(a[t]))
        out[name] = {
            "accept_rate": round(float(np.mean(acc)), 3),
            "compatible(Ã,P̃)": round(float(np.mean(good_ap)), 4) if good_ap else None,
            "compatible(Ã,Ñ)": round(float(np.mean(good_an)), 4) if good_an else None,
            "category(Ã)=category(A)": round(float(np.mean(same_cat)), 3) if same_cat else None,
            "pseudo_triplets": len(good_ap),
        }
    # Chance: random pool items with the categories of A and P.
    by_cat: dict[int, list[str]] = {}
    for i in pool:
        by_cat.setdefault(codes.get(i, -1), []).append(i)
    hits = []
    for x, y in zip(a, p, strict=True):
        cx, cy = by_cat.get(codes.get(x, -2)), by_cat.get(codes.get(y, -2))
        if cx and cy:
            hits.append(compatible(cx[rng.integers(len(cx))], cy[rng.integers(len(cy))]))
    out["chance (random pool pair, same categories)"] = {"compatible(Ã,P̃)": round(float(np.mean(hits)), 4)}
    return out


def _embed(checkpoint: Path, ds: PolyvoreDataset, ids: list[str]) -> dict[str, np.ndarray]:
    model, card = load_embedder(checkpoint)
    store = ImageStore({i: ds.image_path(i) for i in ids}, card.config.preprocess)
    store.load(ids)
    return dict(zip(ids, embed_items(model, store, ids), strict=True))


def diagnose(checkpoint: Path, root: Path, *, synthetic: bool, n_triplets: int = 512, seed: int = 0) -> dict[str, Any]:
    """Matching quality for one checkpoint on its own training data (α and seed from its training config)."""
    cfg = json.loads((checkpoint / "model_card.json").read_text(encoding="utf-8")).get("training_config", {}) \
        if (checkpoint / "model_card.json").is_file() else {}
    kind, alpha = cfg.get("kind", "nondisjoint"), float(cfg.get("labeled_fraction", 1.0))
    ds = PolyvoreDataset(root, kind)
    train = ds.split("train").outfits
    labeled, hidden = split_labeled(train, alpha, seed=int(cfg.get("seed", 0)))
    pool = unlabeled_pool(dataset_unlabeled=ds.unlabeled_item_ids(("train",)), unlabeled_outfits=hidden,
                          labeled_outfits=labeled)
    triplets = TripletSampler(labeled, ds.items, fallback_items=ds.items).sample(n_triplets,
                                                                               np.random.default_rng(seed))
    codes = category_codes(ds)
    if synthetic:
        meta = json.loads((root / "synth_meta.json").read_text(encoding="utf-8"))
        theme = {k: v["theme"] for k, v in meta["items"].items()}

        def compatible(x: str, y: str) -> bool:
            return theme[x] == theme[y]
        truth = "same theme"
    else:
        if not hidden:
            # α = 100 %: no training outfit was held out; the valid and test outfits are, and their items
            # form the pool the pseudo-triplets are matched in.
            hidden = [*ds.split("valid").outfits, *ds.split("test").outfits]
            pool = sorted({i for o in hidden for i in o.item_ids})
            source = "valid/test outfits (α = 100 %: no training outfit was held out)"
        else:
            source = "held-out training outfits"
        together = {frozenset(pair) for o in hidden for pair in combinations(o.item_ids, 2)}

        def compatible(x: str, y: str) -> bool:
            return frozenset((x, y)) in together
        truth = f"together in one of {len(hidden)} {source}"
    ids = sorted({i for t in triplets for i in t} | set(pool))
    emb = _embed(checkpoint, ds, ids)
    return {"checkpoint": str(checkpoint), "kind": kind, "labeled_fraction": alpha, "ground_truth": truth,
            "pool": len(pool), "options": matching_quality(emb, triplets, pool, codes, compatible, seed=seed)}


def run_diagnostics(*, checkpoints: dict[str, Path], synth: Path, mango: Path, results: Path) -> dict[str, Any]:
    """`NAME=DIR` checkpoints; names starting with `synth` are read against the synthetic set."""
    from training.finalize import write_json

    out = {name: diagnose(ckpt, synth if name.startswith("synth") else mango, synthetic=name.startswith("synth"))
           for name, ckpt in checkpoints.items()}
    write_json(results, out)
    return out
