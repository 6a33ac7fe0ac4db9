"""The ``pairstats`` command.

pairstats ingest [--json] PATH...       load files or folders into the warehouse
pairstats check [--json] FILE...        every problem a file would meet; writes nothing
pairstats template OUT.xlsx             the workbook districts fill in [--unit CODE] [--period 2024-06]
pairstats reprocess [ID...]             run received files again from the archive [--unit] [--period]
pairstats quality [--as-of DATE]        the nightly checks, Data Docs and the digest, without Airflow
pairstats demo [--landing DIR]          generate the five regions' submissions and ingest them
pairstats warehouse url|init|stop       the warehouse in use
pairstats bi add|list|remove [NAME]     logins for BI tools (group bi_reader: marts only)
pairstats register import [--full]      (re)load the region register
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from ingestion import report
from ingestion.cli_parser import build_parser
from ingestion.config import Settings
from ingestion.outcome import FileOutcome
from ingestion.warehouse import init_warehouse


def _connect(settings: Settings):
    from ingestion import warehouse

    return warehouse.connect(warehouse.warehouse_url(settings))


# --------------------------------------------------------------------------- commands


def cmd_ingest(args: argparse.Namespace, settings: Settings) -> int:
    from ingestion.pipeline import Ingester
    from ingestion.service import arrival_order, ingest_files, ingest_parallel, workers_for

    def show(o: FileOutcome, rerun: bool) -> None:
        if args.json:
            print(json.dumps(o.to_dict() | {"rerun": rerun}, ensure_ascii=False), flush=True)
            return
        if rerun:
            print("  ↻ 结对已登记，自动重新处理 / its pairing is registered now: re-run automatically")
        report.print_outcome(o, verbose=args.verbose)

    with _connect(settings) as conn:
        init_warehouse(conn)
        conn.commit()
        files = arrival_order(args.paths)
        workers = workers_for(len(files), settings, args.workers)
        if workers > 1:
            result = ingest_parallel(files, settings, run_id=args.run_id, workers=workers, on_outcome=show)
        else:
            result = ingest_files(Ingester(conn, settings, run_id=args.run_id), files, on_outcome=show)
    if not args.json:
        report.summary(result.summary())
    for failure in result.failures:
        print(f"✘ {failure}", file=sys.stderr)
    return 0 if all(o.status != "rejected" for o in result.outcomes) and not result.failures else 1


def cmd_check(args: argparse.Namespace, settings: Settings) -> int:
    from ingestion.files import expand_paths
    from ingestion.pipeline import Ingester

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
                continue
            report.print_check_report(o, code)
    return worst


def cmd_template(args: argparse.Namespace, settings: Settings) -> int:
    from ingestion.metadata import period_or_none as parse_period
    from ingestion.template import unit_info, write_template

    period = parse_period(args.period) if args.period else None
    if args.period and period is None:
        print(f"报告期无法识别 / not a period: {args.period!r} (2024-06, 2024Q2)", file=sys.stderr)
        return 2
    unit = None
    if args.unit:
        with _connect(settings) as conn:
            init_warehouse(conn)
            try:
                unit = unit_info(conn, args.unit, period)
            except ValueError as exc:
                print(str(exc), file=sys.stderr)
                return 2
    out = write_template(args.out, unit=unit, period=period)
    filled = f"; {len(unit.pairings)} registered pairing(s) pre-filled" if unit else ""
    print(f"template written / 报表模板已生成: {out}{filled}")
    return 0


def cmd_reprocess(args: argparse.Namespace, settings: Settings) -> int:
    from ingestion.pipeline import Ingester
    from ingestion.reprocess import CURABLE_REASONS, MissingArchive, find_candidates, reprocess

    with _connect(settings) as conn:
        init_warehouse(conn)
        conn.commit()
        candidates = find_candidates(
            conn,
            submission_ids=args.ids or None,
            unit=args.unit,
            period=args.period,
            reasons=args.reason or CURABLE_REASONS,
        )
        if not candidates:
            print("nothing to reprocess / 没有需要重新处理的文件")
            return 0
        ingester = Ingester(conn, settings, run_id="reprocess-dry-run" if args.dry_run else "reprocess")
        failed = 0
        for c in candidates:
            label = f"submission {c.submission_id} ({c.original_name}; {', '.join(c.reasons) or 'as asked'})"
            try:
                o = reprocess(ingester, c, dry_run=args.dry_run)
            except MissingArchive as exc:
                print(f"✘ {label}: {exc}")
                failed += 1
                continue
            if args.json:
                print(json.dumps(o.to_dict(), ensure_ascii=False))
            else:
                print(f"reprocess {label}:")
                report.print_outcome(o, verbose=args.verbose)
            failed += o.status == "rejected"
    if not args.dry_run and not args.json:
        print("then / 然后: `pairstats build` (or the build_warehouse DAG) brings the marts up to date")
    return 1 if failed else 0


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    """Generate the five regions' submissions, run the chain, report what landed."""
    from ingestion.demo import generate_demo

    landing = (Path(args.landing) if args.landing else settings.landing).resolve()
    # the generator has finished writing (nothing is still arriving), and its folder may be scanned
    settings = dataclasses.replace(
        settings, settle_seconds=0, landing_roots=tuple(dict.fromkeys((*settings.allowed_landings, landing)))
    )
    result = generate_demo(landing, seed=args.seed)
    print(f"demo: {len(result.files)} submissions of 5 regions written to {landing}")
    with _connect(settings) as conn:
        init_warehouse(conn)
    if args.no_airflow:
        ok = _demo_in_process(landing, settings)
    else:
        ok = _demo_through_airflow(landing, settings, args)
    with _connect(settings) as conn:
        report.print_files(conn, landing)
        report.print_region_totals(conn)
    if not args.no_airflow:
        from ingestion.orchestration import login_info

        print(f"\nThe runs are in Airflow's metadata database: `make airflow`, then {login_info(settings)}")
    return 0 if ok else 1


def _demo_in_process(landing: Path, settings: Settings) -> bool:
    from ingestion.dbt import build
    from ingestion.pipeline import Ingester
    from ingestion.service import ingest_files

    with _connect(settings) as conn:
        ingest_files(Ingester(conn, settings, run_id="demo"), [landing])
    return build(settings)


def _demo_through_airflow(landing: Path, settings: Settings, args: argparse.Namespace) -> bool:
    from ingestion.dag_runs import run_pipeline

    conf = {"landing": str(landing)} if args.landing else None
    print("running the DAGs ingest_submissions → build_warehouse for real (airflow dags test) …")
    runs = run_pipeline(conf, settings)
    for run in runs:
        failed = [t for t in run.tasks if t.state not in ("success", "skipped")]
        print(
            f"  {run.dag_id}: {run.state} in {run.seconds:.0f} s, run {run.run_id}, {len(run.tasks)} task instances"
            + (f", {len(failed)} not successful" if failed else "")
            + f"; log {run.log_path}"
        )
    return bool(runs) and all(run.ok for run in runs)


def cmd_quality(args: argparse.Namespace, settings: Settings) -> int:
    from ingestion.quality import parse_as_of, print_summary, run_quality

    with _connect(settings) as conn:
        init_warehouse(conn)
    run = run_quality(
        settings,
        as_of=parse_as_of(args.as_of),
        all_clear=True if args.all_clear else None,
        send_digest=not args.no_send,
    )
    if args.json:
        print(json.dumps(run.summary(), ensure_ascii=False))
    else:
        print_summary(run)
        if run.digest is not None and args.show:
            print("\n" + run.digest.text)
    return 1 if run.digest is not None and not run.delivered and not args.no_send and settings.smtp_url else 0


def cmd_airflow(args: argparse.Namespace, settings: Settings) -> int:
    from ingestion.orchestration import run_airflow

    return run_airflow(args.airflow_args, settings)


def cmd_build(args: argparse.Namespace, settings: Settings) -> int:
    from ingestion.dbt import build

    with _connect(settings) as conn:
        init_warehouse(conn)
    result = build(settings, full_refresh=args.full_refresh, select=args.select)
    print(result.describe(), file=sys.stdout if result else sys.stderr)
    return 0 if result else 1


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


def cmd_bi(args: argparse.Namespace, settings: Settings) -> int:
    from ingestion import bi

    try:
        if args.action == "add":
            login = bi.add_login(args.name, settings, valid_until=args.valid_until)
        elif args.action == "remove":
            bi.remove_login(args.name, settings)
            print(f"已删除 BI 登录 {args.name} / BI login {args.name} removed")
            return 0
        else:
            return _print_logins(bi.list_logins(settings), as_json=args.json)
    except bi.BIError as exc:
        print(f"✘ {exc}", file=sys.stderr)
        return 2
    print(
        f"已创建 BI 登录 {login.name}（bi_reader 成员：只读 marts） / BI login {login.name} created"
        " (in bi_reader: reads marts only)"
    )
    print(f"连接地址 / connection URL:\n  {login.url}")
    print(f"密码只显示这一次 / the password, shown this once: {login.password}")
    if not login.tcp:
        print(
            "注意：内置仓库只监听 unix socket，BI 工具须经 TCP 连接：设置 PAIRSTATS_WAREHOUSE_LISTEN=127.0.0.1:5433 /"
            " note: the embedded warehouse listens on a unix socket only; for a BI tool over TCP set"
            " PAIRSTATS_WAREHOUSE_LISTEN=127.0.0.1:5433 (the URL above then names that address)",
            file=sys.stderr,
        )
    return 0


def _print_logins(logins, *, as_json: bool) -> int:
    if as_json:
        for login in logins:
            until = login.valid_until.isoformat() if login.valid_until else None
            print(json.dumps({"name": login.name, "created": login.created, "valid_until": until}))
        return 0
    if not logins:
        print("没有 BI 登录 / no BI logins")
        return 0
    print(f"{'login':<32} {'created / 创建':<26} valid until / 有效期至")
    for login in logins:
        until = login.valid_until.isoformat() if login.valid_until else "—"
        print(f"{login.name:<32} {login.created or '—':<26} {until}{'' if login.can_login else '  (NOLOGIN)'}")
    return 0


def cmd_register(args: argparse.Namespace, settings: Settings) -> int:
    with _connect(settings) as conn:
        n = init_warehouse(conn, full_register=args.full, force=True)
    print(f"region register loaded: {n} regions ({'full national list' if args.full else 'committed slice'})")
    return 0


COMMANDS = {
    "ingest": cmd_ingest,
    "check": cmd_check,
    "template": cmd_template,
    "reprocess": cmd_reprocess,
    "quality": cmd_quality,
    "demo": cmd_demo,
    "airflow": cmd_airflow,
    "build": cmd_build,
    "warehouse": cmd_warehouse,
    "bi": cmd_bi,
    "register": cmd_register,
}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["airflow"]:  # everything after is Airflow's, options included
        return cmd_airflow(argparse.Namespace(airflow_args=argv[1:]), Settings.from_env())
    args = build_parser(__doc__).parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    return COMMANDS[args.command_name](args, Settings.from_env())


if __name__ == "__main__":
    sys.exit(main())
