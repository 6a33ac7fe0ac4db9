"""Headers as districts write them → the contract's fields.

The Chinese header, the English field name or a common synonym (参加人数, 参与人次, 投入金额 …),
with full-width or half-width brackets, stray spaces and line breaks, and a unit in the header
(``投入资金（万元）`` → the column's cells × 10,000). ``detect_kind`` says which record kind a
header row is; ``match_header`` which column is which field (and notes what was read).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Any

from ingestion.contract import RECORD_KINDS, Field, RecordKind
from ingestion.normalise import UNITS, clean_text, dimension_of, is_empty
from ingestion.problems import Problem

# --------------------------------------------------------------------------- headers


def _header_key(text: str) -> str:
    text = unicodedata.normalize("NFKC", text)
    return re.sub(r"[\s_:：*]+", "", text).lower()


_UNIT_IN_HEADER = re.compile(r"[(\[](?P<unit>[^()\[\]]*)[)\]]\s*$")


@dataclass(frozen=True)
class ColumnMap:
    position: int  # column index in the source table
    field: Field
    header: str  # as received
    factor: float = 1.0  # multiply cell numbers by this to get the base unit
    header_unit: str | None = None


def _build_header_index() -> dict[str, dict[str, Field]]:
    index: dict[str, dict[str, Field]] = {}
    for kind in RECORD_KINDS.values():
        names: dict[str, Field] = {}
        for f in kind.fields:
            for alias in (f.name, f.header_zh, *f.synonyms):
                names[_header_key(alias)] = f
        index[kind.name] = names
    return index


_HEADER_INDEX = _build_header_index()
# the headers that need no note: the contract's own, as clean_text leaves them (NFKC: （元） -> (元))
_CANONICAL_HEADERS: dict[str, frozenset[str]] = {
    f.name: frozenset(clean_text(h) for h in (f.header_zh, f.header_with_unit, f.name))
    for kind in RECORD_KINDS.values()
    for f in kind.fields
}


def split_header(raw: str) -> tuple[str, str | None]:
    """'投入资金（万元）' -> ('投入资金', '万元'); brackets of either width."""
    text = unicodedata.normalize("NFKC", str(raw)).strip()
    m = _UNIT_IN_HEADER.search(text)
    if m:
        return text[: m.start()].strip(), m.group("unit").strip() or None
    return text, None


def match_header(kind: RecordKind, cells: list[Any]) -> tuple[list[ColumnMap], list[Problem]]:
    """Map header cells to the kind's fields. Unknown columns are ignored (and reported)."""
    names = _HEADER_INDEX[kind.name]
    columns: list[ColumnMap] = []
    notes: list[Problem] = []
    seen: set[str] = set()
    for pos, cell in enumerate(cells):
        if is_empty(cell):
            continue
        base, unit = split_header(str(cell))
        f = names.get(_header_key(base)) or names.get(_header_key(str(cell)))
        if f is None or f.name in seen:
            continue
        factor = 1.0
        if unit and f.unit:
            known = UNITS.get(unit.lower()) or UNITS.get(unit)
            if known and known[0] == dimension_of(f):
                factor = known[1]
        shown = _shown_header(cell)
        if factor != 1.0:
            notes.append(
                _note(
                    f"表头“{shown}”识别为“{f.header_with_unit}”，数值按 {unit} 换算为 {f.unit}",
                    f"header '{shown}' read as '{f.name}', values converted from {unit} to {f.unit}",
                )
            )
        elif clean_text(cell) not in _CANONICAL_HEADERS[f.name]:
            notes.append(_note(f"表头“{shown}”识别为“{f.header_with_unit}”", f"header '{shown}' read as '{f.name}'"))
        seen.add(f.name)
        columns.append(ColumnMap(pos, f, str(cell), factor, unit))
    return columns, notes


def header_score(kind: RecordKind, cells: list[Any]) -> int:
    names = _HEADER_INDEX[kind.name]
    found = set()
    for cell in cells:
        if is_empty(cell) or not isinstance(cell, str):
            continue
        base, _ = split_header(cell)
        f = names.get(_header_key(base))
        if f is not None:
            found.add(f.name)
    return len(found)


def detect_kind(cells: list[Any]) -> RecordKind | None:
    """The record kind whose headers this row is, or None. Needs at least 3 known headers
    (or all of a kind's required fields); ties go to the kind with more required fields found.
    A kind whose rows need one of several fields (income: at least one measure) needs one of
    them among the headers."""
    best: tuple[int, int, RecordKind] | None = None
    for kind in RECORD_KINDS.values():
        score = header_score(kind, cells)
        found = _found_fields(kind, cells)
        if kind.at_least_one and not found.intersection(kind.at_least_one):
            continue
        required_found = sum(1 for f in kind.fields if f.required and has_column(f, found))
        if score >= 3 or (score and required_found == len(kind.required_fields)):
            # prefer the kind that explains most required columns, then most columns
            rank = (required_found / len(kind.required_fields), score)
            if best is None or rank > best[:2]:
                best = (*rank, kind)  # type: ignore[assignment]
    return best[2] if best else None


def has_column(f: Field, found: set[str]) -> bool:
    """Whether a table with columns ``found`` gives field ``f``: its own column, or the column
    it is resolved from (a unit's name for its code)."""
    return f.name in found or (f.resolved_from is not None and f.resolved_from in found)


def known_header(text: str) -> bool:
    """Whether a header cell names a field of any record kind."""
    key = _header_key(split_header(text)[0])
    return any(key in names for names in _HEADER_INDEX.values())


def _found_fields(kind: RecordKind, cells: list[Any]) -> set[str]:
    names = _HEADER_INDEX[kind.name]
    out = set()
    for cell in cells:
        if isinstance(cell, str) and not is_empty(cell):
            f = names.get(_header_key(split_header(cell)[0]))
            if f:
                out.add(f.name)
    return out


def closest_header(header: str, among: list[Field] | None = None, cutoff: float = 0.0) -> str:
    """The known header nearest to an unknown one (for the missing-column message): among the
    headers and synonyms of ``among`` (the missing fields), or of every field; '' if none is
    at least ``cutoff`` similar."""
    import difflib

    fields = among if among is not None else [f for k in RECORD_KINDS.values() for f in k.fields]
    candidates = {_header_key(a): f for f in fields for a in (f.header_zh, *f.synonyms, f.name)}
    best = difflib.get_close_matches(_header_key(header), list(candidates), n=1, cutoff=cutoff)
    return candidates[best[0]].header_zh if best else ""


def _shown_header(cell: Any) -> str:
    """A header as received, on one line (a line break inside the cell shown as ↵)."""
    return re.sub(r"\s*\n\s*", "↵", str(cell).strip())


def _note(zh: str, en: str) -> Problem:
    return Problem(code="W003_NORMALISED", message_zh=f"已规范化：{zh}", message_en=f"Normalised: {en}")
