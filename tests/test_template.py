"""``pairstats template``: the workbook districts fill in, and what it gives when filled in."""

from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
import sys
from pathlib import Path

import openpyxl
import psycopg
import pytest

from ingestion.contract import RECORD_KINDS, kinds_in_load_order
from ingestion.metadata import parse_period
from ingestion.pipeline import Ingester
from ingestion.template import CONTRACT_SHEET, COVER_SHEET, HELP_SHEET, unit_info, write_template

PAIRINGS_CSV = """结对编号,城市单位代码,城市单位名称,农村单位代码,农村单位名称,结对形式,结对日期,是否签订协议
KRL-YJ,652801412005,雅居社区,652801207200,托布力其村,一对一,2023-03-01,是
KRL-LW,652801412003,蓝湾社区,652801207201,上牙克托格拉克村,一对多,2023-03-01,否
KRL-OLD,652801412001,旧社区,652801207202,旧村,一对一,2020-01-01,是
"""
ENDED = "2024-12-31"  # KRL-OLD ended before the template's period


@pytest.fixture
def ingester(settings, db_url):
    with psycopg.connect(db_url) as conn:
        yield Ingester(conn, settings, run_id="test")


@pytest.fixture
def registered(ingester, tmp_path):
    path = tmp_path / "landing" / "652801" / "652801_2025-01_pairings.csv"
    path.parent.mkdir(parents=True)
    path.write_text(PAIRINGS_CSV.replace("2020-01-01,是", f"2020-01-01,{ENDED},是").replace(
        "结对日期,是否签订协议", "结对日期,终止日期,是否签订协议").replace("2023-03-01,是", "2023-03-01,,是").replace(
        "2023-03-01,否", "2023-03-01,,否"), encoding="utf-8")  # fmt: skip
    o = ingester.ingest(path)
    assert (o.status, o.rows_loaded) == ("loaded", 3), o.to_dict()
    return o


def test_layout_headers_lists_and_formats(tmp_path):
    out = write_template(tmp_path / "t.xlsx")
    wb = openpyxl.load_workbook(out)
    kinds = kinds_in_load_order()
    assert wb.sheetnames == [COVER_SHEET, CONTRACT_SHEET, *(k.label_zh for k in kinds), HELP_SHEET]
    assert wb[CONTRACT_SHEET].sheet_state == "hidden"
    for kind in kinds:
        ws = wb[kind.label_zh]
        headers = [c.value for c in ws[1]]
        assert headers == [f.header_with_unit for f in kind.fields]
        # the English field name of every column is machine-readable: note and defined name
        assert [ws.cell(1, i + 1).comment.text.split("\n")[0] for i in range(len(kind.fields))] == kind.field_names
        for f in kind.fields:
            assert f"{kind.name}.{f.name}" in wb.defined_names
        lists = {re.match(r"[A-Z]+", str(dv.sqref)).group(): dv for dv in ws.data_validations.dataValidation}
        for i, f in enumerate(kind.fields):
            column = openpyxl.utils.get_column_letter(i + 1)
            number_format = _column_format(ws, i + 1)
            if f.type in ("enum", "bool"):
                assert lists[column].type == "list" and CONTRACT_SHEET in lists[column].formula1
            if f.type == "count":
                assert (lists[column].type, lists[column].operator) == ("whole", "greaterThanOrEqual")
                assert number_format == "0"
            if f.type == "date":
                assert lists[column].type == "date" and number_format == "yyyy-mm-dd"
            if f.type in ("code", "text"):
                assert number_format == "@"  # Excel keeps a 12-digit code as typed
            if f.name == "pairing_code" and kind.name != "pairings":
                assert "结对关系" in lists[column].formula1  # lists the pairings sheet, new ones included
    activities = wb[RECORD_KINDS["activities"].label_zh]
    assert activities.freeze_panes == "A2"
    contract = wb[CONTRACT_SHEET]
    labels = {c.value for row in contract.iter_rows() for c in row if c.value}
    assert {"主题党日", "产业发展", "已完成", "一对多", "是", "否"} <= labels


def _column_format(ws, index: int) -> str:
    """The number format set on a whole column (openpyxl groups equal columns as min..max)."""
    for dim in ws.column_dimensions.values():
        if dim.min <= index <= dim.max:
            return dim.number_format
    return "General"


def test_filled_in_template_ingests_without_normalisation(ingester, registered, tmp_path):
    period = parse_period("2025-03")
    unit = unit_info(ingester.conn, "652801", period)
    assert unit.name == "库尔勒市"
    assert [p["pairing_code"] for p in unit.pairings] == ["KRL-LW", "KRL-YJ"]  # KRL-OLD ended in 2024
    out = write_template(tmp_path / "fill.xlsx", unit=unit, period=period)

    wb = openpyxl.load_workbook(out)
    cover = wb[COVER_SHEET]
    assert (cover["B4"].value, cover["B5"].value) == ("库尔勒市（652801）", "2025-03")
    cover["B6"], cover["B7"] = "张三", "0996-1234 5678"  # 填报人, 联系电话
    pairings = wb["结对关系"]
    assert [pairings.cell(r, 1).value for r in (2, 3)] == ["KRL-LW", "KRL-YJ"]
    acts = wb["共建活动"]
    rows = [
        (dt.datetime(2025, 3, 5), "KRL-YJ", "主题党日", "三月主题党日", 40, 25, 2, 3),
        (dt.datetime(2025, 3, 18), "KRL-LW", "志愿服务", "植树", 55, 12, None, 1),
    ]
    for r, row in enumerate(rows, start=2):
        for c, value in enumerate(row, start=1):
            acts.cell(r, c, value)
    projects = wb["共建项目"]
    for c, value in enumerate(
        ("P-1", "大棚", "KRL-YJ", "产业发展", dt.datetime(2025, 3, 1), "实施中", 250000.5, 12.5, 30), start=1
    ):
        projects.cell(2, c, value)
    income = wb["收益成效"]
    for c, value in enumerate(("KRL-YJ", -3000, 52000, 12.75, 98000.25, 6, 30), start=1):
        income.cell(2, c, value)
    wb.save(out)

    o = ingester.ingest(out)
    assert (o.status, o.reporting_unit_code, o.period) == ("loaded", "652801", "2025-03")
    assert (o.rows_received, o.rows_loaded, o.rows_quarantined) == (6, 6, 0), [e.to_dict() for e in o.errors]
    assert o.normalisations == [], [n.message_en for n in o.normalisations]
    assert [w.code for w in o.warnings] == ["W001_NEGATIVE_INCOME"]  # the loss we typed, nothing else
    assert sorted(o.record_kinds) == ["activities", "income_effects", "pairings", "projects"]
    q = ingester.conn
    acts_row = q.execute(
        "select count(*), sum(participants), sum(party_member_participants) from raw.activities"
    ).fetchone()
    assert acts_row == (2, 95, 37)
    money = q.execute("select investment_yuan, land_mu from raw.projects").fetchone()
    assert [float(x) for x in money] == [250000.5, 12.5]
    assert q.execute("select count(*) from raw.activities a where a::text like '%%张三%%'").fetchone()[0] == 0


def test_an_empty_template_sheet_is_no_report(ingester, registered, tmp_path):
    """A sheet left with its header only does not replace that kind's earlier report."""
    period = parse_period("2025-01")
    unit = unit_info(ingester.conn, "652801", period)
    out = write_template(tmp_path / "acts.xlsx", unit=unit, period=period)
    wb = openpyxl.load_workbook(out)
    wb["结对关系"].delete_rows(2, 10)  # the district clears the pre-filled pairings
    for c, value in enumerate((dt.datetime(2025, 1, 9), "KRL-YJ", "培训", "冬训", 20, 10, 0, 0), start=1):
        wb["共建活动"].cell(2, c, value)
    wb.save(out)
    o = ingester.ingest(out)
    assert (o.status, o.record_kinds, o.rows_loaded) == ("loaded", ["activities"], 1)
    assert o.supersedes == {}  # pairings of 2025-01 stay those of the csv
    assert set(o.kind_counts) == {"activities"}


def test_a_template_with_nothing_filled_in_is_refused(ingester, tmp_path):
    out = write_template(
        tmp_path / "blank.xlsx", unit=unit_info(ingester.conn, "652801"), period=parse_period("2025-02")
    )
    o = ingester.ingest(out)
    assert (o.status, [e.code for e in o.errors]) == ("rejected", ["F015_NO_DATA"])
    assert (o.reporting_unit_code, o.period) == ("652801", "2025-02")


def test_cli(settings, tmp_path):
    env = dict(os.environ, PAIRSTATS_HOME=str(settings.home), PAIRSTATS_WAREHOUSE_URL=settings.warehouse_url)

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "ingestion.cli", "template", *args], env=env, capture_output=True, text=True
        )

    ok = run(str(tmp_path / "a.xlsx"), "--unit", "510107", "--period", "2024Q3")
    assert ok.returncode == 0, ok.stderr
    assert "0 registered pairing(s)" in ok.stdout and Path(tmp_path / "a.xlsx").stat().st_size > 5000
    title = openpyxl.load_workbook(tmp_path / "a.xlsx")[COVER_SHEET]["A1"].value
    assert title == "2024年第三季度城乡结对共建统计表"
    unknown = run(str(tmp_path / "b.xlsx"), "--unit", "999999")
    assert unknown.returncode == 2 and "999999" in unknown.stderr and "不在区划代码库中" in unknown.stderr
    assert run(str(tmp_path / "c.xlsx"), "--period", "June").returncode == 2
