"""Chaos under load (issue 12): mixed traffic through two uvicorn workers while Redis dies and versions change.

    .venv/bin/python benchmarks/bench_chaos.py [--seconds 300] [--items 2000] [--clients 3]

`outfit-compat serve --workers 2` over a synthetic-vector index, with a private `redis-server` on a free
port (never the machine's 6379) and every worker watching the index root (OUTFIT_INDEX_WATCH_S=2). Client
threads send a mix of photo uploads (`/v1/embed`, half of them repeats, so the cache matters), id queries
(`/v1/complementary`) and outfit scores (`/v1/compatibility`) for `--seconds`. Meanwhile Redis is stopped
and restarted twice, and two new index versions are published (the same ids plus new items, so every
query stays valid). Recorded: requests, non-2xx by status (503 with Retry-After counted apart), connection
errors, p50/p99 latency, the versions the workers report, and the workers' summed RSS every
`--rss-every` seconds. Memory is judged flat on the second half of the run, once the bounded caches (64 MiB
local result cache per worker) had time to fill: `rss_growth_second_half_pct` is the change from the third
quarter's median RSS to the last quarter's; the first half's growth is recorded beside it (caches and
allocator pools filling).
Writes benchmarks/results/bench_chaos.json. Goal: zero 5xx, zero connection errors, flat memory.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from bench_hardening import free_port, jpeg, kb, start_redis
from serverutil import wait_ready

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "benchmarks" / "results" / "bench_chaos.json"


def publish(root: Path, ckpt: Path, n: int) -> None:
    from embedder import read_model_card
    from index.synthetic import synthetic_records, synthetic_vectors
    from index.writer import IndexPolicy, build_content, write_version

    card = read_model_card(ckpt)
    identity = {"model_version": card.model_version, "checkpoint_sha256": card.weights_sha256,
                "checkpoint_path": str(ckpt.resolve()), "backend": "torch",
                "source": {"kind": "synthetic-vectors", "items": n, "seed": 0}}
    content = build_content(synthetic_records(n, seed=0), synthetic_vectors(n, card.config.embed_dim, seed=0),
                            IndexPolicy())
    write_version(root, content, identity=identity, policy=IndexPolicy(), operation="build", build_seconds=0.0)


def start_workers(work: Path, index: Path, ckpt: Path, port: int, env_extra: dict[str, str]
                  ) -> subprocess.Popen[bytes]:
    """`outfit-compat serve --workers 2` in its own session (stop_workers takes the workers down with it), one
    model thread each, no OUTFIT_*/REDIS_URL from the caller's environment beyond `env_extra`; ready on return."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OUTFIT_") and k != "REDIS_URL"}
    env.update({"OUTFIT_TORCH_THREADS": "1", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT), **env_extra})
    log = work / "server.log"
    server = subprocess.Popen(
        [sys.executable, "-m", "outfit_compat", "serve", "--index", str(index), "--checkpoint", str(ckpt),
         "--port", str(port), "--workers", "2", "--log-level", "warning"],
        env=env, cwd=ROOT, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_ready(server, port, log, timeout_s=900)
    except BaseException:
        stop_workers(server)
        raise
    time.sleep(5)  # the second worker
    return server


def stop_workers(server: subprocess.Popen[bytes]) -> None:
    server.terminate()
    try:
        server.wait(60)
    except subprocess.TimeoutExpired:  # workers still draining: the figures are taken already
        os.killpg(server.pid, signal.SIGKILL)  # its own session: the workers go too
        server.wait(10)


def workers_rss_mb(pid: int) -> float:
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return sum(kb(int(c), "VmRSS") for c in children) / 1024


def sample_rss(pid: int, t0: float, every: float, timeline: list[tuple[float, float]],
               done: threading.Event) -> None:
    while not done.wait(every):
        timeline.append((round(time.monotonic() - t0, 1), round(workers_rss_mb(pid), 1)))


def rss_summary(timeline: list[tuple[float, float]], seconds: float) -> dict[str, Any]:
    """The RSS timeline and its growth per stretch of the run: medians of the samples in each quarter, so a
    publish (old and new engine briefly both in memory) or one slow sample does not read as a trend."""
    def median(lo: float, hi: float) -> float:
        return float(np.median([mb for t, mb in timeline if lo * seconds <= t <= hi * seconds] or [np.nan]))

    q = [median(a, b) for a, b in ((0.0, 0.25), (0.25, 0.5), (0.5, 0.75), (0.75, 1.01))]
    return {"rss_timeline_mb": [list(x) for x in timeline], "rss_quarter_medians_mb": [round(x, 1) for x in q],
            "rss_growth_first_half_pct": round(100 * (q[1] - q[0]) / q[0], 2),
            "rss_growth_second_half_pct": round(100 * (q[3] - q[2]) / q[2], 2)}


def workers_versions(url: str, probes: int = 80) -> dict[int, int]:
    """Items each worker serves, from /readyz on fresh connections sent concurrently: one at a time, the same
    idle worker tends to accept every connection."""
    seen: dict[int, int] = {}

    def ask() -> None:
        body = httpx.get(url + "/readyz", headers={"Connection": "close"}).json()
        seen[int(body["worker"])] = int(body["items"])

    threads = [threading.Thread(target=ask) for _ in range(probes)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return seen


class Load:
    def __init__(self, url: str, ids: list[str], seed: int) -> None:
        self.url, self.ids, self.rng = url, ids, random.Random(seed)
        self.latencies: list[float] = []
        self.statuses: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        self.stop = threading.Event()

    def one(self, c: httpx.Client, n: int) -> httpx.Response:
        kind = n % 3
        if kind == 0:
            shade = self.rng.randrange(40) if self.rng.random() < 0.5 else self.rng.randrange(40, 10**6)
            photo = jpeg((80, 100), (shade % 256, (shade // 256) % 256, 90))
            return c.post("/v1/embed", files={"image": ("p.jpg", photo, "image/jpeg")})
        picks = self.rng.sample(self.ids, 3)
        if kind == 1:
            return c.post("/v1/complementary", json={"item_ids": picks[:1], "k": 10})
        return c.post("/v1/compatibility", json={"item_ids": picks})

    def run(self) -> None:
        n = 0
        with httpx.Client(base_url=self.url, timeout=60) as c:
            while not self.stop.is_set():
                n += 1
                t0 = time.perf_counter()
                try:
                    r = self.one(c, n)
                except httpx.HTTPError as e:
                    self.errors[type(e).__name__] += 1
                    continue
                self.latencies.append(time.perf_counter() - t0)
                label = str(r.status_code)
                if r.status_code == 503 and r.headers.get("retry-after"):
                    label = "503+Retry-After"
                self.statuses[label] += 1


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=300)
    ap.add_argument("--items", type=int, default=2000)
    ap.add_argument("--clients", type=int, default=3)
    ap.add_argument("--rss-every", type=float, default=10.0, help="seconds between RSS samples")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)

    from index.demo_step import random_init_checkpoint

    result: dict[str, Any] = {"seconds": args.seconds, "items": args.items, "clients": args.clients,
                              "load_average_start": os.getloadavg(), "events": []}
    with tempfile.TemporaryDirectory(prefix="bench-chaos-") as tmp:
        work = Path(tmp)
        ckpt = random_init_checkpoint(work / "ckpt", seed=0)
        index = work / "index"
        publish(index, ckpt, args.items)
        redis_proc, redis_port = start_redis(work)
        port = free_port()
        try:
            server = start_workers(work, index, ckpt, port, {
                "OUTFIT_INDEX_WATCH_S": "2", "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0"})
        except BaseException:
            redis_proc.terminate()
            raise
        url = f"http://127.0.0.1:{port}"
        try:
            cats = [c["name"] for c in httpx.get(url + "/v1/categories").json()["categories"]]
            ids = [it["id"] for c in cats
                   for it in httpx.get(url + "/v1/items", params={"category": c, "limit": 20}).json()["items"]]
            result["rss_start_mb"] = workers_rss_mb(server.pid)
            loads = [Load(url, ids, seed) for seed in range(args.clients)]
            threads = [threading.Thread(target=ld.run) for ld in loads]
            t0 = time.monotonic()
            for t in threads:
                t.start()
            timeline: list[tuple[float, float]] = [(0.0, result["rss_start_mb"])]
            sampling = threading.Event()
            sampler = threading.Thread(target=sample_rss, args=(server.pid, t0, args.rss_every, timeline, sampling))
            sampler.start()
            s = args.seconds
            plan = [(0.2 * s, "redis stop"), (0.3 * s, "redis start"), (0.45 * s, "publish"),
                    (0.6 * s, "redis stop"), (0.7 * s, "redis start"), (0.8 * s, "publish")]
            published = args.items
            for at, event in plan:
                time.sleep(max(0.0, at - (time.monotonic() - t0)))
                if event == "redis stop":
                    redis_proc.terminate()
                    redis_proc.wait(10)
                elif event == "redis start":
                    redis_proc, _ = start_redis(work, redis_port)
                else:
                    published += 100
                    publish(index, ckpt, published)
                result["events"].append({"t_s": round(time.monotonic() - t0, 1), "event": event})
            time.sleep(max(0.0, s - (time.monotonic() - t0)))
            for ld in loads:
                ld.stop.set()
            for t in threads:
                t.join()
            sampling.set()
            sampler.join()
            result["rss_end_mb"] = workers_rss_mb(server.pid)
            result.update(rss_summary(timeline, args.seconds))
            result["workers_items_at_end"] = workers_versions(url)
            result["items_published_last"] = published
        finally:
            stop_workers(server)
            redis_proc.terminate()
    lat = np.array([x for ld in loads for x in ld.latencies])
    statuses: Counter[str] = sum((ld.statuses for ld in loads), Counter())
    errors: Counter[str] = sum((ld.errors for ld in loads), Counter())
    result.update({
        "requests": int(sum(statuses.values()) + sum(errors.values())),
        "statuses": dict(statuses), "connection_errors": dict(errors),
        "server_errors_5xx": sum(n for k, n in statuses.items() if k.startswith("5") and k != "503+Retry-After"),
        "p50_ms": float(np.percentile(lat, 50) * 1000) if len(lat) else None,
        "p99_ms": float(np.percentile(lat, 99) * 1000) if len(lat) else None,
        "load_average_end": os.getloadavg(),
    })
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
