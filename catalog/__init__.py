"""Data formats: Polyvore Outfits reader/writer, the generic catalog format, the synthetic generator."""

from catalog.errors import DatasetError
from catalog.generic import read_catalog, read_outfits_jsonl
from catalog.polyvore import SPLIT_KINDS, SPLITS, PolyvoreDataset
from catalog.types import CompatibilityExample, FITBQuestion, Item, Outfit, SplitData

__all__ = [
    "SPLITS",
    "SPLIT_KINDS",
    "CompatibilityExample",
    "DatasetError",
    "FITBQuestion",
    "Item",
    "Outfit",
    "PolyvoreDataset",
    "SplitData",
    "read_catalog",
    "read_outfits_jsonl",
]
