"""One grain wins: a unit that sends monthly reports and a quarterly report of the same record
kind for the same months is counted once — the quarterly report (季报为准) — whichever arrived
first.

廉江市 (440881) registers its pairing LJ-Q (东街居委会 → 油房村) in a pairings-only file, then
sends, as offices do, one CSV per month and kind for January–March 2025 *and* a quarterly
report for 2025Q1 of both activities and income (the quarter's figures, consolidated:
different from the sum of the months), plus April as a monthly report (no quarter covers it).
The same files land in two orders (quarterly first; quarterly last) into two warehouses; the
marts must be identical and hold exactly the quarterly figures for Q1.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest

from ingestion import dbt
from ingestion.config import Settings
from ingestion.pipeline import Ingester
from ingestion.warehouse import with_database
from tests.conftest import create_database, drop_database

pytestmark = pytest.mark.slow

UNIT = "440881"
PAIRINGS = (
    "结对编号,城市单位代码,城市单位名称,农村单位代码,农村单位名称,结对形式,结对日期,是否签订协议\n"
    "LJ-Q,440881001001,东街居委会,440881105206,油房村,一对一,2024-03-05,是\n"
)
ACTIVITIES = "活动日期,结对编号,活动类型,活动名称,参与人数,其中党员人数,解决问题数,收集建议数\n"
INCOME = "结对编号,村集体增收（元）,村民增收（元）,农产品销售量（吨）,农产品销售额（元）,带动就业人数,受益户数\n"

# (file name, text): what the office sent
FILES = {
    "440881_结对关系登记.csv": PAIRINGS,
    "440881_2025-01_activities.csv": ACTIVITIES + "2025-01-10,LJ-Q,主题党日,一月主题党日,20,10,1,2\n",
    "440881_2025-02_activities.csv": ACTIVITIES + "2025-02-12,LJ-Q,培训,二月培训,30,5,0,1\n",
    "440881_2025-03_activities.csv": ACTIVITIES + "2025-03-08,LJ-Q,交流学习,三月交流学习,12,4,2,0\n",
    # the quarter, consolidated: January's activity had 22 participants, and a second March one
    "440881_2025Q1_activities.csv": ACTIVITIES
    + "2025-01-10,LJ-Q,主题党日,一月主题党日,22,10,1,2\n"
    + "2025-02-12,LJ-Q,培训,二月培训,30,5,0,1\n"
    + "2025-03-08,LJ-Q,交流学习,三月交流学习,12,4,2,0\n"
    + "2025-03-25,LJ-Q,志愿服务,三月志愿服务,40,8,1,3\n",
    "440881_2025-04_activities.csv": ACTIVITIES + "2025-04-03,LJ-Q,主题党日,四月主题党日,25,12,0,1\n",
    "440881_2025-01_income_effects.csv": INCOME + "LJ-Q,1000,2000,1.5,3000,2,5\n",
    "440881_2025-02_income_effects.csv": INCOME + "LJ-Q,1100,2100,1.0,2500,1,4\n",
    "440881_2025-03_income_effects.csv": INCOME + "LJ-Q,900,1900,0.5,1500,0,3\n",
    "440881_2025Q1_income_effects.csv": INCOME + "LJ-Q,3500,6500,3.2,7600,3,12\n",
}
QUARTERLY = {"440881_2025Q1_activities.csv", "440881_2025Q1_income_effects.csv"}

ROLLUP = """
    select period_code, activity_count, participants, villager_income_increase_yuan, collective_income_increase_yuan
    from marts.rpt_region_rollup
    where attribution = 'reporting_unit' and tree = 'civil' and region_code = %s
    order by period_grain, period_code
"""


def _orders() -> dict[str, list[str]]:
    names = [n for n in FILES if n not in QUARTERLY]
    rng = random.Random(20261202)
    shuffled = names[1:]
    rng.shuffle(shuffled)
    return {
        "quarterly_first": [names[0], *sorted(QUARTERLY), *shuffled],
        "quarterly_last": [names[0], *shuffled, *sorted(QUARTERLY)],
    }


def _build(pg_admin_url: str, template_db: str, tmp: Path, order: list[str]) -> tuple[str, str]:
    name = f"pairstats_grain_{uuid.uuid4().hex[:10]}"
    create_database(pg_admin_url, name, template_db)
    url = with_database(pg_admin_url, name)
    settings = Settings.from_env({"PAIRSTATS_HOME": str(tmp / name), "PAIRSTATS_WAREHOUSE_URL": url})
    landing = tmp / name / "landing" / UNIT
    landing.mkdir(parents=True)
    with psycopg.connect(url) as conn:
        ingester = Ingester(conn, settings, run_id="test_grain")
        for file_name in order:
            path = landing / file_name
            path.write_text(FILES[file_name], encoding="utf-8")
            outcome = ingester.ingest(path)
            assert outcome.status == "loaded" and outcome.rows_quarantined == 0, outcome.to_dict()
    assert dbt.build(settings), "dbt build failed"
    return name, url


@pytest.fixture(scope="module")
def warehouses(pg_admin_url: str, template_db: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    tmp = tmp_path_factory.mktemp("grain")
    built = {}
    try:
        for label, order in _orders().items():
            built[label] = _build(pg_admin_url, template_db, tmp, order)
        yield {label: url for label, (_, url) in built.items()}
    finally:
        for name, _ in built.values():
            drop_database(pg_admin_url, name)


def _rows(url: str, query: str, *args: object) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(query, args).fetchall()


def test_the_quarterly_report_counts_once_in_the_rollup(warehouses: dict[str, str]) -> None:
    for label, url in warehouses.items():
        rollup = {r[0]: r[1:] for r in _rows(url, ROLLUP, UNIT)}
        # the quarter: the quarterly report's four activities (104 participants) and its income
        assert rollup["2025Q1"] == (4, 104, Decimal("6500.00"), Decimal("3500.00")), label
        # its months come from the quarterly report's activity dates; its income has no month
        assert rollup["2025-01"] == (1, 22, None, None), label
        assert rollup["2025-02"] == (1, 30, None, None), label
        assert rollup["2025-03"] == (2, 52, None, None), label
        # April is monthly only: it counts as sent
        assert rollup["2025-04"] == (1, 25, None, None), label
        assert rollup["2025Q2"] == (1, 25, None, None), label
        assert rollup["2025"] == (5, 129, Decimal("6500.00"), Decimal("3500.00")), label


def test_the_facts_hold_the_quarterly_rows_only(warehouses: dict[str, str]) -> None:
    for label, url in warehouses.items():
        periods = _rows(
            url,
            """select period_code, sum(activity_count), sum(participants) from marts.fct_activity_counts
               where reporting_unit_code = %s group by 1 order by 1""",
            UNIT,
        )
        assert periods == [("2025-04", 1, 25), ("2025Q1", 4, 104)], label
        income = _rows(
            url,
            """select period_code, villager_income_increase_yuan from marts.fct_income_effects
               where reporting_unit_code = %s order by 1""",
            UNIT,
        )
        assert income == [("2025Q1", Decimal("6500.00"))], label


def test_the_covered_months_stay_as_versions_naming_their_quarter(warehouses: dict[str, str]) -> None:
    for label, url in warehouses.items():
        versions = _rows(
            url,
            """select v.period_code, v.record_kind, v.is_current_version, v.is_current, q.period_code
               from intermediate.int_submission_kinds_versioned v
               left join intermediate.int_submission_kinds_versioned q
                   on q.submission_id = v.covered_by_submission_id and q.record_kind = v.record_kind
               where v.reporting_unit_code = %s and v.record_kind <> 'pairings'
               order by 2, 1""",
            UNIT,
        )
        covered = [(p, k) for p, k, latest, current, quarter in versions if latest and not current]
        assert covered == [
            ("2025-01", "activities"),
            ("2025-02", "activities"),
            ("2025-03", "activities"),
            ("2025-01", "income_effects"),
            ("2025-02", "income_effects"),
            ("2025-03", "income_effects"),
        ], label
        assert all(quarter == "2025Q1" for p, k, latest, current, quarter in versions if latest and not current)
        assert [(p, k) for p, k, _, current, _ in versions if current] == [
            ("2025-04", "activities"),
            ("2025Q1", "activities"),
            ("2025Q1", "income_effects"),
        ], label
        # nothing lost: every monthly row is still in raw
        assert _rows(url, "select count(*) from raw.activities")[0][0] == 8


def test_both_orders_give_the_same_marts(warehouses: dict[str, str]) -> None:
    first, last = warehouses.values()
    for table, columns in (
        (
            "rpt_region_rollup",
            "attribution, tree, region_code, period_code, activity_count, participants, "
            "villager_income_increase_yuan, jobs_created, households_benefited",
        ),
        ("fct_activity_counts", "reporting_unit_code, period_code, activity_month, activity_type, participants"),
        ("fct_income_effects", "reporting_unit_code, period_code, villager_income_increase_yuan"),
    ):
        query = f"select {columns} from marts.{table} order by {columns}"
        assert _rows(first, query) == _rows(last, query), table
