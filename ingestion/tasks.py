"""What the Airflow DAG tasks do, testable without Airflow (the DAG files only wire these).

Ingest (``ingest_submissions``):

- ``plan_ingest`` chooses the new files (``ingestion.files.new_files``: landing roots, settle
  time, content hash) and cuts them into batches of whole landing folders — as many as the
  backlog needs and never more than Airflow can map (``max_map_length``), so any backlog is
  one run;
- ``ingest_batch`` ingests one batch in one warm process (``ingestion.service.ingest_batch``:
  one GX call per kind for the whole batch, each file its own transaction) and returns a
  bounded report: counts, and per file its status and codes — never every row problem;
- ``summarise`` checks that every planned file got an outcome, or fails the run.

A refused file is a result, not an error: its batch task succeeds and says so in its label
(``✘ 2 refused``), in its log (every reason, zh/en) and in the summary. Only errors of the
pipeline (the warehouse down, a bug) fail a task; they are retried, then alert.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ingestion.config import Settings

log = logging.getLogger(__name__)

TIMEZONE = "Asia/Shanghai"
# fewer batches than this many would leave workers idle: a backlog is spread over at least this many
MIN_PARALLEL_BATCHES = 2


def max_map_length() -> int:
    """Airflow's limit on the items an upstream task may hand to ``expand`` (1024 by default).
    ``PAIRSTATS_MAX_BATCHES`` overrides it (a test sets it above the limit to see a run go red)."""
    import os

    if os.environ.get("PAIRSTATS_MAX_BATCHES", "").strip().isdigit():
        return int(os.environ["PAIRSTATS_MAX_BATCHES"])
    try:
        from airflow.configuration import conf

        return conf.getint("core", "max_map_length", fallback=1024)
    except ImportError:  # not under Airflow
        return 1024


def plan_ingest(
    landing: str | Path | None = None,
    unit: str | None = None,
    period: str | None = None,
    *,
    settings: Settings | None = None,
    max_batches: int | None = None,
) -> dict[str, Any]:
    """The new files of a landing folder, in batches: ``{"batches": [{"label", "files"}], "files",
    "received", "settling", "skipped"}``. Creates the warehouse's schema and register when missing."""
    from ingestion.files import batch_label, new_files, plan_batches
    from ingestion.warehouse import connect, init_warehouse, warehouse_url

    settings = settings or Settings.from_env()
    with connect(warehouse_url(settings)) as conn:
        init_warehouse(conn)
        conn.commit()
        selection = new_files(settings, conn, landing=landing, unit=unit, period=period)
    limit = max_batches or max_map_length()
    # at least MIN_PARALLEL_BATCHES batches for a backlog, and never more than the limit
    per_batch = min(settings.batch_files, max(1, -(-len(selection.new) // MIN_PARALLEL_BATCHES)))
    batches = plan_batches(selection.new, batch_files=per_batch, max_batches=limit)
    return {
        "batches": [{"label": batch_label(b), "files": b} for b in batches],
        "files": len(selection.new),
        "received": selection.received,
        "settling": [file_label(p) for p in selection.settling],
        "skipped": [{"file": file_label(p), "why": why} for p, why in selection.skipped],
    }


def ingest_batch(batch: Mapping[str, Any], run_id: str, *, settings: Settings | None = None) -> dict[str, Any]:
    """Ingest one planned batch; its bounded report (see ``batch_report``). Raises only for a
    pipeline error (the warehouse down ...): a refused file is in the report."""
    from ingestion.service import ingest_batch as run_batch

    result = run_batch(list(batch["files"]), run_id, settings)
    report = batch_report(batch, result)
    for line in report_lines(report):
        log.info("%s", line)
    return report


def batch_report(batch: Mapping[str, Any], result: Any) -> dict[str, Any]:
    """What XCom keeps of a batch: counts, and per file (and automatic re-run) its brief."""
    summary = result.summary()
    return {
        "label": batch["label"],
        "planned": list(batch["files"]),
        "outcomes": [o.brief() for o in result.outcomes],
        "reruns": [o.brief() for o in result.reruns],
        "failures": summary["failures"],
        "counts": {
            "files": summary["files"],
            "loaded": summary["loaded_files"],
            "rejected": summary["rejected_files"],
            "duplicate": summary["duplicate_files"],
            "reruns": summary["reruns"],
        },
        "rows_loaded": summary["rows_loaded"],
        "rows_quarantined": summary["rows_quarantined"],
    }


def batch_outcome_label(report: Mapping[str, Any]) -> str:
    """What the UI shows after a batch's label: what became of its files."""
    c = report["counts"]
    text = f"✔{c['loaded']}"
    if c["rejected"]:
        text += f" ✘{c['rejected']} refused"
    if c["duplicate"]:
        text += f" ={c['duplicate']}"
    if c["reruns"]:
        text += f" ↻{c['reruns']}"
    return text


def report_lines(report: Mapping[str, Any]) -> list[str]:
    """A batch's outcome for its task log: one line per file, the refusals with their reasons."""
    lines = [f"batch {report['label']}: {batch_outcome_label(report)}"]
    for o in [*report["outcomes"], *report["reruns"]]:
        codes = ", ".join(f"{c}×{n}" for c, n in o["codes"].items())
        lines.append(
            f"  {o['status']:<9} {file_label(o['file'])} [{o['reporting_unit_code'] or '?'} {o['period'] or '-'}]"
            f" rows {o['rows_loaded']} loaded, {o['rows_quarantined']} quarantined{'; ' + codes if codes else ''}"
            + (" (re-run)" if o.get("reprocess_of") else "")
        )
        if o["status"] == "rejected":
            lines.extend(f"    {p.get('code')}: {p.get('message_zh')} / {p.get('message_en')}" for p in o["refusal"])
    lines.extend(f"  ✘ {failure}" for failure in report.get("failures") or ())
    return lines


def file_label(path: str | Path) -> str:
    """How a file is named in the UI and in messages: ``<landing folder>/<file name>``."""
    parts = Path(path).parts
    return "/".join(parts[-2:])


def summarise(plan: Mapping[str, Any], reports: Iterable[Mapping[str, Any] | None]) -> dict[str, Any]:
    """What one ingest run did (``service.summarise_outcomes`` over every batch), plus
    ``unfinished``: planned files without an outcome (their batch failed for a reason other
    than the file). ``loaded_files + reruns > 0`` means raw.* changed: rebuild the warehouse."""
    from ingestion.service import summarise_outcomes

    reports = [r for r in reports if r]
    outcomes = [o for r in reports for o in r["outcomes"]]
    summary = summarise_outcomes(
        outcomes, [o for r in reports for o in r["reruns"]], [f for r in reports for f in r.get("failures") or ()]
    )
    done = {str(o["file"]) for o in outcomes}
    planned = [f for b in plan.get("batches") or () for f in b["files"]]
    return summary | {
        "planned": len(planned),
        "settling": list(plan.get("settling") or ()),
        "unfinished": [file_label(f) for f in planned if str(f) not in done],
    }


class BuildNotPublished(RuntimeError):
    """A build that failed: nothing was published (``marts`` keeps the last good build).
    ``tests_failed``: a dbt test failed (the data, not the pipeline: a retry gives the same)."""

    def __init__(self, message: str, *, tests_failed: bool) -> None:
        super().__init__(message)
        self.tests_failed = tests_failed


def build_warehouse(
    *, full_refresh: bool = False, select: Sequence[str] | None = None, settings: Settings | None = None
) -> dict[str, Any]:
    """``dbt build`` of the whole project (staging → intermediate → marts, with all tests),
    written and tested in ``marts_build`` and published to ``marts`` when every test passed.

    Returns what was published (for XCom: table count, ms, the publication). Raises
    :class:`BuildNotPublished` naming every failed test and model otherwise (dbt's own output
    is in the task log).
    """
    from ingestion import dbt, publish
    from ingestion.warehouse import connect, warehouse_url

    settings = settings or Settings.from_env()
    result = dbt.build(settings, full_refresh=full_refresh, select=list(select) if select else None)
    if not result:
        tests_failed = any(f.startswith(("test ", "unit_test ")) for f in result.failures)
        raise BuildNotPublished(result.describe(), tests_failed=tests_failed)
    with connect(warehouse_url(settings)) as conn:
        latest = publish.latest(conn) or {}
    return {
        "published_tables": len(result.published),
        "publish_ms": round(result.publish_ms or 0.0, 1),
        "build_seconds": round(result.build_seconds, 1),
        "publication_id": latest.get("publication_id"),
        "last_submission_id": latest.get("last_submission_id"),
    }


def quality_as_of(context: Mapping[str, Any]) -> Any:
    """The day a nightly run judges: the end of its data interval in Asia/Shanghai (the night's
    date), not the clock; a manual run without an interval judges today."""
    import pendulum

    end = context.get("data_interval_end") or context.get("logical_date")
    if end is None:
        return pendulum.now(TIMEZONE).date()
    return pendulum.instance(end).in_timezone(TIMEZONE).date()


DBT_TEST_SELECTORS = ("resource_type:test", "resource_type:unit_test")


def dbt_tests(settings: Settings | None = None) -> None:
    """Every data test and unit test of the project, on the published marts as they are
    (nothing rebuilt, nothing published).

    ``dbt build --select resource_type:test resource_type:unit_test``: the same as
    ``dbt test``, with the profile that ``ingestion.dbt`` sets up.
    """
    if not run_dbt(["build", "--select", *DBT_TEST_SELECTORS], settings):
        raise RuntimeError("dbt tests failed: see the dbt output above")


def source_freshness(settings: Settings | None = None) -> None:
    """``dbt source freshness``: fails when a raw table has not been loaded for too long."""
    if not run_dbt(["source", "freshness"], settings):
        raise RuntimeError("dbt source freshness failed: see the dbt output above")


def nightly_checks(settings: Settings | None = None) -> dict[str, bool]:
    """The nightly quality checks for now: dbt tests and ``dbt source freshness``.

    Both run even when the first fails; raises ``RuntimeError`` naming the failed ones. (The
    DAG runs them as two tasks, so each has its own box; this is the same in one call.)
    """
    results: dict[str, bool] = {}
    for name, check in (("dbt tests", dbt_tests), ("dbt source freshness", source_freshness)):
        try:
            check(settings)
            results[name] = True
        except RuntimeError:
            log.exception("%s failed", name)
            results[name] = False
    failed = [name for name, ok in results.items() if not ok]
    if failed:
        raise RuntimeError(f"nightly checks failed: {', '.join(failed)}")
    return results


def run_dbt(args: Sequence[str], settings: Settings | None = None) -> bool:
    """A dbt command other than ``build``, through ``ingestion.dbt.run(args, settings) -> bool``."""
    from ingestion import dbt

    settings = settings or Settings.from_env()
    runner = getattr(dbt, "run", None)
    if runner is None:
        raise RuntimeError("ingestion.dbt has no run(args, settings) -> bool to run `dbt source freshness` with")
    return bool(runner(list(args), settings))
