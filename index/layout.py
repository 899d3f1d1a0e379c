"""On-disk layout of a published index: versioned directories and an atomically switched `current` link.

    ROOT/
      current -> versions/<version>        (symlink, replaced with os.replace: readers never see a gap)
      versions/<version>/                   (immutable once published)
        manifest.json  items.sqlite  columns.npz  vectors.npy  global.faiss  categories/<n>.faiss  rejects.jsonl
      .work/                                (resumable embedding chunks of unfinished build jobs)
"""

from __future__ import annotations

import os
import secrets
import shutil
import time
from pathlib import Path

from embedder.files import fsync_path
from index.errors import IndexArtifactError

MANIFEST_FILE = "manifest.json"
STORE_FILE = "items.sqlite"
VECTORS_FILE = "vectors.npy"
GLOBAL_INDEX_FILE = "global.faiss"
CATEGORY_DIR = "categories"
REJECTS_FILE = "rejects.jsonl"
COLUMNS_FILE = "columns.npz"
VERSIONS_DIR = "versions"
CURRENT_LINK = "current"
WORK_DIR = ".work"


def new_version_name(root: Path) -> str:
    """`v000007-20261122T071553Z`: the sequence number orders versions even within one second."""
    seq = max((int(n[1:7]) for n in list_versions(root) if n[1:7].isdigit()), default=0) + 1
    return f"v{seq:06d}-" + time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())


def staging_dir(root: Path, version: str) -> Path:
    """A hidden directory beside the versions, renamed into place only when complete."""
    path = root / VERSIONS_DIR / f".staging-{version}"
    path.mkdir(parents=True, exist_ok=False)
    return path


def resolve_version_dir(root: Path) -> Path:
    """`root` is a published index root (with `current`) or a version directory itself."""
    root = Path(root)
    if (root / MANIFEST_FILE).is_file():
        return root
    link = root / CURRENT_LINK
    if link.exists():
        target = link.resolve()
        if not (target / MANIFEST_FILE).is_file():
            raise IndexArtifactError(f"{link} points to {target}, which has no {MANIFEST_FILE}")
        return target
    if not root.exists():
        raise IndexArtifactError(f"{root}: index directory does not exist; build one with `outfit-compat index build`")
    raise IndexArtifactError(
        f"{root}: neither a version directory (no {MANIFEST_FILE}) nor a published index (no `{CURRENT_LINK}`)"
    )


def publish(root: Path, staged: Path, version: str, *, keep: int = 3) -> Path:
    """Move a complete staged version into place, then switch `current` to it in one rename.

    Readers that opened the previous version keep reading it: it stays on disk (the last `keep`
    versions are kept; older ones are pruned, never the one just published).
    """
    final = root / VERSIONS_DIR / version
    os.replace(staged, final)
    tmp_link = root / f".{CURRENT_LINK}.{secrets.token_hex(4)}"
    os.symlink(Path(VERSIONS_DIR) / version, tmp_link)
    os.replace(tmp_link, root / CURRENT_LINK)
    fsync_path(root)
    prune_versions(root, keep=keep)
    return final


def list_versions(root: Path) -> list[str]:
    base = root / VERSIONS_DIR
    if not base.is_dir():
        return []
    return sorted(p.name for p in base.iterdir() if p.is_dir() and not p.name.startswith("."))


def prune_versions(root: Path, *, keep: int) -> list[str]:
    if keep < 1:
        raise ValueError(f"keep must be at least 1, not {keep}")
    link = root / CURRENT_LINK
    current = link.resolve().name if link.exists() else None
    removed: list[str] = []
    for name in list_versions(root)[:-keep]:
        if name != current:
            shutil.rmtree(root / VERSIONS_DIR / name, ignore_errors=True)
            removed.append(name)
    return removed

