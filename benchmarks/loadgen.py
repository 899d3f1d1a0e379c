"""The HTTP load generator of the benchmarks: Debian's `wrk` driven by the Lua scripts in benchmarks/wrk/.

wrk is a C event loop (one thread, `-c` keep-alive connections, each with one request in flight: closed
loop), so it spends a small, steady amount of CPU per request, unlike a Python client. The server and wrk
are pinned to different cores with `taskset`, and each side's CPU time is read from /proc (the server) and
from the kernel's accounting of waited-for children (wrk), so "CPU per request" is measured per side.
Install it with `make bench-deps` (apt-get install wrk).
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

LUA_DIR = Path(__file__).resolve().parent / "wrk"


class LoadGenError(RuntimeError):
    """wrk is missing, failed, or printed no summary."""


def require_wrk() -> str:
    path = shutil.which("wrk")
    if path is None:
        raise LoadGenError("wrk is not installed: run `make bench-deps` (Debian package wrk)")
    return path


def pinned(cmd: list[str], core: int | None) -> list[str]:
    """`cmd` under `taskset -c core` (unchanged when core is None)."""
    return cmd if core is None else ["taskset", "-c", str(core), *cmd]


def cpu_seconds(pid: int) -> float:
    """user + system CPU time of a process and its threads so far (fields 14 and 15 of /proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


def cpu_flags() -> dict[str, Any]:
    """The CPU model and the SIMD flags that decide which int8 / FAISS kernels run (from /proc/cpuinfo)."""
    model, flags = "unknown", set[str]()
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name":
            model = value.strip()
        elif key.strip() == "flags":
            flags = set(value.split())
    simd = sorted(f for f in flags if f.startswith(("avx", "amx", "sse4", "fma", "f16c")))
    kind = "avx512-vnni" if "avx512_vnni" in flags else "avx-vnni" if "avx_vnni" in flags else (
        "avx2" if "avx2" in flags else "other")
    return {"model": model, "kind": kind, "simd_flags": simd, "cpus": os.cpu_count()}


@dataclass(frozen=True)
class Scenario:
    """One load: a wrk script and the environment that configures it."""

    name: str
    script: str
    env: dict[str, str]


@dataclass(frozen=True)
class Pinning:
    server_core: int | None = 0
    client_core: int | None = 1


def run_wrk(
    base_url: str, scenario: Scenario, *, connections: int, duration_s: float, server_pid: int, core: int | None,
    timeout_s: float = 10.0,
) -> dict[str, Any]:
    """One closed-loop wrk run; requests/s, latency percentiles, errors and both sides' CPU per request."""
    seconds = max(1, round(duration_s))  # wrk takes whole seconds
    cmd = pinned([require_wrk(), "-t1", f"-c{connections}", f"-d{seconds}s", f"--timeout={timeout_s:g}s",
                  "-s", str(LUA_DIR / scenario.script), base_url], core)
    env = {**os.environ, **scenario.env}
    server0 = cpu_seconds(server_pid)
    child0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=seconds + timeout_s + 30)
    wall = time.perf_counter() - t0
    server_cpu = cpu_seconds(server_pid) - server0
    child1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    client_cpu = (child1.ru_utime - child0.ru_utime) + (child1.ru_stime - child0.ru_stime)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("WRK_JSON ")), None)
    if proc.returncode != 0 or line is None:
        raise LoadGenError(f"wrk failed ({proc.returncode}): {proc.stderr[-1000:]} {proc.stdout[-1000:]}")
    raw = json.loads(line.removeprefix("WRK_JSON "))
    n = int(raw["requests"])
    seconds = raw["duration_us"] / 1e6  # as wrk measured it
    pct = raw["latency_us"]["percentiles"]
    errors = sum(raw["errors"].values())
    return {
        "scenario": scenario.name, "concurrency": connections, "requests": n, "seconds": round(seconds, 2),
        "rps": round(n / seconds, 1) if seconds else 0.0,
        "p50_ms": pct["50"] / 1e3, "p90_ms": pct["90"] / 1e3, "p99_ms": pct["99"] / 1e3,
        "mean_ms": round(raw["latency_us"]["mean"] / 1e3, 3),
        "errors": raw["errors"], "error_rate": round(errors / n, 4) if n else None,
        "server_cpu_ms_per_request": round(server_cpu * 1e3 / max(1, n), 4),
        "server_core_busy": round(server_cpu / seconds, 3) if seconds else None,
        "client_cpu_ms_per_request": round(client_cpu * 1e3 / max(1, n), 4),
        "wall_s": round(wall, 2),
    }


def scrape_metrics(base_url: str, prefixes: tuple[str, ...]) -> dict[str, float]:
    """Prometheus samples whose name starts with one of `prefixes` (labels kept in the key)."""
    out: dict[str, float] = {}
    for line in httpx.get(base_url + "/metrics", timeout=10).text.splitlines():
        if line.startswith(prefixes):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


def profile_process(
    pid: int, seconds: float, out: Path, *, core: int | None, rate: int = 250
) -> subprocess.Popen[bytes]:
    """Start py-spy sampling `pid` for `seconds` (collapsed stacks to `out`); the caller waits on it."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    cmd = pinned([spy, "record", "-p", str(pid), "-r", str(rate), "-d", str(max(1, round(seconds))), "-f", "raw",
                  "-o", str(out), "--nonblocking"], core)
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _frame(text: str) -> str:
    """`func (path/to/file.py:12)` -> `func file.py`."""
    name, _, where = text.partition(" (")
    return f"{name} {where.split(':')[0].rsplit('/', 1)[-1]}"


def summarise_profile(raw: Path, top: int = 25) -> dict[str, Any]:
    """Inclusive and self shares of the sampled frames (function and file), idle waits left out."""
    idle = ("Condition.wait", "Queue.get", "Runner.run", "select ", "Event.wait", "WorkerThread.run")
    incl: dict[str, int] = {}
    own: dict[str, int] = {}
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = [_frame(f) for f in stack.split(";") if " (" in f]
        if not frames or frames[-1].startswith(idle):
            continue
        n = int(count)
        total += n
        for name in dict.fromkeys(frames):
            incl[name] = incl.get(name, 0) + n
        own[frames[-1]] = own.get(frames[-1], 0) + n

    def share(d: dict[str, int]) -> list[list[Any]]:
        return [[k, round(100 * v / max(1, total), 1)] for k, v in sorted(d.items(), key=lambda kv: -kv[1])[:top]]

    return {"busy_samples": total, "inclusive_percent": share(incl), "self_percent": share(own)}
