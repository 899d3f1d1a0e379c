"""Catalog indexing: batch embedding into versioned FAISS artifacts, and the reader the service uses.

Only the reader side is imported here (no torch); the build job lives in `index.build`.
"""

from index.errors import IndexArtifactError, IndexBuildError
from index.reader import CatalogIndex, Hit, open_index
from index.store import ItemRecord

__all__ = ["CatalogIndex", "Hit", "IndexArtifactError", "IndexBuildError", "ItemRecord", "open_index"]
