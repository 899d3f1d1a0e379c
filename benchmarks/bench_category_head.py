"""What the category head costs an upload: the same checkpoint exported with and without it (issue 14).

    .venv/bin/python benchmarks/bench_category_head.py CHECKPOINT_WITH_HEAD [--threads 1]

The head is a second output of the export (one more layer4 on the shared trunk), so every forward pass pays
for it. Both exports are timed in the same run, interleaved, on ONNX Runtime and OpenVINO (fp32): batch-1
latency (an upload at concurrency 1) and batch-32 throughput (the micro-batcher under load). Writes
benchmarks/results/bench_category_head.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "benchmarks" / "results" / "bench_category_head.json"


def _time(fn: Any, x: np.ndarray, rounds: int) -> list[float]:
    fn(x)  # warm-up
    out = []
    for _ in range(rounds):
        t = time.perf_counter()
        fn(x)
        out.append(time.perf_counter() - t)
    return out


def main(argv: list[str] | None = None) -> int:
    from embedder.backend import load_backend
    from embedder.category_head import HEAD_FILE, HEAD_WEIGHTS
    from embedder.int8_parity import cpu_kind
    from embedder.onnx_export import export_onnx

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint", type=Path, help="a checkpoint with a category head")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=200)
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    if not (args.checkpoint / HEAD_FILE).is_file():
        raise SystemExit(f"{args.checkpoint} has no category head; fit one with `outfit-compat category-head`")
    load_start = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        dirs = {"with_head": Path(tmp) / "with", "without_head": Path(tmp) / "without"}
        for name, d in dirs.items():
            shutil.copytree(args.checkpoint, d, ignore=shutil.ignore_patterns("model*.onnx*", "int8_probe*"))
            if name == "without_head":
                (d / HEAD_FILE).unlink()
                (d / HEAD_WEIGHTS).unlink()
            export_onnx(d)
        rows: dict[str, Any] = {}
        for backend in ("onnx", "openvino"):
            models = {name: load_backend(d, backend=backend, threads=args.threads) for name, d in dirs.items()}
            size = models["with_head"].preprocess.image_size
            rng = np.random.default_rng(0)
            for batch, rounds in ((1, args.rounds), (32, max(10, args.rounds // 10))):
                x = rng.standard_normal((batch, 3, size, size)).astype(np.float32)
                times: dict[str, list[float]] = {n: [] for n in models}
                for _ in range(3):  # interleaved, so drift on a shared machine hits both alike
                    for name, m in models.items():
                        times[name] += _time(m.embed_with_categories, x, rounds // 3)
                med = {n: statistics.median(t) for n, t in times.items()}
                rows[f"{backend} batch {batch}"] = {
                    **{f"{n}_ms": round(v * 1e3, 3) for n, v in med.items()},
                    **({f"{n}_img_per_s": round(batch / v, 1) for n, v in med.items()} if batch > 1 else {}),
                    "with_over_without": round(med["with_head"] / med["without_head"], 3),
                }
                print(backend, batch, json.dumps(rows[f"{backend} batch {batch}"]), flush=True)
    result = {"checkpoint": str(args.checkpoint), "threads": args.threads, "cpu": cpu_kind(),
              "load_average_start": load_start, "load_average_end": os.getloadavg(), "rows": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
