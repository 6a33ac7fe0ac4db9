"""GX Data Docs that work offline (``ingestion.data_docs``): the pages load their CSS, scripts
and fonts from the site's own ``static/vendor`` copies, never from a CDN.

The cheap tests check the vendored files against their MANIFEST and GX's templates (every CDN
reference they hold is served or removed; the sha384 GX pins are our copies'), and build a small
site with GX's pandas engine (no warehouse) to parse its HTML for external references.

The module fixture builds the Data Docs the way the nightly run does: ``run_quality`` on a real
warehouse (the demo units' steady months, one file planted late so one suite fails), then a
second night's GX validation (``validate_with_gx``). Headless Chromium (Debian's, through
Playwright, as ``tests/test_ui.py``) opens the index and the failing validation result with
every request that is not ``file://`` aborted and recorded: none may be attempted, every file
loaded must lie inside the site, Bootstrap's and GX's styles must apply, jQuery, bootstrap-table
(its filter control) and Font Awesome must work, in the light and the dark scheme. The
validation result's screenshot goes to ``docs/data-docs-offline.png`` with
PAIRSTATS_UI_SCREENSHOTS=docs (else, like the index's, to a temporary folder).
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import hashlib
import json
import re
import uuid
from collections.abc import Iterator
from html.parser import HTMLParser
from importlib.util import find_spec
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import psycopg
import pytest

from ingestion import data_docs
from ingestion.config import Settings
from ingestion.quality import QualityRun, run_quality
from ingestion.quality_gx import validate_with_gx
from ingestion.warehouse import with_database
from tests.conftest import create_database, drop_database
from tests.quality_data import MONTHS, UNITS, _ingest, _json_document, _set_received, _sync_loaded_at, _write
from tests.test_ui import SHOTS, _screenshot, ensure_chromium

# GX's templates and styles (found without importing GX: collecting stays quick)
GX_VIEW = Path(find_spec("great_expectations").submodule_search_locations[0]) / "render" / "view"
NIGHTLY = len(list((Path(__file__).parents[1] / "expectations" / "nightly").glob("*.json")))  # suites


# --------------------------------------------------------------------------- the HTML, parsed


class _Assets(HTMLParser):
    """Every reference of a page that the browser would load: script/img ``src``, ``<link href>``
    (stylesheet, icon), CSS ``url(…)`` in ``<style>`` and ``style=``."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.refs: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag in ("script", "img", "iframe", "source") and a.get("src"):
            self.refs.append(a["src"])
        if tag == "link" and a.get("href"):
            self.refs.append(a["href"])
        if a.get("style"):
            self.refs += re.findall(r"""url\(['"]?([^'")]+)""", a["style"])
        self._in_style = tag == "style"

    def handle_endtag(self, tag: str) -> None:
        self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self.refs += re.findall(r"""url\(['"]?([^'")]+)""", data)


def asset_refs(html: str) -> list[str]:
    parser = _Assets()
    parser.feed(html)
    return parser.refs


def assert_self_contained(site: Path) -> int:
    """Every page of the site references only files of the site (that exist); returns the count."""
    pages = [p for p in site.rglob("*.html") if "static" not in p.relative_to(site).parts]
    assert pages
    for page in pages:
        for ref in asset_refs(page.read_text(encoding="utf-8")):
            if ref.startswith("data:"):
                continue
            assert not re.match(r"^\s*(?:[a-z]+:)?//", ref, re.I), f"{page}: loads {ref} from outside"
            target = (page.parent / unquote(ref.split("?")[0])).resolve()
            assert target.is_relative_to(site.resolve()), f"{page}: {ref} lies outside the site"
            assert target.is_file(), f"{page}: {ref} is missing"
    return len(pages)


# --------------------------------------------------------------------------- cheap: the vendored files


def test_the_vendored_files_are_their_manifest_and_small() -> None:
    assets = data_docs.manifest()
    total = 0
    for asset in assets:
        path = data_docs.STATIC / asset.path
        data = path.read_bytes()
        assert len(data) == asset.size and hashlib.sha256(data).hexdigest() == asset.sha256, asset.path
        total += len(data)
    assert total < 1_500_000, total
    packages = {a.path.split("/", 1)[0] for a in assets}
    for package in packages - {"popper.js@1.12.9"}:  # popper.js ships no licence file (MIT, in its banner)
        assert list((data_docs.STATIC / package).glob("LICENSE*")), package
    files = {p.relative_to(data_docs.STATIC).as_posix() for p in data_docs.STATIC.rglob("*") if p.is_file()}
    assert files - {a.path for a in assets} == {"MANIFEST"} | {f for f in files if "/LICENSE" in f}
    # the fonts Font Awesome's CSS loads first (woff2) are there
    css = (data_docs.STATIC / "fontawesome-free@6.6.0/css/all.min.css").read_text(encoding="utf-8")
    for font in set(re.findall(r"url\(\.\./(webfonts/[^)]+\.woff2)\)", css)):
        assert f"fontawesome-free@6.6.0/{font}" in files, font


def test_every_cdn_reference_of_gx_templates_is_served_or_removed() -> None:
    """A GX upgrade that changes a CDN URL (or adds one) fails here, before a page goes online-only."""
    served = data_docs.cdn_map(data_docs.manifest())
    loads: set[str] = set()
    for template in [*(GX_VIEW / "templates").glob("*.j2"), *(GX_VIEW / "static" / "styles").glob("*.css")]:
        text = template.read_text(encoding="utf-8")
        loads |= set(re.findall(r"""<(?:script|link|img)\b[^>]*\s(?:src|href)=["'](https?://[^"'{]+)["']""", text))
        loads |= set(re.findall(r"""url\(['"]?(https?://[^'")]+)""", text))
        # top_navbar.j2: the logo, from GX's S3 bucket
        for images in re.findall(r'static_images_dir = "(https?://[^"]+)"', text):
            loads |= {images + name for name in re.findall(r'static_images_dir \+ "([^"]+)"', text)}
    assert any(u.startswith(data_docs.GX_IMAGES) for u in loads) and len(loads) > 15
    for url in loads:
        if url.startswith(data_docs.GX_IMAGES):
            assert url.removeprefix(data_docs.GX_IMAGES) in data_docs.GX_IMAGE_COPIES, url
        else:
            assert url in served or url in data_docs.CHART_SCRIPTS, f"GX's templates load {url}: vendor it"
    assert set(served) <= loads  # nothing vendored that GX no longer loads
    # the sha384 that GX's <script integrity> pins are our copies' bytes
    imports = (GX_VIEW / "templates" / "js_script_imports.j2").read_text(encoding="utf-8")
    pinned = re.findall(r'src="([^"]+)" integrity="sha384-([^"]+)"', imports)
    assert len(pinned) == 2
    for url, sri in pinned:
        copy = data_docs.STATIC / served[url].removeprefix(data_docs.VENDOR + "/")
        assert base64.b64encode(hashlib.sha384(copy.read_bytes()).digest()).decode() == sri, url


def test_a_gx_site_built_without_a_warehouse_loads_nothing_from_outside(tmp_path: Path) -> None:
    """GX's pandas engine builds a real site (index, suite, validation result); after
    ``make_offline`` no page has an http(s) asset reference and a second pass changes nothing."""
    import great_expectations as gx
    import pandas as pd
    from great_expectations.checkpoint import UpdateDataDocsAction
    from great_expectations.data_context.types.base import DataContextConfig, InMemoryStoreBackendDefaults

    from ingestion.suites import quiet_gx

    quiet_gx()
    site = tmp_path / "data_docs"
    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
        data_docs_sites={
            "s": {
                "class_name": "SiteBuilder",
                "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(site)},
            }
        },
        analytics_enabled=False,
    )
    context = gx.get_context(mode="ephemeral", project_config=config)
    batch = context.data_sources.add_pandas("p").add_dataframe_asset("a").add_batch_definition_whole_dataframe("b")
    suite = context.suites.add(gx.ExpectationSuite(name="offline.check"))  # a dot: one folder deeper
    suite.add_expectation(gx.expectations.ExpectColumnValuesToBeBetween(column="x", min_value=0, max_value=5))
    definition = context.validation_definitions.add(gx.ValidationDefinition(name="v", data=batch, suite=suite))
    checkpoint = context.checkpoints.add(
        gx.Checkpoint(name="c", validation_definitions=[definition], actions=[UpdateDataDocsAction(name="d")])
    )
    checkpoint.run(batch_parameters={"dataframe": pd.DataFrame({"x": [1, 2, 9]})})
    raw = (site / "index.html").read_text(encoding="utf-8")
    assert any(ref.startswith("https://") for ref in asset_refs(raw))  # GX's own: CDNs

    first = data_docs.make_offline(site)
    assert first.pages_rewritten == first.pages_read == 3 and first.external == {} and first.charts == []
    assert assert_self_contained(site) == 3
    for page in site.rglob("*.html"):
        html = page.read_text(encoding="utf-8")
        assert "https://" not in " ".join(asset_refs(html)) and "http://" not in " ".join(asset_refs(html))
        assert "integrity=" not in html and "crossorigin=" not in html  # file:// pages make no CORS request
    before = {p: p.read_bytes() for p in site.rglob("*.html")}
    again = data_docs.make_offline(site)
    assert again.pages_rewritten == 0 and again.assets_copied == 0
    assert {p: p.read_bytes() for p in site.rglob("*.html")} == before


# --------------------------------------------------------------------------- the nightly site

LATE = ("440881", "2025-05")  # 廉江市's May file came on 06-20 (deadline 06-05): one failing check


@dataclasses.dataclass
class Site:
    settings: Settings
    url: str
    run: QualityRun
    night1_pages: dict[Path, int]  # validation page -> its mtime after night 1
    root: Path = dataclasses.field(init=False)

    def __post_init__(self) -> None:
        self.root = self.settings.data_docs

    def validation_page(self, suite: str, run_id: str) -> Path:
        (page,) = (self.root / "validations" / f"pairstats_nightly_{suite}" / run_id).rglob("*.html")
        return page


@pytest.fixture(scope="module")
def site(pg_admin_url: str, template_db: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    name = f"pairstats_docs_{uuid.uuid4().hex[:10]}"
    create_database(pg_admin_url, name, template_db)
    url = with_database(pg_admin_url, name)
    home = tmp_path_factory.mktemp("home_data_docs")
    settings = Settings.from_env({"PAIRSTATS_HOME": str(home), "PAIRSTATS_WAREHOUSE_URL": url})
    landing = tmp_path_factory.mktemp("landing_data_docs")
    try:
        files = [
            _write(landing / unit / f"{unit}_{period}.json", json.dumps(_json_document(unit, i), ensure_ascii=False))
            for unit in UNITS
            for i, period in enumerate(MONTHS)
        ]
        assert {o.status for o in _ingest(url, settings, files)} == {"loaded"}
        with psycopg.connect(url) as conn:
            conn.execute(
                "update audit.submission_files"
                " set received_at = ((period_end + 3) + time '10:00') at time zone 'Asia/Shanghai'"
            )
            (sid,) = conn.execute(
                "select submission_id from audit.submission_files where reporting_unit_code = %s and period = %s",
                LATE,
            ).fetchone()
        _set_received(url, sid, "2025-06-20 10:00")
        _sync_loaded_at(url)
        run = run_quality(settings, as_of=dt.date(2025, 7, 2), run_id="offline-0702", send_digest=False)
        night1 = {p: p.stat().st_mtime_ns for p in (settings.data_docs / "validations").rglob("*.html")}
        # night 2: GX's validation again (the Checkpoint and its Data Docs, as the nightly run)
        with psycopg.connect(url) as conn:
            conn.execute("insert into audit.dq_runs (run_id, as_of) values ('offline-0703', '2025-07-03')")
        validate_with_gx(settings, "offline-0703", url)
        yield Site(settings=settings, url=url, run=run, night1_pages=night1)
    finally:
        drop_database(pg_admin_url, name)


@pytest.mark.slow
def test_no_page_of_the_nightly_site_loads_from_outside(site: Site) -> None:
    assert site.run.failed >= 1 and ("reporting_completeness", *LATE) in {
        (f.check_name, f.reporting_unit_code, f.period_code) for f in site.run.failures
    }
    pages = assert_self_contained(site.root)
    assert pages == 1 + NIGHTLY + 2 * NIGHTLY  # the index, one page per suite, one per suite per night
    assert (site.root / data_docs.STAMP).is_file()


@pytest.mark.slow
def test_a_later_night_rewrites_only_its_own_pages(site: Site) -> None:
    assert len(site.night1_pages) == NIGHTLY
    for page, mtime in site.night1_pages.items():
        assert page.stat().st_mtime_ns == mtime, f"{page}: rewritten by a later night"
    night2 = list((site.root / "validations").rglob("offline-0703/**/*.html"))
    assert len(night2) == len(site.night1_pages)
    assert "offline-0703" in (site.root / "index.html").read_text(encoding="utf-8")


# --------------------------------------------------------------------------- the browser, offline


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    chromium = ensure_chromium()
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(chromium), headless=True)
        try:
            yield b
        finally:
            b.close()


@dataclasses.dataclass
class Visit:
    page: Any
    blocked: list[str]  # requests that tried to leave file://, aborted by the route
    outside: list[str]  # every request not to file:// the page made (routed or not)
    files: list[str]  # file:// requests
    failed: list[str]
    errors: list[str]  # uncaught script errors and console errors


def _visit(browser: Any, path: Path, scheme: str = "light") -> Visit:
    context = browser.new_context(viewport={"width": 1600, "height": 1000}, color_scheme=scheme, locale="en-US")
    context.set_default_timeout(30_000)
    visit = Visit(context.new_page(), [], [], [], [], [])

    def route(r: Any) -> None:
        if r.request.url.startswith("file://"):
            r.continue_()
        else:
            visit.blocked.append(r.request.url)
            r.abort()

    context.route("**/*", route)
    page = visit.page
    page.on("request", lambda r: (visit.files if r.url.startswith("file://") else visit.outside).append(r.url))
    page.on("requestfailed", lambda r: visit.failed.append(r.url))
    page.on("pageerror", lambda e: visit.errors.append(str(e)))
    page.on("console", lambda m: visit.errors.append(m.text) if m.type == "error" else None)
    page.goto(path.as_uri(), wait_until="load")
    page.evaluate("document.fonts.ready.then(() => true)")
    return visit


def _assert_offline(visit: Visit, root: Path) -> None:
    assert visit.blocked == visit.outside == [], f"requests outside the site: {visit.blocked + visit.outside}"
    assert visit.failed == [] and visit.errors == [], (visit.failed, visit.errors)
    for url in visit.files:
        path = Path(unquote(urlparse(url).path)).resolve()
        assert path.is_relative_to(root.resolve()) and path.is_file(), url
    assert any("/static/vendor/bootstrap@4.3.1/" in u for u in visit.files)


def _screenshot_here(page: Any, name: str) -> Path:
    """A screenshot into the temporary folder only (the README shows the validation result's)."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / name
    page.screenshot(path=str(path), animations="disabled")
    assert path.stat().st_size > 40_000, f"{path}: an empty page?"
    return path


def _style(page: Any, selector: str, prop: str) -> str:
    return page.eval_on_selector(selector, f"e => getComputedStyle(e).getPropertyValue('{prop}')")


def _assert_styled_and_scripted(page: Any) -> None:
    # Bootstrap's CSS: the navbar is a sticky flex row, .pl-5 pads 3rem (a browser's default: 0)
    assert _style(page, "nav.navbar", "display") == "flex"
    assert _style(page, "nav.navbar", "position") == "sticky"
    assert _style(page, ".container-fluid.pl-5", "padding-left") == "48px"
    assert _style(page, "table.table", "border-collapse") == "collapse"
    # the scripts ran: jQuery and the plugins GX's inline scripts call
    assert page.evaluate("window.jQuery && jQuery.fn.jquery") == "3.7.1"
    assert page.evaluate("typeof jQuery.fn.bootstrapTable + typeof jQuery.fn.modal + typeof jQuery.fn.datepicker") == (
        "function" * 3
    )
    # Font Awesome's solid font loaded and drew the status icons
    assert page.evaluate("document.fonts.check('900 16px \"Font Awesome 6 Free\"')")
    assert _style(page, "i.fas", "font-family").startswith('"Font Awesome 6 Free"')
    assert page.evaluate("[...document.fonts].some(f => f.family.includes('Font Awesome') && f.status === 'loaded')")


@pytest.mark.slow
def test_the_index_loads_offline_styled_with_its_table(browser: Any, site: Site) -> None:
    visit = _visit(browser, site.root / "index.html")
    try:
        _assert_offline(visit, site.root)
        page = visit.page
        _assert_styled_and_scripted(page)
        # bootstrap-table (jQuery) turned GX's table into its widget: pages of 10, and its filter
        # control filters: "Failed" leaves the failing suite's two nights
        table = page.locator("#section-1-content-block-2-1-body-table")
        assert page.locator(".bootstrap-table .pagination-info").first.inner_text().strip() == (
            f"Showing 1 to 10 of {2 * NIGHTLY} rows"
        )
        page.locator(".bootstrap-table-filter-control-validation_success").first.select_option("Failed")
        page.wait_for_function("document.querySelector('.pagination-info').innerText.includes('of 2 rows')")
        rows = table.locator("tbody tr").all_inner_texts()
        assert [r.split("\t")[2:4] for r in rows] == [
            ["offline-0703", "reporting_completeness"],
            ["offline-0702", "reporting_completeness"],
        ]
        _screenshot_here(page, "data-docs-offline-index.png")
    finally:
        visit.page.context.close()


@pytest.mark.slow
@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_a_failing_validation_result_loads_offline(browser: Any, site: Site, scheme: str) -> None:
    page_path = site.validation_page("reporting_completeness", "offline-0702")
    visit = _visit(browser, page_path, scheme)
    try:
        _assert_offline(visit, site.root)
        page = visit.page
        _assert_styled_and_scripted(page)
        assert any(u.endswith("/static/images/logo-long.png") for u in visit.files)  # GX's logo, its copy
        assert page.locator("text=440881").count() >= 1  # the late unit, among the unexpected values
        assert page.locator("i.fa-times").count() >= 1  # a failed expectation's icon
        if scheme == "dark":  # bootstrap-dark's colours apply
            assert _style(page, "body", "background-color") not in ("rgb(255, 255, 255)", "rgba(0, 0, 0, 0)")
        else:  # the README's picture (with PAIRSTATS_UI_SCREENSHOTS=docs)
            _screenshot(page, "data-docs-offline.png")
    finally:
        visit.page.context.close()


@pytest.mark.slow
def test_the_harness_sees_a_cdn_request(browser: Any, site: Site, tmp_path: Path) -> None:
    """The control: the same page pointing back at jQuery's CDN is caught (aborted, recorded) and
    its scripts fail — so an empty ``blocked`` above means no request, not a blind harness."""
    page_path = site.validation_page("reporting_completeness", "offline-0702")
    html = page_path.read_text(encoding="utf-8")
    local = re.search(r'src="([^"]*jquery@3\.7\.1/dist/jquery\.min\.js)"', html).group(1)
    control = page_path.with_name("control-" + page_path.name)
    control.write_text(html.replace(local, "https://code.jquery.com/jquery-3.7.1.min.js"), encoding="utf-8")
    try:
        visit = _visit(browser, control)
        try:
            assert visit.blocked == visit.outside == ["https://code.jquery.com/jquery-3.7.1.min.js"]
            assert visit.page.evaluate("typeof window.jQuery") == "undefined" and visit.errors
        finally:
            visit.page.context.close()
    finally:
        control.unlink()
