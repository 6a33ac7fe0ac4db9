"""
### Build the warehouse · 构建数据仓库

Runs when `ingest_submissions` emits the Asset `pairstats://warehouse/raw/submissions`
(something landed), or on manual trigger: **one `dbt build`** of `dbt_project/` — staging
views → intermediate (current version of each unit × period × kind) → marts, snapshots,
seeds, with every dbt test — **written and tested in `marts_build`, published to `marts`**
(one transaction; a row in `marts.publication`) only when every test passed, then emits the
Asset `pairstats://warehouse/marts` for the BI side. A failing test publishes nothing: BI
keeps the last good build, the task fails without a retry and the alert names the failing
tests. One task, not one per model: measured in `dags/README.md`.

Form (manual trigger): `full_refresh` rebuilds the incremental facts from all of history.

Logic: `ingestion/orchestration.py` (`build_warehouse`) → `ingestion/dbt.py` (`build`).
"""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.sdk import Asset, Param, dag, task

from ingestion.alerts import on_task_failure  # standard library only: cheap at parse time

RAW_SUBMISSIONS = Asset(name="raw_submissions", uri="pairstats://warehouse/raw/submissions")
MARTS = Asset(name="marts", uri="pairstats://warehouse/marts")


@dag(
    dag_id="build_warehouse",
    schedule=[RAW_SUBMISSIONS],
    start_date=pendulum.datetime(2025, 1, 1, tz="Asia/Shanghai"),
    catchup=False,
    max_active_runs=1,
    doc_md=__doc__,
    tags=["pairstats", "dbt", "warehouse"],
    default_args={
        "owner": "data-engineering",
        "retries": 1,
        "retry_delay": pendulum.duration(seconds=30),
        "on_failure_callback": on_task_failure,  # mail the maintainers (not for a refused file)
    },
    params={
        "full_refresh": Param(
            False,
            type="boolean",
            title="Full refresh 全量重建",
            description="Rebuild incremental models from all of history (dbt build --full-refresh).",
        ),
    },
)
def build_warehouse() -> None:
    @task(outlets=[MARTS])
    def dbt_build(params: dict[str, Any] | None = None) -> dict[str, Any]:
        """dbt build into marts_build, every test, then publish to marts; fails (publishing
        nothing) when any of them fails — without a retry when a test failed (the data)."""
        from airflow.sdk.exceptions import AirflowFailException

        from ingestion.tasks import BuildNotPublished
        from ingestion.tasks import build_warehouse as run_build

        try:
            return run_build(full_refresh=bool((params or {}).get("full_refresh")))
        except BuildNotPublished as exc:
            if exc.tests_failed:
                raise AirflowFailException(str(exc)) from exc
            raise

    dbt_build()


build_warehouse()
