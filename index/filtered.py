"""Exact search over the items a filter allows.

HNSW with an ID selector walks the graph through rejected nodes and returns fewer than k hits, or misses
near ones, once few items pass (the benchmark measures it). Filtered searches are therefore exact,
over the allowed set only: FAISS's `fvec_inner_products_by_idx` scores the allowed vectors where the
index already holds them in memory (an HNSW's flat storage or a Flat index), without copying them, so
the cost grows with the allowed count. Measured at 1M vectors (d = 64, thread CPU time per query on
the loaded 2-core machine): 0.18 / 4.2 / 9.4 / 16 ms at 1 / 10 / 25 / 50 % allowed, against 1.1 / 10
/ 31 / 65 ms for copying the allowed vectors first and 23 ms for scoring all of them. Indexes without a
flat copy (IVF and other factories) read the allowed rows of `vectors.npy`.

Large allowed sets (loose filters on a big catalog) are scanned as int8 first (`Int8Sketch`): a quarter of
the bytes, and FAISS's int8 x int8 kernel. That scan only proposes candidates; their exact scores come from
the float vectors, and a bound on the int8 error proves that no item left out could reach the top k (else
the candidate list grows, up to the whole allowed set). Measured at 1M vectors on an AVX2 core: 4.2 ms at
50 % allowed against 25 ms for the float pass, 0.96 against 7.1 ms at 10 %.

The result is the exact top k of the allowed set (recall 1.0 against brute force at every selectivity).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import faiss
import numpy as np


@dataclass(frozen=True)
class FlatView:
    """An index's vectors in its internal order: `members[i]` is the row (FAISS id) of internal id i."""

    members: np.ndarray  # int64 rows
    xb: np.ndarray | None  # (n, d) float32 view of the index's own storage; None: read rows from `vectors.npy`


def flat_view(index: faiss.Index) -> FlatView:
    """The rows and (where FAISS keeps them flat) the stored vectors of a Flat or HNSW index, without a copy.

    The view points into memory the index owns: keep the index alive as long as the view.
    """
    outer = faiss.downcast_index(index)
    members: np.ndarray | None = None
    inner = outer
    if isinstance(outer, faiss.IndexIDMap | faiss.IndexIDMap2):
        members = faiss.vector_to_array(outer.id_map).astype(np.int64)
        inner = faiss.downcast_index(outer.index)
    if isinstance(inner, faiss.IndexHNSW):
        inner = faiss.downcast_index(inner.storage)
    n = int(index.ntotal)
    if members is None:
        members = np.arange(n, dtype=np.int64)
    xb = None
    if isinstance(inner, faiss.IndexFlat) and n:
        xb = faiss.rev_swig_ptr(inner.get_xb(), n * inner.d).reshape(n, inner.d)
    return FlatView(members, xb)


def exact_search(
    q: np.ndarray, view: FlatView, positions: np.ndarray, k: int, vectors: np.ndarray
) -> list[list[tuple[float, int]]]:
    """Per query of `q` (normalised, (nq, d)), the exact top k (score, row) over internal ids `positions`.

    `vectors` (all rows, e.g. the memory-mapped `vectors.npy`) is read only when the index keeps no flat
    copy (IVF and other factories).
    """
    if len(positions) == 0:
        return [[] for _ in range(len(q))]
    rows = view.members[positions]
    allowed = None if view.xb is not None else np.asarray(vectors[rows], dtype=np.float32)
    out = []
    for qi in q:
        if allowed is None:
            assert view.xb is not None
            srow = inner_products_by_idx(qi, view.xb, positions)
        else:
            srow = inner_products(qi, allowed)
        out.append(top_k(srow, rows, k))
    return out


def top_k(scores: np.ndarray, rows: np.ndarray, k: int) -> list[tuple[float, int]]:
    """The k best (score, row), best first; equal scores by row, so the answer does not depend on the order
    the items come in (argpartition alone keeps an arbitrary few of the items tied at the k-th score)."""
    kk = min(k, len(scores))
    if kk <= 0:
        return []
    if len(scores) <= 1024:  # small (a sketch's candidates): one sort is cheaper than partitioning
        top = np.lexsort((rows, -scores))[:kk]
        return [(float(scores[i]), int(rows[i])) for i in top]
    if kk < len(scores):
        kth = scores[np.argpartition(-scores, kk - 1)[kk - 1]]
        better = np.flatnonzero(scores > kth)
        tied = np.flatnonzero(scores == kth)
        top = np.concatenate([better, tied[np.argsort(rows[tied], kind="stable")][: kk - len(better)]])
    else:
        top = np.arange(len(scores))
    top = top[np.lexsort((rows[top], -scores[top]))]
    return [(float(scores[i]), int(rows[i])) for i in top]


def exact_scores(query: np.ndarray, view: FlatView, positions: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """query . x for the items at internal ids `positions`: the same kernels as `exact_search`."""
    if view.xb is not None:
        return inner_products_by_idx(query, view.xb, positions)
    return inner_products(query, np.asarray(vectors[view.members[positions]], dtype=np.float32))


# Allowed sets at least this large are scanned as int8 first: the crossover measured at 1M vectors on an AVX2
# core (4k scattered items: float 0.15 ms, sketch 0.13 ms; 16k: 0.71 against 0.22 ms).
SKETCH_MIN_ALLOWED = 4_096
# Candidates the first int8 scan proposes (at least 4 k); each failed proof multiplies them by 8.
SKETCH_FIRST_CANDIDATES = 64
_SKETCH_CHUNK = 65_536  # rows converted at a time, so building never holds a float copy of the whole set
_ROUNDING = 0.5 + 1e-4  # |x / scale - code| per dimension, with room for float32 division


@dataclass(frozen=True)
class Int8Sketch:
    """int8 codes of one allowed set: code = rint(x / scale) per dimension, |code| <= 127.

    Scanned with FAISS's QT_8bit_direct_signed (exact int8 x int8 dot products, query quantised too).
    `max_norm` = max ||x / scale|| over the set, for the error bound (`quantise_query`).
    """

    positions: np.ndarray  # internal ids, in code order
    codes: faiss.IndexScalarQuantizer
    scale: np.ndarray  # (d,) float32
    max_norm: float

    @property
    def nbytes(self) -> int:
        return int(self.positions.nbytes + self.codes.ntotal * self.codes.code_size)

    def quantise_query(self, query: np.ndarray) -> tuple[np.ndarray, float, float]:
        """(int8 query as float32, step, bound): for every item, |q.x - step * (q_int8 . code)| <= bound.

        With q_i scale_i = step (a_i + e_i) and x_i = scale_i (c_i + r_i), |r_i| <= 1/2, |e_i| <= 1/2:
        q.x = step (a.c + a.r + e.(c + r)) and |a.r| <= sum|a_i| / 2, |e.(c + r)| <= ||e|| ||x / scale||.
        """
        qs = np.asarray(query, dtype=np.float64) * self.scale
        peak = float(np.abs(qs).max())
        step = peak / 127.0 if peak > 0 else 1.0
        a = np.rint(qs / step)
        e = qs / step - a
        bound = step * (_ROUNDING * float(np.abs(a).sum()) + float(np.linalg.norm(e)) * self.max_norm)
        # float32 rounding of the exact scores and of the int8 scan's sum (exact: integers below 2^24)
        return a.astype(np.float32), step, bound + 1e-5


def build_sketch(view: FlatView, positions: np.ndarray, vectors: np.ndarray) -> Int8Sketch:
    """The int8 sketch of the items at internal ids `positions` (see `Int8Sketch`)."""
    d = view.xb.shape[1] if view.xb is not None else int(vectors.shape[1])

    def chunks() -> Iterator[np.ndarray]:
        for start in range(0, len(positions), _SKETCH_CHUNK):
            part = positions[start:start + _SKETCH_CHUNK]
            src = view.xb[part] if view.xb is not None else vectors[view.members[part]]
            yield np.asarray(src, dtype=np.float32)

    peak = np.zeros(d, dtype=np.float32)
    for x in chunks():
        peak = np.maximum(peak, np.abs(x).max(axis=0))
    scale = np.where(peak > 0, peak / np.float32(127.0), np.float32(1.0)).astype(np.float32)
    codes = faiss.IndexScalarQuantizer(d, faiss.ScalarQuantizer.QT_8bit_direct_signed, faiss.METRIC_INNER_PRODUCT)
    codes.is_trained = True  # direct codes need no training
    max_norm = 0.0
    for x in chunks():
        scaled = x / scale  # float32: |x / scale - code| stays below _ROUNDING
        max_norm = max(max_norm, float(np.sqrt(np.einsum("ij,ij->i", scaled, scaled)).max()) * (1 + 1e-5))
        codes.add(np.clip(np.rint(scaled), -127, 127).astype(np.float32))
    return Int8Sketch(np.asarray(positions, dtype=np.int64), codes, scale, max_norm)


def sketch_search(
    query: np.ndarray, sketch: Int8Sketch, view: FlatView, vectors: np.ndarray, k: int,
    exclude: np.ndarray | None = None,
) -> list[tuple[float, int]]:
    """The exact top k (score, row) of the sketched set, `exclude`d rows left out: what `exact_search`
    returns over the same set, found by an int8 scan and a certified re-rank of its candidates."""
    n = len(sketch.positions)
    excluded = np.asarray(exclude if exclude is not None else (), dtype=np.int64)
    a, step, bound = sketch.quantise_query(query)
    fetch = max(SKETCH_FIRST_CANDIDATES, 4 * k)
    while True:
        fetch = min(fetch, n)
        approx, ids = sketch.codes.search(a[None], fetch + len(excluded))
        keep = ids[0] >= 0
        pos = sketch.positions[ids[0][keep]]
        rows = view.members[pos]
        if len(excluded):  # a few rows (the query item, the rest of an outfit): compared directly, not np.isin
            ok = ~(rows[:, None] == excluded[None, :]).any(axis=1) if len(excluded) <= 64 else ~np.isin(rows, excluded)
            pos, rows = pos[ok], rows[ok]
        best = top_k(exact_scores(query, view, pos, vectors), rows, k)
        if fetch + len(excluded) >= n:  # every item of the set was a candidate
            return best
        # Anything not proposed has q_int8 . code <= the last candidate's, so q.x <= step * that + bound.
        ceiling = step * float(approx[0][keep][-1]) + bound
        if len(best) == k and best[-1][0] > ceiling:
            return best
        fetch *= 8


def inner_products_by_idx(query: np.ndarray, xb: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """query . xb[p] for p in positions, reading xb in place (no gathered copy), single-threaded SIMD."""
    qv = np.ascontiguousarray(query, dtype=np.float32)
    ids = np.ascontiguousarray(positions, dtype=np.int64)
    assert xb.flags.c_contiguous and xb.dtype == np.float32  # a view of the index's storage (flat_view)
    out = np.empty(len(ids), dtype=np.float32)
    if len(ids):
        faiss.fvec_inner_products_by_idx(  # type: ignore[attr-defined]  # absent from faiss's generated stub
            faiss.swig_ptr(out), faiss.swig_ptr(qv), faiss.swig_ptr(xb), faiss.swig_ptr(ids), xb.shape[1], 1, len(ids))
    return out


def inner_products(query: np.ndarray, xb: np.ndarray) -> np.ndarray:
    """query . xb[i] for every row, with FAISS's single-threaded SIMD kernel.

    Not numpy's matrix product: OpenBLAS starts its own threads per call, which on a busy machine wait on
    each other (the service keeps searches to one thread per request for the same reason).
    """
    x = np.ascontiguousarray(xb, dtype=np.float32)
    qv = np.ascontiguousarray(query, dtype=np.float32)
    out = np.empty(len(x), dtype=np.float32)
    if len(x):
        faiss.fvec_inner_products_ny(  # type: ignore[attr-defined]  # absent from faiss's generated stub
            faiss.swig_ptr(out), faiss.swig_ptr(qv), faiss.swig_ptr(x), x.shape[1], len(x))
    return out
