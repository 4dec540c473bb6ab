"""`bakeoff report RUN_DIR` and `bakeoff recommend RUN_DIR`: rebuild outputs and decide, from stored results only."""

from __future__ import annotations

from pathlib import Path

import typer
import yaml

from bakeoff.cli.common import console, stdout, user_errors
from bakeoff.errors import ConfigError

MAX_ASKS = 3  # tries per question in `recommend --interactive`
QUESTIONS = [  # (key, prompt, parser); empty answer = no constraint
    ("task_specificity", "Task: auto (from task.type), narrow (classification/extraction) or open-ended?", str),
    ("max_fine_tune_usd", "Budget for one fine-tune, $ (empty: none)", float),
    ("max_usd_per_1k_items", "Budget per 1,000 items served, $ (empty: none)", float),
    ("max_usd_per_month", "Serving budget per month, $ (empty: none)", float),
    ("gpu", "GPU you will deploy on (e.g. a10g, l4, a100-80gb, h100)", str),
    ("max_gpus", "GPUs available for serving (empty: no limit)", int),
    ("sla_p95_ms", "p95 latency SLA, ms (empty: none)", float),
    ("load_items_per_s", "Load, items per second (empty: the run's setting)", float),
    ("memory_limit_gb", "Memory per GPU, GB (empty: no limit)", float),
    ("labeled_examples", "Labeled examples you have or can get (empty: the grid's largest size)", int),
    ("out_of_scope_share", "Share of traffic out of scope, 0-1", float),
    ("min_macro_f1", "Minimum acceptable macro-F1, 0-1 (empty: none)", float),
]


def _parse_answers(pairs: list[str]) -> dict:
    """`key=value` pairs as decision answers; a dotted key sets a nested one (`costs.review=2.5`)."""
    answers: dict = {}
    for pair in pairs:
        if "=" not in pair:
            raise ConfigError(f"`{pair}` is not key=value (e.g. sla_p95_ms=200)")
        key, value = pair.split("=", 1)
        try:
            parsed = yaml.safe_load(value)
        except yaml.YAMLError:
            raise ConfigError(f"`{pair}`: the value is not valid YAML; quote it, e.g. gpu='a10g'") from None
        *parents, leaf = key.strip().removeprefix("decision.").split(".")
        node = answers
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"`{pair}`: `{part}` is set to a value above; set its keys one by one")
        node[leaf] = parsed
    return answers


def _validate(answers: dict, current: dict, estimated_gpus: list[str]) -> dict:
    """Answers checked like the config's `decision` section; the GPU must be one the run estimated."""
    from pydantic import ValidationError

    from bakeoff.config import DecisionSpec, explain_error
    from bakeoff.decision.inputs import merged

    try:
        decision = DecisionSpec.model_validate(merged(current, answers)).model_dump()
    except ValidationError as err:
        lines = [explain_error({**e, "loc": ("decision", *e["loc"])}) for e in err.errors()]
        raise ConfigError("decision answers: " + "; ".join(lines)) from None
    if estimated_gpus and decision["gpu"] not in estimated_gpus:
        raise ConfigError(
            f"gpu `{decision['gpu']}`: this run estimated only {', '.join(estimated_gpus)}; pick one of "
            "them, or add it "
            "to `efficiency.gpus` in the config and run `bakeoff run` again (trials are not redone)"
        )
    return decision


@user_errors
def report_command(run_dir: Path = typer.Argument(..., help="A run folder (holds results.sqlite).")) -> None:
    """Rebuild summary.md, results.json and report.html from a run's stored results (no models, no torch)."""
    from bakeoff.report.build import build

    run, recommendation, paths = build(run_dir)
    if recommendation:
        stdout.print(recommendation["rationale"], markup=False, highlight=False)
        _print_cost_notes(recommendation)
    else:
        stdout.print(no_recommendation_reason(run), markup=False, highlight=False, soft_wrap=True)
    console.print("wrote " + "  ".join(map(str, paths)), markup=False, highlight=False, soft_wrap=True)


def _print_cost_notes(recommendation: dict | None) -> None:
    """What `decision.costs` filled in for the user (matrix pairs left to `error`), one line each."""
    for note in ((recommendation or {}).get("costs") or {}).get("notes") or []:
        console.print(note, markup=False, highlight=False, soft_wrap=True)


def no_recommendation_reason(run) -> str:
    """Why there is no recommendation: no trial finished, with the others by status and what to do."""
    by_status: dict[str, list[str]] = {}
    for trial in run.trials:
        by_status.setdefault(trial.status, []).append(trial.trial_id)
    parts = []
    for status, what in (("running", "running or interrupted"), ("failed", "failed")):
        ids = by_status.get(status, [])
        if ids:
            parts.append(f"{len(ids)} {what} ({', '.join(ids[:3])}{', ...' if len(ids) > 3 else ''})")
    found = "; ".join(parts) or "no trials"
    return (
        f"no recommendation: no trial has finished ({found}); a trial still `running` was left by a stopped run: "
        "run `bakeoff run CONFIG` again to resume it"
    )


@user_errors
def recommend_command(
    run_dir: Path = typer.Argument(..., help="A run folder."),
    answers: list[str] = typer.Argument(
        None, help="Decision answers as key=value, e.g. sla_p95_ms=100 out_of_scope_share=0.2."
    ),
    interactive: bool = typer.Option(False, "--interactive", "-i", help="Ask the questions one by one."),
) -> None:
    """Recommend a candidate for your constraints (budget, SLA, GPU, data, out-of-scope share), from stored results."""
    from bakeoff.report.build import build, load_results
    from bakeoff.run_folder import RunFolder

    spec = load_results(run_dir)["run"].get("spec") or {}
    current = spec.get("decision") or {}
    estimated_gpus = (spec.get("efficiency") or {}).get("gpus") or []
    given = _parse_answers(answers or [])
    if interactive:
        for key, prompt, parser in QUESTIONS:
            default = given.get(key, current.get(key))
            for _ in range(MAX_ASKS):  # a mistyped answer is asked again, not the end of the session
                reply = typer.prompt(
                    prompt, default="" if default is None else str(default), show_default=default is not None
                )
                if str(reply).strip() == "":
                    given[key] = None
                    break
                try:
                    given[key] = parser(reply)
                    break
                except ValueError:
                    console.print(f"{key}: {reply!r} is not a {parser.__name__}; try again", markup=False)
            else:
                raise ConfigError(f"{key}: no valid answer in {MAX_ASKS} tries")
    decision = _validate(given, current, estimated_gpus)
    # Other answers than the config's are a what-if: written beside the run's own files, which keep the
    # decision the run was made with (and what `bakeoff export mlflow` reports as its choice).
    from bakeoff.config import DecisionSpec

    made_with = DecisionSpec.model_validate(current).model_dump()  # the config's answers, defaults filled in
    whatif = {key: value for key, value in decision.items() if made_with.get(key) != value}
    out_dir = RunFolder(run_dir).whatif if whatif else None
    run, recommendation, paths = build(run_dir, decision, out_dir)
    stdout.print(
        recommendation["rationale"] if recommendation else no_recommendation_reason(run),
        markup=False,
        highlight=False,
    )
    _print_cost_notes(recommendation)
    if whatif:
        console.print(
            f"what-if ({', '.join(f'{k}={v}' for k, v in sorted(whatif.items()))}): wrote "
            + "  ".join(map(str, paths))
            + f"; the run's own report in {run_dir} keeps its config's decision",
            markup=False,
            highlight=False,
        )
    else:
        console.print("wrote " + "  ".join(map(str, paths)), markup=False, highlight=False)
