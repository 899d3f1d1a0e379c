"""Write the requirement lines of pyproject.toml's [project] table to a pip requirements file.

The Docker images install dependencies from this output, so `pyproject.toml` stays the one dependency
list: the dependency layer is built from the extracted file alone and survives code edits.
Runs in bare base images (standard library only; `tomllib` needs Python 3.11+).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import tomllib
from collections.abc import Sequence
from pathlib import Path

_NAME = re.compile(r"^\s*([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)")


class RequirementsError(ValueError):
    """pyproject.toml or the selection flags do not describe a usable requirement list."""


def canonical_name(name: str) -> str:
    """PEP 503 normalisation, so `Faiss_CPU` and `faiss-cpu` select the same requirement."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(requirement: str) -> str:
    match = _NAME.match(requirement)
    if match is None:
        raise RequirementsError(f"cannot read a distribution name from requirement {requirement!r}")
    return canonical_name(match.group(1))


def select_requirements(
    pyproject: Path, *, extras: Sequence[str] = (), only: Sequence[str] = (), exclude: Sequence[str] = ()
) -> list[str]:
    """[project.dependencies] plus the named optional extras, filtered by distribution name, in file order."""
    try:
        project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    except FileNotFoundError:
        raise RequirementsError(f"{pyproject} not found; pass the repository's pyproject.toml") from None
    except (tomllib.TOMLDecodeError, KeyError) as e:
        raise RequirementsError(f"{pyproject} has no readable [project] table: {e}") from None
    requirements = list(project.get("dependencies", []))
    optional = project.get("optional-dependencies", {})
    for extra in extras:
        if extra not in optional:
            known = sorted(optional)
            raise RequirementsError(f"extra {extra!r} is not in [project.optional-dependencies] {known}")
        requirements.extend(optional[extra])
    names = [requirement_name(r) for r in requirements]
    # A selector naming nothing means the Dockerfile and pyproject.toml drifted apart: fail the build.
    for selector in [*only, *exclude]:
        if canonical_name(selector) not in names:
            raise RequirementsError(f"{selector!r} is not a dependency in {pyproject}; update the Dockerfile")
    keep = {canonical_name(n) for n in only}
    drop = {canonical_name(n) for n in exclude}
    return [r for r, n in zip(requirements, names, strict=True) if (not keep or n in keep) and n not in drop]


def write_requirements(lines: Sequence[str], out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write("".join(f"{line}\n" for line in lines))
    os.replace(tmp, out)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pyproject", type=Path)
    parser.add_argument("--out", type=Path, required=True, help="requirements file to write")
    parser.add_argument("--extra", action="append", default=[], help="also include this optional extra")
    parser.add_argument("--only", action="append", default=[], help="keep only these distributions")
    parser.add_argument("--exclude", action="append", default=[], help="drop these distributions")
    args = parser.parse_args(argv)
    try:
        lines = select_requirements(args.pyproject, extras=args.extra, only=args.only, exclude=args.exclude)
    except RequirementsError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if not lines:
        print("error: the selection is empty; nothing to install", file=sys.stderr)
        return 2
    write_requirements(lines, args.out)
    print(f"{args.out}: {len(lines)} requirements")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
