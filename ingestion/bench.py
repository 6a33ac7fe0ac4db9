"""``make bench``: ingest a 1,000,000-row activities file and compare with a bare COPY.

Runs in a database of its own (``pairstats_bench``, recreated each time) on the warehouse
server in use, so the demo warehouse is untouched. Measured in one run, on one machine:

- bare COPY: the same CSV streamed into a table of the same shape (typed columns) with
  ``COPY ... FROM STDIN (FORMAT csv, HEADER)`` through psycopg, no parsing on our side;
- ingest: ``pairstats ingest --json FILE`` as a subprocess (what an operator runs), both as
  wall time of the whole command (interpreter start, imports, GX context) and as the
  pipeline's own time for the file (``timings.total``; the start-up is paid once per
  process, i.e. once per batch or Airflow worker, not per file).

The same number of rows is also written the way district offices export them (GB18030,
title rows, synonym headers, four date forms, full-width digits, approximate figures, units
in cells, thousands separators, empty markers, a 合计 row) and ingested the same way.

Prints ``ingest/copy ratio: X`` (rows/s of ingest ÷ rows/s of COPY, per-file time), the same
for the messy file, ``messy/clean ratio`` (the goal: at least 0.5), the peak memory (max RSS)
of an ingest process, and checks that every row and every participant landed.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import psycopg
from psycopg import sql

from ingestion import warehouse
from ingestion.config import CHECKOUT, Settings

BENCH_DB = "pairstats_bench"
UNIT = "652801"
PERIOD = "2025-01"
MESSY_PERIOD = "2025-02"
PAIRING_CODES = ("KRL-YJ-TBLQ", "KRL-ZQQ-TBLQ", "KRL-LW-SYK", "KRL-GM-XYK")

COPY_TABLE = """
create table bench_copy (
    activity_date date, pairing_code text, activity_type text, title text,
    participants integer, party_member_participants integer,
    problems_resolved integer, suggestions_collected integer
)"""


def _pairings_csv(path: Path) -> Path:
    villages = ("652801207200", "652801207201", "652801207202", "652801207200")
    communities = ("652801412005", "652801412001", "652801412003", "652801412002")
    lines = ["结对编号,城市单位代码,农村单位代码,结对形式,结对日期,是否签订协议"]
    lines += [f"{c},{u},{v},一对一,2023-03-01,是" for c, u, v in zip(PAIRING_CODES, communities, villages, strict=True)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _run_ingest(path: Path, env: dict[str, str]) -> tuple[float, dict]:
    t = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "ingestion.cli", "ingest", "--json", str(path)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - t
    if proc.returncode != 0 and not proc.stdout.strip():
        raise RuntimeError(f"ingest failed:\n{proc.stderr}")
    return wall, json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--out", type=Path, default=CHECKOUT / "bench-out")
    args = parser.parse_args(argv)
    from ingestion.bench_files import write_bench_activities, write_messy_bench_activities

    settings = Settings.from_env()
    admin = (
        warehouse.server_url(settings, "postgres")
        if not settings.warehouse_url
        else warehouse.with_database(settings.warehouse_url, "postgres")
    )
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(BENCH_DB)))
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(BENCH_DB)))
    url = warehouse.with_database(admin, BENCH_DB)

    landing = args.out / "landing" / UNIT
    landing.mkdir(parents=True, exist_ok=True)
    data = landing / f"{UNIT}_{PERIOD}_activities.csv"
    messy = landing / f"{UNIT}_{MESSY_PERIOD}_活动统计表.csv"
    t = time.perf_counter()
    totals = write_bench_activities(data, args.rows, pairing_codes=PAIRING_CODES, period=PERIOD)
    messy_totals = write_messy_bench_activities(messy, args.rows, pairing_codes=PAIRING_CODES, period=MESSY_PERIOD)
    print(
        f"generated {args.rows:,} rows twice in {time.perf_counter() - t:.1f} s: canonical UTF-8 "
        f"({data.stat().st_size / 1e6:.0f} MB) and as offices export them ({messy.stat().st_size / 1e6:.0f} MB: "
        "GB18030, title rows, synonyms, four date forms, full-width digits, 约/余/人, 1,0xx, —, 合计 row)"
    )

    env = dict(os.environ, PAIRSTATS_WAREHOUSE_URL=url, PAIRSTATS_HOME=str(args.out / "home"))
    _run_ingest(_pairings_csv(landing / f"{UNIT}_{PERIOD}_pairings.csv"), env)  # registers pairings, untimed

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(COPY_TABLE)
        t = time.perf_counter()
        with (
            conn.cursor() as cur,
            cur.copy("copy bench_copy from stdin (format csv, header)") as copy,
            data.open("rb") as fh,
        ):
            while block := fh.read(1 << 20):
                copy.write(block)
        copy_s = time.perf_counter() - t
        copied = conn.execute("select count(*) from bench_copy").fetchone()[0]
    copy_rate = copied / copy_s
    print(f"bare COPY:       {copied:,} rows in {copy_s:6.2f} s = {copy_rate:,.0f} rows/s")

    rates = {}
    for label, path, expected in (("clean", data, totals), ("messy", messy, messy_totals)):
        wall_s, outcome = _run_ingest(path, env)
        if outcome["status"] != "loaded" or outcome["rows_loaded"] != args.rows or outcome["rows_quarantined"]:
            print(json.dumps(outcome, ensure_ascii=False)[:2000])
            raise SystemExit(f"ingest of the {label} file did not load every row")
        with psycopg.connect(url) as conn:
            landed = conn.execute(
                "select sum(participants) from raw.activities where submission_id = %s", (outcome["submission_id"],)
            ).fetchone()[0]
        if landed != expected["participants"]:
            raise SystemExit(f"{label}: {landed} participants landed, {expected['participants']:.0f} expected")
        file_s = outcome["timings"]["total"]
        rates[label] = args.rows / file_s
        print(
            f"ingest {label} (file): {args.rows:,} rows in {file_s:6.2f} s = {rates[label]:,.0f} rows/s  "
            f"{_stages(outcome)}"
        )
        print(f"ingest {label} (wall): {args.rows:,} rows in {wall_s:6.2f} s = {args.rows / wall_s:,.0f} rows/s")
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"ingest/copy ratio: {rates['clean'] / copy_rate:.2f}")
    print(f"messy ingest/copy ratio: {rates['messy'] / copy_rate:.2f}")
    print(f"messy/clean ratio: {rates['messy'] / rates['clean']:.2f} (goal: at least 0.5)")
    print(f"peak memory of an ingest process: {peak_mb:,.0f} MB")
    clean_p, messy_p = totals["participants"], messy_totals["participants"]
    print(f"participants landed as expected: {clean_p:,.0f} clean, {messy_p:,.0f} messy")
    return 0


def _stages(outcome: dict) -> str:
    t = outcome.get("timings", {})
    keys = ("archive", "read", "normalise", "validate", "copy")
    return "(" + ", ".join(f"{k} {t[k]:.2f}" for k in keys if k in t) + ")"


if __name__ == "__main__":
    sys.exit(main())
