"""Dotted `key=value` overrides from the command line, applied to the raw config before it is validated."""

from __future__ import annotations

from typing import Any

import yaml

from bakeoff.config.yaml_keys import DuplicateKeyError, yaml_load
from bakeoff.errors import ConfigError


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply dotted `key=value` overrides (values parsed as YAML) to a raw config dict.

    Every failure names the override, since that is what the user typed."""
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override `{item}` is not key=value (e.g. training.epochs=2)")
        dotted, value_text = item.split("=", 1)
        keys = [key.strip() for key in dotted.strip().split(".")]
        if not all(keys):
            raise ConfigError(f"override `{item}`: `{dotted}` is not a dotted key (e.g. training.epochs=2)")
        try:
            value = yaml_load(value_text)
        except DuplicateKeyError as err:
            raise ConfigError(
                f"override `{item}`: key `{err.key}` appears twice in the value; YAML would keep only the last, "
                "so write it once"
            ) from None
        except yaml.YAMLError as err:
            raise ConfigError(
                f"override `{item}`: the value is not valid YAML "
                f"({getattr(err, 'problem', None) or err}); "
                "quote it, e.g. key='text'"
            ) from None
        node: Any = raw
        for depth, key in enumerate(keys[:-1]):
            if isinstance(node, list):
                node = node[_list_index(node, key, dotted)]
            else:
                if node.get(key) is None:  # absent, or an empty YAML section (`training:`)
                    node[key] = {}
                node = node[key]
            if not isinstance(node, (dict, list)):
                parent = ".".join(keys[: depth + 1])
                raise ConfigError(
                    f"override `{item}`: `{parent}` is a single value ({node!r}), not a section with keys"
                )
        if isinstance(node, list):
            node[_list_index(node, keys[-1], dotted)] = value
        else:
            node[keys[-1]] = value
    return raw


def _list_index(node: list, key: str, dotted: str) -> int:
    if not key.isdigit() or int(key) >= len(node):
        raise ConfigError(f"override `{dotted}`: `{key}` is not an index of a list of {len(node)}")
    return int(key)
