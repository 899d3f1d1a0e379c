"""The demo's index step publishes the synthetic catalog and reuses it when nothing changed."""

from __future__ import annotations

from pathlib import Path

from index import open_index
from index.demo_step import demo_index


def test_demo_index_builds_then_reuses(tmp_path: Path, synth_root: Path, random_checkpoint: Path) -> None:
    first = demo_index(tmp_path, synth_root, checkpoint=random_checkpoint)
    idx = open_index(first["index"])
    assert first["count"] == idx.count > 0 and first["version"] == idx.version
    assert first["example"]["query"] not in [i for i, _ in first["example"]["nearest"]]
    assert len(first["example"]["nearest"]) == 3
    again = demo_index(tmp_path, synth_root, checkpoint=random_checkpoint)
    assert again["version"] == first["version"]  # nothing changed: no rebuild
