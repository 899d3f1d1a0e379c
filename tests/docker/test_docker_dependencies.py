"""pyproject.toml is the only dependency list: the images install exactly what it names, nothing restated.

The Dockerfiles' own `pyproject_requirements.py` calls are replayed here against the real pyproject.toml,
and every `pip install` in them is checked to take only those generated files or the project's wheel.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
from docker_files import DOCKERFILES, REPO, Instruction, dockerfile_instructions, load_script

SCRIPT = "pyproject_requirements.py"
req = load_script("pyproject_requirements")


def pyproject() -> dict[str, Any]:
    return tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def replay_requirement_extraction(dockerfile: Path, out_dir: Path) -> dict[str, list[str]]:
    """Run each `python pyproject_requirements.py ...` of the Dockerfile, with /reqs mapped to out_dir."""
    produced: dict[str, list[str]] = {}
    for ins in dockerfile_instructions(dockerfile):
        if ins.keyword != "RUN":
            continue
        for argv in ins.shell_commands():
            if len(argv) < 2 or argv[1] != SCRIPT:
                continue
            out_index = argv.index("--out") + 1
            target = Path(argv[out_index])
            assert target.parent == Path("/reqs"), f"{dockerfile}: requirements written outside /reqs: {target}"
            argv[out_index] = str(out_dir / target.name)
            args = [sys.executable, str(REPO / "docker" / SCRIPT), str(REPO / "pyproject.toml"), *argv[3:]]
            assert argv[2] == "pyproject.toml"
            result = subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)
            assert result.returncode == 0, result.stderr
            produced[str(target)] = (out_dir / target.name).read_text(encoding="utf-8").splitlines()
    assert produced, f"{dockerfile} never extracts requirements from pyproject.toml"
    return produced


def pip_installs(dockerfile: Path) -> list[tuple[Instruction, list[str]]]:
    return [
        (ins, argv)
        for ins in dockerfile_instructions(dockerfile)
        if ins.keyword == "RUN"
        for argv in ins.shell_commands()
        if argv[:2] == ["pip", "install"] or argv[1:4] == ["-m", "pip", "install"]
    ]


def test_cpu_image_installs_exactly_the_project_dependencies(tmp_path: Path) -> None:
    files = replay_requirement_extraction(DOCKERFILES["cpu"], tmp_path)
    installed = [line for lines in files.values() for line in lines]
    assert sorted(installed) == sorted(pyproject()["dependencies"])


def test_gpu_image_swaps_faiss_cpu_for_the_gpu_extra(tmp_path: Path) -> None:
    files = replay_requirement_extraction(DOCKERFILES["gpu"], tmp_path)
    installed = [line for lines in files.values() for line in lines]
    project = pyproject()
    expected = [d for d in project["dependencies"] if req.requirement_name(d) != "faiss-cpu"]
    assert sorted(installed) == sorted(expected + project["optional-dependencies"]["gpu"])


@pytest.mark.parametrize("name", sorted(DOCKERFILES))
def test_pip_installs_only_generated_files_or_the_wheel(name: str, tmp_path: Path) -> None:
    dockerfile = DOCKERFILES[name]
    generated = set(replay_requirement_extraction(dockerfile, tmp_path))
    installs = pip_installs(dockerfile)
    assert installs, f"{dockerfile}: no pip install found"
    for ins, argv in installs:
        args = argv[argv.index("install") + 1 :]
        skip_next = False
        for i, arg in enumerate(args):
            if skip_next:
                skip_next = False
                continue
            if arg in ("-r", "--requirement"):
                assert args[i + 1] in generated, f"{ins.args}: {args[i + 1]} is not extracted from pyproject.toml"
                skip_next = True
            elif arg in ("--index-url", "--extra-index-url"):
                skip_next = True
            elif not arg.startswith("-"):
                # Anything else named on a pip line would be a second, drifting dependency list.
                assert arg.endswith(".whl") and "/wheels/" in arg, f"{dockerfile}: pip installs {arg!r} directly"


def test_project_wheel_goes_in_without_resolving_dependencies_again() -> None:
    for name, dockerfile in DOCKERFILES.items():
        wheel_installs = [argv for _, argv in pip_installs(dockerfile) if any(a.endswith(".whl") for a in argv)]
        assert len(wheel_installs) == 1, name
        assert "--no-deps" in wheel_installs[0], name


def test_no_second_requirements_file_in_the_repository() -> None:
    second_list = re.compile(r"^(requirements[^/]*\.(txt|in)|Pipfile|environment\.ya?ml|constraints[^/]*\.txt)$")
    found = []
    for root, dirs, files in os.walk(REPO):
        # Hidden directories (.git, .venv, caches) and build outputs hold no project lists.
        dirs[:] = [d for d in dirs if not d.startswith(".") and d not in ("build", "dist", "artifacts")]
        found += [str(Path(root, f).relative_to(REPO)) for f in files if second_list.match(f)]
    assert found == []


@pytest.mark.parametrize("name", sorted(DOCKERFILES))
def test_dependency_layers_see_no_source_code(name: str) -> None:
    """Code edits must not invalidate the dependency layers: before the last dependency install of the
    final stage, nothing from the build context except the extracted requirement files is copied."""
    instructions = dockerfile_instructions(DOCKERFILES[name])
    stages_with_deps = {ins.stage for ins in instructions if ins.keyword == "RUN" and "-r /reqs/" in ins.args}
    assert stages_with_deps
    for stage in stages_with_deps:
        body = [i for i in instructions if i.stage == stage]
        last_dep = max(n for n, i in enumerate(body) if i.keyword == "RUN" and "-r /reqs/" in i.args)
        for ins in body[:last_dep]:
            if ins.keyword in ("COPY", "ADD"):
                assert ins.args.startswith("--from=requirements /reqs/"), f"{name}/{stage}: {ins.args}"


# ------------------------------------------------------------ pyproject_requirements.py itself


def write_pyproject(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "pyproject.toml"
    path.write_text(body, encoding="utf-8")
    return path


SAMPLE = """
[project]
name = "x"
dependencies = ["torch>=2.2,<=2.14.1", "Faiss_CPU>=1.8", "uvicorn[standard]>=0.29", "numpy ; python_version>='3'"]
[project.optional-dependencies]
gpu = ["faiss-gpu-cu12>=1.8"]
"""


def test_selection_keeps_file_order_and_normalises_names(tmp_path: Path) -> None:
    path = write_pyproject(tmp_path, SAMPLE)
    assert req.select_requirements(path, only=["TORCH"]) == ["torch>=2.2,<=2.14.1"]
    assert req.select_requirements(path, exclude=["torch", "faiss-cpu"], extras=["gpu"]) == [
        "uvicorn[standard]>=0.29",
        "numpy ; python_version>='3'",
        "faiss-gpu-cu12>=1.8",
    ]


@pytest.mark.parametrize(
    ("body", "kwargs", "message"),
    [
        (SAMPLE, {"extras": ["cuda"]}, "extra 'cuda' is not in"),
        (SAMPLE, {"only": ["tensorflow"]}, "'tensorflow' is not a dependency"),
        (SAMPLE, {"exclude": ["faiss-gpu"]}, "'faiss-gpu' is not a dependency"),
        ("[tool.x]\na = 1\n", {}, "no readable [project] table"),
        ("[project\n", {}, "no readable [project] table"),
        ('[project]\ndependencies = ["==1.0"]\n', {}, "cannot read a distribution name"),
    ],
)
def test_selection_errors_say_what_to_fix(tmp_path: Path, body: str, kwargs: dict[str, Any], message: str) -> None:
    path = write_pyproject(tmp_path, body)
    with pytest.raises(req.RequirementsError, match=re.escape(message)):
        req.select_requirements(path, **kwargs)


def test_missing_pyproject_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(req.RequirementsError, match="not found"):
        req.select_requirements(tmp_path / "pyproject.toml")


def test_cli_writes_the_file_and_refuses_an_empty_selection(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_pyproject(tmp_path, '[project]\nname = "x"\ndependencies = []\n')
    out = tmp_path / "reqs" / "r.txt"
    assert req.main([str(path), "--out", str(out)]) == 2
    assert "selection is empty" in capsys.readouterr().err and not out.exists()
    path = write_pyproject(tmp_path, SAMPLE)
    assert req.main([str(path), "--only", "numpy", "--out", str(out)]) == 0
    assert out.read_text(encoding="utf-8") == "numpy ; python_version>='3'\n"
    assert req.main([str(path), "--only", "scipy", "--out", str(out)]) == 2
    assert "'scipy' is not a dependency" in capsys.readouterr().err
