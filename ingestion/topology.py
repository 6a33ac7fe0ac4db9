"""docker-compose.yml's Celery topology, run natively on this machine (``make topology``).

The same processes with the same settings as the compose file — ``airflow api-server``,
``airflow scheduler``, ``airflow dag-processor``, ``airflow triggerer`` and N ``airflow celery
worker`` (``--celery-hostname worker1@%h``, ``worker2@%h`` …), ``AIRFLOW__CORE__EXECUTOR=
CeleryExecutor`` — with a PostgreSQL and a Redis that already run here instead of containers:

- Airflow's metadata database and Celery's result backend (``db+postgresql://``): database
  ``pairstats_topo_airflow`` on ``PAIRSTATS_TOPOLOGY_PG`` (default
  ``postgresql://postgres@127.0.0.1:5432/postgres``, the server, not a database);
- the warehouse: database ``pairstats_topo_wh`` on the same server (``PAIRSTATS_WAREHOUSE_URL``
  when set wins; a test may also use the embedded server of its ``PAIRSTATS_HOME``);
- the broker: ``PAIRSTATS_TOPOLOGY_REDIS`` (default ``redis://127.0.0.1:6379/5``: a database
  index of its own, flushed at start — never another index);
- the api-server on ``PAIRSTATS_TOPOLOGY_PORT`` (default 8090), user ``admin`` with the
  password of ``$PAIRSTATS_HOME/airflow/passwords.json``; the execution API at
  ``http://localhost:<port>/execution/``; JWT secret, API secret key and Fernet key generated
  once into ``$PAIRSTATS_HOME/topology/secrets.json`` (what ``.env`` holds under compose).

Each process runs in a session of its own, its output in ``$PAIRSTATS_HOME/topology/<name>.log``
and its pid in ``$PAIRSTATS_HOME/topology/pids.json`` (``stop`` ends exactly those process
groups). Every worker serves its logs on a port of its own, and records itself in the task
instances' ``hostname`` as ``worker1@<host>`` (``[core] hostname_callable`` =
``worker_hostname``), so two workers on one machine stay distinguishable, as on two machines.

``python -m ingestion.topology start|stop|status``.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ingestion.config import Settings
from ingestion.processes import alive, stop_groups
from ingestion.topology_config import (
    DAG_IDS,
    TopologyConfig,
    topology_dir,
    topology_env,
    warehouse_settings,
)

HOSTNAME_CALLABLE = "ingestion.topology.worker_hostname"


def worker_hostname() -> str:
    """``[core] hostname_callable`` of a topology worker: ``<worker name>@<host>`` (its Celery
    hostname), so the task instances say which of two workers on one machine ran them."""
    name = os.environ.get("PAIRSTATS_WORKER_NAME")
    host = socket.gethostname()
    return f"{name}@{host}" if name else host


@dataclass
class Topology:
    settings: Settings
    config: TopologyConfig
    env: dict[str, str]
    pids: dict[str, int]

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.config.api_port}"

    def worker_names(self) -> list[str]:
        return [f"worker{i + 1}" for i in range(self.config.workers)]

    def log(self, name: str) -> Path:
        return topology_dir(self.settings) / f"{name}.log"

    def token(self) -> str:
        from ingestion.orchestration import ADMIN_USER, admin_password

        body = {"username": ADMIN_USER, "password": admin_password(self.settings)}
        return str(_http("POST", f"{self.api_url}/auth/token", body)["access_token"])

    def api(self, method: str, path: str, body: Any = None, *, token: str | None = None) -> Any:
        """The REST API v2 (``path`` under ``/api/v2``), with a JWT from ``POST /auth/token``."""
        return _http(method, f"{self.api_url}/api/v2{path}", body, token=token or self.token())

    def trigger(self, dag_id: str, conf: Mapping[str, Any] | None = None) -> str:
        run = self.api("POST", f"/dags/{dag_id}/dagRuns", {"logical_date": None, "conf": dict(conf or {})})
        return str(run["dag_run_id"])


def _http(method: str, url: str, body: Any = None, *, token: str | None = None, timeout: float = 30) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            text = response.read().decode()
    except urllib.error.HTTPError as exc:
        raise RuntimeError(f"{method} {url}: {exc.code} {exc.read().decode(errors='replace')[:1000]}") from exc
    return json.loads(text) if text else None


def _commands(config: TopologyConfig) -> dict[str, tuple[list[str], dict[str, str]]]:
    """name -> (airflow arguments, the process's own variables): compose's services."""
    procs: dict[str, tuple[list[str], dict[str, str]]] = {
        "api-server": (["api-server"], {}),
        "scheduler": (["scheduler"], {}),
        "dag-processor": (["dag-processor"], {}),
        "triggerer": (["triggerer"], {}),
    }
    ports = config.ports()
    for i in range(config.workers):
        name = f"worker{i + 1}"
        args = ["celery", "worker", "--celery-hostname", f"{name}@%h", "--concurrency", str(config.concurrency)]
        procs[name] = (
            args,
            {
                "PAIRSTATS_WORKER_NAME": name,
                "AIRFLOW__CORE__HOSTNAME_CALLABLE": HOSTNAME_CALLABLE,
                "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(ports[i + 1]),
            },
        )
    return procs


def flush_broker(redis_url: str) -> None:
    """Empty the broker's database index (only that one)."""
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        client.flushdb()
    finally:
        client.close()


def start(settings: Settings | None = None, config: TopologyConfig | None = None, *, timeout: float = 240) -> Topology:
    """Migrate, then start every process in the background; returns once the api-server, the
    scheduler and every worker answer and the DAGs are parsed. Stops what it started on failure."""
    from ingestion.orchestration import ensure_migrated
    from ingestion.warehouse import connect, init_warehouse

    config = config or TopologyConfig.from_env()
    settings = warehouse_settings(settings or Settings.from_env(), config)
    folder = topology_dir(settings)
    folder.mkdir(parents=True, exist_ok=True)
    if (folder / "pids.json").exists() and running(settings):
        raise RuntimeError(f"a topology runs already under {folder} (python -m ingestion.topology stop)")
    env = topology_env(settings, config)
    ensure_migrated(env)
    with connect(settings.warehouse_url or _embedded_url(settings)) as conn:  # `pairstats warehouse init`
        init_warehouse(conn)
        conn.commit()
    flush_broker(config.redis_url)
    topo = Topology(settings, config, env, {})
    try:
        for name in _commands(config):
            spawn(topo, name)
        wait_ready(topo, timeout=timeout)
    except BaseException:
        stop(settings)
        raise
    return topo


def spawn(topo: Topology, name: str) -> int:
    """Start one process of the topology (again: a worker that died); its pid into ``pids.json``."""
    from ingestion.orchestration import airflow_command, subprocess_env

    args, own = _commands(topo.config)[name]
    folder = topology_dir(topo.settings)
    with topo.log(name).open("ab") as out:
        proc = subprocess.Popen(
            airflow_command(args),
            env=subprocess_env(topo.env | own),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=folder,
            start_new_session=True,  # its own process group: stop/kill reach its children
        )
    topo.pids[name] = proc.pid
    _write_pids(folder, topo.pids)
    return proc.pid


def _embedded_url(settings: Settings) -> str:
    from ingestion.warehouse import warehouse_url

    return warehouse_url(settings)


def _write_pids(folder: Path, pids: Mapping[str, int]) -> None:
    (folder / "pids.json").write_text(json.dumps(dict(pids), indent=1), encoding="utf-8")


def read_pids(settings: Settings) -> dict[str, int]:
    try:
        return json.loads((topology_dir(settings) / "pids.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}


def running(settings: Settings) -> dict[str, bool]:
    return {name: alive(pid) for name, pid in read_pids(settings).items()}


def wait_ready(topo: Topology, *, timeout: float = 240) -> None:
    """The api-server answers ``/api/v2/version``, the scheduler ``/health``, every worker has
    logged ``ready``, and the DAG processor has serialized the project's DAGs."""
    deadline = time.monotonic() + timeout
    pending = {"api-server", "scheduler", "dags", *topo.worker_names()}
    while pending:
        dead = [name for name, alive in running(topo.settings).items() if not alive]
        if dead:
            raise RuntimeError(f"topology process(es) exited: {dead}; " + _tails(topo, dead))
        if time.monotonic() > deadline:
            raise TimeoutError(f"topology not ready after {timeout:.0f} s: waiting for {sorted(pending)}")
        if "api-server" in pending and _answers(f"{topo.api_url}/api/v2/version"):
            pending.discard("api-server")
        if "scheduler" in pending and _answers(f"http://127.0.0.1:{topo.config.health_port}/health"):
            pending.discard("scheduler")
        for name in [n for n in topo.worker_names() if n in pending]:
            if b" ready." in topo.log(name).read_bytes():
                pending.discard(name)
        if "dags" in pending and _serialized(topo.env) >= set(DAG_IDS):
            pending.discard("dags")
        time.sleep(1)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status == 200
    except (OSError, urllib.error.URLError):
        return False


def _serialized(env: Mapping[str, str]) -> set[str]:
    import psycopg

    from ingestion.warehouse import libpq_url

    try:
        with psycopg.connect(libpq_url(env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]), connect_timeout=5) as conn:
            return {r[0] for r in conn.execute("select dag_id from serialized_dag")}
    except psycopg.Error:
        return set()


def _tails(topo: Topology, names: Sequence[str]) -> str:
    parts = []
    for name in names:
        text = topo.log(name).read_text(encoding="utf-8", errors="replace")[-2500:]
        parts.append(f"--- {name}.log ---\n{text}")
    return "\n".join(parts)


def stop(settings: Settings | None = None, *, grace: float = 30) -> list[str]:
    """SIGTERM every process group of the topology, SIGKILL what is left after ``grace``;
    returns the names stopped. Only the pids in ``pids.json``, and their descendants."""
    settings = settings or Settings.from_env()
    pids = read_pids(settings)
    stopped = stop_groups(pids.values(), grace=grace)
    path = topology_dir(settings) / "pids.json"
    if path.exists():
        path.unlink()
    return sorted(name for name, pid in pids.items() if pid in stopped)


def drop(config: TopologyConfig) -> None:
    """Drop the topology's own databases (metadata, warehouse) and flush its broker index."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(config.admin_url, autocommit=True) as conn:
        for name in filter(None, (config.metadata_db, config.warehouse_db)):
            conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))
    flush_broker(config.redis_url)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ingestion.topology", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=("start", "stop", "status", "drop"))
    args = parser.parse_args(argv)
    config = TopologyConfig.from_env()
    settings = warehouse_settings(Settings.from_env(), config)
    folder = topology_dir(settings)
    if args.command == "start":
        t0 = time.perf_counter()
        topo = start(settings, config)
        from ingestion.orchestration import login_info

        print(f"topology ready in {time.perf_counter() - t0:.0f} s under {folder}")
        for name, pid in topo.pids.items():
            print(f"  {name:<14} pid {pid:<8} log {topo.log(name)}")
        print(f"  broker {config.redis_url}; metadata {config.metadata_db}; warehouse {settings.warehouse_url}")
        print(f"  landing {settings.landing}")
        print(login_info(settings, config.api_port))
        print("stop it: make topology-stop")
        return 0
    if args.command == "stop":
        print("stopped:", ", ".join(stop(settings)) or "nothing was running")
        return 0
    if args.command == "drop":
        if any(running(settings).values()):
            print("the topology runs: make topology-stop first", file=sys.stderr)
            return 1
        drop(config)
        print(f"dropped {config.metadata_db}, {config.warehouse_db}; flushed {config.redis_url}")
        return 0
    for name, up in running(settings).items():
        print(f"{name:<14} {'running' if up else 'exited'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
