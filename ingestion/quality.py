"""Nightly data quality: the checks, their results, GX Data Docs, and one digest to the maintainers.

``run_quality()`` is what the DAG ``nightly_data_quality`` and ``pairstats quality`` both run:

1. **The checks run in the warehouse**: ``dbt build`` of the quality models (and what they
   read) with ``quality_as_of`` = the night's date — ``rpt_reporting_completeness``,
   ``rpt_outliers`` and ``int_quality_checks``, one row per check × reporting unit × period
   (dbt_project/models/*/quality/). Nothing is pulled into pandas.
2. **Results kept**: ``insert into audit.dq_results … select … from int_quality_checks`` (in
   the server), tagged with the run; ``audit.dq_runs`` holds the run.
3. **GX on the warehouse**: the suites of ``expectations/nightly/`` run through GX's SQL
   execution engine against the warehouse — one suite per check over its rows of
   ``int_quality_checks`` (a failing unit × period is an unexpected value GX lists), and
   direct expectations on the facts and the audit (recorded as checks of their own) — in one
   Checkpoint, after which the night's HTML Data Docs pages and the index are built once into
   ``$PAIRSTATS_HOME/data_docs``, keeping earlier nights (results store on disk).
4. ``rpt_data_quality_daily`` (share of checks passing per region per night) is rebuilt.
   Models are built without their dbt tests: the checks must run even when a test fails
   (the DAG's ``dbt_test`` task runs the tests and alerts on its own).
5. **One digest**: every failing check × unit × period of this run, grouped by region, each
   either *new* or *still failing since* the first night of its current streak — "still
   failing" once a digest that listed it was sent (``audit.alerts``). No failure, no mail,
   unless ``all_clear``.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import uuid
from typing import Any

from ingestion.alerts import send
from ingestion.config import Settings
from ingestion.digest import (
    Finding,
    QualityRun,
    _since,
    _unit_title,
    compose_digest,
)
from ingestion.quality_gx import validate_with_gx

log = logging.getLogger(__name__)

SHANGHAI = dt.timezone(dt.timedelta(hours=8))
CHECKS_RELATION = "intermediate.int_quality_checks"
QUALITY_MODELS = ("+int_quality_checks", "+rpt_reporting_completeness", "+rpt_outliers")
DAILY_MODELS = ("stg_audit__dq_results", "rpt_data_quality_daily")  # read audit.dq_results: after recording
# The pairing marts (facts, dimensions, the roll-up) are built by `pairstats build` only
# (write-audit-publish): the checks judge them as published and never rebuild them in place.
PUBLISHED_ONLY = ("path:models/marts/pairing",)
# The checks must run even when a dbt test fails (they exist to report bad data): the models
# (and the seeds: the schedule) are built without their tests, which the DAG's dbt_test runs.
WITHOUT_TESTS = ("--exclude", "resource_type:test", "resource_type:unit_test", *PUBLISHED_ONLY)


def today_in_shanghai() -> dt.date:
    return dt.datetime.now(SHANGHAI).date()


# --------------------------------------------------------------------------- run


def run_quality(
    settings: Settings | None = None,
    *,
    as_of: dt.date | None = None,
    run_id: str | None = None,
    all_clear: bool | None = None,
    send_digest: bool = True,
    build: bool = True,
) -> QualityRun:
    """The nightly checks, their record, Data Docs and the digest (see the module's doc)."""
    from ingestion import dbt
    from ingestion.warehouse import apply_schema, connect, warehouse_url

    settings = settings or Settings.from_env()
    as_of = as_of or today_in_shanghai()
    run = QualityRun(run_id=run_id or f"quality-{as_of.isoformat()}-{uuid.uuid4().hex[:8]}", as_of=as_of)
    url = warehouse_url(settings)
    with connect(url) as conn:
        apply_schema(conn)
        conn.execute("insert into audit.dq_runs (run_id, as_of) values (%s, %s)", (run.run_id, as_of))
        conn.commit()
    try:
        if build:
            _published_marts(url, settings)
        variables = ["--vars", json.dumps({"quality_as_of": as_of.isoformat()})]
        checks = ["build", "--select", *QUALITY_MODELS, *WITHOUT_TESTS, *variables]
        if build and not dbt.run_dbt(checks, url, settings=settings):
            raise RuntimeError("dbt build of the quality models failed: see the dbt output above")
        with connect(url) as conn:
            record_checks(conn, run.run_id)
        run.data_docs = validate_with_gx(settings, run.run_id, url)
        daily = ["build", "--select", *DAILY_MODELS, *WITHOUT_TESTS, *variables]
        if build and not dbt.run_dbt(daily, url, settings=settings):
            raise RuntimeError("dbt build of rpt_data_quality_daily failed: see the dbt output above")
        with connect(url) as conn:
            run.checks, run.failed = conn.execute(
                "select count(*), count(*) filter (where outcome = 'fail') from audit.dq_results where run_id = %s",
                (run.run_id,),
            ).fetchone()
            conn.execute(
                """update audit.dq_runs set finished_at = now(), status = 'done', checks = %s, failed = %s,
                   data_docs = %s where run_id = %s""",
                (run.checks, run.failed, run.data_docs, run.run_id),
            )
            conn.commit()
            run.findings = findings(conn, run.run_id)
            if send_digest:
                _digest(conn, run, settings, all_clear)
    except Exception:
        with connect(url) as conn:
            conn.execute(
                "update audit.dq_runs set finished_at = now(), status = 'failed' where run_id = %s", (run.run_id,)
            )
            conn.commit()
        raise
    return run


def _published_marts(url: str, settings: Settings) -> None:
    """The checks read the published pairing marts: on a warehouse where none was ever
    published, build and publish them first (``pairstats build``)."""
    from ingestion import dbt
    from ingestion.warehouse import connect

    with connect(url) as conn:
        if conn.execute("select to_regclass('marts.fct_activity_counts') is not null").fetchone()[0]:
            return
    log.info("no marts published yet: building them before the checks")
    result = dbt.build(settings)
    if not result:
        raise RuntimeError(result.describe())


def _digest(conn: Any, run: QualityRun, settings: Settings, all_clear: bool | None) -> None:
    wanted = settings.all_clear if all_clear is None else all_clear
    if run.failures or wanted:
        run.digest = compose_digest(run, settings)
        run.delivered = send(settings, run.digest, conn)


def load_run(conn: Any, run_id: str) -> QualityRun:
    """A finished run as recorded, with its findings."""
    row = conn.execute(
        "select as_of, checks, failed, data_docs, status from audit.dq_runs where run_id = %s", (run_id,)
    ).fetchone()
    if row is None or row[4] != "done":
        raise LookupError(f"no finished quality run {run_id!r} in audit.dq_runs")
    run = QualityRun(run_id=run_id, as_of=row[0], checks=row[1], failed=row[2], data_docs=row[3])
    run.findings = findings(conn, run_id)
    return run


def send_digest_for(run_id: str, settings: Settings | None = None, *, all_clear: bool | None = None) -> dict[str, Any]:
    """The digest of a recorded run (the DAG's ``send_digest`` task). Sending it twice is
    harmless to the record: a second digest of the same run would list its findings as new
    again, so a run whose digest was sent is not sent again."""
    from ingestion.warehouse import connect, warehouse_url

    settings = settings or Settings.from_env()
    with connect(warehouse_url(settings)) as conn:
        sent = conn.execute(
            "select 1 from audit.alerts where kind = 'digest' and run_id = %s and status = 'sent'", (run_id,)
        ).fetchone()
        run = load_run(conn, run_id)
        if not sent:
            _digest(conn, run, settings, all_clear)
    return run.summary() | {"already_sent": bool(sent)}


def record_checks(conn: Any, run_id: str) -> int:
    """Copy the night's check rows into ``audit.dq_results`` (in the server). Returns the row count."""
    cur = conn.execute(
        f"""insert into audit.dq_results
                (run_id, check_name, severity, reporting_unit_code, period_code, outcome, observed_value,
                 failing_rows, detail_zh, detail_en, examples)
            select %s, check_name, severity, reporting_unit_code, period_code, outcome, observed_value,
                   coalesce(failing_rows, 0), detail_zh, detail_en, coalesce(examples, '[]'::jsonb)
            from {CHECKS_RELATION}""",
        (run_id,),
    )
    conn.commit()
    return cur.rowcount


# --------------------------------------------------------------------------- findings


_FINDINGS_SQL = """
with runs as (  -- this run and the finished ones before it, newest first
    select run_id, started_at, as_of, row_number() over (order by started_at desc, run_id desc) as recency
    from audit.dq_runs
    where status = 'done' or run_id = %(run_id)s
),
this_run as (
    select * from audit.dq_results where run_id = %(run_id)s and outcome in ('fail', 'approximate')
),
same_before as (  -- the runs in which each finding had the same outcome: one hash join
    -- (an EXISTS per finding and run read every result of the run: quadratic at national
    -- scale, 30 k findings × 200 k results a night)
    select distinct t.id as result_id, h.run_id
    from this_run t
    join audit.dq_results h
      on h.check_name = t.check_name and h.outcome = t.outcome
     and coalesce(h.reporting_unit_code, '') = coalesce(t.reporting_unit_code, '')
     and coalesce(h.period_code, '') = coalesce(t.period_code, '')
    where h.outcome in ('fail', 'approximate')
),
past as (  -- for every finding and every run: had it the same outcome then?
    select t.id as result_id, runs.recency, runs.as_of, s.run_id is not null as same
    from this_run t
    cross join runs
    left join same_before s on s.result_id = t.id and s.run_id = runs.run_id
),
streaks as (  -- the newest run where the streak broke (passed, or was not checked)
    select result_id, coalesce(min(recency) filter (where not same), max(recency) + 1) as broken_at
    from past group by result_id
),
since as (  -- the first night of the streak
    select p.result_id, p.as_of
    from past p
    join streaks s on s.result_id = p.result_id and p.recency = s.broken_at - 1
)
select t.check_name, t.severity, t.outcome, t.reporting_unit_code, t.period_code,
       unit.name, region.code, concat_ws(' · ', province.name, region.name),
       t.failing_rows, t.observed_value, t.detail_zh, t.detail_en, t.examples,
       since.as_of as since,
       not exists (  -- no digest sent during the streak (before tonight) listed it
           select 1 from audit.alerts a join runs on runs.run_id = a.run_id
           where a.kind = 'digest' and a.status = 'sent' and runs.recency between 2 and s.broken_at - 1
       ) as is_new
from this_run t
join streaks s on s.result_id = t.id
left join since on since.result_id = t.id
left join lateral (
    select name, parent_code from ref.regions where code = t.reporting_unit_code order by tree limit 1
) unit on true
left join lateral (
    select code, name, parent_code from ref.regions where code = unit.parent_code order by tree limit 1
) region on true
left join lateral (
    select name from ref.regions where code = region.parent_code order by tree limit 1
) province on true
order by region.code nulls last, t.reporting_unit_code nulls last, t.check_name, t.period_code nulls first
"""


def findings(conn: Any, run_id: str) -> list[Finding]:
    """The run's failing and approximate results, each with the first night of its current streak
    and whether a sent digest already listed it during that streak."""
    rows = conn.execute(_FINDINGS_SQL, {"run_id": run_id}).fetchall()
    return [
        Finding(
            check_name=r[0],
            severity=r[1],
            outcome=r[2],
            reporting_unit_code=r[3],
            period_code=r[4],
            unit_name=r[5],
            region_code=r[6],
            region_name=r[7],
            failing_rows=int(r[8] or 0),
            observed_value=float(r[9]) if r[9] is not None else None,
            detail_zh=r[10],
            detail_en=r[11],
            examples=list(r[12] or []),
            failing_since=r[13],
            is_new=bool(r[14]),
        )
        for r in rows
    ]


def print_summary(run: QualityRun, stream: Any = None) -> None:
    import sys

    stream = stream or sys.stdout
    s = run.summary()
    print(
        f"quality run {s['run_id']} (as of {s['as_of']}): {s['checks']} checks, {s['failed']} failing "
        f"({s['new']} new, {s['still_failing']} still failing), {s['approximate']} approximate",
        file=stream,
    )
    for f in run.failures:
        where = _unit_title(f) or "(warehouse)"
        print(f"  ✘ {f.check_name} {where}: {f.detail_en or ''} [{_since(f, run.as_of)}]", file=stream)
    print(f"  Data Docs: {s['data_docs']}", file=stream)
    if run.digest is None and run.failures:
        print("  no digest sent (--no-send)", file=stream)
    elif run.digest is None:
        print("  no digest: every check passed (--all-clear sends one anyway)", file=stream)
    elif run.delivered:
        print(f"  digest sent ({', '.join(run.delivered)}): {run.digest.subject}", file=stream)
    else:
        print(f"  digest NOT delivered (see audit.alerts): {run.digest.subject}", file=stream)


def parse_as_of(text: str | None) -> dt.date | None:
    return dt.date.fromisoformat(text) if text else None
