"""The local LLM judge (`evaluation.judge.candidate`): one of the run's own LLM candidates judges.

It is loaded from its finished trial (`judge.judging_trial`: the most training data, first seed) exactly
as the trial left it: base weights plus the saved adapter, or the saved full model, or the base alone for
zero-shot (`models/trained.py`). Each judge prompt goes through the tokenizer's chat template when it has
one (instruct models), else as plain text, and the answer is decoded greedily, a few tokens, by the same
decoder the trials use (`evaluation/decode.py`). A small fine-tuned candidate is a weak judge; the report
shows how often its two orders agree, so a judge that answers at random is visible.
"""

from __future__ import annotations

from pathlib import Path

from bakeoff.config import DecodingSpec, RunSpec
from bakeoff.errors import BakeoffError
from bakeoff.evaluation.decode import Decoder, decode
from bakeoff.evaluation.judge import Judge, judging_trial
from bakeoff.models.trained import load_trained
from bakeoff.run_folder import RunFolder

VERDICT_TOKENS = 8  # "A", "B" or "TIE", with room for a leading word or punctuation


def candidate_judge(spec: RunSpec, trials: list[dict], run_dir: Path) -> tuple[Judge, str]:
    """`(judge, trial_id)`: a prompt -> answer callable on the judging candidate's trial, and that trial."""
    from bakeoff.models.options import default_device, load_options

    name = spec.evaluation.judge.candidate
    candidate = next(c for c in spec.candidates if c.name == name)
    trial = judging_trial(trials, name)
    if trial is None:
        raise BakeoffError(f"evaluation.judge.candidate `{name}` has no finished trial to judge with")
    device = default_device()
    options = load_options(spec, candidate, device, trial["method"])
    folder = RunFolder(run_dir).trial(trial["trial_id"])
    model, tokenizer, _ = load_trained(candidate, trial, folder, options)
    settings = DecodingSpec(strategy="greedy", max_new_tokens=VERDICT_TOKENS, batch_size=1)
    decoder = Decoder(model, tokenizer, settings, grammar=None, token_texts=None)

    def judge(prompt: str) -> str:
        return decode(decoder, [_prompt_ids(tokenizer, prompt)]).texts[0]

    return judge, trial["trial_id"]


def _prompt_ids(tokenizer, prompt: str) -> list[int]:
    if getattr(tokenizer, "chat_template", None):
        ids = tokenizer.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True)
        return list(ids["input_ids"] if isinstance(ids, dict) or hasattr(ids, "keys") else ids)
    return tokenizer(prompt, add_special_tokens=True)["input_ids"]
