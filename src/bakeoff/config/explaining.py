"""`bakeoff validate CONFIG --explain`: the resolved spec as YAML, each setting under its description."""

from __future__ import annotations

import yaml
from pydantic import BaseModel


def explain(spec: BaseModel, indent: int = 0) -> list[str]:
    """The resolved spec as YAML lines, each setting preceded by its description as a comment
    (`bakeoff validate CONFIG --explain`): what every key means and what value it took."""
    lines = []
    pad = "  " * indent
    values = spec.model_dump(mode="json")  # paths as strings, nested specs as mappings: YAML-ready
    for name, field in type(spec).model_fields.items():
        value = getattr(spec, name)
        if field.description:
            lines.append(f"{pad}# {field.description}")
        if isinstance(value, BaseModel):
            lines += [f"{pad}{name}:", *explain(value, indent + 1)]
        elif isinstance(value, list) and value and isinstance(value[0], BaseModel):
            lines.append(f"{pad}{name}:")
            for item in value:
                item_lines = explain(item, indent + 2)
                first = next(i for i, line in enumerate(item_lines) if not line.lstrip().startswith("#"))
                item_lines[first] = f"{pad}  - " + item_lines[first].lstrip()
                lines += item_lines
        else:
            dumped = yaml.safe_dump(
                {name: values[name]}, default_flow_style=True, width=10_000, sort_keys=False
            ).strip()
            lines.append(f"{pad}{dumped[1:-1] if dumped.startswith('{') else dumped}")
    return lines
