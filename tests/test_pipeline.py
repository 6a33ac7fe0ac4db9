"""Ingestion end to end against a real PostgreSQL: what lands, what is quarantined, why."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest

from ingestion import load, tables
from ingestion.files import expand_paths
from ingestion.pipeline import Ingester

PAIRINGS_CSV = """结对编号,城市单位代码,城市单位名称,农村单位代码,农村单位名称,结对形式,结对日期,是否签订协议
KRL-YJ,652801412005,雅居社区,652801207200,托布力其村,一对一,2023-03-01,是
KRL-LW,652801412003,蓝湾社区,652801207201,上牙克托格拉克村,一对一,2023-03-01,否
"""

ACTIVITIES_HEADER = "活动日期,结对编号,活动类型,活动名称,参与人数,其中党员人数,解决问题数,收集建议数\n"


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode(encoding))
    return path


@pytest.fixture
def ingester(settings, db_url):
    with psycopg.connect(db_url) as conn:
        yield Ingester(conn, settings, run_id="test")


@pytest.fixture
def landing(tmp_path: Path) -> Path:
    return tmp_path / "landing"


@pytest.fixture
def registered(ingester, landing):
    """Unit 652801 has registered its two pairings."""
    o = ingester.ingest(write(landing / "652801" / "652801_2025-01_pairings.csv", PAIRINGS_CSV))
    assert o.status == "loaded" and o.rows_loaded == 2, o.to_dict()
    return o


def scalar(conn, query: str, *args):
    return conn.execute(query, args).fetchone()[0]


def test_clean_file_lands_with_lineage(ingester, registered, landing):
    path = write(
        landing / "652801" / "652801_2025-01_activities.csv",
        ACTIVITIES_HEADER
        + "2025-01-05,KRL-YJ,主题党日,新年主题党日,30,20,1,2\n"
        + "2025-01-12,KRL-LW,volunteer_service,冬季送温暖,45,10,,\n",
    )
    o = ingester.ingest(path)
    assert (o.status, o.rows_received, o.rows_loaded, o.rows_quarantined) == ("loaded", 2, 2, 0)
    assert (o.reporting_unit_code, o.period) == ("652801", "2025-01")
    conn = ingester.conn
    rows = conn.execute(
        """select a.source_row, a.activity_type, a.participants, a.party_member_participants, a.problems_resolved,
                  s.file_hash, a.reporting_unit_code, a.period, a.is_approximate
           from raw.activities a join audit.submission_files s using (submission_id)  -- the hash, one join away
           where a.submission_id = %s order by a.source_row""",
        (o.submission_id,),
    ).fetchall()
    assert rows == [
        (2, "themed_party_day", 30, 20, 1, o.file_hash, "652801", "2025-01", False),
        (3, "volunteer_service", 45, 10, None, o.file_hash, "652801", "2025-01", False),
    ]
    audit = conn.execute(
        "select status, rows_received, rows_loaded, rows_quarantined, record_kinds, archive_path"
        " from audit.submission_files where submission_id = %s",
        (o.submission_id,),
    ).fetchone()
    assert audit[:5] == ("loaded", 2, 2, 0, ["activities"])
    assert Path(audit[5]).read_bytes() == path.read_bytes()  # kept byte for byte


BAD_ROWS = {
    # source row -> expected reason code
    3: "R011_PARTY_ABOVE_PARTICIPANTS",
    4: "R010_DATE_OUTSIDE_PERIOD",
    5: "R009_UNKNOWN_PAIRING",
    6: "R004_NEGATIVE",
    7: "R002_NOT_A_NUMBER",
    8: "R006_UNKNOWN_CODE",
    9: "R003_NOT_A_DATE",
    10: "R012_DUPLICATE_ROW",
    11: "R001_REQUIRED_MISSING",
}


def test_bad_rows_go_to_quarantine_and_good_rows_land(ingester, registered, landing):
    path = write(
        landing / "652801" / "652801_2025-01_activities.csv",
        ACTIVITIES_HEADER
        + "2025-01-05,KRL-YJ,主题党日,新年主题党日,30,20,1,2\n"  # 2 good
        + "2025-01-06,KRL-YJ,培训,电商培训,10,12,0,0\n"  # 3 party members > participants
        + "2025-02-01,KRL-YJ,培训,二月培训,10,2,0,0\n"  # 4 outside 2025-01
        + "2025-01-07,KRL-XX,培训,无此结对,10,2,0,0\n"  # 5 unknown pairing
        + "2025-01-08,KRL-LW,培训,负数,-3,0,0,0\n"  # 6 negative
        + "2025-01-09,KRL-LW,培训,待统计,待统计,0,0,0\n"  # 7 not a number
        + "2025-01-10,KRL-LW,联欢,未知类型,5,1,0,0\n"  # 8 unknown activity type
        + "下旬,KRL-LW,培训,日期不明,5,1,0,0\n"  # 9 not a date
        + "2025-01-05,KRL-YJ,主题党日,新年主题党日,30,20,1,2\n"  # 10 duplicate of row 2
        + "2025-01-11,,培训,缺结对编号,5,1,0,0\n"  # 11 required value missing
        + '2025-01-12,KRL-LW,文化活动,=HYPERLINK("x"),5,1,0,0\n',  # 12 good: formula-looking text is data
    )
    o = ingester.ingest(path)
    assert o.status == "loaded"
    assert (o.rows_received, o.rows_loaded, o.rows_quarantined) == (11, 2, 9)
    conn = ingester.conn
    found = conn.execute(
        "select source_row, reason_code, reason_zh, reason_en, column_name, value, row_data"
        " from quarantine.rejected_rows where submission_id = %s order by source_row",
        (o.submission_id,),
    ).fetchall()
    assert {r[0]: r[1] for r in found} == BAD_ROWS
    for _row, _code, zh, en, _column, _value, row_data in found:
        assert zh and en and zh != en
        assert row_data["活动名称"]  # the whole row is kept as received
    by_row = {r[0]: r for r in found}
    assert by_row[3][4:6] == ("party_member_participants", "12")
    assert by_row[7][4:6] == ("participants", "待统计")
    assert "待统计" in by_row[7][2] and "not a number" in by_row[7][3]
    assert by_row[6][4:6] == ("participants", "-3")
    titles = [r[0] for r in conn.execute("select title from raw.activities order by source_row")]
    assert titles == ["新年主题党日", '=HYPERLINK("x")']
    # reconciliation held by the audit row too
    audit = conn.execute(
        "select rows_received, rows_loaded, rows_quarantined, kind_counts from audit.submission_files"
        " where submission_id = %s",
        (o.submission_id,),
    ).fetchone()
    assert audit == (11, 2, 9, {"activities": {"received": 11, "loaded": 2, "quarantined": 9}})


def test_broken_files_are_refused_and_the_rest_of_the_batch_lands(ingester, registered, landing):
    good = write(
        landing / "652801" / "652801_2025-02_activities.csv",
        ACTIVITIES_HEADER + "2025-02-05,KRL-YJ,培训,培训,30,20,1,2\n",
    )
    write(landing / "999999" / "999999_2025-02_activities.csv", ACTIVITIES_HEADER + "2025-02-05,X,培训,t,1,1,0,0\n")
    (landing / "652801" / "652801_2025-02.xlsx").write_bytes(b"\xd0\xcf\x11\xe0 an old .doc file")
    write(landing / "652801" / "652801_2025-03_activities.csv", "")
    write(landing / "652801" / "652801_2025-03_notes.csv", "说明,内容\n本月无活动,\n")
    write(landing / "652801" / "activities.csv", ACTIVITIES_HEADER + "2025-02-06,KRL-YJ,培训,培训,30,20,1,2\n")
    (landing / "652801" / "652801_2025-03.docx").write_bytes(b"PK\x03\x04")
    outcomes = {Path(o.file).name: o for o in (ingester.ingest(p) for p in expand_paths([landing]))}
    codes = {name: (o.status, [e.code for e in o.errors]) for name, o in outcomes.items()}
    assert codes["652801_2025-02_activities.csv"] == ("loaded", [])
    assert codes["999999_2025-02_activities.csv"] == ("rejected", ["F005_UNKNOWN_UNIT"])
    assert codes["652801_2025-02.xlsx"] == ("rejected", ["F001_UNREADABLE"])
    assert codes["652801_2025-03_activities.csv"] == ("rejected", ["F003_EMPTY_FILE"])
    assert codes["652801_2025-03_notes.csv"] == ("rejected", ["F004_NO_TABLE"])
    assert codes["activities.csv"] == ("rejected", ["F007_NO_PERIOD"])
    assert codes["652801_2025-03.docx"] == ("rejected", ["F002_UNSUPPORTED_TYPE"])
    conn = ingester.conn
    statuses = dict(conn.execute("select original_name, status from audit.submission_files").fetchall())
    assert statuses["999999_2025-02_activities.csv"] == "rejected"
    errors = scalar(
        conn, "select errors from audit.submission_files where original_name = %s", "999999_2025-02_activities.csv"
    )
    assert errors[0]["code"] == "F005_UNKNOWN_UNIT" and "999999" in errors[0]["message_zh"]
    assert scalar(conn, "select count(*) from raw.activities") == 1
    assert good.exists()


def test_same_bytes_land_once(ingester, registered, landing):
    path = write(
        landing / "652801" / "652801_2025-01_activities.csv", ACTIVITIES_HEADER + "2025-01-05,KRL-YJ,培训,t,3,1,0,0\n"
    )
    first = ingester.ingest(path)
    copy = write(landing / "copy" / "652801_2025-01_activities.csv", path.read_text())
    second = ingester.ingest(copy)
    assert (first.status, second.status, second.duplicate_of) == ("loaded", "duplicate", first.submission_id)
    assert scalar(ingester.conn, "select count(*) from raw.activities") == 1
    assert scalar(ingester.conn, "select count(*) from audit.submission_files where status = 'duplicate'") == 1


def test_crash_half_way_leaves_nothing(ingester, registered, landing, monkeypatch):
    monkeypatch.setattr(tables, "CHUNK_ROWS", 2)
    calls = {"n": 0}
    original = load.RawWriter.write

    def failing_write(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("disk full")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(load.RawWriter, "write", failing_write)
    lines = "".join(f"2025-01-{d:02d},KRL-YJ,培训,第{d}次,3,1,0,0\n" for d in range(1, 8))
    o = ingester.ingest(write(landing / "652801" / "652801_2025-01_activities.csv", ACTIVITIES_HEADER + lines))
    assert calls["n"] == 2
    assert o.status == "rejected" and o.errors[0].code == "F014_INTERNAL"
    conn = ingester.conn
    assert scalar(conn, "select count(*) from raw.activities") == 0
    assert scalar(conn, "select count(*) from audit.submission_files where status = 'rejected'") == 1


def test_chunked_large_file_reconciles(ingester, registered, landing, monkeypatch):
    monkeypatch.setattr(tables, "CHUNK_ROWS", 1000)
    rows = [f"2025-01-{1 + i % 28:02d},KRL-YJ,培训,活动{i},{10 + i % 50},{i % 10},0,0\n" for i in range(4500)]
    rows[2100] = "2025-01-02,KRL-YJ,培训,活动2100,5,9,0,0\n"  # party members above participants
    rows[3999] = rows[10]  # a duplicate across chunks
    o = ingester.ingest(write(landing / "652801" / "652801_2025-01_activities.csv", ACTIVITIES_HEADER + "".join(rows)))
    assert (o.rows_received, o.rows_loaded, o.rows_quarantined) == (4500, 4498, 2)
    codes = sorted(e.code for e in o.errors)
    assert codes == ["R011_PARTY_ABOVE_PARTICIPANTS", "R012_DUPLICATE_ROW"]
    dup = next(e for e in o.errors if e.code == "R012_DUPLICATE_ROW")
    assert (dup.row, "第 12 行" in dup.message_zh) == (4001, True)


def test_pairings_load_before_records_that_reference_them(ingester, landing):
    import xlsxwriter

    path = landing / "652801" / "652801_2025-01.xlsx"
    path.parent.mkdir(parents=True)
    wb = xlsxwriter.Workbook(path)
    acts = wb.add_worksheet("共建活动")  # first in the workbook, loaded second
    for r, row in enumerate(
        [ACTIVITIES_HEADER.strip().split(","), ["2025-01-05", "KRL-YJ", "主题党日", "新年", 30, 20, 1, 2]]
    ):
        acts.write_row(r, 0, row)
    pairs = wb.add_worksheet("结对关系")
    for r, line in enumerate(PAIRINGS_CSV.strip().splitlines()):
        pairs.write_row(r, 0, line.split(","))
    wb.close()
    o = ingester.ingest(path)
    assert (o.status, o.rows_loaded, o.rows_quarantined) == ("loaded", 3, 0), o.to_dict()
    assert o.kind_counts["activities"]["loaded"] == 1


def test_json_envelope(ingester, landing):
    doc = {
        "reporting_unit_code": "652801",
        "period": "2025-01",
        "pairings": [
            {
                "pairing_code": "KRL-YJ",
                "urban_unit_code": "652801412005",
                "rural_unit_code": "652801207200",
                "pairing_form": "one_to_one",
                "paired_on": "2023-03-01",
                "agreement_signed": True,
            }
        ],
        "activities": [
            {
                "activity_date": "2025-01-05",
                "pairing_code": "KRL-YJ",
                "activity_type": "training",
                "title": "培训",
                "participants": 12,
                "party_member_participants": 3,
            }
        ],
        "projects": [],
        "income_effects": [
            {
                "pairing_code": "KRL-YJ",
                "collective_income_increase_yuan": -5000,
                "villager_income_increase_yuan": 20000.5,
                "produce_sold_tonnes": 1.25,
                "produce_sales_yuan": 8000,
                "jobs_created": 2,
                "households_benefited": 9,
            }
        ],
    }
    path = write(landing / "any" / "submission.json", json.dumps(doc, ensure_ascii=False))
    o = ingester.ingest(path)
    assert (o.status, o.rows_loaded, o.reporting_unit_code, o.period) == ("loaded", 3, "652801", "2025-01")
    assert [w.code for w in o.warnings] == ["W001_NEGATIVE_INCOME"]  # a loss is flagged, not rejected
    income = ingester.conn.execute(
        "select collective_income_increase_yuan, villager_income_increase_yuan, produce_sold_tonnes"
        " from raw.income_effects"
    ).fetchone()
    assert [float(x) for x in income] == [-5000, 20000.5, 1.25]


def test_unknown_region_codes_in_pairings(ingester, landing):
    text = PAIRINGS_CSV + "KRL-BAD,652801412999,无此社区,3.70213E+11,坏代码,一对一,2023-03-01,是\n"
    o = ingester.ingest(write(landing / "652801" / "652801_2025-01_pairings.csv", text))
    assert (o.rows_loaded, o.rows_quarantined) == (2, 1)
    assert sorted((e.column, e.code) for e in o.errors) == [
        ("rural_unit_code", "R007_BAD_DIVISION_CODE"),
        ("urban_unit_code", "R008_UNKNOWN_REGION"),
    ]


def test_total_row_is_excluded_and_reconciled(ingester, registered, landing):
    body = "2025-01-05,KRL-YJ,培训,a,30,20,1,2\n2025-01-06,KRL-LW,培训,b,40余,10,0,0\n"
    ok = ingester.ingest(
        write(
            landing / "652801" / "652801_2025-01_activities.csv",
            "2025年1月活动统计表\n" + ACTIVITIES_HEADER + body + "合计,,,,70,30,1,2\n,,,,,,,\n注：参与人数含群众\n",
        )
    )
    assert (ok.rows_received, ok.rows_loaded, ok.warnings) == (2, 2, [])
    approx = ingester.conn.execute(
        "select is_approximate, approximate_fields from raw.activities where title = 'b'"
    ).fetchone()
    assert approx == (True, ["participants"])
    bad = ingester.ingest(
        write(
            landing / "652801" / "652801_2025-02_activities.csv",
            ACTIVITIES_HEADER + body.replace("2025-01", "2025-02") + "合计,,,,99,30,1,2\n",
        )
    )
    assert [(w.code, w.column) for w in bad.warnings] == [("W002_TOTAL_MISMATCH", "participants")]
    assert "99" in bad.warnings[0].message_zh and "70" in bad.warnings[0].message_zh


def test_gbk_csv(ingester, registered, landing):
    text = (
        "2025年1月共建活动统计表\n"
        "活动日期,结对编号,活动类型,活动名称,参与人次,党员人数\n"
        "2025年1月8日,KRL-YJ,交流学习,跟岗,１２,１２\n"
    )
    o = ingester.ingest(write(landing / "652801" / "652801_2025-01_activities.csv", text, encoding="gbk"))
    assert (o.status, o.rows_loaded, o.encoding) == ("loaded", 1, "gbk")


def test_gb18030_csv_is_recorded_as_such(ingester, registered, landing):
    """A character outside GBK (4-byte in GB18030: 㐀) makes the file GB18030, and it is kept as written."""
    text = ACTIVITIES_HEADER + "2025-01-08,KRL-YJ,交流学习,㐀村跟岗,12,5,,\n"
    o = ingester.ingest(write(landing / "652801" / "652801_2025-01_activities.csv", text, encoding="gb18030"))
    assert (o.status, o.rows_loaded, o.encoding) == ("loaded", 1, "gb18030")
    assert scalar(ingester.conn, "select title from raw.activities") == "㐀村跟岗"
    stored = "select encoding from audit.submission_files where submission_id = %s"
    assert scalar(ingester.conn, stored, o.submission_id) == "gb18030"


@pytest.mark.parametrize("blank_line", [False, True], ids=["arrow", "pandas"])
def test_line_breaks_inside_quoted_cells(ingester, registered, landing, blank_line):
    """Excel quotes a cell with a line break: '"其中\n党员人数"' in the header, a title on two
    lines. Rows are numbered as records (what Excel shows), on either csv path."""
    text = (
        '"2025年1月\n共建活动统计表",,,,,,,\n'
        + ("\n" if blank_line else "")
        + '活动日期,结对编号,活动类型,活动名称,参与人数,"其中\n党员人数",解决问题数,收集建议数\n'
        + '2025-01-05,KRL-YJ,培训,"冬训\n第一期",30,20,1,2\n'
        + "2025-01-06,KRL-LW,培训,冬训第二期,10,20,0,0\n"
    )
    o = ingester.ingest(write(landing / "652801" / "652801_2025-01_activities.csv", text))
    assert (o.status, o.rows_received, o.rows_loaded, o.rows_quarantined) == ("loaded", 2, 1, 1), o.to_dict()
    header_record = 3 if blank_line else 2
    assert [(e.code, e.row) for e in o.errors] == [("R011_PARTY_ABOVE_PARTICIPANTS", header_record + 2)]
    titles = ingester.conn.execute("select title, source_row from raw.activities").fetchall()
    assert titles == [("冬训 第一期", header_record + 1)]


def test_dry_run_writes_nothing(ingester, landing):
    path = write(landing / "652801" / "652801_2025-01_pairings.csv", PAIRINGS_CSV)
    o = ingester.ingest(path, dry_run=True)
    assert (o.status, o.rows_loaded) == ("loaded", 2)
    conn = ingester.conn
    assert scalar(conn, "select count(*) from audit.submission_files") == 0
    assert scalar(conn, "select count(*) from raw.pairings") == 0
    assert not (ingester.settings.archive).exists()


def test_demo_submissions_land_as_the_generator_expects(ingester, tmp_path):
    """The five regions' demo data: every file's outcome and every unit's totals."""
    from ingestion.demo import generate_demo

    result = generate_demo(tmp_path / "landing")
    outcomes = {Path(o.file): o for o in (ingester.ingest(p) for p in expand_paths([tmp_path / "landing"]))}
    assert len(outcomes) == len(result.files)
    for expected in result.files:
        o = outcomes[expected.path]
        got = (o.status, o.rows_loaded, o.rows_quarantined, o.reporting_unit_code, o.period)
        want = (
            expected.status,
            expected.rows_loaded,
            expected.rows_quarantined,
            expected.reporting_unit_code if expected.status == "loaded" else o.reporting_unit_code,
            expected.period if expected.status == "loaded" else o.period,
        )
        assert got == want, (expected.path.name, o.to_dict())
        assert set(expected.error_codes) <= {e.code for e in o.errors}, expected.path.name
    conn = ingester.conn
    for unit, totals in result.totals.items():
        acts = conn.execute(
            "select count(*), sum(participants), sum(party_member_participants) from raw.activities"
            " where reporting_unit_code = %s",
            (unit,),
        ).fetchone()
        assert acts == (totals["activities"], totals["participants"], totals["party_member_participants"]), unit
        income = conn.execute(
            "select sum(collective_income_increase_yuan), sum(produce_sold_tonnes) from raw.income_effects"
            " where reporting_unit_code = %s",
            (unit,),
        ).fetchone()
        assert [round(float(x), 2) for x in income] == [
            round(totals["collective_income_increase_yuan"], 2),
            round(totals["produce_sold_tonnes"], 2),
        ], unit
    # received = loaded + quarantined, file by file, in the audit table
    assert (
        conn.execute(
            "select count(*) from audit.submission_files where status = 'loaded'"
            " and rows_received <> rows_loaded + rows_quarantined"
        ).fetchone()[0]
        == 0
    )
    quarantined = conn.execute("select count(distinct (submission_id, source_row)) from quarantine.rejected_rows")
    assert quarantined.fetchone()[0] == sum(f.rows_quarantined for f in result.files)


def test_district_examples_land_as_their_readme_says(ingester, tmp_path):
    """shared/examples: a 武侯区 quarterly workbook (title rows, merged block, 合计 rows, 万元,
    40余/300余, four date forms, —) and a GBK monthly csv (参与人次, full-width digits, 约30)."""
    import shutil

    landing = tmp_path / "landing"
    shutil.copytree(Path(__file__).parent / "fixtures" / "examples", landing)
    # the two v1.0 examples, one by one; the .xls and the .txt (v1.1), in any order: tests/test_offices.py
    names = ["武侯区2024年第三季度城乡结对共建统计表.xlsx", "武侯区2024年10月共建活动.csv"]
    outcomes = [ingester.ingest(landing / "510107" / name) for name in names]
    assert [(o.period, o.status, o.rows_loaded, o.rows_quarantined) for o in outcomes] == [
        ("2024Q3", "loaded", 12, 2),
        ("2024-10", "loaded", 2, 0),
    ]
    assert sorted(e.code for e in outcomes[0].errors) == ["R002_NOT_A_NUMBER", "R010_DATE_OUTSIDE_PERIOD"]
    assert outcomes[0].warnings == [] and outcomes[1].warnings == []  # the 合计 rows match
    q = ingester.conn.execute
    sid_q, sid_m = outcomes[0].submission_id, outcomes[1].submission_id
    acts = q(
        "select count(*), sum(participants), sum(participants) filter (where is_approximate),"
        " sum(party_member_participants), sum(problems_resolved), sum(suggestions_collected)"
        " from raw.activities where submission_id = %s",
        (sid_q,),
    ).fetchone()
    assert acts == (5, 224, 40, 115, 7, 16)
    projects = q("select sum(investment_yuan), sum(land_mu) from raw.projects where submission_id = %s", (sid_q,))
    assert [float(x) for x in projects.fetchone()] == [2_165_000, 12]
    income = q(
        "select sum(collective_income_increase_yuan), sum(villager_income_increase_yuan), sum(produce_sold_tonnes),"
        " sum(produce_sold_tonnes) filter (where 'produce_sold_tonnes' = any(approximate_fields)),"
        " sum(produce_sales_yuan), sum(jobs_created), sum(households_benefited)"
        " from raw.income_effects where submission_id = %s",
        (sid_q,),
    ).fetchone()
    assert [float(x) for x in income] == [155_000, 1_050_000, 315, 300, 2_760_000, 46, 258]
    monthly = q(
        "select sum(participants), sum(participants) filter (where is_approximate), sum(party_member_participants)"
        " from raw.activities where submission_id = %s",
        (sid_m,),
    ).fetchone()
    assert monthly == (42, 30, 21)
    # 填报人 / 联系电话 are in the file's block, and nowhere in the warehouse
    for table in ("raw.pairings", "raw.activities", "raw.projects", "raw.income_effects", "quarantine.rejected_rows"):
        assert (
            q(f"select count(*) from {table} t where t::text like '%%8555%%' or t::text like '%%李某%%'").fetchone()[0]
            == 0
        )
