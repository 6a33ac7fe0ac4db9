"""``python -m ingestion.bench_validate``: time GX row validation on a synthetic activities frame
(one call for a million rows against chunks of the readers' size)."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd

from ingestion.contract import RECORD_KINDS
from ingestion.validate import ValidationParams, validate

# --------------------------------------------------------------------------- measurement


def _bench_frame(rows: int, bad_share: float, seed: int = 1) -> tuple[pd.DataFrame, ValidationParams, int]:
    """A normalised activities frame with ``bad_share`` of its rows breaking exactly one rule."""
    rng = np.random.default_rng(seed)
    codes = np.array(["KRL-YJ-TBLQ", "KRL-ZQQ-TBLQ", "KRL-LW-SYK", "KRL-GM-XYK"], dtype=object)
    types = np.array(sorted(RECORD_KINDS["activities"].get("activity_type").codes), dtype=object)
    participants = rng.integers(10, 200, rows)
    days = rng.integers(0, 31, rows)
    df = pd.DataFrame(
        {
            "activity_date": (pd.Timestamp("2025-01-01") + pd.to_timedelta(days, unit="D")).astype("datetime64[s]"),
            "pairing_code": pd.Series(codes[rng.integers(0, len(codes), rows)], dtype="str"),
            "activity_type": pd.Series(types[rng.integers(0, len(types), rows)], dtype="str"),
            "title": pd.Series([f"共建活动{i % 997}" for i in range(rows)], dtype="str"),
            "participants": pd.array(participants, dtype="Int64"),
            "party_member_participants": pd.array(participants // 2, dtype="Int64"),
            "problems_resolved": pd.array(rng.integers(0, 5, rows), dtype="Int64"),
            "suggestions_collected": pd.array(rng.integers(0, 5, rows), dtype="Int64"),
            "_row": np.arange(2, rows + 2),
            "_sheet": "activities.csv",
        }
    )
    df.loc[df.index[::3], "suggestions_collected"] = pd.NA  # optional and empty
    bad = rng.choice(rows, int(rows * bad_share), replace=False)
    plants = [
        ("title", None),
        ("problems_resolved", -1),
        ("activity_type", "团建"),
        ("pairing_code", "KRL-XX-NONE"),
        ("activity_date", pd.Timestamp("2024-12-31")),
        ("party_member_participants", 10_000),
    ]
    for i, (column, value) in enumerate(plants):
        df.loc[bad[i :: len(plants)], column] = value
    params = ValidationParams(
        "2025-01", dt.date(2025, 1, 1), dt.date(2025, 1, 31), frozenset(codes), dt.date(2025, 2, 10)
    )
    return df, params, len(bad)


def _bench(rows: int, bad_share: float, chunk: int) -> None:
    import time

    t = time.perf_counter()
    df, params, planted = _bench_frame(rows, bad_share)
    print(f"frame: {rows:,} activities rows, {planted:,} bad ({time.perf_counter() - t:.1f} s to build)")

    t = time.perf_counter()
    validate("activities", df.head(10), params)
    print(f"first validate (GX import + context + suites): {time.perf_counter() - t:.2f} s")

    for label, size in (("one call", rows), (f"chunks of {chunk:,}", chunk)):
        best = math.inf
        for _ in range(3):
            t = time.perf_counter()
            found = [
                p
                for start in range(0, rows, size)
                for p in validate("activities", df.iloc[start : start + size], params)
            ]
            best = min(best, time.perf_counter() - t)
        assert len(found) == planted, (len(found), planted)
        print(f"validate {rows:,} rows, {label}: {best:.2f} s = {rows / best:,.0f} rows/s ({len(found):,} problems)")


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="Time GX row validation on a synthetic activities frame.")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--bad-share", type=float, default=0.001)
    parser.add_argument("--chunk", type=int, default=250_000, help="chunk size of the readers (tables.CHUNK_ROWS)")
    args = parser.parse_args()
    _bench(args.rows, args.bad_share, args.chunk)
