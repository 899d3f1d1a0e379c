"""Errors raised for bad datasets and catalogs; messages name the file and what to fix."""

from __future__ import annotations

from pathlib import Path


class DatasetError(ValueError):
    """A dataset or catalog file is missing, malformed or inconsistent."""

    def __init__(self, path: Path | str, message: str) -> None:
        self.path = Path(path)
        self.message = message
        super().__init__(f"{path}: {message}")


SHOWN_PROBLEMS = 20


def problems_error(path: Path | str, problems: list[str], what: str) -> DatasetError:
    """One error listing every problem found in a file (the first 20 of them), so one run shows them all."""
    shown = "\n  ".join(problems[:SHOWN_PROBLEMS])
    more = f"\n  ... and {len(problems) - SHOWN_PROBLEMS} more" if len(problems) > SHOWN_PROBLEMS else ""
    return DatasetError(path, f"{len(problems)} {what}:\n  {shown}{more}")
