"""Who reported, and for which period.

Sources, in order of precedence: the json envelope, the 填报单位 / 报告期 block above a
table, the title row, the file name, the landing folder (``landing/<unit code>/``). The
first source that states a value wins; a later source that states a *different* value
makes the file contradictory, and it is refused with the sources named.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ingestion.problems import FileRejected, Problem
from ingestion.region_codes import normalise_division_code

_CN_DIGITS = {"一": 1, "二": 2, "三": 3, "四": 4, "1": 1, "2": 2, "3": 3, "4": 4}


@dataclass(frozen=True)
class Period:
    code: str  # 2024-06 or 2024Q2
    start: dt.date
    end: dt.date

    @property
    def grain(self) -> str:
        return "quarter" if "Q" in self.code else "month"

    @classmethod
    def month(cls, year: int, month: int) -> Period:
        last = calendar.monthrange(year, month)[1]
        return cls(f"{year:04d}-{month:02d}", dt.date(year, month, 1), dt.date(year, month, last))

    @classmethod
    def quarter(cls, year: int, q: int) -> Period:
        start = dt.date(year, 3 * q - 2, 1)
        end_month = 3 * q
        return cls(f"{year:04d}Q{q}", start, dt.date(year, end_month, calendar.monthrange(year, end_month)[1]))


_QUARTER_RES = (
    re.compile(r"(?<!\d)(\d{4})\s*[-_ 年.]?\s*[Qq]([1-4])(?!\d)"),
    re.compile(r"(?<!\d)(\d{4})\s*年\s*第?\s*([一二三四1-4])\s*季度"),
)
_MONTH_RES = (
    re.compile(r"(?<!\d)(\d{4})\s*年\s*(\d{1,2})\s*月(?!\s*\d{1,2}\s*[日号])"),
    re.compile(r"(?<!\d)(\d{4})[-_./](\d{1,2})(?![\d]|[-./]\d)"),
    re.compile(r"(?<![\d.])(\d{4})(0[1-9]|1[0-2])(?!\d)"),
)
# a run of months: 2024年4-6月, 2024年4月-6月, 4月至6月, 1-6月累计 (a quarter when it is one)
_MONTH_SPAN_RE = re.compile(
    r"(?:(?<!\d)(?P<year>\d{4})\s*年\s*)?(?<![\d.])(?P<a>\d{1,2})\s*月?\s*(?:-|—|–|~|～|至|到)\s*"
    r"(?P<b>\d{1,2})\s*月(?!\s*\d{1,2}\s*[日号])(?P<cum>\s*(?:累计|合计|份))?"
)
# spans that are never one month or one quarter (half-year, year, year to date)
_OTHER_SPAN_RE = re.compile(
    r"(?:(?<!\d)\d{4}\s*年\s*)?(?:上半年|下半年|全年|前三季度|[一1]\s*[-至~]\s*[三3]\s*季度)"
    r"|(?<!\d)\d{4}\s*年度"
    r"|(?:截至|截止)?\s*\d{1,2}\s*月(?:底|末)?\s*累计"
)


class NotAPeriod(ValueError):
    """A text names a span that is neither a month nor a quarter (1-6月, 上半年, 全年 ...)."""

    def __init__(self, span: str) -> None:
        super().__init__(span)
        self.span = span


def parse_period(text: str) -> Period | None:
    """The one period a text names ('2024-06', '2024年6月', '2024Q2', '2024年第二季度',
    '2024年二季度', '2024年4-6月', '2024年4月-6月'), else None.

    Raises ``NotAPeriod`` when the text names a span that is neither a month nor a quarter
    ('2024年1-6月', '1-6月累计', '上半年', '全年'): such a figure is never taken as one of its months."""
    if not text:
        return None
    text = unicodedata.normalize("NFKC", str(text))
    found, rest = _quarter_spans(text)
    other = _OTHER_SPAN_RE.search(rest)
    if other:
        raise NotAPeriod(other.group(0).strip())
    for pattern in _QUARTER_RES:
        for m in pattern.finditer(rest):
            found.add(Period.quarter(int(m.group(1)), _CN_DIGITS[m.group(2)]))
    if not found:
        found = _months(rest)
    return found.pop() if len(found) == 1 else None


def _quarter_spans(text: str) -> tuple[set[Period], str]:
    """The quarters written as runs of months (2024年4-6月), and the text without them; any
    other run of months (1-6月, 7-8月, 1-3月累计) is no period."""
    found: set[Period] = set()
    rest = text
    for m in _MONTH_SPAN_RE.finditer(text):
        a, b = int(m.group("a")), int(m.group("b"))
        if not (1 <= a <= 12 and 1 <= b <= 12):
            continue
        if not (b == a + 2 and a % 3 == 1 and not m.group("cum")):
            raise NotAPeriod(m.group(0).strip())
        if m.group("year"):
            found.add(Period.quarter(int(m.group("year")), (a + 2) // 3))
        rest = rest.replace(m.group(0), " ")
    return found, rest


def _months(text: str) -> set[Period]:
    for pattern in _MONTH_RES:
        found = set()
        for m in pattern.finditer(text):
            year, month = int(m.group(1)), int(m.group(2))
            if 2000 <= year <= 2100 and 1 <= month <= 12:
                found.add(Period.month(year, month))
        if found:
            return found
    return set()


def period_or_none(text: str) -> Period | None:
    """``parse_period`` for a text that is only a hint (a file name when ordering files): a span
    that is no period is no period."""
    try:
        return parse_period(text)
    except NotAPeriod:
        return None


_CODE_RE = re.compile(r"(?<!\d)(\d{12}|\d{9}|\d{6})(?!\d)")
_UNIT_LABEL = re.compile(r"填报单位\s*[:：]\s*(?P<v>[^:：]*?)(?=\s{2,}|\s*(?:报告期|填报人|联系电话|填报日期)|$)")
_PERIOD_LABEL = re.compile(r"(?:报告期|统计期|报告时间|所属期)\s*[:：]\s*(?P<v>\S+)")


def is_labelled_line(line: str) -> bool:
    """Whether a line states 填报单位 or 报告期 with a label (``填报单位：…``, ``报告期：…``)."""
    text = unicodedata.normalize("NFKC", line)
    return bool(_UNIT_LABEL.search(text) or _PERIOD_LABEL.search(text))


def _unit_in_text(text: str, name_lookup: Callable[[str], str | None] | None) -> str | None:
    m = _CODE_RE.search(text)
    if m:
        return normalise_division_code(m.group(1))
    if name_lookup is not None:
        return name_lookup(text.strip())
    return None


@dataclass(frozen=True)
class Metadata:
    reporting_unit_code: str
    period: Period | None  # None: a registration (pairings only), which needs no period
    sources: dict[str, str]  # what each source said, for the audit


def resolve(
    *,
    envelope: dict[str, object],
    preamble: list[str],
    file_name: str,
    landing_folder: str | None,
    name_lookup: Callable[[str], str | None] | None = None,
    needs_period: bool = True,
) -> Metadata:
    """Who reported and for which period. ``needs_period=False`` (a file of pairings only, a
    registration): a period is taken when stated, and its absence is no refusal."""
    units: list[tuple[str, str]] = []  # (source, code), in order of precedence
    periods: list[tuple[str, Period]] = []
    try:
        _from_envelope(envelope, units, periods)
        _from_preamble(preamble, name_lookup, units, periods)
        _from_name_and_folder(file_name, landing_folder, units, periods)
    except NotAPeriod as span:
        raise FileRejected(Problem.make("F017_NOT_A_PERIOD", span=span.span)) from span
    unit = _agree("报告单位", "reporting unit", units)
    period = _agree("报告期", "period", periods)
    if unit is None:
        raise FileRejected(Problem.make("F006_NO_UNIT"))
    if period is None and needs_period:
        raise FileRejected(Problem.make("F007_NO_PERIOD"))
    sources = {f"unit: {s}": v for s, v in units} | {f"period: {s}": v.code for s, v in periods}
    return Metadata(reporting_unit_code=unit, period=period, sources=sources)


def _from_envelope(envelope: dict[str, object], units: list, periods: list) -> None:
    if envelope.get("reporting_unit_code") is not None:
        code = normalise_division_code(envelope["reporting_unit_code"])
        units.append(("json reporting_unit_code", code or str(envelope["reporting_unit_code"])))
    if envelope.get("period") is not None:
        p = parse_period(str(envelope["period"]))
        if p is None:
            raise FileRejected(Problem.make("F007_NO_PERIOD"))
        periods.append(("json period", p))


def _from_preamble(
    preamble: list[str], name_lookup: Callable[[str], str | None] | None, units: list, periods: list
) -> None:
    """The 填报单位 / 报告期 block, and title rows (any other line naming one period)."""
    for line in preamble:
        unit_label = _UNIT_LABEL.search(line)
        if unit_label and unit_label.group("v").strip():
            code = _unit_in_text(unit_label.group("v"), name_lookup)
            if code:
                units.append(("填报单位", code))
        period_label = _PERIOD_LABEL.search(line)
        p = parse_period(period_label.group("v") if period_label else ("" if unit_label else line))
        if p:
            periods.append(("报告期" if period_label else "title", p))


def _from_name_and_folder(file_name: str, landing_folder: str | None, units: list, periods: list) -> None:
    stem = Path(file_name).stem
    p = parse_period(stem)
    if p:
        periods.append(("file name", p))
    m = _CODE_RE.search(re.sub(r"(?<!\d)\d{4}(?:[-_.]\d{1,2}|[Qq][1-4])(?!\d)", " ", stem))
    code = normalise_division_code(m.group(1)) if m else None
    if code:
        units.append(("file name", code))
    code = normalise_division_code(landing_folder) if landing_folder and landing_folder.isdigit() else None
    if code:
        units.append(("landing folder", code))


def _agree(what_zh: str, what_en: str, stated: list[tuple[str, object]]):
    if not stated:
        return None
    values = {v for _, v in stated}
    if len(values) > 1:
        detail = "; ".join(f"{s} = {getattr(v, 'code', v)}" for s, v in stated)
        raise FileRejected(Problem.make("F008_CONTRADICTORY_METADATA", what=what_zh, what_en=what_en, detail=detail))
    return stated[0][1]
