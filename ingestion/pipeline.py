"""One file, end to end: keep → read → normalise → validate → load, in one transaction.

``Ingester.ingest(path)`` never raises for a bad file: it returns a ``FileOutcome`` and
records it in ``audit.submission_files``. Every file is archived by content hash before
anything else happens; the same bytes land once (later copies are ``duplicate``). Good
rows go to ``raw.<kind>`` with COPY, bad rows to ``quarantine.rejected_rows`` with their
reasons; the counts reconcile (rows received = loaded + quarantined), and a database
constraint holds the pipeline to it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from ingestion.config import Settings
from ingestion.contract import FieldType, RecordKind
from ingestion.metadata import Metadata, resolve
from ingestion.normalise import SPECIAL_NOTES, ColumnMap, clean_text, is_empty, parse_column, parse_number
from ingestion.problems import FileRejected, Problem
from ingestion.read import ReadResult, Table, read_file
from ingestion.units import UnitNames, resolve_unit_names
from ingestion.warehouse import apply_schema

log = logging.getLogger(__name__)

ALLOWED_SUFFIXES = (".xlsx", ".xlsm", ".xls", ".ods", ".csv", ".txt", ".tsv", ".json")
LINEAGE = ("submission_id", "file_hash", "source_sheet", "source_row", "reporting_unit_code", "period")


@dataclass
class FileOutcome:
    file: str
    status: str  # loaded | rejected | duplicate
    submission_id: int | None = None
    file_hash: str | None = None
    reporting_unit_code: str | None = None
    period: str | None = None
    record_kinds: list[str] = field(default_factory=list)
    rows_received: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    kind_counts: dict[str, dict[str, int]] = field(default_factory=dict)
    errors: list[Problem] = field(default_factory=list)  # file-level (rejected) or row-level problems
    warnings: list[Problem] = field(default_factory=list)
    normalisations: list[Problem] = field(default_factory=list)
    duplicate_of: int | None = None
    reprocess_of: int | None = None  # the original receipt this run re-ran (pairstats reprocess)
    encoding: str | None = None
    file_format: str | None = None  # what the file is (xlsx, xls, ods, csv, tsv, json), whatever its name
    # record kind -> the submission this file replaces as the current version (a correction)
    supersedes: dict[str, int] = field(default_factory=dict)
    # record kind -> a later submission that stays current (an old file re-run after a correction)
    superseded_by: dict[str, int] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "status": self.status,
            "submission_id": self.submission_id,
            "file_hash": self.file_hash,
            "reporting_unit_code": self.reporting_unit_code,
            "period": self.period,
            "record_kinds": self.record_kinds,
            "rows_received": self.rows_received,
            "rows_loaded": self.rows_loaded,
            "rows_quarantined": self.rows_quarantined,
            "kind_counts": self.kind_counts,
            "errors": [p.to_dict() for p in self.errors],
            "warnings": [p.to_dict() for p in self.warnings],
            "normalisations": [p.to_dict() for p in self.normalisations],
            "duplicate_of": self.duplicate_of,
            "reprocess_of": self.reprocess_of,
            "encoding": self.encoding,
            "file_format": self.file_format,
            "supersedes": self.supersedes,
            "superseded_by": self.superseded_by,
            "timings": {k: round(v, 3) for k, v in self.timings.items()},
        }


# --------------------------------------------------------------------------- archive


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def archived_copy(settings: Settings, file_hash: str, suffix: str) -> Path:
    """Where the kept copy of a file lives: built from its hash (ours), never from its name
    (only a known suffix is kept, anything else is stored as ``.bin``)."""
    if len(file_hash) != 64 or not all(c in "0123456789abcdef" for c in file_hash):
        raise ValueError(f"not a sha256 hex digest: {file_hash!r}")
    suffix = suffix.lower() if suffix.lower() in ALLOWED_SUFFIXES else ".bin"
    return settings.archive / file_hash[:2] / f"{file_hash}{suffix}"


def archive(path: Path, settings: Settings, *, suffix: str | None = None) -> tuple[str, Path]:
    """Keep the file byte for byte under its content hash (atomic)."""
    file_hash = sha256_file(path)
    target = archived_copy(settings, file_hash, suffix or path.suffix)
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".incoming-")
        os.close(fd)
        shutil.copyfile(path, tmp)
        os.replace(tmp, target)
    return file_hash, target


@dataclass(frozen=True)
class Received:
    """A file as it arrived: its name and where it was picked up. Both are metadata sources
    (a period in the name, the unit code of the landing folder) and are stored; neither is
    ever used to open or write anything but the file that was handed over."""

    name: str
    landing_path: str

    @classmethod
    def of(cls, path: Path) -> Received:
        return cls(name=path.name, landing_path=str(path))

    @property
    def folder(self) -> str | None:
        parent = Path(self.landing_path).parent
        return parent.name if parent != Path(self.landing_path) else None

    @property
    def suffix(self) -> str:
        return Path(self.name).suffix.lower()


# --------------------------------------------------------------------------- ingester


class Ingester:
    """Ingests files into one warehouse connection. One per process; reuse it for a batch."""

    def __init__(self, conn: psycopg.Connection, settings: Settings, *, run_id: str = "cli") -> None:
        self.conn = conn
        self.settings = settings
        self.run_id = run_id
        self._codes: frozenset[str] | None = None
        self._open_results: list[ReadResult] = []  # closed when their file is done
        apply_schema(conn)
        from ingestion.validate import warm_up

        warm_up()  # GX's import and context cost seconds once per process, not per file

    # -- public -------------------------------------------------------------------------

    def ingest(
        self,
        path: Path,
        *,
        dry_run: bool = False,
        received: Received | None = None,
        reprocess_of: int | None = None,
    ) -> FileOutcome:
        """Ingest one file. ``dry_run`` runs every check in a transaction that is rolled back.

        ``received`` is how the file arrived, when ``path`` is not that (a re-run reads the
        archived copy); ``reprocess_of`` makes this a re-run of that original receipt: no
        duplicate check, and the new version takes the original's place in the order of
        versions (``audit.submission_versions``)."""
        path = Path(path)
        received = received or Received.of(path)
        outcome = FileOutcome(file=received.landing_path, status="rejected", reprocess_of=reprocess_of)
        t0 = time.perf_counter()
        try:
            size = path.stat().st_size
            if dry_run:
                file_hash, archive_path = sha256_file(path), None
            else:
                file_hash, archive_path = archive(path, self.settings, suffix=received.suffix)
        except OSError as exc:
            outcome.errors.append(Problem.make("F001_UNREADABLE", detail=str(exc)))
            return outcome
        outcome.file_hash = file_hash
        outcome.timings["archive"] = time.perf_counter() - t0
        try:
            with self.conn.transaction(force_rollback=dry_run):
                self._ingest_locked(path, received, file_hash, size, archive_path, outcome, dry_run=dry_run)
            self._close_results()
        except Exception as exc:  # a bug, a late file error: nothing half-loaded stays behind
            self._close_results()
            if self.conn.closed:
                raise
            if isinstance(exc, _Abort):
                problem = exc.problem
            else:
                log.exception("internal error on %s", path)
                problem = Problem.make("F014_INTERNAL", detail=f"{type(exc).__name__}: {exc}"[:300])
            outcome.status = "rejected"
            outcome.rows_received = outcome.rows_loaded = outcome.rows_quarantined = 0
            outcome.kind_counts = {}
            outcome.errors = [problem]
            outcome.warnings = []
            outcome.supersedes, outcome.superseded_by = {}, {}
            if not dry_run:
                with self.conn.transaction():
                    outcome.submission_id = self._insert_audit(received, file_hash, size, archive_path, outcome)
        outcome.timings["total"] = time.perf_counter() - t0
        if outcome.submission_id and not dry_run:
            self.conn.execute(
                "update audit.submission_files set timings = %s where submission_id = %s",
                (Jsonb({k: round(v, 4) for k, v in outcome.timings.items()}), outcome.submission_id),
            )
            self.conn.commit()
        return outcome

    def _close_results(self) -> None:
        while self._open_results:
            self._open_results.pop().close()

    # -- steps --------------------------------------------------------------------------

    def _ingest_locked(
        self,
        path: Path,
        received: Received,
        file_hash: str,
        size: int,
        archive_path: Path | None,
        out: FileOutcome,
        *,
        dry_run: bool,
    ) -> None:
        conn = self.conn
        conn.execute("select pg_advisory_xact_lock(hashtextextended(%s, 0))", (file_hash,))
        previous = conn.execute(
            "select submission_id from audit.submission_files where file_hash = %s and status <> 'duplicate'",
            (file_hash,),
        ).fetchone()
        checking_a_copy = False
        if previous and out.reprocess_of is None:
            out.duplicate_of = previous[0]
            if not dry_run:
                out.status = "duplicate"
                out.submission_id = self._insert_audit(received, file_hash, size, archive_path, out)
                return
            # a check goes on (the district wants to know what is in the file): as a re-run of
            # the first copy, which is what the rolled-back transaction can hold
            checking_a_copy, out.reprocess_of = True, previous[0]

        t = time.perf_counter()
        meta: Metadata | None = None
        try:
            if size > self.settings.max_file_bytes:
                raise FileRejected(Problem.make("F009_TOO_LARGE", size=size, limit=self.settings.max_file_bytes))
            result = read_file(
                path, max_unzipped_bytes=self.settings.max_unzipped_bytes, suffix=received.suffix, name=received.name
            )
            self._open_results.append(result)
            out.encoding, out.file_format = result.encoding, result.file_format
            meta = self._resolve(received, result)
            # what the file says is kept with a refusal too (the digest groups refusals by unit)
            out.reporting_unit_code = meta.reporting_unit_code
            out.period = meta.period.code if meta.period else None
            if not self._unit_known(meta.reporting_unit_code):
                raise FileRejected(Problem.make("F005_UNKNOWN_UNIT", unit_code=meta.reporting_unit_code))
        except FileRejected as rejected:
            out.errors = [rejected.problem]
            out.submission_id = self._insert_audit(received, file_hash, size, archive_path, out, meta=meta)
            return
        out.timings["read"] = time.perf_counter() - t
        out.record_kinds = [t.kind.name for t in result.tables]
        out.status = "loaded"
        out.normalisations.extend(result.notes)
        out.submission_id = self._insert_audit(received, file_hash, size, archive_path, out, meta=meta)

        known_pairings = self.known_pairings(meta.reporting_unit_code)
        try:
            for table in sorted(result.tables, key=lambda t: t.kind.load_order):
                loaded_keys = self._load_table(table, meta, out, known_pairings)
                if table.kind.name == "pairings":
                    known_pairings |= loaded_keys
        except FileRejected as rejected:  # raised while streaming (bad encoding further down ...)
            raise _Abort(rejected.problem) from rejected
        if out.rows_received == 0:
            raise _Abort(Problem.make("F015_NO_DATA"))
        # a sheet with a header and no rows is no report of its kind: it must not replace one
        out.kind_counts = {k: c for k, c in out.kind_counts.items() if c["received"]}
        out.record_kinds = [k for k in out.record_kinds if k in out.kind_counts]
        self._finish_audit(out)
        self._versions(out)
        if checking_a_copy:
            out.reprocess_of, out.supersedes, out.superseded_by = None, {}, {}

    def _resolve(self, received: Received, result: ReadResult) -> Metadata:
        meta = resolve(
            envelope=result.envelope,
            preamble=result.preamble_text,
            file_name=received.name,
            landing_folder=received.folder,
            name_lookup=self._unit_by_name,
            needs_period=any(t.kind.needs_period for t in result.tables),
        )
        if meta.period is None:
            result.notes.append(
                Problem(
                    "W003_NORMALISED",
                    "已规范化：文件只含结对关系（登记），无需报告期",
                    "Normalised: the file holds pairings only (a registration): no period needed",
                )
            )
        return meta

    def _unit_known(self, code: str) -> bool:
        return self.conn.execute("select 1 from ref.regions where code = %s limit 1", (code,)).fetchone() is not None

    def _versions(self, out: FileOutcome) -> None:
        """What this file replaces (a correction), per record kind; and, for an old file re-run,
        the later file that stays current."""
        rows = self.conn.execute(
            """select record_kind, supersedes_submission_id, superseded_by_submission_id
               from audit.submission_versions where submission_id = %s""",
            (out.submission_id,),
        ).fetchall()
        out.supersedes = {kind: prev for kind, prev, _ in rows if prev is not None}
        out.superseded_by = {kind: later for kind, _, later in rows if later is not None}

    def _unit_by_name(self, text: str) -> str | None:
        rows = self.conn.execute(
            "select distinct code from ref.regions where level = 3 and tree = 'civil' and %s like '%%' || name || '%%'",
            (text,),
        ).fetchall()
        return rows[0][0] if len(rows) == 1 else None

    def known_pairings(self, unit: str) -> set[str]:
        rows = self.conn.execute(
            """select distinct p.pairing_code from raw.pairings p
               join audit.submission_files s using (submission_id)
               where s.reporting_unit_code = %s and s.status = 'loaded'""",
            (unit,),
        ).fetchall()
        return {r[0] for r in rows}

    # -- one table ------------------------------------------------------------------------

    def _load_table(self, table: Table, meta: Metadata, out: FileOutcome, known_pairings: set[str]) -> set[str]:
        """Stream one table: chunks are normalised and validated while the previous chunk's
        good rows are still being copied by the server (one COPY for the whole table)."""
        from ingestion.validate import ValidationParams, validate

        kind = table.kind
        period = meta.period
        params = ValidationParams(
            period=period.code if period else None,
            period_start=period.start if period else None,
            period_end=period.end if period else None,
            known_pairings=frozenset(known_pairings),
            today=dt.date.today(),
        )
        counts = {"received": 0, "loaded": 0, "quarantined": 0}
        seen = _SeenKeys()
        loaded_keys: set[str] = set()
        detail_sums: dict[str, float] = {}
        out.normalisations.extend(table.notes)
        examples: dict[tuple[str | None, str], list[tuple[str, str]]] = {}  # (how, field) -> (raw, parsed)
        year = period.start.year if period else None  # completes a date written without its year
        names = UnitNames(self.conn, meta.reporting_unit_code) if _names_resolved(kind) else None
        rejected: list[tuple] = []  # quarantine rows, written once the COPY of good rows is done
        timings = {"read": 0.0, "normalise": 0.0, "validate": 0.0, "copy": 0.0}
        chunks = iter(table.chunks)
        with _RawWriter(self.conn, kind, out, table.sheet, meta) as writer:
            while True:
                t = time.perf_counter()
                chunk = next(chunks, None)
                timings["read"] += time.perf_counter() - t
                if chunk is None:
                    break
                t = time.perf_counter()
                counts["received"] += len(chunk)
                typed, problems, approx = self._normalise_chunk(table, chunk, examples, detail_sums, year)
                if names is not None:
                    resolve_unit_names(table, chunk, typed, problems, names, out)
                timings["normalise"] += time.perf_counter() - t

                t = time.perf_counter()
                ok = typed.loc[~typed.index.isin(list(problems))] if problems else typed
                found = validate(kind.name, ok, params)
                if found:
                    index_of_row = dict(zip(ok["_row"].tolist(), ok.index, strict=True))
                    for p in found:
                        problems.setdefault(index_of_row[p.row], []).append(p)
                self._check_codes(table, typed, problems)  # every row: a bad cell elsewhere hides nothing
                self._check_duplicates(kind, table, ok, problems, seen)
                timings["validate"] += time.perf_counter() - t

                t = time.perf_counter()
                if problems:
                    bad = typed.index.isin(list(problems))
                    good, good_approx = typed.loc[~bad], approx.loc[~bad]
                    rejected.extend(self._quarantine_rows(kind, table, out, chunk, problems))
                else:
                    good, good_approx = typed, approx
                writer.write(good, good_approx)
                timings["copy"] += time.perf_counter() - t
                counts["loaded"] += len(good)
                counts["quarantined"] += len(problems)
                if kind.name == "pairings":
                    loaded_keys |= set(good["pairing_code"])
                if kind.name == "income_effects":
                    self._warn_negative_income(table, good, out)
        t = time.perf_counter()
        self._write_quarantine(rejected)
        timings["copy"] += time.perf_counter() - t

        for (how, name), pairs in examples.items():
            raw_s = "、".join(f"{a}→{b}" for a, b in pairs)
            what_zh, what_en = SPECIAL_NOTES[how] if how else ("", "")
            out.normalisations.append(
                Problem(
                    "W003_NORMALISED",
                    f"已规范化：“{table.sheet}”列 {name}：{what_zh + ' ' if what_zh else ''}{raw_s}",
                    f"Normalised: '{table.sheet}' column {name}: {what_en + ' ' if what_en else ''}{raw_s}",
                    sheet=table.sheet,
                    column=name,
                )
            )
        self._reconcile_total(table, detail_sums, out)
        out.kind_counts[kind.name] = counts
        out.rows_received += counts["received"]
        out.rows_loaded += counts["loaded"]
        out.rows_quarantined += counts["quarantined"]
        for k, v in timings.items():
            out.timings[k] = out.timings.get(k, 0.0) + v
        return loaded_keys

    def _warn_negative_income(self, table: Table, good: pd.DataFrame, out: FileOutcome) -> None:
        column = good["collective_income_increase_yuan"]
        for idx in good.index[(column < 0).to_numpy()]:
            out.warnings.append(
                Problem.make(
                    "W001_NEGATIVE_INCOME",
                    sheet=table.sheet,
                    row=int(good.at[idx, "_row"]),
                    column="collective_income_increase_yuan",
                    value=_fmt(float(column.at[idx])),
                )
            )

    def _normalise_chunk(
        self,
        table: Table,
        chunk: pd.DataFrame,
        examples: dict[tuple[str | None, str], list[tuple[str, str]]],
        detail_sums: dict[str, float],
        year: int | None,
    ) -> tuple[pd.DataFrame, dict[Any, list[Problem]], pd.DataFrame]:
        kind = table.kind
        columns: dict[str, Any] = {}
        problems: dict[Any, list[Problem]] = {}
        approx_fields: dict[str, np.ndarray] = {}
        by_name: dict[str, ColumnMap] = {c.field.name: c for c in table.columns}
        for f in kind.fields:
            cmap = by_name.get(f.name)
            if cmap is None:  # an optional column the file does not have
                columns[f.name] = parse_column(f, pd.Series(None, index=chunk.index, dtype=object)).values
                continue
            res = parse_column(f, chunk[f.name], cmap.factor, year)
            columns[f.name] = res.values
            if res.changed_examples:
                examples.setdefault((None, f.name), res.changed_examples)
            for how, pairs in res.special_examples.items():
                examples.setdefault((how, f.name), pairs)
            if res.approximate.any():
                approx_fields[f.name] = res.approximate
            if f.type in (FieldType.COUNT, FieldType.MONEY, FieldType.NUMBER):
                detail_sums[f.name] = detail_sums.get(f.name, 0.0) + float(res.values.sum(skipna=True))
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

    def _region_codes(self) -> frozenset[str]:
        """Every code of the register, read once per Ingester (a few MB even for the full list)."""
        if self._codes is None:
            self._codes = frozenset(r[0] for r in self.conn.execute("select distinct code from ref.regions"))
        return self._codes

    def _check_codes(self, table: Table, typed: pd.DataFrame, problems: dict[Any, list[Problem]]) -> None:
        code_fields = [f for f in table.kind.fields if f.type == FieldType.CODE]
        if not code_fields or typed.empty:
            return
        known = self._region_codes()
        for f in code_fields:
            col = typed[f.name]
            unknown = col.notna() & ~col.isin(known)
            for idx in typed.index[unknown.to_numpy()]:
                problems.setdefault(idx, []).append(
                    Problem.make(
                        "R008_UNKNOWN_REGION",
                        sheet=table.sheet,
                        row=int(typed.at[idx, "_row"]),
                        column=f.name,
                        value=col.at[idx],
                    )
                )

    def _check_duplicates(
        self,
        kind: RecordKind,
        table: Table,
        ok: pd.DataFrame,
        problems: dict[Any, list[Problem]],
        seen: _SeenKeys,
    ) -> None:
        if ok.empty:
            return
        key_cols = list(kind.key)
        hashes = pd.util.hash_pandas_object(ok[key_cols], index=False).to_numpy()
        rows = ok["_row"].to_numpy()
        for pos, first_row in seen.add(hashes, rows):
            problems.setdefault(ok.index[pos], []).append(
                Problem.make(
                    "R012_DUPLICATE_ROW",
                    sheet=table.sheet,
                    row=int(rows[pos]),
                    column=",".join(key_cols) if len(key_cols) < 3 else None,
                    first_row=first_row,
                )
            )

    # -- writes ---------------------------------------------------------------------------

    def _quarantine_rows(
        self, kind: RecordKind, table: Table, out: FileOutcome, chunk: pd.DataFrame, problems: dict[Any, list[Problem]]
    ) -> list[tuple]:
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
                        out.submission_id,
                        out.file_hash,
                        kind.name,
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
                out.errors.append(p)
        return rows

    def _write_quarantine(self, rows: list[tuple]) -> None:
        if not rows:
            return
        stmt = (
            "copy quarantine.rejected_rows (submission_id, file_hash, record_kind, source_sheet, source_row,"
            " column_name, value, reason_code, reason_zh, reason_en, row_data) from stdin"
        )
        with self.conn.cursor() as cur, cur.copy(stmt) as copy:
            for row in rows:
                copy.write_row(row)

    def _reconcile_total(self, table: Table, detail_sums: dict[str, float], out: FileOutcome) -> None:
        for row in sorted(table.subtotal_rows):
            out.normalisations.append(
                Problem(
                    "W003_NORMALISED",
                    f"已规范化：“{table.sheet}”第 {row} 行为小计行，未作为数据导入",
                    f"Normalised: '{table.sheet}' row {row} is a subtotal row, not loaded as data",
                    sheet=table.sheet,
                    row=row,
                )
            )
        if table.total_row is None:
            return
        out.normalisations.append(
            Problem(
                "W003_NORMALISED",
                f"已规范化：“{table.sheet}”第 {table.total_row['_row']} 行为合计行，未作为数据导入",
                f"Normalised: '{table.sheet}' row {table.total_row['_row']} is a total row, not loaded as data",
                sheet=table.sheet,
                row=table.total_row["_row"],
            )
        )
        by_name = {c.field.name: c for c in table.columns}
        for name, total_raw in table.total_row.items():
            if name == "_row" or name not in detail_sums or is_empty(total_raw):
                continue
            f = by_name[name].field
            dim = (
                "count"
                if f.type == FieldType.COUNT
                else {"元": "money", "吨": "weight", "亩": "land"}.get(f.unit or "")
            )
            total = parse_number(total_raw, by_name[name].factor, dim).value
            if total is None:
                continue
            if abs(total - detail_sums[name]) > 0.005 + 1e-9 * abs(total):
                out.warnings.append(
                    Problem.make(
                        "W002_TOTAL_MISMATCH",
                        sheet=table.sheet,
                        row=table.total_row["_row"],
                        column=name,
                        value=clean_text(total_raw),
                        column_zh=f.header_zh,
                        total=_fmt(total),
                        detail_sum=_fmt(detail_sums[name]),
                    )
                )

    def _insert_audit(
        self,
        received: Received,
        file_hash: str,
        size: int,
        archive_path: Path | None,
        out: FileOutcome,
        meta: Metadata | None = None,
    ) -> int:
        row = self.conn.execute(
            """insert into audit.submission_files
               (file_hash, original_name, landing_path, archive_path, size_bytes, file_format, encoding,
                reporting_unit_code, period, period_start, period_end, record_kinds, status, duplicate_of,
                reprocess_of, errors, run_id, processed_at)
               values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, now())
               returning submission_id""",
            (
                file_hash,
                received.name,
                received.landing_path,
                str(archive_path) if archive_path else None,
                size,
                out.file_format or received.suffix.lstrip("."),
                out.encoding,
                out.reporting_unit_code,
                out.period,
                meta.period.start if meta and meta.period else None,
                meta.period.end if meta and meta.period else None,
                out.record_kinds,
                out.status,
                out.duplicate_of,
                out.reprocess_of,
                Jsonb([p.to_dict() for p in out.errors if p.code.startswith("F")]),
                self.run_id,
            ),
        ).fetchone()
        assert row is not None
        return int(row[0])

    def _finish_audit(self, out: FileOutcome) -> None:
        self.conn.execute(
            """update audit.submission_files set record_kinds = %s, rows_received = %s, rows_loaded = %s,
               rows_quarantined = %s, kind_counts = %s, warnings = %s, normalisations = %s, processed_at = now()
               where submission_id = %s""",
            (
                out.record_kinds,
                out.rows_received,
                out.rows_loaded,
                out.rows_quarantined,
                Jsonb(out.kind_counts),
                Jsonb([p.to_dict() for p in out.warnings]),
                Jsonb([p.to_dict() for p in out.normalisations]),
                out.submission_id,
            ),
        )


def _names_resolved(kind: RecordKind) -> bool:
    return any(f.resolved_from for f in kind.fields)


class _SeenKeys:
    """Row-key hashes seen so far in one table, across chunks, with their first source row."""

    def __init__(self) -> None:
        self.first_row: dict[int, int] = {}

    def add(self, hashes: np.ndarray, rows: np.ndarray) -> list[tuple[int, int]]:
        """Register a chunk's hashes; return (position, first source row) of each repeat."""
        first_row = self.first_row
        repeats: list[tuple[int, int]] = []
        for pos, (h, r) in enumerate(zip(hashes.tolist(), rows.tolist(), strict=True)):
            first = first_row.setdefault(h, r)
            if first != r:
                repeats.append((pos, first))
        return repeats


def _constant(value: str | None, n: int) -> Any:
    import pyarrow as pa

    if value is None:
        return pa.nulls(n, pa.string())
    return pa.DictionaryArray.from_arrays(np.zeros(n, dtype=np.int32), pa.array([value])).cast(pa.string())


class _RawWriter:
    """One ``COPY raw.<kind> FROM STDIN`` per table, opened at the first good rows; each chunk
    is written as CSV by pyarrow. The server parses one chunk while the next is prepared."""

    def __init__(
        self, conn: psycopg.Connection, kind: RecordKind, out: FileOutcome, sheet: str | None, meta: Metadata
    ) -> None:
        self.conn, self.kind, self.out, self.sheet, self.meta = conn, kind, out, sheet, meta
        self._stack: ExitStack | None = None
        self._copy: Any = None
        self.columns = [*LINEAGE, *kind.field_names, "is_approximate", "approximate_fields"]

    def _open(self) -> None:
        self._stack = ExitStack()
        cur = self._stack.enter_context(self.conn.cursor())
        stmt = sql.SQL("copy {}.{} ({}) from stdin (format csv)").format(
            sql.Identifier("raw"), sql.Identifier(self.kind.name), sql.SQL(", ").join(map(sql.Identifier, self.columns))
        )
        self._copy = self._stack.enter_context(cur.copy(stmt))

    def write(self, good: pd.DataFrame, approx: pd.DataFrame) -> None:
        if good.empty:
            return
        import pyarrow as pa
        import pyarrow.csv as pacsv

        n = len(good)
        arrays: dict[str, Any] = {
            "submission_id": pa.array(np.full(n, self.out.submission_id, dtype=np.int64)),
            "file_hash": _constant(self.out.file_hash, n),
            "source_sheet": _constant(self.sheet, n),
            "source_row": pa.array(good["_row"].to_numpy(dtype=np.int64)),
            "reporting_unit_code": _constant(self.meta.reporting_unit_code, n),
            "period": _constant(self.meta.period.code if self.meta.period else None, n),
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

    def __enter__(self) -> _RawWriter:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        """Ends the COPY; on an exception psycopg aborts it (CopyFail), leaving nothing behind."""
        if self._stack is not None:
            self._stack.__exit__(*exc_info)


class _Abort(Exception):
    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.message_en)
        self.problem = problem


def _fmt(x: float) -> str:
    return f"{x:,.2f}".rstrip("0").rstrip(".")


def ingest_paths(paths: Iterable[Path], ingester: Ingester, *, dry_run: bool = False) -> list[FileOutcome]:
    return [ingester.ingest(p, dry_run=dry_run) for p in expand_paths(paths)]


def expand_paths(paths: Iterable[Path]) -> list[Path]:
    """Files, and the files inside folders (recursively), in submission order.

    Deterministic: by folder, then by the period the file name states (a unit's earlier
    submission registers pairings its later ones reference; a registration without a period
    first), then pairings files before the others (a submission sent as one csv per kind),
    then by name. Order is an optimisation, not a condition: a row that names a pairing not
    registered yet lands by itself once it is (``ingestion.service``)."""
    found: list[Path] = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            found.extend(q for q in p.rglob("*") if q.is_file() and not q.name.startswith("."))
        else:
            found.append(p)
    return sorted(found, key=_submission_order)


def _submission_order(path: Path) -> tuple:
    """Folder, then the period the name states (2024Q3 before 2024-10; none last), then
    pairings files first, then name."""
    from ingestion.metadata import period_or_none as parse_period

    period = parse_period(path.stem)
    pairings = _declares_pairings(path)
    # a registration (pairings, no period named) first; a file naming no period last
    start = period.start if period else (dt.date.min if pairings else dt.date.max)
    return (str(path.parent), start, 0 if pairings else 1, path.name)


def _declares_pairings(path: Path) -> bool:
    """Whether a text file's header is the pairings table (reads its first lines only)."""
    from ingestion.read import peek_kind

    try:
        kind = peek_kind(path)
    except Exception:  # unreadable files are refused later, with their reason
        return False
    return kind is not None and kind.name == "pairings"
