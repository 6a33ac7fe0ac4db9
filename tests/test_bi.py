"""BI logins (`pairstats bi add|list|remove`) on the embedded warehouse listening on TCP.

One embedded PostgreSQL of its own (a temporary PAIRSTATS_HOME, PAIRSTATS_WAREHOUSE_LISTEN on a
free local port), the demo ingested and the marts built once (`pairstats demo --no-airflow`),
plus a file with a 填报人 / 联系电话 block. Every check connects as the login, over TCP, with
the password `bi add` printed; the owner enumerates what exists from the catalogue.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from psycopg import errors, sql

from ingestion import warehouse
from ingestion.bench_files import write_bench_activities
from ingestion.cli import main
from ingestion.config import Settings
from ingestion.processes import free_ports

pytestmark = pytest.mark.slow

SCHEMAS_DENIED = {
    *("raw", "quarantine", "audit", "ref", "staging", "intermediate", "seeds", "snapshots"),
    *("marts_build", "marts_lineage", "marts_build_lineage"),  # built, not published; lineages
}
PERSONAL = ("张某", "0996-1234 5678")  # the 填报人 / 联系电话 of the file below
PERSONAL_COLUMNS = re.compile(r"reporter|phone|mobile|contact|telephone|填报人|联系电话|联系人|手机", re.I)


@dataclass
class BI:
    settings: Settings
    owner_url: str  # the warehouse, as its owner over the unix socket
    port: int
    login: str
    url: str  # what `bi add` printed
    password: str


def _cli(capsys: pytest.CaptureFixture[str] | None, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    if capsys is None:
        return code, "", ""
    out, err = capsys.readouterr()
    return code, out, err


def _add(name: str) -> tuple[int, str, str]:
    """`pairstats bi add NAME`, its output captured without a fixture (module scope)."""
    import contextlib
    import io

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["bi", "add", name])
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def bi() -> Iterator[BI]:
    # Not under pytest's basetemp: every pytest session that starts chmods /tmp/pytest-of-<user>
    # to 0700, and the server (user pgserver when run as root) opens its files by absolute path.
    home = Path(tempfile.mkdtemp(prefix="pairstats-bi-"))
    port = free_ports(1)[0]
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("PAIRSTATS_WAREHOUSE_URL", raising=False)
        mp.setenv("PAIRSTATS_HOME", str(home))
        mp.setenv("PAIRSTATS_WAREHOUSE_LISTEN", f"127.0.0.1:{port}")
        settings = Settings.from_env()
        try:
            landing = home / "landing"
            # a district file with the 填报单位 / 填报人 / 联系电话 block above its table
            write_bench_activities(landing / "652801" / "库尔勒市2025年7月共建活动.csv", 20, period="2025-07")
            assert _cli(None, "demo", "--no-airflow", "--landing", str(landing)) == (0, "", "")
            # Airflow's metadata database on the same server, as `make demo` leaves it (created
            # before BI logins existed: with PostgreSQL's default PUBLIC privileges)
            warehouse.ensure_database(warehouse.server_url(settings, "postgres"), warehouse.AIRFLOW_DB)
            code, out, err = _add("bi_test_superset")
            assert code == 0, err
            url = re.search(r"postgresql://\S+", out).group(0)
            password = re.search(r"shown this once: (\S+)", out).group(1)
            yield BI(settings, warehouse.warehouse_url(settings), port, "bi_test_superset", url, password)
        finally:
            warehouse.stop(settings)
            shutil.rmtree(home, ignore_errors=True)


def _as_login(b: BI, **kwargs) -> psycopg.Connection:
    return psycopg.connect(b.url, connect_timeout=10, **kwargs)


def _relations(b: BI) -> dict[str, list[tuple[str, str]]]:
    """Every table, view, materialized view and foreign table by schema (the owner's view)."""
    with psycopg.connect(b.owner_url) as conn:
        rows = conn.execute(
            """select n.nspname, c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace
               where c.relkind in ('r', 'p', 'v', 'm', 'f')
                 and n.nspname not in ('pg_catalog', 'information_schema') and n.nspname not like 'pg\\_%%'
               order by 1, 2"""
        ).fetchall()
    out: dict[str, list[tuple[str, str]]] = {}
    for schema, name in rows:
        out.setdefault(schema, []).append((schema, name))
    return out


def _read_all_marts(b: BI) -> int:
    marts = _relations(b)["marts"]
    with _as_login(b) as conn:
        for relation in marts:
            conn.execute(sql.SQL("select * from {} limit 1").format(sql.Identifier(*relation))).fetchall()
    return len(marts)


# --------------------------------------------------------------------------- settings, no server


def test_listen_setting() -> None:
    def parse(value: str):
        return Settings.from_env({"PAIRSTATS_HOME": "/tmp/x", "PAIRSTATS_WAREHOUSE_LISTEN": value}).warehouse_listen

    assert parse("127.0.0.1:5433") == ("127.0.0.1", 5433)
    assert parse("[::1]:5433") == ("::1", 5433)
    assert parse("*:6543") == ("*", 6543)
    assert parse("5433") == ("127.0.0.1", 5433)
    assert parse("") is None
    for bad in ("127.0.0.1:", "host:port", "127.0.0.1:70000", "a b:5433"):
        with pytest.raises(ValueError, match="PAIRSTATS_WAREHOUSE_LISTEN"):
            parse(bad)


# --------------------------------------------------------------------------- TCP and SCRAM


def test_embedded_server_listens_on_tcp_with_scram_and_trusts_the_socket_for_its_owner_only(bi: BI) -> None:
    assert "host=/" in bi.owner_url and f"port={bi.port}" in bi.owner_url  # the owner: unix socket
    with psycopg.connect(bi.owner_url) as conn:
        assert conn.execute("show listen_addresses").fetchone()[0] == "127.0.0.1"
        assert int(conn.execute("show port").fetchone()[0]) == bi.port
        rules = conn.execute(
            "select type, database, user_name, address, auth_method from pg_hba_file_rules order by rule_number"
        ).fetchall()
    assert rules[0] == ("local", ["all"], ["postgres"], None, "trust")
    assert all(r[4] == "scram-sha-256" for r in rules if r[0] == "host")
    assert {r[3] for r in rules if r[0] == "host"} == {"0.0.0.0", "::"}
    assert all(r[4] == "scram-sha-256" for r in rules if r[2] != ["postgres"])  # nobody else is trusted
    with pytest.raises(psycopg.OperationalError, match="password"):  # the owner has no password: not over TCP
        psycopg.connect(f"postgresql://postgres@127.0.0.1:{bi.port}/pairstats", connect_timeout=10)


def test_bi_add_prints_a_url_that_connects_over_tcp_with_its_password_only(bi: BI) -> None:
    assert bi.url == f"postgresql://{bi.login}:{bi.password}@127.0.0.1:{bi.port}/pairstats"
    assert len(bi.password) >= 32
    with _as_login(bi) as conn:
        user, addr, ssl_port = conn.execute(
            "select current_user, inet_server_addr()::text, inet_server_port()"
        ).fetchone()
        assert (user, addr, ssl_port) == (bi.login, "127.0.0.1/32", bi.port)  # TCP, not the socket
        assert conn.execute("show default_transaction_read_only").fetchone()[0] == "on"
    base = f"postgresql://{bi.login}@127.0.0.1:{bi.port}/pairstats"
    with pytest.raises(psycopg.OperationalError, match="no password supplied"):
        psycopg.connect(base, connect_timeout=10)
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(base, password=bi.password[:-1] + ("x" if bi.password[-1] != "x" else "y"), connect_timeout=10)
    with psycopg.connect(bi.owner_url) as conn:
        secret, group_member, superuser = conn.execute(
            """select a.rolpassword, pg_has_role(a.oid, 'bi_reader', 'usage'), a.rolsuper
               from pg_authid a where a.rolname = %s""",
            (bi.login,),
        ).fetchone()
        assert conn.execute("select rolcanlogin from pg_roles where rolname = 'bi_reader'").fetchone() == (False,)
    assert secret.startswith("SCRAM-SHA-256$4096:") and bi.password not in secret
    assert group_member and not superuser


# --------------------------------------------------------------------------- what a login reads


def test_login_reads_every_mart_and_nothing_else(bi: BI) -> None:
    relations = _relations(bi)
    assert len(relations["marts"]) >= 10
    assert _read_all_marts(bi) == len(relations["marts"])
    others = [r for schema, rels in relations.items() if schema != "marts" for r in rels]
    assert SCHEMAS_DENIED <= {schema for schema, _ in others}
    assert len(others) > 50
    denied = []
    with _as_login(bi, autocommit=True) as conn:
        for relation in others:
            try:
                conn.execute(sql.SQL("select * from {} limit 1").format(sql.Identifier(*relation)))
            except errors.InsufficientPrivilege:
                denied.append(relation)
        assert denied == others  # every table and view of every other schema, one by one
        for schema in [*relations, "public"]:  # and no schema but marts is usable or writable
            usable = conn.execute(
                "select has_schema_privilege(%s, 'usage'), has_schema_privilege(%s, 'create')", (schema, schema)
            ).fetchone()
            assert usable == (schema == "marts", False), schema
        conn.execute("set default_transaction_read_only = off")  # a login may: privileges still deny
        with pytest.raises(errors.InsufficientPrivilege):
            conn.execute("create table public.bi_scratch (x int)")


def test_login_cannot_connect_to_airflow_or_any_other_database(bi: BI) -> None:
    with psycopg.connect(bi.owner_url) as conn:
        databases = [r[0] for r in conn.execute("select datname from pg_database where datallowconn order by 1")]
    assert warehouse.AIRFLOW_DB in databases
    for database in databases:
        url = warehouse.with_database(bi.url, database)
        if database == "pairstats":
            psycopg.connect(url, connect_timeout=10).close()
            continue
        with pytest.raises(psycopg.OperationalError, match="permission denied for database"):
            psycopg.connect(url, connect_timeout=10)


def test_no_personal_data_reaches_the_marts(bi: BI) -> None:
    """填报人 and 联系电话: no mart column is one, and no value anywhere in the warehouse holds
    the reporter's name or phone number of the file that carried them (read as the owner)."""
    with psycopg.connect(bi.owner_url) as conn:
        assert conn.execute(
            "select rows_loaded from audit.submission_files where original_name like '%%2025年7月共建活动%%'"
        ).fetchone() == (20,)
        columns = conn.execute(
            """select c.relname, a.attname, coalesce(col_description(c.oid, a.attnum), ''), n.nspname,
                      format_type(a.atttypid, a.atttypmod)
               from pg_class c join pg_namespace n on n.oid = c.relnamespace
               join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
               where c.relkind in ('r', 'p', 'v', 'm') and n.nspname not in ('pg_catalog', 'information_schema')
                 and n.nspname not like 'pg\\_%%'"""
        ).fetchall()
        marts = [(t, col, comment) for t, col, comment, schema, _ in columns if schema == "marts"]
        assert marts and not [c for c in marts if PERSONAL_COLUMNS.search(c[1] + " " + c[2])]
        texts = [(s, t, col) for t, col, _, s, typ in columns if typ in ("text", "jsonb", "json") or "char" in typ]
        found = []
        for schema, table, column in texts:
            hit = conn.execute(
                sql.SQL("select count(*) from {} where {}::text like any(%s)").format(
                    sql.Identifier(schema, table), sql.Identifier(column)
                ),
                ([f"%{p}%" for p in PERSONAL],),
            ).fetchone()[0]
            if hit:
                found.append((schema, table, column))
    assert found == []


# --------------------------------------------------------------------------- rebuilds, list, remove


def test_login_keeps_reading_the_marts_after_a_rebuild(bi: BI) -> None:
    def oids() -> dict[str, int]:
        with psycopg.connect(bi.owner_url) as conn:
            rows = conn.execute("select relname, oid::int from pg_class where relnamespace = 'marts'::regnamespace")
            return dict(rows.fetchall())

    before = oids()
    assert _cli(None, "build") == (0, "", "")
    after = oids()
    recreated = [t for t in before if t in after and after[t] != before[t]]
    assert recreated, "dbt recreated no mart: the test would prove nothing"
    assert _read_all_marts(bi) == len(_relations(bi)["marts"])


def test_bi_list_shows_the_login(bi: BI, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _cli(capsys, "bi", "list")
    assert code == 0 and re.search(rf"^{bi.login}\s+\d{{4}}-\d\d-\d\dT", out, re.M), out
    code, out, _ = _cli(capsys, "bi", "list", "--json")
    assert code == 0 and '"name": "bi_test_superset"' in out and "postgres" not in out


def test_bi_add_refuses_bad_names_and_existing_roles(bi: BI, capsys: pytest.CaptureFixture[str]) -> None:
    for name, message in [
        ("Superset", "lowercase identifier"),
        ("bi-tool", "lowercase identifier"),
        ("1tool", "lowercase identifier"),
        ("pg_tool", "reserved"),
        ("bi_reader", "reserved"),
        ("postgres", "reserved"),
        (bi.login, "exists already"),
    ]:
        code, out, err = _cli(capsys, "bi", "add", name)
        assert code == 2 and message in err and " / " in err and not out, (name, err)
    with psycopg.connect(bi.owner_url, autocommit=True) as conn:
        conn.execute("create role bi_test_plain nologin")
        try:
            code, out, err = _cli(capsys, "bi", "add", "bi_test_plain")
            assert code == 2 and "is not a BI login" in err
            code, _, err = _cli(capsys, "bi", "remove", "bi_test_plain")
            assert code == 2 and "is not a BI login" in err and "不是 BI 登录" in err
            assert conn.execute("select count(*) from pg_roles where rolname = 'bi_test_plain'").fetchone() == (1,)
        finally:
            conn.execute("drop role bi_test_plain")
    for name in ("postgres", "bi_reader"):
        code, _, err = _cli(capsys, "bi", "remove", name)
        assert code == 2 and "not" in err, name
    code, _, err = _cli(capsys, "bi", "remove", "bi_test_nobody")
    assert code == 2 and "no role named bi_test_nobody" in err


def test_bi_remove_drops_the_login_and_ends_its_sessions(bi: BI, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _add("bi_test_metabase")
    assert code == 0, err
    url = re.search(r"postgresql://\S+", out).group(0)
    session = psycopg.connect(url, connect_timeout=10, autocommit=True)
    session.execute("select 1")
    code, out, _ = _cli(capsys, "bi", "remove", "bi_test_metabase")
    assert code == 0 and "removed" in out
    with pytest.raises(psycopg.OperationalError):
        session.execute("select 1")  # terminated
    session.close()
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(url, connect_timeout=10)
    code, out, _ = _cli(capsys, "bi", "list")
    assert "bi_test_metabase" not in out and bi.login in out
    with psycopg.connect(bi.owner_url) as conn:
        assert conn.execute("select count(*) from pg_roles where rolname = 'bi_test_metabase'").fetchone() == (0,)


def test_the_first_login_still_works_after_another_was_removed(bi: BI) -> None:
    assert _read_all_marts(bi) > 0


# --------------------------------------------------------------------------- write-audit-publish

TOTALS = """select (select sum(activity_count) from marts.fct_activity_counts),
                  (select sum(participants) from marts.fct_activity_counts),
                  (select count(*) from marts.rpt_region_rollup),
                  (select max(publication_id) from marts.publication)"""


def test_a_failing_test_publishes_nothing_and_the_next_good_build_publishes_everything(
    bi: BI, capsys: pytest.CaptureFixture[str]
) -> None:
    """A register update that loses a township its pairing points to breaks dbt's relationships
    test after dim_region is rebuilt: the build fails, names the test, and BI keeps reading the
    previous build — including the month that arrived meanwhile, which is built but unpublished."""
    with _as_login(bi) as conn:
        before = conn.execute(TOTALS).fetchone()
        published_before = conn.execute("select count(*) from marts.publication").fetchone()[0]
    landing = bi.settings.home / "landing-wap"
    write_bench_activities(landing / "652801" / "库尔勒市2025年8月共建活动.csv", 30, period="2025-08")
    assert _cli(capsys, "ingest", str(landing))[0] == 0
    with psycopg.connect(bi.owner_url) as conn:
        township = conn.execute("select rural_unit_code from marts.dim_pairing order by 1 limit 1").fetchone()[0]
        saved = conn.execute("select * from ref.regions where code = %s", (township,)).fetchall()
        assert len(saved) == 1
        conn.execute("delete from ref.regions where code = %s", (township,))
    try:
        code, out, err = _cli(capsys, "build")
        assert code == 1
        assert "未发布" in err and "not published" in err
        # the register's own relationships test (parent codes) and the pairing's rural unit
        assert re.search(r"test relationships_\S*rural_unit_code\S*: Got 1 result", err), err
        with _as_login(bi) as conn:
            assert conn.execute(TOTALS).fetchone() == before  # the previous totals, the same publication
            assert conn.execute("select count(*) from marts.publication").fetchone()[0] == published_before
            with pytest.raises(errors.InsufficientPrivilege):
                conn.execute("select count(*) from marts_build.fct_activity_counts")
        with psycopg.connect(bi.owner_url) as conn:  # the build did write the new month, unpublished
            built = conn.execute("select sum(activity_count) from marts_build.fct_activity_counts").fetchone()[0]
            assert built == before[0] + 30
    finally:
        with psycopg.connect(bi.owner_url) as conn:
            columns = [r[0] for r in conn.execute("select * from ref.regions limit 0").description]
            conn.execute(
                sql.SQL("insert into ref.regions ({}) values ({})").format(
                    sql.SQL(", ").join(map(sql.Identifier, columns)),
                    sql.SQL(", ").join(sql.Placeholder() * len(columns)),
                ),
                saved[0],
            )
    code, out, err = _cli(capsys, "build")
    assert code == 0, err
    assert "已发布" in out and "published to marts" in out
    with _as_login(bi) as conn:
        after = conn.execute(TOTALS).fetchone()
        assert after[0] == before[0] + 30 and after[1] > before[1] and after[3] == before[3] + 1
        last_id, loaded, tables = conn.execute(
            "select last_submission_id, loaded_files, tables from marts.publication"
            " order by publication_id desc limit 1"
        ).fetchone()
    assert _read_all_marts(bi) == len(_relations(bi)["marts"])  # the grants came with the tables
    with psycopg.connect(bi.owner_url) as conn:
        newest, files = conn.execute(
            "select max(submission_id), count(*) from audit.submission_files where status = 'loaded'"
        ).fetchone()
        assert (last_id, loaded) == (newest, files)
        assert {"fct_activity_counts", "rpt_region_rollup", "dim_region"} <= set(tables)
        # comments (persist_docs) and the contract's constraints came with them too
        comment = conn.execute(
            "select col_description('marts.fct_activity_counts'::regclass, attnum) from pg_attribute "
            "where attrelid = 'marts.fct_activity_counts'::regclass and attname = 'participants'"
        ).fetchone()[0]
        assert comment and re.search(r"[\u4e00-\u9fff]", comment)
        primary_keys = conn.execute(
            "select count(*) from pg_constraint where contype = 'p' and connamespace = 'marts'::regnamespace"
        ).fetchone()[0]
        assert primary_keys >= 10
        assert conn.execute(
            "select count(*) from pg_class where relnamespace = 'marts_swap'::regnamespace"
        ).fetchone() == (0,)
        # the failed build had changed the copies in marts_build: after the good build's
        # publication each incremental one was replaced by a copy of the published table
        publication = conn.execute("select max(publication_id) from marts.publication").fetchone()[0]
        states = dict(conn.execute("select table_name, in_sync_with from marts_build_lineage.build_copy_state"))
        incremental = ["fct_activity_counts", "fct_income_effects", "fct_projects", "rpt_region_rollup", "rpt_outliers"]
        assert {t: states.get(t) for t in incremental} == dict.fromkeys(incremental, publication)
        for table in incremental:
            for a, b in (("marts", "marts_build"), ("marts_build", "marts")):
                differing = conn.execute(
                    sql.SQL("select count(*) from (table {} except all table {}) as d").format(
                        sql.Identifier(a, table), sql.Identifier(b, table)
                    )
                ).fetchone()[0]
                assert differing == 0, (table, a, b)
