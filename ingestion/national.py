"""A national month of submissions, generated from the region register (for ``make bench-national``).

Every county-level unit of the register (civil tree, level 3) with at least two townships
reports: 5 pairings (its first township ↔ its other townships, registered in its first
month), 280 activities, 5 income rows (one per pairing) and 2 projects a month. The formats
are mixed as offices send them: about 60 % one JSON document, 25 % one .xlsx workbook (a sheet
per kind), 15 % one CSV per kind. Deterministic: the same seed and months give the same bytes.

``python -m ingestion.national LANDING --months 2025-01 [--counties N]``.
"""

from __future__ import annotations

import argparse
import calendar
import csv
import datetime as dt
import random
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from ingestion.contract import ACTIVITY_TYPES, PROJECT_CATEGORIES, RECORD_KINDS
from ingestion.writers import Submission, csv_bytes, json_bytes, xlsx_bytes

ACTIVITIES_PER_MONTH = 280
PAIRINGS = 5
PROJECTS_PER_MONTH = 2
FORMAT_WEIGHTS = (("json", 60), ("xlsx", 25), ("csv", 15))
_TYPES = sorted(ACTIVITY_TYPES)
_CATEGORIES = sorted(PROJECT_CATEGORIES)


@dataclass(frozen=True)
class County:
    code: str
    name: str
    townships: tuple[str, ...]  # codes, sorted


def counties(slice_csv: Path | None = None) -> list[County]:
    """The counties of the committed register slice with two townships or more."""
    path = slice_csv or Path(__file__).parent / "data" / "regions_slice.csv"
    names: dict[str, str] = {}
    towns: dict[str, list[str]] = {}
    with path.open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            if row["tree"] != "civil":
                continue
            if row["level"] == "3":
                names[row["code"]] = row["name"]
            elif row["level"] == "4":
                towns.setdefault(row["parent_code"], []).append(row["code"])
    return [
        County(code, names[code], tuple(sorted(towns[code]))) for code in sorted(names) if len(towns.get(code, ())) >= 2
    ]


@dataclass
class NationalFile:
    path: Path
    unit: str
    period: str
    rows: dict[str, int]  # kind -> rows


def _month(period: str) -> tuple[dt.date, int]:
    year, month = map(int, period.split("-"))
    return dt.date(year, month, 1), calendar.monthrange(year, month)[1]


def _submission(county: County, period: str, first_month: bool, rng: random.Random, fmt: str) -> Submission:
    start, days = _month(period)
    pairing_codes = [f"P{i + 1}" for i in range(PAIRINGS)]
    rows: dict[str, list[dict]] = {}
    if first_month:
        rows["pairings"] = [
            {
                "pairing_code": code,
                "urban_unit_code": county.townships[0],
                "urban_unit_name": None,
                "rural_unit_code": county.townships[1 + i % (len(county.townships) - 1)],
                "rural_unit_name": None,
                "pairing_form": "one_to_one",
                "paired_on": dt.date(2024, 1 + i, 1),
                "ended_on": None,
                "agreement_signed": True,
            }
            for i, code in enumerate(pairing_codes)
        ]
    activities = []
    for n in range(ACTIVITIES_PER_MONTH):
        participants = rng.randint(8, 120)
        activities.append(
            {
                "activity_date": start + dt.timedelta(days=rng.randrange(days)),
                "pairing_code": pairing_codes[n % PAIRINGS],
                "activity_type": _TYPES[rng.randrange(len(_TYPES))],
                "title": f"共建活动第{n + 1}场",
                "participants": participants,
                "party_member_participants": rng.randint(0, participants),
                "problems_resolved": rng.randint(0, 3),
                "suggestions_collected": rng.randint(0, 5),
            }
        )
    rows["activities"] = activities
    rows["projects"] = [
        {
            "project_code": f"{period}-X{k + 1}",
            "project_name": f"共建项目{period}-{k + 1}",
            "pairing_code": pairing_codes[k % PAIRINGS],
            "category": _CATEGORIES[rng.randrange(len(_CATEGORIES))],
            "start_date": start,
            "status": "in_progress",
            "investment_yuan": Decimal(rng.randrange(10_000, 500_000, 100)),
            "land_mu": Decimal(rng.randrange(0, 50)),
            "households_benefited": rng.randint(5, 80),
        }
        for k in range(PROJECTS_PER_MONTH)
    ]
    rows["income_effects"] = [
        {
            "pairing_code": code,
            "collective_income_increase_yuan": Decimal(rng.randrange(0, 50_000, 10)),
            "villager_income_increase_yuan": Decimal(rng.randrange(0, 200_000, 10)),
            "produce_sold_tonnes": Decimal(rng.randrange(0, 5_000)) / 10,
            "produce_sales_yuan": Decimal(rng.randrange(0, 300_000, 10)),
            "jobs_created": rng.randint(0, 12),
            "households_benefited": rng.randint(0, 60),
        }
        for code in pairing_codes
    ]
    return Submission(unit=county.code, period=period, fmt=fmt, rows=rows)


def _format(rng: random.Random) -> str:
    pick = rng.randrange(100)
    for fmt, weight in FORMAT_WEIGHTS:
        if pick < weight:
            return fmt
        pick -= weight
    return "json"


def _files(sub: Submission, folder: Path) -> Iterator[tuple[Path, bytes, dict[str, int]]]:
    base = f"{sub.unit}_{sub.period}"
    counts = {k: len(v) for k, v in sub.rows.items()}
    if sub.fmt == "json":
        yield folder / f"{base}.json", json_bytes(sub), counts
    elif sub.fmt == "xlsx":
        yield folder / f"{base}.xlsx", xlsx_bytes(sub), counts
    else:
        for kind, rows in sub.rows.items():
            yield folder / f"{base}_{kind}.csv", csv_bytes(RECORD_KINDS[kind], rows), {kind: len(rows)}


def generate_national(
    landing: Path, months: Sequence[str], *, seed: int = 2025, limit: int | None = None, first_month: str | None = None
) -> list[NationalFile]:
    """Write every county's submission for each of ``months`` under ``landing/<code>/``.
    Pairings are registered in ``first_month`` (default: the first of ``months``)."""
    first_month = first_month or months[0]
    written: list[NationalFile] = []
    for county in counties()[:limit]:
        fmt_rng = random.Random(f"{seed}:{county.code}")
        fmt = _format(fmt_rng)
        folder = landing / county.code
        folder.mkdir(parents=True, exist_ok=True)
        for period in months:
            rng = random.Random(f"{seed}:{county.code}:{period}")
            sub = _submission(county, period, period == first_month, rng, fmt)
            for path, data, counts in _files(sub, folder):
                path.write_bytes(data)
                written.append(NationalFile(path, county.code, period, counts))
    return written


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ingestion.national", description=__doc__.splitlines()[0])
    parser.add_argument("landing", type=Path)
    parser.add_argument("--months", nargs="+", default=["2025-01"])
    parser.add_argument("--counties", type=int, default=None, help="only the first N counties")
    parser.add_argument("--seed", type=int, default=2025)
    parser.add_argument(
        "--first-month", default=None, help="the month pairings are registered in (default: the first of --months)"
    )
    args = parser.parse_args(argv)
    files = generate_national(
        args.landing, args.months, seed=args.seed, limit=args.counties, first_month=args.first_month
    )
    rows = sum(sum(f.rows.values()) for f in files)
    print(f"{len(files)} files, {rows} rows, {len({f.unit for f in files})} units under {args.landing}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
