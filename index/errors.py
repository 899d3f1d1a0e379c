"""Errors of the index artifacts and the build job; messages name the file and what to do about it."""

from __future__ import annotations


class IndexArtifactError(ValueError):
    """A published index is missing, corrupt, or does not match the model it is used with."""


class IndexBuildError(ValueError):
    """The build job cannot run with the given inputs (empty catalog, stale resume state, ...)."""
