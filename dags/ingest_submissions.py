"""
### Ingest district submissions · 接收区县报送文件

Every 15 minutes (Asia/Shanghai), and on manual trigger with a form, picks up the files in
the landing folder (`landing/<unit code>/<any name>.xlsx|csv|json`) that the warehouse has
not received yet (by content hash) and ingests **one file per mapped task**, each named after
its file: read → normalise → validate → load, good rows to `raw.*`, bad rows to `quarantine.*`,
the outcome to `audit.submission_files`. Files of one unit land in submission order (a unit's
first file declares the pairings its later files reference), different units in parallel.

- A **refused file** (unknown unit, unreadable, contradictory …) is one **red** task: the
  refusal is recorded, the reasons (zh/en) are in its log, it is not retried, and the other
  files land. The run itself stays green: the pipeline worked, a district must resend.
- `summarise` lists what landed; `publish_raw_submissions` emits the Asset
  `pairstats://warehouse/raw/submissions` (which schedules `build_warehouse`) **only when
  at least one file loaded**, and is skipped otherwise.
- A **pipeline error** (warehouse down, a bug outside the ingester) is retried; a file left
  without an outcome fails `summarise`, so the run is red and emits nothing (the file is
  still new: the next run takes it again).

Form (manual trigger): landing folder (default `$PAIRSTATS_LANDING`), reporting unit
(only `landing/<unit>/`), period (only files whose name states it, e.g. `2025-03`, `2025Q1`).

Logic: `ingestion/orchestration.py` (`list_new_files`, `ingest_one`, `summarise`).
"""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.sdk import Asset, CronTriggerTimetable, Param, dag, get_current_context, task
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from ingestion.alerts import on_task_failure  # standard library only: cheap at parse time

RAW_SUBMISSIONS = Asset(name="raw_submissions", uri="pairstats://warehouse/raw/submissions")


@dag(
    dag_id="ingest_submissions",
    schedule=CronTriggerTimetable("*/15 * * * *", timezone="Asia/Shanghai"),
    start_date=pendulum.datetime(2025, 1, 1, tz="Asia/Shanghai"),
    catchup=False,
    max_active_runs=1,
    doc_md=__doc__,
    tags=["pairstats", "ingest"],
    default_args={
        "owner": "data-engineering",
        "retries": 2,
        "retry_delay": pendulum.duration(minutes=1),
        "on_failure_callback": on_task_failure,  # mail the maintainers (not for a refused file)
    },
    params={
        "landing": Param(
            None,
            type=["null", "string"],
            title="Landing folder 上传目录",
            description="Folder to scan; empty: $PAIRSTATS_LANDING.",
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
    def find_new_files(params: dict[str, Any] | None = None) -> list[str]:
        """Paths of the files not received yet (content hash), in path order; creates the schema if missing."""
        from ingestion.orchestration import list_new_files

        params = params or {}
        files = list_new_files(params.get("landing"), params.get("reporting_unit"), params.get("period"))
        print(f"{len(files)} new file(s)")
        return files

    @task(map_index_template="{{ task.op_kwargs['path'].split('/')[-2:] | join('/') }}")
    def ingest_file(path: str, files: list[str]) -> dict[str, Any]:
        """Ingest one file (after the earlier files of its folder); a refused file fails (red) without retry."""
        from ingestion.orchestration import ingest_one, refusal_message

        context = get_current_context()
        outcome = ingest_one(path, run_id=context["run_id"], files=files)
        if outcome["status"] == "rejected":
            # keep the outcome for `summarise`: a failed task's return value is not pushed
            context["ti"].xcom_push(key="return_value", value=outcome)
            raise AirflowFailException(refusal_message(outcome))
        print(
            f"{outcome['status']}: {outcome['reporting_unit_code']} {outcome['period']}, "
            f"{outcome['rows_loaded']} rows loaded, {outcome['rows_quarantined']} quarantined"
        )
        return outcome

    @task(trigger_rule="all_done")
    def summarise(files: list[str], outcomes: list[dict[str, Any]]) -> dict[str, Any]:
        """Files per status, rows, the unit/periods that changed; fails if a file got no outcome (pipeline error)."""
        from ingestion.orchestration import summarise as summarise_outcomes

        summary = summarise_outcomes(list(outcomes), files=files)
        print(summary)
        if summary["unfinished"]:
            raise AirflowFailException(f"no outcome (pipeline error, see their tasks): {summary['unfinished']}")
        return summary

    @task(outlets=[RAW_SUBMISSIONS])
    def publish_raw_submissions(summary: dict[str, Any]) -> None:
        """Emit the raw-submissions Asset when anything loaded (schedules build_warehouse); else skip."""
        if not summary["loaded_files"]:
            raise AirflowSkipException("nothing loaded: no Asset event, no warehouse build")
        context = get_current_context()
        context["outlet_events"][RAW_SUBMISSIONS].extra = {
            "loaded_files": summary["loaded_files"],
            "rows_loaded": summary["rows_loaded"],
            "units_periods": summary["units_periods"],
        }

    files = find_new_files()
    outcomes = ingest_file.partial(files=files).expand(path=files)
    publish_raw_submissions(summarise(files, outcomes))


ingest_submissions()
