"""Where a table's header is, and what its columns are: one header row or two.

Offices often write a header over two rows: a group cell merged over its sub-columns
(``参与人数`` over ``合计`` | ``其中党员``), the other headers merged down over both rows.
``locate_header`` finds the header among the first rows of a sheet or file and, when the row
under it is such a sub-header row, composes one name per column: the group's own field for a
total sub-column (``参与人数``+``合计`` → participants), the composed name where it is a header
(``农产品``+``销售量（吨）`` → 农产品销售量（吨）), else the sub-column alone where it is one
(``参与人数``+``其中党员`` → 其中党员 → party members). Merged cells read as an empty cell
right of (or under) the cell that holds the text, so the group spans are found from the
layout of the text itself, with or without merge information (a CSV has none).

``header_notes`` says what was read: the two-row header, and columns that are not data
(序号, 备注: recognised and ignored) or not in the contract (ignored).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from ingestion.contract import RecordKind
from ingestion.headers import ColumnMap, detect_kind, known_header, split_header
from ingestion.normalise import clean_text, is_empty
from ingestion.problems import Problem

HEADER_SCAN_ROWS = 30
# a sub-column that is the group's own total: 参与人数 / 合计 is 参与人数
TOTAL_SUBCOLUMNS = frozenset({"合计", "小计", "总计", "总数", "计", "人数", "合计人数", "总人数", "数量", "小计数"})
# columns offices add that are not data
NOT_DATA_COLUMNS = frozenset({"序号", "序", "行号", "编号序号", "no", "no.", "备注", "说明", "备注说明", "附注"})


@dataclass(frozen=True)
class Header:
    index: int  # 0-based row of the (first) header row in the rows given
    rows: int  # 1, or 2 for a header over two rows
    kind: RecordKind
    cells: list[Any]  # per column: the text the fields are matched by
    shown: list[str]  # per column: as written ('参与人数/合计' for a composed one)
    composed: tuple[int, ...] = ()  # columns whose name was composed from two rows


def locate_header(rows: list[list[Any]], scan: int = HEADER_SCAN_ROWS) -> Header | None:
    for i, cells in enumerate(rows[:scan]):
        if i + 1 < len(rows):
            two = _compose(cells, rows[i + 1])
            if two is not None:
                composed_cells, shown, composed = two
                kind = detect_kind(composed_cells)
                if kind is not None:
                    return Header(i, 2, kind, composed_cells, shown, composed)
        kind = detect_kind(cells)
        if kind is not None:
            return Header(i, 1, kind, list(cells), [_shown(c) for c in cells])
    return None


def _shown(cell: Any) -> str:
    return "" if is_empty(cell) else clean_text(cell)


def _is_text(cell: Any) -> bool:
    return isinstance(cell, str) and not is_empty(cell)


def _compose(top: list[Any], below: list[Any]) -> tuple[list[Any], list[str], tuple[int, ...]] | None:
    """The composed header if ``below`` is a sub-header row of ``top``, else None.

    ``below`` qualifies when all its filled cells are text (no data row), each lies under a
    group of ``top`` (a cell followed by empty cells: its merged span) that spans two columns
    or more, and ``top`` has at least one cell that is a known header on its own (a title or
    a 填报单位 line above a header is never a group row)."""
    filled = [q for q, c in enumerate(below) if not is_empty(c)]
    if not filled or any(not _is_text(below[q]) or isinstance(below[q], dt.date) for q in filled):
        return None
    heads = [p for p, c in enumerate(top) if not is_empty(c)]
    if len(heads) < 2 or not any(_is_text(top[p]) and known_header(str(top[p])) for p in heads):
        return None
    width = max(len(top), len(below))
    owner: dict[int, int] = {}
    span: dict[int, int] = {}
    for n, p in enumerate(heads):
        end = heads[n + 1] if n + 1 < len(heads) else width
        span[p] = end - p
        for q in range(p, end):
            owner[q] = p
    if any(q not in owner or span[owner[q]] < 2 for q in filled):
        return None
    cells: list[Any] = []
    shown: list[str] = []
    composed: list[int] = []
    for q in range(width):
        group = top[q] if q < len(top) else None
        sub = below[q] if q < len(below) else None
        if is_empty(sub):
            cells.append(group if not is_empty(group) else None)
            shown.append(_shown(group))
            continue
        group_text = clean_text(top[owner[q]])
        cells.append(_composed_name(group_text, clean_text(sub)))
        shown.append(f"{group_text}/{clean_text(sub)}")
        composed.append(q)
    return cells, shown, tuple(composed)


def _composed_name(group: str, sub: str) -> str:
    """The name a group and its sub-column are matched by (see the module's docstring)."""
    if sub.replace(" ", "") in TOTAL_SUBCOLUMNS:
        return group
    sub_base, sub_unit = split_header(sub)
    group_base, group_unit = split_header(group)
    unit = sub_unit or group_unit
    joined = f"{group_base}{sub_base}" + (f"（{unit}）" if unit else "")
    if known_header(joined):
        return joined
    alone = sub if sub_unit or not group_unit else f"{sub_base}（{group_unit}）"
    return alone if known_header(alone) else f"{group}/{sub}"


def header_notes(header: Header, columns: list[ColumnMap], sheet: str | None, first_row_number: int) -> list[Problem]:
    """What reading this header did: a two-row header, and the columns left out."""
    notes: list[Problem] = []
    row = first_row_number + header.index
    by_position = {c.position: c for c in columns}
    if header.rows == 2:
        read = "、".join(
            f"{header.shown[q]}→{by_position[q].field.header_zh}" for q in header.composed if q in by_position
        )
        read_en = ", ".join(
            f"{header.shown[q]} → {by_position[q].field.name}" for q in header.composed if q in by_position
        )
        notes.append(
            Problem(
                "W003_NORMALISED",
                f"已规范化：“{sheet}”表头跨两行（第 {row}–{row + 1} 行），按组合表头识别：{read}",
                f"Normalised: '{sheet}' header over two rows (rows {row}-{row + 1}), read as composed: {read_en}",
                sheet=sheet,
                row=row,
            )
        )
    for q, text in enumerate(header.shown):
        if not text or q in by_position:
            continue
        name = text.split("/")[-1]
        if name.replace(" ", "").lower() in NOT_DATA_COLUMNS:
            zh, en = f"“{text}”列不是数据，已忽略", f"column '{text}' is not data; ignored"
        else:
            zh, en = f"“{text}”列不在报送制度内，已忽略", f"column '{text}' is not in the contract; ignored"
        notes.append(
            Problem("W003_NORMALISED", f"已规范化：“{sheet}”{zh}", f"Normalised: '{sheet}' {en}", sheet=sheet, row=row)
        )
    return notes
