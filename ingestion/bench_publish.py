"""``make bench-publish``: what write-audit-publish costs, against building the marts in place.

Two warehouses on one server start identical: the same submissions of every month but the
last two (the demo's regions, or ``--national`` counties from the register), built and
published once, then cloned. Each then receives the same new month twice over (month N-1,
then month N), and after each one builds:

* **publish**: ``pairstats build`` — written and tested in ``marts_build``, then published
  (``ingestion.dbt.build``). The copy it builds missed the previous build's month too (each
  copy is built every other time), so in the steady state — the second month — it applies two
  months of changes;
* **in place**: ``dbt build`` straight into ``marts`` (what ``pairstats build`` did before
  write-audit-publish), on the clone.

Prints each build's seconds, the publish step's ms, and ``publish/in-place ratio`` for the
steady-state month. Results go to ``<out>/results.json``.

    python -m ingestion.bench_publish [--out bench-out/publish] [--national N]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from ingestion.config import Settings
from ingestion.demo import DEFAULT_MONTHS, generate_demo
from ingestion.warehouse import server_url, warehouse_url, with_database


def _generate(landing: Path, national: int | None) -> dict[str, list[Path]]:
    """Files by period: the demo's months, or ``national`` counties for three months."""
    by_period: dict[str, list[Path]] = {}
    if national:
        from ingestion.national import generate_national

        for f in generate_national(landing, ["2025-01", "2025-02", "2025-03"], limit=national):
            by_period.setdefault(f.period, []).append(f.path)
    else:
        result = generate_demo(landing, defects=False)
        for f in result.files:
            by_period.setdefault(f.period or DEFAULT_MONTHS[0], []).append(f.path)
    return dict(sorted(by_period.items()))


def _ingest(settings: Settings, paths: list[Path]) -> None:
    from ingestion.pipeline import Ingester
    from ingestion.service import ingest_files
    from ingestion.warehouse import connect

    with connect(warehouse_url(settings)) as conn:
        ingest_files(Ingester(conn, settings, run_id="bench_publish"), paths)


def _database(admin: str, name: str, template: str | None = None) -> str:
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))
        if template:  # a template must have no other session (dbt's and the ingester's have ended)
            conn.execute(
                "select pg_terminate_backend(pid) from pg_stat_activity where datname = %s and pid <> pg_backend_pid()",
                (template,),
            )
            conn.execute(
                sql.SQL("create database {} template {}").format(sql.Identifier(name), sql.Identifier(template))
            )
        else:
            conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    return with_database(admin, name)


def _timed(step: Any) -> tuple[Any, float]:
    began = time.perf_counter()
    value = step()
    return value, time.perf_counter() - began


def main(argv: list[str] | None = None) -> int:
    from ingestion import dbt
    from ingestion.warehouse import connect, init_warehouse

    parser = argparse.ArgumentParser(prog="python -m ingestion.bench_publish", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("bench-out/publish"))
    parser.add_argument("--national", type=int, metavar="N", help="N counties of the register instead of the demo")
    args = parser.parse_args(argv)
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    base = Settings.from_env()
    if not base.warehouse_url:  # an embedded PostgreSQL of the benchmark's own
        base = Settings.from_env({"PAIRSTATS_HOME": str(out / "home")})
    admin = server_url(base, "postgres")
    by_period = _generate(out / "landing", args.national)
    periods = list(by_period)
    if len(periods) < 3:
        raise SystemExit("need three periods or more")
    label = f"{args.national} counties" if args.national else "demo"
    print(f"bench-publish ({label}): {sum(map(len, by_period.values()))} files, periods {periods}")

    urls = {"publish": _database(admin, "pairstats_bench_publish")}
    settings = {
        k: Settings.from_env({"PAIRSTATS_HOME": str(out / k), "PAIRSTATS_WAREHOUSE_URL": u}) for k, u in urls.items()
    }
    with connect(urls["publish"]) as conn:
        init_warehouse(conn)
    _ingest(settings["publish"], [p for period in periods[:-2] for p in by_period[period]])
    assert dbt.build(settings["publish"]), "the first build failed"
    urls["in_place"] = _database(admin, "pairstats_bench_in_place", template="pairstats_bench_publish")
    settings["in_place"] = Settings.from_env(
        {"PAIRSTATS_HOME": str(out / "in_place"), "PAIRSTATS_WAREHOUSE_URL": urls["in_place"]}
    )

    results: dict[str, Any] = {"data": label, "months": {}}
    for period in periods[-2:]:
        row: dict[str, Any] = {}
        for kind in ("publish", "in_place"):
            _ingest(settings[kind], by_period[period])
            if kind == "publish":
                built, seconds = _timed(lambda: dbt.build(settings["publish"]))
                assert built, built.describe()
                row["publish_s"], row["publish_ms"] = round(seconds, 2), round(built.publish_ms or 0, 1)
            else:
                ok, seconds = _timed(lambda: dbt.run_dbt(["build"], urls["in_place"], settings=settings["in_place"]))
                assert ok, "the in-place build failed"
                row["in_place_s"] = round(seconds, 2)
        row["ratio"] = round(row["publish_s"] / row["in_place_s"], 2)
        results["months"][period] = row
        print(
            f"  after {period}: publish build {row['publish_s']:7.1f} s (publish step {row['publish_ms']:.0f} ms)"
            f"   in-place build {row['in_place_s']:7.1f} s   ratio {row['ratio']:.2f}"
        )
    steady = results["months"][periods[-1]]
    results["publish_over_in_place"] = steady["ratio"]
    print(f"publish step: {steady['publish_ms']:.0f} ms")
    print(f"publish/in-place ratio: {steady['ratio']:.2f}  (steady state: the copy built missed one month)")
    (out / "results.json").write_text(json.dumps(results, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
