"""Readers for the deployment files, so tests check them the way Docker and Compose would read them.

No Docker engine is available: Dockerfiles are split into instructions, the compose file is loaded
with YAML merge keys and interpolated with Compose's `${VAR...}` rules, and command lines come out
as argv lists ready to hand to the project's own argument parser.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shlex
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yml"
DOCKERFILES = {"cpu": REPO / "docker" / "Dockerfile", "gpu": REPO / "docker" / "Dockerfile.gpu"}
DOCKERIGNORE = REPO / ".dockerignore"
# A value for each variable the compose file marks required (`${VAR:?...}`), as a user's .env would.
REQUIRED_ENV = {"OUTFIT_ADMIN_API_KEY": "test-admin-key-0123456789abcdef"}


def venv_tool(name: str) -> Path:
    """A console script installed beside this interpreter (the dev extra puts the checkers there)."""
    path = Path(sys.executable).parent / name
    if not path.is_file():
        raise FileNotFoundError(f"{path} missing: install the dev extra (pip install -e '.[dev]')")
    return path


def load_script(name: str) -> ModuleType:
    """Import a standard-library script from docker/ (not a package: it is copied into images)."""
    path = REPO / "docker" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"docker_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


# ---------------------------------------------------------------- Dockerfile


@dataclass(frozen=True)
class Instruction:
    stage: str
    keyword: str
    args: str

    def exec_form(self) -> list[str]:
        """The JSON-array form of CMD/ENTRYPOINT/HEALTHCHECK CMD; shell form is rejected on purpose."""
        text = self.args.split("CMD", 1)[1] if self.keyword == "HEALTHCHECK" else self.args
        argv = json.loads(text)
        if not (isinstance(argv, list) and all(isinstance(a, str) for a in argv)):
            raise ValueError(f"{self.keyword} is not in exec (JSON array) form: {self.args}")
        return argv

    def shell_commands(self) -> list[list[str]]:
        """A RUN's `&&`-joined commands, each split like a shell would split words."""
        return [shlex.split(part) for part in re.split(r"\s*&&\s*", self.args) if part.strip()]


def dockerfile_instructions(path: Path) -> list[Instruction]:
    """Instructions with continuation lines joined and comments dropped, tagged with their stage name."""
    logical: list[str] = []
    pending = ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    assert not pending, f"{path}: dangling line continuation"
    out: list[Instruction] = []
    stage = ""
    for line in logical:
        keyword, _, args = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            words = args.split()
            stage = words[2] if len(words) >= 3 and words[1].upper() == "AS" else words[0]
        out.append(Instruction(stage, keyword, args.strip()))
    return out


def stage_instructions(path: Path, stage: str) -> list[Instruction]:
    found = [i for i in dockerfile_instructions(path) if i.stage == stage]
    if not found:
        raise KeyError(f"{path} has no stage named {stage!r}")
    return found


def final_stage(path: Path) -> str:
    return dockerfile_instructions(path)[-1].stage


# ---------------------------------------------------------------- compose

_VAR = re.compile(r"\$(?:\$|\{(?P<braced>[^}]*)\}|(?P<plain>[A-Za-z_][A-Za-z0-9_]*))")
_BRACED = re.compile(r"^(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>.*))?$", re.S)


class MissingVariableError(KeyError):
    """A `${VAR:?message}` variable is unset (Compose refuses to start and prints the message)."""


def interpolate(text: str, env: Mapping[str, str]) -> str:
    """Compose interpolation: $VAR, ${VAR}, ${VAR:-dflt}, ${VAR-dflt}, ${VAR:?err}, ${VAR?err}, ${VAR:+alt}, $$."""

    def one(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        if match.group("plain"):
            return env.get(match.group("plain"), "")
        braced = match.group("braced") or ""
        if "${" in braced:
            # The deployment files do not nest; refuse rather than mis-read one that starts to.
            raise ValueError(f"nested interpolation is not supported here: {match.group(0)!r}")
        spec = _BRACED.match(braced)
        if spec is None:
            raise ValueError(f"invalid interpolation {match.group(0)!r}")
        name, op, arg = spec.group("name"), spec.group("op"), interpolate(spec.group("arg") or "", env)
        value = env.get(name)
        empty = value is None or (value == "" and op is not None and op.startswith(":"))
        if op in (":-", "-"):
            return arg if empty else str(value)
        if op in (":?", "?"):
            if empty:
                raise MissingVariableError(f"{name}: {arg}")
            return str(value)
        if op in (":+", "+"):
            return "" if empty else arg
        return value or ""

    return _VAR.sub(one, text)


def _walk(node: Any, env: Mapping[str, str]) -> Any:
    if isinstance(node, str):
        return interpolate(node, env)
    if isinstance(node, list):
        return [_walk(n, env) for n in node]
    if isinstance(node, dict):
        return {k: _walk(v, env) for k, v in node.items()}
    return node


def load_compose_raw(path: Path = COMPOSE_FILE) -> dict[str, Any]:
    """The YAML as written (merge keys applied, `${...}` left in place)."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def load_compose(env: Mapping[str, str] | None = None, path: Path = COMPOSE_FILE) -> dict[str, Any]:
    """The model Compose would run: every string interpolated, over every profile (as Compose does)."""
    return dict(_walk(load_compose_raw(path), REQUIRED_ENV if env is None else env))


def service_command(service: Mapping[str, Any]) -> list[str]:
    command = service.get("command")
    if command is None:
        return []
    return shlex.split(command) if isinstance(command, str) else [str(c) for c in command]
