"""`embedder` is the shared bottom layer: no module of it imports another package of the project (issue 15)."""

from __future__ import annotations

import ast
from pathlib import Path

EMBEDDER = Path(__file__).resolve().parents[2] / "embedder"
PROJECT_PACKAGES = frozenset({"catalog", "training", "index", "service", "outfit_compat", "benchmarks"})


def project_imports(source: str) -> set[str]:
    """Top-level project packages imported anywhere in `source`, function-level imports included."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        found |= {n.split(".")[0] for n in names} & PROJECT_PACKAGES
    return found


def test_the_check_sees_function_level_imports() -> None:
    assert project_imports("def f():\n    from catalog.polyvore import PolyvoreDataset\n") == {"catalog"}
    assert project_imports("import index.build, numpy\nfrom embedder import model\n") == {"index"}


def test_embedder_imports_nothing_else_of_the_project() -> None:
    files = sorted(EMBEDDER.glob("*.py"))
    assert len(files) > 10
    offending = {f.name: imports for f in files if (imports := project_imports(f.read_text(encoding="utf-8")))}
    assert offending == {}
