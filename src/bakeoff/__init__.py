"""bakeoff: fine-tune candidate LLMs and baselines on a labeled task, measure them side by side, recommend one."""

import logging

# On AVX-512 BF16 CPUs bitsandbytes (imported by peft, wherever it is installed) warns at import that an optional
# kernel package is missing. That kernel serves only its bf16 CPU inference shortcut, which bakeoff turns off
# (`models.load.keep_4bit_compute_dtype`), so the warning is noise here. Set before any import of bitsandbytes.
logging.getLogger("bitsandbytes.backends.cpu.ops").setLevel(logging.ERROR)
