"""Seeded synthetic embeddings for tests and benchmarks: clustered unit vectors, like a trained model's.

Uniform random vectors in 64-d have no neighbourhood structure at all (every point is nearly equidistant),
which no trained embedding looks like. A mixture of overlapping clusters is. With the default spread
(noise norm 1.5x the centre's) a point's cosine to its own centre is only ~0.55, a deliberately hard case:
HNSW32 needs efSearch 256 for recall@10 >= 0.95 at 1M (docs/INDEX.md).
"""

from __future__ import annotations

import numpy as np

from index.store import ItemRecord

CATEGORIES: tuple[str, ...] = ("tops", "bottoms", "shoes", "bags", "outerwear", "jewellery", "hats", "sunglasses")


def synthetic_vectors(
    n: int, dim: int, *, clusters: int = 256, spread: float = 1.5, seed: int = 0, chunk: int = 262_144
) -> np.ndarray:
    """(n, dim) float32 L2-normalised vectors around `clusters` random centres, built in chunks (1M fits)."""
    if n < 0 or dim < 2 or clusters < 1:
        raise ValueError(f"need n >= 0, dim >= 2, clusters >= 1 (got {n}, {dim}, {clusters})")
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dim)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    out = np.empty((n, dim), dtype=np.float32)
    for s in range(0, n, chunk):
        m = min(chunk, n - s)
        which = rng.integers(0, clusters, size=m)
        noise = rng.standard_normal((m, dim)).astype(np.float32) * (spread / np.sqrt(dim))
        block = centres[which] + noise
        block /= np.linalg.norm(block, axis=1, keepdims=True)
        out[s : s + m] = block
    return out


def synthetic_records(n: int, *, seed: int = 0, categories: tuple[str, ...] = CATEGORIES) -> list[ItemRecord]:
    """Item records with seeded, uneven category sizes (real catalogs have many tops, few hats)."""
    rng = np.random.default_rng(seed + 1)
    weights = np.linspace(2.0, 0.5, len(categories))
    cats = rng.choice(len(categories), size=n, p=weights / weights.sum())
    return [
        ItemRecord(f"s{i:07d}", categories[c], f"synthetic {categories[c]} {i}", None, float(10 + i % 90), "")
        for i, c in enumerate(cats)
    ]
