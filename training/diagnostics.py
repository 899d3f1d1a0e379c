"""Why L_pseudo helps or not, measured on the synthetic set whose ground truth (each item's theme) is known.

- Matching quality: for labeled triplets, are the pseudo-triplet's Ã and P̃ from one theme (compatible)
  and Ñ from another, as the labeled triplet was? Measured for several unlabeled-batch sizes, because the
  nearest neighbour in a small batch is often far away.
- Transform strength: distances d(x, T_s x) and d(x, T_a x) in the trained embedding space.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from catalog.polyvore import PolyvoreDataset
from embedder import load_embedder
from training.data import ImageStore, to_input
from training.evaluate import embed_items
from training.matching import nearest_neighbors
from training.sampler import TripletSampler
from training.transforms import ViewTransforms


def item_themes(root: Path) -> dict[str, str]:
    meta = json.loads((root / "synth_meta.json").read_text(encoding="utf-8"))
    return {k: v["theme"] for k, v in meta["items"].items()}


def pseudo_triplet_quality(
    checkpoint: Path, root: Path, *, batch_sizes: Sequence[int] = (64, 256, 1024), n_triplets: int = 512,
    seed: int = 0,
) -> dict[str, Any]:
    """Theme agreement of labeled triplets and of their pseudo-triplets per unlabeled-batch size."""
    model, card = load_embedder(checkpoint)
    ds = PolyvoreDataset(root, "nondisjoint")
    themes = item_themes(root)
    train = ds.split("train").outfits
    rng = np.random.default_rng(seed)
    triplets = TripletSampler(train, ds.items, fallback_items=ds.items).sample(n_triplets, rng)
    pool = ds.unlabeled_item_ids(("train",))
    needed = sorted({i for t in triplets for i in t} | set(pool))
    store = ImageStore({i: ds.image_path(i) for i in needed}, card.config.preprocess)
    store.load(needed)
    emb = dict(zip(needed, embed_items(model, store, needed), strict=True))

    def agree(x: Sequence[str], y: Sequence[str]) -> float:
        return float(np.mean([themes[a] == themes[b] for a, b in zip(x, y, strict=True)]))

    a, p, n = ([t[k] for t in triplets] for k in range(3))
    out: dict[str, Any] = {
        "labeled": {"theme(A)=theme(P)": agree(a, p), "theme(A)=theme(N)": agree(a, n)},
        "unlabeled_pool": len(pool),
        "chance_same_theme": float(sum(v * v for v in np.unique(list(themes.values()), return_counts=True)[1])
                                   / len(themes) ** 2),
        "by_batch": {},
    }
    for size in batch_sizes:
        if size > len(pool):
            continue
        batch = sorted(rng.choice(pool, size=size, replace=False).tolist())
        keys = torch.from_numpy(np.stack([emb[i] for i in batch]))

        def match(ids: list[str], keys: torch.Tensor = keys, batch: list[str] = batch) -> list[str]:
            q = torch.from_numpy(np.stack([emb[i] for i in ids]))
            return [batch[j] for j in nearest_neighbors(q, keys).tolist()]

        pa, pp, pn = match(a), match(p), match(n)
        dist = [float(np.linalg.norm(emb[x] - emb[m])) for x, m in zip(a, pa, strict=True)]
        out["by_batch"][str(size)] = {
            "theme(Ã)=theme(P̃)": agree(pa, pp), "theme(Ã)=theme(Ñ)": agree(pa, pn),
            "theme(A)=theme(Ã)": agree(a, pa), "mean_match_distance": float(np.mean(dist)),
        }
    return out


def transform_distances(checkpoint: Path, root: Path, *, n_items: int = 256, seed: int = 0) -> dict[str, float]:
    """Mean embedding distance from an item to its T_s view and to its T_a view."""
    model, card = load_embedder(checkpoint)
    ds = PolyvoreDataset(root, "nondisjoint")
    ids = sorted(ds.items)[:n_items]
    store = ImageStore({i: ds.image_path(i) for i in ids}, card.config.preprocess)
    arrs = store.batch(ids)
    views = ViewTransforms.default()
    rng = np.random.default_rng(seed)
    pairs = [views.views(x, rng) for x in arrs]
    with torch.inference_mode():
        stacks = (arrs, np.stack([s for s, _ in pairs]), np.stack([t for _, t in pairs]))
        e = [model(to_input(v, card.config.preprocess), normalize=True).numpy() for v in stacks]
    d_s = np.linalg.norm(e[0] - e[1], axis=1)
    d_a = np.linalg.norm(e[0] - e[2], axis=1)
    return {"d(x,T_s x)": float(d_s.mean()), "d(x,T_a x)": float(d_a.mean()),
            "fraction_T_s_closer": float(np.mean(d_s < d_a))}
