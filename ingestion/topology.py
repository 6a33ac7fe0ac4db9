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
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from ingestion.config import Settings

DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS = "redis://127.0.0.1:6379/5"
METADATA_DB = "pairstats_topo_airflow"
WAREHOUSE_DB = "pairstats_topo_wh"
HOSTNAME_CALLABLE = "ingestion.topology.worker_hostname"
DAG_IDS = ("ingest_submissions", "build_warehouse", "nightly_data_quality", "pipeline_watchdog")


def worker_hostname() -> str:
    """``[core] hostname_callable`` of a topology worker: ``<worker name>@<host>`` (its Celery
    hostname), so the task instances say which of two workers on one machine ran them."""
    name = os.environ.get("PAIRSTATS_WORKER_NAME")
    host = socket.gethostname()
    return f"{name}@{host}" if name else host


@dataclass
class TopologyConfig:
    admin_url: str = DEFAULT_PG  # the PostgreSQL server of the metadata database (maintenance db URL)
    metadata_db: str = METADATA_DB
    warehouse_db: str | None = WAREHOUSE_DB  # on admin_url's server; None: the settings' warehouse
    redis_url: str = DEFAULT_REDIS
    api_port: int = 8090
    workers: int = 2
    concurrency: int = 2
    log_ports: tuple[int, ...] = ()  # trigger log server, then one per worker; empty: 8795, 8796 …
    health_port: int = 8975  # the scheduler's /health
    api_workers: int = 1  # uvicorn processes of the api-server (compose: Airflow's default, 4)
    extra_env: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> TopologyConfig:
        env = os.environ if env is None else env
        return cls(
            admin_url=env.get("PAIRSTATS_TOPOLOGY_PG") or DEFAULT_PG,
            redis_url=env.get("PAIRSTATS_TOPOLOGY_REDIS") or DEFAULT_REDIS,
            api_port=int(env.get("PAIRSTATS_TOPOLOGY_PORT") or 8090),
            workers=int(env.get("PAIRSTATS_TOPOLOGY_WORKERS") or 2),
            concurrency=int(env.get("PAIRSTATS_TOPOLOGY_CONCURRENCY") or 2),
        )

    def ports(self) -> tuple[int, ...]:
        return self.log_ports or tuple(8795 + i for i in range(self.workers + 1))


def _with_db(url: str, database: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{database}"))


def topology_dir(settings: Settings) -> Path:
    return settings.home / "topology"


def _secrets(folder: Path) -> dict[str, str]:
    """Fernet key, JWT secret and API secret key: generated once, shared by every process."""
    import secrets

    path = folder / "secrets.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        pass
    from cryptography.fernet import Fernet

    values = {
        "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
        "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32),
    }
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(values, fh)
    return values


def warehouse_settings(settings: Settings, config: TopologyConfig) -> Settings:
    """The settings the topology's processes get: its own warehouse database unless one is configured."""
    from dataclasses import replace

    if settings.warehouse_url or not config.warehouse_db:
        return settings
    return replace(settings, warehouse_url=_with_db(config.admin_url, config.warehouse_db))


def topology_env(settings: Settings, config: TopologyConfig) -> dict[str, str]:
    """The environment every process of the topology shares (compose's ``x-airflow-common``)."""
    from ingestion.orchestration import airflow_env
    from ingestion.warehouse import ensure_database

    folder = topology_dir(settings)
    ensure_database(config.admin_url, config.metadata_db, private=True)
    if settings.warehouse_url and config.warehouse_db and settings.warehouse_url.endswith("/" + config.warehouse_db):
        ensure_database(config.admin_url, config.warehouse_db)
    env = airflow_env(settings, metadata_db=config.metadata_db)
    meta = urlsplit(_with_db(config.admin_url, config.metadata_db))
    sync = urlunsplit(meta._replace(scheme="postgresql+psycopg2"))
    env.update(
        AIRFLOW_HOME=str(folder / "airflow"),
        AIRFLOW__LOGGING__BASE_LOG_FOLDER=str(folder / "airflow" / "logs"),
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=sync,
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC=urlunsplit(meta._replace(scheme="postgresql+psycopg_async")),
        AIRFLOW__CORE__EXECUTOR="CeleryExecutor",
        AIRFLOW__CELERY__BROKER_URL=config.redis_url,
        AIRFLOW__CELERY__RESULT_BACKEND=urlunsplit(meta._replace(scheme="db+postgresql")),
        AIRFLOW__CELERY__WORKER_CONCURRENCY=str(config.concurrency),
        AIRFLOW__API__HOST="127.0.0.1",
        AIRFLOW__API__PORT=str(config.api_port),
        AIRFLOW__API__WORKERS=str(config.api_workers),
        AIRFLOW__CORE__EXECUTION_API_SERVER_URL=f"http://localhost:{config.api_port}/execution/",
        AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK="true",
        AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_HOST="127.0.0.1",
        AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT=str(config.health_port),
        AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT=str(config.ports()[0]),
        GX_ANALYTICS_ENABLED="false",
    )
    env.update(_secrets(folder))
    env.update(config.extra_env)
    return env


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
    from ingestion.orchestration import _airflow_command, _subprocess_env

    args, own = _commands(topo.config)[name]
    folder = topology_dir(topo.settings)
    with topo.log(name).open("ab") as out:
        proc = subprocess.Popen(
            _airflow_command(args),
            env=_subprocess_env(topo.env | own),
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


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (our child, not reaped yet) is not alive
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def running(settings: Settings) -> dict[str, bool]:
    return {name: _alive(pid) for name, pid in read_pids(settings).items()}


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


def _descendants(pid: int) -> list[int]:
    import psutil

    try:
        return [p.pid for p in psutil.Process(pid).children(recursive=True)]
    except psutil.Error:
        return []


def kill(pid: int, sig: int = signal.SIGKILL) -> None:
    """Signal ``pid``'s process group and every descendant (a task process may have left it)."""
    targets = [pid, *_descendants(pid)]
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass
    for p in targets:
        try:
            os.kill(p, sig)
        except (ProcessLookupError, PermissionError):
            pass


def stop(settings: Settings | None = None, *, grace: float = 30) -> list[str]:
    """SIGTERM every process group of the topology, SIGKILL what is left after ``grace``;
    returns the names stopped. Only the pids in ``pids.json``, and their descendants."""
    settings = settings or Settings.from_env()
    pids = read_pids(settings)
    family = {name: [pid, *_descendants(pid)] for name, pid in pids.items() if _alive(pid)}
    for pid in pids.values():
        if _alive(pid):
            kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(_alive(p) for group in family.values() for p in group):
        _reap()
        time.sleep(0.5)
    for group in family.values():
        if any(_alive(p) for p in group):
            for p in group:
                kill(p)
    _reap()
    path = topology_dir(settings) / "pids.json"
    if path.exists():
        path.unlink()
    return sorted(family)


def _reap() -> None:
    """Collect our exited children (the processes ``start`` spawned in this interpreter)."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def drop(config: TopologyConfig) -> None:
    """Drop the topology's own databases (metadata, warehouse) and flush its broker index."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(config.admin_url, autocommit=True) as conn:
        for name in filter(None, (config.metadata_db, config.warehouse_db)):
            conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))
    flush_broker(config.redis_url)


def free_ports(n: int) -> list[int]:
    """``n`` distinct TCP ports free on 127.0.0.1 now (bound together, then released)."""
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


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
    parser = argparse.ArgumentParser(prog="python -m ingestion.topology", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=("start", "stop", "status", "drop", "measure"))
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="measure: topologies to time")
    parser.add_argument("--concurrency", type=int, default=1, help="measure: slots per worker")
    parser.add_argument("--months", nargs="+", default=["2025-01"], help="measure: the national months")
    parser.add_argument("--counties", type=int, default=None, help="measure: only the first N counties")
    args = parser.parse_args(argv)
    if args.command == "measure":
        for n in args.workers:
            got = measure(n, concurrency=args.concurrency, months=args.months, counties=args.counties)
            print(json.dumps(got, default=str), flush=True)
        return 0
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
    for name, alive in running(settings).items():
        print(f"{name:<14} {'running' if alive else 'exited'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
