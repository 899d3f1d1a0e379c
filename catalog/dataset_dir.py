"""Writing a generated dataset directory: refuse foreign data, build beside it, swap it in when complete."""

from __future__ import annotations

import shutil
from pathlib import Path


def prepare_out(out: Path, marker: str, what: str) -> None:
    """Refuse to replace anything but an empty directory or an earlier dataset holding `marker`."""
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / marker).is_file())):
        raise FileExistsError(f"{out} exists and is not {what}; choose an empty or new directory")


def staging_dir(out: Path) -> Path:
    """A fresh hidden sibling of `out` to write into (left-overs of a crashed run are removed)."""
    tmp = out.with_name(f".{out.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    return tmp


def swap_in(tmp: Path, out: Path) -> None:
    """Move the finished directory into place, so readers never see a half-written dataset."""
    if out.exists():
        old = out.with_name(f".{out.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        out.rename(old)
        tmp.rename(out)
        shutil.rmtree(old)
    else:
        tmp.rename(out)
