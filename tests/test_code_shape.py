"""Size and shape of the source (issue 35): no function over 80 lines, no module over 500 lines in src/bakeoff."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "bakeoff"
MAX_FUNCTION_LINES = 80
MAX_MODULE_LINES = 500


def test_no_long_functions_or_modules():
    offenders = []
    for path in sorted(SRC.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        where = path.relative_to(SRC.parent)
        if (lines := len(text.splitlines())) > MAX_MODULE_LINES:
            offenders.append(f"module {where}: {lines} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    offenders.append(f"function {where}:{node.lineno} {node.name}: {lines} lines")
    print("\n".join(offenders))
    assert offenders == [], f"split these (at most {MAX_FUNCTION_LINES} lines a function, {MAX_MODULE_LINES} a module)"
