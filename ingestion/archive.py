"""Every file received is kept, byte for byte, under its content hash.

The kept copy's path is built from the hash (ours), never from the file's name: a name is a
metadata source (a period in it, the unit code of its folder) and is stored, never trusted.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ingestion.config import Settings

ALLOWED_SUFFIXES = (".xlsx", ".xlsm", ".xls", ".ods", ".csv", ".txt", ".tsv", ".json")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def archived_copy(settings: Settings, file_hash: str, suffix: str) -> Path:
    """Where the kept copy of a file lives: built from its hash (ours), never from its name
    (only a known suffix is kept, anything else is stored as ``.bin``)."""
    if len(file_hash) != 64 or not all(c in "0123456789abcdef" for c in file_hash):
        raise ValueError(f"not a sha256 hex digest: {file_hash!r}")
    suffix = suffix.lower() if suffix.lower() in ALLOWED_SUFFIXES else ".bin"
    return settings.archive / file_hash[:2] / f"{file_hash}{suffix}"


class ArchiveError(OSError):
    """The archive cannot keep a file (disk full, not writable): a pipeline error, never the
    file's — nothing is ingested that is not kept."""


def archive(path: Path, settings: Settings, *, suffix: str | None = None) -> tuple[str, Path]:
    """Keep the file byte for byte under its content hash (atomic). An ``OSError`` reading the
    file is the file's (it vanished, it cannot be read); an ``ArchiveError`` is the archive's."""
    file_hash = sha256_file(path)
    target = archived_copy(settings, file_hash, suffix or path.suffix)
    if target.exists():
        return file_hash, target
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".incoming-")
        os.close(fd)
    except OSError as exc:
        raise ArchiveError(f"the archive cannot keep {path.name}: {exc}") from exc
    try:
        shutil.copyfile(path, tmp)
        os.replace(tmp, target)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        if not path.is_file():
            raise  # the file went away while it was copied: the file's problem
        raise ArchiveError(f"the archive cannot keep {path.name}: {exc}") from exc
    return file_hash, target


@dataclass(frozen=True)
class Received:
    """A file as it arrived: its name and where it was picked up. Both are metadata sources
    (a period in the name, the unit code of the landing folder) and are stored; neither is
    ever used to open or write anything but the file that was handed over."""

    name: str
    landing_path: str

    @classmethod
    def of(cls, path: Path) -> Received:
        return cls(name=path.name, landing_path=str(path))

    @property
    def folder(self) -> str | None:
        parent = Path(self.landing_path).parent
        return parent.name if parent != Path(self.landing_path) else None

    @property
    def suffix(self) -> str:
        return Path(self.name).suffix.lower()
