"""Receiving and reading one file: archive it by content hash, read it, say who reported it.

``receive`` keeps the file before anything else happens (nothing is ingested that the archive
cannot keep); ``read_into`` reads it and resolves its unit and period (envelope, preamble, file
name, landing folder), keeping a refusal in ``InFlight.refusal`` rather than raising.
"""

from __future__ import annotations

import time
from pathlib import Path

import psycopg

from ingestion import audit
from ingestion.archive import ArchiveError, Received, archive, sha256_file
from ingestion.config import Settings
from ingestion.inflight import InFlight
from ingestion.metadata import Metadata, resolve
from ingestion.outcome import FileOutcome
from ingestion.problems import FileRejected, Problem
from ingestion.read import ReadResult, read_file

__all__ = ["read_into", "receive"]


def receive(
    path: Path, received: Received | None, reprocess_of: int | None, settings: Settings, *, dry_run: bool
) -> InFlight:
    """Archive the file (a dry run only hashes it). An unreadable file is an outcome with
    F001; an archive that cannot keep it is a pipeline error (``ArchiveError`` is raised)."""
    received = received or Received.of(path)
    out = FileOutcome(file=received.landing_path, status="rejected", reprocess_of=reprocess_of)
    f = InFlight(path, received, out, t0=time.perf_counter())
    try:
        f.size = path.stat().st_size
        if dry_run:
            out.file_hash = sha256_file(path)
        else:
            out.file_hash, f.archive_path = archive(path, settings, suffix=received.suffix)
    except ArchiveError:
        raise
    except OSError as exc:
        out.errors.append(Problem.make("F001_UNREADABLE", detail=str(exc)))
    out.timings["archive"] = time.perf_counter() - f.t0
    return f


def read_into(conn: psycopg.Connection, settings: Settings, f: InFlight) -> None:
    """Read the file and say who reported it, for when: a refusal is kept in ``f.refusal``."""
    t = time.perf_counter()
    out = f.out
    try:
        if f.size > settings.max_file_bytes:
            raise FileRejected(Problem.make("F009_TOO_LARGE", size=f.size, limit=settings.max_file_bytes))
        f.result = read_file(
            f.path,
            max_unzipped_bytes=settings.max_unzipped_bytes,
            suffix=f.received.suffix,
            name=f.received.name,
        )
        out.encoding, out.file_format = f.result.encoding, f.result.file_format
        f.meta = _resolve(conn, f.received, f.result)
        # what the file says is kept with a refusal too (the digest groups refusals by unit)
        out.reporting_unit_code = f.meta.reporting_unit_code
        out.period = f.meta.period.code if f.meta.period else None
        if not audit.unit_known(conn, f.meta.reporting_unit_code):
            raise FileRejected(Problem.make("F005_UNKNOWN_UNIT", unit_code=f.meta.reporting_unit_code))
    except FileRejected as rejected:
        f.refusal = rejected.problem
        return
    out.timings["read"] = time.perf_counter() - t
    out.record_kinds = [t.kind.name for t in f.result.tables]
    out.status = "loaded"
    out.normalisations.extend(f.result.notes)


def _resolve(conn: psycopg.Connection, received: Received, result: ReadResult) -> Metadata:
    meta = resolve(
        envelope=result.envelope,
        preamble=result.preamble_text,
        file_name=received.name,
        landing_folder=received.folder,
        name_lookup=lambda text: audit.county_by_name(conn, text),
        needs_period=any(t.kind.needs_period for t in result.tables),
    )
    if meta.period is None:
        result.notes.append(
            Problem(
                "W003_NORMALISED",
                "已规范化：文件只含结对关系（登记），无需报告期",
                "Normalised: the file holds pairings only (a registration): no period needed",
            )
        )
    return meta
