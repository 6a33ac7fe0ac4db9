"""
### Ingest district submissions · 接收区县报送文件

Every 15 minutes (Asia/Shanghai), and on manual trigger with a form, takes the files in the
landing folder (`landing/<unit code>/<any name>`) that have stopped changing and that the
warehouse has not received yet (by content hash), and ingests them **in batches of whole
landing folders, one mapped task per batch**, each named after its units and what became of
its files (`652801…659008 (40 units, 400 files) · ✔398 ✘2 refused`). A batch runs in one warm
process: read → normalise → validate (one Great Expectations call per record kind for the
whole batch) → load, each file in its own transaction; good rows to `raw.*`, bad rows to
`quarantine.*`, every outcome to `audit.submission_files`. Any backlog is one run: there are
never more batches than Airflow can map.

- A **refused file** (unknown unit, unreadable, contradictory …) is a result, not a failure:
  its batch succeeds, its label counts it (`✘ refused`), its log gives every reason (zh/en),
  `summarise` lists it; it alerts no one as a pipeline failure (the nightly digest lists it).
- A **pipeline error** (the warehouse down, a listing that fails, a bug) fails its task, which
  is retried and then alerts the maintainers; `summarise` then does not run and the run is
  **red**: it emits nothing, and the files stay new for the next run.
- `summarise` succeeds only when every planned file got an outcome; `publish_raw_submissions`
  emits the Asset `pairstats://warehouse/raw/submissions` (which schedules `build_warehouse`)
  only when something loaded.

Form (manual trigger): landing folder (under the configured landing roots; default
`$PAIRSTATS_LANDING`), reporting unit (only `landing/<unit>/`), period (only files whose name
states it, e.g. `2025-03`, `2025Q1`).

Logic: `ingestion/tasks.py` (`plan_ingest`, `ingest_batch`, `summarise`).
"""

from __future__ import annotations

import os
from typing import Any

import pendulum
from airflow.sdk import Asset, CronTriggerTimetable, Param, dag, get_current_context, task
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from ingestion.alerts import on_task_failure  # standard library only: cheap at parse time

RAW_SUBMISSIONS = Asset(name="raw_submissions", uri="pairstats://warehouse/raw/submissions")


@dag(
    dag_id="ingest_submissions",
    # PAIRSTATS_INGEST_CRON: the topology test runs it every minute (reading it is no I/O)
    schedule=CronTriggerTimetable(os.environ.get("PAIRSTATS_INGEST_CRON") or "*/15 * * * *", timezone="Asia/Shanghai"),
    start_date=pendulum.datetime(2025, 1, 1, tz="Asia/Shanghai"),
    catchup=False,
    max_active_runs=1,
    doc_md=__doc__,
    tags=["pairstats", "ingest"],
    default_args={
        "owner": "data-engineering",
        # PAIRSTATS_INGEST_RETRIES: 0 in the tests that force a failure (reading it is no I/O)
        "retries": int(os.environ.get("PAIRSTATS_INGEST_RETRIES", "2")),
        "retry_delay": pendulum.duration(seconds=int(os.environ.get("PAIRSTATS_INGEST_RETRY_SECONDS") or 60)),
        "on_failure_callback": on_task_failure,  # mail the maintainers
    },
    params={
        "landing": Param(
            None,
            type=["null", "string"],
            title="Landing folder 上传目录",
            description="Folder to scan, under the landing roots; empty: $PAIRSTATS_LANDING.",
        ),
        "reporting_unit": Param(
            None,
            type=["null", "string"],
            pattern=r"^\d{6}$",
            title="Reporting unit 填报单位代码",
            description="Six-digit division code: only landing/<code>/ is scanned; empty: every unit.",
        ),
        "period": Param(
            None,
            type=["null", "string"],
            pattern=r"^\d{4}(-(0[1-9]|1[0-2])|Q[1-4])$",
            title="Period 报告期",
            description="2025-03 or 2025Q1: only files whose name states this period; empty: every period.",
        ),
    },
)
def ingest_submissions() -> None:
    @task
    def find_new_files(params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """The new, settled files in batches of whole landing folders; creates the schema if missing."""
        from ingestion.tasks import plan_ingest

        params = params or {}
        try:
            plan = plan_ingest(params.get("landing"), params.get("reporting_unit"), params.get("period"))
        except ValueError as exc:  # a landing folder outside the roots, a bad period: retrying cannot help
            raise AirflowFailException(str(exc)) from exc
        print(
            f"{plan['files']} new file(s) in {len(plan['batches'])} batch(es); {plan['received']} received "
            f"already; {len(plan['settling'])} still arriving (next run): {plan['settling'][:20]}; "
            f"not taken: {plan['skipped'][:20]}"
        )
        return plan["batches"]

    @task(
        map_index_template=(
            "{{ task.op_kwargs['batch']['label'] }}{{ (' · ' ~ batch_outcome) if batch_outcome is defined else '' }}"
        )
    )
    def ingest_batch(batch: dict[str, Any]) -> dict[str, Any]:
        """Ingest one batch in this process (each file its own transaction); refused files are results."""
        from ingestion.tasks import batch_outcome_label, ingest_batch

        context = get_current_context()
        report = ingest_batch(batch, run_id=context["run_id"])
        context["batch_outcome"] = batch_outcome_label(report)  # type: ignore[typeddict-unknown-key]
        if report["failures"]:
            raise AirflowFailException(f"files could not be re-run: {report['failures']}")
        return report

    @task(trigger_rule="none_failed")
    def summarise(batches: list[dict[str, Any]], reports: list[dict[str, Any]]) -> dict[str, Any]:
        """Files per status, rows, the unit/periods that changed; fails if a planned file got no outcome."""
        from ingestion.tasks import summarise as summarise_run

        summary = summarise_run({"batches": batches}, list(reports))
        print(summary)
        if summary["unfinished"]:
            raise AirflowFailException(f"no outcome (pipeline error, see their batches): {summary['unfinished']}")
        return summary

    @task(outlets=[RAW_SUBMISSIONS])
    def publish_raw_submissions(summary: dict[str, Any]) -> None:
        """Emit the raw-submissions Asset when anything loaded (schedules build_warehouse); else skip."""
        if not summary["loaded_files"] and not summary["reruns"]:
            raise AirflowSkipException("nothing loaded: no Asset event, no warehouse build")
        context = get_current_context()
        context["outlet_events"][RAW_SUBMISSIONS].extra = {
            "loaded_files": summary["loaded_files"],
            "reruns": summary["reruns"],
            "rows_loaded": summary["rows_loaded"],
            "units_periods": summary["units_periods"][:200],
        }

    batches = find_new_files()
    reports = ingest_batch.expand(batch=batches)
    publish_raw_submissions(summarise(batches, reports))


ingest_submissions()
