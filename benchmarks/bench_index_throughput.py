"""Embedding throughput of the index build job vs the embedder alone, same images, same run (issue 4).

    .venv/bin/python benchmarks/bench_index_throughput.py [--items 768] [--workers 1 2] [--threads 2]
        [--catalog DIR_OR_FILE] [--checkpoint CKPT] [--rounds 2]

"Alone": images decoded and preprocessed beforehand, then only `backend.embed_batch` is timed.
"Job": `index.embed_job.embed_catalog` end to end (DataLoader workers decode + preprocess, model runs,
chunks written). Rounds alternate alone/job so machine contention hits both alike; medians reported.
The data pipeline keeps the model busy when job/alone >= 0.8. Writes benchmarks/results/bench_index_throughput.json.
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

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from embedder import EmbedderConfig, build_embedder, save_checkpoint  # noqa: E402
from embedder.backend import EmbeddingBackend, load_backend  # noqa: E402
from embedder.files import write_atomic  # noqa: E402
from embedder.image_io import load_image_file  # noqa: E402
from embedder.preprocess import to_model_input  # noqa: E402
from index.embed_job import EmbedJobConfig, embed_catalog  # noqa: E402
from index.sources import load_source  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "bench_index_throughput.json"
MANGO = ROOT.parent / "shared" / "data" / "mango-outfits"


def alone_items_per_second(backend: EmbeddingBackend, batches: list[np.ndarray]) -> float:
    t0 = time.perf_counter()
    n = sum(len(backend.embed_batch(b)) for b in batches)
    return n / (time.perf_counter() - t0)


def job_items_per_second(backend: EmbeddingBackend, items: list[Any], work: Path, cfg: EmbedJobConfig) -> float:
    with tempfile.TemporaryDirectory(dir=work) as d:
        t0 = time.perf_counter()
        stats = embed_catalog(items, backend, Path(d), config=cfg)
        return stats.embedded / (time.perf_counter() - t0)


def bench_catalog(
    name: str, items: list[Any], backend: EmbeddingBackend, args: argparse.Namespace, work: Path
) -> dict[str, Any]:
    cfg = backend.preprocess
    arrays = [to_model_input(load_image_file(it.image), cfg) for it in items]
    batches = [np.stack(arrays[s : s + args.batch_size]) for s in range(0, len(arrays), args.batch_size)]
    alone_items_per_second(backend, batches[:2])  # warm-up (allocator, oneDNN primitives)
    out: dict[str, Any] = {"catalog": name, "items": len(items), "by_workers": []}
    for workers in args.workers:
        job_cfg = EmbedJobConfig(batch_size=args.batch_size, num_workers=workers, chunk_size=1024, progress=False)
        alone, job = [], []
        for _ in range(args.rounds):
            alone.append(alone_items_per_second(backend, batches))
            job.append(job_items_per_second(backend, items, work, job_cfg))
        row = {
            "workers": workers,
            "alone_items_per_s": round(statistics.median(alone), 1),
            "job_items_per_s": round(statistics.median(job), 1),
            "ratio": round(statistics.median(job) / statistics.median(alone), 3),
            "rounds": {"alone": [round(x, 1) for x in alone], "job": [round(x, 1) for x in job]},
        }
        print(f"{name} workers={workers}: {row}", flush=True)
        out["by_workers"].append(row)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--items", type=int, default=768, help="images per catalog")
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--checkpoint", type=Path, default=None, help="default: seeded random init (112 px, d=64)")
    ap.add_argument("--catalog", type=Path, default=None, help="default: synthetic; mango-outfits too when present")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="bench-embed-") as tmp:
        work = Path(tmp)
        ckpt = args.checkpoint
        if ckpt is None:
            torch.manual_seed(0)
            ckpt = work / "ckpt"
            save_checkpoint(build_embedder(EmbedderConfig()), ckpt)
        backend = load_backend(ckpt)
        catalogs: list[tuple[str, Path]] = []
        if args.catalog is not None:
            catalogs.append((str(args.catalog), args.catalog))
        else:
            from catalog.synth import generate_synthetic

            generate_synthetic(work / "synth", items=args.items, outfits=max(args.items // 4, 50), seed=0)
            catalogs.append(("synthetic", work / "synth"))
            if (MANGO / "polyvore_item_metadata.json").is_file():
                catalogs.append(("mango-outfits (real photos)", MANGO))
        results: dict[str, Any] = {
            "benchmark": "bench_index_throughput",
            "note": f"2-core machine; load average at start {[round(v, 2) for v in os.getloadavg()]} "
        " (above ~1: other jobs competed)",
            "machine": {
                "cpu_count": os.cpu_count(),
                "platform": platform.platform(),
                "torch": torch.__version__,
                "torch_threads": args.threads,
            },
            "model": {
                "image_size": backend.preprocess.image_size,
                "embed_dim": backend.card.config.embed_dim,
                "backend": backend.name,
                "batch_size": args.batch_size,
            },
            "catalogs": [],
        }
        for name, path in catalogs:
            items = [it for it in load_source(path).items if it.image is not None and it.image.is_file()]
            results["catalogs"].append(bench_catalog(name, items[: args.items], backend, args, work))
    write_atomic(RESULTS, json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
