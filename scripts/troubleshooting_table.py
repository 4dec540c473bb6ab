"""The docs' troubleshooting table from the real messages: runs every bad-input case of
tests/bad_inputs.py through the CLI and tabulates what bakeoff said and what to do about it.

    .venv/bin/python scripts/troubleshooting_table.py                                # print the table
    .venv/bin/python scripts/troubleshooting_table.py --write docs/troubleshooting.md # replace it in the page

Only cases with a `fix` are listed (one per kind of mistake); tests/test_bad_inputs.py runs them all.
"""

from __future__ import annotations

import re
import shutil
import sys
import tempfile
from pathlib import Path

from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from bad_inputs import CASES, base_config, write_config  # noqa: E402

from bakeoff.cli.main import app  # noqa: E402


def invoke(argv: list[str]) -> str:
    result = CliRunner().invoke(app, argv, env={"COLUMNS": "200", "HF_HUB_OFFLINE": "1"})
    return " ".join(result.output.split())


START = "<!-- troubleshooting-table:start -->"
END = "<!-- troubleshooting-table:end -->"


def table() -> list[str]:
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        finished = Path(scratch) / "finished"
        finished.mkdir()
        invoke(["run", str(write_config(finished, base_config(finished)))])
        rows.append("| what you did | what bakeoff says | what to do |")
        rows.append("| --- | --- | --- |")
        for number, case in enumerate(c for c in CASES if c.fix):
            folder = Path(scratch) / f"case{number}"
            folder.mkdir()
            if case.needs_run:
                shutil.copytree(finished, folder, dirs_exist_ok=True)
            said = invoke(case.make(folder)).removeprefix("error: ")
            said = re.sub(
                re.escape(str(folder)) + r"(/|\b)", lambda m: "" if m.group(1) == "/" else "FOLDER", said
            ).replace("|", "\\|")
            rows.append(f"| {case.id} | {said[:220] + ('...' if len(said) > 220 else '')} | {case.fix} |")
    return rows


def main(argv: list[str]) -> None:
    rows = table()
    if argv[:1] != ["--write"]:
        print("\n".join(rows))
        return
    page = Path(argv[1])
    text = page.read_text()
    before, rest = text.split(START, 1)
    after = rest.split(END, 1)[1]
    page.write_text(before + START + "\n" + "\n".join(rows) + "\n" + END + after)
    print(f"wrote {len(rows) - 2} rows into {page}")


if __name__ == "__main__":
    main(sys.argv[1:])
