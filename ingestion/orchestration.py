"""Airflow around the pipeline: its environment, its command line, and what the DAG tasks do.

Everything the three DAGs in ``dags/`` do lives here, so it can be tested without Airflow;
the DAG files only wire these functions into tasks.

Environment (``airflow_env``). One ``Settings`` object configures Airflow too:

- ``AIRFLOW_HOME`` = ``$PAIRSTATS_HOME/airflow``;
- metadata database: database ``airflow`` on the warehouse's server, created if missing
  (psycopg2 driver; psycopg 3 for Airflow's async engine, asyncpg is not installed);
- DAGs folder ``<checkout>/dags``, no example DAGs, ``LocalExecutor``, default timezone
  ``Asia/Shanghai``;
- ``SimpleAuthManager`` with one user ``admin``, password in ``$AIRFLOW_HOME/passwords.json``;
- ``PAIRSTATS_*`` passed through, so every task sees the same settings, and the checkout
  first on ``PYTHONPATH``, so task processes import this ``ingestion``.

DAGs are not paused when they first appear: started with ``airflow standalone`` (or
``pairstats airflow standalone``), ingestion runs every 15 minutes at once.

Running (``run_airflow``, ``run_dag``). ``run_airflow(["dags", "list"])`` runs the Airflow
CLI in a subprocess with that environment, after ``airflow db migrate`` when the metadata
database is not at the revision this Airflow last migrated it to (one cheap query).
``run_dag("ingest_submissions")`` runs one real DAG run with ``airflow dags test``: all
tasks in one process, one after the other, recorded in the metadata database like any run
(run type ``manual``, triggered by ``test``), so it is in the UI afterwards. The CLI
re-serializes the DAGs folder itself (Airflow 3.3), so no separate ``dags reserialize``
is needed.

What the DAG tasks run lives in ``ingestion/tasks.py`` (the DAG files only wire it); real
DAG runs through ``airflow dags test`` (``run_dag``, ``run_pipeline``) in ``ingestion/dag_runs.py``.
"""

from __future__ import annotations

import importlib.metadata
import json
import logging
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from ingestion.config import CHECKOUT, Settings
from ingestion.warehouse import AIRFLOW_DB, libpq_url, metadata_url

__all__ = ["AIRFLOW_DB", "libpq_url", "metadata_url"]  # and everything below

log = logging.getLogger(__name__)

TIMEZONE = "Asia/Shanghai"
ADMIN_USER = "admin"
DAGS_FOLDER = CHECKOUT / "dags"
DBT_PROJECT = CHECKOUT / "dbt_project"
PASSWORDS_FILE = "passwords.json"
_MIGRATED_STAMP = ".pairstats-migrated.json"


# --------------------------------------------------------------------------- environment


def airflow_home(settings: Settings) -> Path:
    return settings.home / "airflow"


def admin_password(settings: Settings) -> str:
    """The ``admin`` user's password: generated once into ``$AIRFLOW_HOME/passwords.json``.

    SimpleAuthManager reads (and would otherwise generate) that file; writing it first means
    ``make airflow`` can print the login before the API server has started.
    """
    path = airflow_home(settings) / PASSWORDS_FILE
    try:
        passwords = json.loads(path.read_text(encoding="utf-8") or "{}")
    except FileNotFoundError:
        passwords = {}
    if not passwords.get(ADMIN_USER):
        passwords[ADMIN_USER] = secrets.token_urlsafe(12)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(passwords, fh)
    return passwords[ADMIN_USER]


def airflow_env(
    settings: Settings | None = None, *, metadata_db: str = AIRFLOW_DB, dags_folder: Path | None = None
) -> dict[str, str]:
    """The variables that configure Airflow for this project (merge them over ``os.environ``).

    Side effects, all idempotent: creates ``$AIRFLOW_HOME``, the metadata database (and starts
    the embedded server when no warehouse is configured) and the admin's password file.
    ``metadata_db`` exists for tests that must not share ``airflow`` with anyone, ``dags_folder``
    for measurements with DAGs that are not the project's.
    """
    from ingestion.warehouse import ensure_database, server_url

    settings = settings or Settings.from_env()
    home = airflow_home(settings)
    home.mkdir(parents=True, exist_ok=True)
    ensure_database(server_url(settings, "postgres"), metadata_db, private=True)  # no BI login connects to it
    admin_password(settings)

    env = dict(
        PAIRSTATS_HOME=str(settings.home),
        PAIRSTATS_LANDING=str(settings.landing),
        PAIRSTATS_MAX_FILE_MB=str(settings.max_file_bytes // (1024 * 1024)),
        PAIRSTATS_MAX_UNZIPPED_MB=str(settings.max_unzipped_bytes // (1024 * 1024)),
        PAIRSTATS_SETTLE_SECONDS=str(settings.settle_seconds),
        PAIRSTATS_BATCH_FILES=str(settings.batch_files),
    )
    if settings.landing_roots:
        env["PAIRSTATS_LANDING_ROOTS"] = os.pathsep.join(map(str, settings.landing_roots))
    if settings.warehouse_url:  # unset: tasks start (or find) the same embedded server from PAIRSTATS_HOME
        env["PAIRSTATS_WAREHOUSE_URL"] = settings.warehouse_url
    if settings.warehouse_listen:  # tasks that start the embedded server start it the same way
        host, port = settings.warehouse_listen
        env["PAIRSTATS_WAREHOUSE_LISTEN"] = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    env.update(_alert_env(settings))

    sync_url = metadata_url(settings, metadata_db)
    api_port = os.environ.get("AIRFLOW__API__PORT") or "8080"
    python_path = [str(CHECKOUT), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    env.update(
        AIRFLOW_HOME=str(home),
        PYTHONPATH=os.pathsep.join(dict.fromkeys(python_path)),
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=sync_url,
        # Airflow derives postgresql+asyncpg from the sync URL; asyncpg is not installed, psycopg 3 is
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC=urlunsplit(
            urlsplit(sync_url)._replace(scheme="postgresql+psycopg_async")
        ),
        AIRFLOW__CORE__DAGS_FOLDER=str(dags_folder or DAGS_FOLDER),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__EXECUTOR="LocalExecutor",
        AIRFLOW__CORE__DEFAULT_TIMEZONE=TIMEZONE,
        AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION="False",
        AIRFLOW__CORE__AUTH_MANAGER="airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
        AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS=f"{ADMIN_USER}:admin",
        AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE=str(home / PASSWORDS_FILE),
        # tasks report to the API server: follow its port when AIRFLOW__API__PORT moves it
        AIRFLOW__CORE__EXECUTION_API_SERVER_URL=f"http://localhost:{api_port}/execution/",
        AIRFLOW__LOGGING__BASE_LOG_FOLDER=str(home / "logs"),
    )
    return env


def _alert_env(settings: Settings) -> dict[str, str]:
    """The alert settings for task processes, and Airflow's own SMTP connection derived from them."""
    from ingestion.alerts import airflow_smtp_connection

    env = {"PAIRSTATS_ALERT_FROM": settings.alert_from, "AIRFLOW__EMAIL__FROM_EMAIL": settings.alert_from}
    if settings.smtp_url:
        env["PAIRSTATS_SMTP_URL"] = settings.smtp_url
        env["AIRFLOW_CONN_SMTP_DEFAULT"] = airflow_smtp_connection(settings) or ""
    if settings.alert_emails:
        env["PAIRSTATS_ALERT_EMAILS"] = ",".join(settings.alert_emails)
    if settings.alert_webhook:
        env["PAIRSTATS_ALERT_WEBHOOK"] = settings.alert_webhook
    if settings.all_clear:
        env["PAIRSTATS_ALL_CLEAR"] = "true"
    if settings.data_docs_url:
        env["PAIRSTATS_DATA_DOCS_URL"] = settings.data_docs_url
    env["PAIRSTATS_RUN_DEADLINES"] = ",".join(f"{k}={v}" for k, v in settings.run_deadlines.items())
    return env


def subprocess_env(env: Mapping[str, str]) -> dict[str, str]:
    merged = dict(os.environ)
    merged.update(env)
    # `airflow standalone` starts its components as `airflow ...`: this Python's scripts first
    scripts = str(Path(sys.executable).parent)
    merged["PATH"] = os.pathsep.join(dict.fromkeys([scripts, *merged.get("PATH", "").split(os.pathsep)]))
    if "PAIRSTATS_WAREHOUSE_URL" not in env:
        merged.pop("PAIRSTATS_WAREHOUSE_URL", None)
    return merged


def airflow_command(args: Sequence[str]) -> list[str]:
    return [sys.executable, "-m", "airflow", *args]


def _alembic_revision(sqlalchemy_url: str) -> str | None:
    import psycopg

    try:
        with psycopg.connect(libpq_url(sqlalchemy_url), connect_timeout=10) as conn:
            row = conn.execute("select version_num from alembic_version").fetchone()
    except psycopg.Error:
        return None
    return row[0] if row else None


def ensure_migrated(env: Mapping[str, str]) -> bool:
    """Run ``airflow db migrate`` unless this Airflow version already migrated this database.

    The check is one query: the database's alembic revision against the one recorded in
    ``$AIRFLOW_HOME`` after the last successful migrate by this Airflow version. Returns
    whether a migration ran.
    """
    url = env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    stamp_path = Path(env["AIRFLOW_HOME"]) / _MIGRATED_STAMP
    version = importlib.metadata.version("apache-airflow")
    try:
        stamp = json.loads(stamp_path.read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        stamp = {}
    current = _alembic_revision(url)
    if current and stamp.get("airflow") == version and stamp.get("revision") == current and stamp.get("url") == url:
        return False
    t0 = time.perf_counter()
    proc = subprocess.run(
        airflow_command(["db", "migrate"]), env=subprocess_env(env), capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        tail = f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        raise RuntimeError(f"airflow db migrate failed ({proc.returncode}):\n{tail}")
    stamp = {"airflow": version, "revision": _alembic_revision(url), "url": url}
    stamp_path.write_text(json.dumps(stamp), encoding="utf-8")
    log.info("airflow db migrate: %.1f s", time.perf_counter() - t0)
    return True


def prepare_airflow(
    settings: Settings | None = None, *, metadata_db: str = AIRFLOW_DB, dags_folder: Path | None = None
) -> dict[str, str]:
    """``airflow_env`` with the metadata database migrated: ready for any Airflow command."""
    env = airflow_env(settings, metadata_db=metadata_db, dags_folder=dags_folder)
    ensure_migrated(env)
    return env


def run_airflow(
    args: Sequence[str],
    settings: Settings | None = None,
    *,
    metadata_db: str = AIRFLOW_DB,
    capture: bool = False,
) -> int:
    """Run ``airflow ARGS...`` with the project's configuration; returns its exit code.

    With ``capture`` the output goes to ``$PAIRSTATS_HOME/logs/airflow-cli.log`` instead of the
    terminal (use ``airflow_json`` to read a command's JSON output).
    """
    settings = settings or Settings.from_env()
    env = prepare_airflow(settings, metadata_db=metadata_db)
    if not capture:
        return subprocess.run(airflow_command(args), env=subprocess_env(env), check=False).returncode
    settings.logs.mkdir(parents=True, exist_ok=True)
    with (settings.logs / "airflow-cli.log").open("a", encoding="utf-8") as out:
        out.write(f"\n$ airflow {' '.join(args)}\n")
        out.flush()
        return subprocess.run(
            airflow_command(args), env=subprocess_env(env), stdout=out, stderr=subprocess.STDOUT, check=False
        ).returncode


def airflow_json(args: Sequence[str], settings: Settings | None = None, *, metadata_db: str = AIRFLOW_DB) -> Any:
    """The parsed output of an Airflow command run with ``-o json`` (e.g. ``dags list-runs``)."""
    env = prepare_airflow(settings, metadata_db=metadata_db)
    proc = subprocess.run(
        airflow_command([*args, "-o", "json"]), env=subprocess_env(env), capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(f"airflow {' '.join(args)} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return _parse_json_output(proc.stdout)


def _parse_json_output(text: str) -> Any:
    """The JSON document in a CLI's output, after any warnings it printed first."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.lstrip().startswith(("[{", "[]", "{", '"')) or line.strip() in ("[", "null"):
            try:
                return json.loads("\n".join(lines[i:]))
            except ValueError:
                continue
    raise ValueError(f"no JSON in the output: {text[-500:]!r}")


def login_info(settings: Settings | None = None, port: int | None = None) -> str:
    """Where to log in to the UI of ``airflow standalone`` / ``api-server`` (port: ``AIRFLOW__API__PORT`` or 8080)."""
    settings = settings or Settings.from_env()
    port = port or int(os.environ.get("AIRFLOW__API__PORT") or 8080)
    return f"Airflow UI: http://localhost:{port}  user: {ADMIN_USER}  password: {admin_password(settings)}"
