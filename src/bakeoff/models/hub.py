"""Fetch a candidate's model from the Hugging Face Hub on first use, into the local Hugging Face cache.

Every comparable tool (LLaMA-Factory, Axolotl, torchtune, lm-eval) downloads a Hub id it does not have;
a Ray worker must too, or a missing model is a failed trial. All network work goes through
`huggingface_hub` (listing, download, resume, progress bars, auth); this module only decides *which*
files loading needs, checks the disk before writing, holds a per-node lock so parallel trials download
once, and turns the library's errors into one line the user can act on.

Offline (`--offline` or HF_HUB_OFFLINE=1) nothing here is called: sources resolve from the cache only.
The token comes from HF_TOKEN (or a saved `hf auth login`); it is handed to huggingface_hub and never
printed, logged or stored.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from bakeoff.errors import ModelError
from bakeoff.models.sources import ModelSource, hub_cache_dir

LISTING_TIMEOUT_S = 10.0  # model_info / HEAD: `validate` must answer within 30 s with no network
# Root files loading needs besides the weights: config, generation config, tokenizer (json, sentencepiece
# .model, BPE merges/vocab .txt, tiktoken) and the safetensors / pickle index files.
CONFIG_SUFFIXES = (".json", ".model", ".txt", ".tiktoken")
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt")


@dataclass(frozen=True)
class HubFile:
    name: str
    size_bytes: int


@dataclass(frozen=True)
class HubListing:
    """A repo at one commit: what the Hub lists, before anything is downloaded."""

    repo_id: str
    commit_sha: str
    files: tuple[HubFile, ...]
    gated: bool


@dataclass(frozen=True)
class DownloadPlan:
    """The files loading needs, and how many bytes of them are not in the cache yet."""

    listing: HubListing
    files: tuple[HubFile, ...]
    missing_bytes: int

    @property
    def total_bytes(self) -> int:
        return sum(f.size_bytes for f in self.files)


def endpoint() -> str:
    """The Hub (or mirror) to talk to: HF_ENDPOINT read now, not at import, so tests and mirrors can set it."""
    from huggingface_hub import constants

    return (os.environ.get("HF_ENDPOINT") or constants.ENDPOINT).rstrip("/")


def _token() -> str | None:
    # None lets huggingface_hub fall back to a saved `hf auth login`. Never put this value in a message.
    return os.environ.get("HF_TOKEN") or None


def list_repo(repo_id: str, revision: str | None) -> HubListing:
    """The repo's files with their sizes and the commit `revision` resolves to (one metadata call)."""
    from huggingface_hub import HfApi

    try:
        info = HfApi(endpoint=endpoint(), token=_token()).model_info(
            repo_id, revision=revision, files_metadata=True, timeout=LISTING_TIMEOUT_S
        )
    except Exception as err:  # noqa: BLE001 - mapped to one line, or re-raised when it is not the Hub's
        raise hub_error(err, repo_id, revision) from None
    files = tuple(HubFile(s.rfilename, int(s.size or 0)) for s in info.siblings or [])
    return HubListing(repo_id, str(info.sha), files, bool(info.gated))


def needed_files(listing: HubListing, gguf_file: str | None, allow_pickle: bool, trust_remote_code: bool, who: str):
    """Only what `from_pretrained` reads: root config/tokenizer files and one set of weights.

    Safetensors when the repo has them (Mistral's native `consolidated.*` copy and subfolders such as
    `original/` are skipped: loading never reads them, and they double a 7B download); pickle weights
    only with `allow_pickle`; a GGUF source fetches its one .gguf file."""
    root = [f for f in listing.files if "/" not in f.name]
    config = [f for f in root if f.name.endswith(CONFIG_SUFFIXES)]
    code = [f for f in root if f.name.endswith(".py")] if trust_remote_code else []
    if gguf_file is not None:
        weights = [f for f in listing.files if f.name == gguf_file]
        if not weights:
            raise ModelError(f"{who}: `{listing.repo_id}` has no file `{gguf_file}`; check `gguf_file`")
        return tuple(config + code + weights)
    safe = [f for f in root if f.name.endswith(".safetensors") and not f.name.startswith("consolidated")]
    pickled = [f for f in root if f.name.endswith(PICKLE_SUFFIXES) and not f.name.startswith("consolidated")]
    if safe:
        weights = safe
    elif pickled and allow_pickle:
        weights = pickled
    elif pickled:
        raise ModelError(
            f"{who}: `{listing.repo_id}` has only pickle weights (.bin), which can run code when loaded; set "
            "`allow_pickle: true` on this candidate if you trust the repo"
        )
    else:
        raise ModelError(
            f"{who}: `{listing.repo_id}` has no safetensors or .bin weights at its root; if it ships GGUF "
            "files, set `gguf_file`"
        )
    return tuple(config + code + weights)


def plan_download(
    repo_id: str, revision: str | None, gguf_file: str | None, allow_pickle: bool, trust_remote_code: bool, who: str
) -> DownloadPlan:
    """List the repo and work out what a first use would download; downloads nothing."""
    listing = list_repo(repo_id, revision)
    files = needed_files(listing, gguf_file, allow_pickle, trust_remote_code, who)
    missing = sum(f.size_bytes for f in files if not _cached(repo_id, listing.commit_sha, f.name))
    return DownloadPlan(listing, files, missing)


def _cached(repo_id: str, commit_sha: str, filename: str) -> bool:
    from huggingface_hub import try_to_load_from_cache

    return isinstance(try_to_load_from_cache(repo_id, filename, cache_dir=hub_cache_dir(), revision=commit_sha), str)


def check_disk(plan: DownloadPlan, who: str) -> None:
    """Refuse before writing anything when the cache's disk cannot hold the files still to download."""
    folder = Path(hub_cache_dir())
    existing = next(p for p in (folder, *folder.absolute().parents) if p.exists())
    free_bytes = shutil.disk_usage(existing).free
    if plan.missing_bytes > free_bytes:
        raise ModelError(
            f"{who}: `{plan.listing.repo_id}` needs {_gb(plan.missing_bytes)} more in the Hugging Face cache "
            f"({folder}) but its disk has {_gb(free_bytes)} free; free space or point HF_HUB_CACHE at a larger disk"
        )


def check_access(plan: DownloadPlan, who: str) -> None:
    """A HEAD request on config.json: a gated repo answers 401/403 here, before any download is planned."""
    from huggingface_hub import get_hf_file_metadata, hf_hub_url

    first = next((f.name for f in plan.files if f.name == "config.json"), plan.files[0].name)
    url = hf_hub_url(plan.listing.repo_id, first, revision=plan.listing.commit_sha, endpoint=endpoint())
    try:
        get_hf_file_metadata(url, token=_token(), timeout=LISTING_TIMEOUT_S, endpoint=endpoint())
    except Exception as err:  # noqa: BLE001 - mapped to one line, or re-raised when it is not the Hub's
        raise hub_error(err, plan.listing.repo_id, plan.listing.commit_sha, who) from None


def fetch(source: ModelSource, allow_pickle: bool, trust_remote_code: bool, who: str, console=None) -> ModelSource:
    """The source's files in the local cache (downloading what is missing), as a source pointing at them.

    Sources that are not Hub ids, or already resolved to a cached commit (offline), come back unchanged.
    A per-node file lock around plan-and-download makes parallel trials on one node download once: the
    second waits, then finds everything cached."""
    if source.kind != "hub" or source.commit_sha is not None:
        return source
    from filelock import FileLock

    repo_id = source.location
    locks = Path(hub_cache_dir()) / ".locks"
    locks.mkdir(parents=True, exist_ok=True)
    with FileLock(str(locks / f"bakeoff--{repo_id.replace('/', '--')}.lock")):
        plan = plan_download(repo_id, source.revision, source.gguf_file, allow_pickle, trust_remote_code, who)
        check_disk(plan, who)
        if plan.missing_bytes:
            _say(
                console,
                f"{who}: downloading {repo_id} at {plan.listing.commit_sha[:12]}: "
                f"{len(plan.files)} files, {_gb(plan.missing_bytes)} to fetch, into {hub_cache_dir()}",
            )
        folder = _download(plan, source.revision, who)
    sha = Path(folder).name  # the snapshot folder is named by the commit actually downloaded
    kind = "gguf" if source.gguf_file else "hub"
    described = f"Hugging Face id {repo_id} at commit {sha[:12]}"
    return ModelSource(
        kind, folder, source.gguf_file, described, revision=source.revision, commit_sha=sha, hub_id=repo_id
    )


def candidate_source(candidate, commit_sha: str | None = None, console=None) -> ModelSource:
    """A candidate's (config.CandidateSpec) weights, resolved and fetched on first use. `commit_sha`: the
    commit a trial recorded, so serving and export load exactly the base the adapter was trained on."""
    from bakeoff.models.sources import resolve_source

    source = resolve_source(candidate.model, candidate.gguf_file, commit_sha or candidate.revision)
    who = f"candidate `{candidate.name}`"
    return fetch(source, candidate.allow_pickle, candidate.trust_remote_code, who, console)


def _download(plan: DownloadPlan, revision: str | None, who: str) -> str:
    """huggingface_hub's snapshot_download of exactly the planned files (it shows progress bars, resumes a
    dropped connection with a ranged request, and keeps completed files if killed, so a re-run fetches only
    what is missing). The requested revision, not the sha, is passed so the cache records the branch or tag
    for later offline runs."""
    from huggingface_hub import snapshot_download

    try:
        return snapshot_download(
            plan.listing.repo_id,
            revision=revision,
            allow_patterns=[f.name for f in plan.files],
            cache_dir=hub_cache_dir(),
            endpoint=endpoint(),
            token=_token(),
            etag_timeout=LISTING_TIMEOUT_S,
        )
    except Exception as err:  # noqa: BLE001 - mapped to one line, or re-raised when it is not the Hub's
        raise hub_error(err, plan.listing.repo_id, revision, who) from None


def hub_error(err: Exception, repo_id: str, revision: str | None, who: str = "") -> Exception:
    """One line naming the repo and the fix for each way the Hub refuses; other errors pass through unchanged."""
    import httpx2
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    prefix = f"{who}: " if who else ""
    status = getattr(getattr(err, "response", None), "status_code", None)
    licence = (
        f"accept its licence at {endpoint()}/{repo_id} while logged in, then set HF_TOKEN to a read token of that "
        "account"
        if _token() is None
        else f"the account of HF_TOKEN has no access yet: accept the licence at {endpoint()}/{repo_id}"
    )
    if isinstance(err, GatedRepoError) or (isinstance(err, HfHubHTTPError) and status in (401, 403)):
        if isinstance(err, RepositoryNotFoundError) and not isinstance(err, GatedRepoError) and status == 401:
            return ModelError(
                f"{prefix}`{repo_id}` is not on the Hub or is private ({status}); check the id, or set HF_TOKEN "
                "to a token that can read it"
            )
        return ModelError(f"{prefix}`{repo_id}` is gated ({status}): {licence}")
    if isinstance(err, RepositoryNotFoundError):
        return ModelError(f"{prefix}`{repo_id}` is not on the Hub ({endpoint()}); check the `model` id")
    if isinstance(err, RevisionNotFoundError):
        return ModelError(
            f"{prefix}`{repo_id}` has no revision `{revision}`; set `revision` to a branch, tag or commit"
        )
    if isinstance(err, HfHubHTTPError):
        return ModelError(
            f"{prefix}the Hub answered {status} for `{repo_id}`; try again later, or run with --offline to use the "
            "local cache"
        )
    if isinstance(err, (httpx2.TransportError, OfflineModeIsEnabled, LocalEntryNotFoundError, ConnectionError)):
        return ModelError(
            f"{prefix}cannot reach the Hugging Face Hub at {endpoint()} for `{repo_id}` ({type(err).__name__}); "
            "check the network or HF_ENDPOINT, or run with --offline to use only the local cache"
        )
    return err


def _say(console, line: str) -> None:
    if console is None:
        from rich.console import Console

        console = Console(stderr=True)
    console.print(line, markup=False, highlight=False, soft_wrap=True)


def _gb(n_bytes: int) -> str:
    return f"{n_bytes / 1e9:.2f} GB" if n_bytes >= 1e8 else f"{n_bytes / 1e6:.1f} MB"
