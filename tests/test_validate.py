"""Row rules run as Great Expectations suites: one test per rule, the suites' wiring, scale."""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from ingestion import suites
from ingestion.contract import RECORD_KINDS, FieldType
from ingestion.problems import CATALOG, Problem
from ingestion.validate import ValidationParams, validate

ROOT = Path(__file__).resolve().parent.parent
SUITES = ROOT / "expectations"

PARAMS = ValidationParams(
    period="2025-01",
    period_start=dt.date(2025, 1, 1),
    period_end=dt.date(2025, 1, 31),
    known_pairings=frozenset({"KRL-YJ-TBLQ", "KRL-LW-SYK"}),
    today=dt.date(2025, 2, 10),
)

# dtypes as the normaliser produces them
DTYPES = {
    FieldType.DATE: "datetime64[s]",
    FieldType.COUNT: "Int64",
    FieldType.MONEY: "float64",
    FieldType.NUMBER: "float64",
    FieldType.BOOL: "boolean",
}

GOOD: dict[str, dict[str, Any]] = {
    "pairings": {
        "pairing_code": "KRL-YJ-TBLQ",
        "urban_unit_code": "652801412005",
        "urban_unit_name": "萨依巴格街道",
        "rural_unit_code": "652801207200",
        "rural_unit_name": "托布力其乡",
        "pairing_form": "one_to_one",
        "paired_on": dt.date(2023, 3, 1),
        "ended_on": None,
        "agreement_signed": True,
    },
    "activities": {
        "activity_date": dt.date(2025, 1, 15),
        "pairing_code": "KRL-YJ-TBLQ",
        "activity_type": "themed_party_day",
        "title": "主题党日共建",
        "participants": 40,
        "party_member_participants": 25,
        "problems_resolved": 2,
        "suggestions_collected": 5,
    },
    "projects": {
        "project_code": "XM-2025-001",
        "project_name": "香梨产销对接",
        "pairing_code": "KRL-LW-SYK",
        "category": "industry",
        "start_date": dt.date(2024, 11, 1),
        "status": "in_progress",
        "investment_yuan": 160000.0,
        "land_mu": 35.5,
        "households_benefited": 48,
    },
    "income_effects": {
        "pairing_code": "KRL-YJ-TBLQ",
        "collective_income_increase_yuan": -2000.0,  # a loss is a warning elsewhere, not a GX failure
        "villager_income_increase_yuan": 56000.0,
        "produce_sold_tonnes": 710.0,
        "produce_sales_yuan": 1420000.0,
        "jobs_created": 12,
        "households_benefited": 30,
    },
}


def frame(kind: str, rows: list[dict[str, Any]], first_row: int = 5, sheet: str | None = "Sheet1") -> pd.DataFrame:
    """A normalised frame: typed columns, ``_row`` from ``first_row``, ``_sheet``."""
    columns: dict[str, Any] = {}
    for f in RECORD_KINDS[kind].fields:
        values = [r[f.name] for r in rows]
        if f.type == FieldType.DATE:
            columns[f.name] = pd.to_datetime(pd.Series(values, dtype=object)).astype("datetime64[s]")
        elif f.type in DTYPES:
            columns[f.name] = pd.Series(values, dtype=object).astype(DTYPES[f.type])
        else:
            columns[f.name] = pd.Series(values, dtype="string")
    df = pd.DataFrame(columns)
    df["_row"] = range(first_row, first_row + len(rows))
    df["_sheet"] = sheet
    return df


def good_and(kind: str, **bad: Any) -> pd.DataFrame:
    """Rows 5 (good) and 6 (good but for ``bad``)."""
    return frame(kind, [GOOD[kind], {**GOOD[kind], **bad}])


def assert_one(problems: list[Problem], code: str, column: str, value: str | None, row: int = 6) -> Problem:
    assert [(p.code, p.row, p.column, p.value) for p in problems] == [(code, row, column, value)]
    p = problems[0]
    assert p.sheet == "Sheet1"
    assert p.message_zh and p.message_en
    assert "{" not in p.message_zh + p.message_en  # every template parameter was filled
    return p


def fields_where(predicate) -> list[tuple[str, str]]:
    return [(k.name, f.name) for k in RECORD_KINDS.values() for f in k.fields if predicate(f)]


# --------------------------------------------------------------------------- good rows


@pytest.mark.parametrize("kind", list(RECORD_KINDS))
def test_good_rows_pass(kind):
    assert validate(kind, frame(kind, [GOOD[kind]] * 3), PARAMS) == []


def test_empty_frame_has_no_problems():
    assert validate("activities", frame("activities", []), PARAMS) == []


# --------------------------------------------------------------------------- one test per rule


@pytest.mark.parametrize(("kind", "name"), fields_where(lambda f: f.required))
def test_r001_required_missing(kind, name):
    p = assert_one(validate(kind, good_and(kind, **{name: None}), PARAMS), "R001_REQUIRED_MISSING", name, None)
    assert RECORD_KINDS[kind].get(name).header_zh in p.message_zh
    assert name in p.message_en


@pytest.mark.parametrize(("kind", "name"), fields_where(lambda f: not f.required))
def test_optional_fields_may_be_empty(kind, name):
    assert validate(kind, good_and(kind, **{name: None}), PARAMS) == []


@pytest.mark.parametrize(
    ("kind", "name"),
    fields_where(lambda f: f.type in (FieldType.COUNT, FieldType.MONEY, FieldType.NUMBER) and f.min_value == 0),
)
def test_r004_negative(kind, name):
    f = RECORD_KINDS[kind].get(name)
    bad = -3 if f.type == FieldType.COUNT else -2.5
    problems = validate(kind, good_and(kind, **{name: bad}), PARAMS)
    # a negative participants count is R004 only: R011 (party members above participants) is
    # not also reported for it (the suite's row_condition participants >= 0)
    p = assert_one(problems, "R004_NEGATIVE", name, str(bad))
    assert f.header_zh in p.message_zh
    zero = {name: 0, **({"party_member_participants": 0} if name == "participants" else {})}
    assert validate(kind, good_and(kind, **zero), PARAMS) == []


@pytest.mark.parametrize(("kind", "name"), fields_where(lambda f: f.type == FieldType.ENUM))
def test_r006_unknown_code(kind, name):
    p = assert_one(validate(kind, good_and(kind, **{name: "团建"}), PARAMS), "R006_UNKNOWN_CODE", name, "团建")
    assert RECORD_KINDS[kind].get(name).header_zh in p.message_zh
    for code in RECORD_KINDS[kind].get(name).codes:
        assert validate(kind, good_and(kind, **{name: code}), PARAMS) == []


@pytest.mark.parametrize("kind", ["activities", "projects", "income_effects"])
def test_r009_unknown_pairing(kind):
    problems = validate(kind, good_and(kind, pairing_code="KRL-XX-NONE"), PARAMS)
    p = assert_one(problems, "R009_UNKNOWN_PAIRING", "pairing_code", "KRL-XX-NONE")
    assert "KRL-XX-NONE" in p.message_zh
    # the set is a suite parameter: the same rows pass once the pairing is known
    known = ValidationParams(**{**PARAMS.__dict__, "known_pairings": PARAMS.known_pairings | {"KRL-XX-NONE"}})
    assert validate(kind, good_and(kind, pairing_code="KRL-XX-NONE"), known) == []


def test_r009_does_not_apply_to_pairings_themselves():
    assert validate("pairings", good_and("pairings", pairing_code="KRL-NEW-ONE"), PARAMS) == []


@pytest.mark.parametrize("day", [dt.date(2024, 12, 31), dt.date(2025, 2, 1), dt.date(2019, 1, 15)])
def test_r010_date_outside_period(day):
    problems = validate("activities", good_and("activities", activity_date=day), PARAMS)
    p = assert_one(problems, "R010_DATE_OUTSIDE_PERIOD", "activity_date", day.isoformat())
    assert "2025-01" in p.message_en and "2025-01-01" in p.message_en and "2025-01-31" in p.message_en
    assert "2025-01-01" in p.message_zh


def test_r010_period_bounds_are_inclusive():
    rows = [{**GOOD["activities"], "activity_date": d} for d in (dt.date(2025, 1, 1), dt.date(2025, 1, 31))]
    assert validate("activities", frame("activities", rows), PARAMS) == []


def test_r010_date_beyond_nanosecond_range():
    # a year typed as 0024 fits datetime64[s] but not datetime64[ns]; GX's slow path still catches it
    problems = validate("activities", good_and("activities", activity_date=dt.date(24, 1, 15)), PARAMS)
    assert_one(problems, "R010_DATE_OUTSIDE_PERIOD", "activity_date", "0024-01-15")


def test_r011_party_above_participants():
    problems = validate("activities", good_and("activities", participants=10, party_member_participants=12), PARAMS)
    p = assert_one(problems, "R011_PARTY_ABOVE_PARTICIPANTS", "party_member_participants", "12")
    assert "10" in p.message_en and "12" in p.message_zh
    equal = good_and("activities", participants=10, party_member_participants=10)
    assert validate("activities", equal, PARAMS) == []


def test_r013_date_in_future():
    tomorrow = PARAMS.today + dt.timedelta(days=1)
    problems = validate("pairings", good_and("pairings", paired_on=tomorrow), PARAMS)
    p = assert_one(problems, "R013_DATE_IN_FUTURE", "paired_on", tomorrow.isoformat())
    assert tomorrow.isoformat() in p.message_zh
    assert validate("pairings", good_and("pairings", paired_on=PARAMS.today), PARAMS) == []


def test_r014_end_before_start():
    problems = validate("pairings", good_and("pairings", ended_on=dt.date(2023, 2, 28)), PARAMS)
    p = assert_one(problems, "R014_END_BEFORE_START", "ended_on", "2023-02-28")
    assert "2023-03-01" in p.message_en  # {other}: the pairing date
    assert validate("pairings", good_and("pairings", ended_on=dt.date(2023, 3, 1)), PARAMS) == []


# --------------------------------------------------------------------------- mapping back to rows


def test_one_problem_per_failing_row_and_expectation_in_row_order():
    rows = [
        {**GOOD["activities"], "title": None, "participants": -1},  # R001 + R004 (no R011 for a negative count)
        GOOD["activities"],
        {**GOOD["activities"], "activity_type": "团建", "pairing_code": "KRL-XX-NONE"},
    ]
    df = frame("activities", rows, first_row=11, sheet="共建活动")
    df.index = [70, 3, 9]  # the pipeline passes a filtered chunk: any index
    problems = validate("activities", df, PARAMS)
    assert [(p.row, p.code, p.column) for p in problems] == [
        (11, "R001_REQUIRED_MISSING", "title"),
        (11, "R004_NEGATIVE", "participants"),
        (13, "R009_UNKNOWN_PAIRING", "pairing_code"),
        (13, "R006_UNKNOWN_CODE", "activity_type"),
    ]
    assert {p.sheet for p in problems} == {"共建活动"}


def _as_object(df: pd.DataFrame) -> pd.DataFrame:
    out = df.copy()
    for c in ("pairing_code", "activity_type", "title"):
        out[c] = out[c].astype(object).where(out[c].notna(), None)
    return out


def _as_float_counts(df: pd.DataFrame) -> pd.DataFrame:
    out = df.copy()
    for c in ("participants", "party_member_participants", "problems_resolved", "suggestions_collected"):
        out[c] = out[c].astype("float64")
    return out


def _as_categorical(df: pd.DataFrame) -> pd.DataFrame:
    return df.astype({"pairing_code": "category", "activity_type": "category"})


@pytest.mark.parametrize("variant", [_as_object, _as_float_counts, _as_categorical])
def test_every_dtype_the_normaliser_may_hand_over(variant):
    rows = [
        {**GOOD["activities"], "title": None, "problems_resolved": None, "suggestions_collected": -2},
        {**GOOD["activities"], "activity_type": "团建", "pairing_code": None},
        {**GOOD["activities"], "participants": 3, "activity_date": dt.date(2025, 3, 1)},
    ]
    df = frame("activities", rows)
    expected = [(p.code, p.row, p.column, p.value) for p in validate("activities", df, PARAMS)]
    assert expected == [
        ("R001_REQUIRED_MISSING", 5, "title", None),
        ("R004_NEGATIVE", 5, "suggestions_collected", "-2"),
        ("R001_REQUIRED_MISSING", 6, "pairing_code", None),
        ("R006_UNKNOWN_CODE", 6, "activity_type", "团建"),
        ("R010_DATE_OUTSIDE_PERIOD", 7, "activity_date", "2025-03-01"),
        ("R011_PARTY_ABOVE_PARTICIPANTS", 7, "party_member_participants", "25"),
    ]
    assert [(p.code, p.row, p.column, p.value) for p in validate("activities", variant(df), PARAMS)] == expected


def test_many_known_pairings():
    many = ValidationParams(**{**PARAMS.__dict__, "known_pairings": frozenset(f"P{i:05}" for i in range(20_000))})
    df = frame("activities", [{**GOOD["activities"], "pairing_code": "P00042"}, GOOD["activities"]])
    problems = validate("activities", df, many)
    assert [(p.code, p.row, p.value) for p in problems] == [("R009_UNKNOWN_PAIRING", 6, "KRL-YJ-TBLQ")]


def test_frame_without_a_contract_column_is_refused():
    with pytest.raises(ValueError, match="title"):
        validate("activities", frame("activities", [GOOD["activities"]]).drop(columns="title"), PARAMS)


def test_gx_exception_inside_an_expectation_fails_loudly(monkeypatch):
    import great_expectations as gx
    import great_expectations.expectations as gxe

    suites.warm_up()
    # comparing a text column with a number raises inside GX, which reports it as a result
    broken = gx.ExpectationSuite(
        name="pairstats_activities",
        expectations=[
            gxe.ExpectColumnValuesToBeBetween(column="title", min_value=0, meta={"reason_code": "R004_NEGATIVE"})
        ],
    )
    monkeypatch.setitem(suites.get_runtime().suites, "activities", broken)
    with pytest.raises(RuntimeError, match=r"expect_column_values_to_be_between\(title\)"):
        validate("activities", frame("activities", [GOOD["activities"]]), PARAMS)


def test_gx_does_not_hash_every_batch(monkeypatch):
    from great_expectations.execution_engine import pandas_execution_engine

    suites.warm_up()

    def refuse(df):
        raise AssertionError("GX fingerprinted the batch")

    monkeypatch.setattr(pandas_execution_engine, "hash_pandas_dataframe", refuse)
    assert validate("activities", frame("activities", [GOOD["activities"]]), PARAMS) == []


# --------------------------------------------------------------------------- the suites


def _suite_files() -> dict[str, dict]:
    return {k: json.loads((SUITES / f"{k}.json").read_text(encoding="utf-8")) for k in RECORD_KINDS}


def test_every_expectation_has_a_catalogued_reason_code():
    for kind, data in _suite_files().items():
        assert data["name"] == f"pairstats_{kind}"
        assert data["expectations"]
        for exp in data["expectations"]:
            assert exp["meta"]["reason_code"] in CATALOG, (kind, exp)
    # and the suites as GX loaded them say the same
    for suite in suites.get_runtime().suites.values():
        for exp in suite.expectations:
            assert exp.meta["reason_code"] in CATALOG


def test_suites_are_loaded_from_the_json_files():
    loaded = suites.get_runtime().suites
    for kind, data in _suite_files().items():
        assert [e.configuration.to_json_dict()["type"] for e in loaded[kind].expectations] == [
            e["type"] for e in data["expectations"]
        ]


def test_expectations_dir_is_overridable(monkeypatch, tmp_path):
    monkeypatch.setenv("PAIRSTATS_EXPECTATIONS_DIR", str(tmp_path))
    assert suites.expectations_dir() == tmp_path
    monkeypatch.delenv("PAIRSTATS_EXPECTATIONS_DIR")
    assert suites.expectations_dir() == SUITES


@pytest.mark.slow
def test_committed_suites_match_the_contract():
    proc = subprocess.run(
        [sys.executable, str(SUITES / "build_suites.py"), "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr


def test_build_suites_check_detects_a_stale_suite(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("build_suites", SUITES / "build_suites.py")
    build_suites = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build_suites)
    for kind in RECORD_KINDS:
        (tmp_path / f"{kind}.json").write_bytes((SUITES / f"{kind}.json").read_bytes())
    assert build_suites.main(["--check", "--out", str(tmp_path)]) == 0
    stale = json.loads((tmp_path / "projects.json").read_text(encoding="utf-8"))
    stale["expectations"].pop()  # e.g. a rule added to the contract but not to the suite
    (tmp_path / "projects.json").write_text(json.dumps(stale), encoding="utf-8")
    assert build_suites.main(["--check", "--out", str(tmp_path)]) == 1
    assert "projects.json" in capsys.readouterr().err
    assert build_suites.main(["--out", str(tmp_path)]) == 0
    assert (tmp_path / "projects.json").read_bytes() == (SUITES / "projects.json").read_bytes()


def test_importing_the_module_does_not_import_gx():
    code = "import sys, ingestion.validate; sys.exit('great_expectations' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=False).returncode == 0


# --------------------------------------------------------------------------- scale


def test_200k_rows_with_3_bad_rows():
    n = 200_000
    rng = np.random.default_rng(7)
    participants = rng.integers(10, 200, n)
    df = pd.DataFrame(
        {
            "activity_date": (pd.Timestamp("2025-01-01") + pd.to_timedelta(rng.integers(0, 31, n), unit="D")).astype(
                "datetime64[s]"
            ),
            "pairing_code": pd.Series(np.array(sorted(PARAMS.known_pairings))[rng.integers(0, 2, n)], dtype="string"),
            "activity_type": pd.Series(np.array(["training", "cultural", "donation"])[rng.integers(0, 3, n)]).astype(
                "string"
            ),
            "title": pd.Series([f"活动{i % 97}" for i in range(n)], dtype="string"),
            "participants": pd.array(participants, dtype="Int64"),
            "party_member_participants": pd.array(participants // 3, dtype="Int64"),
            "problems_resolved": pd.array(rng.integers(0, 4, n), dtype="Int64"),
            "suggestions_collected": pd.array(rng.integers(0, 4, n), dtype="Int64"),
            "_row": np.arange(2, n + 2),
            "_sheet": "activities.csv",
        }
    )
    df.loc[df.index[::5], "suggestions_collected"] = pd.NA  # optional and empty: fine
    df.loc[1234, "problems_resolved"] = -1
    df.loc[99_999, "activity_type"] = "unknown_type"
    df.loc[n - 1, "activity_date"] = pd.Timestamp("2025-02-01")
    problems = validate("activities", df, PARAMS)
    assert [(p.code, p.row, p.column, p.value) for p in problems] == [
        ("R004_NEGATIVE", 1236, "problems_resolved", "-1"),
        ("R006_UNKNOWN_CODE", 100_001, "activity_type", "unknown_type"),
        ("R010_DATE_OUTSIDE_PERIOD", n + 1, "activity_date", "2025-02-01"),
    ]
