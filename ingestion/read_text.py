"""Text tables: .csv (comma-separated) and tab-separated text (.txt, .tsv, or a .csv with tabs).

Encodings are detected and recorded: UTF-8, UTF-8 with BOM, GBK, GB18030 (named when a
character outside GBK appears), and UTF-16 with a BOM — Excel's "Unicode text" export
(``.txt``: UTF-16 little-endian, tab-separated). A UTF-16 file is transcoded to a temporary
UTF-8 copy first, then read like any other. The delimiter is whichever of comma and tab
makes a header appear.

Rows are numbered by source record as Excel numbers them (a quoted line break inside a cell
is one record). Fast path: pyarrow's multi-threaded reader, when the layout lets it number
records exactly (no blank line, every row as wide as the header); otherwise pandas' C
parser, which keeps blank lines and pads short rows; a row wider than the sample showed
sends the rest of the file to the csv module (slow, exact).
"""

from __future__ import annotations

import codecs
import csv
import io
import itertools
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from ingestion import tables
from ingestion.contract import RecordKind
from ingestion.layout import HEADER_SCAN_ROWS, Header, locate_header
from ingestion.normalise import clean_text, is_empty, is_note_row, is_total_row
from ingestion.problems import FileRejected, Problem
from ingestion.tables import (
    NOTE_AFTER_TOTAL_CELLS,
    ReadResult,
    Table,
    note,
    preamble_text,
    set_aside_total,
    table_for,
)

DELIMITERS = (",", "\t")
# the first columns of a row, read even when they are no field: a 合计 row is often written
# in a 序号 column the table does not load
LEAD_COLUMNS = 2
_UTF16_BOMS = ((codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"))


def detect_encoding(path: Path, sample_bytes: int = 1 << 20) -> str:
    with path.open("rb") as fh:
        head = fh.read(sample_bytes)
    for bom, name in _UTF16_BOMS:
        if head.startswith(bom):
            return name
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if b"\x00" in head:  # UTF-16 without its BOM, or a binary file: no text encoding we can trust
        raise FileRejected(Problem.make("F013_BAD_ENCODING"))
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


def _transcoded(path: Path, encoding: str) -> Path:
    """A UTF-8 copy of a UTF-16 file (streamed), in the temporary folder."""
    fd, tmp = tempfile.mkstemp(prefix="pairstats-utf16-", suffix=".txt")
    try:
        with path.open("rb") as src, os.fdopen(fd, "wb") as dst:
            src.read(2)  # the BOM
            decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
            while block := src.read(1 << 20):
                dst.write(decoder.decode(block).encode("utf-8"))
            dst.write(decoder.decode(b"", final=True).encode("utf-8"))
    except UnicodeDecodeError as exc:
        os.unlink(tmp)
        raise FileRejected(Problem.make("F013_BAD_ENCODING")) from exc
    return Path(tmp)


def _head(path: Path, codec: str, delimiter: str) -> list[list[str]]:
    try:
        with path.open(encoding=codec, newline="", errors="strict") as fh:
            head_lines = list(itertools.islice(fh, HEADER_SCAN_ROWS + 1))
    except UnicodeDecodeError as exc:
        raise FileRejected(Problem.make("F013_BAD_ENCODING")) from exc
    return list(csv.reader(io.StringIO("".join(head_lines)), delimiter=delimiter))


def _sniff(path: Path, codec: str) -> tuple[str, list[list[str]], Header | None]:
    """The delimiter that makes a header appear (comma first), its first rows and the header."""
    first: tuple[str, list[list[str]], Header | None] | None = None
    for delimiter in DELIMITERS:
        rows = _head(path, codec, delimiter)
        header = locate_header(rows)
        if header is not None:
            return delimiter, rows, header
        first = first or (delimiter, rows, None)
    assert first is not None
    return first


def peek_text_kind(path: Path) -> RecordKind | None:
    """The record kind a text file's header declares, from its first lines."""
    encoding = detect_encoding(path)
    if encoding.startswith("utf-16"):
        copy = _transcoded(path, encoding)
        try:
            return peek_text_kind(copy)
        finally:
            copy.unlink(missing_ok=True)
    header = _sniff(path, decoder_for(encoding))[2]
    return header.kind if header else None


def read_text(path: Path, name: str) -> ReadResult:
    encoding = detect_encoding(path)
    cleanup = []
    source, codec = path, decoder_for(encoding)
    if encoding.startswith("utf-16"):
        source, codec = _transcoded(path, encoding), "utf-8"
        cleanup.append(lambda: source.unlink(missing_ok=True))
    try:
        delimiter, head_rows, header = _sniff(source, codec)
        if header is None:
            found = [clean_text(c) for r in head_rows[:3] for c in r if not is_empty(c)]
            raise FileRejected(Problem.make("F004_NO_TABLE", detail=f"；前几行 / first cells: {'、'.join(found[:12])}"))
        table = table_for(header, name, 1, head_rows[: header.index])
    except BaseException:
        for step in cleanup:
            step()
        raise
    file_format = "tsv" if delimiter == "\t" else "csv"
    if encoding != "utf-8":
        table.notes.append(note(f"文件编码为 {encoding}", f"file encoding is {encoding}"))
    if encoding.startswith("utf-16"):
        table.notes.append(
            note(
                "文件类型为 Unicode 文本（Excel“Unicode 文本”导出：UTF-16，制表符分隔）",
                "file type is Unicode text (Excel's 'Unicode text' export: UTF-16, tab-separated)",
            )
        )
    elif delimiter == "\t":
        table.notes.append(note("文件类型为制表符分隔的文本", "file type is tab-separated text"))
    table.chunks = _chunks(source, codec, delimiter, table, header.index + header.rows)
    result = ReadResult(
        file_format=file_format, tables=[table], encoding=encoding, preamble_text=preamble_text(table.preamble)
    )
    result._cleanup.extend(cleanup)
    return result


def _chunks(path: Path, encoding: str, delimiter: str, table: Table, skip: int) -> Iterator[pd.DataFrame]:
    """Data rows in chunks, numbered by source record (``skip``: records above the data)."""
    names = {c.position: c.field.name for c in table.columns}
    for p in range(LEAD_COLUMNS):
        names.setdefault(p, f"_lead{p}")
    names = dict(sorted(names.items()))
    frames = _frames_arrow(path, encoding, delimiter, names, skip)
    if frames is not None:
        for frame in frames:
            yield from _clean_chunk(table, frame, names)
        return
    yield from _chunks_pandas(path, encoding, delimiter, table, names, skip)


def _frames_arrow(
    path: Path, encoding: str, delimiter: str, names: dict[int, str], skip: int
) -> Iterator[pd.DataFrame] | None:
    import mmap

    import pyarrow as pa
    import pyarrow.csv as pacsv

    with path.open("rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
        if data.find(b"\n\n") >= 0 or data.find(b"\n\r\n") >= 0 or data.find(b"\r\r") >= 0:
            return None  # blank lines: the arrow reader would drop them and shift row numbers
    with path.open(encoding=encoding, newline="") as fh:
        reader = csv.reader(fh, delimiter=delimiter)
        width = len(next(itertools.islice(reader, skip - 1, None), []))
        # arrow skips physical lines, not records: a quoted line break in a title or a header
        # cell ('"其中\n党员人数"') makes the two differ
        header_lines = reader.line_num
    column_names = [f"c{i}" for i in range(width)]
    wanted = {p: n for p, n in names.items() if p < width}
    ragged: list[int] = []

    def on_invalid(row) -> str:  # a row narrower or wider than the header
        ragged.append(1)
        return "skip"

    try:
        arrow = pacsv.read_csv(
            path,
            read_options=pacsv.ReadOptions(
                skip_rows=header_lines,
                column_names=column_names,
                encoding="utf8" if encoding.startswith("utf-8") else encoding,
                block_size=8 << 20,
            ),
            parse_options=pacsv.ParseOptions(
                delimiter=delimiter, newlines_in_values=True, invalid_row_handler=on_invalid
            ),
            convert_options=pacsv.ConvertOptions(
                column_types={n: pa.string() for n in column_names},
                include_columns=[column_names[p] for p in wanted],
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except (pa.ArrowInvalid, UnicodeDecodeError):
        return None  # let the exact path report or cope with it
    if ragged or len(wanted) < len(names):
        return None
    arrow = arrow.rename_columns([wanted[int(n[1:])] for n in arrow.column_names])
    first = skip + 1

    def frames() -> Iterator[pd.DataFrame]:
        for start in range(0, arrow.num_rows, tables.CHUNK_ROWS):
            part = arrow.slice(start, tables.CHUNK_ROWS)
            frame = part.to_pandas()
            frame.index = pd.RangeIndex(start, start + len(frame))
            frame["_row"] = np.arange(first + start, first + start + len(frame), dtype=np.int64)
            yield frame

    return frames()


def _chunks_pandas(
    path: Path, encoding: str, delimiter: str, table: Table, names: dict[int, str], skip: int
) -> Iterator[pd.DataFrame]:
    width = max(_max_width(path, encoding, delimiter), max(names) + 1)
    next_row = skip + 1  # 1-based number of the first data record
    try:
        reader = pd.read_csv(
            path,
            sep=delimiter,
            encoding=encoding,
            header=None,
            names=range(width),
            index_col=False,
            skiprows=skip,
            dtype=str,
            keep_default_na=False,
            na_filter=False,
            skip_blank_lines=False,
            chunksize=tables.CHUNK_ROWS,
            engine="c",
        )
        for chunk in reader:
            chunk = chunk[list(names)].rename(columns=names)
            chunk["_row"] = range(next_row, next_row + len(chunk))
            next_row += len(chunk)
            yield from _clean_chunk(table, chunk, names)
    except UnicodeDecodeError as exc:
        raise FileRejected(Problem.make("F013_BAD_ENCODING")) from exc
    except pd.errors.ParserError:
        yield from _chunks_slow(path, encoding, delimiter, table, names, start_row=next_row)


def _chunks_slow(
    path: Path, encoding: str, delimiter: str, table: Table, names: dict[int, str], start_row: int
) -> Iterator[pd.DataFrame]:
    with path.open(encoding=encoding, newline="") as fh:
        batch: list[list[str]] = []
        numbers: list[int] = []
        for number, cells in enumerate(csv.reader(fh, delimiter=delimiter), start=1):
            if number < start_row:
                continue
            batch.append([cells[p] if p < len(cells) else "" for p in names])
            numbers.append(number)
            if len(batch) >= tables.CHUNK_ROWS:
                yield from _clean_chunk(table, _slow_frame(batch, numbers, names), names)
                batch, numbers = [], []
        if batch:
            yield from _clean_chunk(table, _slow_frame(batch, numbers, names), names)


def _slow_frame(batch: list[list[str]], numbers: list[int], names: dict[int, str]) -> pd.DataFrame:
    frame = pd.DataFrame(batch, columns=list(names.values()), dtype=object)
    frame["_row"] = numbers
    return frame


def _max_width(path: Path, encoding: str, delimiter: str, sample: int = 200) -> int:
    """Widest row in the first lines (title and notes rows are narrower, never wider, in practice)."""
    with path.open(encoding=encoding, newline="", errors="replace") as fh:
        widths = [len(r) for _, r in zip(range(sample), csv.reader(fh, delimiter=delimiter), strict=False)]
    return max(widths or [1]) + 2


_SUSPICIOUS_STARTS = ("合", "总", "小", "注", "备", "说", "填", "审", "联", "负", "制", "t", "T")


def _clean_chunk(table: Table, chunk: pd.DataFrame, names: dict[int, str]) -> Iterator[pd.DataFrame]:
    """Drop blank rows and notes, set total rows aside, drop the lead columns. Vectorised:
    only the rare rows whose first cells start like a total or a note are inspected one by one."""
    columns = list(names.values())  # in position order: the lead columns first
    fields = [c.field.name for c in table.columns]
    filled = (chunk[fields] != "").sum(axis=1)  # a 序号 alone is no data
    keep = filled > 0
    suspicious = pd.Series(False, index=chunk.index)
    for name in dict.fromkeys([*columns[:LEAD_COLUMNS], *fields[:2]]):
        suspicious |= chunk[name].str.lstrip().str.startswith(_SUSPICIOUS_STARTS)
    for idx in chunk.index[suspicious & keep]:
        cells = [chunk.at[idx, c] for c in columns]
        if is_total_row(cells):
            named = {f: chunk.at[idx, f] for f in fields}
            set_aside_total(table, named, int(chunk.at[idx, "_row"]), cells)
            keep[idx] = False
        elif is_note_row(cells):
            keep[idx] = False
    if table.first_total_row is not None:  # after a total row, sparse rows are notes
        keep &= ~((chunk["_row"] > table.first_total_row) & (filled < NOTE_AFTER_TOTAL_CELLS)).to_numpy()
    out = chunk[keep] if not keep.all() else chunk
    leads = [c for c in columns if c.startswith("_lead")]
    if leads:
        out = out.drop(columns=leads)
    if len(out):
        yield out
