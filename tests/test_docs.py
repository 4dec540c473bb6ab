"""The documentation: the README stays a short guide, the site builds strictly and works offline, and the
generated reference pages match the code they describe."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def _load_script(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_is_a_short_guide_that_links_to_the_docs():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 250
    for must in ("make demo", "make test", "## On a GPU", "## On a cluster", "Quickstart on your own CSV"):
        assert must in readme
    assert "sqrt(120/72) = 1.29x" in readme, "the demo's interval widths are stated"
    assert "~10 minutes there" in readme, "the demo's time aim is stated"
    assert not re.search(r"\d\d:\d\d UTC", readme), "no timestamps in the README"
    for target in re.findall(r"\]\(((?:docs/)?[\w./-]+\.md)(?:#[\w-]+)?\)", readme):
        assert (ROOT / target).exists(), f"README links to a missing file: {target}"


def test_readme_quickstart_config_is_a_valid_spec():
    from bakeoff.config import spec_from_dict

    readme = (ROOT / "README.md").read_text()
    config = readme.split("<<'YAML'\n", 1)[1].split("\nYAML\n", 1)[0]
    spec = spec_from_dict(yaml.safe_load(config))
    assert [c.name for c in spec.candidates][0] == "tfidf"


def test_every_docs_page_is_in_the_nav():
    nav = yaml.safe_load((ROOT / "mkdocs.yml").read_text().replace("!!python", "#"))["nav"]

    def pages(entries):
        for entry in entries:
            for value in entry.values():
                yield from pages(value) if isinstance(value, list) else [value]

    listed = set(pages(nav))
    on_disk = {str(p.relative_to(DOCS)) for p in DOCS.rglob("*.md")}
    assert on_disk == listed


def test_generated_reference_pages_are_current():
    """Fails when a config field or CLI option changed: run `.venv/bin/python scripts/docs_reference.py`."""
    docs_reference = _load_script("docs_reference")
    assert docs_reference.stale_pages() == []
    config_page = (DOCS / "reference" / "configuration.md").read_text()
    keys = ("`training.learning_rate`", "`runner.connect_timeout_s`", "`tracking.mlflow.uri`", "`candidates[].method`")
    for key in keys:
        assert key in config_page
    cli_page = (DOCS / "reference" / "cli.md").read_text()
    for command in ("bakeoff run", "bakeoff estimate", "bakeoff export mlflow", "bakeoff loadtest"):
        assert f"## `{command}`" in cli_page


def test_troubleshooting_page_holds_the_generated_table():
    """The table between the markers comes from scripts/troubleshooting_table.py (the real messages): one
    row per case with a fix in tests/bad_inputs.py."""
    sys.path.insert(0, str(ROOT / "tests"))
    from bad_inputs import CASES

    page = (DOCS / "troubleshooting.md").read_text()
    table = page.split("<!-- troubleshooting-table:start -->", 1)[1].split("<!-- troubleshooting-table:end -->")[0]
    rows = [line for line in table.strip().splitlines()[2:] if line.startswith("| ")]
    assert [row.split(" | ")[0].removeprefix("| ") for row in rows] == [case.id for case in CASES if case.fix]


class _ExternalResources(HTMLParser):
    """Collects URLs on another host that a page would load by itself (script, stylesheet, image, frame)."""

    LOADS = {"script": "src", "img": "src", "iframe": "src", "link": "href", "source": "src", "video": "src"}

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag, attrs):
        attribute = self.LOADS.get(tag)
        values = dict(attrs)
        if tag == "link" and values.get("rel") in ("canonical", "alternate"):
            return
        url = values.get(attribute) if attribute else None
        if url and re.match(r"(https?:)?//", url):
            self.found.append(f"<{tag} {attribute}={url}>")


@pytest.mark.integration
def test_site_builds_strictly_and_loads_nothing_from_the_network(tmp_path):
    """`mkdocs build --strict`: no broken link or anchor, no page outside the nav. The built site must open
    offline: no font, script, stylesheet or image from another host (plain links in text are fine)."""
    site = tmp_path / "site"
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "NO_MKDOCS_2_WARNING": "1", "HOME": str(tmp_path)},
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    pages = sorted(site.rglob("*.html"))
    assert len(pages) >= 15
    for page in pages:
        parser = _ExternalResources()
        parser.feed(page.read_text())
        assert parser.found == [], f"{page.relative_to(site)} loads {parser.found}"
    for stylesheet in site.rglob("*.css"):
        assert not re.search(r"@import\s+url\(\s*['\"]?https?:|fonts\.googleapis", stylesheet.read_text())


def test_task_types_examples_print_what_the_page_says():
    """The two library examples of the task-types page run and print the numbers the page shows."""
    import contextlib
    import io

    page = (DOCS / "task-types.md").read_text()
    section = page.split("## Extraction and generation: metrics", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert len(blocks) == 2
    for block in blocks:
        lines = block.splitlines()
        expected = [lines[i + 1][2:] for i, line in enumerate(lines[:-1]) if "print(" in line]
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            exec(compile(block, "docs/task-types.md", "exec"), {})
        assert printed.getvalue().splitlines() == expected


def test_measured_tables_come_from_committed_files_and_are_current():
    """Every table between `<!-- measured:NAME -->` markers is rendered from bench/results/NAME.json, which
    records the command, the date, the machine and its fp32 matmul peak. Fails when a file is missing or a
    table differs from its file: run `.venv/bin/python scripts/measurements.py render --write`."""
    measurements = _load_script("measurements")
    assert measurements.blocks(), "at least one docs table is rendered from a results file"
    assert measurements.missing_files() == []
    for _, name in measurements.blocks():
        data = json.loads((ROOT / "bench" / "results" / f"{name}.json").read_text())
        for key in ("command", "date", "machine", "fp32_matmul_peak", "result"):
            assert data.get(key), f"bench/results/{name}.json has no {key}"
        assert data["fp32_matmul_peak"]["before"]["gflops"] > 0
    assert measurements.stale_pages() == []


def test_pages_quoting_measurements_carry_their_markers():
    """The pages whose figures are measurements hold them between markers (so the test above checks them);
    a table pasted by hand into one of these places fails here."""
    measurements = _load_script("measurements")
    marked = {(page.relative_to(ROOT).as_posix(), name) for page, name in measurements.blocks()}
    for page, name in [
        ("README.md", "demo"),
        ("docs/getting-started.md", "demo"),
        ("docs/getting-started.md", "banking77"),
        ("docs/performance.md", "train_speed"),
        ("docs/performance.md", "score_speed"),
        ("docs/qlora.md", "real_shapes"),
        ("docs/cost-and-capacity.md", "published-points"),
        ("docs/task-types.md", "tickets-extraction"),
        ("docs/clusters.md", "ray_overhead"),
        ("docs/serving.md", "serve_batching"),
    ]:
        assert (page, name) in marked, f"{page} quotes {name} without its markers"


def test_published_points_file_matches_the_estimator_today():
    """bench/results/published-points.json is the estimator beside published figures: when the estimator
    changes, re-record it (`scripts/measurements.py record published-points --kind published -- python -m
    bakeoff.efficiency.reference --json`) so the docs' table says what the code estimates."""
    from bakeoff.efficiency.reference import compare

    stored = json.loads((ROOT / "bench" / "results" / "published-points.json").read_text())["result"]
    assert stored == json.loads(json.dumps(compare()))


def test_a_bench_envelope_renders_its_printed_table(tmp_path, monkeypatch):
    """bench/report.py keeps what a bench printed (a rich table) with the command, the machine and the fp32
    peak read before and after; scripts/measurements.py renders that table, markup removed and pipes escaped."""
    import sys

    from rich.console import Console
    from rich.table import Table

    measurements = _load_script("measurements")
    monkeypatch.setattr(measurements, "matmul_peak", lambda: {"gflops": 100.0, "threads": 2, "size": 2048})
    monkeypatch.setitem(sys.modules, "measurements", measurements)
    spec = importlib.util.spec_from_file_location("bench_report", ROOT / "bench" / "report.py")
    report = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(report)
    table = Table(title="speed")
    table.add_column("way")
    table.add_column("items/s")
    table.add_row("naive", "1.0")
    table.add_row("[bold]bakeoff[/bold] a|b", "4.0")
    out = tmp_path / "results" / "speed.json"
    data = report.write_json(Console(file=open(tmp_path / "log", "w")), out, {"ratio": 4.0}, table=table)
    stored = json.loads(out.read_text())
    assert stored == json.loads(json.dumps(data))
    assert stored["kind"] == "bench" and stored["result"] == {"ratio": 4.0}
    assert stored["fp32_matmul_peak"]["before"]["gflops"] == 100.0
    assert stored["table"]["rows"] == [["naive", "1.0"], ["bakeoff a|b", "4.0"]]
    rendered = measurements.RENDERERS["bench"](stored)
    assert "| bakeoff a\\|b | 4.0 |" in rendered and rendered.startswith("**speed**")
