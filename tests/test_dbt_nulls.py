"""Contract v1.1 in the marts: income measures may be empty (NULL = not reported, never 0),
and a pairings-only file is a registration without a period.

One warehouse for the module (cloned from the session's template). Its rows are written
with SQL straight into ``audit.submission_files`` and ``raw.*`` — as the ingester records
them — so these tests depend on the dbt project and ``ingestion/schema.sql`` only.

Step 1, then a build:

- 库尔勒市 (652801) registers KE-1 and KE-2 in two pairings-only files (no period); the file
  of KE-2 has a second row in quarantine. Its March income report gives KE-1's villagers'
  income only (the five other measures empty).
- 廉江市 (440881) reports quarterly: 2025Q1 with its pairing LJ-X (rural unit 油房村) and an
  income row, then 2025Q2 and 2025Q3 income only.

Step 2, then an incremental build (and a full refresh to compare):

- 652801 corrects March: KE-1 as before, and KE-2 with 3.5 t of produce only;
- 652801's first registration is re-run (``reprocess_of``);
- 440881 sends a registration of LJ-X with a new rural unit (山腰村), paired on 2025-05-10:
  it counts from 2025-05-01, after the 2025Q1 report — Q1 and Q2 (start 2025-04-01) stay on
  油房村, Q3 moves.

Builds in this module: 3 (full, incremental, full refresh of the facts and the roll-up).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.types.json import Jsonb

from ingestion import dbt
from ingestion.config import Settings
from ingestion.warehouse import apply_schema, with_database
from tests.conftest import create_database, drop_database

pytestmark = pytest.mark.slow

INCOME_MEASURES = [
    "collective_income_increase_yuan",
    "villager_income_increase_yuan",
    "produce_sold_tonnes",
    "produce_sales_yuan",
    "jobs_created",
    "households_benefited",
]
ROLLUP_MEASURES = [
    "activity_count",
    "participants",
    "party_member_participants",
    "problems_resolved",
    "suggestions_collected",
    "project_count",
    "project_households_benefited",
    "jobs_created",
    "households_benefited",
    "investment_yuan",
    "land_mu",
    "collective_income_increase_yuan",
    "villager_income_increase_yuan",
    "produce_sold_tonnes",
    "produce_sales_yuan",
]
COMPARED = ["fct_income_effects", "fct_activity_counts", "fct_projects", "rpt_region_rollup"]

KORLA, LIANJIANG = "652801", "440881"
KORLA_URBAN = "652801412005"  # 雅居社区
KE1_RURAL, KE2_RURAL = "652801207200", "652801207201"  # 托布力其村, 上牙克托格拉克村
LJ_URBAN = "440881001001"  # 东街居委会
YOUFANG, SHANYAO = "440881105206", "440881105201"  # 油房村, 山腰村
QUARTER_INCOME = {  # 440881's LJ-X, every quarter: all six measures
    "collective_income_increase_yuan": Decimal("1000.00"),
    "villager_income_increase_yuan": Decimal("2000.00"),
    "produce_sold_tonnes": Decimal("1.500"),
    "produce_sales_yuan": Decimal("3000.00"),
    "jobs_created": 2,
    "households_benefited": 5,
}


# --------------------------------------------------------------------------- writing rows


def _period_bounds(period: str | None) -> tuple[dt.date | None, dt.date | None]:
    if period is None:
        return None, None
    year = int(period[:4])
    if "Q" in period:
        first_month = 3 * (int(period[-1]) - 1) + 1
        months = 3
    else:
        first_month, months = int(period[5:]), 1
    start = dt.date(year, first_month, 1)
    after = dt.date(year + (first_month + months - 1) // 12, (first_month + months - 1) % 12 + 1, 1)
    return start, after - dt.timedelta(days=1)


def _pairing(code: str, urban: str, rural: str, paired_on: str) -> dict[str, Any]:
    return {
        "pairing_code": code,
        "urban_unit_code": urban,
        "rural_unit_code": rural,
        "pairing_form": "one_to_one",
        "paired_on": dt.date.fromisoformat(paired_on),
        "agreement_signed": True,
    }


def _income(code: str, **measures: Any) -> dict[str, Any]:
    return {"pairing_code": code, **{m: measures.get(m) for m in INCOME_MEASURES}}


def _file(
    conn: psycopg.Connection,
    *,
    unit: str,
    period: str | None,
    name: str,
    pairings: list[dict[str, Any]] = (),  # type: ignore[assignment]
    income: list[dict[str, Any]] = (),  # type: ignore[assignment]
    quarantined: int = 0,
    reprocess_of: int | None = None,
) -> int:
    """One loaded file, as the ingester records it: its audit row, then its raw rows."""
    start, end = _period_bounds(period)
    kinds = [k for k, rows in (("pairings", pairings), ("income_effects", income)) if rows]
    if reprocess_of is None:
        file_hash = hashlib.sha256(f"{name}/{uuid.uuid4()}".encode()).hexdigest()
    else:  # a re-run reads the archived bytes of its original
        file_hash = conn.execute(
            "select file_hash from audit.submission_files where submission_id = %s", (reprocess_of,)
        ).fetchone()[0]
    loaded = len(pairings) + len(income)
    submission_id = conn.execute(
        """insert into audit.submission_files
               (file_hash, original_name, size_bytes, file_format, reporting_unit_code, period, period_start,
                period_end, record_kinds, status, rows_received, rows_loaded, rows_quarantined, reprocess_of,
                processed_at, run_id)
           values (%s, %s, 100, 'csv', %s, %s, %s, %s, %s, 'loaded', %s, %s, %s, %s, now(), 'test_dbt_nulls')
           returning submission_id""",
        (file_hash, name, unit, period, start, end, kinds, loaded + quarantined, loaded, quarantined, reprocess_of),
    ).fetchone()[0]
    for row_number, p in enumerate(pairings, start=2):
        conn.execute(
            """insert into raw.pairings (submission_id, file_hash, source_row, reporting_unit_code, period,
                   pairing_code, urban_unit_code, rural_unit_code, pairing_form, paired_on, agreement_signed)
               values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)""",
            (
                submission_id,
                file_hash,
                row_number,
                unit,
                period,
                p["pairing_code"],
                p["urban_unit_code"],
                p["rural_unit_code"],
                p["pairing_form"],
                p["paired_on"],
                p["agreement_signed"],
            ),
        )
    for row_number, i in enumerate(income, start=2):
        conn.execute(
            sql.SQL(
                """insert into raw.income_effects (submission_id, file_hash, source_row, reporting_unit_code,
                       period, pairing_code, {})
                   values (%s, %s, %s, %s, %s, %s, {})"""
            ).format(
                sql.SQL(", ").join(map(sql.Identifier, INCOME_MEASURES)),
                sql.SQL(", ").join(sql.Placeholder() * len(INCOME_MEASURES)),
            ),
            (submission_id, file_hash, row_number, unit, period, i["pairing_code"], *(i[m] for m in INCOME_MEASURES)),
        )
    for offset in range(quarantined):
        conn.execute(
            """insert into quarantine.rejected_rows (submission_id, file_hash, record_kind, source_row, column_name,
                   value, reason_code, reason_zh, reason_en, row_data)
               values (%s, %s, %s, %s, 'urban_unit_code', '9999', 'R007_BAD_DIVISION_CODE', '区划代码格式无效',
                   'Division code is malformed', %s)""",
            (submission_id, file_hash, kinds[0], 2 + loaded + offset, Jsonb({"城市单位代码": "9999"})),
        )
    return submission_id


# --------------------------------------------------------------------------- reading


def _rows(url: str, query: str, *args: object) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(query, args or None).fetchall()


def _dicts(url: str, query: str, *args: object) -> list[dict[str, Any]]:
    with psycopg.connect(url) as conn, conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        return cur.execute(query, args or None).fetchall()


def _rollup(url: str, attribution: str, region: str, period: str) -> dict[str, Any]:
    rows = _dicts(
        url,
        """select * from marts.rpt_region_rollup
           where attribution = %s and tree = 'civil' and region_code = %s and period_code = %s""",
        attribution,
        region,
        period,
    )
    assert len(rows) == 1, (attribution, region, period, rows)
    return rows[0]


def _income_facts(url: str, unit: str) -> dict[tuple[str, str], dict[str, Any]]:
    rows = _dicts(url, "select * from marts.fct_income_effects where reporting_unit_code = %s", unit)
    return {(r["pairing_code"], r["period_code"]): r for r in rows}


def _versions(url: str, ids: list[int]) -> dict[int, tuple]:
    rows = _rows(
        url,
        """select submission_id, period, version_number, supersedes_submission_id, superseded_by_submission_id,
                  current_submission_id, is_current
           from audit.submission_versions where submission_id = any(%s) and record_kind = 'pairings'""",
        ids,
    )
    return {r[0]: r[1:] for r in rows}


@dataclass
class Step:
    """What the marts held after one build."""

    ok: bool
    facts: dict[str, dict[tuple[str, str], dict[str, Any]]] = field(default_factory=dict)
    rollup: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)
    versions: dict[int, tuple] = field(default_factory=dict)


@dataclass
class Warehouse:
    url: str
    settings: Settings
    ids: dict[str, int] = field(default_factory=dict)
    steps: dict[str, Step] = field(default_factory=dict)
    full_refresh_ok: bool = False


ROLLUP_KEYS = [  # (attribution, region, period) read after each step
    ("reporting_unit", KORLA, "2025-03"),
    ("reporting_unit", KORLA, "2025Q1"),
    ("reporting_unit", KORLA, "2025"),
    ("reporting_unit", "65", "2025-03"),
    ("rural_unit", KE1_RURAL, "2025-03"),
    ("reporting_unit", LIANJIANG, "2025Q1"),
    ("reporting_unit", LIANJIANG, "2025"),
    ("rural_unit", YOUFANG, "2025"),
]


def _read_step(url: str, ok: bool, ids: dict[str, int]) -> Step:
    step = Step(ok=bool(ok))
    step.facts = {unit: _income_facts(url, unit) for unit in (KORLA, LIANJIANG)}
    for key in ROLLUP_KEYS:
        step.rollup[key] = _rollup(url, *key)
    step.versions = _versions(url, list(ids.values()))
    return step


# --------------------------------------------------------------------------- fixture


@pytest.fixture(scope="module")
def warehouse(pg_admin_url: str, template_db: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Warehouse]:
    name = f"pairstats_dbtn_{uuid.uuid4().hex[:10]}"
    create_database(pg_admin_url, name, template_db)
    url = with_database(pg_admin_url, name)
    home = tmp_path_factory.mktemp("home_nulls")
    settings = Settings.from_env({"PAIRSTATS_HOME": str(home), "PAIRSTATS_WAREHOUSE_URL": url})
    w = Warehouse(url=url, settings=settings)
    try:
        with psycopg.connect(url) as conn:
            w.ids["ke1"] = _file(
                conn,
                unit=KORLA,
                period=None,
                name="652801_结对关系_KE-1.csv",
                pairings=[_pairing("KE-1", KORLA_URBAN, KE1_RURAL, "2024-03-01")],
            )
            w.ids["ke2"] = _file(
                conn,
                unit=KORLA,
                period=None,
                name="652801_结对关系_KE-2.csv",
                pairings=[_pairing("KE-2", KORLA_URBAN, KE2_RURAL, "2024-06-15")],
                quarantined=1,
            )
            w.ids["march"] = _file(
                conn,
                unit=KORLA,
                period="2025-03",
                name="652801_2025-03_收益成效.csv",
                income=[_income("KE-1", villager_income_increase_yuan=Decimal("12000.00"))],
            )
            w.ids["q1"] = _file(
                conn,
                unit=LIANJIANG,
                period="2025Q1",
                name="440881_2025Q1.xlsx",
                pairings=[_pairing("LJ-X", LJ_URBAN, YOUFANG, "2024-03-05")],
                income=[_income("LJ-X", **QUARTER_INCOME)],
            )
            for quarter in ("2025Q2", "2025Q3"):
                w.ids[quarter] = _file(
                    conn,
                    unit=LIANJIANG,
                    period=quarter,
                    name=f"440881_{quarter}_收益成效.csv",
                    income=[_income("LJ-X", **QUARTER_INCOME)],
                )
        w.steps["first"] = _read_step(url, dbt.build(settings), w.ids)

        with psycopg.connect(url) as conn:
            w.ids["march_correction"] = _file(
                conn,
                unit=KORLA,
                period="2025-03",
                name="652801_2025-03_收益成效（更正）.csv",
                income=[
                    _income("KE-1", villager_income_increase_yuan=Decimal("12000.00")),
                    _income("KE-2", produce_sold_tonnes=Decimal("3.5")),
                ],
            )
            w.ids["ke1_rerun"] = _file(
                conn,
                unit=KORLA,
                period=None,
                name="652801_结对关系_KE-1.csv",
                pairings=[_pairing("KE-1", KORLA_URBAN, KE1_RURAL, "2024-03-01")],
                reprocess_of=w.ids["ke1"],
            )
            w.ids["lj_registration"] = _file(
                conn,
                unit=LIANJIANG,
                period=None,
                name="440881_结对关系变更.csv",
                pairings=[_pairing("LJ-X", LJ_URBAN, SHANYAO, "2025-05-10")],
            )
        w.steps["second"] = _read_step(url, dbt.build(settings), w.ids)

        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("create schema after_incremental")
            for table in COMPARED:
                conn.execute(
                    sql.SQL("create table {} as table {}").format(
                        sql.Identifier("after_incremental", table), sql.Identifier("marts", table)
                    )
                )
        w.full_refresh_ok = bool(dbt.build(settings, full_refresh=True, select=COMPARED))
        yield w
    finally:
        drop_database(pg_admin_url, name)


# --------------------------------------------------------------------------- the schema


def test_schema_makes_income_measures_and_pairing_periods_nullable_on_old_warehouses(db: psycopg.Connection) -> None:
    """A warehouse created when all six measures and raw.pairings.period were required
    converges: applying schema.sql again drops the NOT NULLs (and a second time changes
    nothing)."""
    columns = [("income_effects", m) for m in INCOME_MEASURES] + [("pairings", "period")]
    for table, column in columns:
        db.execute(
            sql.SQL("alter table {} alter column {} set not null").format(
                sql.Identifier("raw", table), sql.Identifier(column)
            )
        )
    db.commit()
    apply_schema(db)
    apply_schema(db)
    nullable = dict(
        ((t, c), n)
        for t, c, n in db.execute(
            """select table_name, column_name, is_nullable from information_schema.columns
               where table_schema = 'raw' and table_name in ('income_effects', 'pairings')"""
        ).fetchall()
    )
    assert {key: nullable[key] for key in columns} == dict.fromkeys(columns, "YES")
    # the rest of the row stays required
    assert (nullable[("income_effects", "pairing_code")], nullable[("pairings", "paired_on")]) == ("NO", "NO")


# --------------------------------------------------------------------------- builds


def test_every_build_passes_with_all_tests(warehouse: Warehouse) -> None:
    assert [warehouse.steps["first"].ok, warehouse.steps["second"].ok, warehouse.full_refresh_ok] == [True] * 3


def test_incremental_equals_full_refresh(warehouse: Warehouse) -> None:
    with psycopg.connect(warehouse.url) as conn:
        for table in COMPARED:
            copy, mart = sql.Identifier("after_incremental", table), sql.Identifier("marts", table)
            for a, b in ((copy, mart), (mart, copy)):
                query = sql.SQL("select count(*) from (table {} except all table {}) as d").format(a, b)
                assert conn.execute(query).fetchone()[0] == 0, table


# --------------------------------------------------------------------------- (a) NULL is not 0


def test_income_fact_keeps_unreported_measures_null(warehouse: Warehouse) -> None:
    first = warehouse.steps["first"].facts[KORLA]
    assert list(first) == [("KE-1", "2025-03")]
    assert {m: first["KE-1", "2025-03"][m] for m in INCOME_MEASURES} == {
        **dict.fromkeys(INCOME_MEASURES),
        "villager_income_increase_yuan": Decimal("12000.00"),
    }
    second = warehouse.steps["second"].facts[KORLA]
    assert {key: {m: row[m] for m in INCOME_MEASURES if row[m] is not None} for key, row in second.items()} == {
        ("KE-1", "2025-03"): {"villager_income_increase_yuan": Decimal("12000.00")},
        ("KE-2", "2025-03"): {"produce_sold_tonnes": Decimal("3.500")},
    }
    assert {row["source_submission_id"] for row in second.values()} == {warehouse.ids["march_correction"]}


def test_rollup_leaves_unreported_measures_null_and_counts_the_rows_behind(warehouse: Warehouse) -> None:
    for key in [k for k in ROLLUP_KEYS if k[1] in (KORLA, "65")]:
        row = warehouse.steps["first"].rollup[key]
        reported = {"villager_income_increase_yuan"}
        assert row["villager_income_increase_yuan"] == Decimal("12000.00"), key
        assert row["villager_income_increase_wan_yuan"] == Decimal("1.200000"), key
        for measure in ROLLUP_MEASURES:
            assert row[f"{measure}_rows"] == (1 if measure in reported else 0), (key, measure)
            if measure not in reported:
                assert row[measure] is None, (key, measure)  # no activity, project or other income figure
        assert (row["produce_sales_wan_yuan"], row["investment_wan_yuan"], row["land_hectares"]) == (None,) * 3
        assert (row["active_pairing_count"], row["is_approximate"]) == (0, False)

    march = warehouse.steps["second"].rollup["reporting_unit", KORLA, "2025-03"]
    assert (march["villager_income_increase_yuan"], march["villager_income_increase_yuan_rows"]) == (
        Decimal("12000.00"),
        1,
    )
    assert (march["produce_sold_tonnes"], march["produce_sold_tonnes_rows"]) == (Decimal("3.500"), 1)
    for measure in ("collective_income_increase_yuan", "produce_sales_yuan", "jobs_created", "households_benefited"):
        assert (march[measure], march[f"{measure}_rows"]) == (None, 0), measure
    assert (march["activity_count"], march["activity_count_rows"]) == (None, 0)
    # KE-1's village reached its villagers' income only: KE-2's produce went to KE-2's village
    village = warehouse.steps["second"].rollup["rural_unit", KE1_RURAL, "2025-03"]
    assert (village["villager_income_increase_yuan"], village["villager_income_increase_yuan_rows"]) == (
        Decimal("12000.00"),
        1,
    )
    assert (village["produce_sold_tonnes"], village["produce_sold_tonnes_rows"]) == (None, 0)
    other = _rollup(warehouse.url, "rural_unit", KE2_RURAL, "2025-03")
    assert (other["produce_sold_tonnes"], other["produce_sold_tonnes_rows"]) == (Decimal("3.500"), 1)
    assert (other["villager_income_increase_yuan"], other["villager_income_increase_yuan_rows"]) == (None, 0)


def test_rollup_of_a_full_report_counts_every_row(warehouse: Warehouse) -> None:
    """440881 reports all six measures each quarter: sums over its quarters, rows per measure."""
    year = warehouse.steps["second"].rollup["reporting_unit", LIANJIANG, "2025"]
    for measure, value in QUARTER_INCOME.items():
        assert (year[measure], year[f"{measure}_rows"]) == (value * 3, 3), measure
    quarter = warehouse.steps["second"].rollup["reporting_unit", LIANJIANG, "2025Q1"]
    assert (quarter["produce_sold_tonnes"], quarter["produce_sold_tonnes_rows"]) == (Decimal("1.500"), 1)
    # a quarterly report has no month row
    months = _rows(
        warehouse.url,
        """select count(*) from marts.rpt_region_rollup
           where region_code = %s and period_grain = 'month'""",
        LIANJIANG,
    )
    assert months == [(0,)]


def test_outliers_ignore_unreported_measures(warehouse: Warehouse) -> None:
    measures = _rows(
        warehouse.url,
        """select pairing_code, measure, value from marts.rpt_outliers
           where reporting_unit_code = %s order by 1, 2""",
        KORLA,
    )
    assert measures == [
        ("KE-1", "villager_income_increase_yuan", Decimal("12000.00")),
        ("KE-2", "produce_sold_tonnes", Decimal("3.500")),
    ]


# --------------------------------------------------------------------------- (b) registrations


def test_registrations_have_no_period_and_are_never_superseded_by_another_file(warehouse: Warehouse) -> None:
    ids = warehouse.ids
    ke1, ke2, rerun = ids["ke1"], ids["ke2"], ids["ke1_rerun"]
    # period, version, supersedes, superseded_by, current, is_current
    assert warehouse.steps["first"].versions[ke1] == (None, 1, None, None, ke1, True)
    assert warehouse.steps["first"].versions[ke2] == (None, 1, None, None, ke2, True)
    second = warehouse.steps["second"].versions
    assert second[ke1] == (None, 1, None, rerun, rerun, False)  # only its own re-run replaces it
    assert second[rerun] == (None, 2, ke1, None, rerun, True)
    assert second[ke2] == (None, 1, None, None, ke2, True)  # the other registration stays current
    # 440881's registration does not replace the pairings of its 2025Q1 report either
    assert second[ids["q1"]] == ("2025Q1", 1, None, None, ids["q1"], True)
    assert second[ids["lj_registration"]][-1] is True
    kinds = _rows(
        warehouse.url,
        """select submission_id, period_code, period_start, period_grain, is_current
           from intermediate.int_submission_kinds_versioned
           where reporting_unit_code = %s and record_kind = 'pairings' order by submission_id""",
        KORLA,
    )
    assert kinds == [(ke1, None, None, None, False), (ke2, None, None, None, True), (rerun, None, None, None, True)]
    raw = _rows(
        warehouse.url,
        "select pairing_code, period_code from staging.stg_raw__pairings where reporting_unit_code = %s order by 1",
        KORLA,
    )
    assert raw == [("KE-1", None), ("KE-1", None), ("KE-2", None)]


def test_registered_pairings_are_in_the_dimension_and_give_the_facts_their_units(warehouse: Warehouse) -> None:
    ids = warehouse.ids
    pairings = _rows(
        warehouse.url,
        """select pairing_code, rural_unit_code from marts.dim_pairing
           where reporting_unit_code = %s and is_current order by 1""",
        KORLA,
    )
    assert pairings == [("KE-1", KE1_RURAL), ("KE-2", KE2_RURAL)]
    versions = _rows(
        warehouse.url,
        """select pairing_code, source_submission_id, reported_period_code, reported_from, effective_from::text,
                  effective_to::text
           from intermediate.int_pairings_historised where reporting_unit_code = %s order by 1""",
        KORLA,
    )
    # a registration counts from the month its pairing took effect; alone, it is in effect throughout
    assert versions == [
        ("KE-1", ids["ke1_rerun"], None, dt.date(2024, 3, 1), "-infinity", "infinity"),
        ("KE-2", ids["ke2"], None, dt.date(2024, 6, 1), "-infinity", "infinity"),
    ]
    facts = warehouse.steps["second"].facts[KORLA]
    assert {
        k[0]: (f["urban_unit_code"], f["rural_unit_code"], f["pairing_submission_id"]) for k, f in facts.items()
    } == {
        "KE-1": (KORLA_URBAN, KE1_RURAL, ids["ke1_rerun"]),
        "KE-2": (KORLA_URBAN, KE2_RURAL, ids["ke2"]),
    }


def test_quality_checks_keep_registrations(warehouse: Warehouse) -> None:
    """The quarantined row of a registration is found (unit × empty period); a registration is
    no periodic report for the completeness mart."""
    checks = _dicts(
        warehouse.url,
        """select check_name, outcome, failing_rows from intermediate.int_quality_checks
           where reporting_unit_code = %s and period_code is null order by check_name""",
        KORLA,
    )
    assert [(c["check_name"], c["outcome"], c["failing_rows"]) for c in checks] == [
        ("fact_integrity", "pass", 0),  # a per-unit check: its period is always empty
        ("quarantined_rows", "fail", 1),
        ("refused_files", "pass", 0),
        ("row_reconciliation", "pass", 0),
        ("total_row_reconciliation", "pass", 0),
    ]
    completeness = _rows(
        warehouse.url,
        """select period_code, received_submission_id from marts.rpt_reporting_completeness
           where reporting_unit_code = %s and received = 1 order by 1""",
        KORLA,
    )
    assert completeness == [("2025-03", warehouse.ids["march"])]


# --------------------------------------------------------------------------- (c) registration vs report


def test_registration_changes_the_pairing_from_the_month_it_took_effect(warehouse: Warehouse) -> None:
    ids = warehouse.ids

    def attribution(step: str) -> dict[str, tuple[str, int]]:
        facts = warehouse.steps[step].facts[LIANJIANG]
        return {period: (f["rural_unit_code"], f["pairing_submission_id"]) for (_, period), f in facts.items()}

    assert attribution("first") == dict.fromkeys(("2025Q1", "2025Q2", "2025Q3"), (YOUFANG, ids["q1"]))
    # registered with paired_on 2025-05-10: in effect from 2025-05-01, after the 2025Q1 report;
    # 2025Q2 starts on 2025-04-01, before it
    assert attribution("second") == {
        "2025Q1": (YOUFANG, ids["q1"]),
        "2025Q2": (YOUFANG, ids["q1"]),
        "2025Q3": (SHANYAO, ids["lj_registration"]),
    }
    versions = _rows(
        warehouse.url,
        """select source_submission_id, rural_unit_code, reported_from, effective_from::text, effective_to::text,
                  is_latest
           from intermediate.int_pairings_historised where pairing_id = %s order by report_number""",
        f"{LIANJIANG}/LJ-X",
    )
    assert versions == [
        (ids["q1"], YOUFANG, dt.date(2025, 1, 1), "-infinity", "2025-05-01", False),
        (ids["lj_registration"], SHANYAO, dt.date(2025, 5, 1), "2025-05-01", "infinity", True),
    ]
    history = _rows(
        warehouse.url,
        "select rural_unit_code, is_current from marts.dim_pairing where pairing_id = %s order by valid_from",
        f"{LIANJIANG}/LJ-X",
    )
    assert history == [(YOUFANG, False), (SHANYAO, True)]
    # the roll-up follows the facts: 油房村 keeps Q1 and Q2, 山腰村 gets Q3
    youfang = warehouse.steps["second"].rollup["rural_unit", YOUFANG, "2025"]
    assert (youfang["villager_income_increase_yuan"], youfang["villager_income_increase_yuan_rows"]) == (
        Decimal("4000.00"),
        2,
    )
    shanyao = _rollup(warehouse.url, "rural_unit", SHANYAO, "2025")
    assert (shanyao["villager_income_increase_yuan"], shanyao["villager_income_increase_yuan_rows"]) == (
        Decimal("2000.00"),
        1,
    )
