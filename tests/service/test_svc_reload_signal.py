"""The shared reload signal (service/reload_signal.py): what one worker writes, the others read back."""

from __future__ import annotations

import os
from pathlib import Path

from service.reload_signal import ReloadSignal


def test_an_order_reads_back_as_written(tmp_path: Path) -> None:
    signal = ReloadSignal(tmp_path / "reload.json")
    assert signal.read() is None  # nothing published yet
    first = signal.publish(index=tmp_path / "a", checkpoint=None)
    assert signal.read() == first and first.by_worker == os.getpid() and first.checkpoint is None
    second = signal.publish(index=tmp_path / "b", checkpoint=tmp_path / "ckpt")
    assert second.id != first.id and signal.read() == second  # the file is replaced, never appended to


def test_an_unreadable_signal_is_no_order(tmp_path: Path) -> None:
    path = tmp_path / "reload.json"
    for junk in (b"", b"{", b"[]", b'{"id": "x"}', b'{"id": "x", "index": "/i", "by_worker": "pid", "at": 0}'):
        path.write_bytes(junk)
        assert ReloadSignal(path).read() is None, junk
