"""The deployment files pass the same checkers a reviewer would run: hadolint and the Compose schema.

Each checker is also shown a broken file, so a checker that silently accepts everything fails here.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from docker_files import COMPOSE_FILE, DOCKERFILES, venv_tool


def run(argv: list[str | Path]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.parametrize("name", sorted(DOCKERFILES))
def test_hadolint_passes(name: str) -> None:
    result = run([venv_tool("hadolint"), "--no-color", DOCKERFILES[name]])
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_rejects_a_careless_dockerfile(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get update && apt-get install -y curl\nRUN pip install numpy\n")
    result = run([venv_tool("hadolint"), "--no-color", bad])
    assert result.returncode != 0
    assert "DL3007" in result.stdout  # `latest` tag


def check_compose(path: Path) -> subprocess.CompletedProcess[str]:
    # The vendored compose-spec schema ships with check-jsonschema: no network needed.
    return run([venv_tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", path])


def test_compose_file_matches_the_compose_spec() -> None:
    result = check_compose(COMPOSE_FILE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_schema_check_rejects_an_invalid_condition(tmp_path: Path) -> None:
    text = COMPOSE_FILE.read_text(encoding="utf-8")
    assert "condition: service_healthy" in text
    bad = tmp_path / "docker-compose.yml"
    bad.write_text(text.replace("condition: service_healthy", "condition: service_ready", 1), encoding="utf-8")
    result = check_compose(bad)
    assert result.returncode != 0
    assert "service_ready" in result.stdout + result.stderr
