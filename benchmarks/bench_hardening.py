"""The figures of issue 12's reproduced attacks, through real uvicorn servers, before and after in one run.

    .venv/bin/python benchmarks/bench_hardening.py [--baseline GIT_REF] [--items 2000]

For the current code (and, with --baseline, a worktree of that commit: same venv, same machine, same
minute) a server is started over a synthetic-vector index with a private `redis-server` on a free port
(never the machine's 6379), and measured:

- `strip`: a 16000x250 PNG (~12 KB) to POST /v1/embed: status, seconds, peak RSS rise of the server
  (VmHWM after resetting it through /proc/<pid>/clear_refs);
- `wide`: an 8000x400 PNG (the widest shape accepted now): the same figures;
- `small_alongside_large`: a 60x80 JPEG's latency alone (median of 5) and while four 4000x4000 PNGs
  decode, with the large uploads' latencies;
- `healthz_during_reload`: the slowest /healthz (polled every 10 ms) while POST /v1/admin/reload runs
  with a 6000x6000 upload in flight;
- `cache_growth`: Redis `used_memory` and server RSS growth over 150 complementary requests with 1,000
  exclude ids of 200 characters each, and the longest key written.

Writes benchmarks/results/bench_hardening.json.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from bench_upload_latency import baseline_tree, publish_index
from PIL import Image
from serverutil import wait_ready

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "benchmarks" / "results" / "bench_hardening.json"
KEY = "bench-key"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def png(size: tuple[int, int], color: tuple[int, int, int] = (200, 120, 40)) -> bytes:
    img = Image.new("RGB", size, (255, 255, 255))
    img.paste(Image.new("RGB", (size[0] // 2, size[1] // 2), color), (size[0] // 4, size[1] // 4))
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def jpeg(size: tuple[int, int], color: tuple[int, int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def peak_rise(pid: int, action: Any) -> tuple[Any, float, float]:
    """(action's result, seconds, peak RSS rise in MB) with the peak reset just before."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")
    base = kb(pid, "VmRSS")
    t0 = time.perf_counter()
    out = action()
    return out, time.perf_counter() - t0, (kb(pid, "VmHWM") - base) / 1024


def start_redis(work: Path, port: int | None = None) -> tuple[subprocess.Popen[bytes], int]:
    """A private redis-server (no persistence) on `port` or a free one; never the machine's 6379."""
    port = port or free_port()
    proc = subprocess.Popen(["redis-server", "--port", str(port), "--save", "", "--appendonly", "no",
                             "--dir", str(work)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    import redis

    for _ in range(100):
        try:
            redis.Redis(port=port).ping()
            return proc, port
        except redis.RedisError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("redis-server did not start")


def serve(tree: Path, index: Path, ckpt: Path, redis_port: int, log: Path, prefix: str) -> tuple[Any, str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("OUTFIT_") and k != "REDIS_URL"}
    env.update({"OUTFIT_TORCH_THREADS": "1", "OMP_NUM_THREADS": "1", "OUTFIT_ADMIN_API_KEY": KEY,
                "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0", "OUTFIT_CACHE_PREFIX": prefix,
                "PYTHONPATH": str(tree)})
    cmd = [sys.executable, "-m", "outfit_compat", "serve", "--index", str(index), "--checkpoint", str(ckpt),
           "--port", str(port), "--log-level", "warning"]
    proc = subprocess.Popen(cmd, env=env, cwd=tree, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    wait_ready(proc, port, log, timeout_s=600)
    return proc, f"http://127.0.0.1:{port}"


def embed(url: str, data: bytes, name: str = "x.png") -> int:
    return httpx.post(url + "/v1/embed", files={"image": (name, data, "image/png")}, timeout=300).status_code


def small_alongside_large(url: str) -> dict[str, Any]:
    alone = []
    for i in range(5):
        t0 = time.perf_counter()
        embed(url, jpeg((60, 80), (i, 50, 90)), "s.jpg")
        alone.append(time.perf_counter() - t0)
    big = [png((4000, 4000), (10 * i, 90, 200)) for i in range(4)]

    async def run() -> tuple[list[float], float]:
        async with httpx.AsyncClient(base_url=url, timeout=300) as c:
            async def post(data: bytes) -> float:
                t0 = time.perf_counter()
                await c.post("/v1/embed", files={"image": ("b.png", data, "image/png")})
                return time.perf_counter() - t0

            bigs = [asyncio.ensure_future(post(b)) for b in big]
            await asyncio.sleep(0.05)
            small = await post(jpeg((60, 80), (77, 50, 90)))
            return list(await asyncio.gather(*bigs)), small

    big_s, small_s = asyncio.run(run())
    return {"small_alone_median_s": statistics.median(alone), "small_alongside_s": small_s,
            "large_s": big_s}


def healthz_during_reload(url: str) -> dict[str, Any]:
    slowest = 0.0
    stop = threading.Event()

    def poll() -> None:
        nonlocal slowest
        with httpx.Client(base_url=url, timeout=60) as c:
            while not stop.is_set():
                t0 = time.perf_counter()
                c.get("/healthz")
                slowest = max(slowest, time.perf_counter() - t0)
                time.sleep(0.01)

    upload = threading.Thread(target=embed, args=(url, png((6000, 6000))))
    upload.start()
    time.sleep(0.2)
    poller = threading.Thread(target=poll)
    poller.start()
    t0 = time.perf_counter()
    status = httpx.post(url + "/v1/admin/reload", headers={"X-API-Key": KEY}, timeout=600).status_code
    reload_s = time.perf_counter() - t0
    upload.join()
    stop.set()
    poller.join()
    return {"reload_status": status, "reload_s": reload_s, "slowest_healthz_s": slowest}


def cache_growth(url: str, pid: int, redis_port: int, prefix: str) -> dict[str, Any]:
    import redis

    r = redis.Redis(port=redis_port)
    cats = [c["name"] for c in httpx.get(url + "/v1/categories").json()["categories"]]
    ids = [it["id"] for it in httpx.get(url + "/v1/items", params={"category": cats[0], "limit": 1}).json()["items"]]
    mem0, rss0 = int(r.info("memory")["used_memory"]), kb(pid, "VmRSS")
    statuses = []
    with httpx.Client(base_url=url, timeout=120) as c:
        for n in range(150):
            exclude = [f"{n:03d}-{m:04d}-" + "x" * 191 for m in range(1000)]
            statuses.append(c.post("/v1/complementary", json={"item_ids": ids, "exclude": exclude}).status_code)
    keys = list(r.scan_iter(match=prefix + "*"))
    return {
        "requests": len(statuses), "ok": statuses.count(200),
        "redis_used_memory_growth_mb": (int(r.info("memory")["used_memory"]) - mem0) / 2**20,
        "server_rss_growth_mb": (kb(pid, "VmRSS") - rss0) / 1024,
        "longest_key_chars": max((len(k) for k in keys), default=0),
    }


def measure(tree: Path, index: Path, ckpt: Path, redis_port: int, log: Path, prefix: str) -> dict[str, Any]:
    proc, url = serve(tree, index, ckpt, redis_port, log, prefix)
    try:
        embed(url, jpeg((60, 80), (1, 2, 3)), "warm.jpg")
        out: dict[str, Any] = {}
        for name, size in (("strip", (16000, 250)), ("wide", (8000, 400))):
            status, secs, rise = peak_rise(proc.pid, lambda s=size: embed(url, png(s)))
            out[name] = {"size": list(size), "status": status, "seconds": secs, "peak_rss_rise_mb": rise}
        out["small_alongside_large"] = small_alongside_large(url)
        out["healthz_during_reload"] = healthz_during_reload(url)
        out["cache_growth"] = cache_growth(url, proc.pid, redis_port, prefix)
        out["server_rss_end_mb"] = kb(proc.pid, "VmRSS") / 1024
        return out
    finally:
        proc.terminate()
        proc.wait(30)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--items", type=int, default=2000)
    ap.add_argument("--baseline", metavar="GIT_REF", help="also measure a worktree of this commit")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    if shutil.which("redis-server") is None:
        raise SystemExit("redis-server is not installed")

    from index.demo_step import random_init_checkpoint

    load_start = os.getloadavg()
    result: dict[str, Any] = {"items": args.items, "load_average_start": load_start, "runs": {}}
    with tempfile.TemporaryDirectory(prefix="bench-hardening-") as tmp:
        work = Path(tmp)
        ckpt = random_init_checkpoint(work / "ckpt", seed=0)
        index = publish_index(work / "index", ckpt, "torch", args.items)
        trees = {"current": ROOT}
        if args.baseline:
            trees[args.baseline] = baseline_tree(args.baseline, work / "baseline")
        redis_proc, redis_port = start_redis(work)
        try:
            for name, tree in trees.items():
                print(f"measuring {name} ...", flush=True)
                result["runs"][name] = measure(tree, index, ckpt, redis_port, work / f"{name}.log", f"b-{name}:")
                print(json.dumps(result["runs"][name], indent=2), flush=True)
        finally:
            redis_proc.terminate()
            redis_proc.wait(10)
            if args.baseline:
                subprocess.run(["git", "worktree", "remove", "--force", str(trees[args.baseline])], cwd=ROOT,
                               capture_output=True)
    result["load_average_end"] = os.getloadavg()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
