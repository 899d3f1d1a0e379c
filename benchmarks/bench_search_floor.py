"""What the exact category searches of one complementary answer cost, and what batching them could save (issue 16).

    .venv/bin/python benchmarks/bench_search_floor.py [--workdir artifacts/bench_service] [--items 100000]

An id-based `/v1/complementary` searches every category but the query's own, exactly (Flat indexes up to
50k items a category). This measures, over the HTTP benchmark's 100k-item index (benchmarks/bench_service.py
builds it), pinned to one core with one thread, the thread CPU time per request of:

- `search_category_rows`, the service's call (FAISS, one query, every target category);
- the same searches with m concurrent requests' queries in one FAISS call per category (m < 20 keeps FAISS on
  its per-query kernel, so the answers stay bit-identical: checked here);
- one BLAS product per category for m queries plus an exact top-k selection (`index.filtered.top_k`), the
  other way to batch (scores differ from FAISS's in the last bits; the rows are checked against FAISS's).

Together with /healthz's server CPU from bench_service.json, it bounds what id answers can reach on this CPU:
no work is cheaper than the search it cannot skip. Writes benchmarks/results/bench_search_floor.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "bench_search_floor.json"
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))


def cpu_ms(fn: Callable[[], object], *, repeat: int) -> float:
    """Thread CPU milliseconds per call (after one warm-up call)."""
    fn()
    t = time.thread_time()
    for _ in range(repeat):
        fn()
    return 1e3 * (time.thread_time() - t) / repeat


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workdir", type=Path, default=ROOT / "artifacts" / "bench_service")
    p.add_argument("--items", type=int, default=100_000)
    p.add_argument("--queries", type=int, default=320, help="distinct catalog items used as queries")
    p.add_argument("--batches", type=int, nargs="+", default=[1, 2, 4, 8, 16])
    p.add_argument("--core", type=int, default=0, help="pin to this core (-1: no pinning)")
    p.add_argument("--service-json", type=Path, default=ROOT / "benchmarks" / "results" / "bench_service.json",
                   help="bench_service result of this machine, for /healthz's server CPU")
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    if args.core >= 0:
        os.sched_setaffinity(0, {args.core})
    os.environ["OMP_NUM_THREADS"] = "1"

    import faiss
    from bench_service import ensure_checkpoint, ensure_index
    from loadgen import cpu_flags

    from index import open_index
    from index.filtered import flat_view, top_k

    faiss.omp_set_num_threads(1)
    load_start = os.getloadavg()
    ckpt = ensure_checkpoint(args.workdir, "openvino-int8")
    idx = open_index(ensure_index(args.workdir / f"index-{args.items}-openvino-int8", ckpt, args.items,
                                  "openvino-int8"))
    cats = sorted(idx.categories())
    flats = {c: idx._category_index(c) for c in cats}  # the service's own index objects
    views = {c: flat_view(flats[c]) for c in cats}
    if any(v.xb is None for v in views.values()):
        raise SystemExit("the category indexes are not Flat at this size; the floor below is for exact search")
    ids = [f"s{i:07d}" for i in range(args.queries)]  # index.synthetic's ids
    found = idx.resolve(ids)
    queries = idx.vectors_of_rows([found[i][0] for i in ids])
    targets = [[c for c in cats if c != found[i][1]] for i in ids]
    fetch = 21  # the default pool (per_category 5 x 4) plus the query item, which the search over-fetches for

    def service_path() -> None:
        for j, i in enumerate(ids):
            idx.search_category_rows(queries[j], targets[j], k=fetch - 1, exclude=(i,))

    per_request = cpu_ms(service_path, repeat=1) / len(ids)
    reps = max(1, 2000 // len(ids))
    per_request = min(per_request, cpu_ms(service_path, repeat=reps) / len(ids))

    def batched(m: int, search: Callable[[str, list[int]], object]) -> Callable[[], None]:
        """Every run of m consecutive requests, each category searched once for those that target it."""
        def run() -> None:
            for s in range(0, len(ids) - m + 1, m):
                for c in cats:
                    users = [j for j in range(s, s + m) if c in targets[j]]
                    if users:
                        search(c, users)
        return run

    def faiss_search(c: str, users: list[int]) -> None:
        flats[c].search(queries[users], fetch)

    def blas_search(c: str, users: list[int]) -> None:
        view = views[c]
        assert view.xb is not None
        for srow in queries[users] @ view.xb.T:
            top_k(srow, view.members, fetch)

    # Equivalence checks on one batch of 16: FAISS batched = FAISS one by one, bit for bit; BLAS + top-k keeps
    # FAISS's rows (order may differ only on scores tied to float rounding, which these queries do not show).
    m = 16
    identical, same_rows = True, True
    for c in cats:
        d_b, i_b = flats[c].search(queries[:m], fetch)
        view = views[c]
        assert view.xb is not None
        for j in range(m):
            d_1, i_1 = flats[c].search(queries[j : j + 1], fetch)
            identical &= bool(np.array_equal(d_1[0], d_b[j]) and np.array_equal(i_1[0], i_b[j]))
            same_rows &= [r for _, r in top_k(queries[j] @ view.xb.T, view.members, fetch)] == i_1[0].tolist()

    # The scan itself, per vector, and FAISS's scalar quantisers (fewer bytes a vector, approximate scores) on the
    # same categories: do fewer bytes make the one-query scan cheaper on this CPU?
    scanned = sum(len(views[c].members) for j in range(len(ids)) for c in targets[j]) / len(ids)
    quantised: dict[str, float] = {}
    for name in ("QT_8bit", "QT_fp16", "QT_bf16"):
        if not hasattr(faiss.ScalarQuantizer, name):
            continue
        sq = {}
        for c in cats:
            xb = views[c].xb
            assert xb is not None
            qtype = getattr(faiss.ScalarQuantizer, name)
            sq[c] = faiss.IndexScalarQuantizer(idx.dim, qtype, faiss.METRIC_INNER_PRODUCT)
            sq[c].train(xb)
            sq[c].add(xb)

        def sq_path(sq: dict[str, Any] = sq) -> None:
            for j in range(len(ids)):
                for c in targets[j]:
                    sq[c].search(queries[j : j + 1], fetch)

        quantised[name] = round(cpu_ms(sq_path, repeat=2) / len(ids), 4)

    rows = []
    n_batches = {mm: (len(ids) // mm) for mm in args.batches}
    for mm in args.batches:
        per_q = lambda fn, mm=mm: cpu_ms(fn, repeat=2) / (n_batches[mm] * mm)  # noqa: E731
        rows.append({"batch": mm, "faiss_ms_per_request": round(per_q(batched(mm, faiss_search)), 4),
                     "blas_topk_ms_per_request": round(per_q(batched(mm, blas_search)), 4)})
        print(rows[-1], flush=True)

    healthz = None
    if args.service_json.exists():
        cells = json.loads(args.service_json.read_text())["results"]
        healthz = next((r["server_cpu_ms_per_request"] for r in cells
                        if r["scenario"] == "healthz" and r["concurrency"] == 16), None)
    sizes = sorted(v.xb.shape[0] for v in views.values() if v.xb is not None)
    result: dict[str, Any] = {
        "benchmark": "bench_search_floor",
        "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "loadavg_at_start": load_start, "loadavg_at_end": os.getloadavg(),
        "machine": cpu_flags(), "items": args.items, "categories": len(cats), "category_sizes": sizes,
        "dim": idx.dim, "fetch": fetch, "pinned_core": args.core if args.core >= 0 else None,
        "service_search_ms_per_request": round(per_request, 4),
        "vectors_scanned_per_request": round(scanned),
        "ns_per_vector": round(1e6 * per_request / scanned, 2),
        "scalar_quantiser_ms_per_request": quantised,
        "batched": rows,
        "faiss_batched_bit_identical": identical,
        "blas_topk_same_rows": same_rows,
        "healthz_server_cpu_ms_c16": healthz, "healthz_from": str(args.service_json.name),
    }
    if healthz:
        # The 35 % goal leaves healthz / 0.35 ms of server CPU for a whole id answer.
        budget = healthz / 0.35
        best = min([per_request] + [min(r["faiss_ms_per_request"], r["blas_topk_ms_per_request"]) for r in rows])
        result["goal_budget_ms_per_answer"] = round(budget, 4)
        result["ratio_bound_with_search_alone"] = round(healthz / (healthz + per_request), 4)
        result["ratio_bound_with_best_batched_search"] = round(healthz / (healthz + best), 4)
    print(json.dumps({k: v for k, v in result.items() if k != "machine"}, indent=2))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
