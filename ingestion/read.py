"""Readers: a file's bytes -> recognised tables of raw cells, in chunks.

One reader per family — workbooks (``read_workbook``: .xlsx, .xls, .ods), text tables
(``read_text``: .csv and tab-separated .txt/.tsv in UTF-8, GBK/GB18030 or UTF-16) and the
JSON envelope (here). Each finds the tables in the file (a table = one record kind), locates
the header under any title rows and the 填报单位/报告期 block (over one row or two), and
yields the data rows in chunks of raw cells with their source row numbers (``tables``).
What a file is, and how it is encoded, is detected and recorded, whatever its name says.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from ingestion import tables
from ingestion.contract import RECORD_KINDS, RecordKind
from ingestion.headers import match_header
from ingestion.problems import FileRejected, Problem
from ingestion.read_text import peek_text_kind, read_text
from ingestion.read_workbook import read_workbook
from ingestion.tables import ReadResult, Table, display_name, missing_columns

WORKBOOK_SUFFIXES = (".xlsx", ".xlsm", ".xls", ".ods")
TEXT_SUFFIXES = (".csv", ".txt", ".tsv")
SUFFIXES = (*WORKBOOK_SUFFIXES, *TEXT_SUFFIXES, ".json")

__all__ = ["ReadResult", "Table", "peek_kind", "read_file"]


def read_file(path: Path, *, max_unzipped_bytes: int, suffix: str | None = None, name: str | None = None) -> ReadResult:
    """The tables of one file. ``suffix`` and ``name`` are the file's as it arrived, when
    ``path`` is not that (a reprocessed file is read from its archived copy, named after its
    hash)."""
    suffix = (suffix or path.suffix).lower()
    if path.stat().st_size == 0:
        raise FileRejected(Problem.make("F003_EMPTY_FILE"))
    if suffix in WORKBOOK_SUFFIXES:
        return read_workbook(path, max_unzipped_bytes=max_unzipped_bytes, suffix=suffix)
    if suffix in TEXT_SUFFIXES:
        return read_text(path, display_name(path, name))
    if suffix == ".json":
        return read_json(path)
    raise FileRejected(Problem.make("F002_UNSUPPORTED_TYPE", suffix=suffix or "(none)"))


def peek_kind(path: Path) -> RecordKind | None:
    """The record kind a text file's header declares (its first lines only); None for others."""
    if path.suffix.lower() not in TEXT_SUFFIXES:
        return None
    return peek_text_kind(path)


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
            missing = missing_columns(kind, columns, keys)
            if missing is not None:
                raise FileRejected(missing)
        table = Table(kind=kind, sheet=kind.name, header_row=0, columns=columns, chunks=iter(()), notes=notes)
        table.chunks = _json_chunks(table, keys, records)
        tables.append(table)
    if not tables:
        raise FileRejected(
            Problem.make("F004_NO_TABLE", detail="；JSON 中没有 pairings/activities/projects/income_effects")
        )
    envelope = {k: doc.get(k) for k in ("reporting_unit_code", "period") if doc.get(k) not in (None, "")}
    return ReadResult(file_format="json", tables=tables, envelope=envelope)


def _json_chunks(table: Table, keys: list[str], records: list[dict[str, Any]]) -> Iterator[pd.DataFrame]:
    """The records as frames of raw cells, column by column (a JSON key is a header)."""
    for start in range(0, len(records), tables.CHUNK_ROWS):
        part = records[start : start + tables.CHUNK_ROWS]
        data = {c.field.name: [r.get(keys[c.position]) for r in part] for c in table.columns}
        chunk = pd.DataFrame(data, dtype=object)
        chunk["_row"] = range(start + 1, start + 1 + len(part))
        yield chunk
