"""Files, end to end: keep → read → normalise → validate → load, one transaction per file.

``Ingester.ingest(path)`` takes one file; ``Ingester.ingest_many(paths)`` takes a batch, and
is how a backlog is ingested: the files are read and normalised one by one, then the rows of
every file of the batch are validated by Great Expectations in one call per record kind (its
fixed cost per call is paid once a batch, not once a file), then each file is loaded in its
own transaction. Neither raises for a bad file: each returns a ``FileOutcome`` per file,
recorded in ``audit.submission_files``. A file too big for a batch is streamed on its own,
chunk by chunk (read, validated and copied while the server parses the previous chunk).

Every file is archived by content hash before anything else happens; the same bytes land once
(later copies are ``duplicate``). Good rows go to ``raw.<kind>`` with COPY, bad rows to
``quarantine.rejected_rows`` with their reasons; the counts reconcile (rows received = loaded
+ quarantined), and a database constraint holds the pipeline to it. Within a batch, a file's
rows are checked against the pairings its unit had registered before it (in the warehouse, or
by an earlier file of the batch), exactly as if the files had come one at a time.

The steps live in their own modules: receiving and reading in ``intake``, normalising in
``staging``, validating a batch in ``batch_validate``, loading in ``load``, auditing in
``audit``; this module orders them and owns the transactions.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import psycopg

from ingestion import audit
from ingestion.archive import Received
from ingestion.batch_validate import validate_batch, validate_items
from ingestion.config import Settings
from ingestion.inflight import Abort, InFlight, timed, timed_call
from ingestion.intake import read_into, receive
from ingestion.load import RawWriter, quarantine_rows, write_quarantine
from ingestion.outcome import FileOutcome
from ingestion.problems import FileRejected, Problem
from ingestion.staging import StagedChunk, TableStage, accept, finish, stage
from ingestion.units import UnitNames
from ingestion.warehouse import apply_schema

log = logging.getLogger(__name__)

__all__ = ["Ingester"]

# a file up to this size is ingested in a batch (its rows held in memory until the batch is
# validated); a bigger one is streamed on its own
BATCH_FILE_BYTES = 8 << 20
# and a batch holds at most this many bytes of files (then it is validated and loaded)
BATCH_BYTES = 96 << 20


class Ingester:
    """Ingests files into one warehouse connection. One per process; reuse it for every batch."""

    def __init__(
        self, conn: psycopg.Connection, settings: Settings, *, run_id: str = "cli", resume: bool = False
    ) -> None:
        """``resume``: this may be a retry of an attempt that died (an Airflow task): a file that
        ``run_id`` already recorded (same landing path, same bytes) is reported as that outcome,
        never received a second time (no second audit row, no ``duplicate``)."""
        self.conn = conn
        self.settings = settings
        self.run_id = run_id
        self.resume = resume
        self._codes: frozenset[str] | None = None
        apply_schema(conn)
        # A commit returns before its WAL reaches the disk (the rows are still written, in order,
        # and a crash never corrupts): a crash may lose the last few files' commits, which then
        # are simply new files again on the next run (the audit row is in the same transaction,
        # and the archived copy is kept). Per small file this halves the ingest time.
        conn.execute("set synchronous_commit to off")
        conn.commit()
        from ingestion.suites import warm_up

        warm_up()  # GX's import and context cost seconds once per process, not per file

    # -- public -------------------------------------------------------------------------

    def ingest(
        self,
        path: Path,
        *,
        dry_run: bool = False,
        received: Received | None = None,
        reprocess_of: int | None = None,
    ) -> FileOutcome:
        """Ingest one file (streamed). ``dry_run`` runs every check in a transaction that is
        rolled back.

        ``received`` is how the file arrived, when ``path`` is not that (a re-run reads the
        archived copy); ``reprocess_of`` makes this a re-run of that original receipt: no
        duplicate check, and the new version takes the original's place in the order of
        versions (``audit.submission_versions``)."""
        f = receive(Path(path), received, reprocess_of, self.settings, dry_run=dry_run)
        if f.out.file_hash is None:
            return f.out
        try:
            with self.conn.transaction(force_rollback=dry_run):
                self._stream(f, dry_run=dry_run)
        except Exception as exc:  # a bug, a late file error: nothing half-loaded stays behind
            self._failed(f, exc, dry_run=dry_run)
        finally:
            f.close()
        return self._done(f, dry_run=dry_run)

    def ingest_many(self, paths: Sequence[Path]) -> list[FileOutcome]:
        """Ingest files in the order given: read each, validate the batch's rows together, load
        each file in its own transaction. One outcome per path, in order."""
        outcomes: list[FileOutcome] = []
        batch: list[InFlight] = []
        held = 0  # bytes of the files waiting in the batch: their rows are held in memory
        for path in map(Path, paths):
            f = receive(path, None, None, self.settings, dry_run=False)
            if f.out.file_hash is not None and f.size > BATCH_FILE_BYTES:
                outcomes.extend(self._load_batch(batch))  # what came before it lands first
                batch, held = [], 0
                outcomes.append(self.ingest(path))
                continue
            if held + f.size > BATCH_BYTES and batch:
                outcomes.extend(self._load_batch(batch))
                batch, held = [], 0
            batch.append(f)
            held += f.size
        outcomes.extend(self._load_batch(batch))
        return outcomes

    def known_pairings(self, unit: str) -> set[str]:
        return audit.known_pairings(self.conn, [unit])[unit]

    # -- receiving -------------------------------------------------------------------------

    def _stages(self, f: InFlight) -> Iterator[TableStage]:
        """Each table of the file, pairings first, with what its rows are checked against."""
        assert f.result is not None and f.meta is not None
        period = f.meta.period
        for table in sorted(f.result.tables, key=lambda t: t.kind.load_order):
            f.out.normalisations.extend(table.notes)
            names = UnitNames(self.conn, f.meta.reporting_unit_code) if _names_units(table.kind) else None
            ts = TableStage(table, f.out, period.start.year if period else None, names, self._region_codes())
            f.stages.append(ts)
            yield ts

    def _region_codes(self) -> frozenset[str]:
        """Every code of the register, read once per Ingester (a few MB even for the full list)."""
        if self._codes is None:
            self._codes = frozenset(r[0] for r in self.conn.execute("select distinct code from ref.regions"))
        return self._codes

    # -- one file, streamed --------------------------------------------------------------

    def _stream(self, f: InFlight, *, dry_run: bool) -> None:
        checking_a_copy = self._claim(f, dry_run=dry_run)
        out = f.out
        if out.status == "duplicate" or f.recorded:
            return
        read_into(self.conn, self.settings, f)
        self._open_audit(f)
        if not f.ready:
            return
        assert f.meta is not None
        unit = f.meta.reporting_unit_code
        known = self.known_pairings(unit)
        try:
            for ts in self._stages(f):
                with self._writer(f, ts) as writer:
                    for chunk in timed(out, "read", iter(ts.table.chunks)):
                        staged = timed_call(out, "normalise", stage, ts, chunk)
                        validate_items([(0, f, staged)], {0: known})
                        self._write(out, writer, staged)
                write_quarantine(self.conn, ts.rejected)
                finish(ts)
                if ts.kind.name == "pairings":
                    known |= ts.loaded_keys
        except FileRejected as rejected:  # raised while streaming (bad encoding further down ...)
            raise Abort(rejected.problem) from rejected
        self._close_audit(f)
        if checking_a_copy:
            out.reprocess_of, out.supersedes, out.superseded_by = None, {}, {}

    def _claim(self, f: InFlight, *, dry_run: bool) -> bool:
        """Lock the file's hash for this transaction; a copy of bytes already received is a
        duplicate. Returns whether a check goes on as a re-run of the first copy."""
        out = f.out
        self.conn.execute("select pg_advisory_xact_lock(hashtextextended(%s, 0))", (out.file_hash,))
        if not dry_run and self._recorded(f):
            return False
        previous = audit.previous_copy(self.conn, out.file_hash)
        if previous is None or out.reprocess_of is not None:
            return False
        out.duplicate_of = previous
        if not dry_run:
            out.status = "duplicate"
            out.submission_id = self._insert_audit(f)
            return False
        # a check goes on (the district wants to know what is in the file): as a re-run of
        # the first copy, which is what the rolled-back transaction can hold
        out.reprocess_of = previous
        return True

    def _recorded(self, f: InFlight) -> bool:
        """With ``resume``: take the outcome this run already recorded for the file, if any."""
        if f.recorded:
            return True
        if not self.resume or f.out.file_hash is None or f.out.reprocess_of is not None:
            return False
        earlier = audit.recorded_in_run(self.conn, f.out.file, f.out.file_hash, self.run_id)
        if earlier is None:
            return False
        log.info("%s: recorded by an earlier attempt of this run (%s), not received again", f.out.file, earlier.status)
        f.out, f.recorded = earlier, True
        return True

    # -- a batch -------------------------------------------------------------------------

    def _load_batch(self, batch: list[InFlight]) -> list[FileOutcome]:
        if not batch:
            return []
        self._prepare(batch)
        validate_batch(self.conn, batch)
        tainted: set[str] = set()  # units whose pairings, assumed by later files, failed to load
        outcomes: list[FileOutcome] = []
        for f in batch:
            unit = f.out.reporting_unit_code
            if f.ready and unit in tainted:
                f.close()
                outcomes.append(self.ingest(f.path))  # checked again, against what did land
                continue
            registers = f.ready and any(ts.kind.name == "pairings" for ts in f.stages)
            outcomes.append(self._commit_file(f))
            if registers and f.out.status != "loaded" and unit:
                tainted.add(unit)
        return outcomes

    def _prepare(self, batch: list[InFlight]) -> None:
        """Read and stage every file of the batch (no transaction is held meanwhile)."""
        hashes: set[str] = set()
        for f in batch:
            if f.out.file_hash is None:
                continue
            if self._recorded(f):  # an earlier attempt of this run (a retried task) committed it
                hashes.add(f.out.file_hash)
                continue
            if f.out.file_hash in hashes:  # twice in one batch: the second copy is a duplicate
                f.out.status = "duplicate"
                continue
            hashes.add(f.out.file_hash)
            previous = audit.previous_copy(self.conn, f.out.file_hash)
            if previous is not None:
                f.out.status, f.out.duplicate_of = "duplicate", previous
                continue
            read_into(self.conn, self.settings, f)
            if f.ready:
                try:
                    for ts in self._stages(f):
                        for chunk in timed(f.out, "read", iter(ts.table.chunks)):
                            f.staged.append(timed_call(f.out, "normalise", stage, ts, chunk))
                except FileRejected as rejected:
                    f.refusal, f.staged = rejected.problem, []
        self.conn.commit()

    def _commit_file(self, f: InFlight) -> FileOutcome:
        """Load one staged file of a batch in its own transaction."""
        if f.out.file_hash is None or f.recorded:
            return f.out
        self.conn.commit()
        try:
            with self.conn.transaction():
                if f.out.status == "duplicate":
                    self.conn.execute("select pg_advisory_xact_lock(hashtextextended(%s, 0))", (f.out.file_hash,))
                    f.out.duplicate_of = f.out.duplicate_of or audit.previous_copy(self.conn, f.out.file_hash)
                    f.out.submission_id = self._insert_audit(f)
                else:
                    self._land(f)
                if not f.recorded:
                    self._record_timings(f.out, batched=True)  # in the same transaction: one commit a file
        except Exception as exc:
            self._failed(f, exc, dry_run=False)
            self._record_timings(f.out, batched=True)
            self.conn.commit()
        finally:
            f.close()
        return f.out

    def _land(self, f: InFlight) -> None:
        self._claim(f, dry_run=False)
        if f.out.status == "duplicate" or f.recorded:  # another worker (or attempt) took the same bytes meanwhile
            return
        self._open_audit(f)
        if not f.ready:
            return
        for ts in f.stages:
            with self._writer(f, ts) as writer:
                for staged in (s for s in f.staged if s.stage is ts):
                    self._write(f.out, writer, staged)
            write_quarantine(self.conn, ts.rejected)
            finish(ts)
        self._close_audit(f)

    # -- shared steps ----------------------------------------------------------------------

    def _writer(self, f: InFlight, ts: TableStage) -> RawWriter:
        assert f.meta is not None and f.out.submission_id is not None and f.out.file_hash is not None
        period = f.meta.period
        return RawWriter(
            self.conn,
            ts.kind,
            submission_id=f.out.submission_id,
            file_hash=f.out.file_hash,
            sheet=ts.table.sheet,
            unit=f.meta.reporting_unit_code,
            period=period.code if period else None,
        )

    def _write(self, out: FileOutcome, writer: RawWriter, staged: StagedChunk) -> None:
        t = time.perf_counter()
        good, good_approx = accept(staged)
        if staged.problems:
            assert out.submission_id is not None and out.file_hash is not None
            staged.stage.rejected.extend(
                quarantine_rows(out.submission_id, out.file_hash, staged.stage.table, staged.chunk, staged.problems)
            )
            for plist in staged.problems.values():
                out.errors.extend(plist)
        writer.write(good, good_approx)
        out.timings["copy"] = out.timings.get("copy", 0.0) + time.perf_counter() - t

    def _open_audit(self, f: InFlight) -> None:
        """The file's audit row: refused (with why), or loaded (before its rows, which point at it)."""
        if f.refusal is not None:
            f.out.status = "rejected"
            f.out.errors = [f.refusal]
        f.out.submission_id = self._insert_audit(f)

    def _close_audit(self, f: InFlight) -> None:
        out = f.out
        if out.rows_received == 0:
            raise Abort(Problem.make("F015_NO_DATA"))
        # a sheet with a header and no rows is no report of its kind: it must not replace one
        out.kind_counts = {k: c for k, c in out.kind_counts.items() if c["received"]}
        out.record_kinds = [k for k in out.record_kinds if k in out.kind_counts]
        audit.finish(self.conn, out)
        audit.versions(self.conn, out)

    def _insert_audit(self, f: InFlight) -> int:
        return audit.insert(
            self.conn, f.received, f.out, size=f.size, archive_path=f.archive_path, run_id=self.run_id, meta=f.meta
        )

    def _failed(self, f: InFlight, exc: Exception, *, dry_run: bool) -> None:
        """The file's transaction failed: nothing of it stays; record why it was refused."""
        if self.conn.closed or isinstance(exc, psycopg.OperationalError):
            raise exc  # the warehouse is gone: a pipeline error, not the file's
        if isinstance(exc, Abort):
            problem = exc.problem
        else:
            log.exception("internal error on %s", f.path)
            problem = Problem.make("F014_INTERNAL", detail=f"{type(exc).__name__}: {exc}"[:300])
        out = f.out
        out.status = "rejected"
        out.rows_received = out.rows_loaded = out.rows_quarantined = 0
        out.kind_counts = {}
        out.errors = [problem]
        out.warnings = []
        out.supersedes, out.superseded_by = {}, {}
        f.refusal = problem
        if not dry_run:
            with self.conn.transaction():
                out.submission_id = self._insert_audit(f)

    def _done(self, f: InFlight, *, dry_run: bool) -> FileOutcome:
        if f.recorded:
            self.conn.commit()
            return f.out
        f.out.timings["total"] = time.perf_counter() - f.t0
        if not dry_run:
            self._record_timings(f.out)
        self.conn.commit()
        return f.out

    def _record_timings(self, out: FileOutcome, *, batched: bool = False) -> None:
        if batched:  # its own share of the batch's work, not the time it waited for the others
            out.timings["total"] = sum(v for k, v in out.timings.items() if k != "total")
        if out.submission_id:
            audit.set_timings(self.conn, out.submission_id, out.timings)


def _names_units(kind: Any) -> bool:
    return any(f.resolved_from for f in kind.fields)
