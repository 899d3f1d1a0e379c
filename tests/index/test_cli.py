"""`outfit-compat index ...` through the real entry point, and a 2-process torchrun (gloo) build."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from catalog_fixture import write_image_catalog

from index import open_index
from outfit_compat.cli import main

FAST = ["--batch-size", "8", "--workers", "0", "--chunk-size", "16", "--no-progress"]


def test_build_search_add_remove_info(
    tmp_path: Path, random_checkpoint: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    catalog = write_image_catalog(tmp_path / "shop", n=24)
    out = tmp_path / "idx"
    assert main(["index", "build", "--checkpoint", str(random_checkpoint), "--catalog", str(catalog),
                 "--out", str(out), *FAST]) == 0
    built = json.loads(capsys.readouterr().out)
    assert built["count"] == 24 and built["rejects"] == 2

    assert main(["index", "search", "--index", str(out), "--item-id", "p0004", "--k", "3", "--category", "bottoms",
                 "--json"]) == 0
    hits = json.loads(capsys.readouterr().out)
    assert len(hits) == 3 and all(h["category"] == "bottoms" and h["item_id"] != "p0004" for h in hits)

    image = tmp_path / "shop" / "images" / "p0004.jpg"
    assert main(["index", "search", "--index", str(out), "--image", str(image), "--k", "2"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert len(table) == 2 and table[0].split()[2] == "p0004"  # the photo of an indexed item finds that item

    more = write_image_catalog(tmp_path / "more", n=3, start=50, bad=False)
    assert main(["index", "add", "--index", str(out), "--checkpoint", str(random_checkpoint), "--catalog", str(more),
                 *FAST]) == 0
    assert json.loads(capsys.readouterr().out)["count"] == 27
    assert main(["index", "remove", "--index", str(out), "--item-id", "p0050", "--item-id", "p0001"]) == 0
    assert json.loads(capsys.readouterr().out)["count"] == 25
    assert main(["index", "info", "--index", str(out)]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["operation"] == "remove" and info["count"] == 25


def test_cli_errors_are_one_line(tmp_path: Path, random_checkpoint: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["index", "info", "--index", str(tmp_path / "missing")]) == 2
    assert "index directory does not exist" in capsys.readouterr().err
    catalog = write_image_catalog(tmp_path / "shop", n=6, bad=False)
    out = tmp_path / "idx"
    assert main(["index", "build", "--checkpoint", str(random_checkpoint), "--catalog", str(catalog),
                 "--out", str(out), *FAST]) == 0
    capsys.readouterr()
    assert main(["index", "search", "--index", str(out), "--item-id", "nope"]) == 2
    assert "nope" in capsys.readouterr().err
    assert main(["index", "search", "--index", str(out), "--item-id", "p0001", "--category", "hats"]) == 2
    assert "unknown category 'hats'" in capsys.readouterr().err
    assert main(["index", "build", "--checkpoint", str(random_checkpoint), "--catalog", str(catalog),
                 "--out", str(out), "--factory", "NotAFactory", *FAST]) == 2
    assert "factory string 'NotAFactory' is not valid" in capsys.readouterr().err
    (open_index(out).root / "global.faiss").write_bytes(b"garbage")
    assert main(["index", "search", "--index", str(out), "--item-id", "p0001"]) == 2
    assert "global.faiss: 7 bytes, the manifest says" in capsys.readouterr().err


def test_torchrun_two_gloo_ranks_match_single_process(tmp_path: Path, random_checkpoint: Path) -> None:
    catalog = write_image_catalog(tmp_path / "shop", n=40)
    args = ["index", "build", "--checkpoint", str(random_checkpoint), "--catalog", str(catalog), *FAST]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "outfit_compat", *args, "--out", str(tmp_path / "dist")]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "rank 0: embedded 24 items" in proc.stderr and "rank 1: embedded 16 items" in proc.stderr  # 3 + 2 chunks
    assert main([*args, "--out", str(tmp_path / "single")]) == 0
    dist, single = open_index(tmp_path / "dist"), open_index(tmp_path / "single")
    assert dist.count == single.count == 40 and dist.manifest["rejects"] == 2
    ids = [f"p{i:04d}" for i in range(40)]
    np.testing.assert_allclose(dist.vectors(ids), single.vectors(ids), atol=1e-5)
