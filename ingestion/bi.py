"""BI logins: login roles in the group ``bi_reader``, which reads the schema ``marts`` only.

``bi_reader`` is the NOLOGIN group that dbt grants SELECT on every mart to (``grants`` config,
``on-run-end``; macros ``ensure_bi_reader`` / ``grant_bi_reader_on_marts``). A BI login is a
LOGIN role that is a member of it and nothing else, so it inherits exactly those grants —
through every rebuild, since dbt grants to the group, never to a login.

The password is generated here (``secrets``) and shown once; the server receives only its
SCRAM-SHA-256 verifier, computed client-side by libpq (``PQencryptPasswordConn``), so the
password itself never reaches the server, its logs or ``pg_stat_statements``.

Besides the group's grants, :func:`secure_grants` takes back what PostgreSQL grants PUBLIC by
default and a login would otherwise have: CONNECT/TEMPORARY on every other database
(Airflow's metadata database, ``postgres``, ``template1`` — on the embedded server; on a
configured server Airflow's only), CREATE/USAGE on the schema ``public`` of the warehouse,
and anything granted on the other schemas' tables to PUBLIC or ``bi_reader``.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
import socket
from dataclasses import dataclass
from urllib.parse import quote

import psycopg
from psycopg import sql

from ingestion.config import Settings
from ingestion.warehouse import (
    AIRFLOW_DB,
    WAREHOUSE_DB,
    database_of,
    embedded_socket,
    libpq_params,
    warehouse_url,
)

BI_GROUP = "bi_reader"
MARTS = "marts"
COMMENT_PREFIX = "pairstats BI login"
_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
_SYSTEM_SCHEMAS = ("pg_catalog", "information_schema", "pg_toast")


class BIError(Exception):
    """A refusal, with its message in Chinese and English."""


@dataclass(frozen=True)
class NewLogin:
    name: str
    password: str
    url: str
    tcp: bool  # False: the embedded warehouse listens on its unix socket only


@dataclass(frozen=True)
class Login:
    name: str
    created: str | None
    valid_until: dt.datetime | None
    can_login: bool


# --------------------------------------------------------------------------- grants


_ENSURE_GROUP = sql.SQL("""
do $bi_reader$
begin
    if not exists (select from pg_catalog.pg_roles where rolname = {group_literal}) then
        begin
            create role {group} nologin;
        exception when duplicate_object or unique_violation then
            null;  -- created concurrently (roles are cluster-wide)
        end;
    end if;
end
$bi_reader$
""")


def ensure_group(conn: psycopg.Connection) -> None:
    """``bi_reader`` NOLOGIN, USAGE on marts and SELECT on its tables — what dbt's
    ``ensure_bi_reader`` / ``grant_bi_reader_on_marts`` do, for a login made before any build."""
    group = sql.Identifier(BI_GROUP)
    conn.execute(_ENSURE_GROUP.format(group_literal=sql.Literal(BI_GROUP), group=group))
    marts = sql.Identifier(MARTS)
    conn.execute(sql.SQL("create schema if not exists {}").format(marts))
    conn.execute(sql.SQL("grant usage on schema {} to {}").format(marts, group))
    conn.execute(sql.SQL("grant select on all tables in schema {} to {}").format(marts, group))
    conn.execute(sql.SQL("alter default privileges in schema {} grant select on tables to {}").format(marts, group))


def secure_grants(conn: psycopg.Connection, settings: Settings) -> list[str]:
    """Deny a BI login everything outside ``marts`` (see the module doc). Returns the other
    databases it can no longer connect to."""
    group = sql.Identifier(BI_GROUP)
    database = conn.info.dbname
    db = sql.Identifier(database)
    conn.execute(sql.SQL("revoke all on database {} from public").format(db))
    conn.execute(sql.SQL("grant connect, temporary on database {} to {}").format(db, group))
    schemas = [
        r[0]
        for r in conn.execute(
            "select nspname from pg_namespace where nspname <> all(%s) and nspname not like 'pg\\_%%' "
            "and nspname <> %s order by 1",
            (list(_SYSTEM_SCHEMAS), MARTS),
        )
    ]
    for schema in schemas:  # public too: PUBLIC's USAGE (and CREATE before PostgreSQL 15) on it
        s = sql.Identifier(schema)
        for who in (sql.SQL("public"), group):
            conn.execute(sql.SQL("revoke all on all tables in schema {} from {}").format(s, who))
            conn.execute(sql.SQL("revoke all on all sequences in schema {} from {}").format(s, who))
            conn.execute(sql.SQL("revoke all on schema {} from {}").format(s, who))
    # Other databases of the cluster: all of them when the cluster is ours (embedded), else Airflow's.
    others = conn.execute(
        "select datname from pg_database where datallowconn and datname <> %s and (%s or datname = %s) order by 1",
        (database, settings.warehouse_url is None, AIRFLOW_DB),
    ).fetchall()
    closed = []
    for (name,) in others:
        other = sql.Identifier(name)
        conn.execute(sql.SQL("revoke connect, temporary on database {} from public").format(other))
        conn.execute(sql.SQL("revoke all on database {} from {}").format(other, group))
        closed.append(name)
    return closed


# --------------------------------------------------------------------------- logins


def _validate_name(name: str) -> None:
    if not _NAME.fullmatch(name):
        raise BIError(
            f"登录名 {name!r} 无效：须为小写标识符（小写字母、数字、下划线，以字母或下划线开头，至多 63 个字符）"
            f" / not a valid login name: {name!r} (a lowercase identifier: a-z, 0-9, _, starting with a letter"
            " or _, at most 63 characters)"
        )
    if name.startswith("pg_") or name in (BI_GROUP, "public", "postgres"):
        raise BIError(f"{name!r} 是保留名称 / {name!r} is a reserved name")


def _role(conn: psycopg.Connection, name: str) -> tuple[bool, bool] | None:
    """(is a member of bi_reader, is superuser) of an existing role, or None."""
    row = conn.execute(
        """select exists (select from pg_auth_members m join pg_roles g on g.oid = m.roleid
                          where m.member = r.oid and g.rolname = %s),
                  r.rolsuper
           from pg_roles r
           where r.rolname = %s""",
        (BI_GROUP, name),
    ).fetchone()
    return None if row is None else (bool(row[0]), bool(row[1]))


def _tcp_endpoint(settings: Settings, url: str) -> tuple[str, str, bool]:
    """(host, port, reachable over TCP) that a BI tool connects to."""
    if settings.warehouse_url:
        params = libpq_params(url)
        return params["host"], params["port"], not params["host"].startswith("/")
    if settings.warehouse_listen:
        host, port = settings.warehouse_listen
        if host in ("*", "0.0.0.0", "::"):
            host = socket.getfqdn()
        return host, str(port), True
    socket_dir, port = embedded_socket(settings)
    return socket_dir, str(port), False


def connection_url(settings: Settings, name: str, password: str, url: str | None = None) -> tuple[str, bool]:
    """``postgresql://NAME:PASSWORD@HOST:PORT/DATABASE`` for a BI tool, and whether it is TCP."""
    url = url or warehouse_url(settings)
    database = database_of(url) if settings.warehouse_url else WAREHOUSE_DB
    host, port, tcp = _tcp_endpoint(settings, url)
    auth = f"{quote(name, safe='')}:{quote(password, safe='')}"
    if not tcp:  # a socket directory: libpq takes it as ?host=
        return f"postgresql://{auth}@/{quote(database)}?host={quote(host)}&port={port}", False
    netloc_host = f"[{host}]" if ":" in host else host
    return f"postgresql://{auth}@{netloc_host}:{port}/{quote(database)}", True


def add_login(name: str, settings: Settings | None = None, *, valid_until: dt.date | None = None) -> NewLogin:
    """Create login ``name`` in ``bi_reader`` with a generated password (SCRAM-SHA-256)."""
    settings = settings or Settings.from_env()
    _validate_name(name)
    url = warehouse_url(settings)
    password = secrets.token_urlsafe(24)  # 32 characters, URL-safe
    with psycopg.connect(url) as conn:
        existing = _role(conn, name)
        if existing is not None:
            if existing[0]:
                raise BIError(
                    f"BI 登录 {name} 已存在（先 `pairstats bi remove {name}`） / BI login {name} exists already"
                    f" (`pairstats bi remove {name}` first)"
                )
            raise BIError(
                f"角色 {name} 已存在且不是 BI 登录，不予改动 / role {name} exists and is not a BI login: left alone"
            )
        ensure_group(conn)
        verifier = conn.pgconn.encrypt_password(password.encode(), name.encode(), b"scram-sha-256").decode()
        role = sql.Identifier(name)
        until = sql.SQL(" valid until {}").format(sql.Literal(valid_until.isoformat())) if valid_until else sql.SQL("")
        conn.execute(
            sql.SQL(
                "create role {} with login nosuperuser nocreatedb nocreaterole noreplication nobypassrls inherit"
                " password {}{} in role {}"
            ).format(role, sql.Literal(verifier), until, sql.Identifier(BI_GROUP))
        )
        created = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()
        conn.execute(
            sql.SQL("comment on role {} is {}").format(
                role, sql.Literal(f"{COMMENT_PREFIX} (pairstats bi add), created {created}")
            )
        )
        conn.execute(sql.SQL("alter role {} set default_transaction_read_only = on").format(role))
        secure_grants(conn, settings)
        conn.commit()
    bi_url, tcp = connection_url(settings, name, password, url)
    return NewLogin(name=name, password=password, url=bi_url, tcp=tcp)


def list_logins(settings: Settings | None = None) -> list[Login]:
    """The members of ``bi_reader``."""
    settings = settings or Settings.from_env()
    with psycopg.connect(warehouse_url(settings)) as conn:
        rows = conn.execute(
            """select r.rolname, shobj_description(r.oid, 'pg_authid'), r.rolvaliduntil, r.rolcanlogin
               from pg_auth_members m
               join pg_roles g on g.oid = m.roleid and g.rolname = %s
               join pg_roles r on r.oid = m.member
               order by 1""",
            (BI_GROUP,),
        ).fetchall()
    out = []
    for name, comment, valid_until, can_login in rows:
        created = re.search(r"created (\S+)", comment or "")
        out.append(Login(name, created.group(1) if created else None, valid_until, bool(can_login)))
    return out


def remove_login(name: str, settings: Settings | None = None) -> None:
    """Drop login ``name`` (a member of bi_reader, nothing else), ending its sessions."""
    settings = settings or Settings.from_env()
    with psycopg.connect(warehouse_url(settings)) as conn:
        existing = _role(conn, name)
        if existing is None:
            raise BIError(f"没有名为 {name} 的角色 / no role named {name}")
        if not existing[0] or existing[1] or name in (BI_GROUP, "postgres"):
            raise BIError(
                f"{name} 不是 BI 登录（不是 {BI_GROUP} 的成员），不予删除 / {name} is not a BI login"
                f" (not a member of {BI_GROUP}): not removed"
            )
        role = sql.Identifier(name)
        conn.execute(sql.SQL("alter role {} nologin").format(role))
        conn.commit()  # no new session from here on; then end the open ones
        conn.execute("select pg_terminate_backend(pid) from pg_stat_activity where usename = %s", (name,))
        conn.execute(sql.SQL("drop owned by {}").format(role))  # its privileges in this database, if any
        conn.execute(sql.SQL("drop role {}").format(role))
        conn.commit()
