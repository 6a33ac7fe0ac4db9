"""Turn cells as districts type them into typed values, recording what was changed.

Headers: Chinese headers, English field names and synonyms, with full-width or half-width
brackets, spaces and line breaks, and a unit in the header (``投入资金（万元）``).
Values: units in the cell (``1.6万元``, ``710吨``), thousands separators, full-width digits,
approximate figures (``100余``, ``200多``, ``近200``, ``约50``), dates in several forms and
Excel serial numbers, empty markers (blank, ``—``, ``-``, ``/``, ``无``).

Cell by cell here; whole columns (once per distinct value) in ``ingestion.columns``.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import unicodedata
from dataclasses import dataclass
from typing import Any

import numpy as np

from ingestion.contract import Field, FieldType
from ingestion.region_codes import normalise_division_code

EMPTY_MARKERS = frozenset({"", "—", "——", "-", "--", "/", "无", "－", "―", "─", "n/a", "N/A", "null", "None"})
TOTAL_MARKERS = ("合计", "总计", "合 计", "总 计", "小计", "total")
NOTE_PREFIXES = ("注", "备注", "说明", "填报人", "填表人", "审核人", "联系电话", "负责人", "填报日期", "制表")

# unit -> (dimension, factor to the base unit: 元, 吨, 亩)
UNITS: dict[str, tuple[str, float]] = {
    "元": ("money", 1.0),
    "千元": ("money", 1e3),
    "万元": ("money", 1e4),
    "亿元": ("money", 1e8),
    "吨": ("weight", 1.0),
    "t": ("weight", 1.0),
    "万吨": ("weight", 1e4),
    "公斤": ("weight", 1e-3),
    "千克": ("weight", 1e-3),
    "kg": ("weight", 1e-3),
    "斤": ("weight", 5e-4),
    "万斤": ("weight", 5.0),
    "亩": ("land", 1.0),
    "万亩": ("land", 1e4),
    "公顷": ("land", 15.0),
}
_DIMENSION = {"元": "money", "吨": "weight", "亩": "land"}


def dimension_of(f: Field) -> str | None:
    """What a field's unit measures: money, weight, land (or None)."""
    return _DIMENSION.get(f.unit or "")


COUNT_UNITS = ("人次", "人", "户", "次", "个", "名", "项", "场", "家")
_MULTIPLIERS = {"万": 1e4, "亿": 1e8, "千": 1e3}

_NUMBER_RE = re.compile(
    r"^(?P<pre>约|近|大约|将近|接近|超过|逾)?"
    r"(?P<num>[+-]?(?:\d+(?:\.\d*)?|\.\d+))"
    r"(?P<post1>余|多|左右|以上)?"
    r"(?P<mult>万|亿|千)?"
    r"(?P<unit>元|吨|t|公斤|千克|kg|斤|亩|公顷|人次|人|户|次|个|名|项|场|家)?"
    r"(?P<post2>余|多|左右|以上|\+)?$",
    re.IGNORECASE,
)
_DATE_RES = (
    re.compile(r"^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})(?:[ t]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?$", re.IGNORECASE),
    re.compile(r"^(\d{4})年(\d{1,2})月(\d{1,2})[日号]?$"),
    re.compile(r"^(\d{4})(\d{2})(\d{2})$"),
)
# a day without its year: 6月5日, 6/5 (the year of the report period is taken)
_DAY_WITHOUT_YEAR_RES = (
    re.compile(r"^(\d{1,2})月(\d{1,2})[日号]?$"),
    re.compile(r"^(\d{1,2})/(\d{1,2})$"),
)
# an Excel serial date as the digits a CSV or text export writes (44930, 45632.0)
_SERIAL_TEXT_RE = re.compile(r"^(\d{5})(?:\.0+)?$")
_EXCEL_EPOCH = dt.date(1899, 12, 30)
# serials taken as dates: in a workbook's number cell 1954..2119; as digits in a text cell only
# 1990-01-01 .. 2100-12-31 (a five-digit text outside is more likely a typo than a date)
_SERIAL_CELL = (20000, 80000)
_SERIAL_TEXT = (32874, 73415)
_BOOL = {
    "是": True, "否": False, "yes": True, "no": False, "true": True, "false": False, "y": True, "n": False,
    "1": True, "0": False, "已签订": True, "未签订": False, "签订": True, "有": True,
}  # fmt: skip


def clean_text(value: Any) -> str:
    """NFKC (full-width -> half-width), no inner line breaks, stripped."""
    text = unicodedata.normalize("NFKC", str(value))
    return re.sub(r"\s+", " ", text).strip()


def is_empty(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    if isinstance(value, str):
        return clean_text(value) in EMPTY_MARKERS
    return False


# --------------------------------------------------------------------------- values


@dataclass
class Parsed:
    value: Any = None
    approximate: bool = False
    error: str | None = None  # a reason code
    changed: bool = False  # the text had to be normalised (unit, separator, full-width ...)
    how: str | None = None  # a normalisation worth its own note: 'excel_serial', 'no_year'


# what each kind of normalisation is called in a note (zh, en)
SPECIAL_NOTES: dict[str, tuple[str, str]] = {
    "excel_serial": ("Excel 日期序列号", "Excel serial date"),
    "no_year": ("日期未写年份，按报告期补全", "date has no year; the period's year gives"),
}


def parse_number(raw: Any, factor: float = 1.0, dimension: str | None = None) -> Parsed:
    """A number as districts type it. ``dimension``: money, weight, land (a unit in the cell
    converts; a unit of another dimension, or a count's 人/户/个, is no number here) or count
    (人, 人次, 户, 个, 次 ... are allowed; a measure unit is not)."""
    if is_empty(raw):
        return Parsed()
    if isinstance(raw, bool):
        return Parsed(error="R002_NOT_A_NUMBER")
    if isinstance(raw, (int, np.integer)):
        return Parsed(float(raw) * factor)
    if isinstance(raw, (float, np.floating)):
        return Parsed(float(raw) * factor)
    original = str(raw)
    text = unicodedata.normalize("NFKC", original)
    text = re.sub(r"[\s,，']", "", text)
    m = _NUMBER_RE.match(text)
    if not m:
        return Parsed(error="R002_NOT_A_NUMBER")
    number = float(m.group("num"))
    approximate = bool(m.group("pre") or m.group("post1") or m.group("post2"))
    mult = _MULTIPLIERS.get(m.group("mult") or "", 1.0)
    unit = m.group("unit")
    if unit and dimension is not None and (unit in COUNT_UNITS) != (dimension == "count"):
        return Parsed(error="R002_NOT_A_NUMBER")  # '5户' in an amount, '3吨' in a count
    if unit and unit.lower() in UNITS:
        dim, unit_factor = UNITS[unit.lower()] if unit.lower() in UNITS else UNITS[unit]
        if dimension and dim != dimension and dimension != "count":
            return Parsed(error="R002_NOT_A_NUMBER")
        value = number * mult * unit_factor  # the cell's own unit wins over the header's
    elif mult != 1.0 and dimension == "money":
        value = number * mult  # '5000万' in a money column: 万 means 万元
    else:
        value = number * mult * factor
    changed = approximate or text != original.strip() or unit is not None or mult != 1.0
    return Parsed(value, approximate, changed=changed)


def parse_date(raw: Any, year: int | None = None) -> Parsed:
    """A date as districts type it; ``year`` (the report period's) completes a day written
    without its year (``6月5日``, ``6/5``)."""
    if is_empty(raw):
        return Parsed()
    if isinstance(raw, dt.datetime):
        return Parsed(raw.date())
    if isinstance(raw, dt.date):
        return Parsed(raw)
    if isinstance(raw, (int, float, np.integer, np.floating)) and not isinstance(raw, bool):
        serial = float(raw)
        if _SERIAL_CELL[0] <= serial <= _SERIAL_CELL[1] and serial == int(serial):  # Excel serial: 1954 .. 2119
            return Parsed(_EXCEL_EPOCH + dt.timedelta(days=int(serial)), changed=True, how="excel_serial")
        if 19000101 <= serial <= 21001231:
            raw = str(int(serial))
        else:
            return Parsed(error="R003_NOT_A_DATE")
    return _parse_date_text(clean_text(raw), year)


def _parse_date_text(text: str, year: int | None) -> Parsed:
    for pattern in _DATE_RES:
        m = pattern.match(text)
        if m:
            try:
                value = dt.date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
            except ValueError:
                return Parsed(error="R003_NOT_A_DATE")
            return Parsed(value, changed=not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text))
    m = _SERIAL_TEXT_RE.match(text)
    if m and _SERIAL_TEXT[0] <= int(m.group(1)) <= _SERIAL_TEXT[1]:
        return Parsed(_EXCEL_EPOCH + dt.timedelta(days=int(m.group(1))), changed=True, how="excel_serial")
    if year is not None:
        for pattern in _DAY_WITHOUT_YEAR_RES:
            m = pattern.match(text)
            if m:
                try:
                    value = dt.date(year, int(m.group(1)), int(m.group(2)))
                except ValueError:
                    return Parsed(error="R003_NOT_A_DATE")
                return Parsed(value, changed=True, how="no_year")
    return Parsed(error="R003_NOT_A_DATE")


def parse_enum(raw: Any, f: Field) -> Parsed:
    if is_empty(raw):
        return Parsed()
    text = clean_text(raw)
    assert f.codes is not None
    if text in f.codes:
        return Parsed(text)
    for code, label in f.codes.items():
        if text == label:
            return Parsed(code)
    return Parsed(text)  # unknown: GX reports R006 with the value as received


def parse_bool(raw: Any) -> Parsed:
    if is_empty(raw):
        return Parsed()
    if isinstance(raw, bool):
        return Parsed(raw)
    value = _BOOL.get(clean_text(raw).lower())
    return Parsed(error="R015_BAD_BOOL") if value is None else Parsed(value)


def parse_code(raw: Any) -> Parsed:
    if is_empty(raw):
        return Parsed()
    code = normalise_division_code(raw)
    if code is None:
        return Parsed(error="R007_BAD_DIVISION_CODE")
    return Parsed(code, changed=code != str(raw).strip())


TEXT_LIMIT = 500


def parse_text(raw: Any) -> Parsed:
    if is_empty(raw):
        return Parsed()
    if isinstance(raw, float) and raw == int(raw):
        raw = int(raw)  # a code typed as a number: 1001.0 -> '1001'
    text = re.sub(r"\s+", " ", str(raw)).strip()
    if len(text) > TEXT_LIMIT:
        return Parsed(error="R016_TEXT_TOO_LONG")
    return Parsed(text)


def parse_cell(f: Field, raw: Any, factor: float = 1.0, year: int | None = None) -> Parsed:
    t = f.type
    if t in (FieldType.MONEY, FieldType.NUMBER, FieldType.COUNT):
        dimension = "count" if t == FieldType.COUNT else _DIMENSION.get(f.unit or "")
        p = parse_number(raw, factor, dimension)
        if p.value is not None and t == FieldType.COUNT and p.value != int(p.value):
            return Parsed(error="R005_NOT_INTEGER")
        if p.value is not None and t == FieldType.MONEY:
            p.value = round(p.value, 2)
        if p.value is not None and t == FieldType.NUMBER:
            p.value = round(p.value, 3)
        return p
    if t == FieldType.DATE:
        return parse_date(raw, year)
    if t == FieldType.ENUM:
        return parse_enum(raw, f)
    if t == FieldType.BOOL:
        return parse_bool(raw)
    if t == FieldType.CODE:
        return parse_code(raw)
    return parse_text(raw)


def first_cell_text(cells: list[Any]) -> str:
    for c in cells:
        if not is_empty(c):
            return clean_text(c)
    return ""


def is_total_row(cells: list[Any]) -> bool:
    head = [clean_text(c).replace(" ", "").lower() for c in cells[:4] if not is_empty(c)]
    return bool(head) and any(h.startswith(m.replace(" ", "")) for h in head[:1] for m in TOTAL_MARKERS)


SUBTOTAL_MARKERS = ("小计", "subtotal")


def is_subtotal_row(cells: list[Any]) -> bool:
    """A 小计 (group subtotal) row: a total row that does not close the table."""
    head = [clean_text(c).replace(" ", "").lower() for c in cells[:4] if not is_empty(c)]
    return bool(head) and head[0].startswith(SUBTOTAL_MARKERS)


def is_note_row(cells: list[Any]) -> bool:
    filled = [c for c in cells if not is_empty(c)]
    if not filled:
        return False
    text = clean_text(filled[0])
    return len(filled) <= 2 and text.startswith(NOTE_PREFIXES)
