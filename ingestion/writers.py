"""Submission files written the way the contract's own template lays them out (canonical).

``Submission`` is one unit × period: rows per record kind. ``csv_bytes``, ``json_bytes`` and
``xlsx_bytes`` write it as a CSV per kind, the JSON envelope, or a workbook with a sheet per
kind, with the contract's Chinese headers. The same rows give the same bytes (xlsx with a
fixed creation date). Used by the demo (``ingestion.demo``) and the national benchmark
(``ingestion.national``).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import xlsxwriter

from ingestion.contract import RECORD_KINDS, FieldType, RecordKind

KIND_ORDER: tuple[str, ...] = ("pairings", "activities", "projects", "income_effects")
# every xlsx carries this as its creation date (docProps/core.xml), whatever the clock says
FIXED_CREATED = dt.datetime(2025, 1, 1, 8, 0, 0)


@dataclass
class Submission:
    """One unit × period: rows per record kind; bad rows carry the code they should get."""

    unit: str
    period: str
    fmt: str
    rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    bad: dict[int, str] = field(default_factory=dict)  # id(row) -> expected row-level code

    def good_rows(self, kind: str) -> list[dict[str, Any]]:
        return [r for r in self.rows.get(kind, []) if id(r) not in self.bad]


# --------------------------------------------------------------------------- cell values


def _label(f_codes: dict[str, str] | None, value: Any) -> Any:
    return f_codes.get(value, value) if f_codes else value


def _csv_cell(ftype: FieldType, codes: dict[str, str] | None, value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, dt.date):
        return value.isoformat()
    if ftype == FieldType.ENUM:
        return str(_label(codes, value))
    return str(value)


def _json_value(value: Any) -> Any:
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


def csv_bytes(kind: RecordKind, rows: Sequence[dict[str, Any]]) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow([f.header_with_unit for f in kind.fields])
    for row in rows:
        writer.writerow([_csv_cell(f.type, f.codes, row.get(f.name)) for f in kind.fields])
    return buf.getvalue().encode("utf-8")


def json_bytes(sub: Submission) -> bytes:
    doc: dict[str, Any] = {"reporting_unit_code": sub.unit, "period": sub.period}
    for kind in KIND_ORDER:
        if kind in sub.rows:
            names = RECORD_KINDS[kind].field_names
            doc[kind] = [{n: _json_value(row.get(n)) for n in names} for row in sub.rows[kind]]
    return (json.dumps(doc, ensure_ascii=False, indent=2) + "\n").encode("utf-8")


_COLUMN_WIDTH = {FieldType.DATE: 12, FieldType.CODE: 15, FieldType.TEXT: 18, FieldType.ENUM: 10}


def xlsx_bytes(sub: Submission) -> bytes:
    buf = io.BytesIO()
    wb = xlsxwriter.Workbook(buf, {"in_memory": True, "strings_to_numbers": False, "strings_to_formulas": False})
    wb.set_properties({"created": FIXED_CREATED, "author": "pairstats demo", "title": f"{sub.unit} {sub.period}"})
    fmt_date = wb.add_format({"num_format": "yyyy-mm-dd"})
    fmt_decimal = wb.add_format({"num_format": "0.00"})
    fmt_head = wb.add_format({"bold": True})
    for kind_name in KIND_ORDER:
        if kind_name not in sub.rows:
            continue
        kind = RECORD_KINDS[kind_name]
        ws = wb.add_worksheet(kind.label_zh)
        for c, f in enumerate(kind.fields):
            ws.write_string(0, c, f.header_with_unit, fmt_head)
            ws.set_column(c, c, max(_COLUMN_WIDTH.get(f.type, 10), len(f.header_with_unit) * 2))
            for r, row in enumerate(sub.rows[kind_name], start=1):
                _xlsx_cell(ws, r, c, f.type, f.codes, row.get(f.name), fmt_date, fmt_decimal)
        ws.freeze_panes(1, 0)
    wb.close()
    return buf.getvalue()


def _xlsx_cell(ws: Any, r: int, c: int, ftype: FieldType, codes: Any, value: Any, fmt_date: Any, fmt_dec: Any) -> None:
    if value is None:
        return
    if isinstance(value, bool):
        ws.write_string(r, c, "是" if value else "否")
    elif isinstance(value, dt.date):
        ws.write_datetime(r, c, dt.datetime.combine(value, dt.time()), fmt_date)
    elif isinstance(value, Decimal):
        ws.write_number(r, c, float(value), fmt_dec)
    elif isinstance(value, int):
        ws.write_number(r, c, value)
    else:  # text, codes (as text: never let Excel turn 652801412005 into a number), labels
        ws.write_string(r, c, str(_label(codes, value) if ftype == FieldType.ENUM else value))
