"""
### Nightly data quality · 每日数据质量检查

Every night at 02:30 Asia/Shanghai, after the day's submissions: `dbt test` (keys,
relationships, contracts' expectations, unit tests) and `dbt source freshness` (has every
raw table received data recently). Either failing turns the run red.

For now only these two; the full quality suite (GX on the warehouse, completeness per unit
and period, outliers) and the alert digest are their own issue.

Logic: `ingestion/orchestration.py` (`dbt_tests`, `source_freshness`) → `ingestion/dbt.py`.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import CronTriggerTimetable, dag, task


@dag(
    dag_id="nightly_data_quality",
    schedule=CronTriggerTimetable("30 2 * * *", timezone="Asia/Shanghai"),
    start_date=pendulum.datetime(2025, 1, 1, tz="Asia/Shanghai"),
    catchup=False,
    max_active_runs=1,
    doc_md=__doc__,
    tags=["pairstats", "dbt", "quality"],
    default_args={"owner": "data-engineering", "retries": 1, "retry_delay": pendulum.duration(seconds=30)},
)
def nightly_data_quality() -> None:
    @task
    def dbt_test() -> None:
        """dbt tests: every data test and unit test of the project, nothing rebuilt."""
        from ingestion.orchestration import dbt_tests

        dbt_tests()

    @task
    def dbt_source_freshness() -> None:
        """dbt source freshness: warns or fails when a raw table has not been loaded for too long."""
        from ingestion.orchestration import source_freshness

        source_freshness()

    dbt_test()
    dbt_source_freshness()


nightly_data_quality()
