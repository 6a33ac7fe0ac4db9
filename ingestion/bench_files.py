"""The benchmark's big activities CSVs: canonical, and as district offices export them.

``write_bench_activities`` streams a canonical 1,000,000-row file (flat memory);
``write_messy_bench_activities`` the same rows the way offices export them (GB18030, title
and block rows, synonyms, dates in four forms, full-width digits, approximations, a total
row). ``make bench`` (``ingestion.bench``) ingests both.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ingestion.contract import ACTIVITIES, ACTIVITY_TYPES
from ingestion.demo import REGIONS, month_bounds

# --------------------------------------------------------------------------- benchmark file

BENCH_PAIRINGS: tuple[str, ...] = tuple(p.code for p in REGIONS[0].pairings[:4])
_BENCH_CHUNK = 50_000


def write_bench_activities(
    path: Path,
    rows: int,
    *,
    seed: int = 7,
    pairing_codes: Sequence[str] = BENCH_PAIRINGS,
    period: str = "2025-01",
) -> dict[str, float]:
    """Stream a canonical activities CSV of ``rows`` valid, distinct rows; return its totals.

    Rows are drawn in blocks of 50,000 with numpy and written as blocks of lines, so memory
    stays flat whatever ``rows`` is. Every title carries its row number (no two rows are
    duplicates, which the ingester would quarantine); dates lie inside ``period``.
    """
    rng = np.random.default_rng(seed)
    first, last = month_bounds(period)
    dates = np.array([(first + dt.timedelta(days=d)).isoformat() for d in range((last - first).days + 1)], dtype=object)
    codes = np.array(list(pairing_codes), dtype=object)
    types = list(ACTIVITY_TYPES)
    labels = np.array([ACTIVITY_TYPES[t] for t in types], dtype=object)
    prefixes = np.array([f"{first.year}年{first.month}月{ACTIVITY_TYPES[t]}活动第" for t in types], dtype=object)
    totals = {k: 0 for k in ("participants", "party_member_participants", "problems_resolved", "suggestions_collected")}
    header = ",".join(f.header_with_unit for f in ACTIVITIES.fields) + "\n"
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as fh:
        fh.write(header)
        for start in range(0, rows, _BENCH_CHUNK):
            block = _bench_block(rng, start, min(_BENCH_CHUNK, rows - start), len(dates), len(codes), len(types))
            for k in totals:
                totals[k] += int(block[k].sum())
            lines = zip(
                dates[block["day"]].tolist(),
                codes[block["pairing"]].tolist(),
                labels[block["type"]].tolist(),
                prefixes[block["type"]].tolist(),
                block["n"].tolist(),
                block["participants"].tolist(),
                block["party_member_participants"].tolist(),
                block["problems_resolved"].tolist(),
                block["suggestions_collected"].tolist(),
                strict=True,
            )
            fh.write("".join([f"{a},{b},{c},{d}{e}场,{f},{g},{h},{i}\n" for a, b, c, d, e, f, g, h, i in lines]))
    return {"rows": float(rows), "activities": float(rows)} | {k: float(v) for k, v in totals.items()}


_FULL_WIDTH = str.maketrans("0123456789", "０１２３４５６７８９")


def write_messy_bench_activities(
    path: Path,
    rows: int,
    *,
    seed: int = 11,
    pairing_codes: Sequence[str] = BENCH_PAIRINGS,
    period: str = "2025-01",
    unit_line: str = "填报单位：库尔勒市委组织部（652801）",
) -> dict[str, float]:
    """The same kind of activities, written the way a district office exports them: GB18030, a
    title row and the 填报单位 block above the header, synonym headers (``参与人次``, a line
    break inside ``"其中\n党员人数"``), dates in four forms, counts with full-width digits,
    ``约``/``余`` approximations, a ``人`` unit, ``1,0xx`` thousands separators and ``—`` for empty,
    a 合计 row that adds up and notes under it, every line padded to the table's width as
    Excel writes it. Returns the totals that must land (approximate participants included)."""
    rng = np.random.default_rng(seed)
    first, last = month_bounds(period)
    days = [first + dt.timedelta(days=d) for d in range((last - first).days + 1)]
    forms = (
        lambda d: d.isoformat(),
        lambda d: f"{d.year}/{d.month}/{d.day}",
        lambda d: f"{d.year}.{d.month}.{d.day}",
        lambda d: f"{d.year}年{d.month}月{d.day}日",
    )
    dates = np.array([form(d) for form in forms for d in days], dtype=object)  # index: form * ndays + day
    codes = np.array(list(pairing_codes), dtype=object)
    types = list(ACTIVITY_TYPES)
    labels = np.array([ACTIVITY_TYPES[t] for t in types], dtype=object)
    prefixes = np.array([f"{first.year}年{first.month}月{ACTIVITY_TYPES[t]}活动第" for t in types], dtype=object)
    totals = {k: 0 for k in ("participants", "party_member_participants", "problems_resolved", "suggestions_collected")}
    totals["approximate_participants"] = 0
    width = len(ACTIVITIES.fields)
    pad = "," * (width - 1)
    head = (
        f"库尔勒市{first.year}年{first.month}月城乡结对共建活动统计表（䶮）{pad}\r\n"
        f"{unit_line}    填报人：张某    联系电话：0996-1234 5678{pad}\r\n"
        '活动日期,结对编号,活动类型,活动名称,参与人次,"其中\n党员人数",解决急难愁盼问题数,收集意见建议数\r\n'
    )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="gb18030", newline="") as fh:
        fh.write(head)
        for start in range(0, rows, _BENCH_CHUNK):
            n = min(_BENCH_CHUNK, rows - start)
            block = _bench_block(rng, start, n, len(days), len(codes), len(types))
            big = rng.random(n) < 0.02
            block["participants"] = block["participants"] + np.where(big, 1000, 0)
            for k in ("participants", "party_member_participants"):
                totals[k] += int(block[k].sum())
            style = rng.integers(0, 100, n)  # how the participants cell is typed
            totals["approximate_participants"] += int(block["participants"][(style >= 70) & (style < 83)].sum())
            empty_problems = rng.random(n) < 0.1
            empty_suggestions = rng.random(n) < 0.05
            totals["problems_resolved"] += int(block["problems_resolved"][~empty_problems].sum())
            totals["suggestions_collected"] += int(block["suggestions_collected"][~empty_suggestions].sum())
            day_text = dates[rng.integers(0, len(forms), n) * len(days) + block["day"]]
            party_unit = rng.random(n) < 0.2
            lines = []
            for i in range(n):
                p = int(block["participants"][i])
                s = int(style[i])
                if p >= 1000:
                    cell = f'"{p // 1000},{p % 1000:03d}"'
                elif s < 60:
                    cell = str(p)
                elif s < 70:
                    cell = str(p).translate(_FULL_WIDTH)
                elif s < 78:
                    cell = f"约{p}"
                elif s < 83:
                    cell = f"{p}余"
                else:
                    cell = f"{p}人"
                party = int(block["party_member_participants"][i])
                lines.append(
                    f"{day_text[i]},{codes[block['pairing'][i]]},{labels[block['type'][i]]},"
                    f"{prefixes[block['type'][i]]}{block['n'][i]}场,{cell},{party}{'人' if party_unit[i] else ''},"
                    f"{'—' if empty_problems[i] else block['problems_resolved'][i]},"
                    f"{'-' if empty_suggestions[i] else block['suggestions_collected'][i]}\r\n"
                )
            fh.write("".join(lines))
        fh.write(
            f"合计,,,,{totals['participants']},{totals['party_member_participants']},"
            f"{totals['problems_resolved']},{totals['suggestions_collected']}\r\n"
        )
        fh.write(f"注：参与人次含群众；约数按估计填报。{pad}\r\n")
        fh.write(f"审核人：李某    填报日期：{last.year}年{last.month}月{last.day}日{pad}\r\n")
    return {"rows": float(rows), "activities": float(rows)} | {k: float(v) for k, v in totals.items()}


def _bench_block(rng: np.random.Generator, start: int, n: int, days: int, codes: int, types: int) -> dict[str, Any]:
    participants = rng.integers(10, 121, n)
    return {
        "n": np.arange(start + 1, start + n + 1),
        "day": rng.integers(0, days, n),
        "pairing": rng.integers(0, codes, n),
        "type": rng.integers(0, types, n),
        "participants": participants,
        "party_member_participants": (participants * rng.random(n)).astype(np.int64),
        "problems_resolved": rng.integers(0, 6, n),
        "suggestions_collected": rng.integers(0, 11, n),
    }
