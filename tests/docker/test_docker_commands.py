"""Every command the images and compose services run exists and accepts its arguments.

`outfit-compat` lines are parsed by the project's real argument parser (flag names, choices, required
options), each subcommand's `--help` runs, and the installed entry point is started once. The API's uvicorn line
is parsed by uvicorn's own CLI, its factory is imported the way uvicorn imports it, and finally the
image's command is started for real (uvicorn, HTTP, Redis) against an index built from the synthetic set.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from docker_files import (
    DOCKERFILES,
    REPO,
    REQUIRED_ENV,
    final_stage,
    load_compose,
    load_script,
    service_command,
    stage_instructions,
)

# Container paths the image maps onto the repository (COPY docker/... /opt/outfit/).
APP_DIR = "/opt/outfit"


def image_cmd(name: str) -> list[str]:
    path = DOCKERFILES[name]
    (cmd,) = [i for i in stage_instructions(path, final_stage(path)) if i.keyword == "CMD"]
    return cmd.exec_form()


def image_env(name: str) -> dict[str, str]:
    """The final stage's ENV settings (PATH left out: it points into the image's venv)."""
    path = DOCKERFILES[name]
    env: dict[str, str] = {}
    for ins in stage_instructions(path, final_stage(path)):
        if ins.keyword == "ENV":
            for word in shlex.split(ins.args):
                key, _, value = word.partition("=")
                env[key] = value
    env.pop("PATH", None)
    return env


def command_lines(env: dict[str, str] | None = None) -> dict[str, list[str]]:
    """Service or image -> argv, for everything this project runs (redis-server is the redis image's)."""
    services = load_compose(env)["services"]
    lines = {f"image:{name}": image_cmd(name) for name in DOCKERFILES}
    for name, svc in services.items():
        argv = service_command(svc)
        if not argv and "build" in svc:
            argv = image_cmd("gpu" if svc["build"]["dockerfile"].endswith(".gpu") else "cpu")
        if argv and argv[0] != "redis-server":
            lines[f"compose:{name}"] = argv
    return lines


LINES = command_lines()
VARIANTS = {
    f"{key}[TRAIN_PRESET=smoke]": argv
    for key, argv in command_lines({**REQUIRED_ENV, "TRAIN_PRESET": "smoke"}).items()
    if key == "compose:train"
}
OUTFIT_LINES = {k: v for k, v in {**LINES, **VARIANTS}.items() if v[0] == "outfit-compat"}
# Lines with real arguments (the GPU image's default `outfit-compat --help` is covered by the help tests).
ARG_LINES = {k: v for k, v in OUTFIT_LINES.items() if v[1:] != ["--help"]}


def test_every_command_is_one_the_tests_understand() -> None:
    assert {argv[0] for argv in LINES.values()} == {"outfit-compat", "uvicorn"}
    assert {"compose:synth", "compose:train", "compose:export", "compose:index", "compose:train-gpu",
            "compose:index-gpu"} <= set(OUTFIT_LINES)


def subcommand_path(argv: list[str]) -> list[str]:
    """The subcommand words of an outfit-compat line (`index build`), not its positional arguments."""
    import argparse

    from outfit_compat.cli import build_parser

    parser, words = build_parser(), []
    for arg in argv[1:]:
        choices = next((a.choices for a in parser._actions if isinstance(a, argparse._SubParsersAction)), None)
        if not choices or arg not in choices:
            break
        words.append(arg)
        parser = choices[arg]
    return words


@pytest.mark.parametrize("key", sorted(ARG_LINES))
def test_outfit_compat_line_parses_with_the_real_cli(key: str, capsys: pytest.CaptureFixture[str]) -> None:
    from outfit_compat.cli import build_parser

    argv = ARG_LINES[key]
    try:
        args = build_parser().parse_args(argv[1:])
    except SystemExit as e:
        pytest.fail(f"{key}: `{shlex.join(argv)}` is rejected by the CLI (exit {e.code}): {capsys.readouterr().err}")
    assert callable(args.func)


SUBCOMMANDS = sorted({" ".join(subcommand_path(argv)) for argv in OUTFIT_LINES.values()})


@pytest.mark.parametrize("words", SUBCOMMANDS)
def test_outfit_compat_subcommand_help_runs(words: str, capsys: pytest.CaptureFixture[str]) -> None:
    from outfit_compat.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main([*words.split(), "--help"])
    assert exit_info.value.code == 0
    assert f"usage: outfit-compat {words}".rstrip() in capsys.readouterr().out


def test_installed_entry_point_runs() -> None:
    """The console script the images call (one process start: the CLI's imports are not free)."""
    exe = Path(sys.executable).parent / "outfit-compat"
    result = subprocess.run([str(exe), "--help"], capture_output=True, text=True, timeout=180, check=False)
    assert result.returncode == 0, result.stderr
    for words in SUBCOMMANDS:
        if words:
            assert words.split()[0] in result.stdout, words


def api_env() -> dict[str, str]:
    """What the API container sees: the image's ENV, then compose's `environment:` on top."""
    compose = load_compose()["services"]["api"]["environment"]
    return {**image_env("cpu"), **{k: str(v) for k, v in compose.items() if v is not None}}


def test_uvicorn_line_parses_and_takes_its_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from uvicorn.main import main as uvicorn_cli

    argv = image_cmd("cpu")
    assert argv[0] == "uvicorn" and (Path(sys.executable).parent / "uvicorn").is_file()
    env = {**api_env(), "UVICORN_LIMIT_CONCURRENCY": "7", "UVICORN_TIMEOUT_KEEP_ALIVE": "3"}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    ctx = uvicorn_cli.make_context("uvicorn", argv[1:])
    params = ctx.params
    assert params["factory"] is True and params["app_dir"] == APP_DIR
    assert params["host"] == "0.0.0.0" and params["port"] == 8000
    assert params["limit_concurrency"] == 7 and params["timeout_keep_alive"] == 3
    assert params["backlog"] == int(env["UVICORN_BACKLOG"])
    assert params["timeout_graceful_shutdown"] == int(env["UVICORN_TIMEOUT_GRACEFUL_SHUTDOWN"])


def test_uvicorn_rejects_an_unknown_option() -> None:
    import click
    from uvicorn.main import main as uvicorn_cli

    with pytest.raises(click.NoSuchOption):
        uvicorn_cli.make_context("uvicorn", ["--workerz", "2", "x:y"])


def asgi_factory() -> Any:
    argv = image_cmd("cpu")
    module_name, _, attr = argv[-1].partition(":")
    assert (REPO / "docker" / f"{module_name}.py").is_file()
    return getattr(load_script(module_name), attr)


def test_factory_builds_the_app_from_outfit_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from fastapi import FastAPI

    monkeypatch.setenv("OUTFIT_INDEX", str(tmp_path))
    monkeypatch.delenv("OUTFIT_CHECKPOINT", raising=False)
    app = asgi_factory()()
    assert isinstance(app, FastAPI)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "set OUTFIT_INDEX"),
        ({"OUTFIT_INDEX": "/nonexistent/index"}, "OUTFIT_INDEX=/nonexistent/index does not exist"),
        ({"OUTFIT_INDEX": ".", "OUTFIT_CHECKPOINT": "/nonexistent/ckpt"}, "OUTFIT_CHECKPOINT=/nonexistent/ckpt"),
    ],
)
def test_factory_names_the_variable_to_fix(env: dict[str, str], message: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("OUTFIT_INDEX", "OUTFIT_CHECKPOINT"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(FileNotFoundError, match=message):
        asgi_factory()()


# ------------------------------------------------------------ the image's command, for real


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def published_index(synth_root: Path, random_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from index.build import build_catalog_index

    out = tmp_path_factory.mktemp("docker_index") / "index"
    build_catalog_index(checkpoint=random_checkpoint, catalog=synth_root, out=out)
    return out


TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture
def redis_client() -> Iterator[Any]:
    """The real Redis the tests share (as in tests/service); skips, saying why, when none answers."""
    import redis

    client = redis.Redis.from_url(TEST_REDIS_URL, socket_timeout=2)
    try:
        client.ping()
    except redis.RedisError as e:
        pytest.skip(f"no Redis reachable at {TEST_REDIS_URL}: {e}")
    yield client
    client.close()


@contextlib.contextmanager
def running_api(index: Path, checkpoint: Path, prefix: str) -> Iterator[tuple[int, dict[str, str]]]:
    port = free_port()
    # Container paths and service names mapped onto this machine; everything else exactly as shipped.
    env = {
        **os.environ,
        **api_env(),
        "OUTFIT_INDEX": str(index),
        "OUTFIT_CHECKPOINT": str(checkpoint),
        "REDIS_URL": TEST_REDIS_URL,
        "OUTFIT_CACHE_PREFIX": prefix,
        "UVICORN_HOST": "127.0.0.1",
        "UVICORN_PORT": str(port),
        # The image installs the project as a wheel; here the checkout stands in for site-packages.
        "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p),
    }
    argv = [str(Path(sys.executable).parent / a) if a == "uvicorn" else a for a in image_cmd("cpu")]
    argv[argv.index("--app-dir") + 1] = str(REPO / "docker")
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        yield port, env
    except BaseException:
        proc.terminate()
        output = proc.communicate(timeout=30)[0] if proc.stdout else ""
        print(f"--- uvicorn output ---\n{output[-4000:]}")
        raise
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def wait_healthy(port: int, env: dict[str, str], timeout: float = 120.0) -> None:
    probe = [sys.executable, str(REPO / "docker" / "healthcheck.py")]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if subprocess.run(probe, env=env, capture_output=True, timeout=30, check=False).returncode == 0:
            return
        time.sleep(0.5)
    pytest.fail(f"API on port {port} never became healthy")


def request(
    port: int, path: str, *, method: str = "GET", headers: dict[str, str] | None = None, body: Any = None
) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    all_headers = {**(headers or {}), **({"Content-Type": "application/json"} if data else {})}
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method=method, headers=all_headers)
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return int(r.status), json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return int(e.code), json.loads(e.read() or b"null")


def test_image_command_serves_the_index_over_http(
    published_index: Path, random_checkpoint: Path, synth_root: Path, redis_client: Any
) -> None:
    from catalog import PolyvoreDataset

    prefix = f"test-docker-{uuid.uuid4().hex[:8]}:"
    item_id = sorted(PolyvoreDataset(synth_root).items)[0]
    try:
        with running_api(published_index, random_checkpoint, prefix) as (port, env):
            wait_healthy(port, env)  # the image's HEALTHCHECK script, against the image's command
            deadline = time.monotonic() + 60
            status, ready = request(port, "/readyz")
            while status != 200 and time.monotonic() < deadline:
                time.sleep(0.5)
                status, ready = request(port, "/readyz")
            assert status == 200, ready
            # A real query; its result lands in the Redis that REDIS_URL names, under our prefix.
            status, body = request(port, "/v1/complementary", method="POST", body={"item_ids": [item_id]})
            assert status == 200, body
            assert list(redis_client.scan_iter(match=f"{prefix}*")), "the API did not use REDIS_URL's Redis"
            # The admin key compose requires is the one the service checks.
            assert request(port, "/v1/admin/reload", method="POST", headers={"X-API-Key": "wrong"})[0] == 403
            key = REQUIRED_ENV["OUTFIT_ADMIN_API_KEY"]
            status, body = request(port, "/v1/admin/reload", method="POST", headers={"X-API-Key": key})
            assert status == 200 and body["status"] == "reloaded"
    finally:
        keys = list(redis_client.scan_iter(match=f"{prefix}*"))
        if keys:
            redis_client.delete(*keys)
