"""Every DAG file parses cleanly, quickly and without side effects, and follows the house rules.

One case per file in ``dags/`` (as astro-cli's ``dagexampletest.py``): no import errors, one
DAG, tags, an owner, retries on every task, the module docstring as ``doc_md``, and a
parse time under 2 s. No database is needed: Airflow is pointed at a temporary home first.
"""

from __future__ import annotations

import ast
import datetime as dt
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ingestion.alerts import on_task_failure

DAGS = Path(__file__).resolve().parents[2] / "dags"
DAG_FILES = sorted(p for p in DAGS.glob("*.py") if not p.name.startswith("_"))
PARSE_LIMIT_S = 2.0


@pytest.fixture(scope="module")
def parse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Parse one DAG file with Airflow's DagBag; Airflow configured in a temporary home.

    ``PAIRSTATS_HOME`` points at a folder that does not exist and the warehouse at a port
    nothing listens on: a DAG file that touched either at import would show it.
    """
    home = tmp_path_factory.mktemp("airflow-dagbag")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AIRFLOW_HOME", str(home / "airflow"))
        mp.setenv("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
        mp.setenv("AIRFLOW__CORE__DAGS_FOLDER", str(DAGS))
        mp.setenv("PAIRSTATS_HOME", str(home / "must-not-exist"))
        mp.setenv("PAIRSTATS_WAREHOUSE_URL", "postgresql://nobody@127.0.0.1:9/nothing")
        from airflow.dag_processing.dagbag import DagBag

        def _parse(path: Path) -> DagBag:
            return DagBag(dag_folder=str(path))

        yield _parse
        assert not (home / "must-not-exist").exists(), "a DAG file did I/O at import time"


def test_there_are_dags() -> None:
    assert {p.stem for p in DAG_FILES} >= {
        "ingest_submissions",
        "build_warehouse",
        "nightly_data_quality",
        "pipeline_watchdog",
    }


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.name)
def test_dag_file(parse: Any, path: Path) -> None:
    bag = parse(path)
    assert bag.import_errors == {}, bag.import_errors
    assert len(bag.dags) == 1, f"one DAG per file, got {list(bag.dags)}"
    (dag,) = bag.dags.values()
    assert dag.dag_id == path.stem, "the DAG is named after its file"

    (stat,) = bag.dagbag_stats
    assert stat.duration < dt.timedelta(seconds=PARSE_LIMIT_S), f"parsed in {stat.duration}"

    docstring = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")), clean=False)
    assert docstring and dag.doc_md == docstring, "doc_md=__doc__"
    assert dag.tags and "pairstats" in dag.tags
    assert dag.default_args.get("owner") not in (None, "", "airflow")
    assert dag.default_args.get("retries", 0) >= 1
    for task in dag.tasks:
        assert task.owner == dag.default_args["owner"], task.task_id
        assert task.retries >= 1, f"{task.task_id} has no retries"
        documented = task.doc_md or getattr(getattr(task, "python_callable", None), "__doc__", None)
        assert documented, f"{task.task_id} is not documented"
        callbacks = task.on_failure_callback
        callbacks = callbacks if isinstance(callbacks, list | tuple) else [callbacks]
        assert on_task_failure in callbacks, f"{task.task_id} does not alert the maintainers when it fails"
    assert dag.catchup is False
    assert dag.max_active_runs == 1


def _load(parse: Any, dag_id: str) -> Any:
    return parse(DAGS / f"{dag_id}.py").dags[dag_id]


def test_ingest_submissions_shape(parse: Any) -> None:
    dag = _load(parse, "ingest_submissions")
    assert dag.timetable.expression == "*/15 * * * *"
    assert str(dag.timetable.timezone) == "Asia/Shanghai"
    assert set(dag.params.keys()) == {"landing", "reporting_unit", "period"}
    dag.params.validate()  # the defaults pass their own schema (a scheduled run uses them)

    ingest = dag.get_task("ingest_batch")
    assert "MappedOperator" in type(ingest).__name__, "one mapped task per batch"
    assert "op_kwargs['batch']['label']" in ingest.map_index_template and "batch_outcome" in ingest.map_index_template
    # a failed listing or batch leaves summarise upstream_failed: the run is red, never green
    assert str(dag.get_task("summarise").trigger_rule) in ("none_failed", "TriggerRule.NONE_FAILED")
    publish = dag.get_task("publish_raw_submissions")
    assert [a.uri for a in publish.outlets] == ["pairstats://warehouse/raw/submissions"]
    assert dag.get_task("find_new_files").downstream_task_ids == {"ingest_batch", "summarise"}


def test_build_warehouse_runs_on_what_ingest_emits(parse: Any) -> None:
    emitted = _load(parse, "ingest_submissions").get_task("publish_raw_submissions").outlets
    build = _load(parse, "build_warehouse")
    (scheduled_on,) = build.timetable.asset_condition.objects
    assert scheduled_on in emitted
    assert [a.uri for a in build.get_task("dbt_build").outlets] == ["pairstats://warehouse/marts"]


def test_nightly_is_at_half_past_two_in_shanghai(parse: Any) -> None:
    dag = _load(parse, "nightly_data_quality")
    assert dag.timetable.expression == "30 2 * * *"
    assert str(dag.timetable.timezone) == "Asia/Shanghai"


def test_dags_are_thin_and_ruff_air3_clean() -> None:
    for path in DAG_FILES:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        top_imports = {
            (node.module or "") if isinstance(node, ast.ImportFrom) else alias.name
            for node in tree.body
            if isinstance(node, ast.Import | ast.ImportFrom)
            for alias in node.names
        }
        # logic is imported inside tasks; only the failure alert is referenced at the top (default_args)
        heavy = {m for m in top_imports if m.startswith("ingestion")} - {"ingestion.alerts"}
        assert not heavy, f"{path.name}: import {heavy} inside tasks"
    light = subprocess.run(
        [sys.executable, "-c", "import sys, ingestion.alerts; print(sorted({m.split('.')[0] for m in sys.modules}"
         " & {'pandas', 'numpy', 'great_expectations', 'psycopg', 'dbt', 'pyarrow', 'sqlalchemy'}))"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert light.stdout.strip() == "[]", f"ingestion.alerts pulls in heavy modules at parse time: {light.stdout}"
    ruff = Path(sys.executable).with_name("ruff")
    assert ruff.exists(), "ruff (a dev dependency in the lock) is not installed next to this python"
    proc = subprocess.run(
        [str(ruff), "check", "--select", "AIR3", "--no-cache", *map(str, DAG_FILES)],
        capture_output=True,
        text=True,
        env={**os.environ, "NO_COLOR": "1"},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
