"""What the images promise: slim bases, a non-root user, a health probe that really probes, one port."""

from __future__ import annotations

import http.server
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from docker_files import (
    DOCKERFILES,
    DOCKERIGNORE,
    REPO,
    Instruction,
    dockerfile_instructions,
    final_stage,
    load_script,
    stage_instructions,
)

health = load_script("healthcheck")


def runtime(name: str) -> list[Instruction]:
    path = DOCKERFILES[name]
    return stage_instructions(path, final_stage(path))


def image_file_source(instructions: list[Instruction], target: str) -> str:
    """The build-context file that a COPY of the final stage puts at `target` (which must exist)."""
    for ins in instructions:
        if ins.keyword != "COPY" or ins.args.startswith("--from"):
            continue
        *sources, dest = ins.args.split()
        for src in sources:
            if dest == target or (dest.endswith("/") and dest + Path(src).name == target):
                assert (REPO / src).is_file(), src
                return str(src)
    raise AssertionError(f"nothing is copied to {target}")


def test_cpu_image_builds_on_a_slim_python_base() -> None:
    instructions = dockerfile_instructions(DOCKERFILES["cpu"])
    arg = next(i for i in instructions if i.keyword == "ARG" and i.args.startswith("PYTHON_IMAGE="))
    assert arg.args.endswith("-slim-bookworm") and "python:3.11" in arg.args
    assert {i.args.split()[0] for i in instructions if i.keyword == "FROM"} == {"${PYTHON_IMAGE}"}


def test_gpu_image_runs_on_a_cuda_runtime_base() -> None:
    instructions = dockerfile_instructions(DOCKERFILES["gpu"])
    arg = next(i for i in instructions if i.keyword == "ARG" and i.args.startswith("CUDA_IMAGE="))
    assert arg.args.startswith("CUDA_IMAGE=nvidia/cuda:") and "-runtime-" in arg.args
    assert runtime("gpu")[0].args.startswith("${CUDA_IMAGE}")


@pytest.mark.parametrize("name", sorted(DOCKERFILES))
def test_final_stage_runs_as_a_numeric_non_root_user(name: str) -> None:
    users = [i.args for i in runtime(name) if i.keyword == "USER"]
    assert users, f"{name}: no USER in the final stage"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) != 0
    # The same uid owns the volume mount points, so fresh named volumes are writable by the jobs.
    setup = " ".join(i.args for i in runtime(name) if i.keyword == "RUN")
    assert f"--uid {uid}" in setup and "chown app:app /data /artifacts" in setup


def test_cpu_image_healthcheck_probes_healthz_with_the_shipped_script() -> None:
    instructions = runtime("cpu")
    (check,) = [i for i in instructions if i.keyword == "HEALTHCHECK"]
    argv = check.exec_form()
    assert argv[0] == "python" and image_file_source(instructions, argv[1]) == "docker/healthcheck.py"
    assert health.healthcheck_url({}) == "http://127.0.0.1:8000/healthz"


def test_cpu_image_exposes_the_port_uvicorn_listens_on() -> None:
    instructions = runtime("cpu")
    env = " ".join(i.args for i in instructions if i.keyword == "ENV")
    assert "UVICORN_PORT=8000" in env and "UVICORN_HOST=0.0.0.0" in env
    assert [i.args for i in instructions if i.keyword == "EXPOSE"] == ["8000"]
    for knob in ("WEB_CONCURRENCY=", "UVICORN_LIMIT_CONCURRENCY=", "UVICORN_TIMEOUT_KEEP_ALIVE="):
        assert knob in env


# ------------------------------------------------------------ the health probe against a real server


class _Handler(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        self.send_response(self.status if self.path == "/healthz" else 404)
        self.end_headers()
        self.wfile.write(b'{"status":"ok"}')

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[http.server.HTTPServer]:
    httpd = http.server.HTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()
    _Handler.status = 200


def run_probe(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    script = REPO / "docker" / "healthcheck.py"
    return subprocess.run(
        [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=30, check=False
    )


def test_probe_passes_on_200_via_the_port_variable(server: http.server.HTTPServer) -> None:
    result = run_probe({"UVICORN_PORT": str(server.server_address[1])})
    assert result.returncode == 0, result.stderr
    assert "HTTP 200" in result.stdout


def test_probe_fails_on_an_unhealthy_answer(server: http.server.HTTPServer) -> None:
    _Handler.status = 503
    result = run_probe({"HEALTHCHECK_URL": f"http://127.0.0.1:{server.server_address[1]}/healthz"})
    assert result.returncode == 1 and "HTTP 503" in result.stderr


def test_probe_fails_when_nothing_listens() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again before the probe: connection refused
    result = run_probe({"UVICORN_PORT": str(port), "HEALTHCHECK_TIMEOUT": "2"})
    assert result.returncode == 1 and "unreachable" in result.stderr


# ------------------------------------------------------------ build context


def ignored(rel: str, patterns: list[str]) -> bool:
    """.dockerignore semantics for the patterns used here: root-anchored globs, `**/` any depth, `!` re-include."""
    from fnmatch import fnmatchcase

    verdict = False
    for raw in patterns:
        negate, pattern = raw.startswith("!"), raw.lstrip("!").rstrip("/")
        parts = rel.split("/")
        prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
        if pattern.startswith("**/"):
            hit = any(fnmatchcase(p, pattern[3:]) for p in parts)
        else:
            hit = any(fnmatchcase(p, pattern) for p in prefixes)
        if hit:
            verdict = not negate
    return verdict


def dockerignore_patterns() -> list[str]:
    lines = DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.strip().startswith("#")]


@pytest.mark.parametrize("rel", ["data/polyvore/x.jpg", ".venv/bin/python", "artifacts/index/current", ".git/HEAD",
                                 "embedder/__pycache__/m.cpython-311.pyc", "runs/a/model.safetensors", ".env"])
def test_build_context_leaves_out_data_venvs_and_artifacts(rel: str) -> None:
    assert ignored(rel, dockerignore_patterns())


def test_build_context_keeps_what_the_wheel_and_images_need() -> None:
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    needed = ["pyproject.toml", project["project"]["readme"], "docker/pyproject_requirements.py"]
    needed += ["docker/healthcheck.py"]
    # Every file of every package the wheel includes (code and package data such as service/static).
    for pattern in project["tool"]["setuptools"]["packages"]["find"]["include"]:
        for pkg_dir in REPO.glob(pattern.rstrip("*")):
            files = [f for f in pkg_dir.rglob("*") if f.is_file() and "__pycache__" not in f.parts]
            needed += [str(f.relative_to(REPO)) for f in files]
    patterns = dockerignore_patterns()
    assert [rel for rel in needed if ignored(rel, patterns)] == []


def test_gpu_torch_wheels_match_the_cuda_base() -> None:
    """cu126 wheels on a CUDA 12.6 runtime: bumping one without the other fails here, not on a GPU host."""
    import re

    args = {i.args.split("=", 1)[0]: i.args.split("=", 1)[1] for i in dockerfile_instructions(DOCKERFILES["gpu"])
            if i.keyword == "ARG" and "=" in i.args}
    base = re.search(r"nvidia/cuda:(\d+)\.(\d+)", args["CUDA_IMAGE"])
    wheels = re.search(r"/whl/cu(\d+)$", args["TORCH_INDEX_URL"])
    assert base is not None and wheels is not None
    assert wheels.group(1) == base.group(1) + base.group(2)
