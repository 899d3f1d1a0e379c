"""PNG plots of a run: training curves and a t-SNE of item embeddings coloured by category and by the
item's dominant colour (the paper's Figure 5)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from embedder.colorhist import foreground_pixels
from embedder.files import atomic_path
from embedder.model import Embedder
from training.evaluate import embed_items
from training.prepare import TrainingData


def _save(fig: Any, path: Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png")


def plot_curves(history: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [h for h in history if h.get("type") == "step"]
    epochs = [h for h in history if h.get("type") == "epoch"]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    for key in ("loss", "L_l", "L_ss", "L_pseudo"):
        pts = [(h["step"], h[key]) for h in steps if key in h]
        if pts:
            ax1.plot(*zip(*pts, strict=True), label=key)
    ax1.set_xlabel("step")
    ax1.set_title("training losses")
    ax1.legend()
    for key in ("auc", "fitb", "fitb_distance"):
        pts = [(h["step"], h["valid"][key]) for h in epochs]
        if pts:
            ax2.plot(*zip(*pts, strict=True), marker="o", label=f"valid {key}")
    ax2.set_xlabel("step")
    ax2.set_title("validation")
    ax2.legend()
    _save(fig, path)
    plt.close(fig)


def dominant_colours(arrs: np.ndarray) -> np.ndarray:
    """(N, S, S, 3) uint8 -> (N, 3) mean RGB in [0, 1] of the non-background pixels."""
    out = np.empty((len(arrs), 3), dtype=np.float64)
    for k, a in enumerate(arrs):
        out[k] = foreground_pixels(a).mean(axis=0) / 255.0
    return out


def plot_tsne(
    model: Embedder, data: TrainingData, path: Path, *, points: int, seed: int, batch_size: int = 128
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.manifold import TSNE

    ids = data.test_ids
    if len(ids) > points:
        ids = sorted(np.random.default_rng(seed).choice(ids, size=points, replace=False).tolist())
    if len(ids) < 10:
        return
    emb = embed_items(model, data.store, ids, batch_size=batch_size)
    tsne = TSNE(n_components=2, perplexity=min(30.0, (len(ids) - 1) / 3), random_state=seed, init="pca")
    xy = tsne.fit_transform(emb)
    cats = [data.dataset.items[i].category for i in ids]
    names = sorted(set(cats))
    cmap = plt.get_cmap("tab20")
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 6))
    for k, name in enumerate(names):
        sel = np.array([c == name for c in cats])
        ax1.scatter(xy[sel, 0], xy[sel, 1], s=6, color=cmap(k % 20), label=name)
    ax1.legend(markerscale=3, fontsize=7)
    ax1.set_title("t-SNE of test items: semantic category")
    ax2.scatter(xy[:, 0], xy[:, 1], s=6, c=dominant_colours(data.store.batch(ids)))
    ax2.set_title("t-SNE of test items: dominant colour")
    for ax in (ax1, ax2):
        ax.set_xticks([])
        ax.set_yticks([])
    _save(fig, path)
    plt.close(fig)
