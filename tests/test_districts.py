"""Files made the way real district offices make them land with the right numbers.

The fixtures and the numbers they must give: tests/fixtures/districts/README.md.
"""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import psycopg
import pytest

from ingestion.files import expand_paths
from ingestion.pipeline import Ingester
from ingestion.reprocess import find_candidates, reprocess

FIXTURES = Path(__file__).parent / "fixtures" / "districts"
LICANG = "370213/李沧区2024年第二季度城乡结对共建情况统计表.xlsx"
LIANJIANG_ACTIVITIES = "440881/廉江市2024年6月共建活动.csv"
LIANJIANG_PAIRINGS = "440881/廉江市城乡结对关系登记表（2024年6月）.csv"
YUNYANG = "500235/云阳县2024年5月城乡结对共建报表.xlsx"
CORRECTION = "370213/李沧区2024年第二季度结对关系（更正）.csv"


@pytest.fixture
def ingester(settings, db_url):
    with psycopg.connect(db_url) as conn:
        yield Ingester(conn, settings, run_id="test")


@pytest.fixture
def landed(ingester, tmp_path):
    """The three districts' files, ingested as one batch; outcomes by 'unit/name'."""
    landing = tmp_path / "landing"
    shutil.copytree(FIXTURES / "landing", landing)
    outcomes = {}
    for path in expand_paths([landing]):
        outcomes[f"{path.parent.name}/{path.name}"] = ingester.ingest(path)
    return outcomes


def one(conn, query: str, *args):
    return conn.execute(query, args).fetchone()


def floats(row) -> list[float]:
    return [float(x) for x in row]


def test_the_fixtures_are_what_the_generator_writes(tmp_path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_districts", FIXTURES / "make_districts.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for path in module.write_all(tmp_path):
        committed = FIXTURES / path.relative_to(tmp_path)
        assert committed.read_bytes() == path.read_bytes(), f"{committed} is stale: run make_districts.py"


def test_yunyang_workbook_is_a_wps_workbook():
    with zipfile.ZipFile(FIXTURES / "landing" / YUNYANG) as zf:
        assert "WPS 表格" in zf.read("docProps/app.xml").decode()
        assert "KSOProductBuildVer" in zf.read("docProps/custom.xml").decode()


def test_outcomes_of_the_batch(landed):
    summary = {
        k: (o.status, o.reporting_unit_code, o.period, o.rows_loaded, o.rows_quarantined) for k, o in landed.items()
    }
    assert summary == {
        LICANG: ("loaded", "370213", "2024Q2", 11, 3),
        LIANJIANG_PAIRINGS: ("loaded", "440881", "2024-06", 3, 0),
        LIANJIANG_ACTIVITIES: ("loaded", "440881", "2024-06", 4, 1),
        YUNYANG: ("loaded", "500235", "2024-05", 9, 1),
    }
    codes = {k: sorted(e.code for e in o.errors) for k, o in landed.items()}
    assert codes[LICANG] == ["R007_BAD_DIVISION_CODE", "R009_UNKNOWN_PAIRING", "R010_DATE_OUTSIDE_PERIOD"]
    assert codes[LIANJIANG_ACTIVITIES] == ["R009_UNKNOWN_PAIRING"]
    assert codes[YUNYANG] == ["R011_PARTY_ABOVE_PARTICIPANTS"]
    warnings = {k: [(w.code, w.column) for w in o.warnings] for k, o in landed.items()}
    assert warnings[LICANG] == [("W002_TOTAL_MISMATCH", "jobs_created")]
    assert warnings[YUNYANG] == [("W001_NEGATIVE_INCOME", "collective_income_increase_yuan")]
    assert warnings[LIANJIANG_ACTIVITIES] == warnings[LIANJIANG_PAIRINGS] == []
    assert (landed[LIANJIANG_PAIRINGS].encoding, landed[LIANJIANG_ACTIVITIES].encoding) == ("gbk", "gb18030")


def test_bad_rows_are_quarantined_with_cell_and_reason(landed, ingester):
    rows = ingester.conn.execute(
        """select s.reporting_unit_code, q.source_sheet, q.source_row, q.column_name, q.value, q.reason_code,
                  q.reason_zh, q.reason_en
           from quarantine.rejected_rows q join audit.submission_files s using (submission_id)
           order by 1, 2, 3"""
    ).fetchall()
    where = [r[:6] for r in rows]
    assert where == [
        ("370213", "表1 结对关系", 6, "urban_unit_code", "3.70213E+11", "R007_BAD_DIVISION_CODE"),
        ("370213", "表2-共建活动", 9, "pairing_code", "LC-03", "R009_UNKNOWN_PAIRING"),
        ("370213", "表2-共建活动", 10, "activity_date", "2024-07-02", "R010_DATE_OUTSIDE_PERIOD"),
        ("440881", "廉江市2024年6月共建活动.csv", 9, "pairing_code", "LJ-09", "R009_UNKNOWN_PAIRING"),
        ("500235", "活动情况", 6, "party_member_participants", "40", "R011_PARTY_ABOVE_PARTICIPANTS"),
    ]
    assert all(zh and en and zh != en for *_, zh, en in rows)


def test_licang_numbers(landed, ingester):
    q, sid = ingester.conn, landed[LICANG].submission_id
    acts = one(
        q,
        """select count(*), sum(participants), sum(participants) filter (where is_approximate),
                  sum(party_member_participants), sum(problems_resolved), sum(suggestions_collected)
           from raw.activities where submission_id = %s""",
        sid,
    )
    assert acts == (5, 501, 300, 138, 7, 17)
    # the merged 结对编号 cells were filled down: two activities each for LC-01 and LC-02
    by_pairing = dict(
        q.execute(
            "select pairing_code, count(*) from raw.activities where submission_id = %s group by 1", (sid,)
        ).fetchall()
    )
    assert by_pairing == {"LC-01": 2, "LC-02": 3}
    projects = one(
        q,
        "select sum(investment_yuan), sum(land_mu), sum(households_benefited)"
        " from raw.projects where submission_id = %s",
        sid,
    )
    assert floats(projects) == [1_386_000, 35, 126]
    income = one(
        q,
        """select sum(collective_income_increase_yuan), sum(villager_income_increase_yuan), sum(produce_sold_tonnes),
                  sum(produce_sales_yuan), sum(jobs_created), sum(households_benefited)
           from raw.income_effects where submission_id = %s""",
        sid,
    )
    assert floats(income) == [108_000, 775_000, 480, 1_920_000, 43, 220]
    codes = q.execute(
        "select pairing_code, urban_unit_code from raw.pairings where submission_id = %s order by 1", (sid,)
    )
    assert codes.fetchall() == [("LC-01", "370213006"), ("LC-02", "370213006001")]  # a number kept every digit


def test_lianjiang_numbers(landed, ingester):
    sid = landed[LIANJIANG_ACTIVITIES].submission_id
    acts = one(
        ingester.conn,
        """select count(*), sum(participants), sum(participants) filter (where is_approximate),
                  sum(party_member_participants), sum(problems_resolved), sum(suggestions_collected),
                  bool_or(title = '王䶮同志政策宣讲')
           from raw.activities where submission_id = %s""",
        sid,
    )
    assert acts == (4, 1595, 250, 152, 4, 15, True)
    notes = " ".join(n.message_en for n in landed[LIANJIANG_ACTIVITIES].normalisations)
    assert "file encoding is gb18030" in notes and "header '参与人次' read as 'participants'" in notes
    assert "1,300→1300" in notes and "约50→50" in notes


def test_yunyang_numbers(landed, ingester):
    q, sid = ingester.conn, landed[YUNYANG].submission_id
    acts = one(
        q,
        """select count(*), sum(participants), sum(participants) filter (where is_approximate),
                  sum(party_member_participants), sum(problems_resolved), sum(suggestions_collected),
                  array_agg(activity_date order by activity_date)::text
           from raw.activities where submission_id = %s""",
        sid,
    )
    assert acts == (3, 460, 400, 100, 3, 8, "{2024-05-06,2024-05-12,2024-05-20}")
    projects = one(
        q,
        "select sum(investment_yuan), sum(land_mu), sum(households_benefited)"
        " from raw.projects where submission_id = %s",
        sid,
    )
    assert floats(projects) == [5_016_000, 320, 210]
    income = one(
        q,
        """select sum(collective_income_increase_yuan), sum(villager_income_increase_yuan), sum(produce_sold_tonnes),
                  sum(produce_sales_yuan), sum(jobs_created), sum(households_benefited)
           from raw.income_effects where submission_id = %s""",
        sid,
    )
    assert floats(income) == [27_000, 530_000, 712.5, 2_160_000, 33, 210]
    pairings = q.execute(
        "select pairing_code, urban_unit_code, paired_on::text from raw.pairings where submission_id = %s order by 1",
        (sid,),
    )
    assert pairings.fetchall() == [("1001", "500235001001", "2022-03-10"), ("1002", "500235001003", "2022-04-18")]


def test_personal_data_stays_out_of_the_warehouse(landed, ingester):
    """填报人 and 联系电话 are in the files' blocks and notes, and nowhere in raw, quarantine or audit."""
    q = ingester.conn
    needles = ("王某某", "8765", "陈某", "6688", "刘某", "5551")
    tables = ("raw.pairings", "raw.activities", "raw.projects", "raw.income_effects", "quarantine.rejected_rows")
    for table in (*tables, "audit.submission_files"):
        for needle in needles:
            found = one(q, f"select count(*) from {table} t where t::text like %s", f"%{needle}%")[0]
            assert found == 0, (table, needle)


def test_correction_then_reprocess(landed, ingester, tmp_path):
    """Licang corrects its pairings (LC-03 typed right); the workbook is run again from the archive,
    without the district sending it again, and LC-03's activity lands."""
    first = landed[LICANG]
    correction = tmp_path / "landing" / CORRECTION
    correction.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(FIXTURES / "corrections" / CORRECTION, correction)
    fixed = ingester.ingest(correction)
    assert (fixed.status, fixed.rows_loaded, fixed.record_kinds) == ("loaded", 3, ["pairings"])
    assert fixed.supersedes == {"pairings": first.submission_id}  # the pairings only

    candidates = find_candidates(ingester.conn, unit="370213")
    assert [(c.submission_id, c.reasons) for c in candidates] == [(first.submission_id, ("R009_UNKNOWN_PAIRING",))]
    rerun = reprocess(ingester, candidates[0])
    assert (rerun.status, rerun.reprocess_of, rerun.rows_loaded, rerun.rows_quarantined) == (
        "loaded",
        first.submission_id,
        12,
        2,
    )
    assert sorted(e.code for e in rerun.errors) == ["R007_BAD_DIVISION_CODE", "R010_DATE_OUTSIDE_PERIOD"]
    assert rerun.file == first.file  # recorded under the name and folder it arrived with
    kinds = ("activities", "income_effects", "pairings", "projects")
    assert rerun.supersedes == dict.fromkeys(kinds, first.submission_id)
    assert rerun.superseded_by == {"pairings": fixed.submission_id}  # the correction came later: it stays

    current = dict(
        ingester.conn.execute(
            """select record_kind, current_submission_id from audit.submission_versions
               where reporting_unit_code = '370213' and period = '2024Q2' and is_current"""
        ).fetchall()
    )
    assert current == {
        "pairings": fixed.submission_id,
        "activities": rerun.submission_id,
        "projects": rerun.submission_id,
        "income_effects": rerun.submission_id,
    }
    acts = one(
        ingester.conn,
        "select count(*), sum(participants) from raw.activities where submission_id = %s",
        rerun.submission_id,
    )
    assert acts == (6, 651)
    # the first attempt is still there, superseded, with its quarantined rows
    assert one(ingester.conn, "select count(*) from raw.activities where submission_id = %s", first.submission_id) == (
        5,
    )
    assert find_candidates(ingester.conn, unit="370213") == []  # nothing left to cure
    # the same bytes sent again are still a duplicate: a re-run is no receipt
    again = tmp_path / "again" / "370213" / Path(LICANG).name
    again.parent.mkdir(parents=True)
    shutil.copy(FIXTURES / "landing" / LICANG, again)
    assert ingester.ingest(again).status == "duplicate"
