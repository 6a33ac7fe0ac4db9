"""Airflow runs the whole chain for real, against a real PostgreSQL.

Fast tests cover what the DAG tasks do (``ingestion/orchestration.py``) without Airflow. The
slow ones drop the demo submissions into a landing folder, run the three DAGs with
``airflow dags test`` (real runs, recorded in a real metadata database), and compare what
landed with what the generator says it wrote.

One Airflow metadata database for the module (migrating one costs ~10 s), on the server
under test, under a unique name, dropped afterwards; one warehouse database cloned from the
session's template, like ``settings`` in ``conftest.py`` but shared by the module's tests.
"""

from __future__ import annotations

import dataclasses
import json
import os
import stat
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from ingestion.config import CHECKOUT, Settings
from ingestion.dag_runs import DagRunResult, run_dag
from ingestion.orchestration import airflow_env, airflow_json, libpq_url, metadata_url
from ingestion.tasks import file_label, ingest_batch, plan_ingest, report_lines, summarise
from ingestion.warehouse import with_database
from tests.conftest import create_database, drop_database

DAG_IDS = ("ingest_submissions", "build_warehouse", "nightly_data_quality")
MAINTAINERS = "ops@example.org,data@example.org"


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def metadata_db(pg_admin_url: str) -> Iterator[str]:
    """A fresh Airflow metadata database for this module (migrated on first use)."""
    name = f"airflow_t_{uuid.uuid4().hex[:10]}"
    yield name
    drop_database(pg_admin_url, name)


@pytest.fixture(scope="module")
def mailbox() -> Iterator[tuple[str, Any]]:
    """A real SMTP server for the module's Airflow runs: (PAIRSTATS_SMTP_URL, mailbox)."""
    from tests.conftest import Mailbox, _controller_class

    box = Mailbox()
    controller = _controller_class()(box, hostname="127.0.0.1", port=0)
    controller.start()
    try:
        yield f"smtp://127.0.0.1:{controller.port}", box
    finally:
        controller.stop()


@pytest.fixture(scope="module")
def chain_settings(
    pg_admin_url: str, template_db: str, tmp_path_factory: pytest.TempPathFactory, mailbox: tuple[str, Any]
) -> Iterator[Settings]:
    """A fresh PAIRSTATS_HOME and warehouse database (schema + register), for the module; alerts
    go to the module's SMTP server."""
    name = f"pairstats_af_{uuid.uuid4().hex[:10]}"
    create_database(pg_admin_url, name, template_db)
    home = tmp_path_factory.mktemp("pairstats-airflow")
    try:
        yield Settings.from_env(
            {
                "PAIRSTATS_HOME": str(home / "home"),
                "PAIRSTATS_WAREHOUSE_URL": with_database(pg_admin_url, name),
                "PAIRSTATS_SMTP_URL": mailbox[0],
                "PAIRSTATS_ALERT_EMAILS": MAINTAINERS,
                "PAIRSTATS_SETTLE_SECONDS": "0",  # the generator has finished writing
                "PAIRSTATS_BATCH_FILES": "20",  # the demo's 49 files in three batches
            }
        )
    finally:
        drop_database(pg_admin_url, name)


@pytest.fixture(scope="module")
def chain(chain_settings: Settings, metadata_db: str) -> dict[str, Any]:
    """Demo files in the landing folder, then: ingest, build, nightly, and ingest again (nothing new)."""
    from ingestion.demo import generate_demo

    demo = generate_demo(chain_settings.landing)
    runs: dict[str, DagRunResult] = {}
    for key, dag_id in (
        ("ingest", "ingest_submissions"),
        ("build", "build_warehouse"),
        ("nightly", "nightly_data_quality"),
        ("ingest_again", "ingest_submissions"),
    ):
        runs[key] = run_dag(dag_id, settings=chain_settings, metadata_db=metadata_db)
    return {"demo": demo, "runs": runs}


def _explain(run: DagRunResult) -> str:
    tail = Path(run.log_path).read_text(encoding="utf-8", errors="replace")[-4000:]
    states = [(t.task_id, t.map_index, t.label, t.state) for t in run.tasks if t.state != "success"]
    return f"{run.dag_id}: {run.state} (exit {run.returncode}); not successful: {states}\n--- log tail ---\n{tail}"


def _query(settings: Settings, query: str, *args: Any) -> list[tuple]:
    with psycopg.connect(settings.warehouse_url) as conn:
        return conn.execute(query, args).fetchall()


# --------------------------------------------------------------------------- fast: no Airflow


def test_airflow_env_comes_from_settings(settings: Settings, pg_admin_url: str) -> None:
    name = f"airflow_env_{uuid.uuid4().hex[:8]}"
    try:
        env = airflow_env(settings, metadata_db=name)
        home = settings.home / "airflow"
        assert env["AIRFLOW_HOME"] == str(home)
        url = env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
        assert url.startswith("postgresql+psycopg2://")
        assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC"].startswith("postgresql+psycopg_async://")
        with psycopg.connect(libpq_url(url)) as conn:  # created on the warehouse's server
            assert conn.execute("select current_database()").fetchone() == (name,)
        assert env["AIRFLOW__CORE__DAGS_FOLDER"] == str(CHECKOUT / "dags")
        assert env["AIRFLOW__CORE__LOAD_EXAMPLES"] == "False"
        assert env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
        assert env["AIRFLOW__CORE__DEFAULT_TIMEZONE"] == "Asia/Shanghai"
        assert env["AIRFLOW__CORE__AUTH_MANAGER"].endswith("SimpleAuthManager")
        passwords = Path(env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"])
        assert passwords.parent == home
        assert json.loads(passwords.read_text())["admin"]
        assert stat.S_IMODE(passwords.stat().st_mode) == 0o600
        assert env["PAIRSTATS_HOME"] == str(settings.home)
        assert env["PAIRSTATS_WAREHOUSE_URL"] == settings.warehouse_url
        assert env["PYTHONPATH"].split(os.pathsep)[0] == str(CHECKOUT)
        assert airflow_env(settings, metadata_db=name) == env  # idempotent
    finally:
        drop_database(with_database(pg_admin_url, "postgres"), name)


def _files(plan: dict[str, Any]) -> list[str]:
    return [f for b in plan["batches"] for f in b["files"]]


def test_summarise() -> None:
    plan = {"batches": [{"label": "b", "files": ["/l/1/a.csv", "/l/1/b.csv", "/l/2/c.csv", "/l/3/d.csv"]}]}
    brief = {"submission_id": 1, "reporting_unit_code": "1", "period": "2025-01", "rows_quarantined": 0, "codes": {}}
    report = {
        "outcomes": [
            brief | {"file": "/l/1/a.csv", "status": "loaded", "rows_loaded": 3},
            brief | {"file": "/l/1/b.csv", "status": "duplicate", "rows_loaded": 0, "submission_id": 2},
            brief
            | {"file": "/l/2/c.csv", "status": "rejected", "rows_loaded": 0, "submission_id": 3}
            | {"codes": {"F005_UNKNOWN_UNIT": 1}, "reporting_unit_code": "2"},
        ],
        "reruns": [],
    }
    summary = summarise(plan, [report, None])  # a batch that pushed nothing
    assert summary["files"] == 3 and summary["planned"] == 4
    assert (summary["loaded_files"], summary["rejected_files"], summary["duplicate_files"]) == (1, 1, 1)
    assert summary["rows_loaded"] == 3
    assert summary["units_periods"] == ["1/2025-01"]
    assert summary["rejected"] == [{"file": "2/c.csv", "codes": ["F005_UNKNOWN_UNIT"]}]
    assert summary["unfinished"] == ["3/d.csv"]
    assert summarise({"batches": []}, [])["loaded_files"] == 0


def test_new_files_by_content_hash(settings: Settings, tmp_path: Path) -> None:
    from ingestion.demo import generate_demo

    landing = tmp_path / "landing"
    demo = generate_demo(landing)
    settings = dataclasses.replace(settings, settle_seconds=0, landing_roots=(landing, tmp_path / "nowhere"))
    files = _files(plan_ingest(landing, settings=settings))
    assert sorted(files) == sorted(str(f.path) for f in demo.files)
    assert _files(plan_ingest(landing, settings=settings)) == files  # deterministic

    unit = demo.files[0].reporting_unit_code
    assert all(Path(f).parent.name == unit for f in _files(plan_ingest(landing, unit, settings=settings)))
    march = _files(plan_ingest(landing, None, "2025-03", settings=settings))
    assert march and all("2025-03" in Path(f).name for f in march)
    assert plan_ingest(tmp_path / "nowhere", settings=settings)["files"] == 0

    first = files[0]
    ingest_batch({"label": "one", "files": [first]}, "test-run", settings=settings)
    assert first not in _files(plan_ingest(landing, settings=settings))
    copy = landing / "copy-of-first" / Path(first).name  # same bytes elsewhere: received already
    copy.parent.mkdir()
    copy.write_bytes(Path(first).read_bytes())
    plan = plan_ingest(landing, settings=settings)
    assert str(copy) not in _files(plan) and plan["received"] == 2


def test_a_landing_folder_outside_the_roots_is_refused(settings: Settings, tmp_path: Path) -> None:
    from ingestion.files import LandingOutsideRoots

    with pytest.raises(LandingOutsideRoots, match="not under the configured landing roots"):
        plan_ingest("/etc", settings=settings)
    with pytest.raises(LandingOutsideRoots):
        plan_ingest(settings.landing / ".." / "..", settings=settings)  # no way out by '..'
    settings.landing.mkdir(parents=True, exist_ok=True)
    assert plan_ingest(settings.landing, settings=settings)["files"] == 0


def test_files_still_arriving_wait_for_the_next_run(settings: Settings, tmp_path: Path) -> None:
    import time

    folder = settings.landing / "652801"
    folder.mkdir(parents=True)
    done = folder / "652801_2025-01.json"
    done.write_text('{"reporting_unit_code": "652801", "period": "2025-01", "activities": []}', encoding="utf-8")
    old = time.time() - 3600
    os.utime(done, (old, old))
    (folder / "652801_2025-02.json").write_text("{", encoding="utf-8")  # being written right now
    (folder / "652801_2025-03.json.part").write_text("{}", encoding="utf-8")  # upload-then-rename
    os.utime(folder / "652801_2025-03.json.part", (old, old))
    outside = tmp_path / "secret.csv"
    outside.write_text("x", encoding="utf-8")
    (folder / "link.csv").symlink_to(outside)  # a name is never a way to another file
    plan = plan_ingest(settings=settings)
    assert _files(plan) == [str(done)]
    assert sorted(plan["settling"]) == ["652801/652801_2025-02.json", "652801/652801_2025-03.json.part"]
    assert [s["file"] for s in plan["skipped"]] == ["652801/link.csv"]


def test_batches_keep_a_folder_together_and_never_exceed_the_map_limit(tmp_path: Path) -> None:
    from ingestion.files import batch_label, plan_batches

    files = [tmp_path / f"{u:06d}" / f"{u:06d}_2025-0{m}.json" for u in range(100_001, 100_301) for m in (1, 2, 3)]
    batches = plan_batches(files, batch_files=10, max_batches=16)
    assert len(batches) <= 16 and sum(map(len, batches)) == len(files)
    assert [f for b in batches for f in b] == list(map(str, files))  # order kept
    for b in batches:  # a unit's files never split over two batches
        assert all(len({Path(f).parent for f in b} & {Path(f).parent for f in other}) == 0
                   for other in batches if other is not b)  # fmt: skip
    assert batch_label(batches[0]).startswith("100001…")
    assert len(plan_batches(files, batch_files=400, max_batches=1024)) == 3  # 900 files, ~400 each


def test_a_refused_file_is_a_result(settings: Settings, tmp_path: Path) -> None:
    bad = tmp_path / "landing" / "999999" / "999999_2025-01.csv"
    bad.parent.mkdir(parents=True)
    bad.write_text("not,a,submission\n1,2,3\n", encoding="utf-8")
    report = ingest_batch({"label": "bad", "files": [str(bad)]}, "run-1", settings=settings)
    [outcome] = report["outcomes"]
    assert outcome["status"] == "rejected" and outcome["refusal"]
    assert report["counts"]["rejected"] == 1
    lines = report_lines(report)  # the batch task's log: the file, and why, in both languages
    assert any(file_label(bad) in line and "rejected" in line for line in lines)
    assert any(line.strip().startswith("F004_NO_TABLE: 未找到可识别的报表") and " / No recognisable table" in line
               for line in lines), lines  # fmt: skip


# --------------------------------------------------------------------------- slow: real DAG runs


@pytest.mark.slow
def test_runs_are_recorded_and_successful(chain: dict[str, Any], chain_settings: Settings, metadata_db: str) -> None:
    runs: dict[str, DagRunResult] = chain["runs"]
    for run in runs.values():
        assert run.ok, _explain(run)
    for dag_id in DAG_IDS:  # what the UI shows: Airflow's own view of the metadata database
        listed = airflow_json(["dags", "list-runs", dag_id], chain_settings, metadata_db=metadata_db)
        assert listed and all(r["state"] == "success" for r in listed), listed
    listed = airflow_json(["dags", "list-runs", "ingest_submissions"], chain_settings, metadata_db=metadata_db)
    assert {r["run_id"] for r in listed} == {runs["ingest"].run_id, runs["ingest_again"].run_id}


@pytest.mark.slow
def test_one_task_per_batch_labelled_with_its_units_and_refusals(chain: dict[str, Any]) -> None:
    run: DagRunResult = chain["runs"]["ingest"]
    batches = [t for t in run.tasks if t.task_id == "ingest_batch"]
    assert 2 <= len(batches) <= 5, "49 files of 6 units in batches of whole folders of about 20"
    assert all(t.state == "success" for t in batches), "a refused file fails no task"
    labels = [t.label for t in batches]
    assert all(label and " unit" in label and " files)" in label and "✔" in label for label in labels), labels
    refused = [label for label in labels if "refused" in label]
    assert len(refused) == 1 and "✘1 refused" in refused[0], labels  # the demo's 999999 file
    others = {t.task_id: t.state for t in run.tasks if t.task_id != "ingest_batch"}
    assert others == {"find_new_files": "success", "summarise": "success", "publish_raw_submissions": "success"}


@pytest.mark.slow
def test_audit_matches_what_the_generator_wrote(chain: dict[str, Any], chain_settings: Settings) -> None:
    rows = _query(
        chain_settings,
        "select landing_path, status, rows_loaded, rows_quarantined, run_id from audit.submission_files",
    )
    by_path = {r[0]: r[1:] for r in rows}
    assert len(by_path) == len(rows), "each file recorded once"
    run_id = chain["runs"]["ingest"].run_id
    for f in chain["demo"].files:
        status, loaded, quarantined, recorded_run = by_path[str(f.path)]
        assert (status, loaded, quarantined) == (f.status, f.rows_loaded, f.rows_quarantined), f.path
        assert recorded_run == run_id


@pytest.mark.slow
def test_raw_totals_match_the_generator(chain: dict[str, Any], chain_settings: Settings) -> None:
    totals: dict[str, dict[str, float]] = chain["demo"].totals
    activities = _query(
        chain_settings,
        """select s.reporting_unit_code, count(*), sum(participants), sum(party_member_participants),
                  coalesce(sum(problems_resolved), 0), coalesce(sum(suggestions_collected), 0)
           from raw.activities a join audit.submission_files s using (submission_id)
           where s.status = 'loaded' group by 1""",
    )
    income = _query(
        chain_settings,
        """select s.reporting_unit_code, sum(collective_income_increase_yuan), sum(villager_income_increase_yuan),
                  sum(produce_sold_tonnes), sum(produce_sales_yuan), sum(jobs_created), sum(households_benefited)
           from raw.income_effects i join audit.submission_files s using (submission_id)
           where s.status = 'loaded' group by 1""",
    )
    got = {unit: dict(zip(("activities", "participants", "party_member_participants", "problems_resolved",
                            "suggestions_collected"), map(float, vals), strict=True))
           for unit, *vals in activities}  # fmt: skip
    for unit, *vals in income:
        got.setdefault(unit, {}).update(
            zip(("collective_income_increase_yuan", "villager_income_increase_yuan", "produce_sold_tonnes",
                 "produce_sales_yuan", "jobs_created", "households_benefited"), map(float, vals), strict=True)
        )  # fmt: skip
    assert set(got) == set(totals)
    for unit, measures in got.items():
        for measure, value in measures.items():
            assert value == pytest.approx(totals[unit][measure], abs=0.01), (unit, measure)


@pytest.mark.slow
def test_mart_totals_match_the_generator(chain: dict[str, Any], chain_settings: Settings) -> None:
    totals: dict[str, dict[str, float]] = chain["demo"].totals
    checks = {
        "fct_activity_counts": {
            "activities": "sum(activity_count)",
            "participants": "sum(participants)",
            "party_member_participants": "sum(party_member_participants)",
            "problems_resolved": "sum(problems_resolved)",
            "suggestions_collected": "sum(suggestions_collected)",
        },
        "fct_income_effects": {
            m: f"sum({m})"
            for m in (
                "collective_income_increase_yuan",
                "villager_income_increase_yuan",
                "produce_sold_tonnes",
                "produce_sales_yuan",
                "jobs_created",
                "households_benefited",
            )
        },
        "fct_projects": {
            "projects": "count(*)",
            "investment_yuan": "sum(investment_yuan)",
            "land_mu": "sum(land_mu)",
            "project_households_benefited": "sum(households_benefited)",
        },
    }
    for mart, measures in checks.items():
        select = ", ".join(f"coalesce({expr}, 0)" for expr in measures.values())
        rows = _query(chain_settings, f"select reporting_unit_code, {select} from marts.{mart} group by 1")
        assert {r[0] for r in rows} == set(totals), mart
        for unit, *values in rows:
            for measure, value in zip(measures, values, strict=True):
                assert float(value) == pytest.approx(totals[unit][measure], abs=0.01), (mart, unit, measure)


@pytest.mark.slow
def test_nothing_new_lands_nothing_and_emits_no_asset(
    chain: dict[str, Any], chain_settings: Settings, metadata_db: str
) -> None:
    runs: dict[str, DagRunResult] = chain["runs"]
    again = {(t.task_id, t.map_index): t.state for t in runs["ingest_again"].tasks}
    assert again[("find_new_files", -1)] == "success"
    assert again[("summarise", -1)] == "success"
    assert again[("publish_raw_submissions", -1)] == "skipped"
    assert {s for (task_id, _), s in again.items() if task_id == "ingest_batch"} <= {"skipped"}

    with psycopg.connect(libpq_url(metadata_url(chain_settings, metadata_db))) as conn:
        events = conn.execute(
            """select e.source_run_id, e.source_task_id, a.name from asset_event e join asset a on a.id = e.asset_id
               order by e.id"""
        ).fetchall()
    assert events == [
        (runs["ingest"].run_id, "publish_raw_submissions", "raw_submissions"),
        (runs["build"].run_id, "dbt_build", "marts"),
    ]


@pytest.mark.slow
def test_the_nightly_run_sends_one_digest_and_a_refused_file_sends_no_task_alert(
    chain: dict[str, Any], chain_settings: Settings, mailbox: tuple[str, Any]
) -> None:
    """Through the real DAG: the demo's refused file, quarantined rows, late reports and planted
    outlier are in one digest, with the Data Docs link; the refused file's red task mailed nothing."""
    _, box = mailbox
    digests = [m for _, _, m in box.messages if m["X-Pairstats-Kind"] == "digest"]
    assert len(digests) == 1, box.subjects()
    assert [m["X-Pairstats-Kind"] for _, _, m in box.messages] == ["digest"], "no task-failure mail"
    (_, rcpts, _) = box.messages[0]
    assert rcpts == MAINTAINERS.split(",")
    text = digests[0].get_body(preferencelist=("plain",)).get_content()
    for needle in (
        "拒收文件 / refused files — 未知单位 / unknown unit（999999）",
        "999999_2025-01_activities.csv",
        "F005_UNKNOWN_UNIT",
        "隔离行 / rows in quarantine — 库尔勒市（652801）",
        "    2025-03: 现行版本中 5 行被隔离",
        "异常值 / figures far from the pairing's own history — 李沧区（370213）",
        "    2025-06: 1 个数值异常",
        "迟报",  # every demo file came long after its 2025 deadline
        "奉节县（500236）",  # expected from 2025-06, never sent
        "Data Docs: file://",
    ):
        assert needle in text, needle
    docs = chain_settings.data_docs / "index.html"
    assert docs.is_file() and "pairstats_nightly_outliers" in docs.read_text(encoding="utf-8")
    nightly = chain["runs"]["nightly"]
    tasks = {t.task_id: t.state for t in nightly.tasks}
    assert tasks == dict.fromkeys(("dbt_test", "dbt_source_freshness", "quality_checks", "send_digest"), "success")
    sent = _query(chain_settings, "select kind, status, run_id from audit.alerts where channel = 'email'")
    assert sent == [("digest", "sent", f"quality-{nightly.run_id}")]


FAILING_DAG = '''"""A DAG whose task fails, with the project's failure alert (generated by tests/test_airflow.py)."""

import pendulum
from airflow.sdk import dag, task

from ingestion.alerts import on_task_failure


@dag(schedule=None, start_date=pendulum.datetime(2025, 1, 1), catchup=False,
     default_args={"owner": "data-engineering", "retries": 0, "on_failure_callback": on_task_failure})
def alert_on_failure():
    @task
    def breaks() -> None:
        raise RuntimeError("the warehouse went away")

    breaks()


alert_on_failure()
'''


@pytest.mark.slow
def test_a_failed_task_sends_its_alert(
    chain: dict[str, Any], chain_settings: Settings, metadata_db: str, mailbox: tuple[str, Any], tmp_path: Path
) -> None:
    """A real Airflow run of a task that fails calls the project's on_failure_callback, which mails
    the maintainers (and records it)."""
    _, box = mailbox
    before = len(box.messages)
    folder = tmp_path / "dags"
    folder.mkdir()
    (folder / "alert_on_failure.py").write_text(FAILING_DAG, encoding="utf-8")
    run = run_dag("alert_on_failure", settings=chain_settings, metadata_db=metadata_db, dags_folder=folder)
    assert run.state == "failed", _explain(run)
    new = box.messages[before:]
    assert [m["Subject"] for _, _, m in new] == ["[pairstats] 任务失败 / task failed: alert_on_failure.breaks"]
    body = new[0][2].get_body(preferencelist=("plain",)).get_content()
    assert "the warehouse went away" in body and run.run_id in body
    recorded = _query(chain_settings, "select status from audit.alerts where kind = 'task_failure'")
    assert recorded == [("sent",)]


@pytest.mark.slow
def test_a_failing_dbt_test_publishes_nothing_and_alerts_once_naming_it(
    chain: dict[str, Any], chain_settings: Settings, metadata_db: str, mailbox: tuple[str, Any]
) -> None:
    """Write-audit-publish under Airflow: a register update that loses a township a pairing
    points to fails dbt's relationships test in marts_build. The run is red after one try (a
    failing test is the data: no retry), marts keeps the last good build, and the maintainers
    get one mail that names the test."""
    _, box = mailbox
    totals = """select (select sum(participants) from marts.fct_activity_counts),
                       (select count(*) from marts.rpt_region_rollup), (select count(*) from marts.publication)"""
    before = _query(chain_settings, totals)
    township = _query(chain_settings, "select rural_unit_code from marts.dim_pairing order by 1 limit 1")[0][0]
    with psycopg.connect(chain_settings.warehouse_url) as conn:
        saved = conn.execute("select * from ref.regions where code = %s", (township,)).fetchall()
        columns = [d.name for d in conn.execute("select * from ref.regions limit 0").description]
        conn.execute("delete from ref.regions where code = %s", (township,))
    sent = len(box.messages)
    try:
        run = run_dag("build_warehouse", settings=chain_settings, metadata_db=metadata_db)
    finally:
        with psycopg.connect(chain_settings.warehouse_url) as conn:
            placeholders = ", ".join(["%s"] * len(columns))
            conn.execute(f"insert into ref.regions ({', '.join(columns)}) values ({placeholders})", saved[0])
    assert run.state == "failed", _explain(run)
    assert [(t.task_id, t.state) for t in run.tasks] == [("dbt_build", "failed")]
    assert _query(chain_settings, totals) == before  # BI reads the previous build
    new = box.messages[sent:]
    assert [m["Subject"] for _, _, m in new] == ["[pairstats] 任务失败 / task failed: build_warehouse.dbt_build"]
    body = new[0][2].get_body(preferencelist=("plain",)).get_content()
    assert "rural_unit_code" in body and "relationships_" in body and "未发布" in body and "not published" in body
    assert "try 1" in body  # failed at once: no retry of a failing test


@pytest.mark.slow
def test_watchdog_alerts_once_on_a_run_past_its_deadline(
    chain: dict[str, Any], chain_settings: Settings, metadata_db: str, mailbox: tuple[str, Any]
) -> None:
    """A run left 'running' in Airflow's real metadata database (as a crashed scheduler leaves it)
    is past its deadline: one alert, and none the second time."""
    from ingestion.alerts import check_overdue_runs

    _, box = mailbox
    url = libpq_url(metadata_url(chain_settings, metadata_db))
    ingest = chain["runs"]["ingest"]
    with psycopg.connect(url) as conn:  # make the recorded ingest run look stuck for 3 hours
        conn.execute(
            "update dag_run set state = 'running', queued_at = now() - interval '3 hours' where run_id = %s",
            (ingest.run_id,),
        )
    try:
        before = len(box.messages)
        alerted = check_overdue_runs(chain_settings, metadata_url=url)
        assert [(r.dag_id, r.run_id) for r in alerted] == [("ingest_submissions", ingest.run_id)]
        assert box.subjects()[before:] == [f"[pairstats] 运行超时 / run overdue: ingest_submissions {ingest.run_id}"]
        assert check_overdue_runs(chain_settings, metadata_url=url) == []  # once per run
        assert len(box.messages) == before + 1
    finally:
        with psycopg.connect(url) as conn:
            conn.execute("update dag_run set state = 'success' where run_id = %s", (ingest.run_id,))


# --------------------------------------------------------------------------- slow: runs that must be red


def _red_run(
    settings: Settings, metadata_db: str, box: Any, monkeypatch: pytest.MonkeyPatch, conf: dict | None = None
) -> tuple[DagRunResult, list[str]]:
    """One real ingest_submissions run that must fail: its state, and the alert subjects it sent."""
    monkeypatch.setenv("PAIRSTATS_INGEST_RETRIES", "0")  # a retry would fail the same way, a minute later
    before = len(box.messages)
    run = run_dag("ingest_submissions", conf, settings, metadata_db=metadata_db)
    return run, [str(m["Subject"]) for _, _, m in box.messages[before:]]


def _states(run: DagRunResult) -> dict[str, set[str | None]]:
    out: dict[str, set[str | None]] = {}
    for t in run.tasks:
        out.setdefault(t.task_id, set()).add(t.state)
    return out


@pytest.fixture
def failing_settings(chain: dict[str, Any], chain_settings: Settings, tmp_path: Path) -> Settings:
    """The chain's settings with new, settled files in a landing folder of their own."""
    from ingestion.demo import generate_demo

    landing = tmp_path / "landing"
    generate_demo(landing, seed=7)  # other bytes than the chain's: new files
    # a home of its own (its archive may be broken on purpose), the chain's warehouse and metadata
    return dataclasses.replace(chain_settings, home=tmp_path / "home", landing=landing, landing_roots=(landing,))


@pytest.mark.slow
def test_the_warehouse_down_makes_the_run_red_and_alerts(
    failing_settings: Settings, metadata_db: str, mailbox: tuple[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    gone = with_database(failing_settings.warehouse_url, "pairstats_no_such_database")  # TCP or socket URL
    settings = dataclasses.replace(failing_settings, warehouse_url=gone)
    # Airflow's own metadata stays where it is: only the warehouse is unreachable
    monkeypatch.setattr(
        "ingestion.orchestration.metadata_url", lambda s, db="airflow": metadata_url(failing_settings, db)
    )
    run, alerts = _red_run(settings, metadata_db, mailbox[1], monkeypatch)
    assert run.state == "failed", _explain(run)
    states = _states(run)
    assert states["find_new_files"] == {"failed"} and states["summarise"] == {"upstream_failed"}
    assert states["publish_raw_submissions"] == {"upstream_failed"}
    assert alerts == ["[pairstats] 任务失败 / task failed: ingest_submissions.find_new_files"]


@pytest.mark.slow
def test_a_batch_that_cannot_be_archived_makes_the_run_red_and_alerts(
    failing_settings: Settings, metadata_db: str, mailbox: tuple[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    failing_settings.archive.parent.mkdir(parents=True, exist_ok=True)
    failing_settings.archive.write_text("not a folder", encoding="utf-8")  # the disk refuses every copy
    run, alerts = _red_run(failing_settings, metadata_db, mailbox[1], monkeypatch)
    assert run.state == "failed", _explain(run)
    states = _states(run)
    assert states["find_new_files"] == {"success"} and "failed" in states["ingest_batch"]
    assert states["summarise"] == {"upstream_failed"}
    assert alerts and all(
        a.startswith("[pairstats] 任务失败 / task failed: ingest_submissions.ingest_batch") for a in alerts
    )
    landed = _query(failing_settings, "select count(*) from audit.submission_files where run_id = %s", run.run_id)
    assert landed == [(0,)], "nothing is ingested that is not kept"


@pytest.mark.slow
def test_more_batches_than_airflow_can_map_make_the_run_red(
    failing_settings: Settings, metadata_db: str, mailbox: tuple[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW__CORE__MAX_MAP_LENGTH", "2")
    monkeypatch.setenv("PAIRSTATS_MAX_BATCHES", "5")  # a planner told to exceed the limit (never by default)
    settings = dataclasses.replace(failing_settings, batch_files=5)
    run, alerts = _red_run(settings, metadata_db, mailbox[1], monkeypatch)
    assert run.state == "failed", _explain(run)
    states = _states(run)
    assert states["find_new_files"] == {"failed"} and states["summarise"] == {"upstream_failed"}
    assert alerts == ["[pairstats] 任务失败 / task failed: ingest_submissions.find_new_files"]


@pytest.mark.slow
def test_a_landing_folder_outside_the_roots_makes_the_run_red(
    failing_settings: Settings, metadata_db: str, mailbox: tuple[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    run, alerts = _red_run(failing_settings, metadata_db, mailbox[1], monkeypatch, conf={"landing": "/etc"})
    assert run.state == "failed", _explain(run)
    assert _states(run)["find_new_files"] == {"failed"}
    assert "not under the configured landing roots" in Path(run.log_path).read_text(encoding="utf-8")
    assert alerts == ["[pairstats] 任务失败 / task failed: ingest_submissions.find_new_files"]
