"""A table's chunks made ready to load: typed, named units resolved, checked; GX comes next.

``TableStage`` follows one table across its chunks (row counts, duplicate keys, the sums a
total row is reconciled against, the normalisations to report). ``stage`` turns a chunk of
raw cells into a ``StagedChunk``: typed columns (``ingestion.normalise``), units named
without codes resolved (``ingestion.units``), register codes and duplicate rows checked.
The rows no check has refused yet (``ok``) then go to Great Expectations — one chunk alone,
or the chunks of many files in one call (``ingestion.checking``) — and ``finish`` reports
what the table did.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ingestion.columns import parse_column
from ingestion.contract import FieldType, RecordKind
from ingestion.headers import ColumnMap
from ingestion.normalise import SPECIAL_NOTES, clean_text, is_empty, parse_number
from ingestion.outcome import FileOutcome
from ingestion.problems import Problem
from ingestion.tables import Table, note
from ingestion.units import UnitNames, resolve_unit_names

_NUMERIC = (FieldType.COUNT, FieldType.MONEY, FieldType.NUMBER)
_DIMENSION = {"元": "money", "吨": "weight", "亩": "land"}


class SeenKeys:
    """Row-key hashes seen so far in one table, across chunks, with their first source row
    (kept sorted by hash: a chunk is checked with a sort and a binary search, no Python loop)."""

    def __init__(self) -> None:
        self.hashes = np.empty(0, dtype=np.uint64)
        self.rows = np.empty(0, dtype=np.int64)

    def add(self, hashes: np.ndarray, rows: np.ndarray) -> list[tuple[int, int]]:
        """Register a chunk's hashes; return (position, first source row) of each repeat."""
        hashes = np.asarray(hashes, dtype=np.uint64)
        rows = np.asarray(rows, dtype=np.int64)
        if not len(hashes):
            return []
        order = np.argsort(hashes, kind="stable")  # equal hashes keep their order: the first is first
        sorted_hashes = hashes[order]
        starts = np.ones(len(order), dtype=bool)
        starts[1:] = sorted_hashes[1:] != sorted_hashes[:-1]
        group_first = order[np.maximum.accumulate(np.where(starts, np.arange(len(order)), 0))]
        first_row = rows[group_first]
        seen_at = np.searchsorted(self.hashes, sorted_hashes)
        known = seen_at < len(self.hashes)
        known[known] = self.hashes[seen_at[known]] == sorted_hashes[known]
        first_row[known] = self.rows[seen_at[known]]
        repeat = known | ~starts
        repeats = sorted(zip(order[repeat].tolist(), first_row[repeat].tolist(), strict=True))
        new = starts & ~known
        if new.any():
            merged = np.concatenate([self.hashes, sorted_hashes[new]])
            keep = np.argsort(merged, kind="stable")
            self.hashes = merged[keep]
            self.rows = np.concatenate([self.rows, first_row[new]])[keep]
        return repeats


@dataclass
class TableStage:
    """One table of one file, across its chunks."""

    table: Table
    out: FileOutcome
    year: int | None  # the report period's year: completes a date written without one
    names: UnitNames | None  # the reporting unit's area, when the kind names units
    region_codes: frozenset[str]
    counts: dict[str, int] = field(default_factory=lambda: {"received": 0, "loaded": 0, "quarantined": 0})
    seen: SeenKeys = field(default_factory=SeenKeys)
    detail_sums: dict[str, float] = field(default_factory=dict)
    examples: dict[tuple[str | None, str], list[tuple[str, str]]] = field(default_factory=dict)
    loaded_keys: set[str] = field(default_factory=set)  # pairings: the codes that landed
    rejected: list[tuple] = field(default_factory=list)  # quarantine rows, written after the good rows

    @property
    def kind(self) -> RecordKind:
        return self.table.kind


@dataclass
class StagedChunk:
    stage: TableStage
    chunk: pd.DataFrame  # raw cells, as read
    typed: pd.DataFrame  # parsed values, '_row', '_sheet'
    approx: pd.DataFrame  # per field with approximate figures: bool per row
    problems: dict[Any, list[Problem]]  # index -> problems found
    ok: pd.DataFrame  # the rows GX validates: no cell failed to parse, no unresolved name

    def add(self, index: Any, problem: Problem) -> None:
        self.problems.setdefault(index, []).append(problem)

    def good(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        if not self.problems:
            return self.typed, self.approx
        bad = self.typed.index.isin(list(self.problems))
        return self.typed.loc[~bad], self.approx.loc[~bad]


def stage(ts: TableStage, chunk: pd.DataFrame) -> StagedChunk:
    """Parse one chunk and run every check that needs no GX (names, codes, duplicates)."""
    ts.counts["received"] += len(chunk)
    typed, problems, approx = _normalise(ts, chunk)
    if ts.names is not None:
        resolve_unit_names(ts.table, chunk, typed, problems, ts.names, ts.out)
    ok = typed.loc[~typed.index.isin(list(problems))] if problems else typed
    staged = StagedChunk(ts, chunk, typed, approx, problems, ok)
    _check_codes(staged)  # every row: a bad cell elsewhere hides nothing
    _check_duplicates(staged)
    return staged


def accept(staged: StagedChunk) -> tuple[pd.DataFrame, pd.DataFrame]:
    """After GX: count the chunk, keep its quarantine rows, return its good rows."""
    ts = staged.stage
    good, good_approx = staged.good()
    ts.counts["loaded"] += len(good)
    ts.counts["quarantined"] += len(staged.problems)
    if ts.kind.name == "pairings":
        ts.loaded_keys |= set(good["pairing_code"])
    if ts.kind.name == "income_effects":
        _warn_negative_income(ts, good)
    return good, good_approx


def finish(ts: TableStage) -> None:
    """What the table did, into its file's outcome: the normalisations, the total row's
    reconciliation, the counts."""
    out, table = ts.out, ts.table
    for (how, name), pairs in ts.examples.items():
        raw_s = "、".join(f"{a}→{b}" for a, b in pairs)
        what_zh, what_en = SPECIAL_NOTES[how] if how else ("", "")
        out.normalisations.append(
            note(
                f"“{table.sheet}”列 {name}：{what_zh + ' ' if what_zh else ''}{raw_s}",
                f"'{table.sheet}' column {name}: {what_en + ' ' if what_en else ''}{raw_s}",
                sheet=table.sheet,
                column=name,
            )
        )
    _reconcile_total(ts)
    out.kind_counts[ts.kind.name] = dict(ts.counts)
    out.rows_received += ts.counts["received"]
    out.rows_loaded += ts.counts["loaded"]
    out.rows_quarantined += ts.counts["quarantined"]


# --------------------------------------------------------------------------- steps


def _normalise(ts: TableStage, chunk: pd.DataFrame) -> tuple[pd.DataFrame, dict[Any, list[Problem]], pd.DataFrame]:
    table = ts.table
    columns: dict[str, Any] = {}
    problems: dict[Any, list[Problem]] = {}
    approx_fields: dict[str, np.ndarray] = {}
    by_name: dict[str, ColumnMap] = {c.field.name: c for c in table.columns}
    for f in table.kind.fields:
        cmap = by_name.get(f.name)
        if cmap is None:  # an optional column the file does not have
            columns[f.name] = parse_column(f, pd.Series(None, index=chunk.index, dtype=object)).values
            continue
        res = parse_column(f, chunk[f.name], cmap.factor, ts.year)
        columns[f.name] = res.values
        if res.changed_examples:
            ts.examples.setdefault((None, f.name), res.changed_examples)
        for how, pairs in res.special_examples.items():
            ts.examples.setdefault((how, f.name), pairs)
        if res.approximate.any():
            approx_fields[f.name] = res.approximate
        if f.type in _NUMERIC:
            ts.detail_sums[f.name] = ts.detail_sums.get(f.name, 0.0) + float(res.values.sum(skipna=True))
        if res.errors is None:
            continue
        for idx in res.errors.index[res.errors.notna().to_numpy()]:
            problems.setdefault(idx, []).append(
                Problem.make(
                    res.errors.at[idx],
                    sheet=table.sheet,
                    row=int(chunk.at[idx, "_row"]),
                    column=f.name,
                    value=chunk.at[idx, f.name],
                    column_zh=f.header_zh,
                    limit=500,
                )
            )
    columns["_row"] = chunk["_row"].to_numpy(dtype=np.int64)
    columns["_sheet"] = table.sheet
    typed = pd.DataFrame(columns, index=chunk.index)
    approx = pd.DataFrame(approx_fields, index=chunk.index, dtype=bool)
    return typed, problems, approx


def _check_codes(staged: StagedChunk) -> None:
    ts, typed = staged.stage, staged.typed
    code_fields = [f for f in ts.kind.fields if f.type == FieldType.CODE]
    if not code_fields or typed.empty:
        return
    for f in code_fields:
        col = typed[f.name]
        known = ts.region_codes
        unknown = np.fromiter((isinstance(c, str) and c not in known for c in col), bool, len(col))
        for idx in typed.index[unknown]:
            staged.add(
                idx,
                Problem.make(
                    "R008_UNKNOWN_REGION", sheet=ts.table.sheet, row=int(typed.at[idx, "_row"]), column=f.name,
                    value=col.at[idx],
                ),
            )  # fmt: skip


def _check_duplicates(staged: StagedChunk) -> None:
    ts, ok = staged.stage, staged.ok
    if ok.empty:
        return
    key_cols = list(ts.kind.key)
    hashes = pd.util.hash_pandas_object(ok[key_cols], index=False).to_numpy()
    rows = ok["_row"].to_numpy()
    for pos, first_row in ts.seen.add(hashes, rows):
        staged.add(
            ok.index[pos],
            Problem.make(
                "R012_DUPLICATE_ROW",
                sheet=ts.table.sheet,
                row=int(rows[pos]),
                column=",".join(key_cols) if len(key_cols) < 3 else None,
                first_row=first_row,
            ),
        )


def _warn_negative_income(ts: TableStage, good: pd.DataFrame) -> None:
    column = good["collective_income_increase_yuan"]
    for idx in good.index[(column < 0).to_numpy()]:
        ts.out.warnings.append(
            Problem.make(
                "W001_NEGATIVE_INCOME",
                sheet=ts.table.sheet,
                row=int(good.at[idx, "_row"]),
                column="collective_income_increase_yuan",
                value=fmt_number(float(column.at[idx])),
            )
        )


def _reconcile_total(ts: TableStage) -> None:
    table, out = ts.table, ts.out
    for row in sorted(table.subtotal_rows):
        out.normalisations.append(
            note(
                f"“{table.sheet}”第 {row} 行为小计行，未作为数据导入",
                f"'{table.sheet}' row {row} is a subtotal row, not loaded as data",
                sheet=table.sheet,
                row=row,
            )
        )
    if table.total_row is None:
        return
    total_row = table.total_row["_row"]
    out.normalisations.append(
        note(
            f"“{table.sheet}”第 {total_row} 行为合计行，未作为数据导入",
            f"'{table.sheet}' row {total_row} is a total row, not loaded as data",
            sheet=table.sheet,
            row=total_row,
        )
    )
    by_name = {c.field.name: c for c in table.columns}
    for name, total_raw in table.total_row.items():
        if name == "_row" or name not in ts.detail_sums or is_empty(total_raw):
            continue
        f = by_name[name].field
        dim = "count" if f.type == FieldType.COUNT else _DIMENSION.get(f.unit or "")
        total = parse_number(total_raw, by_name[name].factor, dim).value
        if total is None:
            continue
        detail = ts.detail_sums[name]
        if abs(total - detail) > 0.005 + 1e-9 * abs(total):
            out.warnings.append(
                Problem.make(
                    "W002_TOTAL_MISMATCH",
                    sheet=table.sheet,
                    row=total_row,
                    column=name,
                    value=clean_text(total_raw),
                    column_zh=f.header_zh,
                    total=fmt_number(total),
                    detail_sum=fmt_number(detail),
                )
            )


def fmt_number(x: float) -> str:
    return f"{x:,.2f}".rstrip("0").rstrip(".")
