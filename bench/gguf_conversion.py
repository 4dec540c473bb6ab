"""First-use GGUF conversion, the way transformers parses it (three times) vs parsed once.

    python bench/gguf_conversion.py [--models smollm2-135m gemma3-270m] [--out bench/results/gguf_conversion.json]

`bakeoff demo` from a cold cache converts both built-in GGUF files to safetensors before their first
trial. transformers opens the file once for the tokenizer's config, once for the model's config and once
for the weights; gguf's reader walks every vocabulary string each time, slicing a memory map,
transformers turns the metadata into Python each time, and it rebuilds gguf's tensor-name map for every
module it walks. The naive way runs that as is; the shared way is `_convert_gguf` as bakeoff runs it
(`_gguf_parsed_once`: one reader slicing a plain array view of the map, one metadata read for the two
config calls, one tensor-name map). Each way converts into its own empty folder, in one process, in turn;
the fp32 matmul peak is measured in the same run. The converted weights are compared tensor by tensor
and the saved tokenizers byte for byte: parsing once must change nothing but the time.
"""

from __future__ import annotations

import argparse
import contextlib
import tempfile
import time
from pathlib import Path

import gguf
import torch
from label_trie import matmul_peak_gflops
from report import write_json
from rich.console import Console
from rich.table import Table
from safetensors.torch import load_file

from bakeoff.models import load
from bakeoff.models.sources import resolve_source


def convert(name: str, way: str, folder: Path) -> tuple[float, int, dict]:
    """Seconds, GGUF parses and the converted state dict and tokenizer file for one conversion of `name`."""
    parses = 0
    init = gguf.GGUFReader.__init__

    def counting_init(self, *args, **kwargs):
        nonlocal parses
        parses += 1
        init(self, *args, **kwargs)

    saved_sharing = load._gguf_parsed_once
    gguf.GGUFReader.__init__ = counting_init
    if way == "naive":
        load._gguf_parsed_once = contextlib.nullcontext
    try:
        started = time.perf_counter()
        load._convert_gguf(resolve_source(name), folder / "model")
        seconds = time.perf_counter() - started
    finally:
        gguf.GGUFReader.__init__, load._gguf_parsed_once = init, saved_sharing
    weights = load_file(str(folder / "model" / "model.safetensors"))
    return seconds, parses, weights | {"tokenizer.json": (folder / "model" / "tokenizer.json").read_bytes()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", nargs="+", default=["smollm2-135m", "gemma3-270m"])
    parser.add_argument("--out", type=Path, default=Path("bench/results/gguf_conversion.json"))
    args = parser.parse_args()
    console = Console()
    peak = matmul_peak_gflops()
    table = Table(title=f"GGUF -> safetensors conversion, first use ({torch.get_num_threads()} threads)")
    for column in ("model", "way", "GGUF parses", "s", "speed-up"):
        table.add_column(column)
    results = {}
    for name in args.models:
        runs = {}
        for way in ("naive", "shared"):
            with tempfile.TemporaryDirectory() as folder:
                runs[way] = convert(name, way, Path(folder))
        naive, shared = runs["naive"][2], runs["shared"][2]
        same = naive.keys() == shared.keys() and all(
            naive[k] == shared[k] if isinstance(naive[k], bytes) else torch.equal(naive[k], shared[k]) for k in naive
        )
        speedup = runs["naive"][0] / runs["shared"][0]
        for way, (seconds, parses, _) in runs.items():
            table.add_row(name, way, str(parses), f"{seconds:.1f}", f"{speedup:.2f}x" if way == "shared" else "")
        results[name] = {
            way: {"seconds": seconds, "gguf_parses": parses} for way, (seconds, parses, _) in runs.items()
        } | {"speedup": speedup, "identical_weights_and_tokenizer": same}
        console.print(f"{name}: converted weights and tokenizer identical both ways: {same}")
    console.print(table)
    console.print(f"fp32 matmul peak in this run: {peak:.0f} GFLOP/s")
    write_json(console, args.out, {"matmul_peak_gflops": peak, "models": results}, table=table)


if __name__ == "__main__":
    main()
