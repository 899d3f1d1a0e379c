"""File helpers shared by checkpoints, exports, datasets and index artifacts (torch-free).

`write_atomic` / `atomic_path` are the one way the project writes a file that others read: the data goes
to a hidden temporary name beside the target, is flushed to disk, and is renamed over the target, so a
reader (or a crash) never sees a half-written file. Directories are swapped in by their own modules.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks (weights and indexes can be large)."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


@contextmanager
def atomic_path(path: Path | str) -> Iterator[Path]:
    """A temporary path beside `path` for a writer that wants a file name (np.savez, torch.save).

    It ends in the target's suffix (np.savez would otherwise append `.npz`). When the block exits
    normally the file is fsynced and renamed over `path`; on any exception it is removed. The parent
    directory is created if needed; the file gets the usual umask permissions.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp{path.suffix}")
    try:
        yield tmp
        fsync_path(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_atomic(path: Path | str, data: bytes | str) -> None:
    """Write `data` (str is encoded as UTF-8) to `path` atomically; see `atomic_path`."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    with atomic_path(path) as tmp:
        # O_EXCL: the random name is never someone else's file; 0o666 lets the umask decide (mkstemp's 0600
        # would hide an artifact from a service running as another user).
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with os.fdopen(fd, "wb") as f:
            f.write(raw)


def fsync_path(path: Path) -> None:
    """Flush a file's or a directory's data to disk (a directory: so a rename in it survives a crash)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
