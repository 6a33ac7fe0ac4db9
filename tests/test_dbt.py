"""The dbt project (``dbt_project/``) built for real on the demo submissions.

One warehouse database for the module (cloned from the session's template, like
``settings`` in ``conftest.py``, but shared: each dbt build costs seconds). The fixture
ingests the demo's first five months with the real ``Ingester``, builds (full), ingests the
sixth month, builds again (incremental), builds once more with nothing new, keeps a copy of
the incremental marts, and builds with ``--full-refresh``; the tests read what each step
left. The correction scenario runs on a clone of that database, so it cannot disturb the
others.

Builds in this module: 5 on the shared database, 2 on the correction clone.
"""

from __future__ import annotations

import csv
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest
from psycopg import errors, sql

from ingestion import dbt
from ingestion.config import CHECKOUT, Settings
from ingestion.contract import ACTIVITY_TYPES, PAIRING_FORMS, PROJECT_CATEGORIES, PROJECT_STATUSES
from ingestion.demo import DEFAULT_MONTHS, DemoResult, generate_demo
from ingestion.files import expand_paths
from ingestion.pipeline import Ingester
from ingestion.warehouse import with_database
from tests.conftest import create_database, drop_database

pytestmark = pytest.mark.slow

SEEDS = CHECKOUT / "dbt_project" / "seeds"
LAST_MONTH = DEFAULT_MONTHS[-1]
FACTS = {  # table -> its key
    "fct_activity_counts": "activity_count_id",
    "fct_income_effects": "income_effect_id",
    "fct_projects": "project_id",
}
COMPARED = [*FACTS, "rpt_region_rollup", "dim_region", "dim_period"]
INCREMENTAL = {**FACTS, "rpt_region_rollup": "rollup_id", "rpt_outliers": "outlier_check_id"}  # table -> its key
MARTS = {
    *FACTS,
    "rpt_region_rollup",
    "dim_region",
    "dim_pairing",
    "dim_period",
    "dim_activity_type",
    "dim_project_category",
    "dim_project_status",
    "dim_pairing_form",
    "rpt_reporting_completeness",
    "rpt_outliers",
    "rpt_data_quality_daily",
    "publication",  # not a dbt model: written by each publication (ingestion/publish.py)
}
FORBIDDEN = [  # schema.relation bi_reader must not read
    "marts_build.fct_activity_counts",  # built, not published
    "marts_lineage.fct_activity_counts__lineage",
    "raw.activities",
    "raw.pairings",
    "audit.submission_files",
    "quarantine.rejected_rows",
    "ref.regions",
    "staging.stg_raw__activities",
    "intermediate.int_activities_versioned",
    "snapshots.snp_pairings",
    "seeds.activity_types",
]


# --------------------------------------------------------------------------- helpers


def _rows(url: str, query: str, *args: object) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(query, args or None).fetchall()


def _xmins(url: str, table: str, key: str, schema: str = "marts") -> dict[str, str]:
    """Row key -> xmin: a row that an incremental build did not rewrite keeps its xmin."""
    return dict(_rows(url, f"select {key}, xmin::text from {schema}.{table}"))


def _copy_facts(url: str, schema: str, tables: list[str]) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("create schema {}").format(sql.Identifier(schema)))
        for table in tables:
            conn.execute(
                sql.SQL("create table {} as table {}").format(
                    sql.Identifier(schema, table), sql.Identifier("marts", table)
                )
            )


def _differences(url: str, schema: str, table: str) -> tuple[int, int]:
    """Rows only in the copy, rows only in marts (EXCEPT ALL both ways)."""
    copy, mart = sql.Identifier(schema, table), sql.Identifier("marts", table)
    with psycopg.connect(url) as conn:
        only_copy = conn.execute(
            sql.SQL("select count(*) from (table {} except all table {}) as d").format(copy, mart)
        ).fetchone()[0]
        only_mart = conn.execute(
            sql.SQL("select count(*) from (table {} except all table {}) as d").format(mart, copy)
        ).fetchone()[0]
    return only_copy, only_mart


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def _ingest(url: str, settings: Settings, paths: list[Path]) -> list:
    with psycopg.connect(url) as conn:
        ingester = Ingester(conn, settings, run_id="test_dbt")
        return [ingester.ingest(p) for p in paths]


@dataclass
class Built:
    """What the module fixture did, step by step."""

    url: str
    name: str
    settings: Settings
    demo: DemoResult
    ok: dict[str, bool] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    xmins_before: dict[str, dict[str, str]] = field(default_factory=dict)
    xmins_after: dict[str, dict[str, str]] = field(default_factory=dict)
    xmins_idle_before: dict[str, dict[str, str]] = field(default_factory=dict)  # the copy the idle build takes
    xmins_idle: dict[str, dict[str, str]] = field(default_factory=dict)  # after a build with nothing new
    # after each build: how its copies were brought up to date, and copy vs published differences
    copies: dict[str, tuple[list[str], list[str]]] = field(default_factory=dict)
    copy_differences: dict[str, dict[str, tuple[int, int]]] = field(default_factory=dict)
    test_sql: dict[str, str] = field(default_factory=dict)  # a fact's uniqueness test as run

    def record(self, step: str, result: dbt.publish.BuildResult, seconds: float) -> None:
        self.ok[step] = bool(result)
        compiled = dbt.state_dir(self.settings) / "target" / "compiled"
        self.test_sql[step] = "".join(
            p.read_text(encoding="utf-8") for p in compiled.rglob("unique_fct_activity_counts_activity_count_id.sql")
        )
        self.seconds[step] = seconds
        self.copies[step] = (sorted(result.copies_keyed), sorted(result.copies_whole))
        self.copy_differences[step] = {t: _differences(self.url, "marts_build", t) for t in INCREMENTAL}


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, DemoResult]:
    landing = tmp_path_factory.mktemp("landing")
    return landing, generate_demo(landing)


@pytest.fixture(scope="module")
def built(
    pg_admin_url: str, template_db: str, tmp_path_factory: pytest.TempPathFactory, demo: tuple[Path, DemoResult]
) -> Iterator[Built]:
    landing, result = demo
    name = f"pairstats_dbt_{uuid.uuid4().hex[:10]}"
    create_database(pg_admin_url, name, template_db)
    url = with_database(pg_admin_url, name)
    home = tmp_path_factory.mktemp("home")
    settings = Settings.from_env({"PAIRSTATS_HOME": str(home), "PAIRSTATS_WAREHOUSE_URL": url})
    b = Built(url=url, name=name, settings=settings, demo=result)
    last = {f.path for f in result.files if f.period == LAST_MONTH}
    files = expand_paths([landing])
    try:
        _ingest(url, settings, [f for f in files if f not in last])

        t0 = time.perf_counter()
        result = dbt.build(settings)
        b.record("full", result, time.perf_counter() - t0)
        # Each build writes the copy in marts_build and publishes it to marts (write-audit-
        # publish): what a build rewrote is the copy's rows before (marts_build) vs after (marts).
        b.xmins_before = {t: _xmins(url, t, k, "marts_build") for t, k in INCREMENTAL.items()}

        _ingest(url, settings, [f for f in files if f in last])
        t0 = time.perf_counter()
        result = dbt.build(settings)
        b.record("incremental", result, time.perf_counter() - t0)
        b.xmins_after = {t: _xmins(url, t, k) for t, k in INCREMENTAL.items()}
        # nothing new since: the copy was brought up to date after the publication, so nothing to redo
        t0 = time.perf_counter()
        result = dbt.build(settings)
        b.record("catch_up", result, time.perf_counter() - t0)
        b.xmins_idle_before = {t: _xmins(url, t, k, "marts_build") for t, k in INCREMENTAL.items()}
        t0 = time.perf_counter()
        result = dbt.build(settings)
        b.record("idle", result, time.perf_counter() - t0)
        b.xmins_idle = {t: _xmins(url, t, k) for t, k in INCREMENTAL.items()}
        _copy_facts(url, "after_incremental", COMPARED)

        t0 = time.perf_counter()
        result = dbt.build(settings, full_refresh=True)
        b.record("full_refresh", result, time.perf_counter() - t0)
        print(f"\ndbt build seconds: {b.seconds}")
        yield b
    finally:
        drop_database(pg_admin_url, name)


# --------------------------------------------------------------------------- no database


@pytest.mark.parametrize(
    ("seed", "codes"),
    [
        ("activity_types", ACTIVITY_TYPES),
        ("project_categories", PROJECT_CATEGORIES),
        ("project_statuses", PROJECT_STATUSES),
        ("pairing_forms", PAIRING_FORMS),
    ],
)
def test_seeds_equal_contract_code_lists(seed: str, codes: dict[str, str]) -> None:
    with (SEEDS / f"{seed}.csv").open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert {r["code"]: r["label_zh"] for r in rows} == codes
    assert [r["code"] for r in rows] == list(codes), "same order as the contract"
    assert all(r["label_en"].strip() for r in rows)
    assert sorted(int(r["sort_order"]) for r in rows) == list(range(1, len(rows) + 1))


def test_dbt_env_from_socket_and_tcp_urls() -> None:
    socket = dbt.dbt_env("postgresql://postgres@/pairstats?host=/work/main/.pairstats/pgdata")
    assert socket == {
        "PAIRSTATS_DB_HOST": "/work/main/.pairstats/pgdata",
        "PAIRSTATS_DB_PORT": "5432",
        "PAIRSTATS_DB_USER": "postgres",
        "PAIRSTATS_DB_PASSWORD": "",
        "PAIRSTATS_DB_NAME": "pairstats",
    }
    tcp = dbt.dbt_env("postgresql://etl:s3cret@db.example:6543/warehouse")
    assert tcp["PAIRSTATS_DB_HOST"] == "db.example"
    assert (tcp["PAIRSTATS_DB_PORT"], tcp["PAIRSTATS_DB_USER"]) == ("6543", "etl")
    assert (tcp["PAIRSTATS_DB_PASSWORD"], tcp["PAIRSTATS_DB_NAME"]) == ("s3cret", "warehouse")


def test_profile_holds_no_secret() -> None:
    text = (CHECKOUT / "dbt_project" / "profiles.yml").read_text(encoding="utf-8")
    assert "env_var('PAIRSTATS_DB_PASSWORD', '')" in text
    for field_name in ("host", "port", "user", "password", "dbname"):
        line = next(ln for ln in text.splitlines() if ln.strip().startswith(f"{field_name}:"))
        assert "env_var(" in line, line


# --------------------------------------------------------------------------- the build


def test_every_build_passes_with_all_tests(built: Built) -> None:
    assert built.ok == {"full": True, "incremental": True, "catch_up": True, "idle": True, "full_refresh": True}


def test_mart_totals_equal_generator_totals(built: Built) -> None:
    url = built.url
    got: dict[str, dict[str, float]] = {}
    queries = {
        "fct_activity_counts": """select reporting_unit_code, sum(activity_count), sum(participants),
            sum(party_member_participants), sum(problems_resolved), sum(suggestions_collected)
            from marts.fct_activity_counts group by 1""",
        "fct_projects": """select reporting_unit_code, count(*), sum(investment_yuan), coalesce(sum(land_mu), 0),
            coalesce(sum(households_benefited), 0) from marts.fct_projects group by 1""",
        "fct_income_effects": """select reporting_unit_code, sum(collective_income_increase_yuan),
            sum(villager_income_increase_yuan), sum(produce_sold_tonnes), sum(produce_sales_yuan),
            sum(jobs_created), sum(households_benefited) from marts.fct_income_effects group by 1""",
        "dim_pairing": "select reporting_unit_code, count(*) from marts.dim_pairing where is_current group by 1",
    }
    names = {
        "fct_activity_counts": [
            "activities",
            "participants",
            "party_member_participants",
            "problems_resolved",
            "suggestions_collected",
        ],
        "fct_projects": ["projects", "investment_yuan", "land_mu", "project_households_benefited"],
        "fct_income_effects": [
            "collective_income_increase_yuan",
            "villager_income_increase_yuan",
            "produce_sold_tonnes",
            "produce_sales_yuan",
            "jobs_created",
            "households_benefited",
        ],
        "dim_pairing": ["pairings"],
    }
    for table, query in queries.items():
        for unit, *values in _rows(url, query):
            got.setdefault(unit, {}).update({n: round(float(v), 2) for n, v in zip(names[table], values, strict=True)})
    assert got == built.demo.totals


def test_rollup_answers_county_township_and_fourth_division(built: Built) -> None:
    """rpt_region_rollup: a county's, a township's and 第四师's own totals, per year and month."""
    url = built.url

    def rollup(attribution: str, tree: str, code: str, grain: str) -> dict[str, tuple]:
        rows = _rows(
            url,
            """select period_code, activity_count, participants, villager_income_increase_yuan
               from marts.rpt_region_rollup
               where attribution = %s and tree = %s and region_code = %s and period_grain = %s""",
            attribution,
            tree,
            code,
            grain,
        )
        # a figure no fact row reported is NULL (None), not 0: e.g. a year with projects only
        return {r[0]: tuple(None if x is None else float(x) for x in r[1:]) for r in rows}

    totals = built.demo.totals
    for unit, t in totals.items():  # each county, on what it reported
        year = rollup("reporting_unit", "civil", unit, "year")["2025"]
        assert year == (t["activities"], t["participants"], t["villager_income_increase_yuan"]), unit
        for (u, period), m in built.demo.totals_by_month.items():
            if u == unit:
                month = rollup("reporting_unit", "civil", unit, "month")[period]
                assert month[:2] == (m["activities"], m["participants"]), (unit, period)
        quarters = rollup("reporting_unit", "civil", unit, "quarter")
        assert sum(q[0] for q in quarters.values() if q[0] is not None) == t["activities"]
    # 第四师 in the Corps tree, as reporting unit and through its companies (rural units)
    fourth = totals["659008"]
    expected = (fourth["activities"], fourth["participants"], fourth["villager_income_increase_yuan"])
    assert rollup("reporting_unit", "corps", "659008", "year")["2025"] == expected
    assert rollup("rural_unit", "corps", "659008", "year")["2025"] == expected
    assert rollup("reporting_unit", "corps", "XPCC", "year")["2025"] == expected
    # a township (托布力其乡) on its villages' pairings, against the facts themselves
    facts = _rows(
        url,
        """select sum(activity_count), sum(participants) from marts.fct_activity_counts
           where rural_unit_code like '652801207%'""",
    )[0]
    township = rollup("rural_unit", "civil", "652801207", "year")["2025"]
    assert township[:2] == tuple(float(x) for x in facts) and facts[0] > 0
    # the province adds up its counties (Xinjiang: 库尔勒市 + 可克达拉市)
    xinjiang = rollup("reporting_unit", "civil", "65", "year")["2025"]
    assert xinjiang[0] == totals["652801"]["activities"] + totals["659008"]["activities"]


def test_incremental_build_touches_only_the_new_month(built: Built) -> None:
    for table in ("fct_activity_counts", "fct_income_effects"):
        before, after = built.xmins_before[table], built.xmins_after[table]
        periods = dict(_rows(built.url, f"select {FACTS[table]}, period_code from after_incremental.{table}"))
        new_keys = {k for k, p in periods.items() if p == LAST_MONTH}
        assert new_keys and not new_keys & before.keys(), table
        unchanged = {k for k in before if after.get(k) == before[k]}
        assert unchanged == before.keys(), f"{table}: rows of earlier months were rewritten"
    # projects are replaced per reporting unit: only units with a project report in the new month
    units_reporting = {
        r[0]
        for r in _rows(
            built.url,
            """select reporting_unit_code from audit.submission_files
               where period = %s and 'projects' = any(record_kinds)""",
            LAST_MONTH,
        )
    }
    before, after = built.xmins_before["fct_projects"], built.xmins_after["fct_projects"]
    rewritten = {k.split("/")[0] for k in before if after.get(k) != before[k]}
    assert rewritten <= units_reporting, "units without a new project report were rewritten"


def test_incremental_rollup_rebuilds_only_the_new_month_its_quarter_and_year(built: Built) -> None:
    before, after = built.xmins_before["rpt_region_rollup"], built.xmins_after["rpt_region_rollup"]
    periods = dict(_rows(built.url, "select rollup_id, period_code from after_incremental.rpt_region_rollup"))
    # a June project can start in any month: only the periods the new facts count in may change
    counted_in = {
        r[0]
        for r in _rows(
            built.url,
            """select distinct to_char(m, 'YYYY-MM') from (
                   select activity_month as m from marts.fct_activity_counts where period_code = %s
                   union select period_start from marts.fct_income_effects where period_code = %s
                   union select date_trunc('month', project_start_date)::date from marts.fct_projects
                   where latest_period_code = %s) as months""",
            LAST_MONTH,
            LAST_MONTH,
            LAST_MONTH,
        )
    }
    assert LAST_MONTH in counted_in
    may_change = counted_in | {f"{m[:4]}Q{(int(m[5:]) + 2) // 3}" for m in counted_in} | {m[:4] for m in counted_in}
    rewritten = {periods[k] for k in before if k in periods and after.get(k) != before[k]}
    assert rewritten and rewritten <= may_change, rewritten - may_change
    untouched = {k for k in before if periods.get(k) not in may_change}
    assert untouched and all(after.get(k) == before[k] for k in untouched)
    new_month = {k for k, p in periods.items() if p == LAST_MONTH}
    assert new_month and not new_month & before.keys()


def test_the_build_copy_equals_what_was_published_after_every_build(built: Built) -> None:
    """Write-audit-publish leaves the previous tables in marts_build; each is brought up to
    date right after the publication — whole after the first build and a full refresh, by the
    refreshed keys after an incremental one — so the next build computes only its own data."""
    for step, differences in built.copy_differences.items():
        assert differences == {t: (0, 0) for t in INCREMENTAL}, step
    assert built.copies["full"] == ([], sorted(INCREMENTAL))
    assert built.copies["full_refresh"] == ([], sorted(INCREMENTAL))
    # a new month: the month's facts and the roll-up's month, quarter and year by their keys;
    # every pairing's history grew, so rpt_outliers re-judged all of them and is copied whole
    # (cheaper than row by row), and so is fct_projects, whose every demo unit sent projects
    keyed, whole = built.copies["incremental"]
    assert {"fct_activity_counts", "fct_income_effects", "rpt_region_rollup"} <= set(keyed)
    assert "rpt_outliers" in whole and sorted(keyed + whole) == sorted(INCREMENTAL)
    for step in ("catch_up", "idle"):  # nothing new: nothing refreshed, nothing copied
        assert built.copies[step] == (sorted(INCREMENTAL), []), step


def test_tests_of_an_incremental_build_read_the_rows_it_wrote(built: Built) -> None:
    """A first build and a full refresh test every row; an incremental build the partitions
    it refreshed (the other rows were tested when written; the primary key holds on all)."""
    refreshed = "marts_build_lineage.fct_activity_counts__refreshed"
    for step in ("full", "full_refresh"):
        assert "fct_activity_counts" in built.test_sql[step] and refreshed not in built.test_sql[step], step
    for step in ("incremental", "catch_up", "idle"):
        assert (
            f"(reporting_unit_code, period_code) in (select reporting_unit_code, period_code from {refreshed})"
            in (built.test_sql[step])
        ), step


def test_a_build_with_nothing_new_rewrites_nothing(built: Built) -> None:
    for table in INCREMENTAL:
        assert built.xmins_idle[table] == built.xmins_idle_before[table], table


def test_incremental_equals_full_refresh(built: Built) -> None:
    for table in COMPARED:
        assert _differences(built.url, "after_incremental", table) == (0, 0), table
        count = _rows(built.url, f"select count(*) from marts.{table}")[0][0]
        assert count > 0, table


def test_bi_reader_reads_every_mart_and_nothing_else(built: Built) -> None:
    with psycopg.connect(built.url) as conn:
        marts = [
            r[0]
            for r in conn.execute(
                "select table_name from information_schema.tables where table_schema = 'marts' order by 1"
            ).fetchall()
        ]
        assert set(marts) == MARTS
        conn.execute("set role bi_reader")
        for table in marts:
            conn.execute(sql.SQL("select * from {} limit 1").format(sql.Identifier("marts", table))).fetchall()
        conn.rollback()
        for relation in FORBIDDEN:
            schema, table = relation.split(".")
            with pytest.raises(errors.InsufficientPrivilege):
                conn.execute("set role bi_reader")
                conn.execute(sql.SQL("select * from {} limit 1").format(sql.Identifier(schema, table)))
            conn.rollback()
        role = conn.execute("select rolcanlogin, rolsuper from pg_roles where rolname = 'bi_reader'").fetchone()
    assert role == (False, False)


def test_mart_columns_carry_chinese_and_english_comments(built: Built) -> None:
    rows = _rows(
        built.url,
        """select c.relname, a.attname, col_description(c.oid, a.attnum), obj_description(c.oid, 'pg_class')
           from pg_class c
           join pg_namespace n on n.oid = c.relnamespace
           join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
           where n.nspname = 'marts' and c.relkind = 'r'""",
    )
    assert {r[0] for r in rows} == MARTS
    missing = [(t, c) for t, c, comment, _ in rows if not comment]
    assert not missing
    for table, column, comment, table_comment in rows:
        assert any("\u4e00" <= ch <= "\u9fff" for ch in comment), (table, column, comment)
        assert any(ch.isascii() and ch.isalpha() for ch in comment), (table, column, comment)
        assert table_comment, table


# --------------------------------------------------------------------------- corrections

ACTIVITIES_HEADER = "活动日期,结对编号,活动类型,活动名称,参与人数,其中党员人数,解决问题数,收集建议数\n"
PAIRINGS_HEADER = "结对编号,城市单位代码,城市单位名称,农村单位代码,农村单位名称,结对形式,结对日期,是否签订协议\n"


@pytest.fixture(scope="module")
def corrected(
    built: Built, pg_admin_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Built, dict[str, int]]]:
    """A clone of the built warehouse that then receives two files from 廉江市 (440881):

    - a correction of March's activities (two rows, one participant count written 30余);
    - a pairings report for April: LJ-DJ-YF changes its urban partner from 东街居委会 to
      西街居委会 (its rows from April on move with it; earlier ones stay).
    """
    name = f"pairstats_dbtc_{uuid.uuid4().hex[:10]}"
    create_database(pg_admin_url, name, built.name)
    url = with_database(pg_admin_url, name)
    home = tmp_path_factory.mktemp("home_corrected")
    settings = Settings.from_env({"PAIRSTATS_HOME": str(home), "PAIRSTATS_WAREHOUSE_URL": url})
    landing = tmp_path_factory.mktemp("landing_corrected")
    try:
        old = _rows(
            url,
            """select max(submission_id) from audit.submission_files
               where reporting_unit_code = '440881' and period = '2025-03' and 'activities' = any(record_kinds)""",
        )[0][0]
        outcomes = _ingest(
            url,
            settings,
            [
                _write(
                    landing / "440881" / "440881_2025-03_activities_更正.csv",
                    ACTIVITIES_HEADER
                    + "2025-03-05,LJ-LZ-HX,主题党日,三月主题党日（更正）,30余,20,1,2\n"
                    + "2025-03-18,LJ-DJ-YF,培训,农村电商培训（更正）,45,10,,\n",
                ),
                _write(
                    landing / "440881" / "440881_2025-04_pairings.csv",
                    PAIRINGS_HEADER + "LJ-DJ-YF,440881001003,西街居委会,440881105206,油房村,一对一,2024-03-05,是\n",
                ),
            ],
        )
        assert [o.status for o in outcomes] == ["loaded", "loaded"], [o.to_dict() for o in outcomes]
        ids = {"old": old, "correction": outcomes[0].submission_id, "pairings": outcomes[1].submission_id}
        c = Built(url=url, name=name, settings=settings, demo=built.demo)
        c.xmins_before = {"rpt_region_rollup": _xmins(url, "rpt_region_rollup", "rollup_id", "marts_build")}
        t0 = time.perf_counter()
        c.ok["incremental"] = bool(dbt.build(settings))
        c.seconds["incremental"] = time.perf_counter() - t0
        c.xmins_after = {"rpt_region_rollup": _xmins(url, "rpt_region_rollup", "rollup_id")}
        _copy_facts(url, "after_correction", COMPARED)
        facts = ["fct_activity_counts", "fct_income_effects", "fct_projects", "rpt_region_rollup"]
        c.ok["full_refresh"] = bool(dbt.build(settings, full_refresh=True, select=facts))
        yield c, ids
    finally:
        drop_database(pg_admin_url, name)


def test_correction_supersedes_and_keeps_the_old_rows(corrected: tuple[Built, dict[str, int]]) -> None:
    c, ids = corrected
    assert c.ok == {"incremental": True, "full_refresh": True}
    facts = _rows(
        c.url,
        """select pairing_code, activity_type, activity_count, participants, party_member_participants,
                  problems_resolved, suggestions_collected, is_approximate, source_submission_id
           from marts.fct_activity_counts
           where reporting_unit_code = '440881' and period_code = '2025-03' order by 1""",
    )
    assert facts == [
        ("LJ-DJ-YF", "training", 1, 45, 10, 0, 0, False, ids["correction"]),
        ("LJ-LZ-HX", "themed_party_day", 1, 30, 20, 1, 2, True, ids["correction"]),
    ]
    # the superseded rows are still there, marked, with the correction that replaced them
    old_rows = _rows(c.url, "select count(*) from staging.stg_raw__activities where submission_id = %s", ids["old"])
    assert old_rows[0][0] > 2
    versions = _rows(
        c.url,
        """select bool_or(is_current), min(superseded_by_submission_id), min(current_submission_id), count(*)
           from intermediate.int_activities_versioned where submission_id = %s""",
        ids["old"],
    )
    assert versions == [(False, ids["correction"], ids["correction"], old_rows[0][0])]
    kinds = _rows(
        c.url,
        """select submission_id, is_current from intermediate.int_submission_kinds_versioned
           where reporting_unit_code = '440881' and period_code = '2025-03' and record_kind = 'activities'
           order by submission_id""",
    )
    assert kinds == [(ids["old"], False), (ids["correction"], True)]
    # the roll-up follows: 廉江市's year loses the old March and gains the correction
    demo = c.demo.totals_by_month[("440881", "2025-03")]
    year = _rows(
        c.url,
        """select activity_count, participants from marts.rpt_region_rollup
           where attribution = 'reporting_unit' and tree = 'civil' and region_code = '440881'
             and period_code = '2025'""",
    )[0]
    total = c.demo.totals["440881"]
    assert year == (total["activities"] - demo["activities"] + 2, total["participants"] - demo["participants"] + 75)


def test_pairing_change_moves_later_rows_and_keeps_history(corrected: tuple[Built, dict[str, int]]) -> None:
    c, ids = corrected
    by_period = _rows(
        c.url,
        """select distinct period_code < '2025-04', urban_unit_code, pairing_submission_id
           from marts.fct_income_effects where pairing_id = '440881/LJ-DJ-YF' order by 1""",
    )
    assert [(early, urban) for early, urban, _ in by_period] == [(False, "440881001003"), (True, "440881001001")]
    assert by_period[0][2] == ids["pairings"]
    history = _rows(
        c.url,
        """select urban_unit_code, is_current, valid_to is null from marts.dim_pairing
           where pairing_id = '440881/LJ-DJ-YF' order by valid_from""",
    )
    assert history == [("440881001001", False, False), ("440881001003", True, True)]


def test_incremental_after_correction_equals_full_refresh(corrected: tuple[Built, dict[str, int]]) -> None:
    c, _ = corrected
    for table in COMPARED:
        assert _differences(c.url, "after_correction", table) == (0, 0), table


def test_rollup_after_correction_rebuilds_the_corrected_and_reattributed_periods_only(
    corrected: tuple[Built, dict[str, int]],
) -> None:
    """March corrected (its quarter and year with it), April on re-attributed by the new
    pairing report: January and February's month rows are left as they were."""
    c, _ = corrected
    before, after = c.xmins_before["rpt_region_rollup"], c.xmins_after["rpt_region_rollup"]
    periods = dict(_rows(c.url, "select rollup_id, period_code from after_correction.rpt_region_rollup"))
    rewritten = {periods[k] for k in before if k in periods and after.get(k) != before[k]}
    assert {"2025-03", "2025Q1", "2025"} <= rewritten
    assert not rewritten & {"2025-01", "2025-02"}
    gone = {k for k in before if k not in after}  # groups the correction emptied are deleted
    assert all(k not in periods for k in gone)
