"""The corpus of bad files (tests/corpus/): every failure kind gets its exact code, the rest of the
batch still lands, and every row received is in the warehouse or in quarantine.

Each corpus file is ingested as one batch: a good pairings file for 652801 (registers KRL-YJ and
KRL-LW), the corpus file in its landing folder, then a good 652801 2025-02 activities file. The
expected outcomes are in tests/corpus/manifest.json, written by tests/corpus/make_corpus.py.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from ingestion.archive import archived_copy
from ingestion.outcome import FileOutcome
from ingestion.pipeline import Ingester
from ingestion.problems import CATALOG

CORPUS = Path(__file__).resolve().parent / "corpus"
MANIFEST: list[dict[str, Any]] = json.loads((CORPUS / "manifest.json").read_text(encoding="utf-8"))
RAW_TABLES = ("pairings", "activities", "projects", "income_effects")
GENERATED = ("files", "manifest.json", "README.md")  # what make_corpus.py writes

GOOD_PAIRINGS = """结对编号,城市单位代码,城市单位名称,农村单位代码,农村单位名称,结对形式,结对日期,是否签订协议
KRL-YJ,652801412005,雅居社区,652801207200,托布力其村,一对一,2023-03-01,是
KRL-LW,652801412003,蓝湾社区,652801207201,上牙克托格拉克村,一对一,2023-03-01,否
"""
GOOD_NEXT_PERIOD = """活动日期,结对编号,活动类型,活动名称,参与人数,其中党员人数,解决问题数,收集建议数
2025-02-06,KRL-YJ,主题党日,春节慰问,25,18,2,1
2025-02-18,KRL-LW,培训,春耕农技培训,40,9,1,4
"""


def _cases() -> list[Any]:
    params = []
    for case in MANIFEST:
        marks = [pytest.mark.xfail(strict=True, reason=case["xfail"])] if case.get("xfail") else []
        params.append(pytest.param(case, id=Path(case["path"]).name, marks=marks))
    return params


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _one(conn: psycopg.Connection, query: Any, *args: Any) -> Any:
    row = conn.execute(query, args).fetchone()
    assert row is not None
    return row[0] if len(row) == 1 else row


def _raw_counts(conn: psycopg.Connection, submission_id: int) -> dict[str, int]:
    return {
        kind: _one(
            conn,
            sql.SQL("select count(*) from {}.{} where submission_id = %s").format(
                sql.Identifier("raw"), sql.Identifier(kind)
            ),
            submission_id,
        )
        for kind in RAW_TABLES
    }


def _check_reconciles(conn: psycopg.Connection, settings: Any, path: Path, o: FileOutcome) -> None:
    """What the outcome says is what the warehouse holds, and the file is kept byte for byte."""
    name = path.name
    assert o.submission_id is not None, name
    status, received, n_loaded, n_quarantined, errors, archive_path = _one(
        conn,
        "select status, rows_received, rows_loaded, rows_quarantined, errors, archive_path"
        " from audit.submission_files where submission_id = %s",
        o.submission_id,
    )
    raw = _raw_counts(conn, o.submission_id)
    quarantined_rows, problems = _one(
        conn,
        "select count(distinct (source_sheet, source_row)), count(*) from quarantine.rejected_rows"
        " where submission_id = %s",
        o.submission_id,
    )
    if o.status == "loaded":
        assert status == "loaded", name
        assert (received, n_loaded, n_quarantined) == (o.rows_received, o.rows_loaded, o.rows_quarantined), name
        assert o.rows_received == o.rows_loaded + o.rows_quarantined, name
        assert sum(raw.values()) == o.rows_loaded, (name, raw)
        for kind, counts in o.kind_counts.items():
            assert raw[kind] == counts["loaded"], (name, kind)
        assert quarantined_rows == o.rows_quarantined, name
        assert problems == len(o.errors), name  # one quarantine row per problem
        assert errors == [], name
    else:
        assert o.status == "rejected", (name, o.status)
        assert status == "rejected", name
        assert (received, n_loaded, n_quarantined) == (0, 0, 0), name
        assert raw == dict.fromkeys(RAW_TABLES, 0), name
        assert (quarantined_rows, problems) == (0, 0), name
        assert [e["code"] for e in errors] == [e.code for e in o.errors], name
    kept = archived_copy(settings, o.file_hash or "", path.suffix)
    assert kept.is_file(), name
    assert kept.read_bytes() == path.read_bytes(), name
    assert archive_path == str(kept), name


@pytest.mark.parametrize("case", _cases())
def test_corpus_file(case: dict[str, Any], settings, db_url, tmp_path: Path) -> None:
    settings = dataclasses.replace(settings, **case.get("settings", {}))
    landing = tmp_path / "landing"
    source = CORPUS / case["path"]
    before = _write(landing / "652801" / "652801_2025-01_pairings.csv", GOOD_PAIRINGS.encode())
    corpus_file = _write(landing / source.parent.name / source.name, source.read_bytes())
    after = _write(landing / "652801" / "652801_2025-02_activities.csv", GOOD_NEXT_PERIOD.encode())
    batch = [before, corpus_file, after]
    if "max_file_bytes" in case.get("settings", {}):
        # refuses this one file only: every other file of the batch is within the limit
        assert corpus_file.stat().st_size > settings.max_file_bytes
        assert all(p.stat().st_size <= settings.max_file_bytes for p in (before, after))

    with psycopg.connect(db_url) as conn:
        ingester = Ingester(conn, settings, run_id="corpus")
        outcomes = [ingester.ingest(p) for p in batch]
        first, got, last = outcomes

        # the corpus file: its status and its exact codes
        assert got.status == case["status"], got.to_dict()
        codes = sorted(e.code for e in got.errors)
        assert codes in [case["errors"], *([c] for c in case.get("accept", []))], got.to_dict()
        assert sorted(w.code for w in got.warnings) == case["warnings"], got.to_dict()
        if got.status == "rejected":
            assert len(got.errors) == 1 and codes[0].startswith("F"), got.to_dict()
        else:
            assert all(c.startswith("R") for c in codes), got.to_dict()
        assert (got.rows_received, got.rows_loaded, got.rows_quarantined) == (
            case["data_rows"],
            case["rows_loaded"],
            case["rows_quarantined"],
        ), got.to_dict()
        if got.status == "loaded":
            bad_rows = conn.execute(
                "select distinct source_row from quarantine.rejected_rows where submission_id = %s order by 1",
                (got.submission_id,),
            ).fetchall()
            assert [r[0] for r in bad_rows] == case["bad_rows"], got.to_dict()
        for text in case.get("message_contains", []):
            first_error = got.errors[0]
            assert text in first_error.message_zh or text in first_error.message_en, (text, first_error)
        if case.get("raw_values"):
            raw_values = case["raw_values"]
            stored = conn.execute(
                sql.SQL("select {} from {}.{} where submission_id = %s order by source_row").format(
                    sql.Identifier(raw_values["column"]), sql.Identifier("raw"), sql.Identifier(raw_values["table"])
                ),
                (got.submission_id,),
            ).fetchall()
            assert [r[0] for r in stored] == raw_values["values"]  # verbatim: nothing evaluated

        # the batch's other files land whatever the corpus file was
        assert (first.status, first.rows_loaded, first.rows_quarantined) == ("loaded", 2, 0), first.to_dict()
        assert (last.status, last.rows_loaded, last.rows_quarantined) == ("loaded", 2, 0), last.to_dict()
        assert (last.reporting_unit_code, last.period) == ("652801", "2025-02")

        # every row received is in raw or in quarantine; every file is archived
        for path, outcome in zip(batch, outcomes, strict=True):
            _check_reconciles(conn, settings, path, outcome)
        assert _one(conn, "select count(*) from audit.submission_files") == len(batch)


def test_manifest_covers_every_code() -> None:
    assert len(MANIFEST) >= 30
    names = [Path(c["path"]).name for c in MANIFEST]
    assert len(set(names)) == len(names), "file names are the test ids: they must be unique"
    found = {code for c in MANIFEST for code in (*c["errors"], *c["warnings"])}
    wanted = set(CATALOG) - {"F014_INTERNAL", "W003_NORMALISED"}
    assert sorted(wanted - found) == []
    assert found <= set(CATALOG)
    sizes = {c["path"]: (CORPUS / c["path"]).stat().st_size for c in MANIFEST}
    assert max(sizes.values()) < 60_000 and sum(sizes.values()) < 1_000_000
    for case in MANIFEST:
        assert case["status"] in ("loaded", "rejected")
        assert case["errors"] == sorted(case["errors"]) and case["warnings"] == sorted(case["warnings"])
        assert all(c.startswith("F") for c in case.get("accept", [])) and set(case.get("accept", [])) <= set(CATALOG)
        if case["status"] == "rejected":
            assert len(case["errors"]) == 1 and case["errors"][0].startswith("F") and not case["warnings"]
            assert (case["rows_loaded"], case["rows_quarantined"], case["data_rows"]) == (0, 0, 0)
        else:
            assert case["data_rows"] == case["rows_loaded"] + case["rows_quarantined"]
            assert len(case["bad_rows"]) == case["rows_quarantined"]  # single-sheet files: rows are unique
        limit = case.get("settings", {}).get("max_file_bytes")
        if limit is not None:  # the oversized file is the only one of the corpus above its limit
            assert [p for p, size in sizes.items() if size > limit] == [case["path"]]


def _tree(root: Path) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    for top in GENERATED:
        path = root / top
        for p in [path] if path.is_file() else sorted(q for q in path.rglob("*") if q.is_file()):
            out[p.relative_to(root).as_posix()] = p.read_bytes()
    return out


def test_generator_is_reproducible(tmp_path: Path) -> None:
    """make_corpus.py rebuilds the committed corpus byte for byte."""
    subprocess.run(
        [sys.executable, str(CORPUS / "make_corpus.py"), "--out", str(tmp_path)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    fresh, committed = _tree(tmp_path), _tree(CORPUS)
    assert sorted(fresh) == sorted(committed)
    differ = [name for name in fresh if fresh[name] != committed[name]]
    assert differ == []
