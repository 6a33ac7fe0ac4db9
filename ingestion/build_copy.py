"""Keeping the build copy of the incremental marts in step with what was just published.

Write-audit-publish (``ingestion.publish``) swaps each built table with its published twin,
so after a publication ``marts_build`` holds the tables BI read until then: one build behind.
Left so, every build would catch up the build it missed as well as its own new data — after
a backlog month by month, a nightly build on a year of history recomputed eleven months of
facts instead of one. So, right after the publication has committed (BI never waits for it),
:func:`sync` applies to the copy of each incremental table exactly what the build changed,
by copying rows from the published table — no recomputation:

* the build's models record the keys they refreshed (macro ``record_refreshed_keys``:
  ``marts_build_lineage.<table>__refreshed``; none after a first build or a full refresh);
* the copy's rows of those keys are replaced by the published ones, and so is its lineage
  (keyed the same way, or, for a lineage that is not — the roll-up's fingerprints per slot —
  whole), in one transaction per table; then both are analysed.

That gives the published table only if the copy equalled the previous publication when the
build started. ``marts_build_lineage.build_copy_state`` says, per table, which publication
the copy equals: :func:`begin` reads it and marks every copy unknown before dbt runs (a build
that fails leaves its copies changed), :func:`sync` records the new publication. A copy that
was not known to equal the previous publication, a build without recorded keys, or a copy
whose row count comes out different from the published table's is replaced by a whole copy
of the table. Whatever happens here, a copy and its lineage stay consistent with each other,
and the next build's stale-key logic (lineage against the current submissions) stays right.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import psycopg
from psycopg import sql

from ingestion.publish import BUILD, LIVE, latest, lineage_schema, relation_exists

log = logging.getLogger(__name__)

_STATE = sql.Identifier(lineage_schema(BUILD), "build_copy_state")


@dataclass
class CopyStart:
    """What the copies were when a build started: table → the publication each equalled."""

    in_sync_with: dict[str, int | None] = field(default_factory=dict)
    last_publication: int | None = None


@dataclass
class SyncReport:
    keyed: list[str] = field(default_factory=list)  # brought up to date by the refreshed keys
    copied: list[str] = field(default_factory=list)  # replaced by a whole copy
    seconds: float = 0.0


def _columns(conn: psycopg.Connection, schema: str, table: str) -> list[str]:
    rows = conn.execute(
        """select attname from pg_attribute
           where attrelid = %s::regclass and attnum > 0 and not attisdropped order by attnum""",
        (f'"{schema}"."{table}"',),
    ).fetchall()
    return [r[0] for r in rows]


def _primary_key(conn: psycopg.Connection, schema: str, table: str) -> list[str]:
    rows = conn.execute(
        """select a.attname from pg_index i
           join pg_attribute a on a.attrelid = i.indrelid and a.attnum = any(i.indkey)
           where i.indrelid = %s::regclass and i.indisprimary""",
        (f'"{schema}"."{table}"',),
    ).fetchall()
    return [r[0] for r in rows]


def _last_publication(conn: psycopg.Connection) -> int | None:
    newest = latest(conn)
    return None if newest is None else newest["publication_id"]


def begin(conn: psycopg.Connection) -> CopyStart:
    """Before dbt writes into ``marts_build``: which publication each copy equals; then every
    copy is marked unknown until :func:`sync` says otherwise (committed)."""
    with conn.transaction():
        conn.execute(sql.SQL("create schema if not exists {}").format(sql.Identifier(lineage_schema(BUILD))))
        conn.execute(
            sql.SQL("create table if not exists {} (table_name text primary key, in_sync_with bigint)").format(_STATE)
        )
        start = CopyStart(
            in_sync_with=dict(conn.execute(sql.SQL("select table_name, in_sync_with from {}").format(_STATE))),
            last_publication=_last_publication(conn),
        )
        conn.execute(sql.SQL("update {} set in_sync_with = null").format(_STATE))
    return start


def _record(conn: psycopg.Connection, states: Mapping[str, int | None]) -> None:
    for table, publication in states.items():
        conn.execute(
            sql.SQL(
                "insert into {} values (%s, %s)"
                " on conflict (table_name) do update set in_sync_with = excluded.in_sync_with"
            ).format(_STATE),
            (table, publication),
        )


def _count(conn: psycopg.Connection, schema: str, table: str) -> int:
    return conn.execute(sql.SQL("select count(*) from {}").format(sql.Identifier(schema, table))).fetchone()[0]


def _copy_whole(conn: psycopg.Connection, table: str) -> None:
    """The copy (rows and lineage) becomes a copy of the published table, indexes included."""
    lineage = f"{table}__lineage"
    for schema, name, to in ((LIVE, table, BUILD), (lineage_schema(LIVE), lineage, lineage_schema(BUILD))):
        source, target = sql.Identifier(schema, name), sql.Identifier(to, name)
        columns = _columns(conn, schema, name)
        if relation_exists(conn, to, name) and _columns(conn, to, name) == columns:
            # emptied, not dropped: views of the build (the quality checks) read the copies' lineage
            conn.execute(sql.SQL("truncate {}").format(target))
        else:
            conn.execute(sql.SQL("drop table if exists {}").format(target))
            conn.execute(sql.SQL("create table {} (like {} including all)").format(target, source))
        listed = sql.SQL(", ").join(map(sql.Identifier, columns))
        conn.execute(sql.SQL("insert into {} ({}) select {} from {}").format(target, listed, listed, source))
        conn.execute(sql.SQL("analyze {}").format(target))


def _replace_keys(conn: psycopg.Connection, schema_from: str, schema_to: str, table: str, keys: list[str]) -> None:
    """Rows of ``schema_to.table`` whose keys were refreshed (or are null: a lineage's
    whole-table record) become those of ``schema_from.table``."""
    refreshed = sql.Identifier(lineage_schema(BUILD), f"{_base(table)}__refreshed")
    columns = sql.SQL(", ").join(map(sql.Identifier, _columns(conn, schema_from, table)))
    # a semi join on the keys (`(keys) in (select ...) or ...` is a subplan that PostgreSQL
    # hashes only while it fits work_mem: 75 k refreshed row ids compared it with every row),
    # and the null-key rows apart
    refreshed_key = sql.SQL("exists (select from {} as r where {})").format(
        refreshed, sql.SQL(" and ").join(sql.SQL("r.{0} = t.{0}").format(sql.Identifier(k)) for k in keys)
    )
    null_key = sql.SQL(" or ").join(sql.SQL("t.{} is null").format(sql.Identifier(k)) for k in keys)
    target, source = sql.Identifier(schema_to, table), sql.Identifier(schema_from, table)
    for matches in (refreshed_key, null_key):
        conn.execute(sql.SQL("delete from {} as t where {}").format(target, matches))
        conn.execute(
            sql.SQL("insert into {} ({}) select {} from {} as t where {}").format(
                target, columns, columns, source, matches
            )
        )
    conn.execute(sql.SQL("analyze {}").format(target))


def _base(table: str) -> str:
    return table.removesuffix("__lineage")


def _sync_keyed(conn: psycopg.Connection, table: str) -> bool:
    """Apply the build's refreshed keys to the copy; False when it cannot (then copy whole)."""
    refreshed = f"{table}__refreshed"
    lineage = f"{table}__lineage"
    if not (relation_exists(conn, lineage_schema(BUILD), refreshed) and relation_exists(conn, BUILD, table)):
        return False
    if not relation_exists(conn, lineage_schema(BUILD), lineage):
        return False
    keys = _columns(conn, lineage_schema(BUILD), refreshed)
    if not keys or not set(keys) <= set(_columns(conn, BUILD, table)):
        return False
    # a build that refreshed most keys (rpt_outliers while histories are short re-judges every
    # figure): emptying the copy and copying it whole is cheaper than deleting row by row.
    # Held keys: the lineage's, or the table's rows when the keys are its primary key (rpt_outliers
    # records row ids); the roll-up's slots are neither (its few refreshed slots always go by key)
    keyed_lineage = set(keys) <= set(_columns(conn, lineage_schema(LIVE), lineage))
    held = None
    if keyed_lineage:
        held = conn.execute(
            sql.SQL("select count(distinct ({})) from {}").format(
                sql.SQL(", ").join(map(sql.Identifier, keys)), sql.Identifier(lineage_schema(LIVE), lineage)
            )
        ).fetchone()[0]
    elif set(keys) == set(_primary_key(conn, LIVE, table)):
        held = _count(conn, LIVE, table)
    if held and 2 * _count(conn, lineage_schema(BUILD), refreshed) >= held:
        return False
    _replace_keys(conn, LIVE, BUILD, table, keys)
    if keyed_lineage:
        _replace_keys(conn, lineage_schema(LIVE), lineage_schema(BUILD), lineage, keys)
    else:  # a lineage of other keys (fingerprints per slot or per pairing × date): copied whole
        target, source = sql.Identifier(lineage_schema(BUILD), lineage), sql.Identifier(lineage_schema(LIVE), lineage)
        conn.execute(sql.SQL("delete from {}").format(target))
        conn.execute(sql.SQL("insert into {} select * from {}").format(target, source))
    return _count(conn, BUILD, table) == _count(conn, LIVE, table) and _count(
        conn, lineage_schema(BUILD), lineage
    ) == _count(conn, lineage_schema(LIVE), lineage)


def sync(conn: psycopg.Connection, tables: Sequence[str], start: CopyStart) -> SyncReport:
    """After a publication of ``tables``: bring each incremental table's copy up to date (see
    the module's doc) and record which publication the copies equal now."""
    began = time.perf_counter()
    report = SyncReport()
    publication = _last_publication(conn)
    states = dict(start.in_sync_with)  # a table this build did not write is as it was
    for table in tables:
        if not relation_exists(conn, lineage_schema(LIVE), f"{table}__lineage"):
            continue  # not incremental: the next build replaces its copy whole anyway
        known = start.last_publication is not None and start.in_sync_with.get(table) == start.last_publication
        try:
            with conn.transaction():
                if known and _sync_keyed(conn, table):
                    report.keyed.append(table)
                else:
                    raise _WholeCopy
        except _WholeCopy:
            with conn.transaction():
                _copy_whole(conn, table)
            report.copied.append(table)
        states[table] = publication
    with conn.transaction():
        _record(conn, states)
    report.seconds = time.perf_counter() - began
    log.info(
        "build copies brought up to date in %.1f s: %s by the refreshed keys, %s copied whole",
        report.seconds,
        ", ".join(report.keyed) or "none",
        ", ".join(report.copied) or "none",
    )
    return report


class _WholeCopy(Exception):
    """Roll the keyed sync back and copy the table whole."""
