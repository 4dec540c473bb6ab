"""The docs site and bakeoff's report.html, opened in a real browser: headless Chromium driven by Playwright.

What a reader sees is checked where a string test cannot: no console error or failed load, nothing fetched
from another machine (file:// only, or the 127.0.0.1 server a test starts itself), every plot drawn with a
size, every nav link landing on a page (and an anchor) that exists, and search answering when the site is
served.

Needs Debian's `chromium` (apt-get install -y chromium) and the `playwright` package. Playwright drives
/usr/bin/chromium through `executable_path`, so `playwright install` (a browser download) is never needed.
Without either, these tests skip and say which is missing; under CI=true they fail instead, so a CI
machine without a browser cannot pass them silently.
"""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import subprocess
import sys
import threading
import warnings
from pathlib import Path
from urllib.parse import urldefrag, urlparse

import pytest
import yaml

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[1]

# Chromium's own background traffic (updates, sync, field trials) is switched off: a closed network refuses
# it, and it would show up as requests the page did not make.
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LOCAL_SCHEMES = ("file:", "data:", "blob:", "about:")


def _skip_or_fail(reason: str) -> None:
    """Fail under CI=true; elsewhere skip, with a warning too, since pytest's summary lists warnings but not
    skip reasons unless run with -rs."""
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    warnings.warn(reason, stacklevel=2)
    pytest.skip(reason)


def _missing_browser() -> str | None:
    """Why the browser checks cannot run here, or None when they can."""
    missing = []
    if not (shutil.which("chromium") or shutil.which("chromium-browser")):
        missing.append("no Chromium (apt-get install -y chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("no playwright package (pip install playwright==1.65.2)")
    return "browser checks not run: " + " and ".join(missing) if missing else None


class Browser:
    """One Chromium profile for the module. `open` loads a page and lists what went wrong while it loaded."""

    def __init__(self, context) -> None:
        self.context = context
        self.allowed_origins: set[str] = set()  # http://127.0.0.1:PORT of servers the tests start
        self.off_machine: list[str] = []
        context.on("request", self._note_request)
        context.route(lambda url: not self._is_local(url), lambda route: route.abort())

    def _is_local(self, url: str) -> bool:
        parsed = urlparse(url)
        return url.startswith(LOCAL_SCHEMES) or f"{parsed.scheme}://{parsed.netloc}" in self.allowed_origins

    def _note_request(self, request) -> None:
        if not self._is_local(request.url):
            self.off_machine.append(request.url)

    def open(self, url: str, settle_ms: int = 200):
        """(page, problems): console errors, uncaught exceptions and failed loads, in the order they came."""
        page = self.context.new_page()
        problems: list[str] = []
        page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
        page.on("pageerror", lambda error: problems.append(f"uncaught: {error}"))
        page.on("requestfailed", lambda r: problems.append(f"failed to load {r.url}: {r.failure}"))
        page.goto(url, wait_until="load")
        page.wait_for_timeout(settle_ms)  # scripts that run after load (the theme's) get to report too
        return page, problems


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    reason = _missing_browser()
    if reason:
        _skip_or_fail(reason)
    from playwright.sync_api import sync_playwright

    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),  # a new, empty profile
            executable_path=executable,
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport={"width": 1280, "height": 900},
        )
        opened = Browser(context)
        yield opened
        context.close()
    assert opened.off_machine == [], f"requests left the machine: {opened.off_machine}"


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    reason = _missing_browser()
    if reason:
        _skip_or_fail(reason)
    folder = tmp_path_factory.mktemp("docs") / "site"
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(folder)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "NO_MKDOCS_2_WARNING": "1", "HOME": str(folder.parent)},
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return folder


def _nav_pages() -> set[str]:
    nav = yaml.safe_load((ROOT / "mkdocs.yml").read_text())["nav"]

    def pages(entries):
        for entry in entries:
            for value in entry.values():
                yield from pages(value) if isinstance(value, list) else [value]

    return {page.removesuffix(".md") + ".html" for page in pages(nav)}


NAV_LINKS = "Array.from(document.querySelectorAll('nav.md-nav--primary a.md-nav__link[href]')).map(a => a.href)"
HAS_ANCHOR = "id => document.getElementById(decodeURIComponent(id)) !== null"
HAS_TITLE = "() => (document.querySelector('article h1')?.textContent || '').trim().length > 0"


def test_every_page_of_the_site_opens_from_disk_cleanly_and_its_nav_links_resolve(browser, site):
    """From site/index.html, opened as a file (as the docs tell readers to): every page the nav links to opens
    with a title, no console error and no failed load; every nav anchor exists on its page."""
    to_visit = [(site / "index.html").as_uri()]
    visited: set[str] = set()
    anchors: dict[str, set[str]] = {}  # page URL -> the anchors nav links point to on it
    while to_visit:
        url = to_visit.pop()
        if url in visited:
            continue
        visited.add(url)
        page, problems = browser.open(url)
        assert problems == [], f"{url}: {problems}"
        assert page.evaluate(HAS_TITLE), f"{url} has no title"
        for link in page.evaluate(NAV_LINKS):
            target, anchor = urldefrag(link)
            assert target.startswith(site.as_uri()), f"{url}: nav link leaves the site: {link}"
            assert Path(urlparse(target).path).is_file(), f"{url}: nav link to a missing page: {link}"
            to_visit.append(target)
            if anchor:
                anchors.setdefault(target, set()).add(anchor)
        page.close()
    for target, names in anchors.items():
        page, _ = browser.open(target, settle_ms=0)
        for anchor in names:
            assert page.evaluate(HAS_ANCHOR, anchor), f"nav link to a missing anchor: {target}#{anchor}"
        page.close()
    pages = {str(Path(urlparse(url).path).relative_to(site)) for url in visited}
    assert pages == _nav_pages(), "the nav reaches exactly the pages of mkdocs.yml"


@pytest.fixture
def served_site(browser, site):
    """The built site on a 127.0.0.1 port: the way `make docs-serve` or any static server shows it."""
    handler = functools.partial(QuietHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    origin = f"http://127.0.0.1:{server.server_address[1]}"
    browser.allowed_origins.add(origin)
    yield origin
    browser.allowed_origins.discard(origin)
    server.shutdown()
    server.server_close()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the base class's signature
        pass


def test_search_finds_pages_when_the_site_is_served(browser, served_site):
    """Served over HTTP, the search box answers from the built index. (Opened from disk, the theme hides the
    search box: browsers do not start its worker from file://. docs/index.md says so.)"""
    page, problems = browser.open(f"{served_site}/index.html", settle_ms=1000)  # the index loads after the page
    page.click("input.md-search__input")
    page.keyboard.type("QLoRA")
    page.wait_for_selector(".md-search-result__item", timeout=10_000)
    titles = page.locator(".md-search-result__item").all_inner_texts()
    assert any("QLoRA" in title for title in titles), titles
    assert problems == []
    page.close()


# Every inline SVG: its box on the page, and the box of what is drawn inside it (zero when it draws nothing).
SVG_SIZES = """Array.from(document.querySelectorAll('svg')).map(svg => {
  const box = svg.getBoundingClientRect(); const drawn = svg.getBBox();
  return {label: svg.getAttribute('aria-label') || svg.closest('section, div')?.querySelector('h2, h3')?.textContent
          || '', width: box.width, height: box.height, drawn_width: drawn.width, drawn_height: drawn.height};
})"""


def _check_report(browser, report: Path, min_plots: int) -> None:
    page, problems = browser.open(report.as_uri())
    assert problems == [], f"{report}: {problems}"
    plots = page.evaluate(SVG_SIZES)
    assert len(plots) == report.read_text().count("<svg") >= min_plots
    for plot in plots:
        assert plot["width"] > 0 and plot["height"] > 0, f"a plot with no size on the page: {plot}"
        assert plot["drawn_width"] > 0 and plot["drawn_height"] > 0, f"a plot that draws nothing: {plot}"
    page.close()


@pytest.mark.parametrize("kind", ["classification", "extraction", "generation"])
def test_report_from_recorded_results_renders_its_plots(browser, tmp_path, kind):
    from decision_fixture import results, typed
    from task_fixture import extraction_results, generation_results

    from bakeoff.decision.engine import recommend
    from bakeoff.report.html import render

    stored = {"classification": results, "extraction": extraction_results, "generation": generation_results}[kind]()
    report = tmp_path / "report.html"
    report.write_text(render(typed(stored), recommend(typed(stored))))
    _check_report(browser, report, min_plots={"classification": 5}.get(kind, 1))


def test_report_of_a_real_run_renders_its_plots(browser, tmp_path):
    """A real (small, baseline-only: seconds) run, its report rebuilt by `bakeoff.report.build.build`."""
    from run_fixture import make_run

    from bakeoff.report.build import build

    run_dir = make_run(tmp_path / "run", [{"name": "tfidf", "model": "tfidf-logreg"}], [20, 60])
    build(run_dir)
    _check_report(browser, run_dir / "report.html", min_plots=3)
