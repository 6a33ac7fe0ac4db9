"""Files made the way office tools make them land with the figures the contract gives them, in any order.

The fixtures (tests/fixtures/offices/, written by make_offices.py) and every figure asserted here:
tests/fixtures/offices/README.md — computed by hand from shared/submission-spec.md (v1.1), never
from the reader. Files are ingested in batches with ``ingestion.service.ingest_files``: a file
whose rows named a pairing not registered yet (R009) is re-run from the archive once a file
registering it lands, and the re-run replaces the first attempt; so every figure below is read
from the *current* attempt of each file (``audit.submission_versions.is_current``).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import random
import shutil
import subprocess
import sys
import uuid
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from ingestion.config import CHECKOUT, Settings
from ingestion.outcome import FileOutcome
from ingestion.pipeline import Ingester
from ingestion.warehouse import with_database
from tests.conftest import create_database, drop_database

FIXTURES = Path(__file__).resolve().parent / "fixtures"
OFFICES = FIXTURES / "offices"
EXAMPLES = FIXTURES / "examples"

LAIXI = "370285/莱西市2025年5月城乡结对共建活动统计表.xls"
LUOZHOU = "440881/罗州街道结对关系.csv"
LIANJIANG = "440881/廉江市2025年3月共建活动.csv"
YY_PAIRINGS = "500235/云阳县城乡结对关系登记表.csv"
YY_PROJECTS = "500235/云阳县2025年第2季度共建项目.csv"
YY_ACTIVITIES = "500235/云阳县2025年10-12月共建活动.csv"
PUJIANG = "510131/蒲江县2025年二季度城乡结对共建统计表.xlsx"
KORLA_PAIRINGS = "652801/库尔勒市结对关系.txt"
KORLA_ACTIVITIES = "652801/库尔勒市2025年8月共建活动.txt"
XINYUAN = "654025/新源县2025年7月共建活动.ods"
WH_Q3 = "510107/武侯区2024年第三季度城乡结对共建统计表.xlsx"
WH_10 = "510107/武侯区2024年10月共建活动.csv"
WH_11 = "510107/武侯区2024年11月共建活动.xls"
WH_12 = "510107/武侯区2024年12月共建活动.txt"
REGISTERING = {LUOZHOU, YY_PAIRINGS, KORLA_PAIRINGS, WH_Q3}  # the files other files' pairings come from


@dataclass(frozen=True)
class Expected:
    """What the current attempt of one file must be."""

    unit: str
    period: str | None
    file_format: str
    encoding: str | None
    kinds: dict[str, tuple[int, int]]  # record kind -> (loaded, quarantined)
    errors: list[str] = field(default_factory=list)  # row-level codes in quarantine, sorted
    warnings: list[str] = field(default_factory=list)

    @property
    def loaded(self) -> int:
        return sum(n for n, _ in self.kinds.values())

    @property
    def quarantined(self) -> int:
        return sum(n for _, n in self.kinds.values())


OFFICE_FILES: dict[str, Expected] = {
    LAIXI: Expected(
        "370285", "2025-05", "xls", None, {"pairings": (3, 0), "activities": (4, 1)}, ["R011_PARTY_ABOVE_PARTICIPANTS"]
    ),
    LUOZHOU: Expected(
        "440881",
        None,
        "csv",
        "gbk",
        {"pairings": (5, 2)},
        ["R017_UNIT_NAME_UNRESOLVED", "R017_UNIT_NAME_UNRESOLVED"],
        ["W004_NAME_CODE_MISMATCH"],
    ),
    LIANJIANG: Expected("440881", "2025-03", "csv", "utf-8-sig", {"activities": (4, 1)}, ["R009_UNKNOWN_PAIRING"]),
    YY_PAIRINGS: Expected("500235", None, "csv", "utf-8-sig", {"pairings": (3, 0)}),
    YY_PROJECTS: Expected("500235", "2025Q2", "csv", "utf-8", {"projects": (3, 0)}),
    YY_ACTIVITIES: Expected("500235", "2025Q4", "csv", "gbk", {"activities": (4, 1)}, ["R010_DATE_OUTSIDE_PERIOD"]),
    PUJIANG: Expected(
        "510131", "2025Q2", "xlsx", None, {"pairings": (4, 0), "income_effects": (3, 1)}, ["R018_NO_MEASURE"]
    ),
    KORLA_PAIRINGS: Expected("652801", None, "tsv", "gbk", {"pairings": (3, 0)}),
    KORLA_ACTIVITIES: Expected("652801", "2025-08", "tsv", "utf-16-le", {"activities": (4, 0)}),
    XINYUAN: Expected("654025", "2025-07", "ods", None, {"pairings": (2, 0), "activities": (3, 0)}),
}
EXAMPLE_FILES: dict[str, Expected] = {  # /work/shared/examples/README.md
    WH_Q3: Expected(
        "510107",
        "2024Q3",
        "xlsx",
        None,
        {"pairings": (3, 0), "activities": (5, 2), "projects": (2, 0), "income_effects": (2, 0)},
        ["R002_NOT_A_NUMBER", "R010_DATE_OUTSIDE_PERIOD"],
    ),
    WH_10: Expected("510107", "2024-10", "csv", "gbk", {"activities": (2, 0)}),
    WH_11: Expected("510107", "2024-11", "xls", None, {"activities": (3, 0)}),
    WH_12: Expected("510107", "2024-12", "tsv", "utf-16-le", {"activities": (2, 0)}),
}
ALL_FILES = {**OFFICE_FILES, **EXAMPLE_FILES}
KEY_OF_NAME = {key.split("/", 1)[1]: key for key in ALL_FILES}

# unit -> (activities, participants, party members, problems, suggestions, participants approximate)
ACTIVITY_TOTALS = {
    "370285": (4, 247, 69, 3, 12, 0),
    "440881": (4, 168, 61, 6, 15, 0),
    "500235": (4, 181, 68, 4, 12, 80),
    "652801": (4, 224, 71, 6, 15, 0),
    "654025": (3, 144, 46, 1, 6, 0),
}
EXAMPLE_ACTIVITY_TOTALS = {"510107": (12, 447, 211, 7, 16, 70)}  # 5 + 2 + 3 + 2 activities
PAIRING_TOTALS = {"370285": 3, "440881": 5, "500235": 3, "510131": 4, "652801": 3, "654025": 2}
# unit -> (rows, collective, villagers, tonnes, sales, jobs, households)
INCOME_TOTALS = {"510131": (3, 175_000, 1_046_000, 320, 1_560_000, 34, 285)}
EXAMPLE_INCOME_TOTALS = {"510107": (2, 155_000, 1_050_000, 315, 2_760_000, 46, 258)}
PROJECT_TOTALS = {"500235": (3, 1_035_000, 120), "510107": (2, 2_165_000, 12)}  # (projects, yuan, 亩)


# --------------------------------------------------------------------------- helpers


def _landing(root: Path, *trees: Path) -> dict[str, Path]:
    """The fixture trees copied to ``root/landing/<unit>/<file>``; 'unit/file' -> path."""
    landing = root / "landing"
    for tree in trees:
        shutil.copytree(tree, landing, dirs_exist_ok=True)
    return {f"{p.parent.name}/{p.name}": p for p in sorted(landing.rglob("*")) if p.is_file()}


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _ingest(url: str, settings: Settings, paths: list[Path]) -> Any:
    """One batch, as one run of the service: ``ingest_files(ingester, paths) -> RunResult``."""
    from ingestion.service import ingest_files  # written alongside these tests

    with psycopg.connect(url) as conn:
        return ingest_files(Ingester(conn, settings, run_id="test_offices"), paths)


def _key(o: FileOutcome) -> str:
    """'unit/file' of an outcome (file names are unique across the fixtures; a re-run keeps its name)."""
    return KEY_OF_NAME[Path(o.file).name]


def _current_attempts(conn: psycopg.Connection, hashes: dict[str, str]) -> dict[str, dict[str, Any]]:
    """'unit/file' -> its latest attempt (a re-run replaces the attempt before it)."""
    cur = conn.execute(
        """select distinct on (file_hash) submission_id, file_hash, status, reporting_unit_code, period,
                  file_format, encoding, rows_received, rows_loaded, rows_quarantined, kind_counts, warnings,
                  reprocess_of
           from audit.submission_files where status <> 'duplicate' order by file_hash, submission_id desc"""
    )
    names = [d.name for d in cur.description]
    by_hash = {row[1]: dict(zip(names, row, strict=True)) for row in cur.fetchall()}
    return {key: by_hash[h] for key, h in hashes.items() if h in by_hash}


def _mismatches(conn: psycopg.Connection, hashes: dict[str, str], expected: dict[str, Expected]) -> list[str]:
    """Every way the current attempts differ from ``expected`` (empty: all as expected)."""
    current = _current_attempts(conn, hashes)
    out: list[str] = []
    for key, exp in expected.items():
        got = current.get(key)
        if got is None:
            out.append(f"{key}: never received")
            continue
        sid = got["submission_id"]
        codes = sorted(
            r[0]
            for r in conn.execute(
                "select reason_code from quarantine.rejected_rows where submission_id = %s", (sid,)
            ).fetchall()
        )
        kinds = {k: (v["loaded"], v["quarantined"]) for k, v in (got["kind_counts"] or {}).items()}
        is_current = dict(
            conn.execute(
                "select record_kind, is_current from audit.submission_versions where submission_id = %s", (sid,)
            ).fetchall()
        )
        seen = {
            "status": got["status"],
            "unit": got["reporting_unit_code"],
            "period": got["period"],
            "file_format": got["file_format"],
            "encoding": got["encoding"],
            "rows": (got["rows_received"], got["rows_loaded"], got["rows_quarantined"]),
            "kinds": kinds,
            "errors": codes,
            "warnings": sorted(w["code"] for w in got["warnings"]),
            "current": is_current,
        }
        wanted = {
            "status": "loaded",
            "unit": exp.unit,
            "period": exp.period,
            "file_format": exp.file_format,
            "encoding": exp.encoding,
            "rows": (exp.loaded + exp.quarantined, exp.loaded, exp.quarantined),
            "kinds": exp.kinds,
            "errors": exp.errors,
            "warnings": exp.warnings,
            "current": dict.fromkeys(exp.kinds, True),
        }
        out += [f"{key}: {k} is {seen[k]!r}, expected {wanted[k]!r}" for k in wanted if seen[k] != wanted[k]]
    return out


def _totals(conn: psycopg.Connection) -> dict[str, dict[str, tuple]]:
    """Sums of the current raw rows per reporting unit, per record kind."""

    def grouped(query: str) -> dict[str, tuple]:
        return {r[0]: tuple(float(x) if isinstance(x, Decimal) else x for x in r[1:]) for r in conn.execute(query)}

    current = (
        "join audit.submission_versions v on v.submission_id = t.submission_id"
        " and v.record_kind = '{kind}' and v.is_current"
    )
    return {
        "activities": grouped(
            "select t.reporting_unit_code, count(*), sum(participants), sum(party_member_participants),"
            " coalesce(sum(problems_resolved), 0), coalesce(sum(suggestions_collected), 0),"
            " coalesce(sum(participants) filter (where t.is_approximate), 0)"
            f" from raw.activities t {current.format(kind='activities')} group by 1"
        ),
        "pairings": grouped(
            f"select t.reporting_unit_code, count(*) from raw.pairings t {current.format(kind='pairings')} group by 1"
        ),
        "income_effects": grouped(
            "select t.reporting_unit_code, count(*), sum(collective_income_increase_yuan),"
            " sum(villager_income_increase_yuan), sum(produce_sold_tonnes), sum(produce_sales_yuan),"
            " sum(jobs_created), sum(households_benefited)"
            f" from raw.income_effects t {current.format(kind='income_effects')} group by 1"
        ),
        "projects": grouped(
            "select t.reporting_unit_code, count(*), sum(investment_yuan), sum(land_mu)"
            f" from raw.projects t {current.format(kind='projects')} group by 1"
        ),
    }


def _floats(totals: dict[str, tuple]) -> dict[str, tuple]:
    return {unit: tuple(float(x) for x in row) for unit, row in totals.items()}


# --------------------------------------------------------------------------- the fixtures themselves


def _generator():
    spec = importlib.util.spec_from_file_location("make_offices", OFFICES / "make_offices.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_fixtures_are_what_the_generator_writes(tmp_path: Path) -> None:
    written = _generator().write_all(tmp_path)
    fresh = {p.relative_to(tmp_path).as_posix(): p.read_bytes() for p in written}
    committed = {
        p.relative_to(OFFICES).as_posix(): p.read_bytes() for p in (OFFICES / "landing").rglob("*") if p.is_file()
    }
    assert sorted(fresh) == sorted(committed)
    assert [name for name in fresh if fresh[name] != committed[name]] == [], "stale: run make_offices.py"
    assert sorted(k.split("/", 1)[1] for k in fresh) == sorted(OFFICE_FILES)
    again = _generator().write_all(tmp_path / "again")
    assert [p.read_bytes() for p in again] == list(fresh.values())  # same bytes every run


def test_the_files_are_what_office_tools_write() -> None:
    """Independent of the pipeline: the bytes are those of the tools named in the README."""
    from python_calamine import CalamineWorkbook

    land = OFFICES / "landing"
    xls = (land / LAIXI).read_bytes()
    assert xls[:8] == b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # OLE2: BIFF8 in a compound file
    book = CalamineWorkbook.from_path(str(land / LAIXI))
    assert book.sheet_names == ["结对关系", "共建活动"]
    sheet = book.get_sheet_by_name("共建活动")
    merged = set(sheet.merged_cell_ranges or [])
    assert {((0, 0), (0, 9)), ((2, 5), (2, 6)), ((2, 0), (3, 0)), ((2, 9), (3, 9))} <= merged
    cells = sheet.to_python(skip_empty_area=False)
    assert cells[3][5:7] == ["合计", "其中党员"] and cells[10][0] == "合\u3000计"
    assert cells[5][1] == "5月8日" and str(cells[4][1]) == "2025-05-06"  # text without a year; a date cell

    book = CalamineWorkbook.from_path(str(land / PUJIANG))
    merged = set(book.get_sheet_by_name("收益成效").merged_cell_ranges or [])
    assert {((2, 1), (2, 2)), ((2, 3), (2, 4)), ((2, 0), (3, 0))} <= merged
    assert book.get_sheet_by_name("收益成效").to_python()[8][0] == "总 计"

    with zipfile.ZipFile(land / XINYUAN) as ods:
        first = ods.infolist()[0]
        assert (first.filename, first.compress_type) == ("mimetype", zipfile.ZIP_STORED)
        assert ods.read("mimetype") == b"application/vnd.oasis.opendocument.spreadsheet"
        assert b'table:number-columns-spanned="8"' in ods.read("content.xml")

    text = (land / KORLA_ACTIVITIES).read_bytes()
    assert text[:2] == b"\xff\xfe"
    decoded = text[2:].decode("utf-16-le")
    assert decoded.endswith("\r\n") and decoded.count("\r\n") == 7 and "\t" in decoded
    assert '\t"""石榴籽""文艺汇演"\t' in decoded and '\t"夏收\n协调会"\t' in decoded and "45874\t" in decoded
    for name in (LUOZHOU, YY_ACTIVITIES, KORLA_PAIRINGS):
        raw = (land / name).read_bytes()
        raw.decode("gbk")
        with pytest.raises(UnicodeDecodeError):
            raw.decode("utf-8")
    for name in (LIANJIANG, YY_PAIRINGS):
        assert (land / name).read_bytes()[:3] == b"\xef\xbb\xbf"
    projects = (land / YY_PROJECTS).read_bytes()
    assert projects[:3] != b"\xef\xbb\xbf" and "2025年4月-6月".encode() in projects
    registration = (land / LUOZHOU).read_bytes().decode("gbk").split("\r\n")
    assert registration[0] == "罗州街道城乡结对关系登记表,,,,,,," and "44930" in registration[2]
    assert '"含""访惠聚""工作队"' in (land / KORLA_PAIRINGS).read_bytes().decode("gbk")


# --------------------------------------------------------------------------- one batch, sorted


@dataclass
class Landed:
    url: str
    settings: Settings
    paths: dict[str, Path]
    hashes: dict[str, str]
    result: Any


@pytest.fixture(scope="module")
def landed(pg_admin_url: str, template_db: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Landed]:
    """The offices' files in one ``ingest_files`` call, sorted by path (activities before pairings)."""
    root = tmp_path_factory.mktemp("offices")
    paths = _landing(root, OFFICES / "landing")
    name = f"pairstats_off_{uuid.uuid4().hex[:10]}"
    create_database(pg_admin_url, name, template_db)
    url = with_database(pg_admin_url, name)
    settings = Settings.from_env({"PAIRSTATS_HOME": str(root / "home"), "PAIRSTATS_WAREHOUSE_URL": url})
    try:
        result = _ingest(url, settings, sorted(paths.values()))
        yield Landed(url, settings, paths, {k: _sha256(p) for k, p in paths.items()}, result)
    finally:
        drop_database(pg_admin_url, name)


def _q(landed: Landed, query: str, *args: Any) -> list[tuple]:
    with psycopg.connect(landed.url) as conn:
        return conn.execute(query, args or None).fetchall()


def _sid(landed: Landed, key: str) -> int:
    """The submission id of the current attempt of one file."""
    with psycopg.connect(landed.url) as conn:
        return _current_attempts(conn, landed.hashes)[key]["submission_id"]


def test_every_file_lands_as_its_readme_says(landed: Landed) -> None:
    with psycopg.connect(landed.url) as conn:
        problems = _mismatches(conn, landed.hashes, OFFICE_FILES)
    assert not problems, "\n".join(problems)


def test_the_batch_reports_each_file_in_order_and_its_reruns(landed: Landed) -> None:
    result = landed.result
    assert [_key(o) for o in result.outcomes] == sorted(OFFICE_FILES, key=lambda k: landed.paths[k])
    first = {_key(o): o for o in result.outcomes}
    # sorted by path, these came before the file registering their pairings: R009 at first, then re-run
    rerun = {LIANJIANG, YY_ACTIVITIES, YY_PROJECTS, KORLA_ACTIVITIES}
    assert sorted(_key(o) for o in result.reruns) == sorted(rerun)
    for o in result.reruns:
        original = first[_key(o)]
        assert o.reprocess_of == original.submission_id and o.submission_id != original.submission_id
        assert "R009_UNKNOWN_PAIRING" in {e.code for e in original.errors}, original.to_dict()
        assert o.status == "loaded" and o.rows_received == original.rows_received
    assert all(o.reprocess_of is None for o in result.outcomes)
    # the first attempt of LIANJIANG: all five rows waited for 罗州街道's registration
    assert (first[LIANJIANG].rows_loaded, first[LIANJIANG].rows_quarantined) == (0, 5)


def test_every_row_is_in_the_warehouse_or_in_quarantine(landed: Landed) -> None:
    with psycopg.connect(landed.url) as conn:
        for key, got in _current_attempts(conn, landed.hashes).items():
            sid = got["submission_id"]
            raw = sum(
                conn.execute(
                    sql.SQL("select count(*) from {} where submission_id = %s").format(sql.Identifier("raw", t)),
                    (sid,),
                ).fetchone()[0]
                for t in ("pairings", "activities", "projects", "income_effects")
            )
            bad = conn.execute(
                "select count(distinct (source_sheet, source_row)) from quarantine.rejected_rows"
                " where submission_id = %s",
                (sid,),
            ).fetchone()[0]
            assert (got["rows_loaded"], got["rows_quarantined"]) == (raw, bad), key
            assert got["rows_received"] == raw + bad, key


def test_current_totals(landed: Landed) -> None:
    with psycopg.connect(landed.url) as conn:
        totals = _totals(conn)
    assert _floats(totals["activities"]) == _floats(ACTIVITY_TOTALS)
    assert totals["pairings"] == {u: (n,) for u, n in PAIRING_TOTALS.items()}
    assert _floats(totals["income_effects"]) == _floats(INCOME_TOTALS)
    assert _floats(totals["projects"]) == _floats({"500235": PROJECT_TOTALS["500235"]})


def test_quarantined_rows_with_cell_and_reason(landed: Landed) -> None:
    with psycopg.connect(landed.url) as conn:
        current = _current_attempts(conn, landed.hashes)
        key_of = {got["submission_id"]: key for key, got in current.items()}
        rows = conn.execute(
            "select submission_id, source_sheet, source_row, value, reason_code, reason_zh, reason_en"
            " from quarantine.rejected_rows where submission_id = any(%s) order by source_row",
            (list(key_of),),
        ).fetchall()
    where = sorted((key_of[r[0]], r[1], r[2], r[4]) for r in rows)
    assert where == [
        (LAIXI, "共建活动", 10, "R011_PARTY_ABOVE_PARTICIPANTS"),
        (LIANJIANG, "廉江市2025年3月共建活动.csv", 7, "R009_UNKNOWN_PAIRING"),
        (LUOZHOU, "罗州街道结对关系.csv", 7, "R017_UNIT_NAME_UNRESOLVED"),
        (LUOZHOU, "罗州街道结对关系.csv", 8, "R017_UNIT_NAME_UNRESOLVED"),
        (YY_ACTIVITIES, "云阳县2025年10-12月共建活动.csv", 7, "R010_DATE_OUTSIDE_PERIOD"),
        (PUJIANG, "收益成效", 8, "R018_NO_MEASURE"),
    ]
    by = {(key_of[r[0]], r[2]): r for r in rows}
    assert by[(LAIXI, 10)][3] == "32"
    assert by[(LIANJIANG, 7)][3] == "LZ-05"
    assert by[(LUOZHOU, 7)][3] == "幸福村"
    ambiguous = by[(LUOZHOU, 8)]
    assert ambiguous[3] == "大垌村委会"
    assert "440881102202" in ambiguous[5] + ambiguous[6] and "440881106217" in ambiguous[5] + ambiguous[6]
    assert all(r[5] and r[6] and r[5] != r[6] for r in rows)


def test_units_named_not_coded(landed: Landed) -> None:
    sid = _sid(landed, LUOZHOU)
    rows = _q(
        landed,
        "select pairing_code, urban_unit_code, rural_unit_code, paired_on::text, period"
        " from raw.pairings where submission_id = %s order by pairing_code",
        sid,
    )
    assert rows == [
        ("LZ-01", "440881001", "440881105", "2023-01-04", None),  # 罗州街道 by name; 44930
        ("LZ-02", "440881001001", "440881105203", "2023-03-15", None),  # exact names
        ("LZ-03", "440881001003", "440881105204", "2023-04-01", None),  # names without 居委会 / 村委会
        ("LZ-04", "440881001002", "440881105202", "2023-05-08", None),
        ("LZ-07", "440881001006", "440881105205", "2023-04-01", None),  # the code wins over the name (W004)
    ]
    (warning,) = _q(landed, "select warnings from audit.submission_files where submission_id = %s", sid)[0][0]
    assert warning["code"] == "W004_NAME_CODE_MISMATCH"
    assert "440881105205" in warning["message_zh"] and "油房村委会" in warning["message_zh"]


def test_registrations_have_no_period(landed: Landed) -> None:
    with psycopg.connect(landed.url) as conn:
        current = _current_attempts(conn, landed.hashes)
    for key in (LUOZHOU, YY_PAIRINGS, KORLA_PAIRINGS):
        got = current[key]
        assert (got["status"], got["period"]) == ("loaded", None), key
        in_raw = _q(landed, "select period from raw.pairings where submission_id = %s", got["submission_id"])
        assert in_raw and {p for (p,) in in_raw} == {None}, key
    yy = _q(
        landed,
        "select pairing_code, paired_on::text from raw.pairings where submission_id = %s order by 1",
        current[YY_PAIRINGS]["submission_id"],
    )
    assert yy == [("YY-01", "2023-01-04"), ("YY-02", "2023-03-01"), ("YY-03", "2023-05-10")]  # 44930, 44986
    lx = _q(
        landed,
        "select pairing_code, rural_unit_code, paired_on::text, period from raw.pairings where submission_id = %s"
        " order by 1",
        current[LAIXI]["submission_id"],
    )
    assert lx == [
        ("LX-01", "370285104", "2022-09-01", "2025-05"),
        ("LX-02", "370285104310", "2022-09-01", "2025-05"),
        ("LX-03", "370285107276", "2023-02-15", "2025-05"),  # typed as a number: every digit kept
    ]


def test_dates_as_offices_write_them(landed: Landed) -> None:
    with psycopg.connect(landed.url) as conn:
        current = _current_attempts(conn, landed.hashes)
        dates = {
            key: [
                r[0]
                for r in conn.execute(
                    "select activity_date::text from raw.activities where submission_id = %s order by source_row",
                    (current[key]["submission_id"],),
                ).fetchall()
            ]
            for key in (LAIXI, LIANJIANG, YY_ACTIVITIES, KORLA_ACTIVITIES, XINYUAN)
        }
    assert dates == {
        LAIXI: ["2025-05-06", "2025-05-08", "2025-05-20", "2025-05-27"],  # date cells; 5月8日, 5月27日
        LIANJIANG: ["2025-03-05", "2025-03-12", "2025-03-17", "2025-03-20"],  # 3/5, 3月12日, 45733
        YY_ACTIVITIES: ["2025-10-09", "2025-11-05", "2025-12-03", "2025-12-18"],  # 45939, 11/5, 12月3日
        KORLA_ACTIVITIES: ["2025-08-05", "2025-08-12", "2025-08-20", "2025-08-28"],  # 45874, …, 45897
        XINYUAN: ["2025-07-03", "2025-07-15", "2025-07-22"],
    }


def test_text_exports_keep_quotes_line_breaks_and_counts(landed: Landed) -> None:
    sid = _sid(landed, KORLA_ACTIVITIES)
    rows = _q(
        landed,
        "select title, participants, party_member_participants, problems_resolved, suggestions_collected"
        " from raw.activities where submission_id = %s order by source_row",
        sid,
    )
    assert rows == [
        ("夏季义诊进村", 65, 20, 2, 5),
        ('"石榴籽"文艺汇演', 120, 18, 0, 3),
        ("夏收 协调会", 24, 24, 4, 6),  # a line break inside a title is stored as a space
        ("助学捐赠", 15, 9, 0, 1),
    ]


def test_empty_income_measures_are_null_never_zero(landed: Landed) -> None:
    sid = _sid(landed, PUJIANG)
    rows = _q(
        landed,
        "select pairing_code, collective_income_increase_yuan, villager_income_increase_yuan, produce_sold_tonnes,"
        " produce_sales_yuan, jobs_created, households_benefited from raw.income_effects where submission_id = %s"
        " order by pairing_code",
        sid,
    )
    as_numbers = [(r[0], *(None if x is None else float(x) for x in r[1:])) for r in rows]
    assert as_numbers == [
        ("PJ-01", 125_000, 860_000, 320, 1_560_000, 28, 210),
        ("PJ-02", 32_000, 186_000, None, None, 6, 45),  # — : sold no produce
        ("PJ-03", 18_000, None, None, None, None, 30),  # blank and /
    ]


def test_projects_in_wan_yuan_and_households_in_cells(landed: Landed) -> None:
    sid = _sid(landed, YY_PROJECTS)
    rows = _q(
        landed,
        "select project_code, pairing_code, category, status, investment_yuan, land_mu, households_benefited"
        " from raw.projects where submission_id = %s order by project_code",
        sid,
    )
    as_numbers = [(*r[:4], *(None if x is None else float(x) for x in r[4:])) for r in rows]
    assert as_numbers == [
        ("YY-P01", "YY-02", "industry", "in_progress", 850_000, 120, 96),
        ("YY-P02", "YY-03", "livelihood", "completed", 125_000, None, 40),
        ("YY-P03", "YY-01", "talent", "planned", 60_000, None, None),
    ]


# --------------------------------------------------------------------------- pairstats check


CHECK_PHRASES: dict[str, list[str]] = {
    LAIXI: [
        "表头跨两行",
        "header over two rows",
        "列不是数据，已忽略",
        "is not data; ignored",
        "未写年份",
        "has no year",
        "文件类型为",
        "file type is",
    ],
    PUJIANG: ["表头跨两行", "header over two rows"],
    LUOZHOU: ["解析为区划代码", "resolved to division code", "Excel 日期序列号", "Excel serial date"],
    LIANJIANG: ["未写年份", "has no year", "Excel 日期序列号", "Excel serial date"],
    YY_ACTIVITIES: ["Excel 日期序列号", "Excel serial date", "未写年份", "has no year"],
    KORLA_ACTIVITIES: ["utf-16", "文件类型为", "file type is", "Excel 日期序列号", "Excel serial date"],
    KORLA_PAIRINGS: ["文件类型为", "file type is", "列不是数据，已忽略", "is not data; ignored"],
    XINYUAN: ["文件类型为", "file type is"],
}


def test_check_explains_each_normalisation_in_chinese_and_english(db_url: str, tmp_path: Path) -> None:
    """``pairstats check FILE…`` (``ingestion.cli.main``) as a district runs it, in its own process: its
    report goes to the stdout of that process (``print_check_report`` binds ``sys.stdout`` when the
    module is imported, so pytest's capsys cannot see it in-process)."""
    paths = _landing(tmp_path, OFFICES / "landing")
    env = {**os.environ, "PAIRSTATS_WAREHOUSE_URL": db_url, "PAIRSTATS_HOME": str(tmp_path / "home")}
    run = subprocess.run(
        [sys.executable, "-m", "ingestion.cli", "check", *(str(paths[k]) for k in CHECK_PHRASES)],
        cwd=CHECKOUT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    out = run.stdout
    assert run.returncode in (0, 1, 2), run.stderr
    sections: dict[str, str] = {}
    key = None
    for line in out.splitlines():
        if line.startswith("== "):
            key = KEY_OF_NAME[Path(line[3:].strip()).name]
            sections[key] = ""
        elif key is not None:
            sections[key] += line + "\n"
    assert sorted(sections) == sorted(CHECK_PHRASES), out
    missing = {
        key: [p for p in phrases if p.lower() not in sections[key].lower()] for key, phrases in CHECK_PHRASES.items()
    }
    assert {k: v for k, v in missing.items() if v} == {}, out
    with psycopg.connect(db_url) as conn:  # check writes nothing
        assert conn.execute("select count(*) from audit.submission_files").fetchone() == (0,)


# --------------------------------------------------------------------------- the shared examples, any order

EXAMPLE_ORDERS = {
    "workbook_first": [WH_Q3, WH_10, WH_11, WH_12],
    "workbook_last": [WH_10, WH_11, WH_12, WH_Q3],
    "mixed": [WH_12, WH_Q3, WH_11, WH_10],
}
EXAMPLE_RERUNS = {"workbook_first": [], "workbook_last": [WH_10, WH_11, WH_12], "mixed": [WH_12]}


@pytest.mark.parametrize("order", list(EXAMPLE_ORDERS))
def test_the_examples_land_as_their_readme_says_in_any_order(order: str, settings, db_url, tmp_path: Path) -> None:
    paths = _landing(tmp_path, EXAMPLES)
    assert sorted(paths) == sorted(EXAMPLE_FILES)
    result = _ingest(db_url, settings, [paths[k] for k in EXAMPLE_ORDERS[order]])
    assert [_key(o) for o in result.outcomes] == EXAMPLE_ORDERS[order]
    first = {_key(o): o for o in result.outcomes}
    assert sorted(_key(o) for o in result.reruns) == sorted(EXAMPLE_RERUNS[order])
    for o in result.reruns:  # the rows naming WH-DY / WH-SS / WH-DT waited for the workbook, then landed
        assert o.reprocess_of == first[_key(o)].submission_id
        assert {e.code for e in first[_key(o)].errors} == {"R009_UNKNOWN_PAIRING"}
    hashes = {k: _sha256(p) for k, p in paths.items()}
    with psycopg.connect(db_url) as conn:
        problems = _mismatches(conn, hashes, EXAMPLE_FILES)
        assert not problems, "\n".join(problems)
        totals = _totals(conn)
        current = _current_attempts(conn, hashes)
        per_file = {
            key: conn.execute(
                "select count(*), sum(participants), coalesce(sum(participants) filter (where is_approximate), 0),"
                " sum(party_member_participants) from raw.activities where submission_id = %s",
                (current[key]["submission_id"],),
            ).fetchone()
            for key in EXAMPLE_FILES
        }
    assert per_file == {WH_Q3: (5, 224, 40, 115), WH_10: (2, 42, 30, 21), WH_11: (3, 76, 0, 49), WH_12: (2, 105, 0, 26)}
    assert _floats(totals["activities"]) == _floats(EXAMPLE_ACTIVITY_TOTALS)
    assert _floats(totals["income_effects"]) == _floats(EXAMPLE_INCOME_TOTALS)
    assert _floats(totals["projects"]) == _floats({"510107": PROJECT_TOTALS["510107"]})
    assert totals["pairings"] == {"510107": (3,)}


# --------------------------------------------------------------------------- order never matters (marts)

MARTS = ("fct_activity_counts", "fct_income_effects", "fct_projects", "rpt_region_rollup")


def _permutations(keys: list[str]) -> dict[str, list[list[str]]]:
    """name -> the batches (one ``ingest_files`` call each) the files arrive in."""
    ordered = sorted(keys)
    shuffled = list(ordered)
    random.Random(20251231).shuffle(shuffled)
    others = [k for k in shuffled if k not in REGISTERING]
    return {
        "sorted": [ordered],
        "reversed": [ordered[::-1]],
        "pairings_last_over_three_calls": [others[: len(others) // 2], others[len(others) // 2 :], sorted(REGISTERING)],
        "seeded_shuffle": [shuffled],
    }


def _mart_rows(url: str) -> dict[str, list[tuple]]:
    """Every mart's rows, sorted, without the lineage columns (submission ids differ between runs)."""
    out: dict[str, list[tuple]] = {}
    with psycopg.connect(url) as conn:
        for table in MARTS:
            columns = [
                r[0]
                for r in conn.execute(
                    "select column_name from information_schema.columns where table_schema = 'marts'"
                    " and table_name = %s and column_name not like '%%submission_id%%' order by ordinal_position",
                    (table,),
                )
            ]
            assert columns, table
            query = sql.SQL("select {} from {} order by {}").format(
                sql.SQL(", ").join(map(sql.Identifier, columns)),
                sql.Identifier("marts", table),
                sql.SQL(", ").join(sql.Literal(i) for i in range(1, len(columns) + 1)),
            )
            out[table] = conn.execute(query).fetchall()
    return out


def _mart_figures(url: str) -> dict[str, Any]:
    with psycopg.connect(url) as conn:

        def rows(query: str) -> dict[str, tuple]:
            return {r[0]: tuple(None if x is None else float(x) for x in r[1:]) for r in conn.execute(query).fetchall()}

        def rollup(attribution: str, region: str, grain: str, start: str, measures: list[str]) -> tuple:
            query = sql.SQL(
                "select {} from marts.rpt_region_rollup where tree = 'civil' and attribution = %s"
                " and region_code = %s and period_grain = %s and period_start = %s"
            ).format(sql.SQL(", ").join(map(sql.Identifier, measures)))
            found = conn.execute(query, (attribution, region, grain, start)).fetchall()
            return tuple(None if x is None else float(x) for x in found[0]) if found else ()

        return {
            "activities": rows(
                "select reporting_unit_code, sum(activity_count), sum(participants), sum(party_member_participants),"
                " sum(problems_resolved), sum(suggestions_collected),"
                " count(*) filter (where rural_unit_code is null or urban_unit_code is null)"
                " from marts.fct_activity_counts group by 1"
            ),
            "income": rows(
                "select reporting_unit_code, count(*), sum(collective_income_increase_yuan),"
                " sum(villager_income_increase_yuan), sum(produce_sold_tonnes), sum(produce_sales_yuan),"
                " sum(jobs_created), sum(households_benefited), count(villager_income_increase_yuan),"
                " count(produce_sold_tonnes), count(jobs_created) from marts.fct_income_effects group by 1"
            ),
            "projects": rows(
                "select reporting_unit_code, count(*), sum(investment_yuan), sum(land_mu)"
                " from marts.fct_projects group by 1"
            ),
            "rollup": {
                "石角镇 2025-03": rollup(
                    "rural_unit", "440881105", "month", "2025-03-01", ["activity_count", "participants"]
                ),
                "木马村委会 2025-03": rollup(
                    "rural_unit", "440881105205", "month", "2025-03-01", ["activity_count", "participants"]
                ),
                "油房村委会 2025-03": rollup(
                    "rural_unit", "440881105206", "month", "2025-03-01", ["activity_count", "participants"]
                ),
                "蒲江县 2025Q2": rollup(
                    "reporting_unit",
                    "510131",
                    "quarter",
                    "2025-04-01",
                    [
                        "collective_income_increase_yuan",
                        "villager_income_increase_yuan",
                        "villager_income_increase_yuan_rows",
                        "produce_sold_tonnes",
                        "produce_sold_tonnes_rows",
                        "jobs_created",
                        "households_benefited",
                    ],
                ),
                "云阳县 2025": rollup(
                    "reporting_unit",
                    "500235",
                    "year",
                    "2025-01-01",
                    ["participants", "project_count", "investment_yuan"],
                ),
            },
        }


EXPECTED_MARTS = {
    "activities": {
        **{u: (t[0], t[1], t[2], t[3], t[4], 0) for u, t in ACTIVITY_TOTALS.items()},
        **{u: (t[0], t[1], t[2], t[3], t[4], 0) for u, t in EXAMPLE_ACTIVITY_TOTALS.items()},
    },
    "income": {
        "510131": (3, 175_000, 1_046_000, 320, 1_560_000, 34, 285, 2, 1, 2),
        "510107": (2, 155_000, 1_050_000, 315, 2_760_000, 46, 258, 2, 2, 2),
    },
    "projects": PROJECT_TOTALS,
    "rollup": {
        "石角镇 2025-03": (4, 168),  # LZ-01 (the town), LZ-02/03/07 (its villages, two of them named)
        "木马村委会 2025-03": (1, 25),  # LZ-07: the code, not the name written beside it
        "油房村委会 2025-03": (),
        "蒲江县 2025Q2": (175_000, 1_046_000, 2, 320, 1, 34, 285),
        "云阳县 2025": (181, 3, 1_035_000),
    },
}


@pytest.mark.slow
@pytest.mark.timeout(1800)  # four warehouses: ~15 files and one dbt build (20-40 s) each
def test_order_never_matters(pg_admin_url: str, template_db: str, tmp_path: Path) -> None:
    """The offices' files and the shared examples, in four orders, each into its own warehouse, then
    ``dbt build``: the same current rows, the same marts, equal to the figures of the READMEs."""
    from ingestion import dbt

    keys = sorted(ALL_FILES)
    permutations = _permutations(keys)
    marts: dict[str, dict[str, list[tuple]]] = {}
    figures: dict[str, dict[str, Any]] = {}
    databases: list[str] = []
    try:
        for name, batches in permutations.items():
            assert sorted(k for batch in batches for k in batch) == keys, name
            root = tmp_path / name
            paths = _landing(root, OFFICES / "landing", EXAMPLES)
            assert sorted(paths) == keys
            db = f"pairstats_ord_{uuid.uuid4().hex[:10]}"
            create_database(pg_admin_url, db, template_db)
            databases.append(db)
            url = with_database(pg_admin_url, db)
            settings = Settings.from_env({"PAIRSTATS_HOME": str(root / "home"), "PAIRSTATS_WAREHOUSE_URL": url})
            results = [_ingest(url, settings, [paths[k] for k in batch]) for batch in batches]
            originals = {o.submission_id: o for r in results for o in r.outcomes}
            for r in results:
                for o in r.reruns:  # a re-run replaces an earlier attempt that waited for a pairing
                    assert o.reprocess_of in originals, (name, o.to_dict())
                    assert "R009_UNKNOWN_PAIRING" in {e.code for e in originals[o.reprocess_of].errors}
            hashes = {k: _sha256(p) for k, p in paths.items()}
            with psycopg.connect(url) as conn:
                problems = _mismatches(conn, hashes, ALL_FILES)
                assert not problems, name + ":\n" + "\n".join(problems)
                totals = _totals(conn)
            assert _floats(totals["activities"]) == _floats({**ACTIVITY_TOTALS, **EXAMPLE_ACTIVITY_TOTALS}), name
            assert _floats(totals["income_effects"]) == _floats({**INCOME_TOTALS, **EXAMPLE_INCOME_TOTALS}), name
            assert _floats(totals["projects"]) == _floats(PROJECT_TOTALS), name
            assert totals["pairings"] == {u: (n,) for u, n in {**PAIRING_TOTALS, "510107": 3}.items()}, name

            assert dbt.build(settings), f"dbt build failed ({name})"
            marts[name] = _mart_rows(url)
            figures[name] = _mart_figures(url)
    finally:
        for db in databases:
            drop_database(pg_admin_url, db)

    first = next(iter(permutations))
    expected_marts = {
        k: _floats(v) if k != "rollup" else {n: tuple(map(float, t)) for n, t in v.items()}
        for k, v in EXPECTED_MARTS.items()
    }
    assert figures[first] == expected_marts
    for name in permutations:
        assert figures[name] == figures[first], name
        for table in MARTS:
            assert marts[name][table] == marts[first][table], (name, table)
