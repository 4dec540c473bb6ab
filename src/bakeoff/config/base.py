"""What every section of the run spec shares: frozen, no unknown keys, no inf/nan; names that become folders."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Spec(BaseModel):
    # allow_inf_nan=False: `sla_p95_ms=inf` passed `gt=0` and wrote Infinity, which is not JSON, into results.json
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


MAX_NAME_BYTES = 200  # file systems allow 255 bytes per name; a trial folder adds `__n<size>__s<seed>`


def safe_folder_name(name: str) -> str:
    """A name that becomes a folder: no separators, no hidden or parent paths, nothing a shell would mangle."""
    if not name.strip() or name.startswith(".") or any(not (c.isalnum() or c in " ._-+") for c in name):
        raise ValueError(
            f"{name!r}: use letters, digits, spaces and . _ - + (not starting with a dot): it names a folder"
        )
    if len(name.encode()) > MAX_NAME_BYTES:
        raise ValueError(
            f"{name[:40]!r}...: {len(name.encode())} bytes; use at most {MAX_NAME_BYTES} (UTF-8): it names a folder, "
            "and a trial's folder adds its size and seed"
        )
    return name
