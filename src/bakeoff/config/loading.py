"""From a YAML file to a validated `RunSpec`: reading the file, overrides, validation, errors that name the key
and the fix, and data paths relative to the config file."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from bakeoff.config.overrides import apply_overrides
from bakeoff.config.run import RunSpec
from bakeoff.config.task import TASK_CLASSES
from bakeoff.config.yaml_keys import DuplicateKeyError, yaml_load
from bakeoff.errors import ConfigError


def load_spec(path: Path, overrides: list[str] | None = None) -> RunSpec:
    """Read, override and validate a YAML run spec; errors name the key and the fix."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except IsADirectoryError:
        raise ConfigError(
            f"{path} is a folder; give the YAML config file inside it (e.g. {Path(path) / 'config.yaml'})"
        ) from None
    except OSError as err:
        raise ConfigError(f"cannot read the config {path} ({err.strerror})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    try:
        raw = yaml_load(text)
    except DuplicateKeyError as err:
        raise ConfigError(
            f"{path}: line {err.problem_mark.line + 1}: key `{err.key}` is written twice in one mapping "
            f"(first on line {err.first_line}); YAML would keep only the last: keep one"
        ) from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{path}:{where}: malformed YAML ({getattr(err, 'problem', err)})") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of settings at the top level, got {type(raw).__name__}")
    raw = apply_overrides(raw, overrides or [])
    spec = spec_from_dict(raw, source=str(path))
    return _resolve_paths(spec, Path(path).parent)


def spec_from_dict(raw: dict[str, Any], source: str = "config") -> RunSpec:
    try:
        return RunSpec.model_validate(raw)
    except ValidationError as err:
        lines = [explain_error(e) for e in err.errors()]
        if len(lines) > 2:  # at most three lines in all: the first problem, then the rest on one line
            lines = [lines[0], f"and {len(lines) - 1} more: " + "; ".join(lines[1:])]
        raise ConfigError(f"{source}: invalid config\n  " + "\n  ".join(lines)) from None


def explain_error(error: dict[str, Any]) -> str:
    """One pydantic error as one line: the key as the user wrote it, then what is wrong and the fix."""
    loc = _as_written(error["loc"])
    key = ".".join(_key_text(part) for part in loc) or "(top level)"
    if error["type"] == "extra_forbidden":
        parent_model = _model_at(error["loc"][:-1])
        field = _key_text(loc[-1])
        known = list(parent_model.model_fields) if parent_model else []
        close = difflib.get_close_matches(field, known, n=1)
        hint = f"did you mean `{close[0]}`?" if close else f"known keys here: {', '.join(known)}"
        return f"{key}: unknown key; {hint}"
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "value_error" and (not loc or message.lstrip("`").startswith(key)):
        return message  # a rule across keys names them itself (`task.fields: ...`, `decision.gpu ...`)
    return f"{key}: {message}"


def _as_written(loc: tuple) -> tuple:
    """The location without the task type's tag pydantic adds (`task.extraction.fields` is `task.fields`)."""
    tagged = len(loc) > 1 and loc[0] == "task" and loc[1] in TASK_CLASSES
    return (loc[0], *loc[2:]) if tagged else loc


def _key_text(part: Any) -> str:
    """A key as typed, or quoted when it holds line breaks or other invisible characters."""
    text = str(part)
    return text if text and text.isprintable() and text.strip() == text else repr(text)


def _model_at(loc: tuple) -> type[BaseModel] | None:
    """The spec class that sits at a location of the tree (list indices skipped; under `task`, the class of
    the task type pydantic's tag names)."""
    model: type[BaseModel] = RunSpec
    for depth, part in enumerate(loc):
        if isinstance(part, int) or (depth == 1 and loc[0] == "task" and part in TASK_CLASSES):
            continue
        if model is RunSpec and part == "task":
            model = TASK_CLASSES[loc[1] if len(loc) > 1 and loc[1] in TASK_CLASSES else "classification"]
            continue
        field = model.model_fields.get(str(part))
        if field is None:
            return None
        annotation = field.annotation
        for candidate in (annotation, *getattr(annotation, "__args__", ())):
            inner = getattr(candidate, "__args__", (candidate,))
            found = next((a for a in (candidate, *inner) if isinstance(a, type) and issubclass(a, BaseModel)), None)
            if found:
                model = found
                break
        else:
            return None
    return model


def _resolve_paths(spec: RunSpec, base: Path) -> RunSpec:
    """Data paths in a YAML file are relative to that file, so configs work from any folder."""
    data = spec.task.data
    if data is None:
        return spec

    def fix(p: Path | None) -> Path | None:
        return p if p is None or p.is_absolute() else (base / p).resolve()

    files = [
        key for key in ("path", "test_path", "validation_path", "out_of_scope_path") if key in type(data).model_fields
    ]
    data = data.model_copy(
        update={
            **{key: fix(getattr(data, key)) for key in files},
            # A local dataset folder under `hub:` is relative to the config file too; a Hub id stays as written.
            "hub": str((base / data.hub).resolve()) if data.hub and (base / data.hub).is_dir() else data.hub,
        }
    )
    return spec.model_copy(update={"task": spec.task.model_copy(update={"data": data})})
