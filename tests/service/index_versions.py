"""Publishing a new version of a test index while a server serves it (reload and watcher tests)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def publish_half(index_root: Path) -> list[Any]:
    """Publish a version holding the first half of the current items (their stored vectors); their records."""
    from index.layout import STORE_FILE
    from index.reader import open_index
    from index.store import ItemStore
    from index.writer import IndexPolicy, build_content, write_version

    idx = open_index(index_root)
    rows = list(ItemStore(idx.root / STORE_FILE).iter_all())
    keep = [rec for _, rec, _ in rows][: len(rows) // 2]
    policy = IndexPolicy()
    write_version(index_root, build_content(keep, idx.vectors([r.item_id for r in keep]), policy),
                  identity={k: idx.manifest[k] for k in ("model_version", "checkpoint_sha256", "backend", "source")},
                  policy=policy, operation="build")
    idx.close()
    return keep


def kept_item(index_root: Path) -> str:
    """An item id that `publish_half` keeps (the first row): queries with it stay valid across the publish."""
    from index.layout import STORE_FILE
    from index.reader import open_index
    from index.store import ItemStore

    idx = open_index(index_root)
    try:
        return next(iter(ItemStore(idx.root / STORE_FILE).iter_all()))[1].item_id
    finally:
        idx.close()
