"""Whole columns parsed at once: ``parse_column`` turns a column of cells into typed values.

Parsing works on the *distinct* values of a column (``pandas.factorize``), so a million-row
column with a few hundred distinct values costs a few hundred parses; the plain ones
(``123``, ``2024-06-05``) are parsed vectorised when there are many, the rest cell by cell
with ``normalise.parse_cell``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ingestion.contract import Field, FieldType
from ingestion.normalise import EMPTY_MARKERS, TEXT_LIMIT, Parsed, parse_cell

__all__ = ["ColumnResult", "parse_column"]


_DTYPES = {
    FieldType.COUNT: "Int64",
    FieldType.MONEY: "float64",
    FieldType.NUMBER: "float64",
    FieldType.DATE: "datetime64[s]",
    FieldType.BOOL: "boolean",
}


@dataclass
class ColumnResult:
    values: pd.Series
    errors: pd.Series | None  # reason code or None, per row; None when no cell failed
    approximate: np.ndarray  # bool per row
    changed_examples: list[tuple[str, str]] = field(default_factory=list)  # (raw, parsed)
    # Parsed.how -> up to three (raw, parsed) examples: the normalisations with a note of their own
    special_examples: dict[str, list[tuple[str, str]]] = field(default_factory=dict)


_VECTOR_THRESHOLD = 256  # distinct values above which plain cells are parsed vectorised


def parse_column(f: Field, raw: pd.Series, factor: float = 1.0, year: int | None = None) -> ColumnResult:
    """Parse one column. Text is cleaned vectorised; other types are parsed once per distinct
    value (``factorize``), the plain ones (``123``, ``2024-06-05``) vectorised when there
    are many, the rest one by one."""
    if f.type == FieldType.TEXT and pd.api.types.is_string_dtype(raw.dtype) and raw.dtype != object:
        return _text_column(raw)
    if f.type == FieldType.TEXT and len(raw) > 64 and all(isinstance(v, str) or v is None for v in raw):
        return _text_column(raw.astype("str"))  # a workbook's or JSON's text cells: the same, vectorised
    codes, uniques = pd.factorize(raw, use_na_sentinel=True)
    uniques = np.asarray(uniques, dtype=object)
    parsed = _parse_uniques(f, uniques, factor, year)
    lookup = [*parsed, Parsed()]  # the last entry stands for NA (code -1)
    idx = np.where(codes < 0, len(parsed), codes)
    errors_u = np.array([p.error for p in lookup], dtype=object)
    approx_u = np.array([p.approximate for p in lookup], dtype=bool)
    if f.type == FieldType.DATE:
        values_u = np.array(
            [np.datetime64(p.value, "s") if p.value is not None else np.datetime64("NaT", "s") for p in lookup],
            dtype="datetime64[s]",
        )
        series = pd.Series(values_u[idx], index=raw.index)
    elif f.type in (FieldType.COUNT, FieldType.MONEY, FieldType.NUMBER):
        values_u = np.array([np.nan if p.value is None else float(p.value) for p in lookup], dtype=float)
        values = values_u[idx]
        if f.type == FieldType.COUNT:
            missing = np.isnan(values)
            series = pd.Series(
                pd.arrays.IntegerArray(np.where(missing, 0, values).astype(np.int64), missing), index=raw.index
            )
        else:
            series = pd.Series(values, index=raw.index)
    else:
        values_u = np.array([p.value for p in lookup], dtype=object)
        series = pd.Series(values_u[idx], index=raw.index, dtype=_DTYPES.get(f.type, object))
    has_errors = any(p.error for p in parsed)
    examples = [(str(u), _shown_value(p)) for u, p in zip(uniques, parsed, strict=True) if p.changed and not p.how][:3]
    special: dict[str, list[tuple[str, str]]] = {}
    for u, p in zip(uniques, parsed, strict=True):
        if p.how and len(special.setdefault(p.how, [])) < 3:
            special[p.how].append((_shown_raw(u), _shown_value(p)))
    return ColumnResult(
        values=series,
        errors=pd.Series(errors_u[idx], index=raw.index, dtype=object) if has_errors else None,
        approximate=approx_u[idx],
        changed_examples=examples,
        special_examples=special,
    )


def _shown_raw(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _parse_uniques(f: Field, uniques: np.ndarray, factor: float, year: int | None = None) -> list[Parsed]:
    if len(uniques) <= _VECTOR_THRESHOLD or f.type not in (
        FieldType.COUNT,
        FieldType.MONEY,
        FieldType.NUMBER,
        FieldType.DATE,
    ):
        return [parse_cell(f, u, factor, year) for u in uniques]
    as_text = pd.Series(uniques, dtype=object).map(lambda v: v if isinstance(v, str) else None)
    if f.type == FieldType.DATE:
        fast = pd.to_datetime(as_text, format="%Y-%m-%d", errors="coerce")
        ok = fast.notna().to_numpy()
        fast_values = [d.date() if ok_ else None for d, ok_ in zip(fast, ok, strict=True)]
    else:
        fast = pd.to_numeric(as_text.where(as_text.str.fullmatch(r"-?\d+(?:\.\d+)?", na=False)), errors="coerce")
        ok = fast.notna().to_numpy()
        numbers = fast.to_numpy(dtype=float) * factor
        if f.type == FieldType.MONEY:
            numbers = np.round(numbers, 2)
        elif f.type == FieldType.NUMBER:
            numbers = np.round(numbers, 3)
        whole = numbers == np.floor(numbers)
        ok = ok & (whole | (f.type != FieldType.COUNT))  # not in place: to_numpy() may be a read-only view
        fast_values = numbers.tolist()
    return [Parsed(fast_values[i]) if ok[i] else parse_cell(f, u, factor, year) for i, u in enumerate(uniques)]


def _shown_value(p: Parsed) -> str:
    """A parsed value as a note shows it: 200000.0 -> '200000', with '(约 / approx.)' if approximate."""
    value = p.value
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return f"{value}（约 / approx.）" if p.approximate else str(value)


def _text_column(raw: pd.Series) -> ColumnResult:
    s = raw.str.strip()
    messy = s.str.contains("  ", regex=False) | s.str.contains("\n", regex=False) | s.str.contains("\t", regex=False)
    if messy.any():
        s = s.copy()
        s[messy] = s[messy].str.replace(r"\s+", " ", regex=True)
    empty = s.isna() | s.isin(EMPTY_MARKERS)
    values = s.where(~empty)
    too_long = (values.str.len() > TEXT_LIMIT).fillna(False).to_numpy(dtype=bool)
    errors = None
    if too_long.any():
        errors = pd.Series(np.where(too_long, "R016_TEXT_TOO_LONG", None), index=raw.index, dtype=object)
        values = values.where(~too_long)
    return ColumnResult(values=values, errors=errors, approximate=np.zeros(len(raw), dtype=bool))
