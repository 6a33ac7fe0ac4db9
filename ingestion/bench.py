"""``make bench``: ingest a 1,000,000-row activities file and compare with a bare COPY.

Runs in a database of its own (``pairstats_bench``, recreated each time) on the warehouse
server in use, so the demo warehouse is untouched. Measured in one run, on one machine:

- bare COPY: the same CSV streamed into a table of the same shape (typed columns) with
  ``COPY ... FROM STDIN (FORMAT csv, HEADER)`` through psycopg, no parsing on our side;
- ingest: ``pairstats ingest --json FILE`` as a subprocess (what an operator runs), both as
  wall time of the whole command (interpreter start, imports, GX context) and as the
  pipeline's own time for the file (``timings.total``; the start-up is paid once per
  process, i.e. once per batch or Airflow worker, not per file).

Prints ``ingest/copy ratio: X`` (rows/s of ingest ÷ rows/s of COPY, per-file time) and the
peak memory (max RSS) of the ingest process.
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
    from ingestion.demo import write_bench_activities

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
    t = time.perf_counter()
    totals = write_bench_activities(data, args.rows, pairing_codes=PAIRING_CODES, period=PERIOD)
    print(f"generated {args.rows:,} rows ({data.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - t:.1f} s")

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

    wall_s, outcome = _run_ingest(data, env)
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    if outcome["status"] != "loaded" or outcome["rows_loaded"] != args.rows:
        print(json.dumps(outcome, ensure_ascii=False)[:2000])
        raise SystemExit("ingest did not load every row")
    file_s = outcome["timings"]["total"]
    copy_rate, file_rate, wall_rate = copied / copy_s, args.rows / file_s, args.rows / wall_s
    print(f"bare COPY:       {copied:,} rows in {copy_s:6.2f} s = {copy_rate:,.0f} rows/s")
    print(f"ingest (file):   {args.rows:,} rows in {file_s:6.2f} s = {file_rate:,.0f} rows/s  {_stages(outcome)}")
    print(f"ingest (wall):   {args.rows:,} rows in {wall_s:6.2f} s = {wall_rate:,.0f} rows/s (with start-up)")
    print(f"ingest/copy ratio: {file_rate / copy_rate:.2f}")
    print(f"ingest/copy ratio with start-up: {wall_rate / copy_rate:.2f}")
    print(f"peak memory of ingest: {peak_mb:,.0f} MB")
    print(f"expected participants {totals.get('participants', 0):,.0f}")
    return 0


def _stages(outcome: dict) -> str:
    t = outcome.get("timings", {})
    keys = ("archive", "read", "normalise", "validate", "copy")
    return "(" + ", ".join(f"{k} {t[k]:.2f}" for k in keys if k in t) + ")"


if __name__ == "__main__":
    sys.exit(main())
