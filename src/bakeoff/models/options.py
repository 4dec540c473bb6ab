"""Where and how a candidate's model loads: the device, the dtype, the safety switches, an NF4 base for QLoRA.

The trials (`recipes/`), serving (`serving/predictor.py`) and the local judge (`evaluation/local_judge.py`)
load a trained candidate the same way, so all three read these helpers from here, the models layer, rather
than from the trial recipe above them.
"""

from __future__ import annotations

import torch

from bakeoff.config import CandidateSpec, RunSpec
from bakeoff.models.load import LoadOptions


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def resolve_dtype(setting: str, device: str) -> torch.dtype:
    """`training.dtype`: `auto` is bf16 on CUDA, float32 otherwise."""
    if setting == "auto":
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    return {"float32": torch.float32, "bfloat16": torch.bfloat16}[setting]


def load_options(spec: RunSpec, candidate: CandidateSpec, device: str, method: str) -> LoadOptions:
    """How a candidate's model loads for `method` on `device`: the run's dtype, its safety switches, and an
    NF4 base for QLoRA. The trials, serving and the local judge load the same way."""
    return LoadOptions(
        device=device,
        dtype=resolve_dtype(spec.training.dtype, device),
        trust_remote_code=candidate.trust_remote_code,
        allow_pickle=candidate.allow_pickle,
        load_in_4bit=method == "qlora",
    )
