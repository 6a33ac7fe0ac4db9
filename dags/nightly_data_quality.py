"""
### Nightly data quality · 每日数据质量检查

Every night at 02:30 Asia/Shanghai, judging the day before (the run's data interval):

1. `dbt_test` and `dbt_source_freshness`: every dbt test of the project, and whether every
   raw table received data recently.
2. `quality_checks`: the checks run **in the warehouse** — reporting completeness and
   timeliness per unit and period (`marts.rpt_reporting_completeness`, the schedule is the
   seed `reporting_schedule`), outliers against each pairing's own history
   (`marts.rpt_outliers`), 合计-row and row-count reconciliation, refused files, quarantined
   rows, fact integrity, freshness, quarantine growth — one row per check × unit × period
   recorded in `audit.dq_results`; then the GX suites of `expectations/nightly/` through
   GX's SQL engine, which build the **Data Docs** in `$PAIRSTATS_HOME/data_docs/index.html`
   (or `PAIRSTATS_DATA_DOCS_URL`); then `marts.rpt_data_quality_daily`.
3. `send_digest`: **one** email to `PAIRSTATS_ALERT_EMAILS` (over `PAIRSTATS_SMTP_URL`; a
   webhook too if `PAIRSTATS_ALERT_WEBHOOK`), grouped by region: what failed, since when,
   how many rows, the worst examples, refused files with their reasons, units with
   quarantined rows, a link to the Data Docs. A problem already reported is "still failing
   since …", not new. Nothing failing: no mail (unless `PAIRSTATS_ALL_CLEAR`).

Any failed task mails the maintainers (`on_failure_callback`); `pipeline_watchdog` alerts on
runs past their deadline. The same without Airflow: `pairstats quality`.

Logic: `ingestion/quality.py` (`run_quality`, `send_digest_for`), `ingestion/alerts.py`.
"""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.sdk import CronTriggerTimetable, dag, get_current_context, task

from ingestion.alerts import on_task_failure  # standard library only: cheap at parse time


@dag(
    dag_id="nightly_data_quality",
    schedule=CronTriggerTimetable("30 2 * * *", timezone="Asia/Shanghai"),
    start_date=pendulum.datetime(2025, 1, 1, tz="Asia/Shanghai"),
    catchup=False,
    max_active_runs=1,
    doc_md=__doc__,
    tags=["pairstats", "dbt", "quality"],
    default_args={
        "owner": "data-engineering",
        "retries": 1,
        "retry_delay": pendulum.duration(seconds=30),
        "on_failure_callback": on_task_failure,  # mail the maintainers
    },
)
def nightly_data_quality() -> None:
    @task
    def dbt_test() -> None:
        """dbt tests: every data test and unit test of the project, nothing rebuilt."""
        from ingestion.tasks import dbt_tests

        dbt_tests()

    @task
    def dbt_source_freshness() -> None:
        """dbt source freshness: warns or fails when a raw table has not been loaded for too long."""
        from ingestion.tasks import source_freshness

        source_freshness()

    @task(trigger_rule="all_done")
    def quality_checks() -> dict[str, Any]:
        """The checks in the warehouse, recorded per check × unit × period, GX on SQL, Data Docs."""
        from ingestion.quality import run_quality
        from ingestion.tasks import quality_as_of

        context = get_current_context()
        run = run_quality(as_of=quality_as_of(context), run_id=f"quality-{context['run_id']}", send_digest=False)
        print(run.summary())
        return run.summary()

    @task
    def send_digest(summary: dict[str, Any]) -> dict[str, Any]:
        """One digest to the maintainers when something fails (or when an all-clear is asked for)."""
        from ingestion.quality import send_digest_for

        result = send_digest_for(summary["run_id"])
        print(result)
        return result

    checks = quality_checks()
    [dbt_test(), dbt_source_freshness()] >> checks
    send_digest(checks)


nightly_data_quality()
