"""The command line as an operator uses it: real subprocesses, real warehouse."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psycopg

from ingestion.config import CHECKOUT, Settings

PAIRINGS = """结对编号,城市单位代码,农村单位代码,结对形式,结对日期,是否签订协议
KRL-YJ,652801412005,652801207200,一对一,2023-03-01,是
"""
ACTIVITIES = """活动日期,结对编号,活动类型,活动名称,参与人数,其中党员人数
2025-01-05,KRL-YJ,培训,a,30,20
2025-01-06,KRL-YJ,培训,b,10,20
"""


def run(settings: Settings, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PAIRSTATS_HOME=str(settings.home), PAIRSTATS_WAREHOUSE_URL=settings.warehouse_url or "")
    return subprocess.run(
        [sys.executable, "-m", "ingestion.cli", *args], env=env, capture_output=True, text=True, check=False
    )


def test_ingest_json_lines(settings, tmp_path):
    unit = tmp_path / "landing" / "652801"
    unit.mkdir(parents=True)
    (unit / "652801_2025-01_pairings.csv").write_text(PAIRINGS, encoding="utf-8")
    (unit / "652801_2025-01_activities.csv").write_text(ACTIVITIES, encoding="utf-8")
    (unit / "652801_2025-01.xlsx").write_bytes(b"not a workbook")
    proc = run(settings, "ingest", "--json", str(tmp_path / "landing"))
    assert proc.returncode == 1, proc.stderr  # one file was refused
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    by_name = {Path(o["file"]).name: o for o in lines}
    assert by_name["652801_2025-01_pairings.csv"]["status"] == "loaded"
    acts = by_name["652801_2025-01_activities.csv"]
    assert (acts["status"], acts["rows_loaded"], acts["rows_quarantined"]) == ("loaded", 1, 1)
    error = acts["errors"][0]
    assert error["code"] == "R011_PARTY_ABOVE_PARTICIPANTS" and error["row"] == 3
    assert error["message_zh"] and error["message_en"]
    refused = by_name["652801_2025-01.xlsx"]
    assert refused["status"] == "rejected" and refused["errors"][0]["code"] == "F001_UNREADABLE"
    again = run(settings, "ingest", "--json", str(unit / "652801_2025-01_activities.csv"))
    assert json.loads(again.stdout)["status"] == "duplicate"


def test_check_writes_nothing_and_exit_codes(settings, tmp_path):
    unit = tmp_path / "652801"
    unit.mkdir()
    pairings = unit / "652801_2025-01_pairings.csv"
    pairings.write_text(PAIRINGS, encoding="utf-8")
    clean = run(settings, "check", str(pairings))
    assert clean.returncode == 0, clean.stdout + clean.stderr
    bad = unit / "652801_2025-01_activities.csv"
    bad.write_text(ACTIVITIES.replace("KRL-YJ", "KRL-ZZ"), encoding="utf-8")
    rows = run(settings, "check", str(bad))
    assert rows.returncode == 1
    assert "R009_UNKNOWN_PAIRING" in rows.stdout and "未登记" in rows.stdout and "not registered" in rows.stdout
    refused = unit / "652801_2025-01.json"
    refused.write_text("{broken", encoding="utf-8")
    assert run(settings, "check", str(refused)).returncode == 2
    with psycopg.connect(settings.warehouse_url) as conn:
        assert conn.execute("select count(*) from audit.submission_files").fetchone()[0] == 0


def test_warehouse_url_prints_the_configured_server(settings):
    proc = run(settings, "warehouse", "url")
    assert proc.returncode == 0 and proc.stdout.strip() == settings.warehouse_url


def test_settings_defaults_and_separate_homes(tmp_path):
    default = Settings.from_env({})
    assert default.home == CHECKOUT / ".pairstats" and default.warehouse_url is None
    assert default.landing == default.home / "landing"
    a = Settings.from_env({"PAIRSTATS_HOME": str(tmp_path / "a")})
    b = Settings.from_env({"PAIRSTATS_HOME": str(tmp_path / "b")})
    assert a.pgdata != b.pgdata  # two homes never share an embedded database
    assert Settings.from_env({"PAIRSTATS_MAX_FILE_MB": "2"}).max_file_bytes == 2 * 1024 * 1024


def test_readme_lists_every_error_code():
    from ingestion.problems import CATALOG

    readme = (CHECKOUT / "README.md").read_text(encoding="utf-8")
    block = readme.split("<!-- error-codes:start -->")[1].split("<!-- error-codes:end -->")[0]
    listed = {line.split("`")[1] for line in block.splitlines() if line.startswith("| `")}
    assert listed == set(CATALOG)


def test_check_report_tells_a_district_what_is_wrong_in_both_languages(settings, tmp_path):
    """`pairstats check` on the 云阳县 WPS workbook: every rejected row with sheet, row and column,
    every normalisation, the verdict; exit 1; --json carries the same with the exit code."""
    import shutil

    src = CHECKOUT / "tests" / "fixtures" / "districts" / "landing" / "500235"
    shutil.copytree(src, tmp_path / "500235")
    path = next((tmp_path / "500235").glob("*.xlsx"))
    proc = run(settings, "check", str(path))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    out = proc.stdout
    assert "结论 / verdict: 部分行将被隔离，其余行可以载入 / some rows would be quarantined" in out
    assert "数据行 rows 10: 可载入 would load 9, 将隔离 would be quarantined 1" in out
    assert (
        "✘ R011_PARTY_ABOVE_PARTICIPANTS [活动情况] 第 6 行 row 6 列 column party_member_participants: "
        "党员人数 40 大于参与人数 35 / Party members 40 exceed participants 35"
    ) in out
    assert "! W001_NEGATIVE_INCOME [成效] 第 3 行 row 3" in out and "请核实 / Collective income increase" in out
    assert "~ [活动情况] 列 column participants: 已规范化" in out and "近200→200（约 / approx.）" in out
    assert "60人→60" in out and "2500公斤→2.5" in out
    as_json = json.loads(run(settings, "check", "--json", str(path)).stdout)
    assert as_json["exit_code"] == 1 and as_json["rows_quarantined"] == 1
    assert {n["code"] for n in as_json["normalisations"]} == {"W003_NORMALISED"}
    with psycopg.connect(settings.warehouse_url) as conn:
        assert conn.execute("select count(*) from audit.submission_files").fetchone()[0] == 0


def test_every_subcommand_of_the_grammar_has_its_command():
    import argparse

    from ingestion.cli import COMMANDS
    from ingestion.cli_parser import build_parser

    parser = build_parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    named = {name: p.get_default("command_name") for name, p in sub.choices.items()}
    assert named == {name: name for name in COMMANDS}
