"""YAML as the config is read: `yaml.safe_load`, except that a key written twice in one mapping is an error."""

from __future__ import annotations

from typing import Any

import yaml


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing a key written twice in one mapping.

    PyYAML keeps the last value of a repeated key without a word: `fields: {order_id: a, order_id: b}` became
    one field, and a second `training:` section silently replaced the first. Merge keys (`<<: *base`) may
    still be overridden, as YAML means them to be."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, Any] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.setdefault(key, key_node.start_mark)
                except TypeError:  # an unhashable key: PyYAML's own error says so
                    continue
                if first is not key_node.start_mark:
                    raise DuplicateKeyError(key, first, key_node.start_mark)
        return super().construct_mapping(node, deep=deep)


class DuplicateKeyError(yaml.YAMLError):
    def __init__(self, key: Any, first, again) -> None:
        self.key, self.first_line, self.problem_mark = key, first.line + 1, again
        self.problem = f"key `{key}` appears twice in one mapping (lines {first.line + 1} and {again.line + 1})"
        super().__init__(self.problem)


def yaml_load(text: str) -> Any:
    """YAML as `yaml.safe_load` reads it, except that a key repeated in one mapping is a DuplicateKeyError."""
    return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
