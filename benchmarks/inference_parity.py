"""Accuracy parity of the inference backends on a Polyvore-format test split (used by bench_inference).

fp32 metrics come from the `onnx` backend after checking it against torch per item; int8 metrics from
`onnx-int8` and `openvino-int8` (the same int8 graph on the two runtimes). FITB/AUC via
training.metrics.evaluate_split, the same protocol as training reports.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from catalog.polyvore import PolyvoreDataset
from embedder.backend import embed_pil, load_backend
from embedder.image_io import load_image_file
from embedder.onnx_export import FP32_MIN_COSINE, row_cosines
from training.metrics import evaluate_split

# Issue 7: int8 FITB and AUC within 1 point of fp32.
METRIC_BOUND_POINTS = 1.0


def topk_overlap(a: np.ndarray, b: np.ndarray, k: int = 10) -> float:
    """Mean overlap of each item's k nearest neighbours (itself excluded) under two embeddings."""
    k = min(k, len(a) - 1)
    top_a = np.argsort(-(a @ a.T), axis=1)[:, 1 : k + 1]
    top_b = np.argsort(-(b @ b.T), axis=1)[:, 1 : k + 1]
    return float(np.mean([len(set(x) & set(y)) / k for x, y in zip(top_a, top_b, strict=True)]))


def spread(emb: np.ndarray) -> float:
    """Mean pairwise cosine: near 1 means all items look alike (a random-init model), so answers near-tie."""
    c = emb @ emb.T
    return float(c[np.triu_indices(len(c), k=1)].mean())


def parity_report(
    checkpoint: Path, dataset_root: Path, *, kind: str = "nondisjoint", torch_items: int = 128, threads: int = 2
) -> dict[str, Any]:
    """Embed every test-split item with fp32 and int8, compare per item and on FITB/AUC."""
    ds = PolyvoreDataset(dataset_root, kind=kind)
    split = ds.split("test")
    ids = sorted(ds.outfit_item_ids(("test",)))
    images = [load_image_file(ds.image_path(i)) for i in ids]
    fp32 = embed_pil(load_backend(checkpoint, backend="onnx", threads=threads), images, batch_size=32)
    int8 = embed_pil(load_backend(checkpoint, backend="onnx-int8", threads=threads), images, batch_size=32)
    ov_int8 = embed_pil(load_backend(checkpoint, backend="openvino-int8", threads=threads), images, batch_size=32)
    # torch vs the fp32 export on a seeded subsample (torch eager is the slow one).
    rng = np.random.default_rng(0)
    sub = np.sort(rng.choice(len(ids), size=min(torch_items, len(ids)), replace=False))
    ref = embed_pil(load_backend(checkpoint, backend="torch"), [images[i] for i in sub], batch_size=32)
    cos_fp32 = row_cosines(ref, fp32[sub])
    cos_int8 = row_cosines(fp32, int8)
    m_fp32 = evaluate_split(split, ids, fp32)
    m_int8 = evaluate_split(split, ids, int8)
    m_ov = evaluate_split(split, ids, ov_int8)
    delta = {k: 100.0 * (m_int8[k] - m_fp32[k]) for k in ("fitb", "fitb_distance", "auc")}
    delta_ov = {k: 100.0 * (m_ov[k] - m_fp32[k]) for k in ("fitb", "fitb_distance", "auc")}
    return {
        "dataset": str(dataset_root),
        "kind": kind,
        "split": "test",
        "items": len(ids),
        "fitb_questions": len(split.fitb),
        "compatibility_examples": len(split.compatibility),
        "fp32_vs_torch": {
            "n": len(sub),
            "min_cosine": float(cos_fp32.min()),
            "pass": bool(cos_fp32.min() >= FP32_MIN_COSINE),
        },
        "int8_vs_fp32": {
            "min_cosine": float(cos_int8.min()),
            "mean_cosine": float(cos_int8.mean()),
            "top10_neighbour_overlap": topk_overlap(fp32, int8),
        },
        "embedding_mean_pairwise_cosine": spread(fp32),
        "metrics": {"fp32": m_fp32, "int8": m_int8, "openvino-int8": m_ov},
        "int8_minus_fp32_points": delta,
        "openvino_int8_minus_fp32_points": delta_ov,
        "openvino_int8_vs_onnx_int8_min_cosine": float(row_cosines(int8, ov_int8).min()),
        # The epsilon absorbs float noise: 2 of 200 answers flipped is exactly 1 point, which is within.
        "within_1_point": bool(max(abs(delta["fitb"]), abs(delta["auc"])) <= METRIC_BOUND_POINTS + 1e-9),
        "openvino_int8_within_1_point": bool(
            max(abs(delta_ov["fitb"]), abs(delta_ov["auc"])) <= METRIC_BOUND_POINTS + 1e-9
        ),
    }
