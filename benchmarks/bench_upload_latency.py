"""Upload latency through the real HTTP server, per inference backend (issue 7's 10 ms target).

    .venv/bin/python benchmarks/bench_upload_latency.py [--items 20000] [--requests 200] [--threads 2]

For each backend (torch, onnx, onnx-int8, openvino, openvino-int8): publish a synthetic-vector index
whose manifest records that backend, and start `outfit-compat serve` (uvicorn) with OUTFIT_BACKEND set
and no micro-batch wait; plus one openvino-int8 server at the service's default 5 ms wait. All servers
run at once. Image uploads (unique bytes, so the embedding cache never hits) go to POST
/v1/complementary one at a time (concurrency 1) under three schedules:

- `closed-loop`: each server gets blocks of back-to-back requests, the usual meaning of "concurrency 1"
  (one request in flight, the next sent when the answer arrives, as `wrk -c1` or `hey -c 1` do);
- `sparse`: the same blocks with 50 ms of idle time after every request (light traffic: runtime threads
  fall asleep and caches cool between requests);
- `interleaved`: one request per server in turn, 50 ms apart, so every request follows five other
  processes' work (the schedule of this benchmark's first version, kept for comparison).

Blocks rotate over the servers in rounds so machine contention hits every configuration alike. The client
is the standard library's keep-alive `http.client` with the multipart bodies built before the clock starts
(what a load generator does); its time is part of the figure. Each response's `Server-Timing` header
splits the latency into server stages; `http_and_client_ms` is the rest (HTTP parsing, sockets, client).
Model: random-init 112 px d=64 (cost does not depend on the weights).
Writes benchmarks/results/bench_upload_latency.json.
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from serverutil import wait_ready

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "benchmarks" / "results" / "bench_upload_latency.json"
BACKENDS = ("torch", "onnx", "onnx-int8", "openvino", "openvino-int8")
THINK_S = 0.05
SCHEDULES = ("closed-loop", "sparse", "interleaved")
ROUNDS = 4
WARMUP = 10


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


def serve(
    index: Path, checkpoint: Path, backend: str, *, port: int, threads: int, wait_ms: float, log: Path,
    tree: Path = ROOT,
) -> Any:
    """`python -m outfit_compat serve` run from `tree` (its own code comes first on sys.path)."""

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
        cwd=tree,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    wait_ready(proc, port, log)
    return proc


def baseline_tree(ref: str, dest: Path) -> Path:
    """A detached worktree of `ref`: its servers import that commit's code, with this venv's packages."""
    subprocess.run(["git", "worktree", "add", "--detach", str(dest), ref], cwd=ROOT, check=True,
                   capture_output=True)
    return dest


def multipart_body(image: bytes, fields: dict[str, str]) -> tuple[bytes, str]:
    """A multipart/form-data body and its Content-Type, built once before the request is timed."""
    boundary = uuid.uuid4().hex
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
        for k, v in fields.items()
    ]
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="p.jpg"\r\n'
        "Content-Type: image/jpeg\r\n\r\n"
    ).encode()
    body = b"".join([*parts, head, image, f"\r\n--{boundary}--\r\n".encode()])
    return body, f"multipart/form-data; boundary={boundary}"


@dataclass
class Samples:
    latency_ms: list[float] = field(default_factory=list)
    stages: dict[str, list[float]] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        lat = np.asarray(self.latency_ms)
        q = np.percentile(lat, [50, 90, 99])
        stages = {name: round(statistics.median(v), 3) for name, v in self.stages.items()}
        # The middleware times every response, so "app" has one entry per request (a baseline tree from
        # before Server-Timing existed sends none).
        apps = self.stages.get("app")
        rest = [t - a for t, a in zip(self.latency_ms, apps, strict=True)] if apps else []
        return {
            "requests": len(lat),
            "p50_ms": round(float(q[0]), 2),
            "p90_ms": round(float(q[1]), 2),
            "p99_ms": round(float(q[2]), 2),
            "mean_ms": round(float(lat.mean()), 2),
            "server_stage_median_ms": stages,
            "http_and_client_ms": round(statistics.median(rest), 3) if rest else None,
        }


class UploadClient:
    """One keep-alive connection to one server; `post` times a single upload."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def reconnect(self) -> None:
        """A fresh connection: uvicorn closes keep-alive connections idle for 5 s (between blocks)."""
        self.conn.close()
        self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)

    def post(self, body: bytes, content_type: str) -> tuple[float, dict[str, float]]:
        from service.timing import parse_header

        t0 = time.perf_counter()
        self.conn.request("POST", "/v1/complementary", body=body, headers={"Content-Type": content_type})
        resp = self.conn.getresponse()
        payload = resp.read()
        dt = (time.perf_counter() - t0) * 1000
        if resp.status != 200:
            raise SystemExit(f"upload failed: {resp.status} {payload[:300]!r}")
        if json.loads(payload)["query"]["embedding_cached"]:
            raise SystemExit("an upload hit the embedding cache: the benchmark must send unique bytes")
        return dt, parse_header(resp.getheader("server-timing") or "")

    def close(self) -> None:
        self.conn.close()


def run_schedule(schedule: str, ports: dict[str, int], pool: list[bytes], n: int) -> dict[str, dict[str, Any]]:
    """n timed uploads per server (after WARMUP untimed ones) under one schedule."""
    clients = {name: UploadClient(port) for name, port in ports.items()}
    samples = {name: Samples() for name in ports}
    counter = 0

    def one(name: str, record: bool) -> None:
        nonlocal counter
        counter += 1
        # Bytes after the JPEG end marker change the sha256 (no cache hit) but not the decoded image.
        body, ctype = multipart_body(pool[counter % len(pool)] + uuid.uuid4().bytes, {"k": "20"})
        dt, stages = clients[name].post(body, ctype)
        if record:
            samples[name].latency_ms.append(dt)
            for stage, ms in stages.items():
                samples[name].stages.setdefault(stage, []).append(ms)
        if schedule != "closed-loop":
            time.sleep(THINK_S)

    try:
        if schedule == "interleaved":
            for k in range(n + WARMUP):
                for name in ports:
                    one(name, k >= WARMUP)
        else:
            per_block = -(-n // ROUNDS)
            for r in range(ROUNDS):
                for name in ports:
                    clients[name].reconnect()  # the warm-up requests absorb the new connection's cost
                    for k in range(WARMUP + min(per_block, n - r * per_block)):
                        one(name, k >= WARMUP)
                    time.sleep(THINK_S)  # lets the previous server's runtime threads stop spin-waiting
    finally:
        for c in clients.values():
            c.close()
    return {name: s.summary() for name, s in samples.items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--items", type=int, default=20_000)
    ap.add_argument("--requests", type=int, default=200, help="timed uploads per server and schedule")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--port", type=int, default=8791)
    ap.add_argument("--backends", nargs="+", choices=BACKENDS, default=list(BACKENDS))
    ap.add_argument("--schedules", nargs="+", choices=SCHEDULES, default=list(SCHEDULES))
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument(
        "--baseline", metavar="GIT_REF",
        help="also serve openvino-int8 from a worktree of this commit (before/after in the same run)",
    )
    args = ap.parse_args(argv)

    from catalog.photo_sample import int8_photos
    from catalog.synth import generate_synthetic
    from embedder.files import write_atomic
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
        cfg = QuantizeConfig(calibration_images=128, parity_images=32)
        quantize_int8(ckpt, photos=int8_photos(work / "synth", cfg), config=cfg)
        pool = photos(64)
        # (backend, micro-batch wait, code): every backend without the wait, int8 at the service default,
        # and optionally int8 served by an older commit's code.
        configs: list[tuple[str, float, str]] = [(b, 0.0, "current") for b in args.backends]
        configs.append(("openvino-int8", 5.0, "current"))
        trees = {"current": ROOT}
        if args.baseline:
            trees[args.baseline] = baseline_tree(args.baseline, work / "baseline")
            configs.append(("openvino-int8", 0.0, args.baseline))
        procs: dict[str, Any] = {}
        ports: dict[str, int] = {}
        try:
            for n, (backend, wait_ms, code) in enumerate(configs):
                name = f"{backend}@wait{wait_ms:g}ms@{code}"
                index = work / f"index-{backend}"
                if not index.exists():
                    publish_index(index, ckpt, backend, args.items)
                ports[name] = args.port + n
                log = work / f"server-{n}.log"
                procs[name] = serve(
                    index, ckpt, backend, port=ports[name], threads=args.threads, wait_ms=wait_ms, log=log,
                    tree=trees[code],
                )
            for schedule in args.schedules:
                lat = run_schedule(schedule, ports, pool, args.requests)
                for (backend, wait_ms, code), (name, row) in zip(configs, lat.items(), strict=True):
                    rows.append({"schedule": schedule, "backend": backend, "batch_max_wait_ms": wait_ms,
                                 "code": code, **row})
                    print(schedule, name, json.dumps(row), flush=True)
        finally:
            for proc in procs.values():
                proc.terminate()
                proc.wait(timeout=30)
            if args.baseline:
                subprocess.run(["git", "worktree", "remove", "--force", str(work / "baseline")], cwd=ROOT,
                               check=False)
    result = {
        "benchmark": "bench_upload_latency",
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "note": "2-core VM; the client shares the cores with the servers; a load average above ~1 at start "
        "means other jobs competed for them",
        "loadavg_at_start": [round(v, 2) for v in load],
        "loadavg_at_end": [round(v, 2) for v in os.getloadavg()],
        "config": {
            "think_time_s": THINK_S,
            "schedules": args.schedules,
            "rounds": ROUNDS,
            "warmup_per_block": WARMUP,
            "client": "http.client keep-alive, multipart body prebuilt",
            "baseline": args.baseline,
            "items": args.items,
            "threads": args.threads,
            "concurrency": 1,
            "model": "random-init 112 px d=64",
            "photo": "239x334 JPEG, unique bytes",
            "k": 20,
        },
        "rows": rows,
    }
    write_atomic(args.out, json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
