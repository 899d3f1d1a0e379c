"""In-process cost of an id-based `/v1/complementary` answer, this tree against a baseline commit (issue 16).

    .venv/bin/python benchmarks/bench_id_path.py [--baseline aad8983] [--items 100000] [--rounds 3] [--core 0]

What the route runs after parsing: `by_items` and the response's serialisation, for one catalog id per request
(each request a different id, walking the catalog as the HTTP benchmark's does), over the HTTP benchmark's
100k-item synthetic index (benchmarks/bench_service.py builds it). No HTTP, so the figure is the answer's own
CPU cost without the server's. Each round times this tree and the baseline (a git worktree of `--baseline`) in
fresh processes pinned to one core, alternating, so machine drift hits both alike. Thread CPU time per request.
Writes benchmarks/results/bench_id_path.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "bench_id_path.json"
WARMUP = 100


def child(workdir: Path, items: int, requests: int) -> dict[str, Any]:
    """Run from the tree being measured (its modules first on sys.path)."""
    sys.path.insert(0, str(Path.cwd()))
    sys.path.insert(0, str(Path.cwd() / "benchmarks"))
    from bench_service import ensure_checkpoint, ensure_index

    import service
    from service.api.routes.complementary import by_items
    from service.engine import load_engine
    from service.schemas import ComplementaryRequest

    ckpt = ensure_checkpoint(workdir, "openvino-int8")
    index = ensure_index(workdir / f"index-{items}-openvino-int8", ckpt, items, "openvino-int8")
    engine = load_engine(index_root=index, checkpoint=ckpt, backend="openvino-int8", batch_max_size=32,
                         batch_max_wait_s=0.005, queue_size=64, retry_after_s=1, metrics=None)
    ids = [f"s{i:07d}" for i in range(WARMUP + requests)]  # index.synthetic's ids

    def answer(item_id: str) -> bytes:
        return by_items(engine, ComplementaryRequest(item_ids=[item_id])).model_dump_json().encode()

    for i in ids[:WARMUP]:
        answer(i)
    cpu, wall = time.thread_time(), time.perf_counter()
    for i in ids[WARMUP:]:
        answer(i)
    return {"cpu_ms": 1e3 * (time.thread_time() - cpu) / requests,
            "wall_ms": 1e3 * (time.perf_counter() - wall) / requests,
            "code": str(Path(service.__file__).resolve().parents[1])}  # which tree's modules ran


def measure(tree: Path, workdir: Path, items: int, requests: int, core: int | None) -> dict[str, Any]:
    cmd = [sys.executable, str(ROOT / "benchmarks" / "bench_id_path.py"), "--child", "--workdir", str(workdir),
           "--items", str(items), "--requests", str(requests)]
    if core is not None:
        cmd = ["taskset", "-c", str(core), *cmd]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(tree)}
    out = subprocess.run(cmd, cwd=tree, env=env, check=True, capture_output=True, text=True).stdout
    got = dict(json.loads(out.strip().splitlines()[-1]))
    if Path(got["code"]) != tree.resolve():
        raise RuntimeError(f"measured the modules of {got['code']}, not {tree}")
    return got


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--baseline", default="aad8983", help="commit to compare with (a temporary git worktree)")
    p.add_argument("--items", type=int, default=100_000)
    p.add_argument("--requests", type=int, default=1000)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--core", type=int, default=0, help="pin each measuring process to this core (-1: no pinning)")
    p.add_argument("--workdir", type=Path, default=ROOT / "artifacts" / "bench_service")
    p.add_argument("--out", type=Path, default=RESULTS)
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.workdir, args.items, args.requests)))
        return 0
    core = None if args.core < 0 else args.core
    args.workdir.mkdir(parents=True, exist_ok=True)
    load_start = os.getloadavg()
    rows: dict[str, list[dict[str, Any]]] = {"this tree": [], args.baseline: []}
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "baseline"
        subprocess.run(["git", "worktree", "add", "--detach", "-q", str(base), args.baseline], cwd=ROOT, check=True)
        try:
            for r in range(args.rounds):
                for name, tree in ((args.baseline, base), ("this tree", ROOT)):
                    rows[name].append(measure(tree, args.workdir, args.items, args.requests, core))
                    print(f"round {r + 1} {name}: {rows[name][-1]}", flush=True)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(base)], cwd=ROOT, check=False)
    summary: dict[str, Any] = {
        name: {"cpu_ms_median": round(statistics.median(x["cpu_ms"] for x in runs), 3),
               "cpu_ms": [round(x["cpu_ms"], 3) for x in runs]}
        for name, runs in rows.items()
    }
    after, before = summary["this tree"]["cpu_ms_median"], summary[args.baseline]["cpu_ms_median"]
    summary["after_over_before"] = round(after / before, 3)
    # Per round (the two measured back to back): the spread says how much of the drift the pairing removed.
    summary["after_over_before_per_round"] = [
        round(a["cpu_ms"] / b["cpu_ms"], 3) for a, b in zip(rows["this tree"], rows[args.baseline], strict=True)]
    result = {"benchmark": "bench_id_path", "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
              "loadavg_at_start": load_start, "loadavg_at_end": os.getloadavg(), "items": args.items,
              "requests_per_round": args.requests, "baseline": args.baseline, "pinned_core": core,
              "summary": summary}
    print(json.dumps(summary, indent=2))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
