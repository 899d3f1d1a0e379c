"""Upload latency through the real HTTP server, per inference backend (issue 7's 10 ms target).

    .venv/bin/python benchmarks/bench_upload_latency.py [--items 20000] [--requests 300] [--threads 2]

For each backend (torch, onnx, onnx-int8, openvino, openvino-int8): publish a synthetic-vector index
whose manifest records that backend, and start `outfit-compat serve` (uvicorn) with OUTFIT_BACKEND set
and no micro-batch wait; plus one openvino-int8 server at the service's default 5 ms wait. All servers
run at once; image uploads go to POST /v1/complementary one at a time, alternating between servers
(concurrency 1 each; unique bytes, so the embedding cache never hits), so machine contention hits every
configuration alike. Model: random-init 112 px d=64 (cost does not depend on the weights).
Writes benchmarks/results/bench_upload_latency.json.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from serverutil import wait_ready

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "benchmarks" / "results" / "bench_upload_latency.json"
BACKENDS = ("torch", "onnx", "onnx-int8", "openvino", "openvino-int8")
THINK_S = 0.05


def publish_index(root: Path, checkpoint: Path, backend: str, n: int) -> Path:
    """A seeded synthetic-vector index whose manifest names `backend` (the service checks the family)."""
    from embedder import read_model_card
    from index.synthetic import synthetic_records, synthetic_vectors
    from index.writer import IndexPolicy, build_content, write_version

    card = read_model_card(checkpoint)
    identity = {
        "model_version": card.model_version,
        "checkpoint_sha256": card.weights_sha256,
        "checkpoint_path": str(checkpoint.resolve()),
        "backend": backend,
        "source": {"kind": "synthetic-vectors", "items": n, "seed": 0},
    }
    content = build_content(
        synthetic_records(n, seed=0), synthetic_vectors(n, card.config.embed_dim, seed=0), IndexPolicy()
    )
    write_version(root, content, identity=identity, policy=IndexPolicy(), operation="build", build_seconds=0.0)
    return root


def photos(n: int, seed: int = 0) -> list[bytes]:
    """Seeded product-like JPEGs at the mango photo size (239 x 334): a textured block on white."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        arr = np.full((334, 239, 3), 255, dtype=np.uint8)
        arr[40:300, 30:210] = np.clip(rng.integers(0, 255, 3) + rng.integers(-30, 30, (260, 180, 3)), 0, 255)
        buf = io.BytesIO()
        Image.fromarray(arr).save(buf, "JPEG", quality=90)
        out.append(buf.getvalue())
    return out


def serve(index: Path, checkpoint: Path, backend: str, *, port: int, threads: int, wait_ms: float, log: Path) -> Any:

    env = {k: v for k, v in os.environ.items() if not k.startswith("OUTFIT_") and k != "REDIS_URL"}
    env.update(
        {
            "OUTFIT_BACKEND": backend,
            "OUTFIT_TORCH_THREADS": str(threads),
            "OMP_NUM_THREADS": str(threads),
            "OUTFIT_BATCH_MAX_WAIT_MS": str(wait_ms),
        }
    )
    cmd = [sys.executable, "-m", "outfit_compat", "serve", "--index", str(index), "--checkpoint", str(checkpoint)]
    proc = subprocess.Popen(
        [*cmd, "--port", str(port), "--log-level", "warning"],
        env=env,
        cwd=ROOT,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    wait_ready(proc, port, log)
    return proc


def upload_latencies(ports: dict[str, int], pool: list[bytes], n: int) -> dict[str, dict[str, Any]]:
    """n uploads per server, servers alternating request by request so contention hits them alike."""
    import httpx

    lat: dict[str, list[float]] = {name: [] for name in ports}
    clients = {name: httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) for name, port in ports.items()}
    try:
        for k in range(n + 10):
            # Bytes after the JPEG end marker change the sha256 (no cache hit) but not the decoded image.
            data = pool[k % len(pool)] + k.to_bytes(8, "little")
            for name, client in clients.items():
                t0 = time.perf_counter()
                r = client.post("/v1/complementary", files={"image": ("p.jpg", data, "image/jpeg")}, data={"k": "20"})
                dt = time.perf_counter() - t0
                if r.status_code != 200:
                    raise SystemExit(f"{name}: upload failed: {r.status_code} {r.text[:300]}")
                if k >= 10:  # the first requests warm caches and arenas
                    lat[name].append(dt)
                # Think time: lets the previous server's runtime threads stop spin-waiting before the next one.
                time.sleep(THINK_S)
    finally:
        for c in clients.values():
            c.close()
    out = {}
    for name, ts in lat.items():
        q = np.percentile(np.asarray(ts) * 1000, [50, 90, 99])
        out[name] = {
            "requests": len(ts),
            "p50_ms": round(float(q[0]), 2),
            "p90_ms": round(float(q[1]), 2),
            "p99_ms": round(float(q[2]), 2),
            "mean_ms": round(statistics.mean(ts) * 1000, 2),
        }
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--items", type=int, default=20_000)
    ap.add_argument("--requests", type=int, default=300)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--port", type=int, default=8791)
    ap.add_argument("--backends", nargs="+", choices=BACKENDS, default=list(BACKENDS))
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)

    from catalog.synth import generate_synthetic
    from embedder.onnx_export import export_onnx
    from embedder.quantize import QuantizeConfig, quantize_int8
    from index.demo_step import random_init_checkpoint

    load = os.getloadavg()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-upload-") as tmp:
        work = Path(tmp)
        ckpt = random_init_checkpoint(work / "ckpt", seed=0)
        export_onnx(ckpt)
        generate_synthetic(work / "synth", items=300, outfits=160, seed=0)
        quantize_int8(
            ckpt, dataset_root=work / "synth", config=QuantizeConfig(calibration_images=128, parity_images=32)
        )
        pool = photos(64)
        # (backend, micro-batch wait): every backend without the wait, plus int8 at the service default.
        configs = [(b, 0.0) for b in args.backends] + [("openvino-int8", 5.0)]
        procs: dict[str, Any] = {}
        ports: dict[str, int] = {}
        try:
            for n, (backend, wait_ms) in enumerate(configs):
                name = f"{backend}@wait{wait_ms:g}ms"
                index = work / f"index-{backend}"
                if not index.exists():
                    publish_index(index, ckpt, backend, args.items)
                ports[name] = args.port + n
                log = work / f"server-{n}.log"
                procs[name] = serve(
                    index, ckpt, backend, port=ports[name], threads=args.threads, wait_ms=wait_ms, log=log
                )
            lat = upload_latencies(ports, pool, args.requests)
        finally:
            for proc in procs.values():
                proc.terminate()
                proc.wait(timeout=30)
        for (backend, wait_ms), (name, row) in zip(configs, lat.items(), strict=True):
            rows.append({"backend": backend, "batch_max_wait_ms": wait_ms, **row})
            print(name, json.dumps(row), flush=True)
    result = {
        "benchmark": "bench_upload_latency",
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "note": "2-core VM; the client shares the cores with the servers; a load average above ~1 at start "
        "means other jobs competed for them",
        "loadavg_at_start": [round(v, 2) for v in load],
        "loadavg_at_end": [round(v, 2) for v in os.getloadavg()],
        "config": {
            "think_time_s": THINK_S,
            "items": args.items,
            "threads": args.threads,
            "concurrency": 1,
            "model": "random-init 112 px d=64",
            "photo": "239x334 JPEG, unique bytes",
            "k": 20,
        },
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp_out = args.out.with_name(f".{args.out.name}.tmp")
    tmp_out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp_out, args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
