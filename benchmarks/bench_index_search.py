"""ANN search benchmark (issue 4): the chosen approximate index against exact search on seeded vectors.

    .venv/bin/python benchmarks/bench_index_search.py [--sizes 100000 1000000] [--threads 2] [--quick]

Per catalog size: build time and memory per item of the approximate index (HNSW32 by default), then
for each efSearch recall@10 against exact (Flat) search, batched and single-query latency. For sizes up
to --pipeline-max it also times the whole published artifact (global + per-category indexes, SQLite,
checksummed manifest): build, verified open, and CatalogIndex.search latency as the service sees it.
Writes benchmarks/results/bench_index_search.json. Vectors: index.synthetic (overlapping clusters, d=64).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import faiss
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from embedder.files import write_atomic  # noqa: E402
from index import open_index  # noqa: E402
from index.faiss_ops import DEFAULT_APPROX_FACTORY, build_index, memory_bytes, search_params  # noqa: E402
from index.synthetic import synthetic_records, synthetic_vectors  # noqa: E402
from index.writer import IndexPolicy, build_content, write_version  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "bench_index_search.json"
K = 10


def recall_at_k(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(f[f >= 0]) & set(t)) / len(t) for f, t in zip(found, truth, strict=True)]))


def single_latencies_ms(search: Any, queries: np.ndarray) -> dict[str, float]:
    times = []
    for q in queries:
        t0 = time.perf_counter()
        search(q[None])
        times.append((time.perf_counter() - t0) * 1e3)
    times.sort()
    return {"p50_ms": round(statistics.median(times), 4), "p95_ms": round(times[int(0.95 * (len(times) - 1))], 4)}


def bench_faiss(
    vectors: np.ndarray, queries: np.ndarray, factory: str, efs: list[int], singles: int, threads: tuple[int, int]
) -> dict[str, Any]:
    n, dim = vectors.shape
    faiss.omp_set_num_threads(threads[1])
    flat = faiss.IndexFlatIP(dim)
    flat.add(vectors)
    t0 = time.perf_counter()
    _, truth = flat.search(queries, K)
    exact_batch = time.perf_counter() - t0
    out: dict[str, Any] = {
        "exact": {
            "batched_ms_per_query": round(exact_batch * 1e3 / len(queries), 4),
            **single_latencies_ms(lambda q: flat.search(q, K), queries[:singles]),
            "bytes_per_item": round(memory_bytes(flat) / n, 1),
        }
    }
    flat.reset()  # frees its copy of the vectors before the approximate build
    faiss.omp_set_num_threads(threads[0])
    t0 = time.perf_counter()
    index = build_index(vectors, factory)
    faiss.omp_set_num_threads(threads[1])
    out["approx"] = {
        "factory": factory,
        "build_seconds": round(time.perf_counter() - t0, 2),
        "bytes_per_item": round(memory_bytes(index) / n, 1),
        "by_ef_search": [],
    }
    for ef in efs:
        params = search_params(index, k=K, selector=None, ef_search=ef)
        t0 = time.perf_counter()
        _, found = index.search(queries, K, params=params)
        batch = time.perf_counter() - t0
        row = {
            "ef_search": ef,
            "recall_at_10": round(recall_at_k(found, truth), 4),
            "batched_ms_per_query": round(batch * 1e3 / len(queries), 4),
            "batched_qps": round(len(queries) / batch, 1),
            **single_latencies_ms(lambda q, p=params: index.search(q, K, params=p), queries[:singles]),
        }
        out["approx"]["by_ef_search"].append(row)
        print(f"  n={n} ef={ef}: {row}", flush=True)
    return out


def bench_pipeline(vectors: np.ndarray, queries: np.ndarray, singles: int, threads: tuple[int, int]) -> dict[str, Any]:
    """The published artifact end to end: what `index build` writes and the service opens."""
    n = len(vectors)
    records = synthetic_records(n)
    policy = IndexPolicy()
    identity = {"model_version": "bench".ljust(16, "0"), "checkpoint_sha256": "0" * 64, "backend": "torch"}
    with tempfile.TemporaryDirectory(prefix="bench-index-") as tmp:
        faiss.omp_set_num_threads(threads[0])
        t0 = time.perf_counter()
        content = build_content(records, vectors, policy)
        vdir = write_version(Path(tmp), content, identity=identity, policy=policy, operation="build")
        build = time.perf_counter() - t0
        del content
        faiss.omp_set_num_threads(threads[1])
        disk = sum(p.stat().st_size for p in vdir.rglob("*") if p.is_file())
        t0 = time.perf_counter()
        idx = open_index(tmp)
        opened = time.perf_counter() - t0
        cat = max(idx.categories(), key=lambda c: idx.categories()[c])
        exclude = [records[0].item_id, records[1].item_id]
        return {
            "factory": idx.manifest["factory"],
            "category_factories": sorted(set(idx.manifest["category_factories"].values())),
            "build_seconds": round(build, 2),
            "open_verify_seconds": round(opened, 2),
            "disk_bytes_per_item": round(disk / n, 1),
            "search": single_latencies_ms(lambda q: idx.search(q, k=K), queries[:singles]),
            "search_category": {
                "category": cat,
                "items": idx.categories()[cat],
                **single_latencies_ms(lambda q: idx.search(q, k=K, category=cat), queries[:singles]),
            },
            "search_exclude_2": single_latencies_ms(lambda q: idx.search(q, k=K, exclude=exclude), queries[:singles]),
        }


def write_results(results: dict[str, Any]) -> None:
    write_atomic(RESULTS, json.dumps(results, indent=2))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--singles", type=int, default=300, help="queries timed one at a time")
    ap.add_argument("--ef", type=int, nargs="+", default=[32, 64, 128, 256])
    ap.add_argument("--factory", default=DEFAULT_APPROX_FACTORY)
    ap.add_argument("--threads", type=int, default=2, help="FAISS OpenMP threads while building")
    ap.add_argument(
        "--search-threads",
        type=int,
        default=1,
        help="FAISS OpenMP threads while searching (1: the service runs one query per request thread)",
    )
    ap.add_argument("--pipeline-max", type=int, default=100_000, help="largest size also run through the artifact")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="20k vectors only (a smoke run)")
    ap.add_argument("--merge", action="store_true", help="keep other sizes already in the results file")
    ap.add_argument("--artifact-only", action="store_true",
                    help="with --merge: keep a size's FAISS figures and (re)measure only the published artifact")
    args = ap.parse_args(argv)
    sizes = [20_000] if args.quick else args.sizes
    results: dict[str, Any] = {
        "benchmark": "bench_index_search",
        "note": f"2-core machine; load average at start {[round(v, 2) for v in os.getloadavg()]} "
        " (above ~1: other jobs competed)",
        "machine": {
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "faiss": faiss.__version__,
            "build_threads": args.threads,
            "search_threads": args.search_threads,
        },
        "vectors": {
            "dim": args.dim,
            "generator": "index.synthetic.synthetic_vectors (256 clusters, spread 1.5)",
            "seed": args.seed,
            "queries": args.queries,
            "k": K,
        },
        "sizes": {},
    }
    if args.merge and RESULTS.is_file():
        results["sizes"] = json.loads(RESULTS.read_text(encoding="utf-8")).get("sizes", {})
    for n in sizes:
        print(f"n={n}: generating", flush=True)
        allv = synthetic_vectors(n + args.queries, args.dim, seed=args.seed)
        vectors, queries = allv[:n], np.ascontiguousarray(allv[n:])
        del allv
        threads = (args.threads, args.search_threads)
        if args.artifact_only and str(n) in results["sizes"]:
            entry = results["sizes"][str(n)]
        else:
            entry = bench_faiss(vectors, queries, args.factory, args.ef, args.singles, threads)
            entry["threads"] = {"build": args.threads, "search": args.search_threads}
        if args.artifact_only or n <= args.pipeline_max:
            print(f"n={n}: published artifact", flush=True)
            entry["artifact"] = bench_pipeline(vectors, queries, args.singles, threads)
        results["sizes"][str(n)] = entry
        write_results(results)  # partial results survive an interrupted 1M run
        print(json.dumps({str(n): entry}, indent=2), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
