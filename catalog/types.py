"""Plain data types shared by every reader, writer and consumer of outfit data."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

# A catalog attribute value (`in_stock`, `brand`, `size`, ...): typed per column, see catalog.attributes.
AttrValue = str | float | bool


@dataclass(frozen=True)
class Item:
    """One product. `category` is the semantic category (tops, shoes, ...), the unit of compatibility."""

    item_id: str
    category: str
    category_id: str = ""
    title: str = ""
    image: Path | None = None
    price: float | None = None
    url: str = ""
    # Extra catalog columns, typed; hash=False keeps Item hashable (a dict is not).
    attributes: Mapping[str, AttrValue] = field(default_factory=dict, hash=False)


@dataclass(frozen=True)
class Outfit:
    """A stylist outfit: `item_ids[i]` sits at 1-based position `indices[i]` of the set."""

    set_id: str
    item_ids: tuple[str, ...]
    indices: tuple[int, ...]

    def __post_init__(self) -> None:
        if len(self.item_ids) != len(self.indices):
            raise ValueError(f"outfit {self.set_id}: {len(self.item_ids)} items but {len(self.indices)} indices")


@dataclass(frozen=True)
class FITBQuestion:
    """Fill-in-the-blank: which of `answers` completes `question`? `correct` indexes `answers`."""

    set_id: str
    question: tuple[str, ...]
    answers: tuple[str, ...]
    correct: int
    blank_position: int


@dataclass(frozen=True)
class CompatibilityExample:
    """An outfit labelled compatible (1) or not (0; a same-category random swap)."""

    label: int
    item_ids: tuple[str, ...]


@dataclass
class SplitData:
    """Everything one split (train/valid/test) of one split kind (nondisjoint/disjoint) holds."""

    kind: str
    name: str
    outfits: list[Outfit] = field(default_factory=list)
    fitb: list[FITBQuestion] = field(default_factory=list)
    compatibility: list[CompatibilityExample] = field(default_factory=list)

    def item_ids(self) -> set[str]:
        """Every item referenced by this split's outfits, questions and compatibility lines."""
        ids: set[str] = {i for o in self.outfits for i in o.item_ids}
        for q in self.fitb:
            ids.update(q.question)
            ids.update(q.answers)
        for c in self.compatibility:
            ids.update(c.item_ids)
        return ids
