"""Value and header parsing: what districts type, and what the warehouse stores."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from ingestion.columns import parse_column
from ingestion.contract import ACTIVITIES, INCOME_EFFECTS, PROJECTS
from ingestion.headers import detect_kind, match_header
from ingestion.normalise import is_note_row, is_total_row, parse_cell, parse_date, parse_number


@pytest.mark.parametrize(
    ("raw", "value", "approximate"),
    [
        ("1,300", 1300, False),
        ("１２３", 123, False),
        ("100余", 100, True),
        ("200多", 200, True),
        ("近200", 200, True),
        ("约50", 50, True),
        (" 42 ", 42, False),
        (86.0, 86, False),
        (7, 7, False),
        ("-5", -5, False),
    ],
)
def test_numbers(raw, value, approximate):
    p = parse_number(raw)
    assert (p.value, p.approximate, p.error) == (value, approximate, None)


@pytest.mark.parametrize("raw", [None, "", "—", "——", "-", "/", "无", "  "])
def test_empty_markers(raw):
    p = parse_number(raw)
    assert p.value is None and p.error is None


@pytest.mark.parametrize("raw", ["待统计", "=1+1", "+", "@sum", "12人多人", "abc"])
def test_not_numbers_are_errors_never_evaluated(raw):
    assert parse_number(raw).error == "R002_NOT_A_NUMBER"


def test_units_in_cells_and_headers():
    money = PROJECTS.get("investment_yuan")
    assert parse_cell(money, "1.6万元").value == 16_000
    assert parse_cell(money, "5000万").value == 50_000_000
    assert parse_cell(money, "2亿元").value == 200_000_000
    assert parse_cell(money, 36.5, factor=1e4).value == 365_000  # header said 万元
    assert parse_cell(money, "20万元", factor=1e4).value == 200_000  # the cell's unit wins
    tonnes = INCOME_EFFECTS.get("produce_sold_tonnes")
    assert parse_cell(tonnes, "710吨").value == 710
    assert parse_cell(tonnes, "500公斤").value == 0.5
    assert parse_cell(tonnes, "3000斤").value == 1.5
    assert parse_cell(tonnes, "2000", factor=1e-3).value == 2  # header said 公斤
    land = PROJECTS.get("land_mu")
    assert parse_cell(land, "1.2万亩").value == 12_000
    assert parse_cell(tonnes, "5万元").error == "R002_NOT_A_NUMBER"  # money in a weight column


def test_counts_must_be_whole():
    participants = ACTIVITIES.get("participants")
    assert parse_cell(participants, "40余").value == 40
    assert parse_cell(participants, "12.5").error == "R005_NOT_INTEGER"


@pytest.mark.parametrize(
    "raw", ["2024-06-05", "2024/6/5", "2024.6.5", "2024年6月5日", "20240605", 45448, dt.datetime(2024, 6, 5, 0, 0)]
)
def test_dates(raw):
    assert parse_date(raw).value == dt.date(2024, 6, 5)


@pytest.mark.parametrize("raw", ["2024-02-30", "下旬", "6月5日", 12.5])
def test_bad_dates(raw):
    assert parse_date(raw).error == "R003_NOT_A_DATE"


def test_enums_accept_labels_and_codes():
    f = ACTIVITIES.get("activity_type")
    assert parse_cell(f, "主题党日").value == "themed_party_day"
    assert parse_cell(f, "themed_party_day").value == "themed_party_day"
    assert parse_cell(f, "联欢").value == "联欢"  # unknown: left for the GX suite to reject


def test_headers_with_synonyms_units_brackets_and_breaks():
    cells = ["活动日期", "结对编号", "活动类型", "活动名称", "参加人数", "其中\n党员人数", "解决问题数"]
    assert detect_kind(cells) is ACTIVITIES
    columns, notes = match_header(ACTIVITIES, cells)
    assert [c.field.name for c in columns] == [
        "activity_date",
        "pairing_code",
        "activity_type",
        "title",
        "participants",
        "party_member_participants",
        "problems_resolved",
    ]
    assert any("参加人数" in n.message_zh for n in notes)
    cols, _ = match_header(PROJECTS, ["项目编号", "投入金额(万元)", "涉及土地（万亩）"])
    assert {c.field.name: c.factor for c in cols} == {"project_code": 1, "investment_yuan": 1e4, "land_mu": 1e4}
    assert detect_kind(["investment_yuan", "project_code", "project_name", "pairing_code", "category"]) is PROJECTS
    assert detect_kind(["填报单位：武侯区", None, None]) is None


def test_total_and_note_rows():
    assert is_total_row(["合计", None, None, 344])
    assert is_total_row([None, "总 计", 1])
    assert not is_total_row(["2024-07-01", "WH-DT", "合计"])
    assert is_note_row(["注：参加人数含群众。", None, None])
    assert not is_note_row(["2024-07-01", "WH-DT", "主题党日"])


def test_parse_column_parses_each_distinct_value_once_and_keeps_rows():
    f = ACTIVITIES.get("participants")
    raw = pd.Series(["12", "约30", None, "待统计", "12", "１２"] * 1000, dtype=object)
    res = parse_column(f, raw)
    assert list(res.values[:6]) == [12, 30, pd.NA, pd.NA, 12, 12]
    assert list(res.errors[:6]) == [None, None, None, "R002_NOT_A_NUMBER", None, None]
    assert list(res.approximate[:6]) == [False, True, False, False, False, False]
    assert len(res.values) == 6000


@pytest.mark.parametrize("dtype", [object, "str"])
def test_parse_column_with_many_distinct_values(dtype):
    """Above the vectorising threshold (256 distinct values) plain cells are parsed in one pass and
    the rest one by one, with the same answers; the frame may come read-only from arrow."""
    f = ACTIVITIES.get("participants")
    plain = [str(n) for n in range(1000)]
    messy = [f"约{n}" for n in range(300)] + [f"1,{n:03d}" for n in range(300)] + ["１２", "12.5", "待统计", "7人"]
    raw = pd.Series(plain + messy, dtype=dtype)
    res = parse_column(f, raw)
    values = res.values.tolist()
    assert values[:1000] == list(range(1000))
    assert values[1000:1300] == list(range(300)) and res.approximate[1000:1300].all()
    assert values[1300:1600] == [1000 + n for n in range(300)]
    assert values[1600] == 12 and values[1603] == 7
    assert res.errors.tolist()[1601:1603] == ["R005_NOT_INTEGER", "R002_NOT_A_NUMBER"]
    assert not res.approximate[:1000].any()
