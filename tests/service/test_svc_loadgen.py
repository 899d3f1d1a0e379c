"""The benchmarks' load generator: wrk with the project's Lua scripts against a real server sends valid
requests (no error statuses), fresh ones (no cache hits), and the runner reads wrk's summary and both
sides' CPU time. Skipped where wrk is not installed (`make bench-deps`)."""

from __future__ import annotations

import importlib.util
import io
import shutil
import sys
from pathlib import Path
from types import ModuleType

import httpx
import numpy as np
import pytest
from PIL import Image

from index import open_index

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"
pytestmark = pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk not installed (make bench-deps)")


@pytest.fixture(scope="module")
def loadgen() -> ModuleType:
    spec = importlib.util.spec_from_file_location("loadgen", BENCH / "loadgen.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["loadgen"] = module
    spec.loader.exec_module(module)
    return module


def _hits(url: str) -> float:
    text = httpx.get(url + "/metrics").text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("outfit_cache_lookups_total{") and 'result="hit"' in line)


def _ids_file(service_index: Path, tmp_path: Path) -> Path:
    idx = open_index(service_index)
    ids = [rec.item_id for _, rec, dead in idx._store.iter_all() if not dead]
    path = tmp_path / "ids.txt"
    path.write_text("\n".join(ids) + "\n")
    return path


def _photos(folder: Path, n: int) -> Path:
    rng = np.random.default_rng(0)
    for i in range(n):
        buf = io.BytesIO()
        Image.fromarray(rng.integers(0, 255, (64, 48, 3), dtype=np.uint8)).save(buf, "JPEG")
        (folder / f"{i}.jpg").write_bytes(buf.getvalue())
    return folder


@pytest.mark.parametrize("script", ["get", "complementary", "compatibility", "upload"])
def test_wrk_scripts_send_valid_fresh_requests(
    loadgen: ModuleType, default_server: object, service_index: Path, tmp_path: Path, script: str
) -> None:
    url = default_server.url  # type: ignore[attr-defined]
    pid = default_server.proc.pid  # type: ignore[attr-defined]
    env: dict[str, str]
    n_ids = 0
    if script == "get":
        env, lua = {"WRK_PATH": "/healthz"}, "get.lua"
    elif script == "upload":
        env = {"WRK_PHOTOS": str(_photos(tmp_path, 3)), "WRK_PHOTO_COUNT": "3", "WRK_SEED": "test"}
        lua = "upload.lua"
    else:
        ids = _ids_file(service_index, tmp_path)
        n_ids = len(ids.read_text().split())
        env = {"WRK_IDS_FILE": str(ids), "WRK_PATH": f"/v1/{script}",
               "WRK_IDS_PER_REQUEST": "1" if script == "complementary" else "3", "WRK_OFFSET": "0"}
        lua = "ids.lua"
    hits = _hits(url)
    connections = 2
    r = loadgen.run_wrk(url, loadgen.Scenario(script, lua, env), connections=connections, duration_s=1,
                        server_pid=pid, core=None)
    assert r["requests"] > 5 and r["errors"] == dict.fromkeys(("connect", "read", "write", "status", "timeout"), 0)
    assert r["p50_ms"] > 0 and r["p99_ms"] >= r["p50_ms"]
    assert r["server_cpu_ms_per_request"] > 0 and r["client_cpu_ms_per_request"] > 0
    if script == "upload":  # every upload new: no embedding answered from the cache
        assert _hits(url) == hits
    if script == "complementary":  # no id repeats before the walk has visited every id once
        # wrk counts the requests that completed within its duration; the one each connection still had in
        # flight when it stopped reached the server (and its cache) too.
        assert _hits(url) - hits <= max(0, r["requests"] + connections - n_ids)


def test_wrk_failure_is_reported(loadgen: ModuleType, default_server: object) -> None:
    bad = loadgen.Scenario("missing", "no-such-script.lua", {})
    with pytest.raises(loadgen.LoadGenError, match="wrk failed"):
        loadgen.run_wrk(default_server.url, bad, connections=1, duration_s=1,  # type: ignore[attr-defined]
                        server_pid=default_server.proc.pid, core=None)  # type: ignore[attr-defined]
