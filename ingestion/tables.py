"""What every reader produces: tables of raw cells, and the rules shared by all layouts.

A ``Table`` is one record kind found in a file (a workbook sheet, a text file, a key of the
JSON envelope): where its header is, which column is which field, and its data rows in
chunks of raw cells with their source row numbers. A 合计/总计 row is kept aside for
reconciliation, 小计 rows are set aside as subtotals, notes below the table are dropped.
Nothing is evaluated: a cell starting with ``=`` is text.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ingestion.contract import RecordKind
from ingestion.headers import ColumnMap, closest_header, has_column, match_header
from ingestion.layout import Header, header_notes, locate_header
from ingestion.normalise import clean_text, is_empty, is_note_row, is_subtotal_row, is_total_row
from ingestion.problems import FileRejected, Problem

CHUNK_ROWS = 250_000
# after a total row, a row with fewer filled cells than this is a note, not data
NOTE_AFTER_TOTAL_CELLS = 3


@dataclass
class Table:
    kind: RecordKind
    sheet: str | None  # sheet name, file name, or json key
    header_row: int  # 1-based (the first one of a two-row header)
    columns: list[ColumnMap]
    chunks: Iterator[pd.DataFrame]  # columns: field names (raw cells) + '_row'
    preamble: list[list[Any]] = field(default_factory=list)  # rows above the header
    total_row: dict[str, Any] | None = None  # the last 合计/总计 row, filled while chunks are consumed
    subtotal_rows: list[int] = field(default_factory=list)  # 小计 rows (and earlier 合计 rows), not data
    first_total_row: int | None = None  # below it, a row with few filled cells is a note
    notes: list[Problem] = field(default_factory=list)  # normalisations applied
    header_rows: int = 1


@dataclass
class ReadResult:
    file_format: str  # what the file is, whatever its name says: xlsx, xls, ods, csv, tsv, json
    tables: list[Table]
    encoding: str | None = None
    envelope: dict[str, Any] = field(default_factory=dict)  # json: reporting_unit_code, period
    preamble_text: list[str] = field(default_factory=list)  # title rows, 填报单位 block
    notes: list[Problem] = field(default_factory=list)
    _cleanup: list[Callable[[], None]] = field(default_factory=list)

    def close(self) -> None:
        """Remove what reading left behind (a transcoded copy of a UTF-16 file)."""
        while self._cleanup:
            self._cleanup.pop()()


def note(zh: str, en: str, **where: Any) -> Problem:
    return Problem("W003_NORMALISED", f"已规范化：{zh}", f"Normalised: {en}", **where)


def missing_columns(kind: RecordKind, columns: list[ColumnMap], header_cells: list[Any]) -> Problem | None:
    found = {c.field.name for c in columns}
    missing = [f for f in kind.fields if f.required and not has_column(f, found)]
    if kind.at_least_one and not found.intersection(kind.at_least_one):
        missing += [kind.get(name) for name in kind.at_least_one]
    if not missing:
        return None
    unknown = [clean_text(c) for c in header_cells if not is_empty(c)]
    unmatched = [h for h in unknown if h not in {clean_text(c.header) for c in columns}]
    # an unknown header is most likely one of the missing columns misspelt: say which
    hints = [f"{h}→{closest_header(h, missing, cutoff=0.3) or closest_header(h)}" for h in unmatched[:3]]
    return Problem.make(
        "F011_MISSING_COLUMNS",
        kind=kind.name,
        kind_zh=kind.label_zh,
        missing="、".join(f"{f.header_zh}({f.name})" for f in missing),
        found="、".join(unknown) + (f"（最接近 / closest: {'; '.join(hints)}）" if hints else ""),
    )


def table_for(header: Header, sheet: str | None, first_row_number: int, rows_above: list[list[Any]]) -> Table:
    """The table a located header opens: its columns (refused if a required one is missing),
    and the notes on what reading its header did."""
    columns, notes = match_header(header.kind, header.cells)
    missing = missing_columns(header.kind, columns, header.cells)
    if missing is not None:
        raise FileRejected(missing)
    row = first_row_number + header.index
    table = Table(
        kind=header.kind, sheet=sheet, header_row=row, columns=columns, chunks=iter(()), header_rows=header.rows
    )
    table.preamble = rows_above
    for n in notes:
        n.sheet = n.sheet or sheet
        n.row = n.row or row
    table.notes = notes + header_notes(header, columns, sheet, first_row_number)
    if header.index:
        table.notes.append(
            note(
                f"“{sheet}”跳过表头上方 {header.index} 行（标题、填报单位信息）",
                f"'{sheet}' skipped {header.index} row(s) above the header (title, reporting block)",
                sheet=sheet,
            )
        )
    return table


def frame(columns: list[ColumnMap], rows: list[list[Any]], row_numbers: list[int]) -> pd.DataFrame:
    data: dict[str, Any] = {}
    for c in columns:
        data[c.field.name] = [r[c.position] if c.position < len(r) else None for r in rows]
    out = pd.DataFrame(data, dtype=object)
    out["_row"] = row_numbers
    return out


def set_aside_total(table: Table, cells: dict[str, Any], row: int, whole_row: list[Any]) -> None:
    """A 合计/总计/小计 row is not data. The last 合计/总计 is the table's total (reconciled against
    every detail row); 小计 rows, and a 合计 that more data follows, are group subtotals."""
    if table.first_total_row is None:
        table.first_total_row = row
    if table.total_row is not None:
        table.subtotal_rows.append(table.total_row["_row"])
        table.total_row = None
    if is_subtotal_row(whole_row):
        table.subtotal_rows.append(row)
        return
    table.total_row = {**cells, "_row": row}


def split_body(table: Table, rows: list[list[Any]], first_row_number: int) -> Iterator[pd.DataFrame]:
    """Data rows from a list of cell rows: skip blanks and notes, set the total rows aside."""
    batch: list[list[Any]] = []
    numbers: list[int] = []
    positions = [c.position for c in table.columns]
    for offset, cells in enumerate(rows):
        filled = sum(p < len(cells) and not is_empty(cells[p]) for p in positions)  # a 序号 alone is no data
        if not filled and not is_total_row(cells):
            continue
        if is_total_row(cells):
            named = {c.field.name: cells[c.position] for c in table.columns if c.position < len(cells)}
            set_aside_total(table, named, first_row_number + offset, cells)
            continue
        if is_note_row(cells) or (table.first_total_row is not None and filled < NOTE_AFTER_TOTAL_CELLS):
            continue
        batch.append(cells)
        numbers.append(first_row_number + offset)
        if len(batch) >= CHUNK_ROWS:
            yield frame(table.columns, batch, numbers)
            batch, numbers = [], []
    if batch:
        yield frame(table.columns, batch, numbers)


def fill_merged(
    rows: list[list[Any]],
    merged: list[tuple[tuple[int, int], tuple[int, int]]],
    body_start: int,
    offset: tuple[int, int],
) -> int:
    """Give every cell of a merged range in the table body the value of its top-left cell
    (a 结对编号 merged down over its activities means that pairing for each of them).
    Returns the number of cells filled."""
    filled = 0
    row0, col0 = offset
    for (top, left), (bottom, right) in merged:
        top, bottom, left, right = top - row0, bottom - row0, left - col0, right - col0
        if top < body_start or top >= len(rows) or left < 0:
            continue
        value = rows[top][left] if left < len(rows[top]) else None
        if is_empty(value):
            continue
        for r in range(top, min(bottom, len(rows) - 1) + 1):
            cells = rows[r]
            for c in range(left, min(right, len(cells) - 1) + 1):
                if (r, c) != (top, left) and is_empty(cells[c]):
                    cells[c] = value
                    filled += 1
    return filled


def table_from_rows(
    sheet: str,
    rows: list[list[Any]],
    first_row_number: int = 1,
    *,
    merged: list[tuple[tuple[int, int], tuple[int, int]]] | None = None,
    first_col: int = 0,
) -> tuple[Table | None, list[str]]:
    """The table of one sheet's rows, or (None, the first cells) when no header is found."""
    header = locate_header(rows)
    if header is None:
        return None, [clean_text(c) for r in rows[:5] for c in r if not is_empty(c)]
    body = header.index + header.rows
    filled = fill_merged(rows, merged, body, (first_row_number - 1, first_col)) if merged else 0
    table = table_for(header, sheet, first_row_number, rows[: header.index])
    if filled:
        table.notes.append(
            note(
                f"“{sheet}”合并单元格的值已填入其覆盖的 {filled} 个单元格",
                f"'{sheet}' merged cells: their value was copied into the {filled} cell(s) they span",
                sheet=sheet,
            )
        )
    table.chunks = split_body(table, rows[body:], first_row_number + body)
    return table, []


def preamble_text(rows: list[list[Any]]) -> list[str]:
    return [" ".join(clean_text(c) for c in r if not is_empty(c)) for r in rows if any(not is_empty(c) for c in r)]


def display_name(path: Path, name: str | None) -> str:
    """The name a file's table is shown under: the name it arrived with (a re-run reads a copy
    named after its hash)."""
    return name or path.name
