"""``pairstats template OUT.xlsx``: the workbook districts fill in.

Written from the contract (``ingestion/contract.py``), so it always matches what the
ingester reads:

- a cover sheet ``填报信息`` with the 填报单位 / 报告期 / 填报人 / 联系电话 block (unit and
  period filled in when given; the reader takes them from there, 填报人 and 联系电话 never
  leave the file);
- one sheet per record kind, named after it, with the contract's Chinese headers in row 1
  exactly as the reader knows them (so a filled-in template needs no normalisation), the
  English field name of every column in the header's note and in the defined name
  ``<kind>.<field>``, drop-down lists for every code list and 是/否 (the 结对编号 columns list
  the pairings of the ``结对关系`` sheet, including ones added there), number, date and text
  formats on the cells (codes as text, so Excel never turns a 12-digit code into 3.7E+11) and
  data validation for counts, amounts and dates;
- ``结对关系`` pre-filled with the unit's registered pairings (their latest state in the
  warehouse) when a unit is given;
- ``填表说明``: every column with its field name, type and rule; a hidden ``_contract`` sheet
  with the code lists and the field list, machine-readable.

Every value is written with ``write_string``/``write_number``/``write_datetime``: nothing
from the warehouse can become a formula.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import xlsxwriter
from xlsxwriter.utility import xl_col_to_name

from ingestion.contract import PAIRINGS, Field, FieldType, RecordKind, kinds_in_load_order
from ingestion.metadata import Period

DATA_ROWS = 1000  # rows formatted and validated under each header
COVER_SHEET = "填报信息"
HELP_SHEET = "填表说明"
CONTRACT_SHEET = "_contract"

_TYPE_ZH = {
    FieldType.TEXT: ("文本", "text"),
    FieldType.CODE: ("区划代码（文本）", "division code (as text)"),
    FieldType.DATE: ("日期", "date"),
    FieldType.COUNT: ("整数", "whole number"),
    FieldType.MONEY: ("金额（元）", "amount (yuan)"),
    FieldType.NUMBER: ("数量", "quantity"),
    FieldType.ENUM: ("下拉选择", "choose from the list"),
    FieldType.BOOL: ("是 / 否", "yes / no"),
}

# rules that the type and bounds do not say, by field name
_RULES: dict[str, tuple[str, str]] = {
    "pairing_code": (
        "同一填报单位内唯一；其他表须为已登记的结对",
        "unique within the unit; elsewhere a registered pairing",
    ),
    "urban_unit_code": ("须在区划代码库中（12 位社区或 9 位街道代码）", "must be in the region register"),
    "rural_unit_code": ("须在区划代码库中（12 位村或 9 位乡镇代码）", "must be in the region register"),
    "paired_on": ("不晚于今天", "not in the future"),
    "ended_on": ("不早于结对日期", "not before the pairing date"),
    "activity_date": ("须在本报告期内", "inside the report period"),
    "party_member_participants": ("不大于参与人数", "at most the participants"),
    "project_code": ("同一填报单位内唯一", "unique within the unit"),
    "collective_income_increase_yuan": ("可为负数（亏损），将提示核实", "may be negative (a loss); flagged"),
    "land_mu": ("1 亩 = 666.67 平方米", "1 mu = 666.67 m²"),
}


@dataclass(frozen=True)
class UnitInfo:
    code: str
    name: str
    pairings: list[dict[str, Any]]  # latest state of each registered pairing, contract field names


def unit_info(conn: Any, code: str, period: Period | None = None) -> UnitInfo:
    """The unit's name and its registered pairings (latest reported state of each; pairings
    that ended before the period are left out)."""
    from ingestion.region_codes import normalise_division_code

    canonical = normalise_division_code(code)
    row = conn.execute(
        "select name from ref.regions where code = %s order by tree limit 1", (canonical or code,)
    ).fetchone()
    if canonical is None or row is None:
        raise ValueError(f"reporting unit {code!r} is not in the region register / 填报单位代码不在区划代码库中")
    fields = ", ".join(f"p.{f.name}" for f in PAIRINGS.fields)
    rows = conn.execute(
        f"""select distinct on (p.pairing_code) {fields}
            from raw.pairings p
            join audit.submission_versions v
              on v.submission_id = p.submission_id and v.record_kind = 'pairings' and v.is_current
            where p.reporting_unit_code = %s and (p.ended_on is null or p.ended_on >= %s)
            -- the same order as dbt's int_pairings_historised: a registration (no period)
            -- counts from the month its pairing took effect
            order by p.pairing_code,
                     coalesce(v.period_start, date_trunc('month', p.paired_on)::date) desc,
                     v.receipt_id desc""",
        (canonical, period.start if period else dt.date.min),
    ).fetchall()
    names = [f.name for f in PAIRINGS.fields]
    return UnitInfo(canonical, row[0], [dict(zip(names, r, strict=True)) for r in rows])


class _Formats:
    def __init__(self, wb: xlsxwriter.Workbook) -> None:
        self.header = wb.add_format(
            {"bold": True, "bg_color": "#DDEBF7", "border": 1, "text_wrap": True, "valign": "vcenter"}
        )
        self.title = wb.add_format({"bold": True, "font_size": 14})
        self.label = wb.add_format({"bold": True})
        self.text = wb.add_format({"num_format": "@"})
        self.date = wb.add_format({"num_format": "yyyy-mm-dd"})
        self.count = wb.add_format({"num_format": "0"})
        self.money = wb.add_format({"num_format": "#,##0.00"})
        self.number = wb.add_format({"num_format": "0.000"})
        self.wrap = wb.add_format({"text_wrap": True, "valign": "top"})

    def for_field(self, f: Field) -> Any:
        return {
            FieldType.DATE: self.date,
            FieldType.COUNT: self.count,
            FieldType.MONEY: self.money,
            FieldType.NUMBER: self.number,
        }.get(f.type, self.text)


def write_template(out: Path, *, unit: UnitInfo | None = None, period: Period | None = None) -> Path:
    """Write the fill-in workbook to ``out`` (overwritten)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    wb = xlsxwriter.Workbook(str(out), {"strings_to_numbers": False, "strings_to_formulas": False})
    wb.set_properties(
        {
            "title": "城乡结对共建统计报表 / Urban–rural pairing statistics",
            "subject": "pairstats submission contract v1",
            "comments": "Generated by `pairstats template`; headers and code lists follow the contract.",
        }
    )
    fmt = _Formats(wb)
    _cover(wb.add_worksheet(COVER_SHEET), fmt, unit, period)
    kinds = kinds_in_load_order()
    contract = wb.add_worksheet(CONTRACT_SHEET)
    lists = _contract_sheet(contract, kinds)
    for kind in kinds:
        ws = wb.add_worksheet(kind.label_zh)
        _data_sheet(wb, ws, kind, fmt, lists)
        if kind.name == "pairings" and unit is not None:
            _prefill_pairings(ws, kind, fmt, unit.pairings)
    _help_sheet(wb.add_worksheet(HELP_SHEET), kinds, fmt)
    contract.hide()
    wb.worksheets()[0].activate()
    wb.close()
    return out


def _cover(ws: Any, fmt: _Formats, unit: UnitInfo | None, period: Period | None) -> None:
    title = "城乡结对共建统计表"
    if period is not None:
        title = f"{_period_zh(period)}{title}"
    ws.write_string(0, 0, title, fmt.title)
    ws.write_string(1, 0, "Urban–rural pairing statistics · 请填写下列信息，并在各表中逐行填报")
    labels = (
        ("填报单位：", f"{unit.name}（{unit.code}）" if unit else ""),
        ("报告期：", period.code if period else ""),
        ("填报人：", ""),
        ("联系电话：", ""),
    )
    for i, (label, value) in enumerate(labels, start=3):
        ws.write_string(i, 0, label, fmt.label)
        ws.write_string(i, 1, value, fmt.text)
    notes = (
        # no "填报单位：" / "报告期：" in these notes: labelled lines on this sheet are read as the block
        "填报单位一栏填写区划名称和 6 位区划代码，如“某某区（6 位代码）”。",
        "报告期一栏填写 2024-06（月报）或 2024Q2（季报）。填报人、联系电话仅供核对，不进入数据仓库。",
        "The reporting unit is the 6-digit division code; the period is 2024-06 or 2024Q2.",
        "The contact person and phone stay in this file: they never reach the warehouse.",
    )
    for i, text in enumerate(notes, start=8):
        ws.write_string(i, 0, text)
    ws.set_column(0, 0, 14)
    ws.set_column(1, 1, 40)


def _period_zh(period: Period) -> str:
    if period.grain == "quarter":
        return f"{period.start.year}年第{'一二三四'[int(period.code[-1]) - 1]}季度"
    return f"{period.start.year}年{period.start.month}月"


def _contract_sheet(ws: Any, kinds: Sequence[RecordKind]) -> dict[str, str]:
    """Code lists (one column each) and the field list; returns field name -> list range."""
    ranges: dict[str, str] = {}
    col = 0
    seen: dict[tuple[str, ...], str] = {}
    for kind in kinds:
        for f in kind.fields:
            labels: tuple[str, ...] | None = None
            if f.type == FieldType.ENUM and f.codes:
                labels = tuple(f.codes.values())
            elif f.type == FieldType.BOOL:
                labels = ("是", "否")
            if labels is None or f.name in ranges:
                continue
            if labels in seen:
                ranges[f.name] = seen[labels]
                continue
            ws.write_string(0, col, f"代码表:{f.header_zh} / codes: {f.name}")
            for r, label in enumerate(labels, start=1):
                ws.write_string(r, col, label)
            letter = xl_col_to_name(col)
            ranges[f.name] = seen[labels] = f"='{CONTRACT_SHEET}'!${letter}$2:${letter}${len(labels) + 1}"
            col += 1
    col += 1
    for c, head in enumerate(("record_kind", "field", "header", "type", "required")):
        ws.write_string(0, col + c, head)
    r = 1
    for kind in kinds:
        for f in kind.fields:
            for c, value in enumerate((kind.name, f.name, f.header_with_unit, f.type.value, str(f.required).lower())):
                ws.write_string(r, col + c, value)
            r += 1
    return ranges


def _data_sheet(wb: Any, ws: Any, kind: RecordKind, fmt: _Formats, lists: dict[str, str]) -> None:
    last = DATA_ROWS  # 0-based index of the last data row
    pairings_sheet = PAIRINGS.label_zh
    ws.freeze_panes(1, 0)
    ws.set_row(0, 32)
    for c, f in enumerate(kind.fields):
        header = f.header_with_unit
        ws.write_string(0, c, header, fmt.header)
        type_zh, type_en = _TYPE_ZH[f.type]
        need = "必填" if f.required else "选填"
        ws.write_comment(
            0,
            c,
            f"{f.name}\n{type_zh}，{need} / {type_en}, {'required' if f.required else 'optional'}",
            {"author": "pairstats"},
        )
        width = max(10, min(24, 2 * len(header) + 2))
        ws.set_column(c, c, width, fmt.for_field(f))
        letter = xl_col_to_name(c)
        wb.define_name(f"{kind.name}.{f.name}", f"='{kind.label_zh}'!${letter}$2:${letter}${last + 1}")
        validation = _validation(f, lists)
        if f.name == "pairing_code" and kind.name != "pairings":
            validation = {
                "validate": "list",
                "source": f"='{pairings_sheet}'!$A$2:$A${last + 1}",
                "error_type": "warning",  # a pairing registered earlier need not be listed again
                "input_title": "结对编号",
                "input_message": "选择或填写已登记的结对编号",
            }
        if validation:
            ws.data_validation(1, c, last, c, validation)


def _validation(f: Field, lists: dict[str, str]) -> dict[str, Any] | None:
    if f.name in lists:
        return {
            "validate": "list",
            "source": lists[f.name],
            "error_title": f.header_zh,
            "error_message": "请从下拉列表中选择",
        }
    if f.type == FieldType.COUNT:
        return {
            "validate": "integer",
            "criteria": ">=",
            "value": 0,
            "error_title": f.header_zh,
            "error_message": "请填写不小于 0 的整数 / a whole number of at least 0",
        }
    if f.type in (FieldType.MONEY, FieldType.NUMBER):
        if f.min_value is None:
            return {"validate": "decimal", "criteria": "between", "minimum": -1e15, "maximum": 1e15}
        return {
            "validate": "decimal",
            "criteria": ">=",
            "value": f.min_value,
            "error_title": f.header_zh,
            "error_message": f"请填写不小于 {f.min_value:g} 的数字（单位：{f.unit or ''}）",
        }
    if f.type == FieldType.DATE:
        return {
            "validate": "date",
            "criteria": "between",
            "minimum": dt.date(2000, 1, 1),
            "maximum": dt.date(2100, 12, 31),
            "error_title": f.header_zh,
            "error_message": "请填写日期，如 2024-06-05 / a date such as 2024-06-05",
        }
    return None


def _prefill_pairings(ws: Any, kind: RecordKind, fmt: _Formats, pairings: Sequence[dict[str, Any]]) -> None:
    for r, row in enumerate(pairings, start=1):
        for c, f in enumerate(kind.fields):
            value = row.get(f.name)
            if value is None:
                continue
            if f.type == FieldType.DATE:
                ws.write_datetime(r, c, dt.datetime.combine(value, dt.time.min), fmt.date)
            elif f.type == FieldType.BOOL:
                ws.write_string(r, c, "是" if value else "否")
            elif f.type == FieldType.ENUM and f.codes:
                ws.write_string(r, c, f.codes.get(value, str(value)))
            else:
                ws.write_string(r, c, str(value), fmt.text)


def _help_sheet(ws: Any, kinds: Sequence[RecordKind], fmt: _Formats) -> None:
    heads = ("工作表 sheet", "表头 header", "字段 field", "类型 type", "必填 required", "规则 rule")
    for c, head in enumerate(heads):
        ws.write_string(0, c, head, fmt.header)
    r = 1
    for kind in kinds:
        for f in kind.fields:
            type_zh, type_en = _TYPE_ZH[f.type]
            rule = _RULES.get(f.name)
            bounds = "≥ 0" if f.min_value == 0 else ""
            rule_text = " ".join(x for x in (bounds, f"{rule[0]} / {rule[1]}" if rule else "") if x)
            if f.codes:
                rule_text = (rule_text + " " if rule_text else "") + "、".join(f.codes.values())
            values = (
                kind.label_zh,
                f.header_with_unit,
                f.name,
                f"{type_zh} / {type_en}",
                "是 yes" if f.required else "否 no",
                rule_text,
            )
            for c, value in enumerate(values):
                ws.write_string(r, c, value, fmt.wrap)
            r += 1
    ws.write_string(r + 1, 0, "一个文件为一个报告期；同一单位、报告期、表的新文件视为更正，替代此前的文件。")
    ws.write_string(
        r + 2, 0, "One file covers one period; a later file for the same unit, period and sheet is a correction."
    )
    for c, width in enumerate((10, 22, 32, 22, 10, 60)):
        ws.set_column(c, c, width)
