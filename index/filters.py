"""Business filters over catalog items: a price range and attribute equality / set membership.

A filter is checked against the index's attribute schema before any search (unknown attribute or a
value of the wrong type -> FilterError naming what is known), then evaluated into a boolean mask over
rows with numpy. Items missing a filtered field (no price, no `brand`) never match.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from catalog.attributes import BOOLEAN, NUMBER, STRING, value_type
from catalog.types import AttrValue
from index.columns import ItemColumns

PRICE_FIELDS: tuple[str, ...] = ("price_min", "price_max")


class FilterError(ValueError):
    """A filter names an unknown attribute or compares one with a value of another type."""

    def __init__(self, message: str, *, unknown: list[str] | None = None, known: list[str] | None = None) -> None:
        super().__init__(message)
        self.unknown = unknown or []
        self.known = known or []


@dataclass(frozen=True)
class ItemFilter:
    """Items priced in [price_min, price_max] whose attribute `name` is one of `attributes[name]`, for every name.

    Canonical: values are sorted and deduplicated, so equal filters have equal `key`s (cache keys).
    """

    price_min: float | None = None
    price_max: float | None = None
    attributes: Mapping[str, tuple[AttrValue, ...]] = field(default_factory=dict, hash=False)

    @classmethod
    def of(
        cls,
        *,
        price_min: float | None = None,
        price_max: float | None = None,
        attributes: Mapping[str, AttrValue | list[AttrValue] | tuple[AttrValue, ...]] | None = None,
    ) -> ItemFilter:
        """One value means equality, a list means membership; an empty list is a FilterError (matches nothing)."""
        for name, v in (("price_min", price_min), ("price_max", price_max)):
            if v is not None and (isinstance(v, bool) or not math.isfinite(v)):
                raise FilterError(f"{name} must be a finite number, not {v!r}")
        if price_min is not None and price_max is not None and price_min > price_max:
            raise FilterError(f"price_min {price_min} is above price_max {price_max}")
        attrs: dict[str, tuple[AttrValue, ...]] = {}
        for name, raw in sorted((attributes or {}).items()):
            values = list(raw) if isinstance(raw, list | tuple) else [raw]
            if not values:
                raise FilterError(f"filter {name!r} lists no values; leave it out to allow any value")
            if len({value_type(v) for v in values}) > 1:
                raise FilterError(f"filter {name!r} mixes value types {values!r}")
            norm = [float(v) if value_type(v) == NUMBER else v for v in values]
            attrs[name] = tuple(sorted(set(norm), key=lambda v: (str(type(v)), v)))
        return cls(price_min=None if price_min is None else float(price_min),
                   price_max=None if price_max is None else float(price_max), attributes=attrs)

    @property
    def empty(self) -> bool:
        return self.price_min is None and self.price_max is None and not self.attributes

    @property
    def key(self) -> str:
        """Canonical JSON of the filter (part of result-cache keys)."""
        return json.dumps({"price_min": self.price_min, "price_max": self.price_max,
                           "attributes": {k: list(v) for k, v in self.attributes.items()}},
                          sort_keys=True, separators=(",", ":"))


def known_fields(schema: Mapping[str, str]) -> list[str]:
    return [*PRICE_FIELDS, *sorted(schema)]


def check_filter(flt: ItemFilter, schema: Mapping[str, str]) -> None:
    """FilterError when `flt` names an attribute the index lacks or gives a value of the wrong type."""
    unknown = [name for name in flt.attributes if name not in schema]
    if unknown:
        raise FilterError(
            f"unknown filter attribute(s) {unknown}; this catalog filters on {known_fields(schema)}",
            unknown=unknown, known=known_fields(schema),
        )
    for name, values in flt.attributes.items():
        want = schema[name]
        got = value_type(values[0])
        if got != want:
            raise FilterError(f"filter {name!r} is a {want} attribute, but the filter gives a {got} {values[0]!r}",
                              known=known_fields(schema))


def filter_mask(flt: ItemFilter, columns: ItemColumns) -> np.ndarray:
    """Boolean mask over rows of the items `flt` allows (checked by `check_filter` first)."""
    mask = np.ones(columns.rows, dtype=bool)
    price = columns.price
    with np.errstate(invalid="ignore"):  # NaN (no price) compares False: such items never match
        if flt.price_min is not None:
            mask &= price >= flt.price_min
        if flt.price_max is not None:
            mask &= price <= flt.price_max
    for name, values in flt.attributes.items():
        kind, col = columns.schema[name], columns.values[name]
        if kind == STRING:
            vocab = columns.vocab[name]
            codes = [vocab[str(v)] for v in values if str(v) in vocab]  # a value no item has matches nothing
            mask &= (col == codes[0]) if len(codes) == 1 else np.isin(col, codes)
        elif kind == BOOLEAN:
            wanted = {int(bool(v)) for v in values}
            mask &= (col == wanted.pop()) if len(wanted) == 1 else col >= 0
        else:
            nums = np.asarray(values, dtype=np.float64)
            mask &= (col == nums[0]) if len(nums) == 1 else np.isin(col, nums)
    return mask
