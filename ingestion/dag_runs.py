"""Real DAG runs from Python: ``run_dag`` (``airflow dags test``) and ``run_pipeline`` (ingest, then
the build its Asset schedules), each recorded in the metadata database like any run and read
back from it (the run's state, every task instance with its rendered label)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ingestion.config import Settings
from ingestion.orchestration import airflow_command, prepare_airflow, subprocess_env
from ingestion.warehouse import AIRFLOW_DB, libpq_url

__all__ = ["DagRunResult", "TaskResult", "run_dag", "run_pipeline"]


@dataclass
class TaskResult:
    task_id: str
    map_index: int
    label: str | None  # the rendered map index (file name) of a mapped task
    state: str | None
    duration_s: float | None


@dataclass
class DagRunResult:
    dag_id: str
    run_id: str | None
    state: str | None
    returncode: int
    seconds: float
    log_path: str
    tasks: list[TaskResult] = field(default_factory=list)
    run_seconds: float | None = None  # the DAG run's own start → end, as the UI shows it

    @property
    def ok(self) -> bool:
        return self.state == "success"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def run_dag(
    dag_id: str,
    conf: Mapping[str, Any] | None = None,
    settings: Settings | None = None,
    *,
    metadata_db: str = AIRFLOW_DB,
    echo: bool = False,
    dags_folder: Path | None = None,
) -> DagRunResult:
    """One real run of ``dag_id`` (``airflow dags test``), recorded in the metadata database.

    The run's output goes to ``$PAIRSTATS_HOME/logs/airflow/<dag_id>-<time>.log`` (and to the
    terminal with ``echo``); the result carries the run's state and every task instance's.
    Does not raise when the run fails: look at ``.state``.
    """
    settings = settings or Settings.from_env()
    env = prepare_airflow(settings, metadata_db=metadata_db, dags_folder=dags_folder)
    log_dir = settings.logs / "airflow"
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{dag_id}-{time.strftime('%Y%m%dT%H%M%S')}.log"
    args = ["dags", "test", dag_id]
    if conf:
        args += ["--conf", json.dumps(dict(conf), ensure_ascii=False)]
    started = _latest_run_id(env, dag_id)
    t0 = time.perf_counter()
    with log_path.open("w", encoding="utf-8") as out:
        proc = subprocess.Popen(
            airflow_command(args),
            env=subprocess_env(env),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
        )
        assert proc.stdout is not None
        for line in proc.stdout:
            out.write(line)
            if echo:
                sys.stdout.write(line)
        returncode = proc.wait()
    seconds = time.perf_counter() - t0
    run_id, state, tasks, run_seconds = _run_state(env, dag_id)
    if run_id == started:  # no new run was created (the DAG did not parse, ...)
        run_id, state, tasks, run_seconds = None, None, [], None
    return DagRunResult(dag_id, run_id, state, returncode, round(seconds, 2), str(log_path), tasks, run_seconds)


def run_pipeline(
    conf: Mapping[str, Any] | None = None,
    settings: Settings | None = None,
    *,
    metadata_db: str = AIRFLOW_DB,
    echo: bool = False,
) -> list[DagRunResult]:
    """``ingest_submissions``, then ``build_warehouse`` when the ingest emitted its Asset.

    What the scheduler does on its own (the Asset schedules the build), done in this process's
    time for ``make demo``. A scheduler started later still finds the Asset event queued for
    ``build_warehouse`` and runs one more (idempotent) build.
    """
    ingest = run_dag("ingest_submissions", conf, settings, metadata_db=metadata_db, echo=echo)
    results = [ingest]
    published = next((t for t in ingest.tasks if t.task_id == "publish_raw_submissions"), None)
    if ingest.ok and published is not None and published.state == "success":
        results.append(run_dag("build_warehouse", None, settings, metadata_db=metadata_db, echo=echo))
    return results


def _latest_run_id(env: Mapping[str, str], dag_id: str) -> str | None:
    return _run_state(env, dag_id)[0]


def _run_state(env: Mapping[str, str], dag_id: str) -> tuple[str | None, str | None, list[TaskResult], float | None]:
    """The latest run of a DAG, its task instances and duration, read from the metadata database."""
    import psycopg

    with psycopg.connect(libpq_url(env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])) as conn:
        try:
            row = conn.execute(
                """select run_id, state, extract(epoch from end_date - start_date)::float
                   from dag_run where dag_id = %s order by id desc limit 1""",
                (dag_id,),
            ).fetchone()
        except psycopg.errors.UndefinedTable:
            return None, None, [], None
        if not row:
            return None, None, [], None
        tis = conn.execute(
            """select task_id, map_index, rendered_map_index, state, duration from task_instance
               where dag_id = %s and run_id = %s order by task_id, map_index""",
            (dag_id, row[0]),
        ).fetchall()
    tasks = [TaskResult(t, m, label, state, d) for t, m, label, state, d in tis]
    return row[0], row[1], tasks, round(row[2], 2) if row[2] is not None else None
