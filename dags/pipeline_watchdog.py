"""
### Pipeline watchdog · 运行超时提醒

Every 10 minutes: a run of `ingest_submissions`, `build_warehouse` or `nightly_data_quality`
still queued or running past its deadline (minutes since it was queued;
`PAIRSTATS_RUN_DEADLINES`, default 30 / 60 / 120) mails the maintainers — once per run
(`audit.alerts`).

Why not Airflow's Deadline Alerts: in Airflow 3.3.2 `airflow dags test` of a DAG with
`deadline=` fails when the run succeeds (the test run passes serialized alerts where ids are
expected), and `make demo` runs the pipeline that way; runs triggered without a logical date
skip `DAGRUN_LOGICAL_DATE` deadlines. This watchdog reads the metadata database instead and
works however the DAGs run. See README "Alerts".

Logic: `ingestion/alerts.py` (`check_overdue_runs`).
"""

from __future__ import annotations

import pendulum
from airflow.sdk import CronTriggerTimetable, dag, task

from ingestion.alerts import on_task_failure  # standard library only: cheap at parse time


@dag(
    dag_id="pipeline_watchdog",
    schedule=CronTriggerTimetable("*/10 * * * *", timezone="Asia/Shanghai"),
    start_date=pendulum.datetime(2025, 1, 1, tz="Asia/Shanghai"),
    catchup=False,
    max_active_runs=1,
    doc_md=__doc__,
    tags=["pairstats", "alerts"],
    default_args={
        "owner": "data-engineering",
        "retries": 1,
        "retry_delay": pendulum.duration(minutes=1),
        "on_failure_callback": on_task_failure,
    },
)
def pipeline_watchdog() -> None:
    @task
    def overdue_runs() -> list[str]:
        """Alert once on every pipeline run past its deadline; the runs alerted on this time."""
        from ingestion.alerts import check_overdue_runs

        alerted = check_overdue_runs()
        for run in alerted:
            print(f"overdue: {run.dag_id} {run.run_id} ({run.minutes:.0f} min > {run.deadline_minutes})")
        return [f"{run.dag_id}/{run.run_id}" for run in alerted]

    overdue_runs()


pipeline_watchdog()
