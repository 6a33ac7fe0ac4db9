"""rpt_outliers on a history longer than its window (var outlier_window, W = 6): each figure is
judged against its W predecessors (a series' first W against the others of its first W + 1),
so an incremental build judges only what a new or corrected month changes.

One warehouse for the module: three units (库尔勒市 652801, 廉江市 440881, 李沧区 370213; two
pairings each)
report monthly from 2024-01 with steady figures (±3 %), one JSON document per unit and month,
through the real ``Ingester``; ``pairstats build`` (write-audit-publish) after each step:

1. 2024-01 … 2024-12, first build;
2. 2025-01 arrives: only January's figures are new, no older row is rewritten, the build copy
   follows by its row ids;
3. 652801 corrects 2024-10: pairing 0's participants typed ten times too large — an outlier;
   only 652801's figures from 2024-10 on are rewritten;
4. 652801 corrects 2024-02 (among its series' first W + 1): 652801's series are judged
   again from their start; the other units' rows are untouched throughout;
5. a full refresh gives the same table.

Every verdict is checked against an independent computation in Python (``_expected``).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest

from ingestion import dbt
from ingestion.config import Settings
from ingestion.warehouse import with_database
from tests.conftest import create_database, drop_database
from tests.quality_data import _activity, _ingest, _pairing_rows, _pairings, _write

pytestmark = pytest.mark.slow

UNITS = ("652801", "440881", "370213")
MONTHS = [f"2024-{m:02d}" for m in range(1, 13)] + ["2025-01"]
WINDOW = 6  # dbt_project.yml var outlier_window
MIN_HISTORY, Z_THRESHOLD, MIN_RATIO = 4, Decimal("3.5"), Decimal(2)
VARIATION = (0, 3, -3, 1, -1, 2, -2)  # percent, by month index modulo 7
TYPO = ("652801", "2024-10", 0)  # unit, month, pairing index: participants × 10
KEY = "outlier_check_id"


def _participants(unit: str, pairing: int, month: str, typo: bool = False) -> int:
    base = 100 + 40 * UNITS.index(unit) + 10 * pairing
    value = int((Decimal(base) * (100 + VARIATION[MONTHS.index(month) % 7]) / 100).to_integral_value(ROUND_HALF_UP))
    return value * 10 if typo else value


def _income(unit: str, pairing: int, month: str) -> dict[str, float]:
    factor = Decimal(100 + VARIATION[(MONTHS.index(month) + 3) % 7]) / 100
    base = 50_000 + 5_000 * UNITS.index(unit) + 1_000 * pairing
    return {
        "collective_income_increase_yuan": float((base * factor).quantize(Decimal("0.01"))),
        "villager_income_increase_yuan": float((2 * base * factor).quantize(Decimal("0.01"))),
        "produce_sold_tonnes": float((Decimal(12 + pairing) * factor).quantize(Decimal("0.001"))),
        "produce_sales_yuan": float((Decimal(36_000 + 3_000 * pairing) * factor).quantize(Decimal("0.01"))),
    }


def _document(unit: str, month: str, typo_pairing: int | None = None) -> dict[str, Any]:
    pairings = _pairings(unit)
    doc: dict[str, Any] = {"reporting_unit_code": unit, "period": month}
    if month == MONTHS[0]:
        doc["pairings"] = _pairing_rows(unit)
    doc["activities"] = [
        {
            **_activity(unit, i, 0, count=_participants(unit, i, month, typo=i == typo_pairing)),
            "activity_date": f"{month}-{10 + i:02d}",
        }
        for i in range(len(pairings))
    ]
    doc["income_effects"] = [
        {"pairing_code": p.code, **_income(unit, i, month), "jobs_created": 3, "households_benefited": 12}
        for i, p in enumerate(pairings)
    ]
    return doc


def _file(folder: Path, unit: str, month: str, name: str = "", typo_pairing: int | None = None) -> Path:
    text = json.dumps(_document(unit, month, typo_pairing), ensure_ascii=False)
    return _write(folder / f"{unit}_{month}{name}.json", text)


def _rows(url: str, query: str, *args: object) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(query, args or None).fetchall()


def _table(url: str, schema: str = "marts") -> dict[tuple[str, str, str], tuple]:
    rows = _rows(
        url,
        f"""select reporting_unit_code || '/' || pairing_code, period_code, measure, history_periods,
                   history_median, history_mad, modified_z, is_outlier
            from {schema}.rpt_outliers""",
    )
    return {r[:3]: tuple(r[3:]) for r in rows}


def _xmins(url: str, schema: str = "marts") -> dict[str, tuple[str, str, str]]:
    rows = _rows(url, f"select {KEY}, xmin::text, pairing_id, period_code from {schema}.rpt_outliers")
    return {r[0]: r[1:] for r in rows}


def _median(values: list[Decimal]) -> Decimal:
    s = sorted(values)
    m = len(s)
    return (s[(m + 1) // 2 - 1] + s[m // 2]) / 2


def _expected(url: str) -> dict[tuple[str, str, str], tuple]:
    """Every verdict from the published facts, computed here without SQL."""
    figures: dict[tuple[str, str, str], list[tuple[str, str, Decimal]]] = {}
    for pairing, month, start, value in _rows(
        url,
        """select pairing_id, month_code, activity_month, sum(participants) from marts.fct_activity_counts
           group by 1, 2, 3""",
    ):
        figures.setdefault((pairing, "participants", "month"), []).append((start, month, Decimal(value)))
    measures = ["collective_income_increase_yuan", "villager_income_increase_yuan", "produce_sold_tonnes"]
    measures.append("produce_sales_yuan")
    for row in _rows(
        url,
        f"""select pairing_id, period_code, period_grain, period_start, {", ".join(measures)}
            from marts.fct_income_effects""",
    ):
        for measure, value in zip(measures, row[4:], strict=True):
            if value is not None:
                figures.setdefault((row[0], measure, row[2]), []).append((row[3], row[1], Decimal(value)))
    expected = {}
    for (pairing, measure, _grain), series in figures.items():
        series.sort()
        values = [v for _, _, v in series]
        n = len(values)
        for i, (_, period, value) in enumerate(series, start=1):
            first, last = (i - WINDOW, i - 1) if i > WINDOW else (1, min(n, WINDOW + 1))
            others = [values[j - 1] for j in range(first, last + 1) if j != i]
            m = len(others)
            median = _median(others) if m else None
            mad = _median([abs(v - median) for v in others]) if m else None
            mean_ad = sum(abs(v - median) for v in others) / m if m else None
            z = None
            if m >= MIN_HISTORY:
                if mad > 0:
                    z = Decimal("0.6745") * (value - median) / mad
                elif mean_ad > 0:
                    z = (value - median) / (Decimal("1.253314") * mean_ad)
            z = None if z is None else z.quantize(Decimal("0.0001"), ROUND_HALF_UP)
            ratio = max(value / median, median / value) if value > 0 and median and median > 0 else None
            ratio = None if ratio is None else ratio.quantize(Decimal("0.0001"), ROUND_HALF_UP)
            outlier = z is not None and abs(z) > Z_THRESHOLD and (ratio is None or ratio >= MIN_RATIO)
            expected[(pairing, period, measure)] = (m, median, mad, z, outlier)
    return expected


def _same(table: dict, expected: dict) -> list:
    """Keys whose verdicts differ (numbers compared as numbers: 105 = 105.0)."""
    return sorted(k for k in table.keys() | expected.keys() if table.get(k) != expected.get(k))


@dataclass
class History:
    url: str
    ok: dict[str, bool] = field(default_factory=dict)
    xmins: dict[str, dict[str, tuple[str, str, str]]] = field(default_factory=dict)  # marts after the build
    # the build copy after it (marts_build): what the next build writes into, and publishes
    copy_xmins: dict[str, dict[str, tuple[str, str, str]]] = field(default_factory=dict)
    tables: dict[str, dict] = field(default_factory=dict)
    expected: dict[str, dict] = field(default_factory=dict)
    copies: dict[str, tuple[list[str], list[str]]] = field(default_factory=dict)
    copy_equal: dict[str, bool] = field(default_factory=dict)
    outcomes: list[tuple[str, int, int]] = field(default_factory=list)  # status, rows loaded, quarantined


@pytest.fixture(scope="module")
def history(pg_admin_url: str, template_db: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[History]:
    name = f"pairstats_outl_{uuid.uuid4().hex[:10]}"
    create_database(pg_admin_url, name, template_db)
    url = with_database(pg_admin_url, name)
    settings = Settings.from_env(
        {"PAIRSTATS_HOME": str(tmp_path_factory.mktemp("home_outliers")), "PAIRSTATS_WAREHOUSE_URL": url}
    )
    landing = tmp_path_factory.mktemp("landing_outliers")
    h = History(url=url)

    def ingest(paths: list[Path]) -> None:
        h.outcomes += [(o.status, o.rows_loaded, o.rows_quarantined) for o in _ingest(url, settings, paths)]

    def build(step: str, **kwargs: Any) -> None:
        result = dbt.build(settings, **kwargs)
        h.ok[step] = bool(result)
        h.copies[step] = (sorted(result.copies_keyed), sorted(result.copies_whole))
        h.xmins[step] = _xmins(url)
        h.copy_xmins[step] = _xmins(url, "marts_build")
        h.tables[step] = _table(url)
        h.expected[step] = _expected(url)
        h.copy_equal[step] = _table(url, "marts_build") == h.tables[step] and set(h.copy_xmins[step]) == set(
            h.xmins[step]
        )

    try:
        ingest([_file(landing, u, m) for m in MONTHS[:-1] for u in UNITS])
        build("first")
        ingest([_file(landing, u, MONTHS[-1]) for u in UNITS])
        build("new_month")
        unit, month, pairing = TYPO
        ingest([_file(landing, unit, month, "_corrected", typo_pairing=pairing)])
        build("late_correction")
        ingest([_file(landing, "652801", "2024-02", "_corrected", typo_pairing=1)])
        build("early_correction")
        build("full_refresh", full_refresh=True)
        yield h
    finally:
        drop_database(pg_admin_url, name)


def _rewritten(h: History, before: str, after: str) -> set[tuple[str, str]]:
    """(pairing, period) of the rows the build wrote: new ids, or ids with a new xmin (the build
    wrote into the copy left by the step before, and published it)."""
    old, new = h.copy_xmins[before], h.xmins[after]
    return {(p, period) for key, (xmin, p, period) in new.items() if old.get(key, ("",))[0] != xmin}


def test_every_build_passes_and_judges_as_the_reference(history: History) -> None:
    # 39 monthly files and 2 corrections, every row loaded (pairings in January: 6 rows, else 4)
    assert [o[0] for o in history.outcomes] == ["loaded"] * 41
    assert sum(o[1] for o in history.outcomes) == 39 * 4 + 3 * 2 + 2 * 4 and not any(o[2] for o in history.outcomes)
    assert history.ok == {
        s: True for s in ("first", "new_month", "late_correction", "early_correction", "full_refresh")
    }
    for step, table in history.tables.items():
        assert table, step
        assert _same(table, history.expected[step]) == [], step
    # 3 units × 2 pairings × 13 months × 5 measures
    assert len(history.tables["full_refresh"]) == 3 * 2 * 13 * 5


def test_a_new_month_writes_only_its_own_figures(history: History) -> None:
    rewritten = _rewritten(history, "first", "new_month")
    assert {period for _, period in rewritten} == {"2025-01"}
    assert len(rewritten) == 6  # six pairings × the new month
    old = history.copy_xmins["first"]
    assert all(history.xmins["new_month"][k][0] == xmin for k, (xmin, _, _) in old.items())
    assert {"fct_activity_counts", "fct_income_effects", "rpt_outliers"} <= set(history.copies["new_month"][0])


def test_a_late_correction_rejudges_from_its_month_on(history: History) -> None:
    rewritten = _rewritten(history, "new_month", "late_correction")
    assert rewritten == {(f"652801/{p.code}", m) for p in _pairings("652801") for m in MONTHS[9:]}
    typo = (f"652801/{_pairings('652801')[0].code}", "2024-10", "participants")
    periods, median, _mad, z, outlier = history.tables["late_correction"][typo]
    # against 2024-04 … 2024-09 (101, 99, 102, 98, 100, 103: median 100.5), not all the others
    assert (periods, median, outlier) == (WINDOW, Decimal("100.5"), True) and z > 100
    # the months after it have the typo in their window, and the median holds
    after = [history.tables["late_correction"][(typo[0], m, "participants")] for m in MONTHS[10:]]
    assert after and not any(v[4] for v in after)


def test_a_correction_among_the_first_periods_rejudges_the_series(history: History) -> None:
    rewritten = _rewritten(history, "late_correction", "early_correction")
    assert rewritten == {(f"652801/{p.code}", m) for p in _pairings("652801") for m in MONTHS}
    untouched = [k for k, (xmin, p, _) in history.copy_xmins["late_correction"].items() if not p.startswith("652801")]
    assert untouched and all(history.xmins["early_correction"][k][0] == history.copy_xmins["late_correction"][k][0]
                             for k in untouched)  # fmt: skip


def test_the_build_copy_follows_and_a_full_refresh_agrees(history: History) -> None:
    assert history.copy_equal == {s: True for s in history.ok}
    assert history.tables["full_refresh"] == history.tables["early_correction"]
