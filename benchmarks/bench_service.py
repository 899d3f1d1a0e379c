"""Load benchmark of the REST service: a real uvicorn process on one core, Debian's wrk on the other.

    /work/bin/quiet .venv/bin/python benchmarks/bench_service.py [--items 100000] [--backend openvino-int8]
        [--duration 8] [--concurrency 1 16 64] [--soak-seconds 30] [--out benchmarks/results/bench_service.json]

Scenarios, closed-loop at every concurrency (wrk `-c`, one thread, benchmarks/wrk/*.lua): GET /healthz
(the ceiling of the HTTP stack, same run, same pinning), id-based POST /v1/complementary and
/v1/compatibility (each request names ids no earlier request of the run named, so the result cache
never hits: the benchmark counts cache hits and reports them), and photo-upload POST /v1/complementary
(every upload is a distinct byte string, so the embedding cache never hits either).
Also, on the server's core: the standalone decode + preprocess + embed pipeline (batch 32, the same
functions and backend the server uses), against which uploads are compared; the server's RSS and CPU per
request (/proc) and wrk's; the index open time in a fresh process; and RSS during a mixed soak.
The index is built from seeded synthetic vectors (`index.synthetic`) through the index writer; the model is
a random-init ResNet-18 at the production config (112 px, d=64): inference cost does not depend on the
weights. Goals (issue 16) are evaluated in the output's `goals`. Needs `wrk` (`make bench-deps`).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from loadgen import (
    Pinning,
    Scenario,
    cpu_flags,
    pinned,
    profile_process,
    rss_mb,
    run_wrk,
    scrape_metrics,
    summarise_profile,
)
from serverutil import wait_ready

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RESULTS = ROOT / "benchmarks" / "results" / "bench_service.json"
SCENARIOS = ("healthz", "complementary_ids", "compatibility_ids", "complementary_upload")
PHOTOS = 64
CACHE_HITS = ('outfit_cache_lookups_total{kind="result",result="hit"}',
              'outfit_cache_lookups_total{kind="embedding",result="hit"}')


def ensure_checkpoint(workdir: Path, backend: str, *, category_head: bool = False) -> Path:
    """A random-init checkpoint, with the fp32 and int8 exports the ONNX/OpenVINO backends need; with
    `category_head`, a random-init layer2 branch over the synthetic index's categories too (the default
    head's shape: its cost, not its answers, is what is measured)."""
    from embedder.onnx_export import export_onnx, variant_path
    from index.demo_step import random_init_checkpoint

    ckpt = random_init_checkpoint(workdir / ("checkpoint-head" if category_head else "checkpoint"), seed=0)
    if category_head:
        add_random_head(ckpt)
    if backend != "torch" and not variant_path(ckpt, "fp32").is_file():
        export_onnx(ckpt)
    if backend.endswith("int8") and not variant_path(ckpt, "int8").is_file():
        from catalog.photo_sample import int8_photos
        from catalog.synth import generate_synthetic
        from embedder.quantize import QuantizeConfig, quantize_int8

        synth = workdir / "calibration-synth"
        if not (synth / "nondisjoint" / "test.json").is_file():
            generate_synthetic(synth, items=300, outfits=160, seed=0)
        cfg = QuantizeConfig(calibration_images=128, parity_images=32)
        quantize_int8(ckpt, photos=int8_photos(synth, cfg), config=cfg)
    return ckpt


def add_random_head(ckpt: Path) -> None:
    import torch

    from embedder import read_model_card
    from embedder.category_head import HEAD_FILE, CategoryBranch, branch_stages, save_category_head
    from embedder.checkpoint import load_embedder
    from index.synthetic import CATEGORIES

    if (ckpt / HEAD_FILE).is_file():
        return
    torch.manual_seed(0)
    model, _ = load_embedder(ckpt)
    classes = tuple(sorted(CATEGORIES))
    branch = CategoryBranch(len(classes), start=2, stages=branch_stages(model, 2))
    save_category_head(ckpt, branch, classes, model_version=read_model_card(ckpt).model_version)


def ensure_index(root: Path, checkpoint: Path, n: int, backend: str) -> Path:
    """Publish n synthetic items under root for `backend`'s family (reused when model, size and family match)."""
    from embedder import read_model_card
    from index import IndexArtifactError, open_index
    from index.synthetic import synthetic_records, synthetic_vectors
    from index.writer import IndexPolicy, build_content, write_version

    card = read_model_card(checkpoint)
    try:
        idx = open_index(root, expected_model_version=card.model_version, backend=backend)
        if idx.count == n:
            return root
    except (IndexArtifactError, ValueError):
        pass
    t0 = time.perf_counter()
    records = synthetic_records(n, seed=0)
    vectors = synthetic_vectors(n, card.config.embed_dim, seed=0)
    policy = IndexPolicy()
    identity = {"model_version": card.model_version, "checkpoint_sha256": card.weights_sha256,
                "checkpoint_path": str(checkpoint.resolve()), "backend": backend,
                "source": {"kind": "synthetic-vectors", "items": n, "seed": 0}}
    write_version(root, build_content(records, vectors, policy), identity=identity, policy=policy,
                  operation="build", build_seconds=time.perf_counter() - t0)
    print(f"built {n}-item index in {time.perf_counter() - t0:.1f}s", flush=True)
    return root


def write_photos(folder: Path, n: int, size: int = 256, seed: int = 0) -> Path:
    """Seeded product-like JPEGs (a textured block on white) as folder/0.jpg .. n-1.jpg for wrk."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        arr = np.full((size, size, 3), 255, dtype=np.uint8)
        h, w = rng.integers(size // 3, size - 8, 2)
        y, x = rng.integers(0, size - h), rng.integers(0, size - w)
        block = rng.integers(0, 255, 3) + rng.integers(-30, 30, (h, w, 3))
        arr[y : y + h, x : x + w] = np.clip(block, 0, 255)
        buf = io.BytesIO()
        Image.fromarray(arr).save(buf, "JPEG", quality=90)
        (folder / f"{i}.jpg").write_bytes(buf.getvalue())
    return folder


def standalone_pipeline(checkpoint: Path, backend: str, photos: Path, *, threads: int, batch: int = 32,
                        rounds: int = 4) -> dict[str, Any]:
    """What the embedder alone does with the same photos: the server's decode + preprocess, batched forward."""
    from embedder.backend import load_backend
    from embedder.image_io import ImageLimits, decode_image
    from embedder.preprocess import to_model_input

    if backend == "torch":
        import torch

        torch.set_num_threads(threads)
    model = load_backend(checkpoint, backend=backend, threads=threads)
    cfg = model.preprocess
    data = [(photos / f"{i}.jpg").read_bytes() for i in range(PHOTOS)]
    limits = ImageLimits()

    def prepare(raw: bytes) -> np.ndarray:
        return to_model_input(decode_image(raw, limits), cfg)

    model.embed_batch(np.stack([prepare(d) for d in data[:batch]]))  # warm-up
    t0 = time.perf_counter()
    forward = 0.0
    for _ in range(rounds):
        for s in range(0, len(data), batch):
            x = np.stack([prepare(d) for d in data[s : s + batch]])
            f0 = time.perf_counter()
            model.embed_batch(x)
            forward += time.perf_counter() - f0
    total = time.perf_counter() - t0
    n = rounds * len(data)
    return {"backend": backend, "batch": batch, "images": n, "threads": threads,
            "images_per_s": round(n / total, 1), "forward_only_images_per_s": round(n / forward, 1)}


def standalone_on_core(checkpoint: Path, backend: str, photos: Path, *, threads: int, core: int | None) -> Any:
    """The standalone pipeline in a fresh process pinned like the server."""
    cmd = pinned([sys.executable, __file__, "--standalone", "--checkpoint", str(checkpoint), "--backend", backend,
                  "--photos", str(photos), "--threads", str(threads)], core)
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])


def index_open_seconds(index: Path, backend: str) -> dict[str, float]:
    """Opening the published index (checksums, FAISS files, item store) in a fresh process; page cache warm."""
    code = ("import sys, time, json; sys.path.insert(0, sys.argv[1]); from index import open_index; "
            "t = time.perf_counter(); idx = open_index(sys.argv[2], backend=sys.argv[3]); "
            "print(json.dumps({'open_s': round(time.perf_counter() - t, 3), 'items': idx.count}))")
    out = subprocess.run([sys.executable, "-c", code, str(ROOT), str(index), backend], check=True,
                         capture_output=True, text=True)
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def start_server(index: Path, checkpoint: Path, *, port: int, backend: str, threads: int, core: int | None,
                 log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OUTFIT_") and k != "REDIS_URL"}
    env.update({"OUTFIT_BACKEND": backend, "OUTFIT_TORCH_THREADS": str(threads), "OMP_NUM_THREADS": str(threads),
                "OUTFIT_BATCH_MAX_SIZE": "32", "OUTFIT_BATCH_MAX_WAIT_MS": "5", "OUTFIT_BATCH_QUEUE_SIZE": "256"})
    cmd = pinned([sys.executable, "-m", "outfit_compat", "serve", "--index", str(index), "--checkpoint",
                  str(checkpoint), "--port", str(port), "--log-level", "warning"], core)
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    wait_ready(proc, port, log)
    return proc


class Workload:
    """The wrk scenarios, each run with fresh ids (id walks continue where earlier runs stopped) and
    fresh upload bytes, so neither the result cache nor the embedding cache ever answers."""

    IDS_PER_REQUEST: ClassVar[dict[str, int]] = {"complementary_ids": 1, "compatibility_ids": 4}

    def __init__(self, items: int, photos: Path) -> None:
        self.items = items
        self.photos = photos
        self.offsets = dict.fromkeys(self.IDS_PER_REQUEST, 0)
        self.runs = 0

    def scenario(self, name: str) -> Scenario:
        self.runs += 1
        if name == "healthz":
            return Scenario(name, "get.lua", {"WRK_PATH": "/healthz"})
        if name == "complementary_upload":
            return Scenario(name, "upload.lua", {"WRK_PHOTOS": str(self.photos), "WRK_PHOTO_COUNT": str(PHOTOS),
                                                 "WRK_PATH": "/v1/complementary", "WRK_SEED": str(self.runs)})
        env = {"WRK_ITEMS": str(self.items), "WRK_OFFSET": str(self.offsets[name]),
               "WRK_IDS_PER_REQUEST": str(self.IDS_PER_REQUEST[name])}
        if name == "complementary_ids":
            return Scenario(name, "ids.lua", {**env, "WRK_PATH": "/v1/complementary",
                                              "WRK_EXTRA": '"k": 20, "per_category": 5'})
        return Scenario(name, "ids.lua", {**env, "WRK_PATH": "/v1/compatibility"})

    def run(self, base: str, name: str, *, c: int, duration: float, pid: int, core: int | None) -> dict[str, Any]:
        r = run_wrk(base, self.scenario(name), connections=c, duration_s=duration, server_pid=pid, core=core)
        if name in self.offsets:
            # Requests still in flight when wrk stopped drew ids too: skip past them.
            self.offsets[name] += (r["requests"] + c) * self.IDS_PER_REQUEST[name]
            if self.offsets[name] > self.items:
                r["note"] = "the id walk wrapped around the catalog: later cells may hit the result cache"
        return r


def measure_cell(base: str, work: Workload, name: str, *, c: int, duration: float, pid: int,
                 pin: Pinning, profile: Path | None = None) -> dict[str, Any]:
    """One scenario at one concurrency; with `profile`, py-spy samples the server meanwhile (on wrk's core)."""
    before = scrape_metrics(base, ("outfit_embed_batch_size_", "outfit_cache_lookups_total"))
    spy = profile_process(pid, duration, profile, core=pin.client_core) if profile else None
    r = work.run(base, name, c=c, duration=duration, pid=pid, core=pin.client_core)
    if spy is not None and profile is not None:
        spy.wait(timeout=duration + 30)
        r["profile"] = summarise_profile(profile) if profile.is_file() else None
    after = scrape_metrics(base, ("outfit_embed_batch_size_", "outfit_cache_lookups_total"))
    r["cache_hits"] = int(sum(after.get(k, 0) - before.get(k, 0) for k in CACHE_HITS))
    if name == "complementary_upload":
        imgs = after.get("outfit_embed_batch_size_sum", 0) - before.get("outfit_embed_batch_size_sum", 0)
        batches = after.get("outfit_embed_batch_size_count", 0) - before.get("outfit_embed_batch_size_count", 0)
        r["mean_batch_size"] = round(imgs / batches, 2) if batches else None
    print(json.dumps(r), flush=True)
    return r


def soak(base: str, work: Workload, *, seconds: float, pid: int, pin: Pinning) -> dict[str, Any]:
    """Mixed load at concurrency 16 in 10 s turns, RSS after each: a plateau or a climb."""
    start = time.perf_counter()
    series = [{"t_s": 0.0, "rss_mb": rss_mb(pid)}]
    runs: list[dict[str, Any]] = []
    turn = 0
    while (left := seconds - (time.perf_counter() - start)) >= 1.0:
        name = ("complementary_ids", "compatibility_ids", "complementary_upload")[turn % 3]
        runs.append(work.run(base, name, c=16, duration=min(10.0, left), pid=pid, core=pin.client_core))
        series.append({"t_s": round(time.perf_counter() - start, 1), "rss_mb": rss_mb(pid)})
        turn += 1
    n = sum(r["requests"] for r in runs)
    failed = sum(sum(r["errors"].values()) for r in runs)
    return {"seconds": seconds, "requests": n, "error_rate": round(failed / max(1, n), 4), "rss_series": series}


def goals(results: list[dict[str, Any]], standalone: dict[str, Any], backend: str) -> dict[str, Any]:
    def cell(s: str, c: int) -> dict[str, Any] | None:
        return next((r for r in results if r["scenario"] == s and r["concurrency"] == c), None)

    out: dict[str, Any] = {}
    h16, ids16, up16, up1 = (cell("healthz", 16), cell("complementary_ids", 16), cell("complementary_upload", 16),
                             cell("complementary_upload", 1))
    if h16 and ids16:
        ratio = ids16["rps"] / h16["rps"]
        out["complementary_ids_vs_healthz_c16"] = {"ratio": round(ratio, 4), "target": 0.35, "met": ratio >= 0.35}
    if up16:
        ratio = up16["rps"] / standalone["images_per_s"]
        out["upload_vs_standalone_c16"] = {"ratio": round(ratio, 4), "target": 0.7, "met": ratio >= 0.7,
                                           "backend": backend}
    if up1:
        out["upload_p50_ms_c1"] = {"p50_ms": up1["p50_ms"], "target": 10.0, "met": up1["p50_ms"] < 10.0}
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--items", type=int, default=100_000)
    p.add_argument("--backend", default="openvino-int8")
    p.add_argument("--duration", type=float, default=8.0, help="seconds per scenario and concurrency")
    p.add_argument("--concurrency", type=int, nargs="+", default=[1, 16, 64])
    p.add_argument("--scenarios", nargs="+", choices=SCENARIOS, default=list(SCENARIOS))
    p.add_argument("--soak-seconds", type=float, default=30.0, help="mixed load before the last RSS reading")
    p.add_argument("--soak-only", action="store_true", help="skip the scenario grid (memory soak only)")
    p.add_argument("--threads", type=int, default=1, help="model threads in the server and the standalone run")
    p.add_argument("--server-core", type=int, default=0)
    p.add_argument("--client-core", type=int, default=1)
    p.add_argument("--workdir", type=Path, default=ROOT / "artifacts" / "bench_service")
    p.add_argument("--port", type=int, default=8765)
    p.add_argument("--out", type=Path, default=RESULTS)
    p.add_argument("--profile", nargs="*", default=["complementary_ids@16", "complementary_upload@16"],
                   metavar="SCENARIO@C", help="cells sampled with py-spy (separate runs after the grid)")
    p.add_argument("--category-head", action="store_true",
                   help="serve a checkpoint with a category head (uploads then pay for its branch)")
    p.add_argument("--standalone", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--checkpoint", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--photos", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.standalone:  # the child process of standalone_on_core
        print(json.dumps(standalone_pipeline(args.checkpoint, args.backend, args.photos, threads=args.threads)))
        return 0
    load_at_start = os.getloadavg()
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    pin = Pinning(server_core=args.server_core, client_core=args.client_core)

    args.workdir.mkdir(parents=True, exist_ok=True)
    ckpt = ensure_checkpoint(args.workdir, args.backend, category_head=args.category_head)
    suffix = "-head" if args.category_head else ""
    index = ensure_index(args.workdir / f"index-{args.items}-{args.backend}{suffix}", ckpt, args.items, args.backend)
    photos = write_photos(args.workdir / "photos", PHOTOS)
    opened = index_open_seconds(index, args.backend)
    standalone = standalone_on_core(ckpt, args.backend, photos, threads=args.threads, core=pin.server_core)
    print("standalone pipeline:", standalone, "index open:", opened, flush=True)

    base = f"http://127.0.0.1:{args.port}"
    t_start = time.perf_counter()
    proc = start_server(index, ckpt, port=args.port, backend=args.backend, threads=args.threads,
                        core=pin.server_core, log=args.workdir / "server.log")
    ready_s = time.perf_counter() - t_start
    results: list[dict[str, Any]] = []
    try:
        work = Workload(args.items, photos)
        for name in args.scenarios:  # warm-up: every route, a few connections
            work.run(base, name, c=4, duration=2, pid=proc.pid, core=pin.client_core)
        rss_warm = rss_mb(proc.pid)
        for c in [] if args.soak_only else args.concurrency:
            for name in args.scenarios:
                results.append(measure_cell(base, work, name, c=c, duration=args.duration, pid=proc.pid, pin=pin))
        # Profiles come from separate runs: py-spy takes CPU on wrk's core and would skew the figures above.
        profiles = {}
        for cell in args.profile:
            name, _, c = cell.partition("@")
            if name in args.scenarios:
                raw = args.workdir / f"profile-{name}-{c}.txt"
                profiles[cell] = measure_cell(base, work, name, c=int(c), duration=args.duration, pid=proc.pid,
                                              pin=pin, profile=raw)["profile"]
        soaked = soak(base, work, seconds=args.soak_seconds, pid=proc.pid, pin=pin)
        rss_end = rss_mb(proc.pid)
    finally:
        proc.terminate()
        proc.wait(timeout=30)

    def rps(s: str, c: int) -> float | None:
        return next((r["rps"] for r in results if r["scenario"] == s and r["concurrency"] == c), None)

    ratios = {f"{s}@{c}": round(v / h, 4) for c in args.concurrency for s in args.scenarios
              if s != "healthz" and (v := rps(s, c)) is not None and (h := rps("healthz", c))}
    summary = {
        "benchmark": "bench_service",
        "started": started,
        "loadavg_at_start": [round(v, 2) for v in load_at_start],
        "loadavg_at_end": [round(v, 2) for v in os.getloadavg()],
        "load_generator": "wrk 4.1 (Debian), 1 thread, closed loop, benchmarks/wrk/*.lua",
        "pinning": {"server_core": pin.server_core, "client_core": pin.client_core},
        "machine": {"cpu": cpu_flags(), "python": platform.python_version(), "platform": platform.platform()},
        "config": {"items": args.items, "backend": args.backend, "duration_s": args.duration,
                   "concurrency": args.concurrency, "threads": args.threads, "batch_max_size": 32,
                   "batch_max_wait_ms": 5, "cache": "local LRU", "model": "random-init resnet18, 112 px, d=64"
                   + (", random-init category head (layer2 branch)" if args.category_head else ""),
                   "photos": "256x256 JPEG, unique bytes per upload", "ids": "unique per cell (no result-cache hit)"},
        "index": {**opened, "server_start_to_ready_s": round(ready_s, 2)},
        "standalone_pipeline": standalone,
        "results": results,
        "ratio_to_healthz": ratios,
        "goals": goals(results, standalone, args.backend),
        "memory": {"rss_mb_after_warmup": rss_warm, "rss_mb_at_end": rss_end, "soak": soaked},
        "profiles": profiles,
    }
    from embedder.files import write_atomic

    write_atomic(args.out, json.dumps(summary, indent=2))
    print(json.dumps({k: summary[k] for k in ("ratio_to_healthz", "goals", "index")}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
