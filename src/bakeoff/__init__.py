"""bakeoff: which base LLM should we fine-tune for this task? Measured, not claimed.

The library API is `bakeoff.run(spec)`, `bakeoff.load_run(path)` and `bakeoff.recommend(run, **answers)`
(src/bakeoff/api.py); the CLI calls the same functions.
"""

import logging

# On AVX-512 BF16 CPUs bitsandbytes (imported by peft, wherever it is installed) warns at import that an optional
# kernel package is missing. That kernel serves only its bf16 CPU inference shortcut, which bakeoff turns off
# (`models.load.keep_4bit_compute_dtype`), so the warning is noise here. Set before any import of bitsandbytes.
logging.getLogger("bitsandbytes.backends.cpu.ops").setLevel(logging.ERROR)

__all__ = ["Run", "load_run", "recommend", "run"]


def __getattr__(name: str):
    """`bakeoff.run`, `bakeoff.load_run`, `bakeoff.recommend`, `bakeoff.Run`, imported on first use: `import
    bakeoff` stays light (no torch, no pandas), for notebooks and for the CLI's start-up."""
    if name in __all__:
        from bakeoff import api

        return getattr(api, name)
    raise AttributeError(f"module 'bakeoff' has no attribute {name!r}")
