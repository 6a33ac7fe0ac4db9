"""Workbooks: .xlsx (Excel, WPS), .xls (BIFF8: Excel 97–2003, WPS's default), .ods (OpenDocument).

What a file is comes from its bytes, not its name: a ``.xlsx`` that is really an ``.xls``
workbook is read as one (and said so); a PDF, an RTF, a Word document or a web page saved
under a workbook's name is refused with what it is (``F016``). Zip-based workbooks are
inflated member by member before any parser sees them (zip bombs, ``F010``). python-calamine
reads all three formats, merged ranges included; the cells of a merged range in the table
body get the value of its top-left cell.
"""

from __future__ import annotations

import html
import re
import struct
import zipfile
import zlib
from pathlib import Path
from typing import Any

from ingestion.layout import HEADER_SCAN_ROWS
from ingestion.metadata import is_labelled_line
from ingestion.problems import FileRejected, Problem
from ingestion.tables import ReadResult, Table, note, preamble_text, table_from_rows

OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
ODS_MIMETYPE = b"application/vnd.oasis.opendocument.spreadsheet"
FORMAT_NAMES = {
    "xlsx": ("Excel 工作簿（.xlsx）", "an Excel workbook (.xlsx)"),
    "xls": ("Excel 97–2003 工作簿（.xls）", "an Excel 97-2003 workbook (.xls)"),
    "ods": ("OpenDocument 电子表格（.ods）", "an OpenDocument spreadsheet (.ods)"),
}


# What a file named like a workbook may really be: (magic test, what it is in zh, in en)
_DISGUISES: tuple[tuple[Any, str, str], ...] = (
    (lambda head: head.startswith(b"%PDF"), " PDF 文档", "a PDF document"),
    (lambda head: head.startswith(b"{\\rtf"), " RTF 文档（Word）", "an RTF document (Word)"),
    (
        lambda head: head.lstrip(b"\xef\xbb\xbf \t\r\n").lower().startswith((b"<html", b"<!doctype html", b"<table")),
        "网页（HTML，常见于从网页系统导出的“Excel”）",
        "a web page (HTML, as some web systems export 'Excel')",
    ),
)
_OLE2_NOT_A_WORKBOOK = (
    "无法读取的旧版 Office 文件（OLE2 格式，如 .doc 或损坏的 .xls）",
    "an old Office file that is no readable workbook (OLE2: a .doc, or a damaged .xls)",
)


def sniff_workbook(path: Path, suffix: str) -> str:
    """What a file named .xlsx/.xlsm/.xls/.ods really is: 'xlsx', 'xls' or 'ods'; anything else
    is refused with what it is."""
    with path.open("rb") as fh:
        head = fh.read(512)
    if head.startswith(OLE2_MAGIC):
        return "xls"
    if head.startswith(b"PK\x03\x04"):
        return "ods" if head[30:38] == b"mimetype" and ODS_MIMETYPE in head else "xlsx"
    for matches, actual_zh, actual_en in _DISGUISES:
        if matches(head):
            raise FileRejected(Problem.make("F016_NOT_XLSX", suffix=suffix, actual_zh=actual_zh, actual_en=actual_en))
    detail = "not a workbook (neither .xlsx, .xls nor .ods) / 不是工作簿（既非 .xlsx、.xls 也非 .ods）"
    raise FileRejected(Problem.make("F001_UNREADABLE", detail=detail))


MAX_ZIP_MEMBERS = 10_000


def check_zip(path: Path, max_unzipped_bytes: int, required_member: str = "[Content_Types].xml") -> None:
    """Refuse a damaged workbook or a zip bomb before any xlsx parser sees it.

    The sizes a zip declares can lie, so every member is inflated here (streamed, bounded by
    the limit, never held in memory) and its real size counted."""
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
            declared = sum(info.file_size for info in infos)
            if declared > max_unzipped_bytes or len(infos) > MAX_ZIP_MEMBERS:
                raise FileRejected(Problem.make("F010_ZIP_BOMB", size=declared, limit=max_unzipped_bytes))
            if required_member not in zf.namelist():
                raise FileRejected(Problem.make("F001_UNREADABLE", detail="not a workbook / 不是工作簿"))
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


def _is_word_document(path: Path) -> bool:
    """An OLE2 file whose directory names a WordDocument stream (UTF-16 in the directory)."""
    name = "WordDocument".encode("utf-16-le")
    with path.open("rb") as fh:
        return name in fh.read(1 << 20)


def read_workbook(path: Path, *, max_unzipped_bytes: int, suffix: str) -> ReadResult:
    """The tables of a workbook, whatever its name says it is."""
    fmt = sniff_workbook(path, suffix)
    notes: list[Problem] = []
    if fmt == "xlsx":
        check_zip(path, max_unzipped_bytes)
        errors = error_cells(path)
    elif fmt == "ods":
        check_zip(path, max_unzipped_bytes, required_member="content.xml")
        errors = {}
    else:
        errors = {}
    expected = {".xlsx": "xlsx", ".xlsm": "xlsx", ".xls": "xls", ".ods": "ods"}.get(suffix)
    if expected != fmt:
        zh, en = FORMAT_NAMES[fmt]
        notes.append(
            note(f"文件扩展名为 {suffix}，但内容是{zh}，已按其读取", f"named {suffix}, the file is {en}; read as such")
        )
    if fmt != "xlsx":  # the format the contract names first needs no word
        zh, en = FORMAT_NAMES[fmt]
        notes.append(note(f"文件类型为{zh}", f"file type is {en}"))
    from python_calamine import CalamineWorkbook

    try:
        wb = CalamineWorkbook.from_path(str(path))
    except Exception as exc:  # calamine raises its own error types for broken workbooks
        # OLE2 that is no workbook: a Word document; or named .xlsx, so not even meant as .xls
        if fmt == "xls" and (_is_word_document(path) or suffix != ".xls"):
            raise FileRejected(
                Problem.make(
                    "F016_NOT_XLSX", suffix=suffix, actual_zh=_OLE2_NOT_A_WORKBOOK[0], actual_en=_OLE2_NOT_A_WORKBOOK[1]
                )
            ) from exc
        raise FileRejected(Problem.make("F001_UNREADABLE", detail=str(exc)[:200])) from exc
    tables, preamble, seen = _sheets(wb, errors)
    if not tables:
        detail = f"；工作表 / sheets: {'、'.join(seen)}"
        raise FileRejected(Problem.make("F004_NO_TABLE", detail=detail))
    return ReadResult(file_format=fmt, tables=tables, preamble_text=preamble, notes=notes)


def _sheets(wb: Any, errors: dict[str, dict[tuple[int, int], str]]) -> tuple[list[Table], list[str], list[str]]:
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
        table, _ = table_from_rows(name, rows, first, merged=merged, first_col=first_col)
        seen_sheets.append(name)
        if table is None:
            # a cover sheet (封面 / 填报说明) may carry the 填报单位 / 报告期 block; only labelled
            # lines count, so an instructions sheet's examples ('2024-06') state no period
            preamble.extend(line for line in preamble_text(rows[:HEADER_SCAN_ROWS]) if is_labelled_line(line))
            continue
        tables.append(table)
        preamble.extend(preamble_text(table.preamble))
    return tables, preamble, seen_sheets
