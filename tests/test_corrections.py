"""Which file is current: ``audit.submission_versions``, the one definition that the ingester
and dbt (``stg_audit__submission_versions``) both read; and ``pairstats reprocess``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psycopg

AUDIT_ROW = """insert into audit.submission_files
    (submission_id, file_hash, original_name, size_bytes, reporting_unit_code, period, period_start, period_end,
     record_kinds, status, reprocess_of)
    overriding system value
    values (%s, %s, %s, 1, %s, %s, %s::date, %s::date, %s, %s, %s)"""


def test_versions_follow_the_order_of_receipt(db):
    """A later loaded file supersedes the earlier ones, kind by kind; rejected and duplicate files
    are no versions; a re-run takes the place of the file it re-runs (so it replaces that file
    but not a correction received after it); other units and periods are independent."""
    rows = [
        # id, hash, unit, period, kinds, status, reprocess_of
        (1, "a", "652801", "2025-01", ["pairings", "activities", "income_effects"], "loaded", None),
        (2, "b", "652801", "2025-02", ["activities"], "loaded", None),
        (3, "c", "652801", "2025-01", [], "rejected", None),
        (4, "a", "652801", "2025-01", ["activities"], "duplicate", None),
        (5, "d", "652801", "2025-01", ["activities"], "loaded", None),
        (6, "e", "440881", "2025-01", ["activities"], "loaded", None),
        (7, "f", "652801", "2025-01", ["activities"], "loaded", None),
        (8, "a", "652801", "2025-01", ["pairings", "activities", "income_effects"], "loaded", 1),  # re-run of 1
        (9, "c", "652801", "2025-01", ["projects"], "loaded", 3),  # a refused file, re-run after a fix
    ]
    for sid, h, unit, period, kinds, status, rerun in rows:
        start = f"{period}-01"
        db.execute(AUDIT_ROW, (sid, h * 64, f"f{sid}.csv", unit, period, start, start, kinds, status, rerun))
    got = db.execute(
        """select submission_id, record_kind, version_number, supersedes_submission_id,
                  superseded_by_submission_id, current_submission_id, is_current
           from audit.submission_versions order by reporting_unit_code, period, record_kind, version_number"""
    ).fetchall()
    assert got == [
        (6, "activities", 1, None, None, 6, True),
        (1, "activities", 1, None, 8, 7, False),
        (8, "activities", 2, 1, 5, 7, False),  # the re-run replaces 1, and 5 (received later) replaces it
        (5, "activities", 3, 8, 7, 7, False),
        (7, "activities", 4, 5, None, 7, True),
        (1, "income_effects", 1, None, 8, 8, False),
        (8, "income_effects", 2, 1, None, 8, True),
        (1, "pairings", 1, None, 8, 8, False),
        (8, "pairings", 2, 1, None, 8, True),
        (9, "projects", 1, None, None, 9, True),
        (2, "activities", 1, None, None, 2, True),
    ]


PAIRINGS = """结对编号,城市单位代码,农村单位代码,结对形式,结对日期,是否签订协议
T-1,652801412005,652801207200,一对一,2023-03-01,是
"""


def test_reprocess_cli_after_registering_the_unit(settings, tmp_path):
    """A file refused for an unknown unit (F005) lands with `pairstats reprocess` once the unit is in
    the register: from the archive, under its original name and folder."""
    landing = tmp_path / "landing" / "659999"
    landing.mkdir(parents=True)
    path = landing / "659999_2025-01_pairings.csv"
    path.write_text(PAIRINGS, encoding="utf-8")
    env = dict(os.environ, PAIRSTATS_HOME=str(settings.home), PAIRSTATS_WAREHOUSE_URL=settings.warehouse_url)

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "ingestion.cli", *args], env=env, capture_output=True, text=True)

    first = run("ingest", "--json", str(path))
    refused = json.loads(first.stdout)
    assert (first.returncode, refused["status"], refused["errors"][0]["code"]) == (1, "rejected", "F005_UNKNOWN_UNIT")
    assert refused["reporting_unit_code"] == "659999"  # what the file said is kept with the refusal
    path.unlink()  # the landing copy is gone: the archive is what counts

    still = run("reprocess")  # the unit is still unknown: refused again, and recorded
    assert still.returncode == 1 and "✘ rejected" in still.stdout and "not in the region register" in still.stdout
    with psycopg.connect(settings.warehouse_url) as conn:
        conn.execute(
            "insert into ref.regions (tree, code, name, level, level_name, parent_code, source)"
            " values ('civil', '659999', '测试市', 3, 'county', '6590', 'test')"
        )
    done = run("reprocess", "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    outcome = json.loads(done.stdout.splitlines()[-1])
    assert (outcome["status"], outcome["rows_loaded"]) == ("loaded", 1)
    assert Path(outcome["file"]) == path and outcome["reprocess_of"] == refused["submission_id"]
    assert run("reprocess").stdout.strip() == "nothing to reprocess / 没有需要重新处理的文件"
    with psycopg.connect(settings.warehouse_url) as conn:
        statuses = conn.execute(
            "select status, reprocess_of is not null from audit.submission_files order by submission_id"
        ).fetchall()
    assert statuses == [("rejected", False), ("rejected", True), ("loaded", True)]
