"""Write-audit-publish for the marts: BI reads only what passed every test.

``ingestion.dbt.build`` runs ``dbt build`` with the var ``marts_schema=marts_build``: every
mart is written into the schema ``marts_build`` and tested there (dbt's tests run after the
model they test; a failing one skips what depends on it). Only when the whole build passed
does :func:`publish` move the tables it built into ``marts``, in one transaction:

* each table trades places with its published twin (``marts.t`` → ``marts_swap`` →
  ``marts_build``, ``marts_build.t`` → ``marts``): ``ALTER TABLE … SET SCHEMA`` moves the
  table with its indexes, constraints (contracts), comments (persist_docs) and grants, so a
  BI login reads the new table the moment the transaction commits — never half of it;
* the lineage an incremental table keeps (``<schema>_lineage.<table>__lineage``,
  macros/incremental_refresh.sql) moves with it: a lineage always describes its own table;
* one row is added to ``marts.publication``: when, from which submissions, which tables.

The previous published tables become ``marts_build``'s; right after the publication,
``ingestion.build_copy`` applies to each incremental one what the build changed (rows copied
from the published table by the keys the build refreshed), so the next build starts one
build behind nothing and computes only its own new data — at the price of keeping two copies
of the marts. A build that fails publishes nothing: ``marts``
keeps the last good build and :class:`BuildResult` names what failed.

Queries running when the transaction commits finish on the tables they started with
(PostgreSQL resolves names once); the moves wait for them (``lock_timeout``), and new
queries wait for the move, which takes milliseconds.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

log = logging.getLogger(__name__)

LIVE = "marts"  # what BI reads
BUILD = "marts_build"  # where dbt writes and tests
SWAP = "marts_swap"  # empty between publications: the third place of each exchange
BI_GROUP = "bi_reader"
LOCK_TIMEOUT = "60s"
_BUILD_LOCK = "pairstats build"  # one build (and publication) of a warehouse at a time

_PUBLICATION_DDL = """
create table if not exists marts.publication (
    publication_id bigint generated always as identity primary key,
    published_at timestamptz not null default now(),
    build_started_at timestamptz not null,
    full_refresh boolean not null,
    tables text[] not null,
    loaded_files bigint not null,
    last_submission_id bigint,
    last_received_at timestamptz,
    dbt_invocation_id text,
    publish_ms numeric(10, 1)
);
comment on table marts.publication is
    '数据集市发布记录：每次通过全部测试的构建发布一行（最新一行即当前数据） / '
    'One row per publication of the marts (the newest row describes what BI reads now): '
    'only builds that passed every test are published.';
comment on column marts.publication.publication_id is
    '发布序号（越大越新）/ publication number (the highest is the newest)';
comment on column marts.publication.published_at is '发布时间 / when the tables were published';
comment on column marts.publication.build_started_at is '构建开始时间 / when the build started';
comment on column marts.publication.full_refresh is '是否全量重建 / whether it was a full refresh';
comment on column marts.publication.tables is '本次发布的表 / the tables published';
comment on column marts.publication.loaded_files is
    '构建开始时已入库的文件数 / files loaded into the warehouse when the build started';
comment on column marts.publication.last_submission_id is
    '已包含的最新报送编号（含）/ the newest submission id the build includes (every loaded file up to it)';
comment on column marts.publication.last_received_at is
    '已包含的最新报送接收时间 / when the newest included file was received';
comment on column marts.publication.dbt_invocation_id is 'dbt 调用编号 / dbt invocation id (dbt logs)';
comment on column marts.publication.publish_ms is '发布耗时（毫秒）/ how long the publication took (ms)';
"""


def lineage_schema(schema: str) -> str:
    """Where the incremental tables of ``schema`` keep their lineage (macro lineage_schema)."""
    return f"{schema}_lineage"


@dataclass
class BuildResult:
    """What one ``dbt build`` with write-audit-publish did. True when it passed and published."""

    success: bool
    failures: list[str] = field(default_factory=list)  # "test <name>: <message>", models that errored
    published: list[str] = field(default_factory=list)
    publish_ms: float | None = None
    build_seconds: float = 0.0
    skipped: int = 0
    # after the publication, marts_build's incremental tables brought up to date (ingestion.build_copy)
    copy_sync_seconds: float = 0.0
    copies_keyed: list[str] = field(default_factory=list)  # by the keys the build refreshed
    copies_whole: list[str] = field(default_factory=list)  # replaced by a whole copy

    def __bool__(self) -> bool:
        return self.success

    def describe(self) -> str:
        """One paragraph, Chinese and English, for the CLI, the task log and the alert."""
        if self.success:
            return (
                f"构建通过全部测试，已发布 {len(self.published)} 张表到 marts（{self.publish_ms:.0f} 毫秒）。\n"
                f"The build passed every test: {len(self.published)} tables published to marts "
                f"in {self.publish_ms:.0f} ms."
            ) + (
                f"\n构建副本（marts_build）已同步：{self.copy_sync_seconds:.1f} 秒。"
                f"\nThe build copies (marts_build) brought up to date in {self.copy_sync_seconds:.1f} s"
                f" ({len(self.copies_keyed)} by the refreshed keys, {len(self.copies_whole)} copied whole)."
                if self.copies_keyed or self.copies_whole
                else ""
            )
        listed = "\n".join(f"  - {f}" for f in self.failures) or "  - (dbt reported a failure: see its output)"
        return (
            "构建未通过，未发布：marts 仍是上一次通过测试的构建，BI 看到的数据不变。失败项：\n"
            "The build failed and was not published: marts still holds the last build that passed, "
            f"so BI sees the same data. Failed ({len(self.failures)}; {self.skipped} nodes skipped):\n{listed}"
        )


def outcome(run: Any) -> tuple[list[str], list[str], int]:
    """From a ``dbtRunnerResult``: (what failed, the tables built in ``marts_build``, skipped)."""
    failures: list[str] = []
    built: list[str] = []
    skipped = 0
    if run.exception is not None:
        failures.append(f"dbt: {run.exception}")
    for result in getattr(run.result, "results", None) or ():
        node = result.node
        status = str(getattr(result.status, "value", result.status))
        kind = str(getattr(node.resource_type, "value", node.resource_type))
        if status in ("error", "fail", "runtime error"):
            message = " ".join(str(result.message or "").split())[:300]
            failures.append(f"{kind} {node.name}: {message}")
        elif status == "skipped":
            skipped += 1
        elif kind == "model" and node.schema == BUILD and status == "success":
            if node.config.materialized in ("table", "incremental"):
                built.append(node.alias or node.name)
    return failures, sorted(set(built)), skipped


@contextmanager
def build_lock(url: str) -> Iterator[None]:
    """One build of a warehouse at a time (a CLI build beside the DAG's waits, and says so)."""
    conn = psycopg.connect(url, autocommit=True)
    try:
        if not conn.execute("select pg_try_advisory_lock(hashtext(%s))", (_BUILD_LOCK,)).fetchone()[0]:
            log.warning("another build of this warehouse is running: waiting for it to finish")
            conn.execute("select pg_advisory_lock(hashtext(%s))", (_BUILD_LOCK,))
        yield
    finally:
        conn.close()  # ends the session: releases the lock


def inputs(conn: psycopg.Connection) -> dict[str, Any]:
    """What a build starts from: the loaded files so far (every one up to the newest id)."""
    row = conn.execute(
        "select count(*), max(submission_id), max(received_at) from audit.submission_files where status = 'loaded'"
    ).fetchone()
    return {"loaded_files": row[0], "last_submission_id": row[1], "last_received_at": row[2]}


def relation_exists(conn: psycopg.Connection, schema: str, table: str) -> bool:
    return conn.execute("select to_regclass(%s) is not null", (f'"{schema}"."{table}"',)).fetchone()[0]


def _move(conn: psycopg.Connection, schema: str, table: str, to: str) -> None:
    conn.execute(
        sql.SQL("alter table {}.{} set schema {}").format(
            sql.Identifier(schema), sql.Identifier(table), sql.Identifier(to)
        )
    )


def _exchange(conn: psycopg.Connection, table: str, live: str, build: str, *, lineage: bool = False) -> None:
    """``build.table`` becomes ``live.table`` and the published one becomes ``build.table``.

    A table the build does not hold is left published; a lineage always follows its table,
    whichever side has one."""
    in_build = relation_exists(conn, build, table)
    if not in_build and not lineage:
        return
    in_live = relation_exists(conn, live, table)
    if in_live:
        _move(conn, live, table, SWAP)
    if in_build:
        _move(conn, build, table, live)
    if in_live:
        _move(conn, SWAP, table, build)


def publish(
    conn: psycopg.Connection,
    tables: Sequence[str],
    *,
    started_at: dt.datetime,
    full_refresh: bool,
    inputs_at_start: dict[str, Any],
    invocation_id: str | None = None,
) -> float:
    """Move ``tables`` from ``marts_build`` into ``marts`` (with their lineage) and record the
    publication, in one transaction. Returns how long it took, in ms."""
    began = time.perf_counter()
    with conn.transaction():
        conn.execute(f"set local lock_timeout = '{LOCK_TIMEOUT}'")
        for schema in (LIVE, SWAP, lineage_schema(LIVE), lineage_schema(BUILD)):
            conn.execute(sql.SQL("create schema if not exists {}").format(sql.Identifier(schema)))
        conn.execute(sql.SQL("revoke all on schema {} from public").format(sql.Identifier(SWAP)))
        for table in tables:
            _exchange(conn, table, LIVE, BUILD)
            _exchange(conn, f"{table}__lineage", lineage_schema(LIVE), lineage_schema(BUILD), lineage=True)
        conn.execute(_PUBLICATION_DDL)
        group = sql.Identifier(BI_GROUP)
        if conn.execute("select exists (select from pg_roles where rolname = %s)", (BI_GROUP,)).fetchone()[0]:
            # the moved tables carry the grants dbt gave them; this also covers a table rebuilt by hand
            conn.execute(sql.SQL("grant usage on schema marts to {}").format(group))
            conn.execute(sql.SQL("grant select on all tables in schema marts to {}").format(group))
        elapsed = (time.perf_counter() - began) * 1000
        conn.execute(
            """insert into marts.publication (build_started_at, full_refresh, tables, loaded_files,
                   last_submission_id, last_received_at, dbt_invocation_id, publish_ms)
               values (%s, %s, %s, %s, %s, %s, %s, %s)""",
            (
                started_at,
                full_refresh,
                list(tables),
                inputs_at_start["loaded_files"],
                inputs_at_start["last_submission_id"],
                inputs_at_start["last_received_at"],
                invocation_id,
                round(elapsed, 1),
            ),
        )
    return (time.perf_counter() - began) * 1000


def latest(conn: psycopg.Connection) -> dict[str, Any] | None:
    """The newest publication (what BI reads now), or None before the first one."""
    if not relation_exists(conn, LIVE, "publication"):
        return None
    cur = conn.execute("select * from marts.publication order by publication_id desc limit 1")
    row = cur.fetchone()
    return None if row is None else dict(zip([d.name for d in cur.description], row, strict=True))
