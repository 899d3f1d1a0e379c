"""`manifest.json`: what an index version was built from, and checksums of every file it holds.

The manifest is the contract between the build job and the service: loading verifies each file's
sha256 and refuses an index whose model or embedding backend does not match the one serving it.
"""

from __future__ import annotations

import json
import platform
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from embedder.backend_family import BackendMismatchError, check_backend_compatible
from embedder.files import sha256_file, write_atomic
from index.errors import IndexArtifactError
from index.layout import MANIFEST_FILE

MANIFEST_FORMAT = 1
METRIC = "inner_product"  # on L2-normalised embeddings, i.e. cosine; ranks like Euclidean distance

REQUIRED_KEYS: tuple[str, ...] = (
    "format",
    "version",
    "created_at",
    "model_version",
    "checkpoint_sha256",
    "embed_dim",
    "metric",
    "factory",
    "backend",
    "count",
    "rows",
    "per_category",
    "files",
)


def library_versions() -> dict[str, str]:
    import faiss
    import numpy

    return {"faiss": str(faiss.__version__), "numpy": numpy.__version__, "python": platform.python_version()}


def write_manifest(version_dir: Path, manifest: dict[str, Any], files: Iterable[str]) -> dict[str, Any]:
    """Checksum `files` (relative to version_dir) into the manifest and write it atomically."""
    out = dict(manifest)
    out["format"] = MANIFEST_FORMAT
    out["files"] = {
        name: {"sha256": sha256_file(version_dir / name), "bytes": (version_dir / name).stat().st_size}
        for name in sorted(files)
    }
    missing = [k for k in REQUIRED_KEYS if k not in out]
    if missing:
        raise ValueError(f"manifest lacks {missing}")  # a bug in the writer, not user input
    write_atomic(version_dir / MANIFEST_FILE, json.dumps(out, indent=2, sort_keys=True))
    return out


def read_manifest(version_dir: Path) -> dict[str, Any]:
    path = version_dir / MANIFEST_FILE
    if not path.is_file():
        raise IndexArtifactError(f"{path}: manifest is missing; is {version_dir} an index version directory?")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise IndexArtifactError(f"{path}: manifest is not valid JSON ({e})") from e
    if not isinstance(raw, dict):
        raise IndexArtifactError(f"{path}: manifest must be a JSON object")
    if raw.get("format") != MANIFEST_FORMAT:
        raise IndexArtifactError(f"{path}: manifest format {raw.get('format')!r} is not {MANIFEST_FORMAT}")
    missing = [k for k in REQUIRED_KEYS if k not in raw]
    if missing:
        raise IndexArtifactError(f"{path}: manifest lacks {missing}; rebuild the index")
    if raw["metric"] != METRIC:
        raise IndexArtifactError(f"{path}: metric {raw['metric']!r} is not {METRIC!r}")
    problems = schema_problems(raw)
    if problems:
        raise IndexArtifactError(f"{path}: manifest is malformed ({'; '.join(problems[:5])}); rebuild the index")
    return raw


def _is_int(v: Any, low: int = 0) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= low


def _is_str_map(v: Any, value_ok: Callable[[Any], bool]) -> bool:
    return isinstance(v, dict) and all(isinstance(k, str) and value_ok(x) for k, x in v.items())


def schema_problems(raw: dict[str, Any]) -> list[str]:
    """Type problems of the fields a reader uses: a hand-edited or foreign manifest fails here, by name,
    instead of as an AttributeError deep inside the loader."""
    checks: dict[str, Callable[[Any], bool]] = {
        "version": lambda v: isinstance(v, str) and bool(v),
        "model_version": lambda v: isinstance(v, str) and bool(v),
        "checkpoint_sha256": lambda v: isinstance(v, str),
        "backend": lambda v: isinstance(v, str),
        "factory": lambda v: isinstance(v, str),
        "embed_dim": lambda v: _is_int(v, 1),
        "count": _is_int,
        "rows": _is_int,
        "per_category": lambda v: _is_str_map(v, _is_int),
        "files": lambda v: _is_str_map(
            v, lambda m: isinstance(m, dict) and isinstance(m.get("sha256"), str) and _is_int(m.get("bytes"))),
    }
    optional: dict[str, Callable[[Any], bool]] = {
        "category_files": lambda v: _is_str_map(v, lambda x: isinstance(x, str)),
        "category_factories": lambda v: _is_str_map(v, lambda x: isinstance(x, str)),
        "search": lambda v: _is_str_map(v, _is_int),
        "checkpoint_path": lambda v: v is None or isinstance(v, str),
        "image_root": lambda v: v is None or isinstance(v, str),
    }
    problems = [f"{k!r} has the wrong type" for k, ok in checks.items() if not ok(raw[k])]
    problems += [f"{k!r} has the wrong type" for k, ok in optional.items() if k in raw and not ok(raw[k])]
    if not problems and raw["rows"] < raw["count"]:
        problems.append(f"rows {raw['rows']} < count {raw['count']}")
    return problems


def verify_files(version_dir: Path, manifest: dict[str, Any]) -> None:
    """Every listed file exists with the recorded size and sha256."""
    files = manifest["files"]
    if not isinstance(files, dict) or not files:
        raise IndexArtifactError(f"{version_dir / MANIFEST_FILE}: 'files' must list the artifact checksums")
    for name, meta in files.items():
        path = version_dir / name
        if not path.is_file():
            raise IndexArtifactError(f"{path}: file listed in the manifest is missing; the index is incomplete")
        size = path.stat().st_size
        if size != meta.get("bytes"):
            raise IndexArtifactError(
                f"{path}: {size} bytes, the manifest says {meta.get('bytes')}; the file is corrupt or truncated"
            )
        actual = sha256_file(path)
        if actual != meta.get("sha256"):
            raise IndexArtifactError(
                f"{path}: sha256 {actual[:16]}… does not match the manifest ({str(meta.get('sha256'))[:16]}…); "
                "the file is corrupt or was replaced; rebuild or republish the index"
            )


def check_compatible(
    manifest: dict[str, Any], *, expected_model_version: str | None, backend: str | None, where: Path
) -> None:
    """Refuse an index built by another model, or with embeddings from an incompatible backend."""
    if expected_model_version is not None and manifest["model_version"] != expected_model_version:
        raise IndexArtifactError(
            f"{where}: index was built with model {manifest['model_version']}, but the service runs model "
            f"{expected_model_version}; rebuild the index with this checkpoint "
            "(`outfit-compat index build --checkpoint ...`)"
        )
    if backend is not None:
        try:
            check_backend_compatible(str(manifest["backend"]), backend)
        except BackendMismatchError as e:
            raise IndexArtifactError(f"{where}: {e}") from e
