"""Architectures of popular candidates, from their config.json numbers shipped with bakeoff.

`architecture_of(name)` takes a catalog name (mistral-7b, mixtral-8x7b ...), a local model folder, a
GGUF short name, or a cached hub id, and never needs weights or network.
"""

from __future__ import annotations

from functools import lru_cache
from importlib.resources import files

import yaml
from transformers import AutoConfig

from bakeoff.efficiency.introspect import Architecture, introspect
from bakeoff.errors import ModelError


@lru_cache(maxsize=1)
def catalog() -> dict:
    return yaml.safe_load(files("bakeoff.efficiency").joinpath("catalog/models.yaml").read_text())


def catalog_config(name: str):
    fields = dict(catalog()[name]["config"])
    return AutoConfig.for_model(fields.pop("model_type"), **fields)


@lru_cache(maxsize=64)
def architecture_of(name: str, trust_remote_code: bool = False) -> Architecture:
    if name in catalog():
        return introspect(catalog_config(name))
    from bakeoff.models.load import load_config
    from bakeoff.models.sources import resolve_source

    try:
        return introspect(load_config(resolve_source(name), trust_remote_code))
    except ModelError as err:
        raise ModelError(f"{err}. Catalog models: {', '.join(catalog())}") from None
