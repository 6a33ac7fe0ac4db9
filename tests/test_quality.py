"""The nightly run end to end (``ingestion.quality.run_quality``, ``pairstats quality``): the
checks built in the warehouse, recorded, validated by GX with Data Docs, and one digest to a
real SMTP server — none for a clean warehouse, one naming every planted problem, "still
failing since" on the next night.

One warehouse for the module: the five demo units' steady months (the builders of
``tests/test_quality_models.py``), every file on time. Nights, in order:

1. 2025-07-01 — clean: no digest (an all-clear one only when asked for);
2. 2025-07-02 — after four problems are planted (a late district, an outlier, a 合计 row that
   does not add up, a refused file): one digest naming each, all new;
3. 2025-07-03 — the same problems: one digest, every one "still failing since 2025-07-02";
4. 2025-07-04 — the 合计 row corrected, through ``pairstats quality`` (the CLI): it is gone
   from the digest, the others still failing.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from ingestion import dbt
from ingestion.config import Settings
from ingestion.quality import QualityRun, run_quality, send_digest_for
from ingestion.warehouse import with_database
from tests.conftest import Mailbox, _controller_class, create_database, drop_database
from tests.quality_data import (
    MONTHS,
    UNITS,
    _activity,
    _activity_cells,
    _csv,
    _income_row,
    _ingest,
    _json_document,
    _set_received,
    _sync_loaded_at,
    _write,
)

pytestmark = pytest.mark.slow

MAINTAINERS = ("ops@example.org",)
PLANTED = {
    ("reporting_completeness", "440881", "2025-05"),  # 廉江市's May file came on 06-20, deadline 06-05
    ("outliers", "370213", "2025-05"),  # 李沧区 corrects May: one villagers' income 100 times too large
    ("total_row_reconciliation", "652801", "2025-04"),  # 库尔勒市 corrects April: the 合计 row is off
    ("refused_files", "999999", "2025-05"),  # a file from a unit in no register
}


@pytest.fixture(scope="module")
def mailbox() -> Iterator[tuple[str, Mailbox]]:
    box = Mailbox()
    controller = _controller_class()(box, hostname="127.0.0.1", port=0)
    controller.start()
    try:
        yield f"smtp://127.0.0.1:{controller.port}", box
    finally:
        controller.stop()


@dataclasses.dataclass
class Nights:
    settings: Settings
    url: str
    landing: Path
    runs: dict[str, QualityRun] = dataclasses.field(default_factory=dict)
    mail: dict[str, list[Any]] = dataclasses.field(default_factory=dict)  # night -> messages it sent
    all_clear: dict[str, Any] = dataclasses.field(default_factory=dict)
    cli: subprocess.CompletedProcess | None = None


def _night(n: Nights, box: Mailbox, name: str, as_of: str) -> None:
    before = len(box.messages)
    n.runs[name] = run_quality(n.settings, as_of=dt.date.fromisoformat(as_of), run_id=f"night-{name}")
    n.mail[name] = [m for _, _, m in box.messages[before:]]


def _plant(n: Nights) -> None:
    url, landing = n.url, n.landing
    with psycopg.connect(url) as conn:  # 廉江市's May report came late
        (sid,) = conn.execute(
            "select submission_id from audit.submission_files where reporting_unit_code = '440881'"
            " and period = '2025-05'"
        ).fetchone()
    _set_received(url, sid, "2025-06-20 10:00")
    may = MONTHS.index("2025-05")
    rows = [_income_row("370213", j, may) for j in range(2)]
    rows[0]["villager_income_increase_yuan"] *= 100
    header = [
        "pairing_code",
        "collective_income_increase_yuan",
        "villager_income_increase_yuan",
        "produce_sold_tonnes",
        "produce_sales_yuan",
        "jobs_created",
        "households_benefited",
    ]
    outlier = _write(
        landing / "370213" / "370213_2025-05_收益成效_更正.csv",
        _csv("income_effects", [[r[h] for h in header] for r in rows]),
    )
    april = MONTHS.index("2025-04")
    acts = [_activity("652801", j, april) for j in range(2)]
    wrong_total = ["合计", "", "", "", sum(a["participants"] for a in acts) + 10, 40, 2, 4]
    total = _write(
        landing / "652801" / "652801_2025-04_共建活动_更正.csv",
        _csv("activities", [_activity_cells(a) for a in acts], wrong_total),
    )
    refused = _write(
        landing / "999999" / "999999_2025-05_activities.csv", _csv("activities", [_activity_cells(acts[0])])
    )
    outcomes = _ingest(url, n.settings, [outlier, total, refused])
    assert [o.status for o in outcomes] == ["loaded", "loaded", "rejected"], [o.to_dict() for o in outcomes]
    assert [w.code for w in outcomes[1].warnings] == ["W002_TOTAL_MISMATCH"]
    for o, when in zip(outcomes, ("2025-06-02 09:00", "2025-05-03 09:00", "2025-06-01 09:00"), strict=True):
        _set_received(url, o.submission_id, when)
    _sync_loaded_at(url)


@pytest.fixture(scope="module")
def nights(
    pg_admin_url: str, template_db: str, tmp_path_factory: pytest.TempPathFactory, mailbox: tuple[str, Mailbox]
) -> Iterator[Nights]:
    smtp_url, box = mailbox
    name = f"pairstats_nights_{uuid.uuid4().hex[:10]}"
    create_database(pg_admin_url, name, template_db)
    url = with_database(pg_admin_url, name)
    home = tmp_path_factory.mktemp("home_nights")
    settings = dataclasses.replace(
        Settings.from_env({"PAIRSTATS_HOME": str(home), "PAIRSTATS_WAREHOUSE_URL": url}),
        smtp_url=smtp_url,
        alert_emails=MAINTAINERS,
    )
    n = Nights(settings=settings, url=url, landing=tmp_path_factory.mktemp("landing_nights"))
    try:
        files = [
            _write(n.landing / unit / f"{unit}_{period}.json", json.dumps(_json_document(unit, i), ensure_ascii=False))
            for unit in UNITS
            for i, period in enumerate(MONTHS)
        ]
        assert {o.status for o in _ingest(url, settings, files)} == {"loaded"}
        with psycopg.connect(url) as conn:
            conn.execute(
                "update audit.submission_files"
                " set received_at = ((period_end + 3) + time '10:00') at time zone 'Asia/Shanghai'"
            )
        _sync_loaded_at(url)

        _night(n, box, "0701", "2025-07-01")
        before = len(box.messages)
        n.all_clear = send_digest_for(n.runs["0701"].run_id, settings, all_clear=True)
        n.mail["0701-all-clear"] = [m for _, _, m in box.messages[before:]]

        _plant(n)
        # as build_warehouse does after each ingest: the nightly checks judge the published marts
        assert dbt.build(settings), "dbt build failed"
        _night(n, box, "0702", "2025-07-02")
        _night(n, box, "0703", "2025-07-03")

        # the district corrects April again, the 合计 row right this time; night 4 through the CLI
        april = MONTHS.index("2025-04")
        acts = [_activity("652801", j, april) for j in range(2)]
        right = ["合计", "", "", "", sum(a["participants"] for a in acts), 40, 2, 4]
        fixed = _write(
            n.landing / "652801" / "652801_2025-04_共建活动_再更正.csv",
            _csv("activities", [_activity_cells(a) for a in acts], right),
        )
        (outcome,) = _ingest(url, settings, [fixed])
        _set_received(url, outcome.submission_id, "2025-05-04 09:00")
        assert dbt.build(settings), "dbt build failed"
        before = len(box.messages)
        env = dict(
            os.environ,
            PAIRSTATS_HOME=str(home),
            PAIRSTATS_WAREHOUSE_URL=url,
            PAIRSTATS_SMTP_URL=smtp_url,
            PAIRSTATS_ALERT_EMAILS=",".join(MAINTAINERS),
        )
        n.cli = subprocess.run(
            [sys.executable, "-m", "ingestion.cli", "quality", "--as-of", "2025-07-04", "--json"],
            env=env,
            capture_output=True,
            text=True,
        )
        n.mail["0704"] = [m for _, _, m in box.messages[before:]]
        yield n
    finally:
        drop_database(pg_admin_url, name)


def _text(message: Any) -> str:
    return message.get_body(preferencelist=("plain",)).get_content().replace("\r\n", "\n")


def _failures(run: QualityRun) -> set[tuple[str, str | None, str | None]]:
    return {(f.check_name, f.reporting_unit_code, f.period_code) for f in run.failures}


def test_a_clean_warehouse_mails_nothing(nights: Nights) -> None:
    run = nights.runs["0701"]
    assert run.checks > 50 and run.failed == 0 and run.failures == []
    assert run.digest is None and nights.mail["0701"] == []
    (all_clear,) = nights.mail["0701-all-clear"]  # only when asked for
    assert "全部通过 / data quality digest 2025-07-01: all checks pass" in all_clear["Subject"]
    assert "全部检查通过。/ Every check passed." in _text(all_clear)


def test_the_night_after_the_problems_one_digest_names_each(nights: Nights) -> None:
    run = nights.runs["0702"]
    assert _failures(run) == PLANTED
    assert all(f.is_new for f in run.failures)
    (digest,) = nights.mail["0702"]
    assert digest["Subject"] == (
        "[pairstats] 数据质量日报 2025-07-02：新问题 4 项，持续 0 项 / "
        "data quality digest 2025-07-02: 4 new, 0 still failing"
    )
    assert digest["To"] == "ops@example.org"
    text = _text(digest)
    # grouped by region, each with its unit, period, what failed and how many rows
    for line in (
        "## 广东省 · 湛江市（4408）",
        "- [新问题 / new] 报送及时完整 / reports received, on time — 廉江市（440881）",
        "    2025-05: 迟报 15 天（截止 2025-06-05，2025-06-20 收到） / "
        "15 days late (deadline 2025-06-05, received 2025-06-20)",
        "## 山东省 · 青岛市（3702）",
        "- [新问题 / new] 异常值 / figures far from the pairing's own history — 李沧区（370213）",
        "（1 个数值 / 1 figures）",
        "## 新疆维吾尔自治区 · 巴音郭楞蒙古自治州（6528）",
        "- [新问题 / new] 合计行核对 / total rows add up — 库尔勒市（652801）",
        "## 其他 / other",
        "- [新问题 / new] 拒收文件 / refused files — 未知单位 / unknown unit（999999）",
        "F005_UNKNOWN_UNIT",
        "999999_2025-05_activities.csv",
        f"Data Docs: {nights.settings.data_docs_index}",
    ):
        assert line in text, line
    # the worst example of the outlier: the pairing, the measure, the figure
    assert "villager_income_increase_yuan" in text
    html = digest.get_body(preferencelist=("html",)).get_content()
    assert f'<a href="{nights.settings.data_docs_index}">Data Docs</a>' in html


def test_the_next_night_the_same_problems_are_still_failing_since(nights: Nights) -> None:
    run = nights.runs["0703"]
    assert _failures(run) == PLANTED
    assert not any(f.is_new for f in run.failures)
    assert {f.failing_since for f in run.failures} == {dt.date(2025, 7, 2)}
    (digest,) = nights.mail["0703"]
    assert "新问题 0 项，持续 4 项 / data quality digest 2025-07-03: 0 new, 4 still failing" in digest["Subject"]
    text = _text(digest)
    assert text.count("持续未解决，自 2025-07-02 起 / still failing since 2025-07-02") == 4
    assert "新问题 / new]" not in text


def test_a_problem_fixed_is_gone_and_the_cli_runs_the_same_night(nights: Nights) -> None:
    assert nights.cli is not None and nights.cli.returncode == 0, nights.cli.stderr[-3000:]
    summary = json.loads(nights.cli.stdout.strip().splitlines()[-1])
    assert (summary["as_of"], summary["failed"], summary["new"], summary["still_failing"]) == ("2025-07-04", 3, 0, 3)
    assert summary["delivered"] == ["email"]
    (digest,) = nights.mail["0704"]
    text = _text(digest)
    assert "合计行核对" not in text and text.count("still failing since 2025-07-02") == 3


def test_results_are_kept_per_check_unit_period_and_run(nights: Nights) -> None:
    with psycopg.connect(nights.url) as conn:
        dupes = conn.execute(
            """select run_id, check_name, reporting_unit_code, period_code, count(*) from audit.dq_results
               group by 1, 2, 3, 4 having count(*) > 1"""
        ).fetchall()
        runs = conn.execute("select run_id, as_of, status, checks, failed from audit.dq_runs order by as_of").fetchall()
        daily = conn.execute(
            "select as_of_date, sum(checks), sum(failed) from marts.rpt_data_quality_daily group by 1 order by 1"
        ).fetchall()
        gx = conn.execute(
            "select count(*), count(*) filter (where outcome = 'pass') from audit.dq_results"
            " where run_id = 'night-0702' and check_name like 'gx:%%'"
        ).fetchone()
        digests = conn.execute(
            "select run_id, status, new_problems, open_problems from audit.alerts where kind = 'digest' order by id"
        ).fetchall()
    assert dupes == []
    assert [(r[1].isoformat(), r[2], r[4]) for r in runs] == [
        ("2025-07-01", "done", 0),
        ("2025-07-02", "done", 4),
        ("2025-07-03", "done", 4),
        ("2025-07-04", "done", 3),
    ]
    assert [(d.isoformat(), int(f)) for d, _, f in daily] == [
        ("2025-07-01", 0),
        ("2025-07-02", 4),
        ("2025-07-03", 4),
        ("2025-07-04", 3),
    ]
    assert gx[0] >= 7 and gx[0] == gx[1]  # GX's own expectations on the facts and the audit pass
    assert digests == [
        ("night-0701", "sent", 0, 0),
        ("night-0702", "sent", 4, 4),
        ("night-0703", "sent", 0, 4),
        (runs[3][0], "sent", 0, 3),
    ]


def test_data_docs_keep_every_night(nights: Nights) -> None:
    index = nights.settings.data_docs / "index.html"
    assert index.is_file()
    pages = list((nights.settings.data_docs / "validations").rglob("*.html"))
    # one page per suite per night (12 suites, 4 nights)
    suites = len(list((Path(__file__).parents[1] / "expectations" / "nightly").glob("*.json")))
    assert len(pages) == suites * 4
    html = index.read_text(encoding="utf-8")
    assert "pairstats_nightly_reporting_completeness" in html and "pairstats_nightly_activity_counts" in html


def test_gx_reaches_the_embedded_warehouse_over_its_unix_socket(tmp_path: Path) -> None:
    """`make demo` + `pairstats quality` run on the embedded PostgreSQL, which listens on a unix
    socket only: GX's Postgres data source must connect there too (its URL validation wants a
    host; the socket goes to the driver)."""
    import shutil

    from ingestion import warehouse
    from ingestion.digest import NIGHTLY_SUITES
    from ingestion.quality_gx import gx_connection, validate_with_gx

    settings = Settings.from_env({"PAIRSTATS_HOME": str(tmp_path / "home")})
    try:
        url = warehouse.warehouse_url(settings)
        assert "host=/" in url  # the socket, no TCP
        conn_str, kwargs = gx_connection(url)
        assert conn_str == "postgresql+psycopg2://postgres@localhost/pairstats"
        assert kwargs["connect_args"]["host"].startswith(str(tmp_path))
        with psycopg.connect(url) as conn:
            warehouse.apply_schema(conn)
            conn.execute("insert into audit.dq_runs (run_id, as_of) values ('socket', '2025-07-01')")
        suites = tmp_path / "suites"
        suites.mkdir()
        shutil.copy(NIGHTLY_SUITES / "submission_files.json", suites)  # a suite over the audit only
        index = validate_with_gx(settings, "socket", url, folder=suites)
        assert index == settings.data_docs_index and (settings.data_docs / "index.html").is_file()
        with psycopg.connect(url) as conn:
            rows = conn.execute("select check_name, outcome from audit.dq_results order by check_name").fetchall()
        assert rows == [
            ("gx:submission_files.column_pair_values_to_be_equal(rows_received/rows_accounted)", "pass"),
            ("gx:submission_files.column_values_to_be_in_set(status)", "pass"),
        ]
    finally:
        warehouse.stop(settings)
