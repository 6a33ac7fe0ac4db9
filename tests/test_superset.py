"""A real BI client: Apache Superset 6.1.0 on the embedded warehouse, through a BI login over TCP.

One module fixture: an embedded PostgreSQL of its own (a temporary PAIRSTATS_HOME,
PAIRSTATS_WAREHOUSE_LISTEN on a free port), the demo ingested and built (``pairstats demo
--no-airflow``), a login from ``pairstats bi add``; meanwhile Superset — from its own virtual
environment, installed from ``ingestion/data/superset-requirements.lock`` (by ``make bi-test``, or
here when missing) — gets a fresh state folder, ``db upgrade`` / ``create-admin`` / ``init`` and
its server on a free port. ``ingestion.superset_dashboard.build_dashboard`` then registers the
warehouse with the login's URL, creates the datasets, charts and dashboard through the REST API.

The tests read everything back through Superset's API (``/api/v1/chart/data``, SQL Lab) and
compare it exactly (int / Decimal) with what the owner reads from the marts; the dashboard is
opened in Debian's headless Chromium (``tests/test_ui.py``'s ``ensure_chromium``) and captured as
``docs/superset-dashboard.png`` with PAIRSTATS_UI_SCREENSHOTS=docs (``make bi-test``), else in a
temporary folder.

Marker ``superset``: deselected from a plain ``make test`` (tests/conftest.py; about 2 minutes
on 2 cores), run by ``make bi-test``.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import os
import re
import shutil
import struct
import subprocess
import tempfile
import threading
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest

from ingestion import warehouse
from ingestion.cli import main
from ingestion.config import CHECKOUT, Settings
from ingestion.processes import free_ports
from ingestion.superset import (
    ADMIN,
    SUPERSET_VERSION,
    Paths,
    admin_password,
    ensure_venv,
    initialise,
    lock_digest,
    serve,
    stop,
)
from ingestion.superset_dashboard import (
    CHARTS,
    ROLLUP,
    Dashboard,
    Superset,
    SupersetAPIError,
    build_dashboard,
    metric_name,
    zh_label,
)
from tests.test_ui import ensure_chromium

pytestmark = [pytest.mark.superset, pytest.mark.slow, pytest.mark.timeout(1800)]

LOGIN = "bi_superset"
SHOTS = Path(tempfile.gettempdir()) / "pairstats-ui-screenshots"
# Per county, from the facts (not the roll-up the charts read), as the warehouse's owner.
OWNER_TOTALS = """
    with acts as (select reporting_unit_code, sum(activity_count) as activities
                  from marts.fct_activity_counts group by 1),
         income as (select reporting_unit_code, sum(villager_income_increase_yuan) as villagers
                    from marts.fct_income_effects group by 1)
    select r.region_code, r.region_name, a.activities, i.villagers
    from acts a full join income i using (reporting_unit_code)
    join marts.dim_region r on r.region_code = coalesce(a.reporting_unit_code, i.reporting_unit_code)
                           and r.tree = 'civil'
    order by 1"""


@dataclass
class Env:
    settings: Settings
    owner_url: str
    pg_port: int
    bi_url: str
    venv: Path  # Superset's own virtual environment
    base: str  # Superset's address
    password: str  # the admin's
    api: Superset
    board: Dashboard


def _cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def env() -> Iterator[Env]:
    venv = Path(os.environ.get("PAIRSTATS_SUPERSET_VENV") or Paths.of(Settings.from_env()).venv)
    # Not under pytest's basetemp (see tests/test_bi.py): the server opens its files by absolute path.
    home = Path(tempfile.mkdtemp(prefix="pairstats-superset-"))
    pg_port, port = free_ports(2)
    paths = Paths(venv.resolve(), home / "superset" / "state")
    ensure_venv(paths.venv)
    server: dict = {}

    def start() -> None:  # Superset's own minute of set-up, while the demo loads the warehouse
        try:
            initialise(paths)
            server["proc"] = serve(paths, port)
        except BaseException as exc:  # re-raised in the fixture
            server["error"] = exc

    thread = threading.Thread(target=start, name="superset-start", daemon=True)
    thread.start()
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("PAIRSTATS_WAREHOUSE_URL", raising=False)
        mp.setenv("PAIRSTATS_HOME", str(home))
        mp.setenv("PAIRSTATS_WAREHOUSE_LISTEN", f"127.0.0.1:{pg_port}")
        settings = Settings.from_env()
        try:
            code, out, err = _cli("demo", "--no-airflow")
            assert code == 0, out[-3000:] + err[-3000:]
            code, out, err = _cli("bi", "add", LOGIN)
            assert code == 0, err
            bi_url = re.search(r"postgresql://\S+", out).group(0)
            thread.join(timeout=900)
            if "error" in server:
                raise server["error"]
            assert "proc" in server, "Superset did not start within 15 minutes"
            base = f"http://127.0.0.1:{port}"
            api = Superset(base, ADMIN, admin_password(paths))
            board = build_dashboard(api, bi_url)
            owner = warehouse.warehouse_url(settings)
            yield Env(settings, owner, pg_port, bi_url, paths.venv, base, admin_password(paths), api, board)
        finally:
            thread.join(timeout=600)
            if "proc" in server:
                stop(server["proc"])
            warehouse.stop(settings)
            shutil.rmtree(home, ignore_errors=True)


def _owner_totals(e: Env) -> dict[str, tuple[str, Decimal | None, Decimal | None]]:
    with psycopg.connect(e.owner_url) as conn:
        rows = conn.execute(OWNER_TOTALS).fetchall()
    return {code: (name, activities, villagers) for code, name, activities, villagers in rows}


def _chart_rows(result: dict) -> dict[str, dict]:
    return {row["region_code"]: row for row in result["data"]}


def _wait_for_setting(e: Env, name: str, value: str) -> None:
    """After pg_reload_conf(): until a new session sees ``name = value`` (at most 10 s)."""
    for _ in range(100):
        with psycopg.connect(e.owner_url) as conn:
            if conn.execute("select current_setting(%s)", (name,)).fetchone()[0] == value:
                return
        time.sleep(0.1)
    raise AssertionError(f"{name} is not {value} after a reload")


def _sql_lab(e: Env, query: str) -> dict:
    payload = {"database_id": e.board.database_id, "sql": query, "runAsync": False, "schema": "marts"}
    return e.api.call("POST", "/api/v1/sqllab/execute/", payload)


# --------------------------------------------------------------------------- the environment


def test_superset_runs_from_its_own_environment_never_from_pairstats(env: Env) -> None:
    probe = "import importlib.metadata as m; print(m.version('apache-superset'), m.version('psycopg2-binary'))"
    proc = subprocess.run([env.venv / "bin" / "python", "-c", probe], capture_output=True, text=True, check=True)
    assert proc.stdout.split()[0] == SUPERSET_VERSION
    assert (env.venv / "pairstats-superset-lock.sha256").read_text().strip() == lock_digest()
    assert importlib.util.find_spec("superset") is None  # not importable from pairstats' own venv
    project = tomllib.loads((CHECKOUT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    declared = [*project["dependencies"], *(d for deps in project["optional-dependencies"].values() for d in deps)]
    assert not [d for d in declared if "superset" in d.lower()]
    assert "apache-superset" not in (CHECKOUT / "requirements.lock").read_text(encoding="utf-8")


# --------------------------------------------------------------------------- the database


def test_the_warehouse_is_registered_with_the_bi_login_over_tcp(env: Env) -> None:
    database = env.api.call("GET", f"/api/v1/database/{env.board.database_id}/connection")["result"]
    password = re.search(r":([^:@/]+)@", env.bi_url).group(1)
    assert database["sqlalchemy_uri"] == env.bi_url.replace(password, "XXXXXXXXXX")  # stored, shown masked
    assert database["backend"] == "postgresql" and database["allow_dml"] is False
    assert database["parameters"]["username"] == LOGIN and database["parameters"]["port"] == env.pg_port
    # SQL Lab refuses current_user, inet_server_addr(), pg_stat_activity & co.: the server's log tells
    # who connected, from where and how (log_connections, on this test's own server).
    log = env.settings.pgdata / "log"
    with psycopg.connect(env.owner_url, autocommit=True) as conn:
        conn.execute("alter system set log_connections = 'on'")
        conn.execute("select pg_reload_conf()")
    try:
        _wait_for_setting(env, "log_connections", "on")
        start = log.stat().st_size
        result = _sql_lab(env, "select count(*) as n from marts.dim_region")
        assert result["status"] == "success" and result["data"][0]["n"] > 0
        text = log.read_bytes()[start:].decode("utf-8", errors="replace")
    finally:
        with psycopg.connect(env.owner_url, autocommit=True) as conn:
            conn.execute("alter system reset log_connections")
            conn.execute("select pg_reload_conf()")
    assert re.search(r"connection received: host=127\.0\.0\.1 port=\d+", text), text[-3000:]
    assert re.search(rf'connection authenticated: identity="{LOGIN}" method=scram-sha-256', text), text[-3000:]
    assert re.search(rf"connection authorized: user={LOGIN} database=pairstats", text), text[-3000:]


def test_the_login_reads_nothing_but_marts_through_superset(env: Env) -> None:
    for relation, schema in [("raw.activities", "raw"), ("audit.submission_files", "audit")]:
        with pytest.raises(SupersetAPIError) as denied:
            _sql_lab(env, f"select * from {relation} limit 1")
        assert f"permission denied for schema {schema}" in denied.value.body, denied.value.body
    with pytest.raises(SupersetAPIError) as denied:  # built, not yet published: not for BI either
        _sql_lab(env, "select count(*) from marts_build.fct_activity_counts")
    assert "permission denied for schema marts_build" in denied.value.body
    # A dataset on a raw table can be made — PostgreSQL's catalogue (names, columns) is readable by
    # every role — but a chart of it reads nothing.
    payload = {"database": env.board.database_id, "schema": "raw", "table_name": "activities"}
    dataset_id = env.api.call("POST", "/api/v1/dataset/", payload)["id"]
    try:
        query = {"columns": [], "metrics": ["count"], "filters": [], "row_limit": 10}
        context = {"datasource": {"id": dataset_id, "type": "table"}, "queries": [query], "result_format": "json"}
        resp = env.api.http.post("/api/v1/chart/data", json=context | {"result_type": "full", "force": True})
        assert resp.status_code >= 400 and "permission denied for schema raw" in resp.text, resp.text[:2000]
    finally:
        env.api.call("DELETE", f"/api/v1/dataset/{dataset_id}")
    assert _sql_lab(env, f"select count(*) as n from marts.{ROLLUP}")["data"][0]["n"] > 0


# --------------------------------------------------------------------------- datasets and labels


def test_datasets_carry_the_zh_labels_of_the_column_comments(env: Env) -> None:
    with psycopg.connect(env.owner_url) as conn:
        marts = [
            r[0]
            for r in conn.execute(
                "select relname from pg_class where relnamespace = 'marts'::regnamespace"
                " and relkind in ('r', 'p', 'v', 'm') order by 1"
            )
        ]
        comments = dict(
            conn.execute(
                "select attname, col_description(attrelid, attnum) from pg_attribute"
                " where attrelid = 'marts.rpt_region_rollup'::regclass and attnum > 0 and not attisdropped"
            ).fetchall()
        )
    assert sorted(env.board.datasets) == marts  # one dataset per mart
    dataset = env.api.call("GET", f"/api/v1/dataset/{env.board.datasets[ROLLUP]}")["result"]
    assert (dataset["schema"], dataset["table_name"]) == ("marts", ROLLUP)
    columns = {c["column_name"]: c for c in dataset["columns"]}
    assert set(columns) == set(comments)
    for name, column in columns.items():
        assert column["verbose_name"] == zh_label(comments[name]), name
        assert column["description"] == comments[name], name
    assert columns["region_name"]["verbose_name"] == "区划名称"
    assert columns["activity_count"]["verbose_name"] == "活动次数"
    assert columns["villager_income_increase_yuan"]["verbose_name"] == "村民增收（元）"
    assert columns["villager_income_increase_wan_yuan"]["verbose_name"] == "村民增收（万元）"
    metrics = {m["metric_name"]: m for m in dataset["metrics"]}
    assert metrics[metric_name("activity_count")]["verbose_name"] == "活动次数"
    assert metrics[metric_name("villager_income_increase_yuan")]["verbose_name"] == "村民增收（元）"


# --------------------------------------------------------------------------- the charts' numbers


def test_chart_data_per_county_equals_the_marts(env: Env) -> None:
    expected = _owner_totals(env)
    assert len(expected) == 5 and all(a and v for _, a, v in expected.values())
    for chart in CHARTS:
        saved = env.api.call("GET", f"/api/v1/chart/{env.board.charts[chart.key]}")["result"]
        resp = env.api.http.post("/api/v1/chart/data", json=json.loads(saved["query_context"]))
        assert resp.status_code == 200, resp.text[:2000]
        (result,) = json.loads(resp.text, parse_float=Decimal)["result"]
        assert "FROM marts.rpt_region_rollup" in result["query"]
        rows = _chart_rows(result)
        assert set(rows) == set(expected), chart.key
        for code, (name, activities, villagers) in expected.items():
            row = rows[code]
            assert row["region_name"] == name
            if "activity_count" in chart.measures:
                value = row[metric_name("activity_count")]
                assert isinstance(value, int) and value == activities, (chart.key, code, value, activities)
            if "villager_income_increase_yuan" in chart.measures:
                value = row[metric_name("villager_income_increase_yuan")]
                assert isinstance(value, Decimal) and value == villagers, (chart.key, code, value, villagers)


# --------------------------------------------------------------------------- the dashboard


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR", f"{path} is no PNG"
    return struct.unpack(">II", data[16:24])


def _wait_for_still_canvases(page, seconds: float = 15) -> None:
    """Until the charts' canvases are the same in two looks 0.3 s apart."""
    script = "() => [...document.querySelectorAll('[data-test-chart-id] canvas')].map(c => c.toDataURL())"
    previous = None
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        current = page.evaluate(script)
        if current == previous:
            return
        previous = current
        page.wait_for_timeout(300)
    raise AssertionError(f"the charts are still moving after {seconds} s")


def test_the_dashboard_renders_in_chromium_with_the_zh_labels(env: Env) -> None:
    from playwright.sync_api import expect, sync_playwright

    chromium = ensure_chromium()
    expected = _owner_totals(env)
    outside: list[str] = []  # requests for anything but this Superset
    chart_data: list = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(chromium), headless=True)
        try:
            context = browser.new_context(
                viewport={"width": 1600, "height": 1000}, locale="zh-CN", timezone_id="Asia/Shanghai"
            )
            context.set_default_timeout(60_000)

            def only_superset(route) -> None:
                if route.request.url.startswith((env.base + "/", "data:", "blob:")):
                    route.continue_()
                else:
                    outside.append(route.request.url)
                    route.abort()

            context.route("**/*", only_superset)
            page = context.new_page()
            page.on("response", lambda r: chart_data.append(r) if "/api/v1/chart/data" in r.url else None)
            page.goto(f"{env.base}/login/")
            page.get_by_label("Username").fill(ADMIN)
            page.get_by_label("Password").fill(env.password)
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_url(lambda url: "/login" not in url)
            response = page.goto(env.base + env.board.url)
            csp = response.headers["content-security-policy"]
            assert "scarf" not in csp and "https:" not in csp, csp  # no telemetry pixel, nothing from outside

            for chart in CHARTS:
                expect(page.get_by_text(chart.title, exact=True)).to_be_visible()
            holders = page.locator("[data-test-chart-id]")
            expect(holders).to_have_count(len(CHARTS))
            expect(page.locator("[data-test-chart-id] canvas")).to_have_count(2)  # the two ECharts bar charts
            headers = page.locator("[data-test-chart-id] table th")
            expect(headers).to_have_text(["区划代码", "区划名称", "活动次数", "村民增收（元）"])
            table = page.locator("[data-test-chart-id] table tbody")
            for code, (name, activities, villagers) in expected.items():
                row = table.locator("tr", has_text=code)
                expect(row).to_contain_text(name)
                expect(row).to_contain_text(f"{villagers:,.2f}")  # e.g. 40,166,534.00
                expect(row.locator("td").nth(2)).to_have_text(f"{activities:,}")
            page.wait_for_load_state("networkidle")
            expect(page.locator(".loading")).to_have_count(0)
            expect(page.get_by_text("Unexpected error")).to_have_count(0)

            assert len(chart_data) == len(CHARTS) and all(r.status == 200 for r in chart_data)
            for resp in chart_data:  # what the charts drew, as the dashboard asked for it
                for result in json.loads(resp.text(), parse_float=Decimal)["result"]:
                    for row in result["data"]:
                        code = next(c for c, (n, _, _) in expected.items() if n == row["region_name"])
                        for key, value in row.items():
                            if key == metric_name("activity_count"):
                                assert value == expected[code][1], (code, key, value)
                            elif key == metric_name("villager_income_increase_yuan"):
                                assert value == expected[code][2], (code, key, value)

            folder = CHECKOUT / "docs" if os.environ.get("PAIRSTATS_UI_SCREENSHOTS") == "docs" else SHOTS
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / "superset-dashboard.png"
            page.mouse.move(1590, 990)
            _wait_for_still_canvases(page)  # ECharts animates the bars (in the canvas, not CSS)
            page.screenshot(path=str(path), animations="disabled")
        finally:
            browser.close()
    assert _png_size(path) == (1600, 1000)
    assert path.stat().st_size > 40_000, f"{path}: {path.stat().st_size} bytes, an empty page?"
    assert outside == [], outside
