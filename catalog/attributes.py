"""Typed catalog attributes: the extra columns of a shop catalog (`in_stock`, `brand`, `colour`, `size`, ...).

Each attribute has one type for the whole catalog: `number`, `boolean` or `string`. JSONL values carry
their JSON type; a CSV column is typed by its values (every non-empty cell `true`/`false` -> boolean,
every cell a plain decimal number -> number, otherwise string). Numbers with a leading zero (`0123`,
an EAN or postcode) stay strings, so no identifier loses its digits. An empty cell or JSON `null` is a
missing value, which no filter matches.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

from catalog.types import AttrValue

NUMBER, BOOLEAN, STRING = "number", "boolean", "string"
ATTRIBUTE_TYPES: tuple[str, ...] = (NUMBER, BOOLEAN, STRING)
# Attribute names become filter keys (JSON and form fields): identifiers only.
NAME_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_NUMBER_TEXT = re.compile(r"[+-]?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?|[+-]?\.[0-9]+")
_BOOLEAN_TEXT = {"true": True, "false": False}


def check_name(name: str) -> str | None:
    """None when `name` is a valid attribute name, else what is wrong with it."""
    if NAME_PATTERN.fullmatch(name):
        return None
    return (f"attribute name {name!r} is not an identifier (letters, digits and '_', not starting with a digit, "
            "at most 64 characters); rename the column")


def csv_column_type(cells: Iterable[str]) -> str:
    """The type of a CSV column from its non-empty cells (string when it has none)."""
    values = [c.strip() for c in cells if c.strip()]
    if not values:
        return STRING
    if all(v.lower() in _BOOLEAN_TEXT for v in values):
        return BOOLEAN
    if all(_NUMBER_TEXT.fullmatch(v) and math.isfinite(float(v)) for v in values):
        return NUMBER
    return STRING


def parse_csv_cell(cell: str, kind: str) -> AttrValue | None:
    """A cell of a column already typed by `csv_column_type` (so parsing cannot fail)."""
    text = cell.strip()
    if not text:
        return None
    if kind == BOOLEAN:
        return _BOOLEAN_TEXT[text.lower()]
    if kind == NUMBER:
        return float(text)
    return text


def json_value_type(value: Any) -> str | None:
    """The attribute type of a JSON value; None for null. Raises ValueError for lists, objects, NaN."""
    if value is None:
        return None
    if isinstance(value, bool):  # before int: bool is an int subclass
        return BOOLEAN
    if isinstance(value, int | float):
        if not math.isfinite(float(value)):
            raise ValueError("must be a finite number")
        return NUMBER
    if isinstance(value, str):
        return STRING
    raise ValueError(f"must be a number, boolean or string, not {type(value).__name__}")


def json_value(value: Any) -> AttrValue | None:
    kind = json_value_type(value)
    if kind is None:
        return None
    if kind == NUMBER:
        return float(value)
    return value  # bool or str, checked by json_value_type


def value_type(value: AttrValue) -> str:
    """The type of an already parsed value (bool before float: bool is an int subclass)."""
    if isinstance(value, bool):
        return BOOLEAN
    return NUMBER if isinstance(value, int | float) else STRING


def schema_of(rows: Iterable[tuple[str, Mapping[str, AttrValue]]]) -> dict[str, str]:
    """name -> type over (where, attributes) rows; a name with two types is a ValueError naming both rows."""
    schema: dict[str, str] = {}
    first: dict[str, str] = {}
    for where, attrs in rows:
        for name, value in attrs.items():
            kind = value_type(value)
            seen = schema.setdefault(name, kind)
            first.setdefault(name, where)
            if seen != kind:
                raise ValueError(
                    f"attribute {name!r} is a {kind} for {where} but a {seen} for {first[name]}; "
                    "give each attribute one type across the catalog"
                )
    return dict(sorted(schema.items()))
