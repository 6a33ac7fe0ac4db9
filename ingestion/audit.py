"""The record of every file received: ``audit.submission_files``, and what the warehouse knows.

One row per file (loaded, rejected or duplicate) with its hash, names, detected type and
encoding, unit and period, counts per kind, problems, normalisations and timings. The
queries here are the ones the ingester asks per file, each answered from an index (never a
scan of every submission: at national scale that is 36,000 files a year).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import psycopg
from psycopg.types.json import Jsonb

from ingestion.archive import Received
from ingestion.metadata import Metadata
from ingestion.outcome import FileOutcome
from ingestion.warehouse import analyze_stale


def insert(
    conn: psycopg.Connection,
    received: Received,
    out: FileOutcome,
    *,
    size: int,
    archive_path: Path | None,
    run_id: str,
    meta: Metadata | None = None,
) -> int:
    row = conn.execute(
        """insert into audit.submission_files
           (file_hash, original_name, landing_path, archive_path, size_bytes, file_format, encoding,
            reporting_unit_code, period, period_start, period_end, record_kinds, status, duplicate_of,
            reprocess_of, errors, run_id, processed_at)
           values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, now())
           returning submission_id""",
        (
            out.file_hash,
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
            run_id,
        ),
    ).fetchone()
    assert row is not None
    return int(row[0])


def finish(conn: psycopg.Connection, out: FileOutcome) -> None:
    conn.execute(
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


def set_timings(conn: psycopg.Connection, submission_id: int, timings: dict[str, float]) -> None:
    conn.execute(
        "update audit.submission_files set timings = %s where submission_id = %s",
        (Jsonb({k: round(v, 4) for k, v in timings.items()}), submission_id),
    )


def recorded_in_run(conn: psycopg.Connection, landing_path: str, file_hash: str, run_id: str) -> FileOutcome | None:
    """What run ``run_id`` already recorded for this file (same landing path, same bytes), as
    its outcome: an earlier attempt of the same Airflow task committed it before it died."""
    from ingestion.problems import Problem

    row = conn.execute(
        """select submission_id, status, reporting_unit_code, period, record_kinds, rows_received, rows_loaded,
                  rows_quarantined, kind_counts, errors, warnings, normalisations, duplicate_of, file_format,
                  encoding, timings
           from audit.submission_files
           where run_id = %s and landing_path = %s and file_hash = %s and reprocess_of is null
           order by submission_id limit 1""",
        (run_id, landing_path, file_hash),
    ).fetchone()
    if row is None:
        return None
    (sid, status, unit, period, kinds, received, loaded, quarantined, counts, errors, warnings, norms, dup, fmt,
     encoding, timings) = row  # fmt: skip

    def problems(items: list[dict]) -> list[Problem]:
        return [Problem(**{k: v for k, v in p.items() if k in Problem.__dataclass_fields__}) for p in items]

    found = problems(errors)
    if status == "loaded" and quarantined:  # the row problems, as the quarantine holds them
        found += [
            Problem(code, zh, en, sheet, source_row, column, value)
            for code, zh, en, sheet, source_row, column, value in conn.execute(
                """select reason_code, reason_zh, reason_en, source_sheet, source_row, column_name, value
                   from quarantine.rejected_rows where submission_id = %s order by id""",
                (sid,),
            )
        ]
    return FileOutcome(
        file=landing_path, status=status, submission_id=sid, file_hash=file_hash, reporting_unit_code=unit,
        period=period, record_kinds=list(kinds or ()), rows_received=received, rows_loaded=loaded,
        rows_quarantined=quarantined, kind_counts=counts or {}, errors=found, warnings=problems(warnings),
        normalisations=problems(norms), duplicate_of=dup, file_format=fmt, encoding=encoding,
        timings=dict(timings or {}),
    )  # fmt: skip


def keep_statistics(conn: psycopg.Connection) -> bool:
    """ANALYZE ``audit.submission_files`` once enough of it changed (``warehouse.analyze_stale``);
    returns whether it did. Every file asks this table where its bytes and its versions were
    seen before, through its indexes only when the planner knows the table's size: never
    analysed (autovacuum off, as on the test machine's server, or not run yet) the versions
    query read the whole table for every file (92 ms per file after a national year, 0.13 ms
    once analysed). Called after each batch; a few ms."""
    return bool(analyze_stale(conn, ("audit.submission_files",)))


def previous_copy(conn: psycopg.Connection, file_hash: str) -> int | None:
    """The submission that received these bytes first (not a duplicate), if any.

    That first receipt is never a re-run (a re-run has an earlier receipt of the same bytes),
    so the condition is exactly the partial unique index ``submission_files_hash_once_uq``'s:
    one index probe. Without ``reprocess_of is null`` the planner walked the primary key in
    order, filtering every row, for a file it had never seen: 25-36 ms per new file after a
    national year (40 k files), growing with every file received."""
    row = conn.execute(
        "select submission_id from audit.submission_files"
        " where file_hash = %s and status <> 'duplicate' and reprocess_of is null",
        (file_hash,),
    ).fetchone()
    return row[0] if row else None


# The neighbours of one submission among the versions of its unit × period × kind, ordered as
# the view audit.submission_versions orders them (receipt, then submission), asked directly so
# that the index on (reporting_unit_code, period) answers it.
_NEIGHBOURS_SQL = """
with me as (
    select s.submission_id, s.reporting_unit_code, s.period, coalesce(s.reprocess_of, s.submission_id) as receipt_id,
           k.kind
    from audit.submission_files s cross join lateral unnest(s.record_kinds) as k (kind)
    where s.submission_id = %(sid)s and s.status = 'loaded'
),
peers as (
    select me.kind, o.submission_id, coalesce(o.reprocess_of, o.submission_id) as receipt_id
    from me join audit.submission_files o
      on o.reporting_unit_code = me.reporting_unit_code
     and o.status = 'loaded'
     and me.kind = any(o.record_kinds)
     and o.submission_id <> me.submission_id
     and (
        (me.period is not null and o.period = me.period)
        or (me.period is null and o.period is null and coalesce(o.reprocess_of, o.submission_id) = me.receipt_id)
     )
)
select me.kind,
       (select p.submission_id from peers p where p.kind = me.kind
          and (p.receipt_id, p.submission_id) < (me.receipt_id, me.submission_id)
        order by p.receipt_id desc, p.submission_id desc limit 1),
       (select p.submission_id from peers p where p.kind = me.kind
          and (p.receipt_id, p.submission_id) > (me.receipt_id, me.submission_id)
        order by p.receipt_id, p.submission_id limit 1)
from me
"""


def versions(conn: psycopg.Connection, out: FileOutcome) -> None:
    """What this file replaces (a correction), per record kind; and, for an old file re-run,
    the next file, which stays ahead of it (the same answers as audit.submission_versions)."""
    rows = conn.execute(_NEIGHBOURS_SQL, {"sid": out.submission_id}).fetchall()
    out.supersedes = {kind: prev for kind, prev, _ in rows if prev is not None}
    out.superseded_by = {kind: later for kind, _, later in rows if later is not None}


def unit_known(conn: psycopg.Connection, code: str) -> bool:
    return conn.execute("select 1 from ref.regions where code = %s limit 1", (code,)).fetchone() is not None


def county_by_name(conn: psycopg.Connection, text: str) -> str | None:
    """The one county-level unit whose name a 填报单位 line contains (青岛市李沧区委组织部 → 370213)."""
    rows = conn.execute(
        "select distinct code from ref.regions where level = 3 and tree = 'civil' and %s like '%%' || name || '%%'",
        (text,),
    ).fetchall()
    return rows[0][0] if len(rows) == 1 else None


def known_pairings(conn: psycopg.Connection, units: Iterable[str]) -> dict[str, set[str]]:
    """The pairing codes every loaded file has registered, per reporting unit."""
    found: dict[str, set[str]] = {unit: set() for unit in units}
    if not found:
        return found
    rows = conn.execute(
        """select distinct p.reporting_unit_code, p.pairing_code from raw.pairings p
           join audit.submission_files s using (submission_id)
           where p.reporting_unit_code = any(%s) and s.status = 'loaded'""",
        (list(found),),
    ).fetchall()
    for unit, code in rows:
        found[unit].add(code)
    return found
