"""Load a candidate's tokenizer and causal LM, offline, from a resolved ModelSource.

GGUF weights are dequantized by transformers on load, and a GGUF-loaded model refuses `save_pretrained`.
So the first load converts: it rebuilds the model from its config without the GGUF quantization marker,
copies the weights, and caches the result as safetensors keyed by the GGUF file's sha256. Later loads take
seconds. Most of a conversion is parsing the file's metadata, not dequantizing: gguf's reader walks every
vocabulary string (Gemma-3: 262k of them, ~15 s), and transformers opens the file three times (tokenizer
config, model config, weights), turns the metadata into Python each time and rebuilds gguf's tensor-name
table per module. `_gguf_parsed_once` lets the three share one reader (slicing its memory map as a plain
array), the two metadata reads share one, and builds the table once.
"""

from __future__ import annotations

import copy
import hashlib
import importlib.util
import os
import shutil
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from bakeoff.cache import cache_root
from bakeoff.errors import ModelError
from bakeoff.models.sources import ModelSource


@dataclass(frozen=True)
class LoadOptions:
    """How to load: device, dtype and the two safety switches."""

    device: str = "cpu"
    dtype: torch.dtype = torch.float32
    trust_remote_code: bool = False
    allow_pickle: bool = False
    load_in_4bit: bool = False  # QLoRA: NF4 base weights, double-quantized, computing in `dtype`


@lru_cache(maxsize=16)
def _file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def converted_folder(source: ModelSource) -> Path:
    """Folder of safetensors weights for a GGUF source, converting (once) if needed."""
    gguf_path = Path(source.location) / str(source.gguf_file)
    try:
        key = _file_sha256(str(gguf_path))[:16]
    except OSError as err:
        raise ModelError(f"cannot read GGUF file {gguf_path}: {err.strerror}") from None
    target = cache_root() / "converted" / f"{gguf_path.stem}-{key}"
    if (target / "config.json").is_file():
        return target
    from filelock import FileLock

    # Parallel trials on one machine (the Ray runner) convert once: the others wait here, then find it.
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target.parent / f".{target.name}.lock")):
        if not (target / "config.json").is_file():
            _convert_gguf(source, target)
    return target


@contextmanager
def _gguf_parsed_once():
    """While open, a GGUF file is parsed once, its metadata read into Python once, and gguf's tensor-name
    map built once per architecture (transformers imports each of these at call time).

    - `gguf.GGUFReader(path)` returns one shared reader per file, and that reader slices its memory map as
      a plain array (`_plain_array_reader`).
    - transformers' metadata-only `load_gguf_checkpoint(path, return_tensors=False)` (tokenizer, then model
      config) is answered from the first call's result (each caller gets its own deep copy).
    - `gguf.get_tensor_name_map(arch, n_blocks)`, a read-only lookup table that transformers rebuilds for
      every module of the model it walks (SmolLM2: 397 times, ~25 ms each), is built once.
    A reader is a read-only memory map plus the parsed fields, so none of this changes anything but the
    time (bench/gguf_conversion.py converts both ways and compares weights and tokenizer).
    """
    import gguf
    from transformers import modeling_gguf_pytorch_utils as gguf_utils

    parse, load_checkpoint, name_map = gguf.GGUFReader, gguf_utils.load_gguf_checkpoint, gguf.get_tensor_name_map
    readers: dict[tuple[str, str], object] = {}
    metadata: dict[str, dict] = {}

    def shared_reader(path, mode="r"):
        key = (os.path.realpath(path), mode)
        if key not in readers:
            readers[key] = _plain_array_reader(parse)(path, mode)
        return readers[key]

    def metadata_once(path, return_tensors=False, *args, **kwargs):
        if return_tensors or args or kwargs:
            return load_checkpoint(path, return_tensors, *args, **kwargs)
        key = os.path.realpath(path)
        if key not in metadata:
            metadata[key] = load_checkpoint(path, return_tensors=False)
        return copy.deepcopy(metadata[key])

    gguf.GGUFReader, gguf_utils.load_gguf_checkpoint = shared_reader, metadata_once
    gguf.get_tensor_name_map = lru_cache(maxsize=None)(name_map)
    try:
        yield
    finally:
        gguf.GGUFReader, gguf_utils.load_gguf_checkpoint, gguf.get_tensor_name_map = parse, load_checkpoint, name_map


def _plain_array_reader(reader_class):
    """`reader_class` (gguf's GGUFReader) with its memory map held as a plain ndarray view of the same bytes.

    The reader takes two slices of the map per vocabulary string (length, bytes), and an `np.memmap` slice
    goes through Python-level `__getitem__` and `__array_finalize__` (~2 us each): for Gemma-3's 262k
    strings and merges that was most of the parse. An ndarray view of the map slices in C; the mapping
    stays open as the view's base.
    """

    class PlainArrayReader(reader_class):
        @property
        def data(self):
            return self._plain_data

        @data.setter
        def data(self, value):
            self._plain_data = value.view(np.ndarray) if isinstance(value, np.memmap) else value

    return PlainArrayReader


def _convert_gguf(source: ModelSource, target: Path) -> None:
    from rich.console import Console

    Console(stderr=True).print(
        f"converting {source.gguf_file} to safetensors once (cached in {target.parent}) ...", style="dim", markup=False
    )
    try:
        with _gguf_parsed_once():
            tokenizer = AutoTokenizer.from_pretrained(source.location, gguf_file=source.gguf_file)
            gguf_model = AutoModelForCausalLM.from_pretrained(
                source.location, gguf_file=source.gguf_file, dtype=torch.float32
            )
    except Exception as err:  # gguf parse errors come in many types (ValueError, struct.error, KeyError ...)
        raise ModelError(
            f"cannot load GGUF {source.gguf_file} from {source.location}: {err} (is the file complete?)"
        ) from None
    config = gguf_model.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    with torch.device("meta"):
        fresh = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    fresh.load_state_dict(gguf_model.state_dict(), assign=True)
    fresh.tie_weights()
    partial = target.with_name(target.name + f".partial-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    fresh.save_pretrained(partial, safe_serialization=True)
    tokenizer.save_pretrained(partial)
    # Rename is atomic: a killed conversion leaves only a .partial folder, never a half-written cache.
    partial.rename(target)


def model_folder(source: ModelSource) -> str:
    """A path or hub id that `from_pretrained` can load without network."""
    return str(converted_folder(source)) if source.kind == "gguf" else source.location


# Tokenizers loaded in this process, by folder (or hub id) and the state of its files. A grid loads the same
# tokenizer for every trial of a model, and transformers 5 builds a Gemma-3 tokenizer (262k entries) from its
# 33 MB tokenizer.json in 5-8 s, parsing the JSON seven times; a copy takes ~4 s, so trials share the object.
# bakeoff never changes a tokenizer after loading it (the pad token is set here, before it is kept).
_TOKENIZERS: dict[tuple, PreTrainedTokenizerBase] = {}
_TOKENIZERS_KEPT = 4


def load_tokenizer(source: ModelSource, options: LoadOptions) -> PreTrainedTokenizerBase:
    where = model_folder(source)
    if not Path(where).is_dir():  # a hub id: which snapshot it means depends on the environment
        return _load_tokenizer(source, where, options)
    key = (str(Path(where).resolve()), options.trust_remote_code, _folder_state(Path(where)))
    if key in _TOKENIZERS:
        return _TOKENIZERS[key]
    tokenizer = _load_tokenizer(source, where, options)
    if len(_TOKENIZERS) >= _TOKENIZERS_KEPT:
        _TOKENIZERS.pop(next(iter(_TOKENIZERS)))
    _TOKENIZERS[key] = tokenizer
    return tokenizer


def _folder_state(folder: Path) -> tuple:
    """Name, size and modification time of each file in a model folder: a rewritten or corrupted tokenizer
    file is loaded again."""
    return tuple(sorted((f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in folder.iterdir() if f.is_file()))


def _load_tokenizer(source: ModelSource, where: str, options: LoadOptions) -> PreTrainedTokenizerBase:
    try:
        tokenizer = AutoTokenizer.from_pretrained(
            where, trust_remote_code=options.trust_remote_code, local_files_only=True
        )
    except Exception as err:  # missing or corrupt tokenizer files surface as OSError, ValueError, JSON or Rust errors
        raise ModelError(_not_loadable(source, "tokenizer", err)) from None
    if isinstance(tokenizer, bool) or not hasattr(tokenizer, "encode"):
        raise ModelError(f"no usable tokenizer in {source.description}")
    if tokenizer.pad_token_id is None:
        # Padding positions are always masked out, so any existing token id serves as the pad id.
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_model(source: ModelSource, options: LoadOptions) -> PreTrainedModel:
    where = model_folder(source)
    quantization = nf4_config(options.dtype) if options.load_in_4bit else None
    try:
        model = AutoModelForCausalLM.from_pretrained(
            where,
            dtype=options.dtype,
            trust_remote_code=options.trust_remote_code,
            local_files_only=True,
            use_safetensors=None if options.allow_pickle else True,
            quantization_config=quantization,
            # Straight onto the device: a 7-8B model (or Mixtral's 93 GB) never waits in host memory first.
            device_map={"": options.device} if options.load_in_4bit or options.device != "cpu" else None,
        )
    except (torch.OutOfMemoryError, MemoryError):
        raise  # the trial's own failure, stored as out of memory (run_trial); the run goes on
    except (
        Exception
    ) as err:  # truncated/corrupt weights raise SafetensorError, OSError, RuntimeError ... depending on where
        raise ModelError(_not_loadable(source, "model", err)) from None
    if options.load_in_4bit:
        keep_4bit_compute_dtype(model)
    return model


def keep_4bit_compute_dtype(model) -> int:
    """Turn off bitsandbytes' CPU inference shortcut on every 4-bit layer; returns how many were found.

    On a CPU with AVX-512 BF16, a `Linear4bit` called in eval mode without gradients repacks its weight in
    place into a CPU layout with bf16 block scales and from then on multiplies in bf16: scoring would then
    run a different (rounder) function than the float32 one that was trained, and on a different machine
    class a different one again. It also fails outright for layers narrower than one 64-weight block.
    Without it, every 4-bit layer dequantizes to the compute dtype and multiplies there, in training and
    in scoring alike.
    """
    layers = [module for module in model.modules() if hasattr(module, "support_avx512bf16_for_cpu")]
    for module in layers:
        module.support_avx512bf16_for_cpu = False
    return len(layers)


def require_bitsandbytes(candidate: str | None = None) -> None:
    """QLoRA's one dependency beyond the base install; checked before anything is loaded."""
    if importlib.util.find_spec("bitsandbytes") is None:
        who = f"candidate `{candidate}`: " if candidate else ""
        raise ModelError(
            f"{who}`method: qlora` needs bitsandbytes: `pip install 'bakeoff[qlora]'` (CPU and CUDA), or "
            "use `method: lora`"
        )


def nf4_config(compute_dtype: torch.dtype):
    """QLoRA's quantization: NF4 weights with double-quantized scales, matmuls in `compute_dtype`.

    The compute dtype is the run's dtype: float32 on CPU (bf16 is ~100x slower there), bfloat16 on GPU.
    Only `nn.Linear` layers become 4-bit: embeddings, LM head and norms stay in `compute_dtype`, and so do
    MoE experts stored as fused 3-D tensors (transformers 5 + bitsandbytes 0.50 do not quantize them).
    """
    require_bitsandbytes()
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_compute_dtype=compute_dtype,
        bnb_4bit_use_double_quant=True,
    )


def load_config(source: ModelSource, trust_remote_code: bool = False):
    """The model's config only (no weights): for introspection and validation."""
    try:
        return AutoConfig.from_pretrained(
            model_folder(source), trust_remote_code=trust_remote_code, local_files_only=True
        )
    except (OSError, ValueError) as err:
        raise ModelError(_not_loadable(source, "config", err)) from None


def _not_loadable(source: ModelSource, what: str, err: Exception) -> str:
    first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    if source.kind == "hub" and source.commit_sha is None:  # a Hub id never fetched (models/hub.py `fetch`)
        return (
            f"cannot load the {what} of `{source.location}` offline: it is not in the local Hugging Face cache. "
            f"Download it where there is network (`hf download {source.location}`) or point `model` at a local folder. "
            f"({first_line})"
        )
    if source.kind == "hub" and "trust_remote_code" not in str(err):
        return (
            f"cannot load the {what} from {source.description} ({source.location}): {first_line}. Files missing "
            f"from the cached snapshot are fetched by a run without --offline (or `hf download {source.hub_id}`)"
        )
    if "trust_remote_code" in str(err):
        return (
            f"{source.description} needs its own code: set `trust_remote_code: true` on this candidate if you trust it"
        )
    if "safetensors" in str(err).lower() and "pickle" not in first_line.lower():
        return (
            f"cannot load the {what} from {source.description}: {first_line} "
            "(pickle .bin weights need `allow_pickle: true`)"
        )
    return f"cannot load the {what} from {source.description}: {first_line}"
