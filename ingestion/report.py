"""What the command line prints: a file's outcome, a check report, a run's summary, the demo's tables.

Every line a district or a maintainer reads is in Chinese and English.
"""

from __future__ import annotations

import sys
from pathlib import Path

from ingestion.outcome import FileOutcome

# --------------------------------------------------------------------------- output


def _line(o: FileOutcome) -> str:
    mark = {"loaded": "✔", "duplicate": "=", "rejected": "✘"}[o.status]
    where = f"{o.reporting_unit_code or '?'} {o.period or '?'}"
    text = f"{mark} {o.status:<9} {o.file}  [{where}]"
    if o.status == "loaded":
        text += f"  rows {o.rows_loaded} loaded, {o.rows_quarantined} quarantined"
    elif o.status == "duplicate":
        text += f"  same bytes as submission {o.duplicate_of}; not loaded again"
    return text


def _where(p) -> str:
    """工作表 / 行 / 列 of a problem, in both languages: ``[共建活动] 第 12 行 row 12, participants``."""
    parts = []
    if p.sheet:
        parts.append(f"[{p.sheet}]")
    if p.row:
        parts.append(f"第 {p.row} 行 row {p.row}")
    if p.column:
        parts.append(f"列 column {p.column}")
    return " ".join(parts)


def print_outcome(o: FileOutcome, *, verbose: bool = True, stream=None) -> None:
    stream = stream or sys.stdout
    print(_line(o), file=stream)
    for p in o.errors if verbose else o.errors[:5]:
        print(f"    {p.code} {_where(p)}: {p.message_zh} / {p.message_en}", file=stream)
    if not verbose and len(o.errors) > 5:
        print(f"    … {len(o.errors) - 5} more", file=stream)
    for p in o.warnings:
        print(f"    ! {p.code} {_where(p)}: {p.message_zh} / {p.message_en}", file=stream)
    zh, en = ("重新处理", "re-run") if o.reprocess_of else ("更正", "correction")
    for kind, previous in o.supersedes.items():
        print(f"    ↻ {zh}：{kind} 替代提交 {previous} / {en}: replaces submission {previous} for {kind}", file=stream)
    for kind, later in o.superseded_by.items():
        print(
            f"    ↧ {kind}：提交 {later} 更晚，仍为现行版本 / submission {later} is later and stays current for {kind}",
            file=stream,
        )


def summary(s: dict) -> None:
    reruns = f"; {s['reruns']} re-run automatically" if s["reruns"] else ""
    print(
        f"{s['files']} files: {s['loaded_files']} loaded, {s['rejected_files']} rejected, "
        f"{s['duplicate_files']} duplicate{reruns}; {s['rows_loaded']} rows loaded, {s['rows_quarantined']} quarantined"
    )


_VERDICTS = {
    0: ("可以报送：没有问题", "clean: the file would load as it is"),
    1: ("部分行将被隔离，其余行可以载入", "some rows would be quarantined; the others would load"),
    2: ("整个文件将被拒收", "the whole file would be refused"),
}


def print_check_report(o: FileOutcome, code: int, stream=None) -> None:
    """What ``pairstats check`` tells a district about one file, in Chinese and English."""
    stream = stream or sys.stdout
    zh, en = _VERDICTS[code]
    print(f"== {o.file}", file=stream)
    print(f"   结论 / verdict: {zh} / {en}", file=stream)
    if o.duplicate_of:
        print(
            f"   注意：相同内容的文件已于提交 {o.duplicate_of} 收到，再次报送将记为重复 / the same bytes were received "
            f"already (submission {o.duplicate_of}); sending them again records a duplicate",
            file=stream,
        )
    if o.status != "rejected":
        print(
            f"   填报单位 unit {o.reporting_unit_code}, 报告期 period {o.period}; "
            f"数据行 rows {o.rows_received}: 可载入 would load {o.rows_loaded}, "
            f"将隔离 would be quarantined {o.rows_quarantined}",
            file=stream,
        )
    if o.errors:
        title = (
            "拒收原因 / why it would be refused"
            if o.status == "rejected"
            else "将被隔离的行 / rows that would be quarantined"
        )
        print(f"   {title}:", file=stream)
        for p in o.errors:
            print(f"     ✘ {p.code} {_where(p)}: {p.message_zh} / {p.message_en}", file=stream)
    if o.warnings:
        print("   提示 / warnings:", file=stream)
        for p in o.warnings:
            print(f"     ! {p.code} {_where(p)}: {p.message_zh} / {p.message_en}", file=stream)
    if o.normalisations:
        print("   已自动规范化 / normalised automatically:", file=stream)
        for p in o.normalisations:
            where = _where(p)
            print(f"     ~ {where + ': ' if where else ''}{p.message_zh} / {p.message_en}", file=stream)
    for kind, previous in o.supersedes.items():
        print(
            f"   ↻ 本文件将更正（替代）提交 {previous} 的“{kind}” / would correct submission {previous} ({kind})",
            file=stream,
        )


def print_files(conn, landing: Path) -> None:
    print("\nfiles (audit.submission_files):")
    files = conn.execute(
        """select distinct on (original_name, file_hash) submission_id, original_name, status, reporting_unit_code,
                  period, rows_loaded, rows_quarantined, errors
           from audit.submission_files where landing_path like %s
           order by original_name, file_hash, submission_id""",
        (str(landing) + "%",),
    ).fetchall()
    for sid, name, status, unit, period, loaded, quarantined, errors in sorted(files, key=lambda r: r[0]):
        mark = {"loaded": "✔", "duplicate": "=", "rejected": "✘"}[status]
        print(
            f"  {mark} {status:<9} {name}  [{unit or '?'} {period or '?'}]  {loaded} loaded, {quarantined} quarantined"
        )
        for e in errors:
            print(f"      {e['code']}: {e['message_zh']} / {e['message_en']}")
        if quarantined:
            rows = conn.execute(
                "select source_row, reason_code, reason_zh, reason_en from quarantine.rejected_rows"
                " where submission_id = %s order by source_row",
                (sid,),
            ).fetchall()
            for row, code, zh, en in rows:
                print(f"      row {row} {code}: {zh} / {en}")


def print_region_totals(conn) -> None:
    exists = conn.execute("select to_regclass('marts.fct_activity_counts') is not null").fetchone()[0]
    if not exists:
        return
    rows = conn.execute(
        """with acts as (
               select reporting_unit_code, sum(activity_count) as activities, sum(participants) as participants
               from marts.fct_activity_counts group by 1),
           income as (
               select reporting_unit_code,
                      sum(collective_income_increase_yuan) as collective,
                      sum(villager_income_increase_yuan) as villagers
               from marts.fct_income_effects group by 1)
           select a.reporting_unit_code, coalesce(r.region_name, '?'), a.activities, a.participants,
                  i.collective, i.villagers
           from acts a left join income i using (reporting_unit_code)
           left join marts.dim_region r on r.region_code = a.reporting_unit_code and r.tree = 'civil'
           order by 1"""
    ).fetchall()
    print("\nmarts: totals per reporting unit (BI reads these as role bi_reader)")
    print(f"  {'unit':<8}{'name':<10}{'activities':>11}{'participants':>13}{'collective ¥':>16}{'villagers ¥':>16}")
    for unit, name, acts, parts, coll, vill in rows:
        print(f"  {unit:<8}{name:<10}{acts:>11}{parts:>13}{float(coll or 0):>16,.2f}{float(vill or 0):>16,.2f}")
