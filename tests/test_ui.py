"""The Airflow UI in a real browser: Debian's Chromium, driven by Playwright, against the real api-server.

One module fixture lands the demo submissions (five units and the refused file of unknown
unit 999999) through a real ``ingest_submissions`` run (``dag_runs.run_dag``: ``airflow
dags test`` against a migrated metadata database of its own), in batches small enough that
``ingest_batch`` is mapped several times (four batches of whole landing folders); then
starts ``airflow api-server`` on a free port with the project's ``airflow_env``. The tests
log in through SimpleAuthManager's form as ``admin`` (the password ``login_info`` prints),
open the run's grid and the mapped ``ingest_batch`` instances, check their labels (units,
files, ✔/✘ counts, the refused file), find the refused file and its code in ``summarise``'s
XCom, open the DAG's docs, and write the screenshots the README shows:
``docs/airflow-grid.png``, ``docs/airflow-refused.png`` and ``docs/airflow-dag-docs.png`` (with
PAIRSTATS_UI_SCREENSHOTS=docs, as ``make ui-test`` sets; otherwise into a temporary folder).

Chromium and the CJK fonts are Debian's (``/usr/bin/chromium``, ``fonts-noto-cjk``), installed
by the session fixture with apt-get when missing — never Playwright's own browser downloads.
Without them the test fails with what to install; it is never skipped.

``make ui-test`` runs this module alone (marker ``ui``).
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from ingestion.config import CHECKOUT, Settings
from ingestion.dag_runs import DagRunResult, run_dag
from ingestion.orchestration import ADMIN_USER, admin_password, prepare_airflow
from ingestion.processes import free_ports, stop_process
from ingestion.warehouse import with_database
from tests.conftest import create_database, drop_database

pytestmark = [pytest.mark.ui, pytest.mark.slow]

CHROMIUM = Path("/usr/bin/chromium")
CJK_FONT = Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc")
APT_PACKAGES = ("chromium", "fonts-noto-cjk")
DOCS = CHECKOUT / "docs"
SHOTS = Path(tempfile.gettempdir()) / "pairstats-ui-screenshots"
DAG_ID = "ingest_submissions"


# --------------------------------------------------------------------------- Chromium from Debian


def ensure_chromium() -> Path:
    """``/usr/bin/chromium`` and the CJK fonts, installed with apt-get (as root) when missing.

    Two stat calls when they are there. Fails (never skips) when they cannot be installed.
    """
    if CHROMIUM.exists() and CJK_FONT.exists():
        return CHROMIUM
    apt = shutil.which("apt-get")
    if apt is None or os.geteuid() != 0:
        pytest.fail(
            f"{CHROMIUM} or {CJK_FONT} is missing and this process cannot install them "
            f"({'not root' if apt else 'no apt-get'}): run `apt-get install -y {' '.join(APT_PACKAGES)}` as root"
        )
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    install = [apt, "install", "-y", "--no-install-recommends", *APT_PACKAGES]
    proc = subprocess.run(install, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:  # no package lists yet (a fresh machine), or stale ones
        update = subprocess.run([apt, "update"], env=env, capture_output=True, text=True, check=False)
        proc = subprocess.run(install, env=env, capture_output=True, text=True, check=False)
        proc.stderr = f"{update.stdout[-1500:]}{update.stderr[-1500:]}\n{proc.stderr}"
    if proc.returncode != 0 or not CHROMIUM.exists() or not CJK_FONT.exists():
        pytest.fail(
            f"`apt-get install {' '.join(APT_PACKAGES)}` failed ({proc.returncode}); the UI test needs "
            f"{CHROMIUM} and {CJK_FONT}:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
        )
    return CHROMIUM


@pytest.fixture(scope="session")
def chromium() -> Path:
    return ensure_chromium()


# --------------------------------------------------------------------------- a run, and the api-server


@pytest.fixture(scope="module")
def ui_home(pg_admin_url: str, template_db: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A fresh PAIRSTATS_HOME, warehouse database and Airflow metadata database, all dropped afterwards."""
    warehouse = f"pairstats_ui_{uuid.uuid4().hex[:10]}"
    metadata_db = f"airflow_ui_{uuid.uuid4().hex[:10]}"
    create_database(pg_admin_url, warehouse, template_db)
    home = tmp_path_factory.mktemp("pairstats-ui")
    try:
        settings = Settings.from_env(
            {
                "PAIRSTATS_HOME": str(home / "home"),
                "PAIRSTATS_WAREHOUSE_URL": with_database(pg_admin_url, warehouse),
                "PAIRSTATS_SETTLE_SECONDS": "0",  # the generator has finished writing
                "PAIRSTATS_BATCH_FILES": "20",  # the demo's 49 files in batches of whole landing folders
            }
        )
        yield {"settings": settings, "metadata_db": metadata_db}
    finally:
        drop_database(pg_admin_url, metadata_db)
        drop_database(pg_admin_url, warehouse)


@pytest.fixture(scope="module")
def ingest_run(ui_home: dict[str, Any]) -> dict[str, Any]:
    """The demo submissions (five units and one file of unknown unit 999999), ingested by a real run."""
    from ingestion.demo import generate_demo
    from ingestion.tasks import file_label

    settings: Settings = ui_home["settings"]
    generate_demo(settings.landing)
    refused = [file_label(p) for p in sorted((settings.landing / "999999").iterdir())]
    run: DagRunResult = run_dag(DAG_ID, settings=settings, metadata_db=ui_home["metadata_db"])
    tail = Path(run.log_path).read_text(encoding="utf-8", errors="replace")[-3000:]
    assert run.ok and run.run_id, f"{DAG_ID}: {run.state} (exit {run.returncode})\n{tail}"
    batches = [t for t in run.tasks if t.task_id == "ingest_batch"]
    assert len(batches) >= 2, f"one batch only: {batches}"
    return {"run": run, "batches": batches, "refused": refused}


@pytest.fixture(scope="module")
def api_server(ui_home: dict[str, Any], ingest_run: dict[str, Any], tmp_path_factory: pytest.TempPathFactory):
    """``airflow api-server`` on a free port with the project's configuration: its base URL."""
    from ingestion.orchestration import airflow_command, subprocess_env

    port = free_ports(1)[0]
    env = prepare_airflow(ui_home["settings"], metadata_db=ui_home["metadata_db"])
    env["AIRFLOW__API__PORT"] = str(port)
    env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] = f"http://localhost:{port}/execution/"
    log_path = tmp_path_factory.mktemp("api-server") / "api-server.log"
    command = airflow_command(["api-server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"])
    base = f"http://127.0.0.1:{port}"
    with log_path.open("w", encoding="utf-8") as log:
        proc = subprocess.Popen(
            command, env=subprocess_env(env), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                pytest.fail(f"airflow api-server exited ({proc.returncode}):\n{log_path.read_text()[-4000:]}")
            try:
                with urllib.request.urlopen(f"{base}/api/v2/monitor/health", timeout=5) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"airflow api-server not up after 120 s:\n{log_path.read_text()[-4000:]}")
            time.sleep(0.5)
        yield base
    finally:
        _stop(proc)


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM to the api-server's process group (its own session), SIGKILL if it lingers."""
    stop_process(proc, grace=10)


# --------------------------------------------------------------------------- the browser


@pytest.fixture(scope="module")
def page(chromium: Path, api_server: str, ui_home: dict[str, Any]):
    """A headless Chromium page, logged in through SimpleAuthManager's form as admin."""
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(chromium), headless=True)
        try:
            context = browser.new_context(
                viewport={"width": 1600, "height": 1000}, timezone_id="Asia/Shanghai", locale="en-US"
            )
            context.set_default_timeout(30_000)
            page = context.new_page()
            page.goto(f"{api_server}/")
            page.wait_for_url("**/auth/login**")  # not logged in: the auth manager's form
            page.get_by_label("Username").fill(ADMIN_USER)
            page.get_by_label("Password").fill(admin_password(ui_home["settings"]))
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_url(lambda url: "/auth/" not in url)
            expect(page.get_by_role("link", name="Dags").first).to_be_visible()
            yield page
        finally:
            browser.close()


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR", f"{path} is no PNG"
    return struct.unpack(">II", data[16:24])


def _screenshot(page, name: str) -> Path:
    """A screenshot, checked non-trivial: into docs/ (the README shows them) when
    PAIRSTATS_UI_SCREENSHOTS=docs (``make ui-test``), else beside the test's own files, so a
    plain ``make test`` leaves the checkout unchanged."""
    folder = DOCS if os.environ.get("PAIRSTATS_UI_SCREENSHOTS") == "docs" else SHOTS
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    page.screenshot(path=str(path), animations="disabled")
    width, height = _png_size(path)
    assert (width, height) == (1600, 1000), (path, width, height)
    assert path.stat().st_size > 40_000, f"{path}: {path.stat().st_size} bytes, an empty page?"
    return path


# --------------------------------------------------------------------------- the tests


def test_the_grid_shows_each_batch_by_its_units_and_the_refused_file(
    page, api_server: str, ingest_run: dict[str, Any]
) -> None:
    from playwright.sync_api import expect

    run: DagRunResult = ingest_run["run"]
    batches = ingest_run["batches"]
    run_url = f"{api_server}/dags/{DAG_ID}/runs/{quote(run.run_id or '', safe='')}"

    page.goto(run_url)  # the run: the grid on the left, its task instances on the right
    cell = page.get_by_test_id(f"grid-{run.run_id}-ingest_batch")
    expect(cell).to_be_visible()
    cell.click()  # the mapped task's box in the run's column: its mapped instances
    page.wait_for_url("**/tasks/ingest_batch/mapped")
    page.mouse.move(1590, 990)  # away from the box: its tooltip would hide the first label
    expect(page.get_by_role("tooltip")).to_have_count(0)
    table = page.get_by_role("table")
    expect(page.get_by_text(f"{len(batches)} Task Instances")).to_be_visible()

    labels = [t.label for t in batches]
    assert all(labels), f"a batch without its rendered label: {batches}"
    for label in labels:  # e.g. "659008…999999 (2 units, 13 files) · ✔12 ✘1 refused"
        assert " unit" in label and " files)" in label and " · ✔" in label, label
        expect(table.get_by_role("link", name=label, exact=True)).to_be_visible()
    refused = [label for label in labels if "✘" in label]
    assert len(refused) == 1 and refused[0].endswith("✘1 refused") and "999999" in refused[0], labels
    _screenshot(page, "airflow-grid.png")

    table.get_by_role("link", name=refused[0], exact=True).click()  # the batch with the refused file
    page.wait_for_url("**/tasks/ingest_batch/mapped/*")
    expect(page.get_by_role("heading", name=f"ingest_batch [{refused[0]}]")).to_be_visible()

    page.goto(f"{run_url}/tasks/summarise/xcom")  # summarise names the refused file and its code
    page.get_by_role("button", name="Expand all extra JSON").click()
    for file in ingest_run["refused"]:
        expect(page.get_by_text(f'"{file}"').first).to_be_visible()  # in `rejected` and in return_value
    expect(page.get_by_text('"F005_UNKNOWN_UNIT"').first).to_be_visible()
    _screenshot(page, "airflow-refused.png")


def test_the_dag_docs_render_in_chinese_and_english(page, api_server: str, ingest_run: dict[str, Any]) -> None:
    from playwright.sync_api import expect

    page.goto(f"{api_server}/dags/{DAG_ID}")
    page.get_by_role("button", name="Dag Docs").click()
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_text("Dag Documentation")).to_be_visible()
    expect(dialog.get_by_role("heading", name="Ingest district submissions · 接收区县报送文件")).to_be_visible()
    expect(dialog.get_by_text("refused file", exact=True)).to_be_visible()
    box = dialog.bounding_box()
    assert box is not None
    corner = (box["x"] + box["width"] - 4, box["y"] + box["height"] - 4)  # the modal's resize handle
    page.mouse.move(*corner)
    page.mouse.down()
    page.mouse.move(corner[0] + 400, corner[1] + 300, steps=10)
    page.mouse.up()
    grown = dialog.bounding_box()
    assert grown is not None and grown["height"] > box["height"], (box, grown)
    _screenshot(page, "airflow-dag-docs.png")
