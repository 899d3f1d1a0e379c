"""Errors raised for bad datasets and catalogs; messages name the file and what to fix."""

from __future__ import annotations

from pathlib import Path


class DatasetError(ValueError):
    """A dataset or catalog file is missing, malformed or inconsistent."""

    def __init__(self, path: Path | str, message: str) -> None:
        self.path = Path(path)
        self.message = message
        super().__init__(f"{path}: {message}")
