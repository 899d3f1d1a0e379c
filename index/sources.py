"""What the build job indexes: every item of a Polyvore-format dataset, or a generic CSV/JSONL catalog."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from catalog.errors import DatasetError
from catalog.generic import read_catalog
from catalog.polyvore import METADATA_FILE, PolyvoreDataset
from catalog.types import Item
from index.store import ItemRecord


@dataclass(frozen=True)
class CatalogSource:
    """Items in a fixed order (sorted by id, so chunks and resumes are reproducible) and provenance."""

    path: Path
    kind: str  # "polyvore" or "generic"
    items: tuple[Item, ...]

    @property
    def fingerprint(self) -> str:
        """Changes whenever an id, category or image path changes: a resumed job must see the same list."""
        h = hashlib.sha256()
        for it in self.items:
            h.update(f"{it.item_id}\t{it.category}\t{it.image}\n".encode())
        return h.hexdigest()[:16]

    @property
    def image_root(self) -> Path:
        """The directory the catalog's images belong under: the dataset directory, or the catalog file's."""
        return Path(os.path.abspath(self.path if self.kind == "polyvore" else self.path.parent))

    def describe(self) -> dict[str, str | int]:
        return {"path": str(self.path), "kind": self.kind, "items": len(self.items), "fingerprint": self.fingerprint}


def load_source(path: Path | str) -> CatalogSource:
    """A directory with polyvore_item_metadata.json is a Polyvore dataset; a file is a generic catalog."""
    path = Path(path)
    if path.is_dir():
        if not (path / METADATA_FILE).is_file():
            raise DatasetError(path, f"a catalog directory must be in Polyvore layout (no {METADATA_FILE})")
        items = list(PolyvoreDataset(path).items.values())
        kind = "polyvore"
    else:
        items = read_catalog(path)
        kind = "generic"
    if not items:
        raise DatasetError(path, "the catalog has no items")
    return CatalogSource(path=path, kind=kind, items=tuple(sorted(items, key=lambda it: it.item_id)))


def stored_image_path(image: Path, image_root: Path | None) -> str:
    """How a record stores an image: relative to the index's image root when under it (so the service never
    depends on its working directory, and the catalog can move), else absolute (never served: see
    `index.images.confined_image`)."""
    path = Path(os.path.abspath(image))
    if image_root is not None:
        try:
            return str(path.relative_to(os.path.abspath(image_root)))
        except ValueError:
            pass
    return str(path)


def record_of(item: Item, image_root: Path | None = None) -> ItemRecord:
    return ItemRecord(
        item_id=item.item_id,
        category=item.category,
        title=item.title,
        image_path=None if item.image is None else stored_image_path(item.image, image_root),
        price=item.price,
        url=item.url,
        attributes=dict(item.attributes),
    )
