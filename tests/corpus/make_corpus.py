"""Generate the corpus of bad submission files (坏文件样本库), one file per failure kind.

    .venv/bin/python tests/corpus/make_corpus.py [--out DIR]

writes ``DIR/files/<landing folder>/<file name>`` (the landing folder is a metadata source: it
names the reporting unit), ``DIR/manifest.json`` (what each file is and what the pipeline must
make of it) and ``DIR/README.md`` (the same as a table). ``DIR`` defaults to this folder; the
generated files are committed, and ``tests/test_corpus.py`` checks that this script rebuilds
them byte for byte.

Deterministic: no clock, no randomness. Workbooks are written by xlsxwriter with a fixed
creation date (its zip members carry a fixed timestamp); hand-built zips use fixed
``ZipInfo`` dates; everything else is literal bytes.

Unless a case is about them, every file is from reporting unit 652801 (库尔勒市), period
2025-01, and refers to its registered pairings KRL-YJ (urban 652801412005, rural
652801207200) and KRL-LW (urban 652801412003, rural 652801207201).
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import io
import json
import shutil
import struct
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import xlsxwriter

HERE = Path(__file__).resolve().parent
UNIT = "652801"
PERIOD = "2025-01"
FIXED_CREATED = dt.datetime(2025, 1, 1)
ZIP_DATE = (1980, 1, 1, 0, 0, 0)

ZIP_BOMB_LIMIT = 8 * 1024 * 1024  # max_unzipped_bytes the zip-bomb cases are run with
ZIP_BOMB_PADDING = 20 * 1024 * 1024  # the padded sheet inflates to ~20 MB (< 30 KB on disk)
OVERSIZED_ROWS = 620  # the oversized csv: ~50 KB, the largest file of the corpus

# --------------------------------------------------------------------------- rows

ACTIVITIES_HEADER = [
    "活动日期",
    "结对编号",
    "活动类型",
    "活动名称",
    "参与人数",
    "其中党员人数",
    "解决问题数",
    "收集建议数",
]
PAIRINGS_HEADER = [
    "结对编号",
    "城市单位代码",
    "城市单位名称",
    "农村单位代码",
    "农村单位名称",
    "结对形式",
    "结对日期",
    "是否签订协议",
]
INCOME_HEADER = [
    "结对编号",
    "村集体增收（元）",
    "村民增收（元）",
    "农产品销售量（吨）",
    "农产品销售额（元）",
    "带动就业人数",
    "受益户数",
]

GOOD_ACTIVITIES = [
    ["2025-01-05", "KRL-YJ", "主题党日", "新年主题党日", "30", "20", "1", "2"],
    ["2025-01-12", "KRL-LW", "志愿服务", "冬季送温暖", "45", "10", "0", "3"],
]
GOOD_PAIRINGS = [
    ["KRL-YJ", "652801412005", "雅居社区", "652801207200", "托布力其村", "一对一", "2023-03-01", "是"],
    ["KRL-LW", "652801412003", "蓝湾社区", "652801207201", "上牙克托格拉克村", "一对一", "2023-03-01", "否"],
]


def activity(
    date: str = "2025-01-20",
    pairing: str = "KRL-YJ",
    kind: str = "培训",
    title: str = "电商培训",
    participants: Any = "12",
    party: Any = "4",
    problems: Any = "0",
    suggestions: Any = "1",
) -> list[Any]:
    return [date, pairing, kind, title, participants, party, problems, suggestions]


def pairing(
    code: str = "KRL-GN",
    urban: str = "652801412004",
    urban_name: str = "冠农社区",
    rural: str = "652801207202",
    rural_name: str = "下牙克托格拉克村",
    form: str = "一对一",
    paired_on: str = "2024-05-01",
    signed: str = "是",
) -> list[Any]:
    return [code, urban, urban_name, rural, rural_name, form, paired_on, signed]


# --------------------------------------------------------------------------- writers


def csv_bytes(rows: list[list[Any]], encoding: str = "utf-8") -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    for row in rows:
        writer.writerow(row)
    return buf.getvalue().encode(encoding)


@dataclass(frozen=True)
class Formula:
    """A formula cell with its cached result, as Excel saves it (``=1/0`` cached as ``#DIV/0!``)."""

    formula: str
    cached: Any


def xlsx_bytes(sheets: list[tuple[str, list[list[Any]]]]) -> bytes:
    """A workbook of literal cells: strings stay strings (``=SUM(...)`` typed as text is text)."""
    buf = io.BytesIO()
    wb = xlsxwriter.Workbook(buf, {"in_memory": True})
    wb.set_properties({"created": FIXED_CREATED})
    for name, rows in sheets:
        ws = wb.add_worksheet(name)
        for r, row in enumerate(rows):
            for c, value in enumerate(row):
                if value is None:
                    continue
                if isinstance(value, Formula):
                    ws.write_formula(r, c, value.formula, None, value.cached)
                elif isinstance(value, int | float):
                    ws.write_number(r, c, value)
                else:
                    ws.write_string(r, c, str(value))
    wb.close()
    return buf.getvalue()


def rezip(data: bytes, replace: dict[str, bytes]) -> bytes:
    """The same zip with some members' contents replaced (fixed dates, deflated, same order)."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            new = zipfile.ZipInfo(info.filename, date_time=ZIP_DATE)
            new.compress_type = zipfile.ZIP_DEFLATED
            new.external_attr = info.external_attr
            new.create_system = 0
            dst.writestr(new, replace.get(info.filename, src.read(info.filename)), compresslevel=9)
    return out.getvalue()


def padded_workbook() -> bytes:
    """A small, valid activities workbook whose sheet XML is padded with whitespace to ~20 MB."""
    book = xlsx_bytes([("共建活动", [ACTIVITIES_HEADER, *GOOD_ACTIVITIES])])
    with zipfile.ZipFile(io.BytesIO(book)) as zf:
        sheet = zf.read("xl/worksheets/sheet1.xml")
    padded = sheet.replace(b"</sheetData>", b" " * ZIP_BOMB_PADDING + b"</sheetData>", 1)
    return rezip(book, {"xl/worksheets/sheet1.xml": padded})


def lying_sizes(data: bytes, member: str, declared: int) -> bytes:
    """Patch the local header and the central directory so they declare ``member`` inflates to
    ``declared`` bytes (the compressed data and its CRC are left as they are)."""
    buf = bytearray(data)
    name = member.encode()
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        info = zf.getinfo(member)
    local = info.header_offset
    assert buf[local : local + 4] == b"PK\x03\x04"
    struct.pack_into("<I", buf, local + 22, declared)  # local header: uncompressed size
    eocd = buf.rfind(b"PK\x05\x06")
    count, _, offset = struct.unpack_from("<HII", buf, eocd + 10)
    for _ in range(count):
        assert buf[offset : offset + 4] == b"PK\x01\x02"
        name_len, extra_len, comment_len = struct.unpack_from("<HHH", buf, offset + 28)
        if bytes(buf[offset + 46 : offset + 46 + name_len]) == name:
            struct.pack_into("<I", buf, offset + 24, declared)  # central directory: uncompressed size
            break
        offset += 46 + name_len + extra_len + comment_len
    else:
        raise AssertionError(f"{member} not in the central directory")
    return bytes(buf)


def plain_zip(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for name, content in members.items():
            info = zipfile.ZipInfo(name, date_time=ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, content, compresslevel=9)
    return out.getvalue()


def json_bytes(doc: Any) -> bytes:
    return (json.dumps(doc, ensure_ascii=False, indent=1) + "\n").encode("utf-8")


def json_activity(**overrides: Any) -> dict[str, Any]:
    record = {
        "activity_date": "2025-01-05",
        "pairing_code": "KRL-YJ",
        "activity_type": "training",
        "title": "电商培训",
        "participants": 12,
        "party_member_participants": 3,
    }
    record.update(overrides)
    return record


def _without_party_count(record: dict[str, Any]) -> dict[str, Any]:
    """The record with party_member_participants sent under a name the contract does not know."""
    out = {k: v for k, v in record.items() if k != "party_member_participants"}
    out["party_members"] = record["party_member_participants"]
    return out


# --------------------------------------------------------------------------- cases


@dataclass
class Case:
    path: str  # files/<landing folder>/<file name>
    failure: str  # one line: the failure kind
    build: Callable[[], bytes]
    status: str  # loaded | rejected
    errors: list[str]  # rejected: its one F-code; loaded: the sorted R-codes
    warnings: list[str] = field(default_factory=list)
    rows_loaded: int = 0
    rows_quarantined: int = 0
    data_rows: int = 0  # data rows as a human counts them; 0 for a file refused before its rows are read
    settings: dict[str, int] = field(default_factory=dict)  # Settings fields the case is run with
    message_contains: list[str] = field(default_factory=list)  # in the corpus file's first error, zh or en
    raw_values: dict[str, Any] = field(default_factory=dict)  # {table, column, values}: stored, by source row
    bad_rows: list[int] = field(default_factory=list)  # source rows (1-based) that must be in quarantine
    xfail: str | None = None  # a known bug in ingestion/: why the outcome differs from the expected one
    accept: list[str] = field(default_factory=list)  # rejected: other codes the contract allows for this file

    def manifest_entry(self) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "path": self.path,
            "failure": self.failure,
            "status": self.status,
            "errors": sorted(self.errors),
            "warnings": sorted(self.warnings),
            "rows_loaded": self.rows_loaded,
            "rows_quarantined": self.rows_quarantined,
            "data_rows": self.data_rows,
        }
        if self.status == "loaded":
            entry["bad_rows"] = self.bad_rows
        for key in ("settings", "message_contains", "raw_values", "xfail", "accept"):
            if getattr(self, key):
                entry[key] = getattr(self, key)
        return entry


def at(file_name: str, folder: str = UNIT) -> str:
    return f"files/{folder}/{file_name}"


def named(kind: str, suffix: str, period: str = PERIOD) -> str:
    return f"{UNIT}_{period}_{kind}.{suffix}"


def rejected(path: str, failure: str, code: str, build: Callable[[], bytes], **kw: Any) -> Case:
    return Case(path=path, failure=failure, build=build, status="rejected", errors=[code], **kw)


def loaded(
    path: str, failure: str, build: Callable[[], bytes], errors: list[str], loaded_: int, quarantined: int, **kw: Any
) -> Case:
    """A file that loads. Most have a header, two good rows and one bad row: row 4, unless ``bad_rows`` says."""
    kw.setdefault("bad_rows", [4] if quarantined == 1 else [])
    return Case(
        path=path,
        failure=failure,
        build=build,
        status="loaded",
        errors=errors,
        rows_loaded=loaded_,
        rows_quarantined=quarantined,
        data_rows=loaded_ + quarantined,
        **kw,
    )


def activities_csv(*bad: list[Any], preamble: list[list[Any]] | None = None) -> Callable[[], bytes]:
    return lambda: csv_bytes([*(preamble or []), ACTIVITIES_HEADER, *GOOD_ACTIVITIES, *bad])


def pairings_csv(*bad: list[Any], header: list[str] = PAIRINGS_HEADER) -> Callable[[], bytes]:
    return lambda: csv_bytes([header, *GOOD_PAIRINGS, *bad])


def _good_activities_workbook() -> bytes:
    return xlsx_bytes([("共建活动", [ACTIVITIES_HEADER, *GOOD_ACTIVITIES, activity()])])


def _oversized_csv() -> bytes:
    rows = [
        activity(date=f"2025-01-{1 + i % 31:02d}", title=f"共建活动第{i + 1}期（冬季集中宣讲）")
        for i in range(OVERSIZED_ROWS)
    ]
    return csv_bytes([ACTIVITIES_HEADER, *rows])


def _bad_encoding_csv() -> bytes:
    head = csv_bytes([ACTIVITIES_HEADER, *GOOD_ACTIVITIES])
    return head + b"2025-01-20,KRL-YJ,\x80\xff\x80\xff,\xff\x80\xff,12,4,0,1\n"


def _utf16_csv() -> bytes:
    """UTF-16 little-endian with its BOM (FF FE), as Windows writes "Unicode": accepted (contract v1.1)."""
    return b"\xff\xfe" + csv_bytes([ACTIVITIES_HEADER, *GOOD_ACTIVITIES]).decode("utf-8").encode("utf-16-le")


def _utf16_no_bom_csv() -> bytes:
    """The same text in UTF-16 LE without a BOM: the contract accepts UTF-16 only with its BOM."""
    return csv_bytes([ACTIVITIES_HEADER, *GOOD_ACTIVITIES]).decode("utf-8").encode("utf-16-le")


def _ole2() -> bytes:
    # the OLE2 compound-file signature and the start of its header, as an old .xls / .doc begins,
    # and nothing after it: no FAT, no directory, no stream (an upload cut off)
    header = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(16) + b"\x3e\x00\x03\x00\xfe\xff\x09\x00\x06\x00"
    return header + bytes(512 - len(header)) + "共建活动统计表（Word 97-2003 文档）".encode("utf-16-le")


def ole2_compound(root_clsid: bytes, streams: dict[str, bytes]) -> bytes:
    """A Compound File Binary (OLE2, version 3, 512-byte sectors) holding ``streams`` under its root,
    as Word 97-2003 and Excel 97-2003 files are. Each stream is padded to whole sectors of at least
    4096 bytes (the mini-stream cutoff), so every stream lives in ordinary sectors: one FAT sector,
    one directory sector, then the streams' sectors in order."""
    end, free, fat_sect = 0xFFFFFFFE, 0xFFFFFFFF, 0xFFFFFFFD
    names = sorted(streams, key=lambda n: (len(n), n.upper()))  # the directory's order of names
    datas = []
    for name in names:
        data = streams[name]
        size = max(4096, -(-len(data) // 512) * 512)
        datas.append(data + bytes(size - len(data)))
    fat = [fat_sect, end]
    starts, sector = [], 2
    for data in datas:
        count = len(data) // 512
        starts.append(sector)
        fat += [sector + i + 1 for i in range(count - 1)] + [end]
        sector += count
    assert len(fat) <= 128, "one FAT sector"
    fat += [free] * (128 - len(fat))

    def entry(
        name: str, kind: int, start: int, size: int, child: int = free, right: int = free, clsid: bytes = b""
    ) -> bytes:
        encoded = (name + "\0").encode("utf-16-le")
        return (
            encoded.ljust(64, b"\0")
            + struct.pack("<HBB", len(encoded), kind, 1)  # name length, type, colour (black)
            + struct.pack("<III", free, right, child)  # left sibling, right sibling, child
            + clsid.ljust(16, b"\0")
            + bytes(4 + 8 + 8)  # state bits, creation and modification times (none)
            + struct.pack("<IQ", start, size)
        )

    directory = entry("Root Entry", 5, end, 0, child=1, clsid=root_clsid)
    for i, (name, start) in enumerate(zip(names, starts, strict=True), start=1):
        directory += entry(name, 2, start, len(streams[name]), right=i + 1 if i < len(names) else free)
    assert len(directory) <= 512, "one directory sector"
    directory = directory.ljust(512, b"\0")
    header = (
        b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
        + bytes(16)
        + struct.pack("<HHHHH", 0x003E, 0x0003, 0xFFFE, 9, 6)  # minor, major, byte order, sector shifts
        + bytes(6)
        + struct.pack("<IIIIIIIII", 0, 1, 1, 0, 4096, end, 0, end, 0)
        + struct.pack("<I", 0)  # DIFAT[0]: the FAT is sector 0
        + struct.pack("<I", free) * 108
    )
    assert len(header) == 512
    return header + struct.pack("<128I", *fat) + directory + b"".join(datas)


WORD_CLSID = bytes.fromhex("0609020000000000c000000000000046")  # {00020906-0000-0000-C000-000000000046}


def _word_doc() -> bytes:
    """A Word 97-2003 document (.doc): OLE2 with WordDocument and 1Table streams, no Workbook."""
    fib = struct.pack("<HHHH", 0xA5EC, 0x00C1, 0x0000, 0x0804)  # wIdent, nFib, unused, lid zh-CN
    text = "库尔勒市2025年1月城乡结对共建活动情况汇报".encode("utf-16-le")
    return ole2_compound(WORD_CLSID, {"WordDocument": fib + bytes(0x600 - len(fib)) + text, "1Table": bytes(512)})


def _html_xls() -> bytes:
    """What web systems send as "导出Excel": an HTML page named .xls, with Excel's namespaces."""
    cells = "".join(f"<th>{h}</th>" for h in ACTIVITIES_HEADER)
    body = "".join("<tr>" + "".join(f"<td>{v}</td>" for v in row) + "</tr>" for row in GOOD_ACTIVITIES)
    return (
        '<html xmlns:o="urn:schemas-microsoft-com:office:office" '
        'xmlns:x="urn:schemas-microsoft-com:office:excel" xmlns="http://www.w3.org/TR/REC-html40">\r\n'
        '<head><meta http-equiv="Content-Type" content="text/html; charset=utf-8">\r\n'
        "<!--[if gte mso 9]><xml><x:ExcelWorkbook><x:ExcelWorksheets><x:ExcelWorksheet>"
        "<x:Name>共建活动</x:Name><x:WorksheetOptions><x:DisplayGridlines/></x:WorksheetOptions>"
        "</x:ExcelWorksheet></x:ExcelWorksheets></x:ExcelWorkbook></xml><![endif]-->\r\n"
        f'</head><body><table border="1"><tr>{cells}</tr>{body}</table></body></html>\r\n'
    ).encode()


def _html_table() -> bytes:
    cells = "".join(f"<th>{h}</th>" for h in ACTIVITIES_HEADER)
    body = "".join("<tr>" + "".join(f"<td>{v}</td>" for v in row) + "</tr>" for row in GOOD_ACTIVITIES)
    return (
        '<html><head><meta charset="utf-8"><title>共建活动导出</title></head><body>'
        f"<table><tr>{cells}</tr>{body}</table></body></html>\n"
    ).encode()


def _pdf() -> bytes:
    return (
        b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n"
        b"2 0 obj\n<< /Type /Pages /Kids [] /Count 0 >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n"
    )


def _rtf() -> bytes:
    return b"{\\rtf1\\ansi\\deff0 {\\fonttbl {\\f0 SimSun;}}\\f0 \\u20849?\\u24314?\\par }\n"


def _docx() -> bytes:
    return plain_zip(
        {
            "[Content_Types].xml": b'<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/'
            b'package/2006/content-types"/>',
            "word/document.xml": "<w:document><w:body><w:p><w:t>共建活动情况汇报</w:t></w:p></w:body>"
            "</w:document>".encode(),
        }
    )


def _truncated_xlsx() -> bytes:
    book = _good_activities_workbook()
    return book[: len(book) // 2]


def _zip_not_workbook() -> bytes:
    return plain_zip({"共建活动.csv": csv_bytes([ACTIVITIES_HEADER, *GOOD_ACTIVITIES])})


def _no_table_xlsx() -> bytes:
    return xlsx_bytes(
        [
            ("填报说明", [["请按模板填写"], ["每月5日前报送"]]),
            ("Sheet1", [["序号", "村名", "备注"], [1, "托布力其村", "已走访"], [2, "上牙克托格拉克村", "已走访"]]),
        ]
    )


def _headers_only_xlsx() -> bytes:
    return xlsx_bytes([("结对关系", [PAIRINGS_HEADER]), ("共建活动", [ACTIVITIES_HEADER, [], []])])


def _pending_count_xlsx() -> bytes:
    title = ["库尔勒市2025年1月城乡结对共建活动统计表"]
    block = ["填报单位：库尔勒市", None, None, None, "报告期：2025年1月"]
    rows = [[*r[:4], int(r[4]), int(r[5]), int(r[6]), int(r[7])] for r in GOOD_ACTIVITIES]
    bad = ["2025-01-20", "KRL-LW", "培训", "农技培训", "待统计", 4, 0, 1]
    return xlsx_bytes([("共建活动", [title, block, ACTIVITIES_HEADER, *rows, bad])])


def _excel_error_xlsx(column: int, formula: str, cached: str) -> Callable[[], bytes]:
    def build() -> bytes:
        bad: list[Any] = ["2025-01-20", "KRL-LW", "培训", "农技培训", 12, 4, 0, 1]
        bad[column] = Formula(formula, cached)
        rows = [[*r[:4], int(r[4]), int(r[5]), int(r[6]), int(r[7])] for r in GOOD_ACTIVITIES]
        return xlsx_bytes([("共建活动", [ACTIVITIES_HEADER, *rows, bad])])

    return build


FORMULA_TITLES = ['=HYPERLINK("http://x","y")', "+86 123", "@cmd", "-2+3"]


def _formula_cells_csv() -> bytes:
    rows = [activity(date=f"2025-01-{10 + i}", title=t) for i, t in enumerate(FORMULA_TITLES)]
    rows.append(activity(date="2025-01-20", title="汇总行", participants="=SUM(E2:E3)"))
    return csv_bytes([ACTIVITIES_HEADER, *rows])


def _formula_cells_xlsx() -> bytes:
    rows: list[list[Any]] = [activity(date=f"2025-01-{10 + i}", title=t) for i, t in enumerate(FORMULA_TITLES)]
    rows.append(activity(date="2025-01-20", title="汇总行", participants="=SUM(E2:E3)"))
    return xlsx_bytes([("共建活动", [ACTIVITIES_HEADER, *rows])])


def _subtotal_rows() -> list[list[Any]]:
    """Activities grouped by pairing, a 小计 row under each group, a 合计 row at the end (all adding up)."""
    yj, lw = [GOOD_ACTIVITIES[0], activity()], [GOOD_ACTIVITIES[1]]

    def subtotal(rows: list[list[Any]]) -> list[Any]:
        return ["小计", "", "", "", *(str(sum(int(r[i]) for r in rows)) for i in range(4, 8))]

    return [ACTIVITIES_HEADER, *yj, subtotal(yj), *lw, subtotal(lw), ["合计", *subtotal(yj + lw)[1:]]]


def _subtotals_xlsx() -> bytes:
    rows = [[int(c) if c.isdigit() else c for c in row] for row in _subtotal_rows()]
    return xlsx_bytes([("共建活动", rows)])


def _xml_bomb_xlsx() -> bytes:
    """Billion laughs: nested entities in sharedStrings.xml that would expand to 10^9 characters."""
    book = xlsx_bytes([("共建活动", [ACTIVITIES_HEADER, *GOOD_ACTIVITIES])])
    with zipfile.ZipFile(io.BytesIO(book)) as zf:
        strings = zf.read("xl/sharedStrings.xml")
    declaration, rest = strings.split(b"\n", 1)
    entities = b'<!ENTITY a "aaaaaaaaaa">' + b"".join(
        b'<!ENTITY %s "%s">' % (bytes([98 + i]), b"&%s;" % bytes([97 + i]) * 10) for i in range(8)
    )
    rest = rest.replace("新年主题党日".encode(), b"&i;", 1)
    return rezip(book, {"xl/sharedStrings.xml": declaration + b"\n<!DOCTYPE sst [" + entities + b"]>\n" + rest})


def _blank_line_ragged_csv() -> bytes:
    body = csv_bytes([ACTIVITIES_HEADER, GOOD_ACTIVITIES[0]]) + b"\n" + csv_bytes([GOOD_ACTIVITIES[1]])
    return body + csv_bytes([[*activity(participants="-3", party="0"), "", ""]])  # two cells wider than the header


def _income_csv(*rows: list[Any]) -> Callable[[], bytes]:
    return lambda: csv_bytes([INCOME_HEADER, *rows])


CASES: list[Case] = [
    # ---- file level: the whole file is refused -----------------------------------------
    rejected(
        at(named("activities_bad_encoding", "csv")),
        "bytes that are neither UTF-8 nor GB18030 (0x80/0xFF) / 编码无法识别",
        "F013_BAD_ENCODING",
        _bad_encoding_csv,
    ),
    rejected(
        at(named("activities_utf16_no_bom", "csv")),
        "a CSV in UTF-16 without a BOM (only UTF-16 with a BOM is accepted) / 无 BOM 的 UTF-16 编码",
        "F013_BAD_ENCODING",
        _utf16_no_bom_csv,
    ),
    rejected(
        at(named("activities_truncated", "xlsx")),
        "truncated xlsx: the first half of a real workbook (upload cut off) / 工作簿不完整",
        "F001_UNREADABLE",
        _truncated_xlsx,
    ),
    rejected(
        at(named("activities_zip_not_workbook", "xlsx")),
        "a plain zip archive renamed .xlsx (no [Content_Types].xml) / 压缩包改名",
        "F001_UNREADABLE",
        _zip_not_workbook,
    ),
    rejected(
        at(named("activities_ole2_doc", "xlsx")),
        "an .xlsx that is really an OLE2 .doc/.xls (D0 CF 11 E0 A1 B1 1A E1) / 旧版 Office 文件",
        "F016_NOT_XLSX",
        _ole2,
    ),
    rejected(
        at(named("activities_html_table", "xlsx")),
        "an .xlsx that is really an HTML table (web-system export) / 网页表格",
        "F016_NOT_XLSX",
        _html_table,
    ),
    rejected(at(named("activities_pdf", "xlsx")), "a PDF named .xlsx / PDF 改名", "F016_NOT_XLSX", _pdf),
    rejected(
        at(named("activities_rtf", "xlsx")), "an RTF (Word) document named .xlsx / RTF 改名", "F016_NOT_XLSX", _rtf
    ),
    rejected(at(named("activities_empty", "csv")), "an empty file (0 bytes) / 空文件", "F003_EMPTY_FILE", lambda: b""),
    rejected(
        at(named("activities_header_only", "csv")),
        "a CSV with only the header row / 只有表头",
        "F015_NO_DATA",
        lambda: csv_bytes([ACTIVITIES_HEADER]),
    ),
    rejected(
        at(named("activities_total_only", "csv")),
        "header, a blank row and a 合计 row, no detail rows / 只有合计行",
        "F015_NO_DATA",
        lambda: csv_bytes([ACTIVITIES_HEADER, [""] * 8, ["合计", "", "", "", "0", "0", "0", "0"]]),
    ),
    rejected(
        at(named("headers_only", "xlsx")),
        "a workbook whose sheets (结对关系, 共建活动) have headers but no rows / 各表均无数据",
        "F015_NO_DATA",
        _headers_only_xlsx,
    ),
    rejected(
        at("999999_2025-01_activities_unknown_unit.csv", folder="999999"),
        "unknown reporting unit: landing folder and file name say 999999 / 单位代码不在区划库",
        "F005_UNKNOWN_UNIT",
        activities_csv(),
        message_contains=["999999"],
    ),
    rejected(
        at(f"{UNIT}_activities_no_period.csv"),
        "no period in the file, its name or its folder / 无报告期",
        "F007_NO_PERIOD",
        activities_csv(),
    ),
    rejected(
        at(named("activities_contradictory_period", "csv")),
        "contradictory period: file name 2025-01, title row 2025年2月 / 报告期矛盾",
        "F008_CONTRADICTORY_METADATA",
        activities_csv(preamble=[["库尔勒市2025年2月城乡结对共建活动统计表"]]),
        message_contains=["2025-02", "2025-01"],
    ),
    rejected(
        at(named("activities_contradictory_unit", "csv")),
        "contradictory unit: landing folder 652801, 填报单位 line 尉犁县（652823） / 填报单位矛盾",
        "F008_CONTRADICTORY_METADATA",
        activities_csv(preamble=[["填报单位：尉犁县（652823）"]]),
        message_contains=["652823", "652801"],
    ),
    rejected(
        at("2025-01_activities_no_unit.csv", folder="unsorted"),
        "no unit: folder 'unsorted', no code in the file or its name / 无填报单位",
        "F006_NO_UNIT",
        activities_csv(),
    ),
    rejected(
        at(named("no_table", "xlsx")),
        "a workbook with no recognisable header (说明 sheet, 序号/村名/备注 list) / 无可识别报表",
        "F004_NO_TABLE",
        _no_table_xlsx,
        message_contains=["填报说明", "Sheet1"],
    ),
    rejected(
        at(named("notes", "csv")),
        "a CSV with no recognisable header / 无可识别表头",
        "F004_NO_TABLE",
        lambda: csv_bytes([["说明", "内容"], ["本月无活动", ""]]),
    ),
    rejected(
        at(named("activities_missing_column", "csv")),
        "a CSV missing a required column (其中党员人数 typed as 党员数量) / 缺必填列",
        "F011_MISSING_COLUMNS",
        lambda: csv_bytes(
            [["活动日期", "结对编号", "活动类型", "活动名称", "参与人数", "党员数量"], GOOD_ACTIVITIES[0][:6]]
        ),
        message_contains=["其中党员人数(party_member_participants)", "活动日期", "党员数量", "党员数量→其中党员人数"],
    ),
    rejected(
        at(named("missing_column", "json")),
        "JSON activities without party_member_participants / JSON 缺必填字段",
        "F011_MISSING_COLUMNS",
        lambda: json_bytes(
            {"reporting_unit_code": UNIT, "period": PERIOD, "activities": [_without_party_count(json_activity())]}
        ),
        message_contains=["party_member_participants", "party_members"],
    ),
    rejected(
        at(named("broken", "json")),
        "broken JSON (cut off mid-document) / JSON 语法错误",
        "F012_BAD_JSON",
        lambda: json_bytes({"reporting_unit_code": UNIT, "period": PERIOD, "activities": [json_activity()]})[:90],
    ),
    rejected(
        at(named("activities_not_list", "json")),
        "JSON whose activities is an object, not a list of objects / activities 不是对象列表",
        "F012_BAD_JSON",
        lambda: json_bytes({"reporting_unit_code": UNIT, "period": PERIOD, "activities": json_activity()}),
        message_contains=["activities"],
    ),
    rejected(
        at(named("activities_list_of_lists", "json")),
        "JSON whose activities is a list of arrays / activities 为数组列表",
        "F012_BAD_JSON",
        lambda: json_bytes({"reporting_unit_code": UNIT, "period": PERIOD, "activities": [GOOD_ACTIVITIES[0]]}),
    ),
    rejected(
        at(named("top_level_list", "json")),
        "JSON whose top level is a list / 顶层不是对象",
        "F012_BAD_JSON",
        lambda: json_bytes([json_activity()]),
    ),
    rejected(
        at(named("bad_period", "json")),
        "JSON envelope period 'sometime' (not a period) / JSON 报告期无法识别",
        "F007_NO_PERIOD",
        lambda: json_bytes({"reporting_unit_code": UNIT, "period": "sometime", "activities": [json_activity()]}),
    ),
    rejected(
        at(named("other_unit", "json")),
        "JSON envelope says 652823, file name and landing folder say 652801 / JSON 单位与目录矛盾",
        "F008_CONTRADICTORY_METADATA",
        lambda: json_bytes({"reporting_unit_code": "652823", "period": PERIOD, "activities": [json_activity()]}),
        message_contains=["json reporting_unit_code = 652823"],
    ),
    rejected(at(named("report", "pdf")), "a .pdf file / PDF 文件", "F002_UNSUPPORTED_TYPE", _pdf),
    rejected(at(named("report", "docx")), "a .docx file / Word 文件", "F002_UNSUPPORTED_TYPE", _docx),
    rejected(
        at(named("activities_cut_off", "xls")),
        "an .xls cut off after its OLE2 header (no directory, no workbook stream) / 旧版工作簿不完整",
        "F001_UNREADABLE",
        _ole2,
    ),
    rejected(
        at(named("activities_word_doc", "xls")),
        "a Word 97-2003 .doc named .xls (OLE2 with WordDocument, no Workbook stream) / Word 文档改名 .xls",
        "F016_NOT_XLSX",
        _word_doc,
        accept=["F001_UNREADABLE"],
    ),
    rejected(
        at(named("activities_web_export", "xls")),
        "an HTML page saved as .xls (a web system's 导出Excel) / 网页导出的“Excel”",
        "F016_NOT_XLSX",
        _html_xls,
    ),
    rejected(
        at(f"{UNIT}_activities_title_half_year.csv"),
        "title row 库尔勒市2025年1-6月… : a span of six months, not a period / 报告期为1-6月",
        "F017_NOT_A_PERIOD",
        activities_csv(preamble=[["库尔勒市2025年1-6月城乡结对共建活动统计表"]]),
        message_contains=["1-6月"],
    ),
    rejected(
        at(f"{UNIT}_activities_cumulative.csv"),
        "报告期：2025年1-6月累计 in the block above the table: cumulative figures / 累计数",
        "F017_NOT_A_PERIOD",
        activities_csv(preamble=[["填报单位：库尔勒市", "", "", "", "报告期：2025年1-6月累计"]]),
        message_contains=["1-6月"],
    ),
    rejected(
        at(f"{UNIT}_2025年上半年_activities.csv"),
        "上半年 in the file name: a half year, not a period / 报告期为上半年",
        "F017_NOT_A_PERIOD",
        activities_csv(),
        message_contains=["上半年"],
    ),
    rejected(
        at(f"{UNIT}_activities_full_year.csv"),
        "title row 库尔勒市2025年全年…汇总表: a whole year, not a period / 报告期为全年",
        "F017_NOT_A_PERIOD",
        activities_csv(preamble=[["库尔勒市2025年全年城乡结对共建活动汇总表"]]),
        message_contains=["全年"],
    ),
    rejected(
        at(f"{UNIT}_{PERIOD}_activities"),
        "a file with no extension / 无扩展名",
        "F002_UNSUPPORTED_TYPE",
        activities_csv(),
    ),
    rejected(
        at(named("activities_oversized", "csv")),
        "an oversized file (run with max_file_bytes one byte below its size) / 文件过大",
        "F009_TOO_LARGE",
        _oversized_csv,
        # settings.max_file_bytes is filled in from the file's size by manifest()
    ),
    rejected(
        at(named("activities_zip_bomb", "xlsx")),
        "zip bomb with honest sizes: sheet XML padded to ~20 MB (run with max_unzipped_bytes 8 MB) / 压缩炸弹",
        "F010_ZIP_BOMB",
        padded_workbook,
        settings={"max_unzipped_bytes": ZIP_BOMB_LIMIT},
    ),
    rejected(
        at(named("activities_zip_bomb_lying", "xlsx")),
        "zip bomb whose local headers and central directory declare 1 KB for the ~20 MB sheet / 谎报大小的压缩炸弹",
        "F010_ZIP_BOMB",
        lambda: lying_sizes(padded_workbook(), "xl/worksheets/sheet1.xml", 1024),
        settings={"max_unzipped_bytes": ZIP_BOMB_LIMIT},
        message_contains=["+"],  # the size is what inflating found before it stopped: '8388609+'
    ),
    rejected(
        at(named("activities_xml_bomb", "xlsx")),
        "billion laughs: nested XML entities in sharedStrings.xml (never expanded) / XML 实体炸弹",
        "F001_UNREADABLE",
        _xml_bomb_xlsx,
    ),
    # ---- row level: the file loads, bad rows are quarantined ----------------------------
    loaded(
        at(named("pairings_mangled_code", "csv")),
        "Excel-mangled division code 3.70213E+11 / 区划代码被科学计数法破坏",
        pairings_csv(pairing(rural="3.70213E+11", rural_name="坏代码")),
        ["R007_BAD_DIVISION_CODE"],
        2,
        1,
    ),
    loaded(
        at(named("pairings_unknown_region", "csv")),
        "a division code not in the register (652801999999) / 区划代码不存在",
        pairings_csv(pairing(rural="652801999999", rural_name="无此村")),
        ["R008_UNKNOWN_REGION"],
        2,
        1,
    ),
    loaded(
        at(named("pairings_future_date", "csv")),
        "pairing date in the future (2099-03-01) / 结对日期晚于今天",
        pairings_csv(pairing(paired_on="2099-03-01")),
        ["R013_DATE_IN_FUTURE"],
        2,
        1,
    ),
    loaded(
        at(named("pairings_end_before_start", "csv")),
        "终止日期 before 结对日期 / 终止日期早于结对日期",
        pairings_csv(
            [*pairing(paired_on="2024-05-01"), "2024-01-31"],
            header=[*PAIRINGS_HEADER, "终止日期"],
        ),
        ["R014_END_BEFORE_START"],
        2,
        1,
    ),
    loaded(
        at(named("pairings_bad_bool", "csv")),
        "是否签订协议 = 不详 (not 是/否) / 是否值无效",
        pairings_csv(pairing(signed="不详")),
        ["R015_BAD_BOOL"],
        2,
        1,
    ),
    loaded(
        at(named("pairings_unit_name_unresolved", "csv")),
        "a rural unit named 光华村 without its code: no unit of 库尔勒市 has that name / 单位名称无法解析",
        pairings_csv(pairing(rural="", rural_name="光华村")),
        ["R017_UNIT_NAME_UNRESOLVED"],
        2,
        1,
        message_contains=["光华村"],
    ),
    loaded(
        at(named("activities_utf16", "csv")),
        "a CSV saved as UTF-16 LE with its BOM ('Unicode' export): accepted in contract v1.1 / 带 BOM 的 UTF-16",
        _utf16_csv,
        [],
        2,
        0,
    ),
    loaded(
        at(named("activities_negative_count", "csv")),
        "negative count (参与人数 -3) / 人数为负",
        activities_csv(activity(participants="-3", party="0")),
        ["R004_NEGATIVE"],
        2,
        1,
    ),
    loaded(
        at(named("activities_party_above_participants", "csv")),
        "party members above participants (10 participants, 12 party members) / 党员人数大于参与人数",
        activities_csv(activity(participants="10", party="12")),
        ["R011_PARTY_ABOVE_PARTICIPANTS"],
        2,
        1,
    ),
    loaded(
        at(named("activities_date_outside_period", "csv")),
        "activity date 2025-02-01 outside the period 2025-01 / 日期不在报告期内",
        activities_csv(activity(date="2025-02-01")),
        ["R010_DATE_OUTSIDE_PERIOD"],
        2,
        1,
    ),
    loaded(
        at(named("activities_unknown_pairing", "csv")),
        "unknown pairing code KRL-XX / 结对编号未登记",
        activities_csv(activity(pairing="KRL-XX")),
        ["R009_UNKNOWN_PAIRING"],
        2,
        1,
    ),
    loaded(
        at(named("activities_duplicate_rows", "csv")),
        "duplicate rows (row 4 repeats row 3) / 重复行",
        activities_csv(GOOD_ACTIVITIES[1]),
        ["R012_DUPLICATE_ROW"],
        2,
        1,
    ),
    loaded(
        at(named("activities_formula_cells", "csv")),
        "formula-looking cells: =SUM(E2:E3) in a count; =HYPERLINK(…), +86 123, @cmd, -2+3 as titles are text"
        " / 公式样式单元格",
        _formula_cells_csv,
        ["R002_NOT_A_NUMBER"],
        4,
        1,
        raw_values={"table": "activities", "column": "title", "values": FORMULA_TITLES},
        bad_rows=[6],
    ),
    loaded(
        at(named("activities_formula_cells", "xlsx")),
        "the same formula-looking cells typed as text in a workbook / 工作簿中的公式样式文本",
        _formula_cells_xlsx,
        ["R002_NOT_A_NUMBER"],
        4,
        1,
        raw_values={"table": "activities", "column": "title", "values": FORMULA_TITLES},
        bad_rows=[6],
    ),
    loaded(
        at(named("activities_pending_count", "xlsx")),
        "待统计 in a count, in a workbook with a title row and a 填报单位/报告期 block / 人数为“待统计”",
        _pending_count_xlsx,
        ["R002_NOT_A_NUMBER"],
        2,
        1,
        message_contains=["待统计"],
        bad_rows=[6],  # title row, 填报单位/报告期 row, header, two good rows, then this one
    ),
    loaded(
        at(named("activities_bad_date", "csv")),
        "an unparseable date (2025年1月下旬) / 日期无法识别",
        activities_csv(activity(date="2025年1月下旬")),
        ["R003_NOT_A_DATE"],
        2,
        1,
    ),
    loaded(
        at(named("activities_fractional_count", "csv")),
        "12.5 participants / 人数不是整数",
        activities_csv(activity(participants="12.5")),
        ["R005_NOT_INTEGER"],
        2,
        1,
    ),
    loaded(
        at(named("activities_unknown_type", "csv")),
        "unknown activity type 联欢 / 活动类型不在代码表",
        activities_csv(activity(kind="联欢")),
        ["R006_UNKNOWN_CODE"],
        2,
        1,
    ),
    loaded(
        at(named("activities_required_missing", "csv")),
        "required value empty (结对编号 blank) / 必填项为空",
        activities_csv(activity(pairing="")),
        ["R001_REQUIRED_MISSING"],
        2,
        1,
    ),
    loaded(
        at(named("activities_text_too_long", "csv")),
        "a 活动名称 of 600 characters (limit 500) / 文本过长",
        activities_csv(activity(title="结对共建" * 150)),
        ["R016_TEXT_TOO_LONG"],
        2,
        1,
    ),
    loaded(
        at(named("activities_bool_count", "json")),
        "JSON true as participants / JSON 布尔值作人数",
        lambda: json_bytes(
            {
                "reporting_unit_code": UNIT,
                "period": PERIOD,
                "activities": [json_activity(), json_activity(title="农技培训", participants=True)],
            }
        ),
        ["R002_NOT_A_NUMBER"],
        1,
        1,
        bad_rows=[2],  # json records are numbered from 1
    ),
    loaded(
        at(named("activities_excel_error_required", "xlsx")),
        "Excel error #DIV/0! cached in a formula cell of 参与人数 (required) / 公式错误值（必填列）",
        _excel_error_xlsx(4, "=1/0", "#DIV/0!"),
        ["R002_NOT_A_NUMBER"],
        2,
        1,
        message_contains=["#DIV/0!"],
    ),
    loaded(
        at(named("activities_excel_error_optional", "xlsx")),
        "Excel error #N/A cached in a formula cell of 解决问题数 (optional) / 公式错误值（选填列）",
        _excel_error_xlsx(6, "=NA()", "#N/A"),
        ["R002_NOT_A_NUMBER"],
        2,
        1,
        message_contains=["#N/A"],
    ),
    loaded(
        at(named("activities_blank_line_ragged", "csv")),
        "a blank line inside the table and a row wider than the header (negative count on line 5) / 空行与多余列",
        _blank_line_ragged_csv,
        ["R004_NEGATIVE"],
        2,
        1,
        bad_rows=[5],
    ),
    loaded(
        at(named("activities_subtotals", "csv")),
        "小计 rows under each pairing's group, a 合计 row at the end, all adding up / 分组小计",
        lambda: csv_bytes(_subtotal_rows()),
        [],
        3,
        0,
    ),
    loaded(
        at(named("activities_subtotals", "xlsx")),
        "the same 小计/合计 layout in a workbook / 工作簿分组小计",
        _subtotals_xlsx,
        [],
        3,
        0,
    ),
    # ---- warnings: the file loads, the warning is stored ----------------------------------
    loaded(
        at(named("activities_total_mismatch", "csv")),
        "a 合计 row that does not add up (参与人数 99, details 75) / 合计行与明细不符",
        lambda: csv_bytes([ACTIVITIES_HEADER, *GOOD_ACTIVITIES, ["合计", "", "", "", "99", "30", "1", "5"]]),
        [],
        2,
        0,
        warnings=["W002_TOTAL_MISMATCH"],
    ),
    loaded(
        at(named("income_no_measure", "csv")),
        "an income row with its 结对编号 and every measure empty (blank, —, /) / 收益成效无任何指标",
        _income_csv(
            ["KRL-YJ", "12000", "30000", "—", "/", "3", "12"],
            ["KRL-LW", "", "—", "/", "", "-", "无"],
        ),
        ["R018_NO_MEASURE"],
        1,
        1,
        bad_rows=[3],
    ),
    loaded(
        at(named("pairings_name_code_mismatch", "csv")),
        "rural code 652801207202 (下牙克托格拉克村委会) written with the name 艾力坎土曼村委会: the code wins"
        " / 代码与名称不符",
        pairings_csv(pairing(rural="652801207202", rural_name="艾力坎土曼村委会")),
        [],
        3,
        0,
        warnings=["W004_NAME_CODE_MISMATCH"],
        raw_values={
            "table": "pairings",
            "column": "rural_unit_code",
            "values": ["652801207200", "652801207201", "652801207202"],
        },
    ),
    loaded(
        at(named("income_negative", "csv")),
        "negative collective income (a loss of 5000 元) / 村集体增收为负",
        _income_csv(
            ["KRL-YJ", "-5000", "20000", "1.5", "8000", "2", "9"],
            ["KRL-LW", "12000", "30000", "2", "9000", "3", "12"],
        ),
        [],
        2,
        0,
        warnings=["W001_NEGATIVE_INCOME"],
    ),
]


# --------------------------------------------------------------------------- output


README_HEAD = """# Corpus of bad files (坏文件样本库)

One file per failure kind, generated by `make_corpus.py` (do not edit by hand: change the script
and run `.venv/bin/python tests/corpus/make_corpus.py`). `tests/test_corpus.py` ingests each file in
a batch between a good pairings file and a good activities file, and checks the exact code, that the
batch's other files still land, and that every row received is in the warehouse or in quarantine.

Each file lands under `files/<landing folder>/` — the landing folder names the reporting unit
(填报单位), as `landing/<unit code>/` does in production. Unless the case is about them: unit
652801 (库尔勒市), period 2025-01 (报告期), pairings KRL-YJ and KRL-LW. `manifest.json` holds the
expected outcome of every file: status, codes, rows loaded and quarantined, data rows.
Cases marked *xfail* document a known bug in `ingestion/`; their expected outcome is the correct one.
Where the contract allows two codes for one file (a Word document named `.xls` is not a workbook, and
not a readable one either), the other is listed as *or*: the manifest's `accept`.

| file | failure kind (失败类型) | expected |
|---|---|---|
"""


def manifest(sizes: dict[str, int]) -> list[dict[str, Any]]:
    entries = []
    for case in CASES:
        entry = case.manifest_entry()
        if entry["errors"] == ["F009_TOO_LARGE"]:
            entry["settings"] = {"max_file_bytes": sizes[case.path] - 1}
        entries.append(entry)
    return entries


def readme(entries: list[dict[str, Any]]) -> str:
    lines = [README_HEAD]
    for e in entries:
        codes = ", ".join(f"`{c}`" for c in e["errors"] + e["warnings"])
        if e["status"] == "loaded":
            codes = f"loaded {e['rows_loaded']}, quarantined {e['rows_quarantined']}" + (f": {codes}" if codes else "")
        else:
            codes = f"rejected: {codes}"
        if e.get("accept"):
            codes += " (or " + ", ".join(f"`{c}`" for c in e["accept"]) + ")"
        if e.get("xfail"):
            codes += " (*xfail*: known bug)"
        lines.append(f"| `{e['path'][len('files/') :]}` | {e['failure'].replace('|', '/')} | {codes} |\n")
    return "".join(lines)


def generate(out: Path) -> list[dict[str, Any]]:
    paths = [c.path for c in CASES]
    names = [Path(p).name for p in paths]
    if len(set(names)) != len(names):
        raise SystemExit(f"file names must be unique: {sorted(n for n in names if names.count(n) > 1)}")
    files = out / "files"
    if files.exists():
        shutil.rmtree(files)
    sizes: dict[str, int] = {}
    for case in CASES:
        data = case.build()
        target = out / case.path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        sizes[case.path] = len(data)
    entries = manifest(sizes)
    (out / "manifest.json").write_text(json.dumps(entries, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    (out / "README.md").write_text(readme(entries), encoding="utf-8")
    return entries


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=HERE, help="folder to write files/, manifest.json, README.md")
    args = parser.parse_args()
    entries = generate(args.out)
    total = sum((args.out / e["path"]).stat().st_size for e in entries)
    print(f"{len(entries)} files, {total:,} bytes, under {args.out / 'files'}")


if __name__ == "__main__":
    main()
