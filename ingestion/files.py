"""Which files to ingest, in which order, in which batches.

- ``expand_paths``: files, and the files of folders, in submission order.
- ``new_files``: what a run takes from a landing folder — only under the configured landing
  roots, only files that have stopped changing (the settle time, or the upload-then-rename
  convention: a file still named ``*.part``/``*.uploading``/``.…`` is never taken), only bytes
  the warehouse has not received (content hash) — and what it leaves for later, and why.
- ``plan_batches``: the new files cut into batches of whole landing folders (a unit's files
  stay together and in order), as many as needed and never more than a limit (Airflow's
  ``max_map_length``).

A file's name or folder is a metadata source, never a path to anything but itself: a symlink
that leads out of the landing root is not followed.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ingestion.archive import sha256_file
from ingestion.config import Settings

# what an upload in progress is called, by convention or by the tool doing it
IN_PROGRESS_SUFFIXES = (".part", ".partial", ".uploading", ".tmp", ".crdownload", ".filepart")
IN_PROGRESS_PREFIXES = (".", "~$")  # hidden files, Office's lock files


class LandingOutsideRoots(ValueError):
    """A landing folder that is not under the configured landing roots."""


def expand_paths(paths: Iterable[Path]) -> list[Path]:
    """Files, and the files inside folders (recursively), in submission order.

    Deterministic: by folder, then by the period the file name states (a unit's earlier
    submission registers pairings its later ones reference; a registration without a period
    first), then pairings files before the others (a submission sent as one csv per kind),
    then by name. Order is an optimisation, not a condition: a row that names a pairing not
    registered yet lands by itself once it is (``ingestion.service``)."""
    found: list[Path] = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            found.extend(q for q in p.rglob("*") if q.is_file() and not q.name.startswith("."))
        else:
            found.append(p)
    return sorted(found, key=_submission_order)


def _submission_order(path: Path) -> tuple:
    from ingestion.metadata import period_or_none

    period = period_or_none(path.stem)
    pairings = _declares_pairings(path)
    # a registration (pairings, no period named) first; a file naming no period last
    start = period.start if period else (dt.date.min if pairings else dt.date.max)
    return (str(path.parent), start, 0 if pairings else 1, path.name)


def _declares_pairings(path: Path) -> bool:
    """Whether a text file's header is the pairings table (reads its first lines only)."""
    from ingestion.read import peek_kind

    try:
        kind = peek_kind(path)
    except Exception:  # unreadable files are refused later, with their reason
        return False
    return kind is not None and kind.name == "pairings"


# --------------------------------------------------------------------------- choosing


def landing_folder(settings: Settings, requested: str | Path | None, unit: str | None = None) -> Path:
    """The folder a run scans: the requested one (or the landing folder), which must lie under
    a configured landing root, narrowed to ``<unit>/``. Anything else is refused."""
    root = Path(requested or settings.landing).expanduser().resolve()
    if not any(root == allowed or allowed in root.parents for allowed in settings.allowed_landings):
        roots = ", ".join(map(str, settings.allowed_landings))
        raise LandingOutsideRoots(
            f"上传目录 {root} 不在允许的上传根目录（{roots}）之下 / landing folder {root} is not under "
            f"the configured landing roots ({roots}); set PAIRSTATS_LANDING_ROOTS to allow it"
        )
    if unit:
        if not unit.strip().isdigit():
            raise ValueError(f"reporting unit must be a division code, got {unit!r}")
        root = root / unit.strip()
    return root


@dataclass
class Selection:
    """What a run takes, and what it leaves for a later run."""

    root: Path
    new: list[Path] = field(default_factory=list)  # in submission order
    received: int = 0  # files whose bytes the warehouse has already
    settling: list[Path] = field(default_factory=list)  # still changing, or named as an upload in progress
    skipped: list[tuple[Path, str]] = field(default_factory=list)  # not taken, and why (symlink out ...)


def new_files(
    settings: Settings,
    conn,
    *,
    landing: str | Path | None = None,
    unit: str | None = None,
    period: str | None = None,
    now: float | None = None,
) -> Selection:
    """The files under the landing folder that the warehouse has not received (by content
    hash, any status), that have stopped changing, in submission order.

    ``period`` keeps files whose name states that period (for a manual re-run of one unit's
    month). Hashing reads every file each time (about 1 GB/s); for a landing folder of
    district spreadsheets that is seconds even for a national backlog."""
    from ingestion.metadata import period_or_none

    root = landing_folder(settings, landing, unit)
    selection = Selection(root)
    if not root.exists():
        return selection
    wanted = period_or_none(period) if period else None
    if period and wanted is None:
        raise ValueError(f"period {period!r} is not a month (2025-01) or a quarter (2025Q1)")
    now = time.time() if now is None else now
    candidates: list[Path] = []
    for path in sorted(root.rglob("*")):
        if path.is_dir():
            continue
        reason = _not_taken(path, root, now, settings.settle_seconds)
        if reason == "settling":
            selection.settling.append(path)
            continue
        if reason:
            selection.skipped.append((path, reason))
            continue
        if wanted is not None:
            named = period_or_none(path.stem)
            if named is None or named.code != wanted.code:
                continue
        candidates.append(path)
    if not candidates:
        return selection
    hashes = {path: sha256_file(path) for path in candidates}
    seen = {
        row[0]
        for row in conn.execute(
            "select file_hash from audit.submission_files where file_hash = any(%s)", (list(set(hashes.values())),)
        )
    }
    conn.commit()
    fresh = [p for p in candidates if hashes[p] not in seen]
    selection.received = len(candidates) - len(fresh)
    selection.new = expand_paths(fresh)
    return selection


def _not_taken(path: Path, root: Path, now: float, settle_seconds: int) -> str | None:
    name = path.name
    if name.startswith(IN_PROGRESS_PREFIXES) or name.lower().endswith(IN_PROGRESS_SUFFIXES):
        return "settling"
    if path.is_symlink():
        target = path.resolve()
        if root.resolve() not in target.parents:
            return "a link that leads out of the landing folder / 指向上传目录之外的链接"
    try:
        stat = path.stat()
    except OSError as exc:
        return f"cannot be read / 无法读取: {exc}"
    if now - stat.st_mtime < settle_seconds:
        return "settling"
    return None


# --------------------------------------------------------------------------- batches


def plan_batches(files: list[Path], *, batch_files: int, max_batches: int) -> list[list[str]]:
    """The files cut into batches of whole folders (a unit's files together, in order), about
    ``batch_files`` each, and never more than ``max_batches`` batches (bigger ones instead)."""
    folders: dict[Path, list[Path]] = {}
    for path in files:
        folders.setdefault(path.parent, []).append(path)
    if not folders:
        return []
    target = max(batch_files, math.ceil(len(files) / max(1, max_batches)))
    batches: list[list[str]] = [[]]
    for group in folders.values():
        if batches[-1] and len(batches[-1]) + len(group) > target and len(batches) < max_batches:
            batches.append([])
        batches[-1].extend(map(str, group))
    return batches


def batch_label(batch: list[str]) -> str:
    """How a batch is named in the Airflow UI: its units and its size."""
    units = sorted({Path(p).parent.name for p in batch})
    span = units[0] if len(units) == 1 else f"{units[0]}…{units[-1]}"
    units_text = f"{len(units)} unit{'s' if len(units) > 1 else ''}"
    return f"{span} ({units_text}, {len(batch)} file{'s' if len(batch) > 1 else ''})"
