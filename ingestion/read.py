"""Readers: a file's bytes -> recognised tables of raw cells, in chunks.

One reader per format (xlsx, csv, json). Each finds the tables in the file (a table =
one record kind: a workbook sheet, a csv file, a key of the json envelope), locates the
header row under any title rows and the 填报单位/报告期 block, and yields the data rows in
chunks of raw cells with their source row numbers. A 合计/总计 row is kept aside for
reconciliation, notes below the table are dropped. Nothing is evaluated: a cell starting
with ``=`` is text.
"""

from __future__ import annotations

import codecs
import csv
import html
import io
import itertools
import json
import re
import struct
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ingestion.contract import RECORD_KINDS, RecordKind
from ingestion.metadata import is_labelled_line
from ingestion.normalise import (
    ColumnMap,
    clean_text,
    closest_header,
    detect_kind,
    is_empty,
    is_note_row,
    is_subtotal_row,
    is_total_row,
    match_header,
)
from ingestion.problems import FileRejected, Problem

CHUNK_ROWS = 250_000
HEADER_SCAN_ROWS = 30


@dataclass
class Table:
    kind: RecordKind
    sheet: str | None  # sheet name, csv file name, or json key
    header_row: int  # 1-based
    columns: list[ColumnMap]
    chunks: Iterator[pd.DataFrame]  # columns: field names (raw cells) + '_row'
    preamble: list[list[Any]] = field(default_factory=list)  # rows above the header
    total_row: dict[str, Any] | None = None  # the last 合计/总计 row, filled while chunks are consumed
    subtotal_rows: list[int] = field(default_factory=list)  # 小计 rows (and earlier 合计 rows), not data
    first_total_row: int | None = None  # below it, a row with few filled cells is a note
    notes: list[Problem] = field(default_factory=list)  # normalisations applied


@dataclass
class ReadResult:
    file_format: str
    tables: list[Table]
    encoding: str | None = None
    envelope: dict[str, Any] = field(default_factory=dict)  # json: reporting_unit_code, period
    preamble_text: list[str] = field(default_factory=list)  # title rows, 填报单位 block
    notes: list[Problem] = field(default_factory=list)


def read_file(path: Path, *, max_unzipped_bytes: int, suffix: str | None = None) -> ReadResult:
    """The tables of one file. ``suffix`` overrides the path's (a reprocessed file is read from
    its archived copy, whose name is its hash)."""
    suffix = (suffix or path.suffix).lower()
    if path.stat().st_size == 0:
        raise FileRejected(Problem.make("F003_EMPTY_FILE"))
    if suffix in (".xlsx", ".xlsm"):
        _refuse_disguised_workbook(path, suffix)
        return read_xlsx(path, max_unzipped_bytes=max_unzipped_bytes)
    if suffix in (".csv", ".txt"):
        return read_csv(path)
    if suffix == ".json":
        return read_json(path)
    raise FileRejected(Problem.make("F002_UNSUPPORTED_TYPE", suffix=suffix or "(none)"))


# --------------------------------------------------------------------------- shared


def _missing_columns(kind: RecordKind, columns: list[ColumnMap], header_cells: list[Any]) -> Problem | None:
    found = {c.field.name for c in columns}
    missing = [f for f in kind.fields if f.required and f.name not in found]
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


def _located(notes: list[Problem], sheet: str | None, header_row: int) -> list[Problem]:
    """Header notes point at the sheet and the header row they are about."""
    for note in notes:
        note.sheet = note.sheet or sheet
        note.row = note.row or header_row
    return notes


def _locate_header(rows: list[list[Any]]) -> tuple[int, RecordKind] | None:
    for i, cells in enumerate(rows[:HEADER_SCAN_ROWS]):
        kind = detect_kind(cells)
        if kind is not None:
            return i, kind
    return None


def _frame(columns: list[ColumnMap], rows: list[list[Any]], row_numbers: list[int]) -> pd.DataFrame:
    data: dict[str, Any] = {}
    for c in columns:
        data[c.field.name] = [r[c.position] if c.position < len(r) else None for r in rows]
    frame = pd.DataFrame(data, dtype=object)
    frame["_row"] = row_numbers
    return frame


# after a total row, a row with fewer filled cells than this is a note, not data
NOTE_AFTER_TOTAL_CELLS = 3


def _set_aside_total(table: Table, cells: dict[str, Any], row: int) -> None:
    """A 合计/总计/小计 row is not data. The last 合计/总计 is the table's total (reconciled against
    every detail row); 小计 rows, and a 合计 that more data follows, are group subtotals."""
    if table.first_total_row is None:
        table.first_total_row = row
    if table.total_row is not None:
        table.subtotal_rows.append(table.total_row["_row"])
        table.total_row = None
    if is_subtotal_row(list(cells.values())):
        table.subtotal_rows.append(row)
        return
    table.total_row = {**cells, "_row": row}


def _split_body(table: Table, rows: list[list[Any]], first_row_number: int) -> Iterator[pd.DataFrame]:
    """Data rows from a list of cell rows: skip blanks and notes, set the total rows aside."""
    batch: list[list[Any]] = []
    numbers: list[int] = []
    for offset, cells in enumerate(rows):
        filled = sum(not is_empty(c) for c in cells)
        if not filled:
            continue
        if is_total_row(cells):
            named = {c.field.name: cells[c.position] for c in table.columns if c.position < len(cells)}
            _set_aside_total(table, named, first_row_number + offset)
            continue
        if is_note_row(cells) or (table.first_total_row is not None and filled < NOTE_AFTER_TOTAL_CELLS):
            continue
        batch.append(cells)
        numbers.append(first_row_number + offset)
        if len(batch) >= CHUNK_ROWS:
            yield _frame(table.columns, batch, numbers)
            batch, numbers = [], []
    if batch:
        yield _frame(table.columns, batch, numbers)


def _fill_merged(
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


def _tables_from_rows(
    sheet: str,
    rows: list[list[Any]],
    first_row_number: int = 1,
    *,
    merged: list[tuple[tuple[int, int], tuple[int, int]]] | None = None,
    first_col: int = 0,
) -> tuple[Table | None, list[str]]:
    located = _locate_header(rows)
    if located is None:
        return None, [clean_text(c) for r in rows[:5] for c in r if not is_empty(c)]
    i, kind = located
    filled = _fill_merged(rows, merged, i + 1, (first_row_number - 1, first_col)) if merged else 0
    columns, notes = match_header(kind, rows[i])
    missing = _missing_columns(kind, columns, rows[i])
    if missing is not None:
        raise FileRejected(missing)
    table = Table(kind=kind, sheet=sheet, header_row=first_row_number + i, columns=columns, chunks=iter(()))
    table.preamble = rows[:i]
    table.notes = _located(notes, sheet, first_row_number + i)
    if i:
        table.notes.append(
            Problem(
                "W003_NORMALISED",
                f"已规范化：“{sheet}”跳过表头上方 {i} 行（标题、填报单位信息）",
                f"Normalised: '{sheet}' skipped {i} row(s) above the header (title, reporting block)",
                sheet=sheet,
            )
        )
    if filled:
        table.notes.append(
            Problem(
                "W003_NORMALISED",
                f"已规范化：“{sheet}”合并单元格的值已填入其覆盖的 {filled} 个单元格",
                f"Normalised: '{sheet}' merged cells: their value was copied into the {filled} cell(s) they span",
                sheet=sheet,
            )
        )
    table.chunks = _split_body(table, rows[i + 1 :], first_row_number + i + 1)
    return table, []


def _preamble_text(rows: list[list[Any]]) -> list[str]:
    return [" ".join(clean_text(c) for c in r if not is_empty(c)) for r in rows if any(not is_empty(c) for c in r)]


# --------------------------------------------------------------------------- xlsx


# What a file named .xlsx may really be: (magic test, what it is in zh, in en)
_DISGUISES: tuple[tuple[Any, str, str], ...] = (
    (
        lambda head: head.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"),
        "旧版 Office 文件（OLE2 格式，如 .xls 或 .doc）",
        "an old Office file (OLE2 format: .xls or .doc)",
    ),
    (lambda head: head.startswith(b"%PDF"), " PDF 文档", "a PDF document"),
    (lambda head: head.startswith(b"{\\rtf"), " RTF 文档（Word）", "an RTF document (Word)"),
    (
        lambda head: head.lstrip(b"\xef\xbb\xbf \t\r\n").lower().startswith((b"<html", b"<!doctype html", b"<table")),
        "网页（HTML，常见于从网页系统导出的“Excel”）",
        "a web page (HTML, as some web systems export 'Excel')",
    ),
)


def _refuse_disguised_workbook(path: Path, suffix: str) -> None:
    """A .xlsx that is really an old .xls/.doc, a PDF or a web page gets a reason a district can act on."""
    with path.open("rb") as fh:
        head = fh.read(512)
    for matches, actual_zh, actual_en in _DISGUISES:
        if matches(head):
            raise FileRejected(Problem.make("F016_NOT_XLSX", suffix=suffix, actual_zh=actual_zh, actual_en=actual_en))


MAX_ZIP_MEMBERS = 10_000


def check_zip(path: Path, max_unzipped_bytes: int) -> None:
    """Refuse a damaged workbook or a zip bomb before any xlsx parser sees it.

    The sizes a zip declares can lie, so every member is inflated here (streamed, bounded by
    the limit, never held in memory) and its real size counted."""
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
            declared = sum(info.file_size for info in infos)
            if declared > max_unzipped_bytes or len(infos) > MAX_ZIP_MEMBERS:
                raise FileRejected(Problem.make("F010_ZIP_BOMB", size=declared, limit=max_unzipped_bytes))
            if "[Content_Types].xml" not in zf.namelist():
                raise FileRejected(Problem.make("F001_UNREADABLE", detail="not an Excel workbook / 不是 Excel 工作簿"))
            total = 0
            with path.open("rb") as fp:
                for info in infos:
                    total += _inflated_size(fp, info, max_unzipped_bytes - total)
                    if total > max_unzipped_bytes:
                        raise FileRejected(Problem.make("F010_ZIP_BOMB", size=f"{total}+", limit=max_unzipped_bytes))
    except (zipfile.BadZipFile, zlib.error, EOFError, struct.error) as exc:
        detail = "damaged or incomplete workbook (cut off during upload?) / 工作簿已损坏或不完整（上传中断？）"
        raise FileRejected(Problem.make("F001_UNREADABLE", detail=detail)) from exc


def _inflated_size(fp: Any, info: zipfile.ZipInfo, budget: int) -> int:
    """The real size of one zip member, inflating at most ``budget + 1`` bytes of it."""
    fp.seek(info.header_offset)
    local = fp.read(30)
    if local[:4] != b"PK\x03\x04":
        raise zipfile.BadZipFile(f"bad local header for {info.filename!r}")
    name_len, extra_len = struct.unpack("<HH", local[26:30])
    fp.seek(info.header_offset + 30 + name_len + extra_len)
    if info.compress_type == zipfile.ZIP_STORED:
        return info.compress_size
    if info.compress_type != zipfile.ZIP_DEFLATED:
        raise zipfile.BadZipFile(f"unsupported compression {info.compress_type} for {info.filename!r}")
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    total, remaining = 0, info.compress_size
    while remaining > 0 and not inflater.eof and total <= budget:
        block = fp.read(min(1 << 16, remaining))
        if not block:
            raise EOFError(f"{info.filename!r} is cut off")
        remaining -= len(block)
        total += len(inflater.decompress(block, budget - total + 1))
        while inflater.unconsumed_tail and total <= budget:
            total += len(inflater.decompress(inflater.unconsumed_tail, budget - total + 1))
    return total


_SHEET_TAG = re.compile(rb"<(?:\w+:)?sheet\b([^>]*)>")
_REL_TAG = re.compile(rb"<(?:\w+:)?Relationship\b([^>]*)>")
_ATTR = re.compile(rb'([\w:]+)="([^"]*)"')
_CELL = re.compile(rb"<c\b([^>]*?)>(.*?)</c>", re.DOTALL)
_CELL_REF = re.compile(rb"^([A-Z]{1,3})([0-9]+)$")
_VALUE = re.compile(rb"<v>([^<]*)</v>")


def _attrs(tag: bytes) -> dict[bytes, bytes]:
    return {k.split(b":")[-1] if k != b"r:id" else k: v for k, v in _ATTR.findall(tag)}


def error_cells(path: Path) -> dict[str, dict[tuple[int, int], str]]:
    """The cells holding an Excel error (#DIV/0!, #N/A, #VALUE! …) per sheet name, as
    (1-based row, 0-based column) -> the error's text. calamine reads them as empty cells,
    which would turn a broken formula into a blank (or, in an optional column, a silent
    NULL); put back, they are values that cannot be read, and their rows go to quarantine.
    Streamed: a sheet is only searched where its XML says ``t="e"``."""
    found: dict[str, dict[tuple[int, int], str]] = {}
    with zipfile.ZipFile(path) as zf:
        names = set(zf.namelist())
        if "xl/workbook.xml" not in names:
            return found
        rels = {}
        if "xl/_rels/workbook.xml.rels" in names:
            for tag in _REL_TAG.findall(zf.read("xl/_rels/workbook.xml.rels")):
                a = _attrs(tag)
                target = a.get(b"Target", b"").decode()
                rels[a.get(b"Id", b"").decode()] = target.lstrip("/") if target.startswith("/") else f"xl/{target}"
        for tag in _SHEET_TAG.findall(zf.read("xl/workbook.xml")):
            a = _attrs(tag)
            member = rels.get(a.get(b"r:id", b"").decode())
            if member in names:
                cells = _errors_in_sheet(zf, member)
                if cells:
                    found[html.unescape(a.get(b"name", b"").decode())] = cells
    return found


def _errors_in_sheet(zf: zipfile.ZipFile, member: str) -> dict[tuple[int, int], str]:
    cells: dict[tuple[int, int], str] = {}
    tail = b""
    with zf.open(member) as fh:
        while block := fh.read(1 << 20):
            data = tail + block
            cut = data.rfind(b"<c ")
            tail, data = (data[cut:], data[:cut]) if cut >= 0 else (b"", data)
            if b't="e"' in data:
                _collect_errors(data, cells)
    if b't="e"' in tail:
        _collect_errors(tail, cells)
    return cells


def _collect_errors(data: bytes, cells: dict[tuple[int, int], str]) -> None:
    for attrs, body in _CELL.findall(data):
        a = _attrs(attrs)
        ref = _CELL_REF.match(a.get(b"r", b""))
        value = _VALUE.search(body)
        if a.get(b"t") != b"e" or ref is None or value is None:
            continue
        column = 0
        for ch in ref.group(1):
            column = column * 26 + ch - 64
        cells[(int(ref.group(2)), column - 1)] = html.unescape(value.group(1).decode("utf-8", "replace"))


def read_xlsx(path: Path, *, max_unzipped_bytes: int) -> ReadResult:
    check_zip(path, max_unzipped_bytes)
    errors = error_cells(path)
    from python_calamine import CalamineWorkbook

    try:
        wb = CalamineWorkbook.from_path(str(path))
    except Exception as exc:  # calamine raises its own error types for broken workbooks
        raise FileRejected(Problem.make("F001_UNREADABLE", detail=str(exc)[:200])) from exc
    tables: list[Table] = []
    preamble: list[str] = []
    seen_sheets: list[str] = []
    for name in wb.sheet_names:
        try:
            sheet = wb.get_sheet_by_name(name)
            rows = sheet.to_python(skip_empty_area=False)
            merged = sheet.merged_cell_ranges or []
        except Exception as exc:  # a sheet calamine cannot decode
            raise FileRejected(Problem.make("F001_UNREADABLE", detail=f"{name}: {str(exc)[:200]}")) from exc
        first = sheet.start[0] + 1 if sheet.start else 1
        first_col = sheet.start[1] if sheet.start else 0
        for (row, col), text in errors.get(name, {}).items():
            r, c = row - first, col - first_col
            if 0 <= r < len(rows) and 0 <= c < len(rows[r]):
                rows[r][c] = text
        table, heads = _tables_from_rows(name, rows, first, merged=merged, first_col=first_col)
        seen_sheets.append(name)
        if table is None:
            # a cover sheet (封面 / 填报说明) may carry the 填报单位 / 报告期 block; only labelled
            # lines count, so an instructions sheet's examples ('2024-06') state no period
            preamble.extend(line for line in _preamble_text(rows[:HEADER_SCAN_ROWS]) if is_labelled_line(line))
            continue
        tables.append(table)
        preamble.extend(_preamble_text(table.preamble))
    if not tables:
        detail = f"；工作表 / sheets: {'、'.join(seen_sheets)}"
        raise FileRejected(Problem.make("F004_NO_TABLE", detail=detail))
    return ReadResult(file_format="xlsx", tables=tables, preamble_text=preamble)


# --------------------------------------------------------------------------- csv


def detect_encoding(path: Path, sample_bytes: int = 1 << 20) -> str:
    with path.open("rb") as fh:
        head = fh.read(sample_bytes)
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    for encoding in ("utf-8", "gbk", "gb18030"):  # GB18030 is GBK's superset: name the narrower one that fits
        decoder = codecs.getincrementaldecoder(encoding)()
        try:
            decoder.decode(head, final=len(head) < sample_bytes)
            return encoding
        except UnicodeDecodeError:
            continue
    raise FileRejected(Problem.make("F013_BAD_ENCODING"))


def decoder_for(encoding: str) -> str:
    """The codec a detected encoding is read with: a GBK file is decoded as GB18030 (its
    superset, identical on GBK text), so a rare character far down the file cannot fail."""
    return "gb18030" if encoding == "gbk" else encoding


def _csv_head(path: Path) -> tuple[str, list[list[str]]]:
    encoding = detect_encoding(path)
    try:
        with path.open(encoding=decoder_for(encoding), newline="", errors="strict") as fh:
            head_lines = list(itertools.islice(fh, HEADER_SCAN_ROWS))
    except UnicodeDecodeError as exc:
        raise FileRejected(Problem.make("F013_BAD_ENCODING")) from exc
    return encoding, list(csv.reader(io.StringIO("".join(head_lines))))


def peek_csv_kind(path: Path) -> RecordKind | None:
    """The record kind a csv file's header declares, from its first lines."""
    _, head_rows = _csv_head(path)
    located = _locate_header(head_rows)
    return located[1] if located else None


def read_csv(path: Path) -> ReadResult:
    encoding, head_rows = _csv_head(path)
    located = _locate_header(head_rows)
    if located is None:
        found = [clean_text(c) for r in head_rows[:3] for c in r if not is_empty(c)]
        raise FileRejected(Problem.make("F004_NO_TABLE", detail=f"；前几行 / first cells: {'、'.join(found[:12])}"))
    i, kind = located
    columns, notes = match_header(kind, head_rows[i])
    missing = _missing_columns(kind, columns, head_rows[i])
    if missing is not None:
        raise FileRejected(missing)
    table = Table(kind=kind, sheet=path.name, header_row=i + 1, columns=columns, chunks=iter(()))
    table.preamble = head_rows[:i]
    table.notes = _located(notes, path.name, i + 1)
    if encoding != "utf-8":
        table.notes.append(
            Problem("W003_NORMALISED", f"已规范化：文件编码为 {encoding}", f"Normalised: file encoding is {encoding}")
        )
    table.chunks = _csv_chunks(path, decoder_for(encoding), table, i)
    return ReadResult(
        file_format="csv", tables=[table], encoding=encoding, preamble_text=_preamble_text(table.preamble)
    )


def _csv_chunks(path: Path, encoding: str, table: Table, header_index: int) -> Iterator[pd.DataFrame]:
    """Data rows in chunks, numbered by source record.

    Fast path: pyarrow's multi-threaded reader, when the layout lets it number records exactly
    (no blank line, every row as wide as the header). Otherwise pandas' C parser, which keeps
    blank lines and pads short rows; a row wider than the sample showed sends the rest of
    the file to the csv module (slow, exact)."""
    frames = _csv_frames_arrow(path, encoding, table, header_index)
    if frames is not None:
        for frame in frames:
            yield from _clean_chunk(table, frame)
        return
    yield from _csv_chunks_pandas(path, encoding, table, header_index)


def _csv_frames_arrow(path: Path, encoding: str, table: Table, header_index: int) -> Iterator[pd.DataFrame] | None:
    import mmap

    import pyarrow as pa
    import pyarrow.csv as pacsv

    with path.open("rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
        if data.find(b"\n\n") >= 0 or data.find(b"\n\r\n") >= 0 or data.find(b"\r\r") >= 0:
            return None  # blank lines: the arrow reader would drop them and shift row numbers
    with path.open(encoding=encoding, newline="") as fh:
        reader = csv.reader(fh)
        width = len(next(itertools.islice(reader, header_index, None), []))
        # arrow skips physical lines, not records: a quoted line break in a title or a header
        # cell ('"其中\n党员人数"') makes the two differ
        header_lines = reader.line_num
    positions = {c.position: c.field.name for c in table.columns}
    names = [f"c{i}" for i in range(width)]
    ragged: list[int] = []

    def on_invalid(row) -> str:  # a row narrower or wider than the header
        ragged.append(1)
        return "skip"

    try:
        arrow = pacsv.read_csv(
            path,
            read_options=pacsv.ReadOptions(
                skip_rows=header_lines,
                column_names=names,
                encoding="utf8" if encoding.startswith("utf-8") else encoding,
                block_size=8 << 20,
            ),
            parse_options=pacsv.ParseOptions(newlines_in_values=True, invalid_row_handler=on_invalid),
            convert_options=pacsv.ConvertOptions(
                column_types={n: pa.string() for n in names},
                include_columns=[names[p] for p in positions],
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except (pa.ArrowInvalid, UnicodeDecodeError):
        return None  # let the exact path report or cope with it
    if ragged:
        return None
    arrow = arrow.rename_columns([positions[int(n[1:])] for n in arrow.column_names])
    first = header_index + 2

    def frames() -> Iterator[pd.DataFrame]:
        for start in range(0, arrow.num_rows, CHUNK_ROWS):
            part = arrow.slice(start, CHUNK_ROWS)
            frame = part.to_pandas()
            frame.index = pd.RangeIndex(start, start + len(frame))
            frame["_row"] = np.arange(first + start, first + start + len(frame), dtype=np.int64)
            yield frame

    return frames()


def _csv_chunks_pandas(path: Path, encoding: str, table: Table, header_index: int) -> Iterator[pd.DataFrame]:
    width = _max_width(path, encoding)
    names = {c.position: c.field.name for c in table.columns}
    next_row = header_index + 2  # 1-based number of the first data record
    try:
        reader = pd.read_csv(
            path,
            encoding=encoding,
            header=None,
            names=range(width),
            index_col=False,
            skiprows=header_index + 1,
            dtype=str,
            keep_default_na=False,
            na_filter=False,
            skip_blank_lines=False,
            chunksize=CHUNK_ROWS,
            engine="c",
        )
        for chunk in reader:
            chunk = chunk[list(names)].rename(columns=names)
            chunk["_row"] = range(next_row, next_row + len(chunk))
            next_row += len(chunk)
            yield from _clean_chunk(table, chunk)
    except UnicodeDecodeError as exc:
        raise FileRejected(Problem.make("F013_BAD_ENCODING")) from exc
    except pd.errors.ParserError:
        yield from _csv_chunks_slow(path, encoding, table, names, start_row=next_row)


def _csv_chunks_slow(
    path: Path, encoding: str, table: Table, names: dict[int, str], start_row: int
) -> Iterator[pd.DataFrame]:
    with path.open(encoding=encoding, newline="") as fh:
        batch: list[list[str]] = []
        numbers: list[int] = []
        for number, cells in enumerate(csv.reader(fh), start=1):
            if number < start_row:
                continue
            batch.append([cells[p] if p < len(cells) else "" for p in names])
            numbers.append(number)
            if len(batch) >= CHUNK_ROWS:
                yield from _clean_chunk(table, _slow_frame(batch, numbers, names))
                batch, numbers = [], []
        if batch:
            yield from _clean_chunk(table, _slow_frame(batch, numbers, names))


def _slow_frame(batch: list[list[str]], numbers: list[int], names: dict[int, str]) -> pd.DataFrame:
    frame = pd.DataFrame(batch, columns=list(names.values()), dtype=object)
    frame["_row"] = numbers
    return frame


def _max_width(path: Path, encoding: str, sample: int = 200) -> int:
    """Widest row in the first lines (title and notes rows are narrower, never wider, in practice)."""
    with path.open(encoding=encoding, newline="", errors="replace") as fh:
        widths = [len(r) for _, r in zip(range(sample), csv.reader(fh), strict=False)]
    return max(widths or [1]) + 2


_SUSPICIOUS_STARTS = ("合", "总", "小", "注", "备", "说", "填", "审", "联", "负", "制", "t", "T")


def _clean_chunk(table: Table, chunk: pd.DataFrame) -> Iterator[pd.DataFrame]:
    """Drop blank rows and notes, set total rows aside. Vectorised: only the rare rows whose
    first cells start like a total or a note are inspected one by one."""
    fields = [c.field.name for c in table.columns]
    filled = (chunk[fields] != "").sum(axis=1)
    keep = filled > 0
    suspicious = pd.Series(False, index=chunk.index)
    for name in fields[:2]:
        suspicious |= chunk[name].str.lstrip().str.startswith(_SUSPICIOUS_STARTS)
    for idx in chunk.index[suspicious & keep]:
        cells = [chunk.at[idx, f] for f in fields]
        if is_total_row(cells):
            _set_aside_total(table, dict(zip(fields, cells, strict=True)), int(chunk.at[idx, "_row"]))
            keep[idx] = False
        elif is_note_row(cells):
            keep[idx] = False
    if table.first_total_row is not None:  # after a total row, sparse rows are notes
        keep &= ~((chunk["_row"] > table.first_total_row) & (filled < NOTE_AFTER_TOTAL_CELLS)).to_numpy()
    out = chunk[keep] if not keep.all() else chunk
    if len(out):
        yield out


# --------------------------------------------------------------------------- json


def read_json(path: Path) -> ReadResult:
    try:
        doc = json.loads(path.read_bytes().decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FileRejected(Problem.make("F012_BAD_JSON", detail=str(exc)[:200])) from exc
    if not isinstance(doc, dict):
        raise FileRejected(Problem.make("F012_BAD_JSON", detail="top level must be an object / 顶层应为对象"))
    tables: list[Table] = []
    for kind in RECORD_KINDS.values():
        records = doc.get(kind.name)
        if records is None:
            continue
        if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
            raise FileRejected(Problem.make("F012_BAD_JSON", detail=f"'{kind.name}' must be a list of objects"))
        keys = list(dict.fromkeys(k for r in records for k in r))
        columns, notes = match_header(kind, keys)
        if records:
            missing = _missing_columns(kind, columns, keys)
            if missing is not None:
                raise FileRejected(missing)
        rows = [[r.get(k) for k in keys] for r in records]
        table = Table(kind=kind, sheet=kind.name, header_row=0, columns=columns, chunks=iter(()), notes=notes)
        table.chunks = _json_chunks(table, rows)
        tables.append(table)
    if not tables:
        raise FileRejected(
            Problem.make("F004_NO_TABLE", detail="；JSON 中没有 pairings/activities/projects/income_effects")
        )
    envelope = {k: doc.get(k) for k in ("reporting_unit_code", "period") if doc.get(k) not in (None, "")}
    return ReadResult(file_format="json", tables=tables, envelope=envelope)


def _json_chunks(table: Table, rows: list[list[Any]]) -> Iterator[pd.DataFrame]:
    for start in range(0, len(rows), CHUNK_ROWS):
        part = rows[start : start + CHUNK_ROWS]
        yield _frame(table.columns, part, list(range(start + 1, start + 1 + len(part))))
