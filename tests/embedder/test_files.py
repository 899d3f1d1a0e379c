"""The one atomic-write helper: replaces whole files, leaves nothing behind on failure, keeps suffixes."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import numpy as np
import pytest

from embedder.files import atomic_path, sha256_file, write_atomic


def test_write_atomic_creates_and_replaces(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "dir" / "a.json"
    write_atomic(target, "first")
    write_atomic(target, b"\x00second")
    assert target.read_bytes() == b"\x00second"
    assert [p.name for p in target.parent.iterdir()] == ["a.json"]  # no temporary left beside it


def test_write_atomic_uses_the_umask_not_0600(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        write_atomic(tmp_path / "model.onnx", b"x")
    finally:
        os.umask(old)
    # a service running as another user must be able to read an export
    assert stat.S_IMODE((tmp_path / "model.onnx").stat().st_mode) == 0o644


def test_failed_write_keeps_the_old_file_and_removes_the_temporary(tmp_path: Path) -> None:
    target = tmp_path / "chunk.npz"
    write_atomic(target, b"old")
    with pytest.raises(RuntimeError, match="disk full"), atomic_path(target) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("disk full")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["chunk.npz"]


def test_atomic_path_keeps_the_suffix_writers_insist_on(tmp_path: Path) -> None:
    target = tmp_path / "emb.npz"
    with atomic_path(target) as tmp:
        assert tmp.suffix == ".npz" and tmp.parent == tmp_path and tmp.name.startswith(".")
        np.savez(tmp, x=np.arange(3))  # np.savez appends .npz to any other name
    with np.load(target) as z:
        np.testing.assert_array_equal(z["x"], np.arange(3))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["emb.npz"]


def test_sha256_file(tmp_path: Path) -> None:
    write_atomic(tmp_path / "f", b"abc")
    assert sha256_file(tmp_path / "f") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
