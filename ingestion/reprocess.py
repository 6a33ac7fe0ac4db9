"""Run files that were already received again, from their archived copies.

A file whose rows were quarantined because a pairing (or a region, or the reporting unit
itself) was unknown at the time can be run again once that is registered, without the
district sending it again: ``pairstats reprocess``. The re-run is a new submission that
points to the original receipt (``reprocess_of``); it takes the original's place among the
versions of its unit × period × kind (``audit.submission_versions``), so it replaces the
earlier attempt but never a correction the district sent after the original.

Which files: explicit submission ids (any file, any outcome), or every file whose latest
attempt has quarantined rows or a refusal with one of ``reasons`` — by default the reasons
that registering something elsewhere can cure — optionally for one unit and period.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import psycopg

from ingestion.archive import Received, archived_copy, sha256_file
from ingestion.outcome import FileOutcome
from ingestion.pipeline import Ingester

# what registering a pairing, a region or a unit cures
CURABLE_REASONS: tuple[str, ...] = ("R009_UNKNOWN_PAIRING", "R008_UNKNOWN_REGION", "F005_UNKNOWN_UNIT")


@dataclass(frozen=True)
class Candidate:
    """The latest attempt of one receipt: the original file, or its latest re-run."""

    submission_id: int
    receipt_id: int  # the original receipt's submission id
    original_name: str
    landing_path: str
    file_hash: str
    status: str
    reporting_unit_code: str | None
    period: str | None
    reasons: tuple[str, ...]  # the curable reasons it has (quarantined rows or refusal)


_CANDIDATES_SQL = """
with attempts as (
    select
        s.*,
        coalesce(s.reprocess_of, s.submission_id) as receipt_id,
        row_number() over (
            partition by coalesce(s.reprocess_of, s.submission_id) order by s.submission_id desc
        ) as latest_first
    from audit.submission_files s
    where s.status <> 'duplicate' and (%(unit)s::text is null or s.reporting_unit_code = %(unit)s)
),
latest as (select * from attempts where latest_first = 1),
reasons as (
    select l.submission_id, array(
        select distinct code from (
            select q.reason_code as code from quarantine.rejected_rows q where q.submission_id = l.submission_id
            union all
            select e ->> 'code' from jsonb_array_elements(l.errors) e
        ) found
        where code = any(%(reasons)s)
        order by code
    ) as found
    from latest l
)
select l.submission_id, l.receipt_id, l.original_name, l.landing_path, l.file_hash, l.status,
       l.reporting_unit_code, l.period, r.found
from latest l join reasons r using (submission_id)
where (%(ids)s::bigint[] is null or l.submission_id = any(%(ids)s) or l.receipt_id = any(%(ids)s))
  and (%(unit)s::text is null or l.reporting_unit_code = %(unit)s)
  and (%(period)s::text is null or l.period = %(period)s)
  and (%(ids)s::bigint[] is not null or cardinality(r.found) > 0)
order by l.receipt_id
"""


def find_candidates(
    conn: psycopg.Connection,
    *,
    submission_ids: Sequence[int] | None = None,
    unit: str | None = None,
    period: str | None = None,
    reasons: Sequence[str] = CURABLE_REASONS,
) -> list[Candidate]:
    """The files to run again, in the order they were first received (pairings first)."""
    rows = conn.execute(
        _CANDIDATES_SQL,
        {
            "ids": list(submission_ids) if submission_ids else None,
            "unit": unit,
            "period": period,
            "reasons": list(reasons),
        },
    ).fetchall()
    conn.commit()
    return [Candidate(*row[:8], reasons=tuple(row[8])) for row in rows]


class MissingArchive(Exception):
    """The archived copy of a file is gone or does not match its hash."""


def reprocess(ingester: Ingester, candidate: Candidate, *, dry_run: bool = False) -> FileOutcome:
    """Run one received file again from its archived copy, as if it had just arrived under its
    original name in its original landing folder."""
    received = Received(name=candidate.original_name, landing_path=candidate.landing_path)
    copy = archived_copy(ingester.settings, candidate.file_hash, received.suffix)
    if not copy.is_file() or sha256_file(copy) != candidate.file_hash:
        raise MissingArchive(f"archived copy of submission {candidate.submission_id} missing or altered: {copy}")
    return ingester.ingest(Path(copy), dry_run=dry_run, received=received, reprocess_of=candidate.receipt_id)
