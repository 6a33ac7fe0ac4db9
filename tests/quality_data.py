"""Steady figures for the quality tests (``test_quality_models.py``, ``test_quality.py``): the
five demo units (``ingestion.demo.REGIONS``, two pairings each), months 2025-01..06 varying by
±3 %, as JSON documents and CSV files ingested through the real ``Ingester``, and the helpers
that set when a file "arrived"."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from ingestion.config import Settings
from ingestion.contract import RECORD_KINDS
from ingestion.demo import DEFAULT_MONTHS, REGIONS, _pairing_row
from ingestion.outcome import FileOutcome
from ingestion.pipeline import Ingester

MONTHS = DEFAULT_MONTHS  # 2025-01 .. 2025-06, the schedule's window
UNITS = [r.unit_code for r in REGIONS]  # 652801, 440881, 370213, 500235, 659008
VARIATION = (0, 3, -3, 0, 3, -3)  # percent, month by month: a steady series


def _vary(base: int | Decimal, month_index: int) -> Decimal:
    return (Decimal(base) * (100 + VARIATION[month_index]) / 100).quantize(Decimal("0.01"))


def participants(unit: str, pairing_index: int, month_index: int) -> int:
    base = 100 + 20 * UNITS.index(unit) + 10 * pairing_index
    return int(_vary(base, month_index).to_integral_value(ROUND_HALF_UP))


def income(unit: str, pairing_index: int, month_index: int) -> dict[str, Decimal]:
    u = UNITS.index(unit)
    tonnes = _vary(Decimal(10 + u + pairing_index), month_index)
    return {
        "collective_income_increase_yuan": _vary(50_000 + 5_000 * u + 1_000 * pairing_index, month_index),
        "villager_income_increase_yuan": _vary(80_000 + 4_000 * u + 2_000 * pairing_index, month_index),
        "produce_sold_tonnes": tonnes,
        "produce_sales_yuan": (tonnes * 3_000).quantize(Decimal("0.01")),
    }


def _pairings(unit: str) -> list:
    region = next(r for r in REGIONS if r.unit_code == unit)
    return list(region.pairings[:2])


def _activity(unit: str, pairing_index: int, month_index: int, count: int | None = None) -> dict[str, Any]:
    period = MONTHS[month_index]
    p = _pairings(unit)[pairing_index]
    count = participants(unit, pairing_index, month_index) if count is None else count
    return {
        "activity_date": f"{period}-{10 + pairing_index:02d}",
        "pairing_code": p.code,
        "activity_type": "themed_party_day",
        "title": f"{period} 主题党日（{p.code}）",
        "participants": count,
        "party_member_participants": 20,
        "problems_resolved": 1,
        "suggestions_collected": 2,
    }


def _income_row(unit: str, pairing_index: int, month_index: int) -> dict[str, Any]:
    figures = income(unit, pairing_index, month_index)
    return {
        "pairing_code": _pairings(unit)[pairing_index].code,
        **{k: float(v) for k, v in figures.items()},
        "jobs_created": 3,
        "households_benefited": 12,
    }


def _pairing_rows(unit: str) -> list[dict[str, Any]]:
    """The unit's pairings as a JSON document lists them (registered with its first month)."""
    return [{**_pairing_row(p), "paired_on": p.paired_on.isoformat()} for p in _pairings(unit)]


def _json_document(unit: str, month_index: int) -> dict[str, Any]:
    doc: dict[str, Any] = {"reporting_unit_code": unit, "period": MONTHS[month_index]}
    if month_index == 0:
        doc["pairings"] = _pairing_rows(unit)
    doc["activities"] = [_activity(unit, i, month_index) for i in range(2)]
    doc["income_effects"] = [_income_row(unit, i, month_index) for i in range(2)]
    return doc


def _csv(kind: str, rows: list[list[Any]], total: list[Any] | None = None) -> str:
    lines = [",".join(f.header_with_unit for f in RECORD_KINDS[kind].fields)]
    lines += [",".join("" if v is None else str(v) for v in row) for row in rows]
    if total is not None:
        lines.append(",".join("" if v is None else str(v) for v in total))
    return "\n".join(lines) + "\n"


def _activity_cells(row: dict[str, Any]) -> list[Any]:
    return [row[f.name] for f in RECORD_KINDS["activities"].fields]


def _execute(url: str, query: str, *args: object) -> None:
    with psycopg.connect(url) as conn:
        conn.execute(query, args or None)


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def _ingest(url: str, settings: Settings, paths: list[Path]) -> list[FileOutcome]:
    with psycopg.connect(url) as conn:
        ingester = Ingester(conn, settings, run_id="test_quality")
        return [ingester.ingest(p) for p in paths]


def _set_received(url: str, submission_id: int, shanghai_time: str) -> None:
    """Pretend a file arrived at a given Asia/Shanghai wall time (its raw rows were loaded then)."""
    _execute(
        url,
        """update audit.submission_files
           set received_at = %s::timestamp at time zone 'Asia/Shanghai'
           where submission_id = %s""",
        shanghai_time,
        submission_id,
    )


def _sync_loaded_at(url: str) -> None:
    """raw.*.loaded_at = the file's receipt, so freshness judges the story, not the test's clock."""
    with psycopg.connect(url) as conn:
        for table in ("pairings", "activities", "projects", "income_effects"):
            conn.execute(
                sql.SQL(
                    """update {} as r set loaded_at = s.received_at
                       from audit.submission_files as s where s.submission_id = r.submission_id"""
                ).format(sql.Identifier("raw", table))
            )
