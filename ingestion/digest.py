"""The nightly digest: what failed, grouped by region, new or still failing, in zh and en.

``Finding`` is one failing (or approximate) check × unit × period of a nightly run
(``ingestion.quality`` finds them); ``compose_digest`` writes the one message the maintainers
get (plain text and HTML, with the Data Docs link).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import html
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ingestion.alerts import Message
from ingestion.config import CHECKOUT, Settings

EXAMPLES_SHOWN = 3
NIGHTLY_SUITES = CHECKOUT / "expectations" / "nightly"


@dataclass
class Finding:
    """One failing (or approximate) check × unit × period of a run, as the digest shows it."""

    check_name: str
    severity: str
    outcome: str  # fail | approximate
    reporting_unit_code: str | None
    period_code: str | None
    unit_name: str | None
    region_code: str | None
    region_name: str | None
    failing_rows: int
    observed_value: float | None
    detail_zh: str | None
    detail_en: str | None
    examples: list[dict[str, Any]]
    failing_since: dt.date  # the night (as_of) of the first run of the current streak
    is_new: bool  # not listed by a digest sent during this streak

    @property
    def key(self) -> tuple[str, str | None, str | None]:
        return (self.check_name, self.reporting_unit_code, self.period_code)


@dataclass
class QualityRun:
    run_id: str
    as_of: dt.date
    checks: int = 0
    failed: int = 0
    findings: list[Finding] = field(default_factory=list)
    data_docs: str | None = None
    digest: Message | None = None
    delivered: list[str] = field(default_factory=list)

    @property
    def failures(self) -> list[Finding]:
        return [f for f in self.findings if f.outcome == "fail"]

    def summary(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "as_of": self.as_of.isoformat(),
            "checks": self.checks,
            "failed": self.failed,
            "new": sum(f.is_new for f in self.failures),
            "still_failing": sum(not f.is_new for f in self.failures),
            "approximate": sum(f.outcome == "approximate" for f in self.findings),
            "data_docs": self.data_docs,
            "digest": self.digest.subject if self.digest else None,
            "delivered": self.delivered,
        }


# --------------------------------------------------------------------------- digest


def _region_title(f: Finding) -> str:
    if f.reporting_unit_code is None:
        return "全部数据 / whole warehouse"
    if f.region_name:
        return f"{f.region_name}（{f.region_code}）"
    return "其他 / other"


def _unit_title(f: Finding) -> str:
    if f.reporting_unit_code is None:
        return ""
    name = f.unit_name or "未知单位 / unknown unit"
    return f"{name}（{f.reporting_unit_code}）" + (f" {f.period_code}" if f.period_code else "")


def _since(f: Finding, as_of: dt.date | None = None) -> str:
    day = f.failing_since.isoformat() if f.failing_since else "?"
    if f.is_new:
        # failing before tonight but never mailed (no digest was sent then): say since when
        earlier = f.failing_since is not None and as_of is not None and f.failing_since < as_of
        return f"新问题，自 {day} 起 / new, failing since {day}" if earlier else "新问题 / new"
    return f"持续未解决，自 {day} 起 / still failing since {day}"


# checks whose detail line already says all their examples hold
_EXAMPLES_SAY_NOTHING_MORE = frozenset({"reporting_completeness", "freshness", "quarantine_growth"})
# what failing_rows counts, per check (the digest says "how many rows" where that means something)
_COUNTED = {
    "outliers": ("个数值", "figures"),
    "total_row_reconciliation": ("个合计行", "total rows"),
    "row_reconciliation": ("个文件", "files"),
    "refused_files": ("个文件", "files"),
    "quarantined_rows": ("行", "rows"),
    "fact_integrity": ("行", "rows"),
}
_SHOWN_LATER = frozenset({"reporting_unit_code", "unit_name", "period_code", "region_code"})


def _rows_text(f: Finding) -> str:
    counted = _COUNTED.get(f.check_name) or (("行", "rows") if f.check_name.startswith("gx:") else None)
    if not counted or not f.failing_rows:
        return ""
    return f"（{f.failing_rows} {counted[0]} / {f.failing_rows} {counted[1]}）"


def _example_value(value: Any) -> str:
    if isinstance(value, list) and all(isinstance(v, dict) for v in value):  # first rows: where they are
        return "; ".join(" ".join(str(v) for v in item.values() if v not in (None, "")) for item in value)
    return str(value)


def _example_text(example: dict[str, Any]) -> str:
    return ", ".join(
        f"{k}={_example_value(v)}" for k, v in example.items() if v not in (None, "") and k not in _SHOWN_LATER
    )


def _entries(failures: list[Finding]) -> dict[str, list[list[Finding]]]:
    """region -> entries; an entry is one check of one unit (new or not, since the same night)
    with the periods it fails for."""
    groups: dict[str, list[list[Finding]]] = {}
    for f in failures:
        entries = groups.setdefault(_region_title(f), [])
        last = entries[-1][0] if entries else None
        if last is not None and (last.check_name, last.reporting_unit_code, last.is_new, last.failing_since) == (
            f.check_name,
            f.reporting_unit_code,
            f.is_new,
            f.failing_since,
        ):
            entries[-1].append(f)
        else:
            entries.append([f])
    return groups


def _render_sections(
    groups: dict[str, list[list[Finding]]], run: QualityRun, label: Any, text: list[str], body: list[str]
) -> None:
    for title, entries in groups.items():
        text.append(f"## {title}")
        body.append(f"<h3>{html.escape(title)}</h3><ul>")
        for entry in entries:
            first = entry[0]
            unit = _unit_title(dataclasses.replace(first, period_code=None))
            head = f"[{_since(first, run.as_of)}] {label(first.check_name)}" + (f" — {unit}" if unit else "")
            text.append(f"- {head}")
            body.append(f"<li><b>{html.escape(head)}</b><ul>")
            for f in entry:
                period = f"{f.period_code}: " if f.period_code else ""
                line = f"{period}{f.detail_zh or ''} / {f.detail_en or ''}{_rows_text(f)}"
                text.append(f"    {line}")
                body.append(f"<li>{html.escape(line)}")
                shown = [] if f.check_name in _EXAMPLES_SAY_NOTHING_MORE else f.examples[:EXAMPLES_SHOWN]
                if shown:
                    body.append("<ul>")
                    for example in shown:
                        text.append(f"      · {_example_text(example)}")
                        body.append(f"<li>{html.escape(_example_text(example))}</li>")
                    body.append("</ul>")
                body.append("</li>")
            body.append("</ul></li>")
        text.append("")
        body.append("</ul>")


def compose_digest(run: QualityRun, settings: Settings) -> Message:
    """The one message of the night: by region, what failed, since when, how many rows, the worst
    examples — refused files with their reasons, units with quarantined rows among them."""
    labels = check_labels()
    failures = run.failures
    approximate = [f for f in run.findings if f.outcome == "approximate"]
    new = sum(f.is_new for f in failures)
    still = len(failures) - new
    day = run.as_of.isoformat()
    if failures:
        subject = (
            f"[pairstats] 数据质量日报 {day}：新问题 {new} 项，持续 {still} 项 / "
            f"data quality digest {day}: {new} new, {still} still failing"
        )
    else:
        subject = f"[pairstats] 数据质量日报 {day}：全部通过 / data quality digest {day}: all checks pass"

    def label(name: str) -> str:
        zh, en = labels.get(name, (name, name))  # a gx:… check is named by its expectation
        return f"{zh} / {en}" if zh != en else name

    groups = _entries(failures)
    text: list[str] = [
        f"数据质量日报（{day}，运行 {run.run_id}）/ Data quality digest ({day}, run {run.run_id})",
        f"检查 {run.checks} 项，未通过 {run.failed} 项：新问题 {new}，持续 {still}。/ "
        f"{run.checks} checks, {run.failed} failing: {new} new, {still} still failing.",
        f"Data Docs: {run.data_docs}",
        "",
    ]
    body: list[str] = [
        f"<h2>数据质量日报 {html.escape(day)} / Data quality digest</h2>",
        f"<p>检查 {run.checks} 项，未通过 {run.failed} 项：新问题 {new}，持续 {still}。<br>"
        f"{run.checks} checks, {run.failed} failing: {new} new, {still} still failing.</p>",
        f'<p><a href="{html.escape(run.data_docs or "")}">Data Docs</a> · run {html.escape(run.run_id)}</p>',
    ]
    _render_sections(groups, run, label, text, body)
    if approximate:
        text.append("## 约数（不作为错误）/ approximate figures (reported, not errors)")
        body.append("<h3>约数（不作为错误）/ approximate figures (reported, not errors)</h3><ul>")
        for f in approximate:
            line = f"{label(f.check_name)} — {_unit_title(f)}: {f.detail_zh or ''} / {f.detail_en or ''}"
            text.append(f"- {line}")
            body.append(f"<li>{html.escape(line)}</li>")
        body.append("</ul>")
        text.append("")
    if not failures:
        text.append("全部检查通过。/ Every check passed.")
        body.append("<p>全部检查通过。/ Every check passed.</p>")
    payload = {"run": run.summary(), "findings": [_finding_json(f) for f in run.findings]}
    return Message(
        kind="digest",
        subject=subject,
        text="\n".join(text) + "\n",
        html="\n".join(body),
        run_id=run.run_id,
        alert_key=f"digest/{day}",
        new_problems=new,
        open_problems=len(failures),
        payload=payload,
    )


def _finding_json(f: Finding) -> dict[str, Any]:
    return {
        "check": f.check_name,
        "outcome": f.outcome,
        "severity": f.severity,
        "unit": f.reporting_unit_code,
        "period": f.period_code,
        "region": f.region_code,
        "rows": f.failing_rows,
        "detail_zh": f.detail_zh,
        "detail_en": f.detail_en,
        "since": f.failing_since.isoformat() if f.failing_since else None,
        "new": f.is_new,
        "examples": f.examples[:EXAMPLES_SHOWN],
    }


# --------------------------------------------------------------------------- suites


def load_suite_files(folder: Path = NIGHTLY_SUITES) -> dict[str, dict[str, Any]]:
    """The nightly suites as committed: suite name -> its JSON document."""
    suites = {}
    for path in sorted(folder.glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        asset = (data.get("meta") or {}).get("asset") or {}
        if not (asset.get("query") or asset.get("table")):
            raise RuntimeError(f"nightly suite {path} names no asset (meta.asset.query or meta.asset.table)")
        suites[data["name"]] = data
    return suites


def check_labels(folder: Path = NIGHTLY_SUITES) -> dict[str, tuple[str, str]]:
    """check_name -> (zh, en) label, from the suites' meta (one place for the names)."""
    labels = {}
    for data in load_suite_files(folder).values():
        meta = data.get("meta") or {}
        if meta.get("check_name"):
            labels[meta["check_name"]] = (meta["label_zh"], meta["label_en"])
    return labels
