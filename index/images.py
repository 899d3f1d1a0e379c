"""Which file an index serves as an item's image: only files under the image root the index records.

The catalog a build reads is trusted less than the service's file system: a CSV row may name
`../outside/x.png` or an absolute path, and an image may later be replaced by a symlink to `/etc/passwd`.
Every path is resolved (symlinks included) at the moment it is served and refused outside the root.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


def image_root_of(manifest: dict[str, Any]) -> Path | None:
    """The manifest's `image_root`; for indexes built before it was recorded, the catalog's directory when
    the build named it by an absolute path; None (no image is served) otherwise."""
    root = manifest.get("image_root")
    if isinstance(root, str) and root:
        return Path(root)
    source = manifest.get("source")
    if isinstance(source, dict) and isinstance(source.get("path"), str) and os.path.isabs(source["path"]):
        path = Path(source["path"])
        return path if source.get("kind") == "polyvore" else path.parent
    return None


def confined_image(image_root: Path | None, stored: str) -> Path | None:
    """The real path of a stored image path when it lies under the real image root, else None."""
    if image_root is None or not stored:
        return None
    real_root = os.path.realpath(image_root)
    real = os.path.realpath(os.path.join(real_root, stored))  # an absolute `stored` replaces the root
    if os.path.commonpath([real_root, real]) != real_root or real == real_root:
        return None
    return Path(real)
