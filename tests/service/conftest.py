"""Service fixtures: a real index built from the synthetic dataset with the random checkpoint, apps, servers."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

REPO = Path(__file__).resolve().parents[2]
# --import-mode=importlib puts no test directory on sys.path; the helper modules beside this file need it.
sys.path.insert(0, str(Path(__file__).parent))


def build_test_index(data_root: Path, checkpoint: Path, out: Path) -> Path:
    """Publish a real index of the synthetic catalog through the index package's build job."""
    from index.build import build_catalog_index
    from index.embed_job import EmbedJobConfig

    build_catalog_index(checkpoint=checkpoint, catalog=data_root, out=out,
                        job=EmbedJobConfig(num_workers=0, progress=False))
    return out


@pytest.fixture(scope="session")
def service_index(synth_root: Path, random_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_test_index(synth_root, random_checkpoint, tmp_path_factory.mktemp("svc") / "index")


@pytest.fixture(scope="session")
def make_settings(service_index: Path, random_checkpoint: Path) -> Callable[..., Any]:
    from service.settings import Settings

    def make(**overrides: Any) -> Settings:
        base: dict[str, Any] = {"index": service_index, "checkpoint": random_checkpoint, "admin_api_key": "s3cret",
                                "batch_max_wait_ms": 2.0}
        base.update(overrides)
        return Settings(**base)

    return make


@pytest.fixture(scope="module")
def client(make_settings: Callable[..., Any]) -> Iterator[Any]:
    """The real app in-process (lifespan runs: model and index load), local LRU cache."""
    from fastapi.testclient import TestClient

    from service.app import create_app

    with TestClient(create_app(make_settings()), raise_server_exceptions=False) as c:
        yield c


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerProcess:
    """`outfit-compat serve` in a subprocess on a free port; stopped (and reaped) by the fixture."""

    def __init__(self, args: list[str], env: dict[str, str], log_path: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._log = log_path.open("wb")
        cmd = [sys.executable, "-m", "outfit_compat", "serve", *args, "--host", "127.0.0.1", "--port", str(self.port)]
        self.proc = subprocess.Popen(cmd, env=env, stdout=self._log, stderr=subprocess.STDOUT, cwd=REPO)
        self.log_path = log_path

    def wait_ready(self, timeout: float = 300.0) -> None:  # importing torch takes minutes at load 20
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log_path.read_text()[-3000:]}")
            try:
                if httpx.get(self.url + "/readyz", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"server not ready after {timeout}s:\n{self.log_path.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


def launch(index: Path, checkpoint: Path, log_dir: Path, extra_env: dict[str, str] | None = None,
           args: list[str] | None = None) -> ServerProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OUTFIT_") and k != "REDIS_URL"}
    # The index watcher is off unless a test turns it on: reload tests publish and reload themselves.
    env.update({"OUTFIT_ADMIN_API_KEY": "s3cret", "OUTFIT_TORCH_THREADS": "1", "OMP_NUM_THREADS": "1",
                "OUTFIT_INDEX_WATCH_S": "0"})
    env.update(extra_env or {})
    srv = ServerProcess(args if args is not None else ["--index", str(index), "--checkpoint", str(checkpoint)],
                        env, log_dir / "server.log")
    try:
        srv.wait_ready()
    except RuntimeError:
        srv.stop()
        raise
    return srv


@pytest.fixture(scope="module")
def start_server(
    service_index: Path, random_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[..., ServerProcess]]:
    """Starts servers with extra settings; they stop when the module's tests are done."""
    started: list[ServerProcess] = []

    def start(extra_env: dict[str, str] | None = None, args: list[str] | None = None) -> ServerProcess:
        srv = launch(service_index, random_checkpoint, tmp_path_factory.mktemp("server"), extra_env, args)
        started.append(srv)
        return srv

    yield start
    for srv in started:
        srv.stop()


@pytest.fixture(scope="session")
def default_server(
    service_index: Path, random_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """One server with default settings, shared by the tests that do not change its configuration."""
    srv = launch(service_index, random_checkpoint, tmp_path_factory.mktemp("server"))
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A generated shop catalog CSV with typed attributes (in_stock, gender, brand, colour, size) and photos."""
    from shop_catalog import write_shop

    return write_shop(tmp_path_factory.mktemp("svc_shop"), items=160, outfits=40, seed=3)


@pytest.fixture(scope="session")
def shop_index(shop: Any, random_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shop catalog indexed (from the CSV) with the random checkpoint."""
    return build_test_index(shop.catalog, random_checkpoint, tmp_path_factory.mktemp("svc_shop_index") / "index")


@pytest.fixture(scope="session")
def shop_server(
    shop_index: Path, random_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """A server over the shop index (typed attributes to filter on)."""
    srv = launch(shop_index, random_checkpoint, tmp_path_factory.mktemp("shop_server"))
    yield srv
    srv.stop()
