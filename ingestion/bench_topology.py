"""The Celery topology timed: a national month through N workers (``python -m ingestion.bench_topology``).

A fresh topology (databases, broker index, temporary home, free ports) per worker count; the
month's files are moved into the landing folder, the DAGs unpaused through the REST API, and
the ingest run and the build the Asset triggers are timed from Airflow's own records.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ingestion.config import Settings
from ingestion.processes import free_ports
from ingestion.topology import Topology, drop, start, stop
from ingestion.topology_config import DEFAULT_PG, TopologyConfig, warehouse_settings

__all__ = ["measure"]


def _meta_query(topo: Topology, query: str, *args: Any) -> list[tuple]:
    import psycopg

    from ingestion.warehouse import libpq_url

    with psycopg.connect(libpq_url(topo.env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])) as conn:
        return conn.execute(query, args).fetchall()


def _wait_run(topo: Topology, dag_id: str, where: str, args: Sequence[Any], timeout: float) -> tuple:
    """(run_id, state, seconds) of the first run of ``dag_id`` matching ``where``, once finished."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = _meta_query(
            topo,
            f"""select run_id, state, extract(epoch from end_date - start_date)::float from dag_run
                where dag_id = %s and {where} order by id limit 1""",
            dag_id,
            *args,
        )
        if rows and rows[0][1] in ("success", "failed"):
            return rows[0]
        time.sleep(2)
    raise TimeoutError(f"{dag_id}: no finished run after {timeout:.0f} s")


def measure(
    workers: int,
    *,
    concurrency: int = 1,
    months: Sequence[str] = ("2025-01",),
    counties: int | None = None,
    admin_url: str = DEFAULT_PG,
    redis_url: str = "redis://127.0.0.1:6379/7",
    keep: bool = False,
) -> dict[str, Any]:
    """A national month through a fresh topology of ``workers`` Celery workers (``concurrency``
    slots each): generated into an outbox, moved into the landing folder, the DAGs unpaused
    through the REST API (the latest scheduled interval of ``ingest_submissions`` runs at once
    and takes every file), then the build the Asset triggers. Everything it creates
    (databases, broker index, temporary home) is removed afterwards unless ``keep``."""
    import shutil
    import tempfile
    import uuid

    from ingestion.national import generate_national
    from ingestion.warehouse import connect

    root = Path(tempfile.mkdtemp(prefix="pairstats-topology-measure-"))
    suffix = uuid.uuid4().hex[:8]
    api, health, *logs = free_ports(3 + workers)
    config = TopologyConfig(
        admin_url=admin_url,
        metadata_db=f"pairstats_topo_airflow_m{suffix}",
        warehouse_db=f"pairstats_topo_wh_m{suffix}",
        redis_url=redis_url,
        api_port=api,
        health_port=health,
        log_ports=tuple(logs),
        workers=workers,
        concurrency=concurrency,
        extra_env={"AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True", "PAIRSTATS_SETTLE_SECONDS": "0"},
    )
    settings = warehouse_settings(Settings.from_env({"PAIRSTATS_HOME": str(root / "home")}), config)
    result: dict[str, Any] = {"workers": workers, "concurrency": concurrency, "months": list(months)}
    try:
        t0 = time.perf_counter()
        topo = start(settings, config)
        result["start_s"] = round(time.perf_counter() - t0, 1)
        t0 = time.perf_counter()
        files = generate_national(root / "outbox", list(months), limit=counties)
        result["generate_s"] = round(time.perf_counter() - t0, 1)
        settings.landing.mkdir(parents=True, exist_ok=True)
        for folder in sorted((root / "outbox").iterdir()):
            os.rename(folder, settings.landing / folder.name)
        for dag_id in ("build_warehouse", "ingest_submissions"):
            topo.api("PATCH", f"/dags/{dag_id}", {"is_paused": False})
        since = _meta_query(topo, "select now()")[0][0]
        # unpaused, the DAG's latest scheduled interval runs at once and takes every file
        deadline = time.monotonic() + 7200
        with connect(settings.warehouse_url) as conn:
            while True:
                runs = [r[0] for r in conn.execute("select distinct run_id from audit.submission_files")]
                conn.commit()
                if runs or time.monotonic() > deadline:
                    break
                time.sleep(2)
        if len(runs) != 1:
            raise RuntimeError(f"expected one run to take the files, got {runs}")
        run_id = runs[0]
        _, state, seconds = _wait_run(topo, "ingest_submissions", "run_id = %s", (run_id,), 7200)
        with connect(settings.warehouse_url) as conn:
            n, rows = conn.execute(
                "select count(*), coalesce(sum(rows_loaded), 0) from audit.submission_files where run_id = %s",
                (run_id,),
            ).fetchone()
        batches = _meta_query(
            topo,
            """select count(*), count(distinct hostname) from task_instance
               where run_id = %s and task_id = 'ingest_batch'""",
            run_id,
        )[0]
        result.update(
            run_id=run_id, ingest_state=state, ingest_s=round(seconds, 1), files_generated=len(files), files=n,
            rows=int(rows),
            batches=batches[0], hosts=batches[1], files_per_s=round(n / seconds, 1),
            rows_per_s=round(int(rows) / seconds),
        )  # fmt: skip
        _, build_state, build_s = _wait_run(
            topo, "build_warehouse", "run_type = 'asset_triggered' and queued_at >= %s", (since,), 3600
        )
        result.update(build_state=build_state, build_s=round(build_s, 1))
    finally:
        stop(settings, grace=20)
        if not keep:
            drop(config)
            shutil.rmtree(root, ignore_errors=True)
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ingestion.bench_topology", description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="topologies to time")
    parser.add_argument("--concurrency", type=int, default=1, help="slots per worker")
    parser.add_argument("--months", nargs="+", default=["2025-01"], help="the national months")
    parser.add_argument("--counties", type=int, default=None, help="only the first N counties")
    args = parser.parse_args(argv)
    for n in args.workers:
        got = measure(n, concurrency=args.concurrency, months=args.months, counties=args.counties)
        print(json.dumps(got, default=str), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
