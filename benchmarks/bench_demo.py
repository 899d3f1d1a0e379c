"""`make demo` from a fresh clone to serving, timed per phase (issue 11: under 6 minutes on 2 cores).

    python benchmarks/bench_demo.py [--keep]
    python benchmarks/bench_demo.py --from-log LOG --installed-s N --serving-s N   # a run timed by hand

Clones this checkout's HEAD into a temporary directory (a clean clone: nothing installed), runs `make demo`
there, records when `.venv/.installed` appears (install done) and when `GET /healthz` first answers 200
(serving, on the demo's default port 8000, which must be free), then stops the demo. The phases after the
install come from the demo's own log timestamps (data, training, export + int8, index + server start up to
the engine's "loaded" line). Writes benchmarks/results/bench_demo.json with the
CPU flags and the load average, since a loaded machine makes every phase slower.
"""

from __future__ import annotations

import argparse
import ast
import itertools
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import datetime
from pathlib import Path
from typing import Any

from loadgen import cpu_flags

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "bench_demo.json"

# (phase, the log message that starts it); each phase ends where the next one starts.
MARKS = (
    ("data", "generating synthetic data"),
    ("training", "training (demo preset"),
    ("export_int8", "exporting "),
    ("index_and_start", "index.build"),
)
_STAMP = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) ")


def phases_from_log(text: str) -> dict[str, float]:
    """Seconds per phase from the demo log's timestamps; the last phase ends at the last stamped line."""
    starts: dict[str, datetime] = {}
    last: datetime | None = None
    for line in text.splitlines():
        m = _STAMP.match(line)
        if m is None:
            continue
        last = datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S,%f")
        for name, needle in MARKS:
            if needle in line:
                starts.setdefault(name, last)
    names = [n for n, _ in MARKS if n in starts]
    out = {}
    for a, b in itertools.pairwise(names):
        out[a] = round((starts[b] - starts[a]).total_seconds(), 1)
    if names and last is not None:
        out[names[-1]] = round((last - starts[names[-1]]).total_seconds(), 1)
    return out


def first_stamp(text: str) -> str | None:
    """When the demo's log begins (a run timed by hand is recorded with its own time, not today's)."""
    m = re.search(_STAMP.pattern, text, flags=re.MULTILINE)
    return m.group(1) if m else None


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as r:
            return bool(r.status == 200)
    except OSError:
        return False


def run_demo(keep: bool, port: int = 8000, limit_s: float = 1800.0) -> tuple[float | None, float, str]:
    """(seconds to install, seconds to serving, the demo's log) for a fresh clone of HEAD."""
    work = Path(tempfile.mkdtemp(prefix="bench-demo-"))
    clone = work / "outfit-compat"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    log_path = work / "demo.log"
    t0 = time.monotonic()
    installed: float | None = None
    with log_path.open("wb") as log:
        proc = subprocess.Popen(["make", "demo"], cwd=clone, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
        try:
            while not _healthy(port):
                if installed is None and (clone / ".venv" / ".installed").exists():
                    installed = time.monotonic() - t0
                if proc.poll() is not None or time.monotonic() - t0 > limit_s:
                    raise RuntimeError(f"demo stopped or timed out before serving; log: {log_path}")
                time.sleep(0.5)
            serving = time.monotonic() - t0
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)
    text = log_path.read_text(encoding="utf-8", errors="replace")
    if not keep:
        subprocess.run(["rm", "-rf", str(work)], check=False)
    return installed, serving, text


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--keep", action="store_true", help="keep the clone and its log")
    ap.add_argument("--from-log", type=Path, help="record a run timed by hand from its `make demo` log")
    ap.add_argument("--installed-s", type=float, help="with --from-log: seconds from start to install done")
    ap.add_argument("--serving-s", type=float, help="with --from-log: seconds from start to /healthz 200")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    load_start = os.getloadavg()
    if args.from_log:
        if args.installed_s is None or args.serving_s is None:
            ap.error("--from-log needs --installed-s and --serving-s")
        installed, serving = args.installed_s, args.serving_s
        text = args.from_log.read_text(encoding="utf-8", errors="replace")
    else:
        installed, serving, text = run_demo(args.keep)
    phases = phases_from_log(text)
    test = re.findall(r"best epoch \d+; test (\{[^}]*\})", text)
    result: dict[str, Any] = {
        "seconds_to_serving": round(serving, 1),
        "seconds_install": None if installed is None else round(installed, 1),
        "phases_s": phases,
        "model_test": ast.literal_eval(test[-1]) if test else None,
        "goal_s": 360,
        "meets_goal": serving < 360,
        "timed": "by hand (--from-log)" if args.from_log else "by this script",
        "loadavg_at_start": None if args.from_log else load_start,  # unknown for a run timed by hand
        "cpu": cpu_flags(),
        "cores": os.cpu_count(),
        "measured_at": first_stamp(text) if args.from_log else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
