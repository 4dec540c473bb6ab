"""Architectures of popular candidates, from their config.json numbers shipped with bakeoff.

`architecture_of(name)` takes a catalog name (mistral-7b, mixtral-8x7b ...), a local model folder, a
GGUF short name, or a cached hub id, and never needs weights or network.
"""

from __future__ import annotations

import os
from functools import lru_cache
from importlib.resources import files

import yaml
from transformers import AutoConfig

from bakeoff.efficiency.introspect import Architecture, impossible_value, introspect
from bakeoff.errors import ModelError
from bakeoff.models.sources import path_exists


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
    from bakeoff.models.sources import SHORT_NAMES, ConfigFileError, refuse_url, resolve_source

    if not name.strip():
        raise ModelError(f"the model name is empty. Catalog models: {', '.join(catalog())}")
    refuse_url(name)
    bare = "/" not in name and name not in SHORT_NAMES and not path_exists(name)
    if bare:  # a bare name is never a Hub id of today: a near miss of a catalog name comes first
        _refuse_near_miss(name)
    from huggingface_hub.errors import StrictDataclassError

    try:
        source = resolve_source(name)
        config = load_config(source, trust_remote_code)
    except ConfigFileError:
        raise
    except ModelError as err:
        if bare:
            raise ModelError(
                f"unknown model `{name}`: not a catalog name, a short name or a local folder, and Hub ids are "
                f"written ORG/NAME. Catalog models: {', '.join(catalog())}"
            ) from None
        if path_exists(name):  # a folder or file: the catalog is not what the user meant
            raise
        raise ModelError(f"{str(err).rstrip('.')}. Catalog models: {', '.join(catalog())}") from None
    except (StrictDataclassError, TypeError, ArithmeticError, AttributeError, KeyError) as err:
        # transformers' own checks of config.json values (types, hidden size vs heads...), raised while loading
        raise ModelError(f"{_where(name)}: {_last_line(err)}; fix the file or use another model") from None
    return _introspect_user_config(name, config)


def _introspect_user_config(name: str, config) -> Architecture:
    """A config from the user's disk: its numbers once transformers filled in defaults, then the meta model.

    Checked again after loading because transformers' defaults can combine with the file's numbers into a shape
    no model has (a 16-wide hidden size with the default 32 heads); whatever still fails to build is the
    file's doing, and is named as such instead of a traceback from deep inside transformers."""
    text = config.get_text_config()
    problem = impossible_value(text.to_dict())
    if problem:
        raise ModelError(f"{_where(name)}: {problem} (after transformers' defaults); fix the file")
    try:
        return introspect(config)
    except (RuntimeError, ValueError, TypeError, ArithmeticError, AttributeError, IndexError, KeyError) as err:
        raise ModelError(
            f"{_where(name)}: transformers cannot build the model it describes ({_last_line(err)}); "
            "fix the file or use another model"
        ) from None


def _refuse_near_miss(name: str) -> None:
    from bakeoff.models.sources import SHORT_NAMES, closest_names

    close = closest_names(name, [*catalog(), *(n for n in SHORT_NAMES if n not in catalog())])
    if close:
        also = f" (or `{close[1]}`)" if len(close) > 1 else ""
        raise ModelError(
            f"unknown model `{name}`: did you mean `{close[0]}`{also}? Catalog models: {', '.join(catalog())}"
        )


def _where(name: str) -> str:
    return os.path.join(name, "config.json") if path_exists(name) else f"the config.json of `{name}`"


def _last_line(err: Exception) -> str:
    lines = [line.strip() for line in str(err).strip().splitlines() if line.strip()]
    return lines[-1] if lines else type(err).__name__
