"""``make bench-national``: a national month, then a national year, landing → marts, measured.

1. Generates a national month from the region register (``ingestion.national``: every county
   with two townships or more, 5 pairings, 280 activities, 5 income rows, 2 projects; JSON,
   xlsx and CSV mixed as offices send them).
2. Lands it three ways, each into its own database on the same server, and times each:
   ``pairstats ingest`` (the CLI), the naive loop a user could write instead
   (``ingestion.naive``: ``to_sql`` per file and kind, no validation, no quarantine, no
   audit), and the Airflow DAGs (``airflow dags test`` of ``ingest_submissions``, then
   ``build_warehouse``, recorded in a metadata database of their own).
3. Builds the marts (``pairstats build``) and runs the nightly quality checks
   (``pairstats quality --no-send``) on the CLI's database.
4. Adds the 11 other months of the year (``--months``), builds, then one more month and the
   nightly incremental build ÷ a full refresh, at each year of history (``--years``), and
   draws that cost against history (PNG).

Prints files, rows, files/s, rows/s, wall time and peak RSS per stage, and the ratios
``national/naive`` (CLI landing → raw ÷ naive) and ``airflow/naive``. Results also go to
``<out>/results.json``. The server is ``PAIRSTATS_WAREHOUSE_URL``'s, or an embedded
PostgreSQL under ``<out>/home``.

    python -m ingestion.bench_national [--out bench-out/national] [--counties N]
        [--months 12] [--years 1] [--no-airflow] [--workers N]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ingestion.config import CHECKOUT, Settings

PYTHON = sys.executable


@dataclass
class Stage:
    name: str
    seconds: float
    peak_rss_mb: float
    files: int | None = None
    rows: int | None = None

    def line(self) -> str:
        text = f"{self.name:<44} {self.seconds:8.1f} s   peak RSS {self.peak_rss_mb:7.0f} MB"
        if self.files:
            text += f"   {self.files:6d} files {self.files / self.seconds:7.1f} files/s"
        if self.rows:
            text += f"   {self.rows:9d} rows {self.rows / self.seconds:9.0f} rows/s"
        return text


def run(name: str, cmd: list[str], env: dict[str, str], log: Path) -> Stage:
    """Run a command, its output to ``log``; wall time and the peak RSS of it and its children."""
    log.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    with log.open("w", encoding="utf-8") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=CHECKOUT)
        _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t0
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        tail = log.read_text(encoding="utf-8", errors="replace")[-3000:]
        raise RuntimeError(f"{name} failed ({code}); see {log}:\n{tail}")
    return Stage(name, seconds, usage.ru_maxrss / 1024)


def _env(home: Path, url: str, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(PAIRSTATS_HOME=str(home), PAIRSTATS_WAREHOUSE_URL=url, PAIRSTATS_SETTLE_SECONDS="0", **extra)
    return env


def _fresh_database(admin_url: str, name: str) -> str:
    import psycopg
    from psycopg import sql

    from ingestion.warehouse import with_database

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    return with_database(admin_url, name)


def _counts(url: str) -> tuple[int, int]:
    import psycopg

    with psycopg.connect(url) as conn:
        row = conn.execute(
            "select count(*), coalesce(sum(rows_loaded), 0) from audit.submission_files where status = 'loaded'"
        ).fetchone()
    return int(row[0]), int(row[1])


def _months(first: str, n: int) -> list[str]:
    year, month = map(int, first.split("-"))
    out = []
    for _ in range(n):
        out.append(f"{year:04d}-{month:02d}")
        month += 1
        if month == 13:
            year, month = year + 1, 1
    return out


def main(argv: list[str] | None = None) -> int:  # noqa: C901 - one benchmark, its stages in order
    parser = argparse.ArgumentParser(prog="python -m ingestion.bench_national", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=CHECKOUT / "bench-out" / "national")
    parser.add_argument("--counties", type=int, default=None, help="only the first N counties (a smaller run)")
    parser.add_argument("--months", type=int, default=12, help="months in the year stage (1: the month only)")
    parser.add_argument("--years", type=int, default=1, help="years of history to measure the incremental build at")
    parser.add_argument("--no-airflow", action="store_true")
    parser.add_argument("--workers", type=int, default=None, help="pairstats ingest --workers")
    args = parser.parse_args(argv)

    from ingestion.national import generate_national
    from ingestion.warehouse import server_url

    out: Path = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    logs = out / "logs"
    settings = Settings.from_env({**os.environ, "PAIRSTATS_HOME": str(out / "home")})
    admin = server_url(settings, "postgres")
    stages: list[Stage] = []
    results: dict[str, Any] = {"stages": stages}

    def report(stage: Stage) -> Stage:
        stages.append(stage)
        print(stage.line(), flush=True)
        return stage

    t = time.perf_counter()
    month_landing = out / "landing-month"
    if not month_landing.exists():
        generate_national(month_landing, ["2025-01"], limit=args.counties)
    report(Stage("generate a national month", time.perf_counter() - t, 0))

    cli_url = _fresh_database(admin, "pairstats_bench_cli")
    cli_env = _env(out / "home-cli", cli_url)
    workers = ["--workers", str(args.workers)] if args.workers else []
    run("warehouse init", [PYTHON, "-m", "ingestion.cli", "warehouse", "init"], cli_env, logs / "init.log")
    cli = report(
        run("CLI: pairstats ingest (landing → raw)", [PYTHON, "-m", "ingestion.cli", "ingest", str(month_landing),
            *workers], cli_env, logs / "cli-ingest.log")
    )  # fmt: skip
    cli.files, cli.rows = _counts(cli_url)
    print(f"    {cli.files} files, {cli.rows} rows landed", flush=True)
    build = report(run("CLI: pairstats build (dbt)", [PYTHON, "-m", "ingestion.cli", "build"], cli_env,
                       logs / "cli-build.log"))  # fmt: skip
    quality = report(run("CLI: pairstats quality (nightly)", [PYTHON, "-m", "ingestion.cli", "quality", "--no-send"],
                         cli_env, logs / "cli-quality.log"))  # fmt: skip

    naive_url = _fresh_database(admin, "pairstats_bench_naive")
    naive = report(run("naive: to_sql per file and kind", [PYTHON, "-m", "ingestion.naive", str(month_landing),
                       naive_url], _env(out / "home-naive", naive_url), logs / "naive.log"))  # fmt: skip
    results["national/naive ratio"] = round(cli.seconds / naive.seconds, 2)
    results["month landing → marts (CLI)"] = round(cli.seconds + build.seconds, 1)

    if not args.no_airflow:
        af_url = _fresh_database(admin, "pairstats_bench_airflow")
        af_env = _env(out / "home-airflow", af_url, PAIRSTATS_LANDING=str(month_landing))
        run("warehouse init (airflow)", [PYTHON, "-m", "ingestion.cli", "warehouse", "init"], af_env,
            logs / "af-init.log")  # fmt: skip
        code = (
            "import json, sys; from ingestion.dag_runs import run_pipeline; "
            "runs = run_pipeline(); print(json.dumps([r.to_dict() for r in runs])); "
            "sys.exit(0 if runs and all(r.ok for r in runs) and len(runs) == 2 else 1)"
        )
        airflow = report(run("Airflow: ingest_submissions + build_warehouse", [PYTHON, "-c", code], af_env,
                             logs / "airflow.log"))  # fmt: skip
        runs = json.loads((logs / "airflow.log").read_text(encoding="utf-8").strip().splitlines()[-1])
        ingest_run = next(r for r in runs if r["dag_id"] == "ingest_submissions")
        build_run = next(r for r in runs if r["dag_id"] == "build_warehouse")
        airflow.files, airflow.rows = _counts(af_url)
        results["airflow ingest run (s)"] = ingest_run["run_seconds"]
        results["airflow build run (s)"] = build_run["run_seconds"]
        results["airflow/naive ratio"] = round(ingest_run["run_seconds"] / naive.seconds, 2)
        results["month landing → marts (Airflow)"] = round(airflow.seconds, 1)

    history: list[dict[str, Any]] = []
    if args.months > 1 or args.years > 1:
        start = "2025-02"
        for year in range(args.years):
            span = _months(start, args.months - 1 if year == 0 else args.months)
            if not span:
                continue
            start = _months(span[-1], 2)[1]
            bulk, last = span[:-1], span[-1]
            landing = out / f"landing-year{year + 1}"
            if bulk:
                if not landing.exists():
                    generate_national(landing, bulk, limit=args.counties, first_month="never")
                report(run(f"year {year + 1}: ingest {len(bulk)} months", [PYTHON, "-m", "ingestion.cli", "ingest",
                           str(landing), *workers], cli_env, logs / f"year{year + 1}-ingest.log"))  # fmt: skip
                report(run(f"year {year + 1}: pairstats build", [PYTHON, "-m", "ingestion.cli", "build"], cli_env,
                           logs / f"year{year + 1}-build.log"))  # fmt: skip
            one = out / f"landing-month-{last}"
            if not one.exists():
                generate_national(one, [last], limit=args.counties, first_month="never")
            report(run(f"year {year + 1}: ingest one more month ({last})", [PYTHON, "-m", "ingestion.cli", "ingest",
                       str(one), *workers], cli_env, logs / f"year{year + 1}-month.log"))  # fmt: skip
            incremental = report(run(f"year {year + 1}: nightly incremental build", [PYTHON, "-m", "ingestion.cli",
                                     "build"], cli_env, logs / f"year{year + 1}-incremental.log"))  # fmt: skip
            incremental_nodes = dbt_profile(out / "home-cli", logs / f"year{year + 1}-incremental")
            full = report(run(f"year {year + 1}: full refresh", [PYTHON, "-m", "ingestion.cli", "build",
                              "--full-refresh"], cli_env, logs / f"year{year + 1}-full.log"))  # fmt: skip
            full_nodes = dbt_profile(out / "home-cli", logs / f"year{year + 1}-full")
            nightly = report(run(f"year {year + 1}: nightly quality", [PYTHON, "-m", "ingestion.cli", "quality",
                                 "--no-send"], cli_env, logs / f"year{year + 1}-quality.log"))  # fmt: skip
            files, rows = _counts(cli_url)
            history.append(
                {
                    "years": year + 1,
                    "files": files,
                    "rows": rows,
                    "incremental_s": round(incremental.seconds, 1),
                    "full_s": round(full.seconds, 1),
                    "quality_s": round(nightly.seconds, 1),
                    "incremental/full": round(incremental.seconds / full.seconds, 3),
                    "incremental_dbt": incremental_nodes,
                    "full_dbt": full_nodes,
                }
            )
            print(f"    history {year + 1} year(s): {files} files, {rows} rows; incremental/full "
                  f"{history[-1]['incremental/full']}", flush=True)  # fmt: skip
        results["history"] = history
        scope = f"{args.counties} counties" if args.counties else "national"
        _chart(history, out / "incremental-vs-history.png", scope)

    results["stages"] = [asdict(s) for s in stages]
    results["quality (s)"] = round(quality.seconds, 1)
    (out / "results.json").write_text(json.dumps(results, indent=2, ensure_ascii=False), encoding="utf-8")
    print()
    for key, value in results.items():
        if key not in ("stages", "history"):
            print(f"{key}: {value}")
    return 0


def dbt_profile(home: Path, keep_as: Path, top: int = 8) -> dict[str, Any]:
    """Where the last dbt build of ``home`` spent its time (its ``run_results.json``, kept as
    ``<keep_as>-run_results.json``): seconds per node kind (the sum of the nodes' own times;
    dbt runs two at a time) and the slowest nodes. Printed under the stage."""
    source = home / "dbt" / "target" / "run_results.json"
    if not source.exists():
        return {}
    data = json.loads(source.read_text(encoding="utf-8"))
    keep_as.parent.mkdir(parents=True, exist_ok=True)
    Path(f"{keep_as}-run_results.json").write_text(json.dumps(data), encoding="utf-8")
    nodes = [(r["unique_id"], float(r.get("execution_time") or 0.0)) for r in data.get("results", [])]
    by_kind: dict[str, float] = {}
    for unique_id, seconds in nodes:
        kind = unique_id.split(".", 1)[0]
        by_kind[kind] = by_kind.get(kind, 0.0) + seconds
    slowest = sorted(nodes, key=lambda n: -n[1])[:top]
    profile = {
        "elapsed_s": round(float(data.get("elapsed_time") or 0.0), 1),
        "nodes": len(nodes),
        "seconds_by_kind": {k: round(v, 1) for k, v in sorted(by_kind.items())},
        "slowest": [[unique_id.split(".")[-1] if unique_id.startswith("model.") else unique_id, round(t, 2)]
                    for unique_id, t in slowest],
    }  # fmt: skip
    kinds = ", ".join(f"{k} {v:.1f} s" for k, v in profile["seconds_by_kind"].items())
    print(f"    dbt: {profile['nodes']} nodes in {profile['elapsed_s']} s ({kinds}); slowest: "
          + ", ".join(f"{name} {t:.1f} s" for name, t in profile["slowest"]), flush=True)  # fmt: skip
    return profile


def _chart(history: list[dict[str, Any]], path: Path, scope: str = "national") -> None:
    """The nightly incremental build and a full refresh against years of history."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("(matplotlib is not installed: no chart)")
        return
    years = [h["years"] for h in history]
    fig, ax = plt.subplots(figsize=(7, 4), dpi=120)
    ax.plot(years, [h["full_s"] for h in history], marker="o", label="full refresh")
    ax.plot(years, [h["incremental_s"] for h in history], marker="o", label="nightly incremental (one new month)")
    ax.plot(years, [h["quality_s"] for h in history], marker="o", label="nightly quality checks")
    per_month = history[0]["rows"] // max(1, 12 * history[0]["years"])
    ax.set_xlabel(f"years of history ({scope}, about {per_month:,} rows a month)")
    ax.set_ylabel("seconds")
    ax.set_xticks(years)
    ax.set_title("pairstats build cost against history (2 cores)")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    print(f"chart: {path}")


if __name__ == "__main__":
    sys.exit(main())
