"""Units named, not coded: a pairing row's 城市单位名称 / 农村单位名称 without its code.

A name is resolved against the region register inside the reporting unit's own area (its
townships and villages, or a Corps division's regiments and companies): first the exact
name, then the name without its administrative suffix (``东街居委会`` = ``东街``, ``东岳村`` =
``东岳村村民委员会``). Exactly one unit is that unit; none or several leave the row
unresolved, with what was found (the closest names, or every match). A name written beside a
code that the register names otherwise is a warning: the code is kept.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd
import psycopg

from ingestion.contract import Field
from ingestion.problems import Problem

if TYPE_CHECKING:
    from ingestion.outcome import FileOutcome
    from ingestion.tables import Table

# administrative suffixes, longest first: what is left is the name as people say it
_SUFFIXES = (
    "社区居民委员会",
    "社区居委会",
    "村民委员会",
    "居民委员会",
    "街道办事处",
    "人民政府",
    "村委会",
    "居委会",
    "街道办",
    "办事处",
    "委员会",
)
_TYPE_WORDS = ("社区", "街道", "村", "镇", "乡")

_AREA_SQL = """
with recursive area as (
    select tree, code, name, level from ref.regions where code = %(unit)s
    union
    select r.tree, r.code, r.name, r.level
    from ref.regions r join area a on r.tree = a.tree and r.parent_code = a.code
)
select code, name, level from area where code <> %(unit)s
"""


def name_key(name: str) -> str:
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", name))


def name_stem(name: str) -> str:
    """``东岳村村民委员会`` → ``东岳``, ``东街居委会`` → ``东街``, ``罗州街道`` → ``罗州``."""
    stem = name_key(name)
    for suffix in _SUFFIXES:
        if stem.endswith(suffix) and len(stem) > len(suffix):
            stem = stem[: -len(suffix)]
            break
    for word in _TYPE_WORDS:
        if stem.endswith(word) and len(stem) > len(word):
            return stem[: -len(word)]
    return stem


@dataclass(frozen=True)
class Resolution:
    code: str | None  # the one unit the name is
    name: str | None = None  # its name in the register
    matches: tuple[tuple[str, str], ...] = ()  # (code, name) of every unit it could be (several)
    closest: tuple[tuple[str, str], ...] = ()  # (code, name) of the nearest names (none matched)

    def found(self) -> tuple[str, str]:
        """What was found, for R017 (zh, en)."""
        if self.matches:
            listed = "、".join(f"{n}（{c}）" for c, n in self.matches)
            listed_en = ", ".join(f"{n} ({c})" for c, n in self.matches)
            return f"对应多个单位：{listed}", f"matches {len(self.matches)} units: {listed_en}"
        if self.closest:
            listed = "、".join(f"{n}（{c}）" for c, n in self.closest)
            listed_en = ", ".join(f"{n} ({c})" for c, n in self.closest)
            return f"未找到（相近的有：{listed}）", f"matches no unit (closest: {listed_en})"
        return "未找到", "matches no unit"


class UnitNames:
    """The named units inside one reporting unit's area, read once per file."""

    def __init__(self, conn: psycopg.Connection, reporting_unit: str) -> None:
        self._conn = conn
        self._unit = reporting_unit
        self._names: dict[str, str | None] = {}
        self._loaded = False  # the area is read when a name is first resolved (most files give codes)
        self.area = self.area_en = reporting_unit
        self._units: list[tuple[str, str]] = []
        self._exact: dict[str, list[tuple[str, str]]] = {}
        self._stems: dict[str, list[tuple[str, str]]] = {}

    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        rows = self._conn.execute(_AREA_SQL, {"unit": self._unit}).fetchall()
        area = self._conn.execute("select name from ref.regions where code = %s limit 1", (self._unit,)).fetchone()
        self.area = f"{area[0] if area else ''}（{self._unit}）"
        self.area_en = f"{area[0] if area else self._unit} ({self._unit})"
        self._units = sorted({(code, name) for code, name, _ in rows})
        for code, name in self._units:
            self._exact.setdefault(name_key(name), []).append((code, name))
            self._stems.setdefault(name_stem(name), []).append((code, name))

    def resolve(self, name: str) -> Resolution:
        self._load()
        for found in (self._exact.get(name_key(name)), self._stems.get(name_stem(name))):
            if found and len(found) == 1:
                return Resolution(found[0][0], found[0][1])
            if found:
                return Resolution(None, matches=tuple(found))
        qualified = self._qualified(name)  # '大塘镇东岳村': a unit written after its township
        if len(qualified) == 1:
            return Resolution(qualified[0][0], qualified[0][1])
        if qualified:
            return Resolution(None, matches=tuple(qualified))
        by_name = {name_key(n): (c, n) for c, n in self._units}
        closest = difflib.get_close_matches(name_key(name), list(by_name), n=3, cutoff=0.5)
        return Resolution(None, closest=tuple(by_name[k] for k in closest))

    def _qualified(self, name: str) -> list[tuple[str, str]]:
        stem = name_stem(name)
        return [
            (c, n)
            for c, n in self._units
            if len(name_stem(n)) >= 2 and len(stem) > len(name_stem(n)) and stem.endswith(name_stem(n))
        ]

    def register_name(self, code: str) -> str | None:
        """The register's name of any code (not only of this area)."""
        if code not in self._names:
            row = self._conn.execute("select name from ref.regions where code = %s limit 1", (code,)).fetchone()
            self._names[code] = row[0] if row else None
        return self._names[code]

    def contradicts(self, code: str, name: str) -> str | None:
        """The register's name of ``code`` when ``name`` is another unit's, else None."""
        registered = self.register_name(code)
        if registered is None:
            return None  # an unknown code is R008, not a contradiction
        given, known = name_stem(name), name_stem(registered)
        if name_key(name) == name_key(registered) or given.endswith(known) or known.endswith(given):
            return None  # the same name, with or without its suffix or its township before it
        return registered


def resolve_unit_names(
    table: Table,
    chunk: pd.DataFrame,
    typed: pd.DataFrame,
    problems: dict[Any, list[Problem]],
    names: UnitNames,
    out: FileOutcome,
) -> None:
    """Fill the codes a chunk gives by name only (recorded as normalisations), quarantine the
    names that resolve to no unit or to several (R017), and warn of a name that contradicts
    the code beside it (W004). Works on the parsed chunk, in place."""
    for f in table.kind.fields:
        if f.resolved_from is None or f.resolved_from not in typed.columns:
            continue
        name_field = table.kind.get(f.resolved_from)
        codes, given = typed[f.name], typed[f.resolved_from]
        bad_code = {idx for idx, plist in problems.items() if any(p.column == f.name for p in plist)}
        by_name_only = codes.isna().to_numpy() & given.notna().to_numpy()
        resolved: dict[str, Resolution] = {}
        for idx in typed.index[by_name_only]:
            if idx in bad_code:
                continue
            name = str(given.at[idx])
            if name not in resolved:
                resolved[name] = names.resolve(name)
                _note_resolution(table, name_field, name, resolved[name], int(typed.at[idx, "_row"]), out)
            resolution = resolved[name]
            if resolution.code is not None:
                typed.at[idx, f.name] = resolution.code
                continue
            found_zh, found_en = resolution.found()
            problems.setdefault(idx, []).append(
                Problem.make(
                    "R017_UNIT_NAME_UNRESOLVED",
                    sheet=table.sheet,
                    row=int(typed.at[idx, "_row"]),
                    column=name_field.name,
                    value=name,
                    column_zh=name_field.header_zh,
                    area=names.area,
                    found_zh=found_zh,
                    found_en=found_en,
                )
            )
        both = codes.notna().to_numpy() & given.notna().to_numpy()
        for idx in typed.index[both]:
            registered = names.contradicts(str(codes.at[idx]), str(given.at[idx]))
            if registered is not None:
                out.warnings.append(
                    Problem.make(
                        "W004_NAME_CODE_MISMATCH",
                        sheet=table.sheet,
                        row=int(typed.at[idx, "_row"]),
                        column=f.name,
                        value=str(given.at[idx]),
                        column_zh=f.header_zh,
                        given_code=str(codes.at[idx]),
                        register_name=registered,
                    )
                )


def _note_resolution(
    table: Table, name_field: Field, name: str, resolution: Resolution, row: int, out: FileOutcome
) -> None:
    if resolution.code is None:
        return
    shown_zh = f"（{resolution.name}）" if resolution.name else ""
    shown_en = f" ({resolution.name})" if resolution.name else ""
    out.normalisations.append(
        Problem(
            "W003_NORMALISED",
            f"已规范化：“{name_field.header_zh}”“{name}”解析为区划代码 {resolution.code}{shown_zh}",
            f"Normalised: '{name_field.name}' '{name}' resolved to division code {resolution.code}{shown_en}",
            sheet=table.sheet,
            row=row,
            column=name_field.name,
        )
    )
