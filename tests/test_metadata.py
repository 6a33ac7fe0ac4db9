"""Reporting unit and period: from the envelope, the block, the title, the name, the folder."""

from __future__ import annotations

import datetime as dt

import pytest

from ingestion.metadata import Period, parse_period, resolve
from ingestion.problems import FileRejected


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("2024-06", "2024-06"),
        ("2024年6月", "2024-06"),
        ("2024Q2", "2024Q2"),
        ("2024年第二季度", "2024Q2"),
        ("2024年二季度", "2024Q2"),
        ("武侯区2024年第三季度城乡结对共建统计表", "2024Q3"),
        ("2024年6月城乡结对共建活动统计表", "2024-06"),
        ("652801_2025-01_activities", "2025-01"),
        ("报表202403", "2024-03"),
    ],
)
def test_parse_period(text, code):
    assert parse_period(text).code == code


@pytest.mark.parametrize("text", ["", "城乡结对共建统计表", "2024年", "2024-13", "2024年1月至2024年3月"])
def test_no_single_period(text):
    assert parse_period(text) is None


def test_period_bounds():
    assert Period.quarter(2024, 3) == Period("2024Q3", dt.date(2024, 7, 1), dt.date(2024, 9, 30))
    assert Period.month(2024, 2).end == dt.date(2024, 2, 29)


def test_resolve_from_block_title_and_folder():
    meta = resolve(
        envelope={},
        preamble=[
            "武侯区2024年第三季度城乡结对共建活动统计表",
            "填报单位：成都市武侯区委组织部（510107）    报告期：2024年第三季度    "
            "填报人：李某    联系电话：028-8555 0000",
        ],
        file_name="武侯区2024年第三季度城乡结对共建统计表.xlsx",
        landing_folder="510107",
    )
    assert (meta.reporting_unit_code, meta.period.code) == ("510107", "2024Q3")


def test_resolve_from_file_name():
    meta = resolve(envelope={}, preamble=[], file_name="652801_2025-01_activities.csv", landing_folder="landing")
    assert (meta.reporting_unit_code, meta.period.code) == ("652801", "2025-01")


def test_contradiction_names_the_sources():
    with pytest.raises(FileRejected) as err:
        resolve(envelope={}, preamble=["2024年6月统计表"], file_name="652801_2024-07.csv", landing_folder=None)
    p = err.value.problem
    assert p.code == "F008_CONTRADICTORY_METADATA"
    assert "title = 2024-06" in p.message_en and "file name = 2024-07" in p.message_en


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"envelope": {}, "preamble": [], "file_name": "2024-06.csv", "landing_folder": None}, "F006_NO_UNIT"),
        ({"envelope": {}, "preamble": [], "file_name": "activities.csv", "landing_folder": "652801"}, "F007_NO_PERIOD"),
        (
            {
                "envelope": {"reporting_unit_code": "652801", "period": "June"},
                "preamble": [],
                "file_name": "x.json",
                "landing_folder": None,
            },
            "F007_NO_PERIOD",
        ),
    ],
)
def test_missing_metadata(kwargs, code):
    with pytest.raises(FileRejected) as err:
        resolve(**kwargs)
    assert err.value.problem.code == code
