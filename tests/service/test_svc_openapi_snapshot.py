"""The public contract: /openapi.json of the real app equals the reviewed snapshot beside this file.

After an intended API change: `UPDATE_OPENAPI_SNAPSHOT=1 python -m pytest tests/service/test_svc_openapi_snapshot.py`
and review the diff of openapi_snapshot.json.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

SNAPSHOT = Path(__file__).with_name("openapi_snapshot.json")


def test_openapi_matches_snapshot(client: Any) -> None:
    live = client.get("/openapi.json").json()
    text = json.dumps(live, indent=2, sort_keys=True) + "\n"
    if os.environ.get("UPDATE_OPENAPI_SNAPSHOT") == "1":
        SNAPSHOT.write_text(text, encoding="utf-8")
    assert SNAPSHOT.is_file(), "no snapshot yet: run with UPDATE_OPENAPI_SNAPSHOT=1 and review it"
    assert json.loads(SNAPSHOT.read_text(encoding="utf-8")) == live, (
        "the API changed; if intended, regenerate the snapshot (see the module docstring) and review the diff"
    )
