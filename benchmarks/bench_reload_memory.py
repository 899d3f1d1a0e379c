"""Memory across many index publishes (issue 12): is each replaced engine released?

    .venv/bin/python benchmarks/bench_reload_memory.py [--publishes 30] [--items 2000]

`outfit-compat serve --workers 2` over a synthetic-vector index, workers watching the index root
(OUTFIT_INDEX_WATCH_S=1). A new version is published `--publishes` times (alternately +100 items, so every
publish changes the content); after each, once the workers have had time to swap, 30 complementary queries run
and the workers' summed RSS is recorded. A replaced engine that stayed referenced would add its memory on every
publish (a line that only rises); allocator pools show as steps that stop. Writes
benchmarks/results/bench_reload_memory.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from bench_chaos import publish, start_workers, stop_workers, workers_rss_mb
from bench_hardening import free_port

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "benchmarks" / "results" / "bench_reload_memory.json"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--publishes", type=int, default=30)
    ap.add_argument("--items", type=int, default=2000)
    ap.add_argument("--settle", type=float, default=4.0, help="seconds for the workers to swap after a publish")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)

    from index.demo_step import random_init_checkpoint

    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-reload-") as tmp:
        work = Path(tmp)
        ckpt = random_init_checkpoint(work / "ckpt", seed=0)
        index = work / "index"
        publish(index, ckpt, args.items)
        port = free_port()
        server = start_workers(work, index, ckpt, port, {"OUTFIT_INDEX_WATCH_S": "1"})
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as c:
                cat = c.get("/v1/categories").json()["categories"][0]["name"]
                item = c.get("/v1/items", params={"category": cat, "limit": 1}).json()["items"][0]["id"]
                for k in range(args.publishes + 1):
                    items = args.items
                    if k:
                        items = args.items + 100 * (k % 2)
                        publish(index, ckpt, items)
                        time.sleep(args.settle)
                    statuses = {c.post("/v1/complementary", json={"item_ids": [item], "k": 10}).status_code
                                for _ in range(30)}
                    row = {"publish": k, "items": items, "rss_mb": round(workers_rss_mb(server.pid), 1),
                           "served_items": c.get("/readyz").json()["items"], "statuses": sorted(statuses)}
                    rows.append(row)
                    print(json.dumps(row), flush=True)
        finally:
            stop_workers(server)
    rss = [r["rss_mb"] for r in rows]
    half = len(rss) // 2
    # Per-publish slope over the second half: a retained engine would keep it near the engine's size.
    slope = float(np.polyfit(np.arange(half, len(rss)), rss[half:], 1)[0]) if len(rss) - half >= 2 else 0.0
    result = {"publishes": args.publishes, "items": args.items, "rows": rows, "rss_start_mb": rss[0],
              "rss_end_mb": rss[-1], "rss_max_mb": max(rss), "second_half_mb_per_publish": round(slope, 2),
              "load_average_end": os.getloadavg()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "rows"}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
