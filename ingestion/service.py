"""Ingesting a batch of files: the one path the CLI, the demo and the Airflow tasks take.

``ingest_files(ingester, paths)`` expands folders, orders the files (``expand_paths``),
ingests each in its own transaction and, after every file that registered pairings, runs
again by itself every earlier file of the same unit whose rows were quarantined because one
of those pairings was not registered yet (``R009``): files arrive in any order, over any
number of runs, and the warehouse ends the same. A re-run reads the archived copy through
the reprocess path (``ingestion.reprocess``): it is recorded with ``reprocess_of`` = the
original receipt and takes the original's place among the versions, so its rows count once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ingestion import audit
from ingestion.config import Settings
from ingestion.files import expand_paths
from ingestion.outcome import FileOutcome
from ingestion.pipeline import Ingester
from ingestion.reprocess import MissingArchive, find_candidates, reprocess

log = logging.getLogger(__name__)

CURED_BY_REGISTRATION = "R009_UNKNOWN_PAIRING"
# a chain of re-runs (a re-run that registers pairings itself) never goes deeper than this
MAX_CURE_ROUNDS = 10


@dataclass
class RunResult:
    outcomes: list[FileOutcome] = field(default_factory=list)  # one per file given, in the order ingested
    reruns: list[FileOutcome] = field(default_factory=list)  # files run again because a pairing was registered
    failures: list[str] = field(default_factory=list)  # re-runs that could not run (archived copy missing)

    def summary(self) -> dict[str, Any]:
        return summarise_outcomes([o.brief() for o in self.outcomes], [o.brief() for o in self.reruns], self.failures)


def summarise_outcomes(
    outcomes: list[dict[str, Any]], reruns: list[dict[str, Any]], failures: list[str] | None = None
) -> dict[str, Any]:
    """The one summary of a run (CLI, demo, a DAG run's batches), from the files' briefs
    (``FileOutcome.brief``): files per status, rows of the current attempts (a re-run's rows
    stand for its first attempt's: counted once), the units and periods that changed, the
    refused files with their codes."""
    loaded_reruns = [o for o in reruns if o["status"] == "loaded"]
    by_status = {s: [o for o in outcomes if o["status"] == s] for s in ("loaded", "rejected", "duplicate")}
    replaced = {o["reprocess_of"] for o in reruns}
    latest = {o["reprocess_of"]: o for o in loaded_reruns}
    current = [o for o in by_status["loaded"] if o["submission_id"] not in replaced] + list(latest.values())
    return {
        "files": len(outcomes),
        "loaded_files": len(by_status["loaded"]),
        "rejected_files": len(by_status["rejected"]),
        "duplicate_files": len(by_status["duplicate"]),
        "reruns": len(reruns),
        "rows_loaded": sum(int(o["rows_loaded"] or 0) for o in current),
        "rows_quarantined": sum(int(o["rows_quarantined"] or 0) for o in current),
        "units_periods": sorted({f"{o['reporting_unit_code']}/{o['period']}" for o in current}),
        "rejected": [
            {"file": "/".join(Path(o["file"]).parts[-2:]), "codes": sorted(o["codes"])} for o in by_status["rejected"]
        ],
        "failures": list(failures or ()),
    }


def ingest_files(
    ingester: Ingester,
    paths: Iterable[Path | str],
    *,
    dry_run: bool = False,
    on_outcome: Callable[[FileOutcome, bool], None] | None = None,
    batch_files: int | None = None,
) -> RunResult:
    """Ingest files in the order given (as they arrived) and folders (recursively) in
    submission order, in batches (``Ingester.ingest_many``: one GX call per kind a batch),
    curing what each batch registers. ``on_outcome(outcome, is_rerun)`` is called as each
    outcome is known. ``dry_run`` checks each file alone and writes nothing."""
    result = RunResult()
    files = arrival_order(paths)
    if dry_run:
        for path in files:
            outcome = ingester.ingest(path, dry_run=True)
            result.outcomes.append(outcome)
            if on_outcome:
                on_outcome(outcome, False)
        return result
    size = batch_files or ingester.settings.batch_files
    for start in range(0, len(files), size):
        outcomes = ingester.ingest_many(files[start : start + size])
        audit.keep_statistics(ingester.conn)  # the per-file lookups stay index probes as the audit grows
        result.outcomes.extend(outcomes)
        for outcome in outcomes:
            if on_outcome:
                on_outcome(outcome, False)
        for outcome in outcomes:
            for rerun in cure_pending(ingester, outcome, failures=result.failures):
                result.reruns.append(rerun)
                if on_outcome:
                    on_outcome(rerun, True)
    return result


def ingest_parallel(
    paths: Iterable[Path | str],
    settings: Settings,
    *,
    run_id: str,
    workers: int,
    on_outcome: Callable[[FileOutcome, bool], None] | None = None,
) -> RunResult:
    """``ingest_files`` over several processes: the files in batches of whole landing folders
    (``plan_batches``: a unit's files stay together, in order, in one worker), each worker with
    its own connection and Great Expectations context. Outcomes arrive batch by batch."""
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from multiprocessing import get_context

    from ingestion.files import plan_batches

    files = arrival_order(paths)
    batches = plan_batches(files, batch_files=settings.batch_files, max_batches=max(1, len(files)))
    result = RunResult()
    context = get_context("spawn")  # a fresh interpreter: no connection or GX state is inherited
    with ProcessPoolExecutor(
        max_workers=min(workers, len(batches)), mp_context=context, initializer=_start_worker,
        initargs=(settings, run_id),
    ) as pool:  # fmt: skip
        for done in as_completed([pool.submit(_work, batch) for batch in batches]):
            part: RunResult = done.result()
            for outcome in part.outcomes:
                result.outcomes.append(outcome)
                if on_outcome:
                    on_outcome(outcome, False)
            for rerun in part.reruns:
                result.reruns.append(rerun)
                if on_outcome:
                    on_outcome(rerun, True)
            result.failures.extend(part.failures)
    return result


_worker: dict[str, Any] = {}


def _start_worker(settings: Settings, run_id: str) -> None:
    from ingestion.warehouse import connect, warehouse_url

    conn = connect(warehouse_url(settings))
    _worker["ingester"] = Ingester(conn, settings, run_id=run_id)


def _work(batch: list[str]) -> RunResult:
    return ingest_files(_worker["ingester"], [Path(p) for p in batch])


def workers_for(files: int, settings: Settings, requested: int | None) -> int:
    """How many processes a CLI ingest uses: as asked, else one per core (at most 4) when there
    is more than one batch of files."""
    import os

    if requested:
        return requested
    if files <= settings.batch_files:
        return 1
    return max(1, min(4, os.cpu_count() or 1))


def ingest_batch(paths: Sequence[str], run_id: str, settings: Settings | None = None) -> RunResult:
    """One batch of a run in this process (an Airflow task): its own connection and Ingester.

    The task may be a retry of an attempt that died midway (its worker killed, the warehouse
    restarted): the files that attempt committed are reported as recorded then (``resume``),
    so every file of the run has exactly one row in ``audit.submission_files``."""
    from ingestion.warehouse import connect, warehouse_url

    settings = settings or Settings.from_env()
    with connect(warehouse_url(settings)) as conn:
        return ingest_files(Ingester(conn, settings, run_id=run_id, resume=True), [Path(p) for p in paths])


def arrival_order(paths: Iterable[Path | str]) -> list[Path]:
    """Files as given, each folder's files in submission order (``expand_paths``) in its place."""
    found: list[Path] = []
    for p in map(Path, paths):
        found.extend(expand_paths([p]) if p.is_dir() else [p])
    return found


def registered_pairings(outcome: FileOutcome) -> bool:
    return outcome.status == "loaded" and bool(outcome.kind_counts.get("pairings", {}).get("loaded"))


def cure_pending(ingester: Ingester, outcome: FileOutcome, *, failures: list[str] | None = None) -> list[FileOutcome]:
    """After ``outcome`` registered pairings: re-run every file of its unit whose latest attempt
    has rows quarantined for a pairing that is registered now. Serialised per unit (an
    advisory lock), so two workers never re-run the same file at once."""
    if not registered_pairings(outcome) or not outcome.reporting_unit_code:
        return []
    unit = outcome.reporting_unit_code
    conn = ingester.conn
    reruns: list[FileOutcome] = []
    if not _has_quarantined_rows(conn, unit):  # the usual case, answered by one indexed query
        return reruns
    conn.execute("select pg_advisory_lock(hashtextextended(%s, 0))", (f"pairstats.cure:{unit}",))
    conn.commit()
    try:
        done: set[int] = {outcome.submission_id} if outcome.submission_id else set()
        for _ in range(MAX_CURE_ROUNDS):
            todo = [c for c in _curable(ingester, unit) if c.submission_id not in done]
            if not todo:
                break
            for candidate in todo:
                done.add(candidate.submission_id)
                try:
                    rerun = reprocess(ingester, candidate)
                except MissingArchive as exc:
                    log.error("cannot re-run submission %s: %s", candidate.submission_id, exc)
                    if failures is not None:
                        failures.append(str(exc))
                    continue
                log.info(
                    "re-ran submission %s (%s): its pairing is registered now",
                    candidate.receipt_id,
                    candidate.original_name,
                )
                reruns.append(rerun)
                if rerun.submission_id:
                    done.add(rerun.submission_id)
    finally:
        conn.execute("select pg_advisory_unlock(hashtextextended(%s, 0))", (f"pairstats.cure:{unit}",))
        conn.commit()
    return reruns


def _has_quarantined_rows(conn: Any, unit: str) -> bool:
    row = conn.execute(
        "select exists (select 1 from audit.submission_files where reporting_unit_code = %s"
        " and status = 'loaded' and rows_quarantined > 0)",
        (unit,),
    ).fetchone()
    conn.commit()
    return bool(row[0])


_CURABLE_SQL = """
select exists (
    select 1 from quarantine.rejected_rows q
    where q.submission_id = %(sid)s and q.reason_code = %(code)s and q.value = any(%(known)s)
)
"""


def _curable(ingester: Ingester, unit: str) -> list:
    """The latest attempts of this unit's files with an R009 row naming a pairing now registered."""
    conn = ingester.conn
    candidates = find_candidates(conn, unit=unit, reasons=[CURED_BY_REGISTRATION])
    if not candidates:
        return []
    known = sorted(ingester.known_pairings(unit))
    curable = [
        c
        for c in candidates
        if conn.execute(
            _CURABLE_SQL, {"sid": c.submission_id, "code": CURED_BY_REGISTRATION, "known": known}
        ).fetchone()[0]
    ]
    conn.commit()
    return curable
