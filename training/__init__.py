"""Offline semi-supervised trainer and evaluation (imports embedder and catalog, never the service)."""
