"""Run the dbt project (``dbt_project/``) against the warehouse in use, in this process.

dbt is driven through its programmatic entry point ``dbtRunner`` (dbt-core 1.11), not a
subprocess. The profile (``dbt_project/profiles.yml``) reads every connection field from
``PAIRSTATS_DB_*`` environment variables; :func:`dbt_env` derives them from the warehouse's
libpq URL, and :func:`run_dbt` sets them for the duration of one invocation only.

dbt writes its ``target/`` (manifest, compiled SQL, partial-parse cache) and ``logs/`` under
the state folder (``$PAIRSTATS_HOME/dbt/``), never into the checkout, so a read-only checkout
works and two checkouts sharing a home do not clash.

Typical use::

    from ingestion import dbt
    dbt.build()                          # seeds + snapshot + models + tests, incremental,
                                         # written and tested in marts_build, then published
    dbt.build(full_refresh=True)         # rebuild the incremental facts from scratch
    dbt.run(["source", "freshness"])     # any other dbt command
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg

from ingestion import build_copy, publish
from ingestion.config import CHECKOUT, Settings
from ingestion.warehouse import analyze_stale, libpq_params, warehouse_url

log = logging.getLogger(__name__)

PROJECT_DIR = CHECKOUT / "dbt_project"
PROFILES_DIR = PROJECT_DIR  # profiles.yml holds env_var() calls only, no secret
PROFILE_TARGET = "default"

# dbt reads its configuration from process-wide state (environment, global flags): one
# invocation at a time per process.
_LOCK = threading.Lock()

# dbt must never phone home (no network here, and none wanted in production).
_QUIET_ENV = {
    "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    "DO_NOT_TRACK": "1",
    "DBT_VERSION_CHECK": "false",
}


def dbt_env(url: str) -> dict[str, str]:
    """The ``PAIRSTATS_DB_*`` variables that ``profiles.yml`` reads, from a libpq URL.

    A unix-socket URL (``postgresql://postgres@/pairstats?host=/path/to/socket-dir``) gives the
    socket directory as host, which psycopg2 (dbt-postgres) accepts as it is.
    """
    params = libpq_params(url)
    return {
        "PAIRSTATS_DB_HOST": params["host"],
        "PAIRSTATS_DB_PORT": params["port"],
        "PAIRSTATS_DB_USER": params["user"],
        "PAIRSTATS_DB_PASSWORD": params["password"],
        "PAIRSTATS_DB_NAME": params["dbname"],
    }


def state_dir(settings: Settings | None = None) -> Path:
    """Where dbt's ``target/`` and ``logs/`` go: ``$PAIRSTATS_HOME/dbt``."""
    settings = settings or Settings.from_env()
    return settings.home / "dbt"


@contextmanager
def _environment(values: Mapping[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _with_paths(args: Sequence[str], settings: Settings) -> list[str]:
    """Add the project, profile, target and log paths unless the caller gave them."""
    args = list(args)
    state = state_dir(settings)
    extra: list[str] = []
    given = set(args)
    if "--project-dir" not in given:
        extra += ["--project-dir", str(PROJECT_DIR)]
    if "--profiles-dir" not in given:
        extra += ["--profiles-dir", str(PROFILES_DIR)]
    if "--target-path" not in given:
        extra += ["--target-path", str(state / "target")]
    if "--log-path" not in given:
        extra += ["--log-path", str(state / "logs")]
    if not args:
        raise ValueError("run_dbt needs a dbt command, e.g. ['build']")
    # options go last: after a group's subcommand too (`source freshness`, `docs generate`)
    return [*args, *extra]


def run_dbt(args: list[str], url: str | None = None, *, settings: Settings | None = None) -> bool:
    """Run one dbt command (``["build", "--select", "marts"]``) in this process.

    ``url`` is the warehouse's libpq URL (default: :func:`ingestion.warehouse.warehouse_url`,
    the configured server or the embedded one). Returns True when dbt reports success;
    dbt's own output (the per-node log) goes to stdout and ``$PAIRSTATS_HOME/dbt/logs``.
    This writes the marts in place (``marts``): :func:`build` is the one that publishes.
    """
    return bool(_invoke(args, url, settings=settings).success)


def _invoke(args: list[str], url: str | None = None, *, settings: Settings | None = None) -> Any:
    """One dbt invocation; returns dbt's ``dbtRunnerResult`` (success, exception, per-node results)."""
    from dbt.cli.main import dbtRunner  # heavy import (about 1 s): only when dbt runs

    settings = settings or Settings.from_env()
    url = url or warehouse_url(settings)
    full_args = _with_paths(args, settings)
    state = state_dir(settings)
    (state / "target").mkdir(parents=True, exist_ok=True)
    (state / "logs").mkdir(parents=True, exist_ok=True)
    env = {**_QUIET_ENV, **dbt_env(url)}
    _analyze_sources(url)
    with _LOCK, _environment(env):
        log.info("dbt %s", " ".join(full_args))
        result = dbtRunner().invoke(full_args)
    if result.exception is not None:
        log.error("dbt %s raised: %s", args[0], result.exception)
    return result


def _analyze_sources(url: str) -> None:
    """Statistics for what the models read (``warehouse.analyze_stale``), so that the first
    build after a backlog is not planned as if raw.* were empty. A warehouse that cannot be
    reached is left to dbt to report."""
    try:
        with psycopg.connect(url) as conn:
            analysed = analyze_stale(conn)
    except psycopg.Error as exc:
        log.warning("could not refresh the statistics of the source tables: %s", exc)
        return
    if analysed:
        log.info("analysed %s (changed since their last statistics)", ", ".join(analysed))


def run(args: Sequence[str], settings: Settings | None = None) -> bool:
    """Any dbt command against the warehouse of ``settings`` (used by the Airflow DAGs)."""
    settings = settings or Settings.from_env()
    return run_dbt(list(args), warehouse_url(settings), settings=settings)


def build(
    settings: Settings | None = None,
    *,
    full_refresh: bool = False,
    select: str | Sequence[str] | None = None,
) -> publish.BuildResult:
    """``dbt build`` with write-audit-publish: seeds, the pairing snapshot, every model and
    every test, in DAG order, with the marts written and tested in ``marts_build``; the marts
    it built are published to ``marts`` (one transaction, ``ingestion.publish``) only when
    every node and test passed. Otherwise ``marts`` keeps the last good build.

    Incremental by default: the facts replace only the partitions whose inputs changed since
    the copy being built was last built. ``full_refresh`` rebuilds them (and the seeds) from
    scratch; the result is the same tables. ``select`` narrows the build (dbt selection
    syntax, e.g. ``"+fct_projects"`` or ``["marts", "staging"]``): only what it built is
    published. The result is true when the build passed and was published; ``describe()``
    says what failed.
    """
    settings = settings or Settings.from_env()
    url = warehouse_url(settings)
    args = ["build", "--vars", json.dumps({"marts_schema": publish.BUILD})]
    if full_refresh:
        args.append("--full-refresh")
    if select:
        args += ["--select", *([select] if isinstance(select, str) else list(select))]
    with publish.build_lock(url):
        with psycopg.connect(url) as conn:
            started = conn.execute("select now()").fetchone()[0]
            start_inputs = publish.inputs(conn)
        with psycopg.connect(url, autocommit=True) as conn:
            copies = build_copy.begin(conn)
        began = time.perf_counter()
        run = _invoke(args, url, settings=settings)
        failures, built, skipped = publish.outcome(run)
        result = publish.BuildResult(
            success=bool(run.success) and not failures,
            failures=failures,
            build_seconds=time.perf_counter() - began,
            skipped=skipped,
        )
        if not result.success:
            log.error("%s", result.describe())
            return result
        invocation = _invocation_id()
        with psycopg.connect(url) as conn:
            result.publish_ms = publish.publish(
                conn,
                built,
                started_at=started,
                full_refresh=full_refresh,
                inputs_at_start=start_inputs,
                invocation_id=invocation,
            )
        result.published = built
        with psycopg.connect(url, autocommit=True) as conn:  # BI already reads the new tables
            synced = build_copy.sync(conn, built, copies)
        result.copy_sync_seconds = synced.seconds
        result.copies_keyed, result.copies_whole = synced.keyed, synced.copied
        log.info("%s", result.describe())
        return result


def _invocation_id() -> str | None:
    """The id of the dbt invocation that just ran in this process (its logs carry it)."""
    from dbt_common.invocation import get_invocation_id

    return get_invocation_id()
