"""Writing a file's rows: good rows to ``raw.<kind>`` by COPY, bad rows to quarantine.

One ``COPY raw.<kind> FROM STDIN`` per table, opened at the first good rows; each chunk is
written as CSV by pyarrow, so the server parses one chunk while the next is prepared. A
quarantined row keeps its cells as received (header -> text) beside each of its problems.
"""

from __future__ import annotations

import json
from contextlib import ExitStack
from typing import Any

import numpy as np
import pandas as pd
import psycopg
from psycopg import sql

from ingestion.contract import FieldType, RecordKind
from ingestion.normalise import is_empty
from ingestion.problems import Problem
from ingestion.tables import Table

# a raw row's lineage; its file's hash is one join away (audit.submission_files), not on every row
LINEAGE = ("submission_id", "source_sheet", "source_row", "reporting_unit_code", "period")


def _constant(value: str | None, n: int) -> Any:
    import pyarrow as pa

    if value is None:
        return pa.nulls(n, pa.string())
    if n < 10_000:  # a small chunk: a plain array is cheaper than a dictionary and its cast
        return pa.array([value] * n, pa.string())
    return pa.DictionaryArray.from_arrays(np.zeros(n, dtype=np.int32), pa.array([value])).cast(pa.string())


class RawWriter:
    """One ``COPY raw.<kind> FROM STDIN`` per table, opened at the first good rows; each chunk
    is written as CSV by pyarrow. The server parses one chunk while the next is prepared."""

    def __init__(
        self,
        conn: psycopg.Connection,
        kind: RecordKind,
        *,
        submission_id: int,
        file_hash: str,
        sheet: str | None,
        unit: str,
        period: str | None,
    ) -> None:
        self.conn, self.kind, self.sheet = conn, kind, sheet
        self.submission_id, self.file_hash, self.unit, self.period = submission_id, file_hash, unit, period
        self._stack: ExitStack | None = None
        self._copy: Any = None
        self.columns = [*LINEAGE, *kind.field_names, "is_approximate", "approximate_fields"]

    def _open(self) -> None:
        self._stack = ExitStack()
        cur = self._stack.enter_context(self.conn.cursor())
        stmt = sql.SQL("copy {}.{} ({}) from stdin (format csv)").format(
            sql.Identifier("raw"), sql.Identifier(self.kind.name), sql.SQL(", ").join(map(sql.Identifier, self.columns))
        )
        # a writer thread sends each chunk while the next one is read and validated
        from psycopg.copy import QueuedLibpqWriter

        self._copy = self._stack.enter_context(cur.copy(stmt, writer=QueuedLibpqWriter(cur)))

    def write(self, good: pd.DataFrame, approx: pd.DataFrame) -> None:
        if good.empty:
            return
        import pyarrow as pa
        import pyarrow.csv as pacsv

        n = len(good)
        arrays: dict[str, Any] = {
            "submission_id": pa.array(np.full(n, self.submission_id, dtype=np.int64)),
            "source_sheet": _constant(self.sheet, n),
            "source_row": pa.array(good["_row"].to_numpy(dtype=np.int64)),
            "reporting_unit_code": _constant(self.unit, n),
            "period": _constant(self.period, n),
        }
        for f in self.kind.fields:
            col = good[f.name]
            if f.type == FieldType.DATE:
                arrays[f.name] = pa.array(col.to_numpy(dtype="datetime64[s]")).cast(pa.date32())
            else:
                arrays[f.name] = pa.array(col, from_pandas=True)
        flags = approx.to_numpy(dtype=bool) if approx.shape[1] else np.zeros((n, 0), dtype=bool)
        any_approx = flags.any(axis=1) if flags.shape[1] else np.zeros(n, dtype=bool)
        arrays["is_approximate"] = pa.array(any_approx)
        if any_approx.any():  # '{participants,...}' per distinct combination, then taken
            names = list(approx.columns)
            masks = flags @ (1 << np.arange(len(names), dtype=np.int64))
            combos, index = np.unique(masks, return_inverse=True)
            labels = [
                "{" + ",".join(n for i, n in enumerate(names) if m >> i & 1) + "}" if m else None
                for m in combos.tolist()
            ]
            arrays["approximate_fields"] = pa.array(labels, pa.string()).take(pa.array(index.astype(np.int32)))
        else:
            arrays["approximate_fields"] = pa.nulls(n, pa.string())
        table = pa.table([arrays[c] for c in self.columns], names=self.columns)
        sink = pa.BufferOutputStream()
        pacsv.write_csv(table, sink, write_options=pacsv.WriteOptions(include_header=False, quoting_style="needed"))
        if self._copy is None:
            self._open()
        self._copy.write(memoryview(sink.getvalue()))

    def __enter__(self) -> RawWriter:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        """Ends the COPY; on an exception psycopg aborts it (CopyFail), leaving nothing behind."""
        if self._stack is not None:
            self._stack.__exit__(*exc_info)


def quarantine_rows(
    submission_id: int, file_hash: str, table: Table, chunk: pd.DataFrame, problems: dict[Any, list[Problem]]
) -> list[tuple]:
    """The quarantine rows of a chunk's bad rows: one per problem, each with the row as received."""
    headers = {c.field.name: c.header for c in table.columns}
    rows: list[tuple] = []
    for idx, plist in problems.items():
        row_data = {
            headers[name]: (None if is_empty(chunk.at[idx, name]) else str(chunk.at[idx, name])) for name in headers
        }
        row_json = json.dumps(row_data, ensure_ascii=False, default=str)
        for p in plist:
            source_row = p.row if p.row is not None else int(chunk.at[idx, "_row"])
            rows.append(
                (
                    submission_id,
                    file_hash,
                    table.kind.name,
                    table.sheet,
                    source_row,
                    p.column,
                    p.value,
                    p.code,
                    p.message_zh,
                    p.message_en,
                    row_json,
                )
            )
    return rows


def write_quarantine(conn: psycopg.Connection, rows: list[tuple]) -> None:
    if not rows:
        return
    stmt = (
        "copy quarantine.rejected_rows (submission_id, file_hash, record_kind, source_sheet, source_row,"
        " column_name, value, reason_code, reason_zh, reason_en, row_data) from stdin"
    )
    with conn.cursor() as cur, cur.copy(stmt) as copy:
        for row in rows:
            copy.write_row(row)
