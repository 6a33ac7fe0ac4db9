"""GX Data Docs that work offline: the site serves its own copies of the CSS, scripts and fonts
that GX's pages load from CDNs.

GX 1.x's page templates (``great_expectations/render/view/templates``: ``page.j2``,
``index_page.j2``, ``js_script_imports.j2``, ``top_navbar.j2``) hard-code Bootstrap,
bootstrap-table, jQuery, Popper, bootstrap-datepicker, bootstrap-dark, Font Awesome and vega from
public CDNs, and the logo from GX's S3 bucket. GX has no setting for this: a plugin's
``custom_data_docs/views`` can add templates but not replace these (GX's own loader comes first).
On a server without the Internet the pages showed unstyled, without the tables' sorting and filters.

``make_offline(site)`` runs after each Data Docs build (``quality_gx.validate_with_gx``):

1. The files of ``ingestion/data/data_docs_static`` (npm releases at the versions the templates
   name, each listed with its sha256 in the folder's MANIFEST, licences beside them) are copied
   into ``<site>/static/vendor/`` (only when missing or changed).
2. Every page written since the previous pass is rewritten in place:

   - each CDN URL of the MANIFEST becomes the relative path of its copy, and the tag loses
     ``integrity``/``crossorigin`` (a page opened from ``file://`` cannot make a CORS request; the
     copies are checked against the MANIFEST instead, and are the bytes GX's sha384 pins);
   - GX's S3 logo (with its tracking query) becomes GX's own copy under ``static/images``;
   - the favicon link of a validation page (one ``../`` short in GX's template) points into the site;
   - the vega scripts are removed: only a chart needs them (``expect_column_kl_divergence_…``,
     ``expect_column_distinct_values_to_be_in_set``), the nightly suites render none, and copying
     vega (830 kB) for no page is not worth it. A page that does have a chart is logged.

3. An external asset reference left over (say a GX upgrade adds one) is logged as a warning;
   ``tests/test_data_docs_offline.py`` fails on it.

Plain links (``<a href="https://greatexpectations.io">``) stay: they load nothing.

The site keeps every night, so a pass reads only the pages written since the previous pass began
(``static/vendor/.offline``); a new MANIFEST, or a site without that stamp, rewrites every page.
Rewriting is idempotent.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import re
import shutil
import time
from pathlib import Path

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "data" / "data_docs_static"
VENDOR = "static/vendor"  # inside the site
STAMP = "static/vendor/.offline"  # "<start of the last pass, ns> <sha256 of the MANIFEST>"

GX_IMAGES = "https://great-expectations-web-assets.s3.us-east-2.amazonaws.com/"
# GX's S3 images -> its copies that the site builder puts in static/images (there is no dark logo)
GX_IMAGE_COPIES = {"logo-long.png": "logo-long.png", "full_logo_dark.png": "logo-long.png"}
CHART_SCRIPTS = frozenset(
    {
        "https://cdn.jsdelivr.net/npm/vega@5",
        "https://cdn.jsdelivr.net/npm/vega-lite@5",
        "https://cdn.jsdelivr.net/npm/vega-embed@6",
    }
)

_TAG = re.compile(r"<(script|link|img)\b[^>]*>", re.IGNORECASE)
_URL_ATTR = re.compile(r'(\s(?:src|href)=")([^"]*)(")', re.IGNORECASE)
_SRI = re.compile(r'\s(?:integrity|crossorigin)="[^"]*"', re.IGNORECASE)
_CHART_SCRIPT = re.compile(r'[ \t]*<script\b[^>]*\ssrc="([^"]+)"[^>]*>\s*</script>[ \t]*\n?', re.IGNORECASE)
_CSS_URL = re.compile(r"""url\((['"]?)([^'")]*)\1\)""", re.IGNORECASE)
_EXTERNAL = re.compile(r"^\s*(?:https?:)?//", re.IGNORECASE)


@dataclasses.dataclass(frozen=True)
class Asset:
    """One vendored file: its path under ``STATIC`` (and under the site's ``static/vendor``)."""

    path: str
    size: int
    sha256: str
    url: str | None  # the CDN URL GX's pages name, None for a file a CSS file beside it loads


@dataclasses.dataclass
class OfflinePass:
    """What ``make_offline`` did to a site."""

    pages_read: int = 0
    pages_rewritten: int = 0
    assets_copied: int = 0
    external: dict[str, list[str]] = dataclasses.field(default_factory=dict)  # page -> references left
    charts: list[str] = dataclasses.field(default_factory=list)  # pages whose chart cannot render


def manifest(folder: Path = STATIC) -> list[Asset]:
    """The ``file`` lines of the folder's MANIFEST (tab-separated: path, bytes, sha256, URL or -)."""
    assets = []
    for line in (folder / "MANIFEST").read_text(encoding="utf-8").splitlines():
        if line.startswith("file\t"):
            _, path, size, sha256, url = line.split("\t")
            assets.append(Asset(path, int(size), sha256, None if url == "-" else url))
    return assets


def cdn_map(assets: list[Asset]) -> dict[str, str]:
    """CDN URL -> the path of its copy, relative to the site's root."""
    return {a.url: f"{VENDOR}/{a.path}" for a in assets if a.url}


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def copy_assets(site: Path, folder: Path = STATIC) -> int:
    """The vendored files (and their licences) into ``<site>/static/vendor``; returns how many
    were written. A packaged file that does not match its MANIFEST line raises."""
    assets = {a.path: a for a in manifest(folder)}
    sources = {p.relative_to(folder).as_posix(): p for p in folder.rglob("*") if p.is_file()}
    missing = set(assets) - set(sources)
    if missing:
        raise RuntimeError(f"{folder}: files of the MANIFEST missing: {sorted(missing)}")
    copied = 0
    for rel, source in sorted(sources.items()):
        asset = assets.get(rel)
        if asset and (source.stat().st_size != asset.size or _sha256(source) != asset.sha256):
            raise RuntimeError(f"{source}: not the file its MANIFEST line names (size or sha256 differs)")
        target = site / VENDOR / rel
        if target.is_file() and target.read_bytes() == source.read_bytes():
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        copied += 1
    return copied


def rewrite_page(html: str, prefix: str, urls: dict[str, str]) -> str:
    """One page with local references: ``prefix`` leads from the page to the site's root
    (``""`` for index.html, ``"../../../../"`` for a validation result)."""

    def chart_script(m: re.Match[str]) -> str:
        return "" if m.group(1) in CHART_SCRIPTS else m.group(0)

    def local(url: str) -> str | None:
        if url in urls:
            return prefix + urls[url]
        if url.startswith(GX_IMAGES):
            name = url[len(GX_IMAGES) :].split("?", 1)[0]
            if name in GX_IMAGE_COPIES:
                return f"{prefix}static/images/{GX_IMAGE_COPIES[name]}"
        return None

    def tag(m: re.Match[str]) -> str:
        text = m.group(0)
        found = _URL_ATTR.search(text)
        if not found:
            return text
        url = found.group(2)
        if m.group(1).lower() == "link" and url.endswith("static/images/favicon.ico"):
            target = f"{prefix}static/images/favicon.ico"
        else:
            target = local(url)
        if target is None or target == url:
            return text
        text = text[: found.start(2)] + target + text[found.end(2) :]
        return _SRI.sub("", text) if url in urls else text

    def css_url(m: re.Match[str]) -> str:
        target = local(m.group(2))
        return m.group(0) if target is None else f"url({m.group(1)}{target}{m.group(1)})"

    html = _CHART_SCRIPT.sub(chart_script, html)
    html = _TAG.sub(tag, html)
    return _CSS_URL.sub(css_url, html)


def external_assets(html: str) -> list[str]:
    """The references of a page that would load something from outside: a script's or image's
    ``src``, a ``<link>``'s ``href`` (stylesheet, icon, preload), a CSS ``url(…)``."""
    found = []
    for m in _TAG.finditer(html):
        for attr in _URL_ATTR.finditer(m.group(0)):
            if _EXTERNAL.match(attr.group(2)):
                found.append(attr.group(2))
    found += [m.group(2) for m in _CSS_URL.finditer(html) if _EXTERNAL.match(m.group(2))]
    return found


def _manifest_digest(folder: Path) -> str:
    return _sha256(folder / "MANIFEST")


def _since(site: Path, digest: str) -> int:
    """Pages written from this time on (ns) need a pass: the start of the previous pass, or 0
    (every page) when there was none, the MANIFEST changed, or the clock went back."""
    try:
        started, seen = (site / STAMP).read_text(encoding="utf-8").split()
        started_ns = int(started)
    except (OSError, ValueError):
        return 0
    return started_ns if seen == digest and started_ns <= time.time_ns() else 0


def make_offline(site: Path, folder: Path = STATIC) -> OfflinePass:
    """Copy the vendored assets into the Data Docs site at ``site`` and point the pages written
    since the previous pass at them (see the module's doc)."""
    started = time.time_ns()
    digest = _manifest_digest(folder)
    since = _since(site, digest)
    urls = cdn_map(manifest(folder))
    result = OfflinePass(assets_copied=copy_assets(site, folder))
    for page in sorted(site.rglob("*.html")):
        rel = page.relative_to(site)
        if rel.parts[0] == "static" or page.stat().st_mtime_ns < since:
            continue
        result.pages_read += 1
        html = page.read_text(encoding="utf-8")
        new = rewrite_page(html, "../" * (len(rel.parts) - 1), urls)
        if new != html:
            tmp = page.with_name(page.name + ".offline-tmp")
            tmp.write_text(new, encoding="utf-8")
            os.replace(tmp, page)
            result.pages_rewritten += 1
        left = external_assets(new)
        if left:
            result.external[rel.as_posix()] = left
        if "vegaEmbed(" in new:
            result.charts.append(rel.as_posix())
    for page, left in result.external.items():
        log.warning("Data Docs page %s still loads from outside the site: %s", page, ", ".join(left))
    if result.charts:
        log.warning("Data Docs pages with a chart, which needs vega (not served offline): %s", ", ".join(result.charts))
    (site / STAMP).write_text(f"{started} {digest}\n", encoding="utf-8")
    return result
