"""The nightly data-quality models (``dbt_project/models/{intermediate,marts}/quality/``) built
for real, with ``quality_as_of`` fixed to 2025-08-01.

One warehouse for the module (cloned from the session's template). It is filled through the
real ``Ingester`` with steady figures — the five demo units (``ingestion.demo.REGIONS``, two
pairings each), one JSON document per unit and month 2025-01..06, every file received three
days after its month (on time: the schedule's deadline is the 5th of the following month) —
so the outlier check has nothing to find (±3 %; the demo's figures vary by ±20 %, and with
five months of history most of its unit × periods show outliers). 奉节县 (500236) is in the
schedule from 2025-06 and never reports.

1. clean build: the only failure is the one the schedule implies (500236's June missing);
2. then problems are planted and the warehouse is built again (incremental):
   - 李沧区 (370213) sent January's file on 17 February: late, 12 days;
   - 廉江市 (440881) corrects June's activities: one pairing's participants typed 20× too
     large, the 合计 row still says the true total (an outlier and a W002 total mismatch);
   - 库尔勒市 (652801) corrects May's income effects: one villager income written 约<20×>
     (an approximate outlier: reported as 'approximate', not as a failure);
   - refused files: 999999 (F005, never resolved), 500235 2025-06 (F015, received after its
     loaded file: open), 652801 2025-06 (F015, received before its loaded file: resolved);
   - 第四师 (659008) corrects March's activities with one negative count (quarantined), received
     2025-07-30: it is also the only file of the last seven days (1 of 3 rows quarantined);
   - one raw row of 370213 2025-04 deleted: the file's rows no longer reconcile;
3. the nightly results are stored in audit.dq_runs / dq_results as the nightly run does, and
   ``rpt_data_quality_daily`` is built over them.

On a clone of that warehouse (``refreshed``): a ``--full-refresh`` run of the quality models
gives the same checks as the incremental build did; then a rule row of the schedule — every county-level unit under
深圳市 (4403) monthly from 2025-01 — is judged against the real register.

Builds in this module: 3 (full, incremental, the daily mart alone) and one compile; on the
clone, a full-refresh run and a run of the completeness models.
"""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import psycopg
import pytest
from psycopg import errors, sql

from ingestion import dbt
from ingestion.config import Settings
from ingestion.contract import RECORD_KINDS
from ingestion.warehouse import with_database
from tests.conftest import create_database, drop_database
from tests.quality_data import (
    MONTHS,
    UNITS,
    _activity,
    _activity_cells,
    _csv,
    _execute,
    _income_row,
    _ingest,
    _json_document,
    _pairings,
    _set_received,
    _sync_loaded_at,
    _write,
    income,
    participants,
)

pytestmark = pytest.mark.slow

AS_OF = "2025-08-01"
VARS = {"quality_as_of": AS_OF}
CHECKS = {
    "reporting_completeness",
    "outliers",
    "total_row_reconciliation",
    "row_reconciliation",
    "refused_files",
    "quarantined_rows",
    "fact_integrity",
    "freshness",
    "quarantine_growth",
}
QUALITY_MARTS = {"rpt_reporting_completeness", "rpt_outliers", "rpt_data_quality_daily"}
INT_QUALITY_CHECKS_COLUMNS = [
    ("check_name", "text"),
    ("severity", "text"),
    ("reporting_unit_code", "text"),
    ("period_code", "text"),
    ("outcome", "text"),
    ("observed_value", "numeric"),
    ("failing_rows", "integer"),
    ("detail_zh", "text"),
    ("detail_en", "text"),
    ("examples", "jsonb"),
    ("failure", "text"),
]
# deadlines of the months (the 5th of the following month) and days from each to AS_OF
DEADLINES = {m: dt.date(2025, int(m[5:]) + 1, 5) for m in MONTHS}
DAYS_MISSING = {m: (dt.date.fromisoformat(AS_OF) - d).days for m, d in DEADLINES.items()}
FENGJIE_MONTHS = ("2025-06",)  # 奉节县 (500236) is expected from June (seed reporting_schedule)
INFLATED = ("440881", "2025-06", 1)  # unit, month, pairing index: participants × 20
APPROXIMATE = ("652801", "2025-05", 0)  # unit, month, pairing index: villager income 约 × 20


# --------------------------------------------------------------------------- figures


# --------------------------------------------------------------------------- helpers


def _rows(url: str, query: str, *args: object) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(query, args or None).fetchall()


def _build(settings: Settings, url: str, *select: str) -> bool:
    args = ["build", "--vars", json.dumps(VARS)]
    if select:
        args += ["--select", *select]
    return dbt.run_dbt(args, url, settings=settings)


def _checks(url: str) -> dict[tuple[str, str | None, str | None], dict[str, Any]]:
    with psycopg.connect(url) as conn, conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        rows = cur.execute("select * from intermediate.int_quality_checks").fetchall()
    return {(r["check_name"], r["reporting_unit_code"], r["period_code"]): r for r in rows}


def _fails(checks: dict) -> set[tuple[str, str | None, str | None, str]]:
    return {(*key, r["failure"]) for key, r in checks.items() if r["outcome"] == "fail"}


def _store_run(url: str, run_id: str, as_of: str, started_at: str, status: str = "done") -> None:
    """What the nightly run does with int_quality_checks: one dq_runs row, the checks copied."""
    with psycopg.connect(url) as conn:
        conn.execute(
            """insert into audit.dq_runs (run_id, started_at, finished_at, as_of, status)
               values (%s, %s, %s, %s, %s)""",
            (run_id, started_at, started_at, as_of, status),
        )
        conn.execute(
            """insert into audit.dq_results (run_id, check_name, severity, reporting_unit_code, period_code,
                   outcome, observed_value, failing_rows, detail_zh, detail_en, examples)
               select %s, check_name, severity, reporting_unit_code, period_code, outcome, observed_value,
                   failing_rows, detail_zh, detail_en, examples
               from intermediate.int_quality_checks""",
            (run_id,),
        )


@dataclass
class Warehouse:
    url: str
    settings: Settings
    name: str = ""
    ok: dict[str, bool] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    clean: dict = field(default_factory=dict)  # int_quality_checks after the clean build
    daily_before_runs: int = -1  # rows of rpt_data_quality_daily with no run stored
    ids: dict[str, int] = field(default_factory=dict)  # planted files' submission ids


# --------------------------------------------------------------------------- the warehouse


@pytest.fixture(scope="module")
def warehouse(pg_admin_url: str, template_db: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Warehouse]:
    name = f"pairstats_dq_{uuid.uuid4().hex[:10]}"
    create_database(pg_admin_url, name, template_db)
    url = with_database(pg_admin_url, name)
    home = tmp_path_factory.mktemp("home_quality")
    landing = tmp_path_factory.mktemp("landing_quality")
    settings = Settings.from_env({"PAIRSTATS_HOME": str(home), "PAIRSTATS_WAREHOUSE_URL": url})
    w = Warehouse(url=url, settings=settings, name=name)
    try:
        # ---- 1. five units, six steady months each, all on time
        files = [
            _write(landing / unit / f"{unit}_{period}.json", json.dumps(_json_document(unit, i), ensure_ascii=False))
            for unit in UNITS
            for i, period in enumerate(MONTHS)
        ]
        outcomes = _ingest(url, settings, files)
        assert [o.status for o in outcomes] == ["loaded"] * len(files), [o.to_dict() for o in outcomes]
        assert sum(o.rows_quarantined for o in outcomes) == 0
        _execute(
            url,
            """update audit.submission_files
               set received_at = ((period_end + 3) + time '10:00') at time zone 'Asia/Shanghai'""",
        )
        _sync_loaded_at(url)
        t0 = time.perf_counter()
        w.ok["clean"] = _build(settings, url)
        w.seconds["clean"] = time.perf_counter() - t0
        w.clean = _checks(url)
        w.daily_before_runs = _rows(url, "select count(*) from marts.rpt_data_quality_daily")[0][0]
        _store_run(url, "night-0731", "2025-07-31", "2025-07-31 02:30:00+08")
        _store_run(url, "night-0801-first", AS_OF, "2025-08-01 02:30:00+08")

        # ---- 2. the problems
        unit, month, k = INFLATED
        i = MONTHS.index(month)
        rows = [_activity(unit, j, i) for j in range(2)]
        rows[k]["participants"] *= 20
        true_total = sum(participants(unit, j, i) for j in range(2))
        inflated = _write(
            landing / unit / f"{unit}_{month}_activities_更正.csv",
            _csv("activities", [_activity_cells(r) for r in rows], ["合计", "", "", "", true_total, 40, 2, 4]),
        )
        unit_a, month_a, k_a = APPROXIMATE
        i_a = MONTHS.index(month_a)
        income_rows = []
        for j in range(2):
            row = _income_row(unit_a, j, i_a)
            if j == k_a:
                row["villager_income_increase_yuan"] = f"约{int(row['villager_income_increase_yuan']) * 20}"
            income_rows.append([row[f.name] for f in RECORD_KINDS["income_effects"].fields])
        approximate = _write(
            landing / unit_a / f"{unit_a}_{month_a}_income_effects_更正.csv", _csv("income_effects", income_rows)
        )
        activity_header_only = _csv("activities", [])
        ghost = _write(
            landing / "999999" / "999999_2025-01_activities.csv",
            _csv("activities", [["2025-01-10", "XX-01", "主题党日", "无此单位", 10, 2, 0, 0]]),
        )
        empty_open = _write(landing / "500235" / "500235_2025-06_activities_补报.csv", activity_header_only)
        empty_resolved = _write(landing / "652801" / "652801_2025-06_activities_空表.csv", activity_header_only + "\n")
        bad_row = _activity("659008", 0, 2, count=-5)
        bad_row["party_member_participants"] = 0
        quarantined = _write(
            landing / "659008" / "659008_2025-03_activities_更正.csv",
            _csv(
                "activities",
                [_activity_cells(_activity("659008", j, 2)) for j in range(2)] + [_activity_cells(bad_row)],
            ),
        )
        planted = _ingest(url, settings, [inflated, approximate, ghost, empty_open, empty_resolved, quarantined])
        statuses = [
            (o.status, o.rows_quarantined, [e.code for e in o.errors], [x.code for x in o.warnings]) for o in planted
        ]
        assert statuses == [
            ("loaded", 0, [], ["W002_TOTAL_MISMATCH"]),
            ("loaded", 0, [], []),
            ("rejected", 0, ["F005_UNKNOWN_UNIT"], []),
            ("rejected", 0, ["F015_NO_DATA"], []),
            ("rejected", 0, ["F015_NO_DATA"], []),
            ("loaded", 1, ["R004_NEGATIVE"], []),  # a row-level error: the row is quarantined
        ], [o.to_dict() for o in planted]
        w.ids = dict(
            zip(
                ["inflated", "approximate", "ghost", "empty_open", "empty_resolved", "quarantined"],
                [o.submission_id for o in planted],
                strict=True,
            )
        )
        for key, received in {
            "inflated": "2025-07-10 09:00",
            "approximate": "2025-06-10 09:00",
            "ghost": "2025-02-02 09:00",
            "empty_open": "2025-07-20 09:00",
            "empty_resolved": "2025-07-02 09:00",  # 652801's June JSON arrived on the 3rd
            "quarantined": "2025-07-30 09:00",
        }.items():
            _set_received(url, w.ids[key], received)
        late = _rows(
            url,
            """select submission_id from audit.submission_files
               where reporting_unit_code = '370213' and period = '2025-01'""",
        )
        _set_received(url, late[0][0], "2025-02-17 09:30")
        _sync_loaded_at(url)
        _execute(
            url,
            """delete from raw.income_effects where ctid = (
                   select min(r.ctid) from raw.income_effects r
                   join audit.submission_files s using (submission_id)
                   where s.reporting_unit_code = '370213' and s.period = '2025-04')""",
        )
        t0 = time.perf_counter()
        w.ok["problems"] = _build(settings, url)
        w.seconds["problems"] = time.perf_counter() - t0

        # ---- 3. tonight's run stored, the daily mart built on the runs
        _store_run(url, "night-0801-second", AS_OF, "2025-08-01 03:10:00+08")
        t0 = time.perf_counter()
        w.ok["daily"] = _build(settings, url, "stg_audit__dq_results", "rpt_data_quality_daily")
        w.seconds["daily"] = time.perf_counter() - t0
        print(f"\ndbt build seconds: {w.seconds}")
        yield w
    finally:
        drop_database(pg_admin_url, name)


# --------------------------------------------------------------------------- builds


def test_every_build_passes_with_all_tests(warehouse: Warehouse) -> None:
    assert warehouse.ok == {"clean": True, "problems": True, "daily": True}


def test_int_quality_checks_has_exactly_the_agreed_columns(warehouse: Warehouse) -> None:
    columns = _rows(
        warehouse.url,
        """select column_name, data_type from information_schema.columns
           where table_schema = 'intermediate' and table_name = 'int_quality_checks' order by ordinal_position""",
    )
    assert columns == INT_QUALITY_CHECKS_COLUMNS
    kind = _rows(
        warehouse.url,
        "select relkind from pg_class where oid = 'intermediate.int_quality_checks'::regclass",
    )
    assert kind == [("r",)]  # a table: the nightly run copies it while dbt may rebuild the views


def test_bad_quality_as_of_does_not_compile(warehouse: Warehouse) -> None:
    args = [
        "compile",
        "--select",
        "int_quality_freshness",
        "--vars",
        json.dumps({"quality_as_of": "x'; drop table y; --"}),
    ]
    assert not dbt.run_dbt(args, warehouse.url, settings=warehouse.settings)


# --------------------------------------------------------------------------- the clean warehouse


def test_clean_warehouse_fails_only_what_the_schedule_implies(warehouse: Warehouse) -> None:
    checks = warehouse.clean
    assert {key[0] for key in checks} == CHECKS
    assert _fails(checks) == {("reporting_completeness", "500236", m, f"500236 {m}") for m in FENGJIE_MONTHS}
    assert not [key for key, r in checks.items() if r["outcome"] == "approximate"]
    # every scheduled unit × month is judged, one row each; the global checks have one row
    completeness = {key[1:] for key in checks if key[0] == "reporting_completeness"}
    assert completeness == {(u, m) for u in UNITS for m in MONTHS} | {("500236", m) for m in FENGJIE_MONTHS}
    global_checks = {key for key in checks if key[0] in ("freshness", "quarantine_growth")}
    assert global_checks == {("freshness", None, None), ("quarantine_growth", None, None)}
    freshness = checks[("freshness", None, None)]
    assert (freshness["outcome"], freshness["observed_value"]) == ("pass", 29)  # June files on 2025-07-03
    growth = checks[("quarantine_growth", None, None)]
    assert (growth["outcome"], growth["observed_value"], growth["failing_rows"]) == ("pass", None, 0)
    assert growth["detail_en"] == "no row received in the 7 days up to 2025-08-01"
    # the outlier check judged the units' months, and found nothing in steady figures
    outliers = [r for key, r in checks.items() if key[0] == "outliers"]
    assert outliers and all(r["outcome"] == "pass" and r["examples"] == [] for r in outliers)
    missing = checks[("reporting_completeness", "500236", "2025-06")]
    assert missing["observed_value"] == DAYS_MISSING["2025-06"] == 27
    assert missing["detail_zh"] == "未报送（截止 2025-07-05，截至 2025-08-01 已逾期 27 天）"
    assert missing["detail_en"] == "missing (deadline 2025-07-05, 27 days overdue on 2025-08-01)"
    assert all(r["failure"] is None for r in checks.values() if r["outcome"] != "fail")


def test_daily_mart_builds_empty_without_runs(warehouse: Warehouse) -> None:
    assert warehouse.daily_before_runs == 0


# --------------------------------------------------------------------------- the planted problems


def test_each_planted_problem_fails_its_check(warehouse: Warehouse) -> None:
    expected = {("reporting_completeness", "500236", m, f"500236 {m}") for m in FENGJIE_MONTHS} | {
        ("reporting_completeness", "370213", "2025-01", "370213 2025-01"),
        ("outliers", "440881", "2025-06", "440881 2025-06"),
        ("total_row_reconciliation", "440881", "2025-06", "440881 2025-06"),
        ("row_reconciliation", "370213", "2025-04", "370213 2025-04"),
        ("refused_files", "999999", "2025-01", "999999 2025-01"),
        ("refused_files", "500235", "2025-06", "500235 2025-06"),
        ("quarantined_rows", "659008", "2025-03", "659008 2025-03"),
        ("quarantine_growth", None, None, "quarantine_growth"),
    }
    checks = _checks(warehouse.url)
    assert _fails(checks) == expected
    approximate = {key for key, r in checks.items() if r["outcome"] == "approximate"}
    assert approximate == {("outliers", "652801", "2025-05")}
    severities = {key[0]: r["severity"] for key, r in checks.items()}
    assert severities == {
        "reporting_completeness": "error",
        "outliers": "warning",
        "total_row_reconciliation": "warning",
        "row_reconciliation": "error",
        "refused_files": "error",
        "quarantined_rows": "warning",
        "fact_integrity": "error",
        "freshness": "warning",
        "quarantine_growth": "warning",
    }
    assert all(r["outcome"] == "pass" for key, r in checks.items() if key[0] == "fact_integrity")
    assert {key[1] for key in checks if key[0] == "fact_integrity"} == set(UNITS)


def test_completeness_statuses_and_flags(warehouse: Warehouse) -> None:
    rows = _rows(
        warehouse.url,
        """select reporting_unit_code, period_code, status, days_late, deadline_date, is_expected,
                  expected, received, on_time, late, missing, pending
           from marts.rpt_reporting_completeness""",
    )
    got = {(r[0], r[1]): r[2:] for r in rows}
    assert len(got) == len(rows) == 5 * len(MONTHS) + len(FENGJIE_MONTHS)  # nothing unexpected: 999999 never loaded
    for unit in [*UNITS, "500236"]:
        for m in FENGJIE_MONTHS if unit == "500236" else MONTHS:
            if unit == "500236":
                want = ("missing", DAYS_MISSING[m], DEADLINES[m], True, 1, 0, 0, 0, 1, 0)
            elif (unit, m) == ("370213", "2025-01"):
                want = ("late", 12, DEADLINES[m], True, 1, 1, 0, 1, 0, 0)
            else:
                want = ("on_time", None, DEADLINES[m], True, 1, 1, 1, 0, 0, 0)
            assert got[(unit, m)] == want, (unit, m)
    # reporting rates per region (DHIS2 style): received / expected, on time / expected
    rates = _rows(
        warehouse.url,
        """select region_code, region_name, province_name, sum(received)::float / sum(expected),
                  sum(on_time)::float / sum(expected)
           from marts.rpt_reporting_completeness where is_expected group by 1, 2, 3 order by 1""",
    )
    assert rates == [
        ("3702", "青岛市", "山东省", 1.0, 5 / 6),
        ("4408", "湛江市", "广东省", 1.0, 1.0),
        ("5002", "县", "重庆市", 6 / 7, 6 / 7),
        ("6528", "巴音郭楞蒙古自治州", "新疆维吾尔自治区", 1.0, 1.0),
        ("6590", "自治区直辖县级行政区划", "新疆维吾尔自治区", 1.0, 1.0),
    ]
    # the earliest loaded file counts: the June correction of 440881 (received 07-10) is not the receipt
    first = _rows(
        warehouse.url,
        """select c.received_submission_id, s.original_name, c.received_date, c.unit_name
           from marts.rpt_reporting_completeness c
           join audit.submission_files s on s.submission_id = c.received_submission_id
           where c.reporting_unit_code = '440881' and c.period_code = '2025-06'""",
    )
    assert first == [(first[0][0], "440881_2025-06.json", dt.date(2025, 7, 3), "廉江市")]
    late = _checks(warehouse.url)[("reporting_completeness", "370213", "2025-01")]
    assert late["observed_value"] == 12
    assert late["detail_zh"] == "迟报 12 天（截止 2025-02-05，2025-02-17 收到）"
    assert late["detail_en"] == "12 days late (deadline 2025-02-05, received 2025-02-17)"
    assert late["examples"][0]["received_at"] == "2025-02-17T09:30:00+08:00"


def _expected_z(values: list[int], i: int) -> tuple[Decimal, Decimal, Decimal]:
    """Leave-one-out median, MAD and modified z of values[i], computed here independently."""

    def median(xs: list[Decimal]) -> Decimal:
        xs = sorted(xs)
        n = len(xs)
        return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2

    others = [Decimal(v) for j, v in enumerate(values) if j != i]
    med = median(others)
    mad = median([abs(x - med) for x in others])
    z = Decimal("0.6745") * (Decimal(values[i]) - med) / mad
    return med, mad, z.quantize(Decimal("0.0001"), ROUND_HALF_UP)


def test_planted_outlier_and_its_z_score(warehouse: Warehouse) -> None:
    unit, month, k = INFLATED
    series = [participants(unit, k, i) for i in range(len(MONTHS))]
    series[MONTHS.index(month)] *= 20
    pairing = _pairings(unit)[k].code
    rows = _rows(
        warehouse.url,
        """select period_code, value, history_periods, history_median, history_mad, modified_z, is_outlier,
                  direction, is_approximate
           from marts.rpt_outliers
           where reporting_unit_code = %s and pairing_code = %s and measure = 'participants'
           order by period_code""",
        unit,
        pairing,
    )
    assert [r[0] for r in rows] == list(MONTHS)
    for i, row in enumerate(rows):
        med, mad, z = _expected_z(series, i)
        assert row[1:6] == (series[i], 5, med, mad, z), row
        assert row[6:] == ((True, "high", False) if row[0] == month else (False, None, False)), row
    assert rows[-1][5] > 100  # twenty times the usual figure is far out
    check = _checks(warehouse.url)[("outliers", unit, month)]
    assert (check["outcome"], check["failing_rows"], check["observed_value"]) == ("fail", 1, rows[-1][5])
    [example] = check["examples"]
    assert (example["pairing_code"], example["measure"], example["period_code"]) == (pairing, "participants", month)
    assert (example["value"], example["direction"], example["is_approximate"]) == (series[-1], "high", False)
    assert Decimal(str(example["history_median"])) == rows[-1][3]
    assert Decimal(str(example["modified_z"])) == rows[-1][5]
    # nothing else in the warehouse is an outlier
    others = _rows(
        warehouse.url,
        "select reporting_unit_code, pairing_code, period_code, measure from marts.rpt_outliers where is_outlier",
    )
    unit_a, month_a, k_a = APPROXIMATE
    assert set(others) == {
        (unit, pairing, month, "participants"),
        (unit_a, _pairings(unit_a)[k_a].code, month_a, "villager_income_increase_yuan"),
    }


def test_approximate_outlier_is_reported_not_failed(warehouse: Warehouse) -> None:
    unit, month, k = APPROXIMATE
    row = _rows(
        warehouse.url,
        """select value, is_approximate, is_outlier, direction from marts.rpt_outliers
           where reporting_unit_code = %s and pairing_code = %s and period_code = %s
             and measure = 'villager_income_increase_yuan'""",
        unit,
        _pairings(unit)[k].code,
        month,
    )
    expected_value = int(income(unit, k, MONTHS.index(month))["villager_income_increase_yuan"]) * 20
    assert row == [(expected_value, True, True, "high")]
    check = _checks(warehouse.url)[("outliers", unit, month)]
    assert (check["outcome"], check["failure"], check["failing_rows"]) == ("approximate", None, 1)
    assert check["examples"][0]["is_approximate"] is True
    assert "约数" in check["detail_zh"] and "approximate" in check["detail_en"]


def test_file_checks_name_files_rows_and_reasons(warehouse: Warehouse) -> None:
    checks = _checks(warehouse.url)
    total = checks[("total_row_reconciliation", "440881", "2025-06")]
    assert (total["observed_value"], total["failing_rows"]) == (1, 1)
    [example] = total["examples"]
    assert example["submission_id"] == warehouse.ids["inflated"]
    assert (example["file_name"], example["column"]) == ("440881_2025-06_activities_更正.csv", "participants")
    assert example["message_zh"].startswith("合计行") and "Total row" in example["message_en"]

    rec = checks[("row_reconciliation", "370213", "2025-04")]
    assert (rec["observed_value"], rec["failing_rows"]) == (1, 1)
    assert rec["examples"][0] | {"submission_id": 0} == {
        "submission_id": 0,
        "file_name": "370213_2025-04.json",
        "rows_received": 4,
        "rows_loaded": 4,
        "rows_quarantined": 0,
        "raw_rows": 3,
        "quarantined_source_rows": 0,
    }

    ghost = checks[("refused_files", "999999", "2025-01")]
    assert (ghost["observed_value"], ghost["failing_rows"]) == (1, 1)
    assert [(e["code"], e["submission_id"]) for e in ghost["examples"]] == [
        ("F005_UNKNOWN_UNIT", warehouse.ids["ghost"])
    ]
    assert ghost["examples"][0]["received_at"] == "2025-02-02T09:00:00+08:00"
    assert checks[("refused_files", "500235", "2025-06")]["examples"][0]["code"] == "F015_NO_DATA"
    resolved = checks[("refused_files", "652801", "2025-06")]  # its June file loaded after the refusal
    assert (resolved["outcome"], resolved["observed_value"]) == ("pass", 0)

    q = checks[("quarantined_rows", "659008", "2025-03")]
    assert (q["observed_value"], q["failing_rows"]) == (1, 1)
    [reason] = q["examples"]
    assert (reason["reason_code"], reason["rows"]) == ("R004_NEGATIVE", 1)
    assert "-5" in reason["reason_zh"] and "negative" in reason["reason_en"]
    [first_row] = reason["first_rows"]
    assert (first_row["file_name"], first_row["row"]) == ("659008_2025-03_activities_更正.csv", 4)
    growth = checks[("quarantine_growth", None, None)]
    assert (growth["observed_value"], growth["failing_rows"]) == (Decimal("0.3333"), 1)
    assert [e["submission_id"] for e in growth["examples"]] == [warehouse.ids["quarantined"]]
    freshness = checks[("freshness", None, None)]
    assert (freshness["outcome"], freshness["observed_value"]) == ("pass", 2)  # the 2025-07-30 correction


# --------------------------------------------------------------------------- over time


def test_daily_mart_counts_the_latest_run_of_each_night(warehouse: Warehouse) -> None:
    url = warehouse.url
    nights = _rows(
        url, "select as_of_date, run_id, sum(checks) from marts.rpt_data_quality_daily group by 1, 2 order by 1"
    )
    clean_total = len(warehouse.clean)
    problem_total = len(_checks(url))
    assert nights == [
        (dt.date(2025, 7, 31), "night-0731", clean_total),
        (dt.date(2025, 8, 1), "night-0801-second", problem_total),
    ]
    rows = {
        (r[0].isoformat(), r[1], r[2]): r[3:]
        for r in _rows(
            url,
            """select as_of_date, region_code, check_name, region_name, severity, checks, passed, failed,
                      approximate, share_passed
               from marts.rpt_data_quality_daily""",
        )
    }
    # 重庆市 县 (5002): 云阳县 reports six months, 奉节县 never its one
    assert rows[("2025-07-31", "5002", "reporting_completeness")] == ("县", "error", 7, 6, 1, 0, Decimal("0.8571"))
    assert rows[("2025-08-01", "all", "quarantine_growth")] == ("全部 / all", "warning", 1, 0, 1, 0, Decimal("0"))
    assert rows[("2025-08-01", "all", "freshness")][0] == "全部 / all"
    assert rows[("2025-08-01", "unknown", "refused_files")] == ("未知 / unknown", "error", 1, 0, 1, 0, Decimal("0"))
    assert rows[("2025-08-01", "6528", "outliers")][2:6] == (6, 6, 0, 1)  # the approximate one passes
    assert rows[("2025-08-01", "3702", "reporting_completeness")][2:] == (6, 5, 1, 0, Decimal("0.8333"))
    assert {k[2] for k in rows} == CHECKS


def test_quality_marts_are_commented_and_readable_by_bi_reader(warehouse: Warehouse) -> None:
    rows = _rows(
        warehouse.url,
        """select c.relname, a.attname, col_description(c.oid, a.attnum), obj_description(c.oid, 'pg_class')
           from pg_class c
           join pg_namespace n on n.oid = c.relnamespace
           join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
           where n.nspname = 'marts' and c.relname = any(%s)""",
        list(QUALITY_MARTS),
    )
    assert {r[0] for r in rows} == QUALITY_MARTS
    for table, column, comment, table_comment in rows:
        assert comment and any("\u4e00" <= ch <= "\u9fff" for ch in comment), (table, column)
        assert any(ch.isascii() and ch.isalpha() for ch in comment), (table, column)
        assert table_comment, table
    with psycopg.connect(warehouse.url) as conn:
        conn.execute("set role bi_reader")
        for table in sorted(QUALITY_MARTS):
            conn.execute(sql.SQL("select * from {} limit 1").format(sql.Identifier("marts", table))).fetchall()
        conn.rollback()
        with pytest.raises(errors.InsufficientPrivilege):
            conn.execute("set role bi_reader")
            conn.execute("select * from intermediate.int_quality_checks limit 1")


# --------------------------------------------------------------------------- incremental = full, rules


SHENZHEN_RULE = ("under", "4403", "month", 5, 1, "2025-01", None, "深圳市各区：每月报送 / every district of Shenzhen")
COMPARED = ["int_quality_checks", "rpt_outliers", "rpt_reporting_completeness"]


@dataclass
class Refreshed:
    url: str
    ok: dict[str, bool] = field(default_factory=dict)
    differences: dict[str, tuple[int, int]] = field(default_factory=dict)
    before_rule: list[tuple] = field(default_factory=list)  # completeness rows before the rule row


def _relation(table: str) -> str:
    return f"{'intermediate' if table.startswith('int_') else 'marts'}.{table}"


@pytest.fixture(scope="module")
def refreshed(warehouse: Warehouse, pg_admin_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Refreshed]:
    name = f"pairstats_dqr_{uuid.uuid4().hex[:10]}"
    create_database(pg_admin_url, name, warehouse.name)
    url = with_database(pg_admin_url, name)
    settings = Settings.from_env(
        {"PAIRSTATS_HOME": str(tmp_path_factory.mktemp("home_refreshed")), "PAIRSTATS_WAREHOUSE_URL": url}
    )
    r = Refreshed(url=url)
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("create schema incremental")
            for table in COMPARED:
                conn.execute(f"create table incremental.{table} as table {_relation(table)}")
        # the quality models from scratch, on the same facts (a full refresh of the facts would
        # differ by the raw row deleted above, which the incremental facts keep by design)
        quality_models = ["models/intermediate/quality", "rpt_outliers", "rpt_reporting_completeness"]
        r.ok["full_refresh"] = dbt.run_dbt(
            ["run", "--full-refresh", "--select", *quality_models, "--vars", json.dumps(VARS)], url, settings=settings
        )
        with psycopg.connect(url) as conn:
            for table in COMPARED:
                only_incremental, only_full = (
                    conn.execute(f"select count(*) from (table {a} except all table {b}) as d").fetchone()[0]
                    for a, b in ((f"incremental.{table}", _relation(table)), (_relation(table), f"incremental.{table}"))
                )
                r.differences[table] = (only_incremental, only_full)
            r.before_rule = conn.execute("select * from marts.rpt_reporting_completeness").fetchall()
            conn.execute(
                """insert into seeds.reporting_schedule
                       (scope, reporting_unit_code, grain, deadline_day, deadline_months_after, expected_from,
                        expected_until, note)
                   values (%s, %s, %s, %s, %s, %s, %s, %s)""",
                SHENZHEN_RULE,
            )
        models = ["rpt_reporting_completeness", "int_quality_reporting_completeness", "int_quality_checks"]
        r.ok["rule"] = dbt.run_dbt(["run", "--select", *models, "--vars", json.dumps(VARS)], url, settings=settings)
        yield r
    finally:
        drop_database(pg_admin_url, name)


def test_full_refresh_gives_the_checks_the_incremental_build_gave(refreshed: Refreshed) -> None:
    assert refreshed.ok["full_refresh"]
    assert refreshed.differences == {table: (0, 0) for table in COMPARED}


def test_a_rule_row_expects_every_county_level_unit_under_the_region(refreshed: Refreshed) -> None:
    assert refreshed.ok["rule"]
    url = refreshed.url
    districts = [
        r[0]
        for r in _rows(
            url,
            """select code from ref.regions
               where tree = 'civil' and level = 3 and parent_code = '4403' order by code""",
        )
    ]
    assert len(districts) == 9  # 罗湖区 … 光明区 in the committed register slice
    rows = _rows(
        url,
        """select reporting_unit_code, count(*), sum(expected), sum(received), sum(missing), sum(pending),
                  min(period_code), max(period_code), min(region_name), bool_and(status in ('missing', 'pending'))
           from marts.rpt_reporting_completeness
           where reporting_unit_code like '4403%%' group by 1 order by 1""",
    )
    # 2025-01 .. 2025-08 (the month of quality_as_of); deadlines up to June's (07-05) have
    # passed on 2025-08-01, July's (08-05) and August's have not; none of them reported
    assert rows == [(d, 8, 8, 0, 6, 2, "2025-01", "2025-08", "深圳市", True) for d in districts]
    missing = _rows(
        url,
        """select count(*), min(observed_value), max(observed_value) from intermediate.int_quality_checks
           where check_name = 'reporting_completeness' and reporting_unit_code like '4403%%'
             and outcome = 'fail'""",
    )
    assert missing == [(9 * 6, 27, 177)]  # June: 07-05 → 08-01; January: 02-05 → 08-01
    # the other units are judged as before
    others = set(refreshed.before_rule)
    after = {r for r in _rows(url, "select * from marts.rpt_reporting_completeness") if not r[0].startswith("4403")}
    assert after == others
