"""Extraction and generation tasks: data, prompts, baselines, and the trial path through the real runner."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from tiny import tiny_tokenizer

from bakeoff.baselines.extraction_crf import CrfExtractor, spans_to_record, tag_tokens
from bakeoff.baselines.retrieval import TfidfRetriever
from bakeoff.config import TaskSpec, spec_from_dict
from bakeoff.data.examples import Examples
from bakeoff.data.targets import instruction, load_target_examples, record_json, target_fields
from bakeoff.data.task import prepare_task
from bakeoff.data.ticket_replies import FALLBACK_REPLY
from bakeoff.data.tickets import RECORD_FIELDS, generate_ticket_records, generate_tickets
from bakeoff.errors import DataError
from bakeoff.models.target_prompt import TargetEncoder
from bakeoff.training.packing import pack

EVALUATION = {
    "max_test_items": 10,
    "max_train_items": 4,
    "bootstrap_samples": 100,
    "max_perturbed_items": 10,
    "max_validation_items": 10,
    "max_out_of_scope_items": 6,
    "latency_repeats": 3,
    "perturbations": [{"name": "lowercase"}, {"name": "padding"}, {"name": "entities"}],
}


def test_task_type_defaults_to_classification():
    assert TaskSpec(builtin="support-tickets").type == "classification"


def test_ticket_records_are_the_same_tickets_with_their_planted_values():
    plain = generate_tickets(300, seed=3)
    tickets, records = generate_ticket_records(300, seed=3)
    assert tickets.texts == plain.texts and tickets.labels == plain.labels  # classification data unchanged
    values = [(v, t) for r, t in zip(records, tickets.texts) for v in r.values() if v is not None]
    assert len(values) > 150
    in_text = sum(v in t for v, t in values)  # copied as written (casing included); only typos may break one
    assert in_text / len(values) > 0.95
    assert all(list(r) == RECORD_FIELDS for r in records)
    # the customer is the sign-off's name, never a colleague named inside the request
    colleague = [(r, t) for r, t in zip(records, tickets.texts) if "colleague" in t.lower()]
    assert colleague and all(r["customer"] is None or t.rstrip().endswith(r["customer"]) for r, t in colleague)


def test_builtin_extraction_and_generation_tasks():
    extraction = TaskSpec(type="extraction", builtin="support-tickets-extraction", builtin_examples=200)
    task = prepare_task(extraction)
    record = json.loads(task.test.targets[0])
    assert list(record) == RECORD_FIELDS and len(task.test.targets) == len(task.test)
    assert task.paraphrases is not None and task.paraphrases.targets is not None
    assert "Fields: customer, order_id" in instruction(extraction)
    generation = prepare_task(TaskSpec(type="generation", builtin="support-tickets-replies", builtin_examples=200))
    assert generation.out_of_scope and all(t.startswith("Hi") for t in generation.train_pool.targets)
    assert FALLBACK_REPLY not in generation.train_pool.targets


def test_user_extraction_data_from_field_columns_and_from_json(tmp_path):
    frame = pd.DataFrame(
        {
            "text": [f"refund order {n} of ${n}.00" for n in range(20)],
            "order": [str(n) if n % 2 else None for n in range(20)],
            "amount": [f"${n}.00" for n in range(20)],
            "record": [json.dumps({"order_id": str(n), "amount": 5, "extra": "x"}) for n in range(20)],
        }
    )
    path = tmp_path / "data.csv"
    frame.to_csv(path, index=False)
    by_columns = TaskSpec(type="extraction", data={"path": path}, fields={"order_id": "order", "amount": "amount"})
    task = prepare_task(by_columns)
    records = [json.loads(t) for t in task.train_pool.targets + task.test.targets]
    assert all(list(r) == ["order_id", "amount"] for r in records)
    assert any(r["order_id"] is None for r in records)  # missing cells are null
    by_json = TaskSpec(type="extraction", data={"path": path, "target_column": "record"}, fields=["order_id", "amount"])
    task = prepare_task(by_json)
    assert json.loads(task.test.targets[0])["amount"] == "5"  # numbers become strings; extra keys dropped
    assert target_fields(by_json) == ["order_id", "amount"]


def test_a_label_column_too_fine_to_stratify_an_extraction_task_by_falls_back_to_random_splits(tmp_path):
    """In extraction data a `label` column only stratifies the splits: one with a value per row (an id, a
    free-text note) must not stop the run with a classification error; a coarse one still stratifies."""
    frame = pd.DataFrame({"text": [f"refund order {n}" for n in range(40)], "order": [str(n) for n in range(40)]})
    path = tmp_path / "data.csv"
    frame.assign(label=[f"note {n}" for n in range(40)]).to_csv(path, index=False)
    spec = TaskSpec(type="extraction", data={"path": path}, fields={"order_id": "order"})
    task = prepare_task(spec)
    assert len(task.test) == 10 and set(task.test.labels) == {"all"}
    assert any("'label' has 40 values, too many or too rare" in w for w in task.report.warnings)
    frame.assign(label=["a", "b"] * 20).to_csv(path, index=False)
    task = prepare_task(spec)
    assert sorted(set(task.test.labels)) == ["a", "b"] and task.test.labels.count("a") == 5
    assert not any("stratify" in w for w in task.report.warnings)


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("\n".join(json.dumps(r) for r in rows))
    return path


def test_user_records_with_typed_nested_or_never_set_values(tmp_path):
    """Numbers and booleans are the text they stand for (1, not 1.0; true, not True); a list or object value
    is refused by row; a declared field with no value anywhere (a typo, or empty records) is refused, naming
    the keys the records do have."""
    rows = [{"text": f"order {n} qty {n % 3}", "record": {"qty": n % 3, "ok": n % 2 == 0}} for n in range(20)]
    rows[3]["record"]["qty"] = None  # pandas makes the JSON column's ints floats around this null
    path = _jsonl(tmp_path / "typed.jsonl", rows)
    spec = TaskSpec(type="extraction", data={"path": path, "target_column": "record"}, fields=["qty", "ok"])
    examples, _ = load_target_examples(path, spec)
    first = json.loads(examples.targets[1])
    assert first == {"qty": "1", "ok": "false"}
    nested = _jsonl(tmp_path / "nested.jsonl", rows[:5] + [{"text": "x", "record": {"qty": [1, 2], "ok": True}}])
    with pytest.raises(DataError, match=r"data row 6: field `qty` holds a list"):
        load_target_examples(nested, spec.model_copy(update={"data": spec.data.model_copy(update={"path": nested})}))
    typo = TaskSpec(type="extraction", data={"path": path, "target_column": "record"}, fields=["qty", "order_id"])
    with pytest.raises(DataError, match=r"field `order_id` never has a value .* the records' keys are: ok, qty"):
        load_target_examples(path, typo)
    with pytest.raises(ValueError, match="'qty' named more than once"):
        TaskSpec(type="extraction", data={"path": path, "target_column": "record"}, fields=["qty", "qty"])


def test_empty_generation_references_are_dropped_and_counted_and_none_left_is_refused(tmp_path):
    frame = pd.DataFrame(
        {"text": [f"message {n}" for n in range(12)], "reply": ["" if n % 3 else f"r{n}" for n in range(12)]}
    )
    path = tmp_path / "replies.csv"
    frame.to_csv(path, index=False)
    spec = TaskSpec(type="generation", data={"path": path, "reference_column": "reply"})
    examples, warnings = load_target_examples(path, spec)
    assert examples.targets == ["r0", "r3", "r6", "r9"] and examples.texts[1] == "message 3"
    assert warnings == ["replies.csv: 8 rows with an empty reference dropped"]
    frame.assign(reply="").to_csv(path, index=False)
    with pytest.raises(DataError, match="'reply' is empty in every row"):
        load_target_examples(path, spec)


def test_record_json_is_compact_and_ordered():
    assert record_json({"b": 2, "a": " ", "c": 'say "x"'}, ["a", "b", "c"]) == '{"a":null,"b":"2","c":"say \\"x\\""}'


def test_target_encoder_trains_on_each_items_own_target():
    tokenizer = tiny_tokenizer()
    encoder = TargetEncoder(tokenizer, "Extract.", "extraction", 192, "plain")
    items, targets = encoder.encode_targets(["refund order 12", "hello there"], ['{"a":"12"}', '{"a":null}'])
    assert [item.label_index for item in items] == [0, 1]
    assert all(t[-1] == tokenizer.eos_token_id for t in targets)
    assert tokenizer.decode(items[0].prompt_ids).endswith("Message: refund order 12\nJSON:")
    assert tokenizer.decode(targets[0][:-1]) == ' {"a":"12"}'
    batch = pack(items, targets, tokenizer.pad_token_id, torch.float32)
    # the loss covers exactly the target tokens, EOS included, of both items
    assert batch.target_ids.tolist() == targets[0] + targets[1]


def test_crf_tags_round_trip_and_learns_the_builtin_fields():
    text = "Refund order #A123 for $9.99 please. Thanks, Maria"
    record = {"order_id": "A123", "amount": "$9.99", "customer": "Maria", "date": None}
    tokens, tags = tag_tokens(text, record, list(record))
    assert spans_to_record(text, tokens, tags, list(record)) == record
    # A value is tagged where it stands as whole tokens, not inside a longer one ("12.5" in "12.50", "Ann" in "Anna").
    text = "Anna paid 12.50 then 12.5 more; thanks, Ann"
    record = {"amount": "12.5", "customer": "Ann"}
    tokens, tags = tag_tokens(text, record, list(record))
    assert spans_to_record(text, tokens, tags, list(record)) == record
    assert tag_tokens("paid 12.50", {"amount": "12.5"}, ["amount"])[1] == ["O"] * 4  # nowhere whole: not tagged
    spec = TaskSpec(type="extraction", builtin="support-tickets-extraction", builtin_examples=400)
    task = prepare_task(spec)
    train = task.train_pool.subset(range(150))
    model = CrfExtractor(target_fields(spec), seed=0).fit(train)
    predicted = model.predict(task.test.texts)
    exact = np.mean([p == t for p, t in zip(predicted, task.test.targets)])
    assert exact > 0.6


def test_retrieval_answers_with_the_nearest_training_reference():
    train = Examples(["where is my parcel", "refund my money please"], ["a", "b"], ["track it", "refund it"])
    model = TfidfRetriever().fit(train)
    assert model.predict(["my money back please, a refund", "parcel is where?"]) == ["refund it", "track it"]


def _config(tmp_path: Path, kind: str, candidates: list[dict], extra_task: dict | None = None) -> dict:
    builtin = {"extraction": "support-tickets-extraction", "generation": "support-tickets-replies"}[kind]
    return {
        "name": f"tiny-{kind}",
        "task": {
            "type": kind,
            "builtin": builtin,
            "builtin_examples": 200,
            "decoding": {"max_new_tokens": 32},
            **(extra_task or {}),
        },
        "candidates": candidates,
        "grid": {"train_sizes": [16, 32]},
        "training": {
            "epochs": 2,
            "batch_size": 8,
            "learning_rate": 5e-3,
            "max_validation_items": 8,
            "early_stopping_patience": 0,
        },
        "evaluation": EVALUATION,
        "efficiency": {"gpus": ["a10g"]},
        "output": {"dir": str(tmp_path / kind)},
    }


@pytest.fixture(scope="module")
def extraction_run(tmp_path_factory, tiny_folder):
    from bakeoff.evaluation.analysis import analyse
    from bakeoff.runners.local import run_spec

    tmp = tmp_path_factory.mktemp("extraction")
    config = _config(
        tmp,
        "extraction",
        [{"name": "crf", "model": "crf"}, {"name": "tiny", "model": str(tiny_folder), "train_sizes": [16]}],
        {"fields": ["order_id", "amount"]},
    )
    outcome = run_spec(spec_from_dict(config))
    trials = outcome.store.trials()
    return outcome, {t["trial_id"]: t for t in trials}, analyse(trials, outcome.run_dir, config)


def test_extraction_trials_store_the_task_metrics_and_outputs(extraction_run):
    outcome, trials, _ = extraction_run
    assert outcome.failed == 0 and set(trials) == {"crf/n16/s0", "crf/n32/s0", "tiny/n16/s0"}
    llm = trials["tiny/n16/s0"]["result"]
    metrics = llm["metrics"]
    assert metrics["task_type"] == "extraction" and metrics["main_metric"] == "record_exact_match"
    for key in ("valid_output_rate", "record_exact_match", "field_f1", "hallucination_rate"):
        assert key in metrics["test"] and f"{key}_ci" in metrics["test"]
    assert {"test_clean", "train", "robustness", "memorization"} <= set(metrics)
    assert set(metrics["robustness"]["skipped"]) == {"entities", "lowercase"}  # they change the values a record copies
    assert set(metrics["robustness"]["perturbations"]) == {"padding"}
    losses = llm["training"]["train_loss_per_epoch"]
    assert losses[-1] < losses[0]  # the loop learned from the target tokens
    training = llm["training"]
    assert 0 < training["first_step_s"] < training["step_time_s"]  # recorded apart: the estimate compares the rest
    steady = (training["step_time_s"] - training["first_step_s"]) / (training["steps"] - 1)
    assert llm["efficiency"]["measured_step_s"] == pytest.approx(steady)
    assert llm["model"]["decoding"] == "greedy (JSON-constrained)"
    assert llm["timings"]["ttft_ms_p50"] > 0 and llm["timings"]["decode_tokens_per_s"] > 0
    assert llm["timings"]["torch_threads"] >= 1 and llm["timings"]["latency_measure_s"] > 0
    efficiency = llm["efficiency"]  # what the GPU estimates cost each written record by
    assert efficiency["workload"]["output_tokens"] > 1 and efficiency["estimated_ttft_ms"] > 0
    assert efficiency["measured_decode_tokens_per_s"] == llm["timings"]["decode_tokens_per_s"]
    lines = (outcome.run_dir / "trials" / "tiny__n16__s0" / "predictions.jsonl").read_text().splitlines()
    outputs = [json.loads(line)["output"] for line in lines]
    assert len(outputs) == metrics["test"]["items"] == 10
    valid = sum(list(json.loads(o)) == ["order_id", "amount"] for o in outputs if o.endswith("}"))
    assert valid / len(outputs) == metrics["test"]["valid_output_rate"]
    assert trials["crf/n32/s0"]["result"]["metrics"]["test"]["record_exact_match"] > 0.3


def test_extraction_run_reads_back_as_typed_records(extraction_run):
    from bakeoff.api import load_run

    outcome, _, _ = extraction_run
    run = load_run(outcome.run_dir)  # results.py records forbid unknown keys: every stored key is declared
    assert {t.trial_id for t in run.trials} == {"crf/n16/s0", "crf/n32/s0", "tiny/n16/s0"}
    frame = run.frame  # the notebook view carries the task's own metrics
    for column in (
        "test_record_exact_match",
        "test_record_exact_match_ci_low",
        "test_field_f1",
        "train_record_exact_match",
    ):
        assert frame[column].notna().all(), column
    exact = run.trial("crf/n32/s0").metrics.test.record_exact_match.value
    assert frame.loc["crf/n32/s0", "test_record_exact_match"] == exact


def test_extraction_analysis_compares_on_items_and_draws_curves(extraction_run):
    _, _, analysis = extraction_run
    assert analysis["learning_curves"]["crf"]["metric"] == "record_exact_match"
    assert [row["train_size"] for row in analysis["learning_curves"]["crf"]["curve"]] == [16, 32]
    pair = next(p for p in analysis["paired_comparisons"] if p["train_size"] == 16)
    assert {pair["a"], pair["b"]} == {"crf", "tiny"} and pair["main_metric"] == "record_exact_match"
    assert "difference" in pair["record_exact_match"]


def test_generation_trials_score_replies_and_out_of_scope(tmp_path, tiny_folder):
    """Through `execute` (what `bakeoff run` calls): trials, analysis, then the report files from real records."""
    from bakeoff.cli.run import execute

    config = _config(
        tmp_path,
        "generation",
        [
            {"name": "retrieval", "model": "tfidf-retrieval"},
            {"name": "tiny", "model": str(tiny_folder)},
            {"name": "tiny zero-shot", "model": str(tiny_folder), "method": "zero-shot"},
        ],
        {"decoding": {"max_new_tokens": 12, "strategy": "sample", "temperature": 0.8}},
    )
    config["grid"]["train_sizes"] = [16]
    # The local judge: the tiny candidate's own trial, loaded back with its adapter, judges it against retrieval.
    config["evaluation"] = EVALUATION | {"judge": {"candidate": "tiny", "baseline": "retrieval", "max_items": 3}}
    execute(spec_from_dict(config))
    results = json.loads((tmp_path / "generation" / "results.json").read_text())
    trials = {t["trial_id"]: t["result"] for t in results["trials"]}
    assert set(trials) == {"retrieval/n16/s0", "tiny/n16/s0", "tiny zero-shot/n0/s0"}
    zero_shot = trials["tiny zero-shot/n0/s0"]
    assert zero_shot["training"] is None and zero_shot["metrics"]["main_metric"] == "chrf"
    assert 0 <= zero_shot["metrics"]["test"]["chrf"] <= 1 and zero_shot["timings"]["decode_tokens_per_s"] > 0
    assert "chrF" in (tmp_path / "generation" / "summary.md").read_text()
    retrieval, llm = trials["retrieval/n16/s0"]["metrics"], trials["tiny/n16/s0"]["metrics"]
    assert retrieval["main_metric"] == "chrf" and retrieval["test"]["chrf"] > llm["test"]["chrf"]
    assert retrieval["memorization"]["train"] == pytest.approx(1.0)  # it returns its own training replies
    # ... so its train/test gap says nothing: the flag is n/a, with the reason, not "memorized (gap ...)"
    assert (
        retrieval["memorization"]["flag"] is None and "by construction" in retrieval["memorization"]["not_applicable"]
    )
    assert llm["memorization"]["flag"] is not None and "not_applicable" not in llm["memorization"]
    summary = (tmp_path / "generation" / "summary.md").read_text()
    assert "| retrieval | 16 |" in summary and "YES (gap" not in summary.split("| retrieval | 16 |")[1].split("\n")[0]
    assert "`memorized?` is n/a for retrieval: a lookup" in summary
    assert "n/a for retrieval" in (tmp_path / "generation" / "report.html").read_text()
    oos = llm["out_of_scope"]
    assert oos["scored_against"] == "fallback_reference" and oos["items"] == 3
    assert "entities" in llm["robustness"]["perturbations"]  # replies do not copy entities: kept for generation
    assert trials["tiny/n16/s0"]["model"]["decoding"] == "sample"
    assert trials["tiny/n16/s0"]["timings"]["output_tokens_per_s"] > 0
    judge = results["run"]["analysis"]["judge"]
    assert judge["judged_by"] == "candidate `tiny` (trial tiny/n16/s0)" and "error" not in judge
    record = next(r for r in judge["records"] if r["candidate"] == "tiny")
    assert record["items"] == 3 and 0 <= record["win_rate"] <= 1
    assert record["wins"] + record["ties"] + record["losses"] == 3
    assert "judged by candidate `tiny` (trial tiny/n16/s0)" in (tmp_path / "generation" / "summary.md").read_text()


def test_serving_an_extraction_run_is_refused_with_a_reason(extraction_run):
    from bakeoff.errors import BakeoffError
    from bakeoff.serving.predictor import find_trial

    outcome, _, _ = extraction_run
    with pytest.raises(BakeoffError, match="holds a `extraction` task: serving and export cover classification"):
        find_trial(outcome.run_dir, "crf")


def _targets_csv(path: Path, n: int = 20, **columns) -> Path:
    frame = pd.DataFrame(
        {"text": [f"refund order {k} please" for k in range(n)], "order": [str(k) for k in range(n)], **columns}
    )
    frame.to_csv(path, index=False)
    return path


def test_a_held_out_file_with_no_value_for_any_field_is_refused_a_rare_field_is_only_warned(tmp_path):
    """A test file whose records use other keys was an all-null test set on which a model writing null
    everywhere scored 100%; one field never set in a small test file is only a warning."""
    from bakeoff.data.targets import check_records

    fields = ["order_id", "amount"]
    with pytest.raises(DataError, match=r"no record has a value for any of `task.fields` \(order_id, amount\)"):
        check_records([{"OrderID": "1", "Amount": "2"}] * 5, fields, Path("test.jsonl"), main=False)
    with pytest.raises(DataError, match=r"records' keys are: none \(every record is empty\)"):
        check_records([{}] * 5, fields, Path("test.jsonl"), main=False)
    warnings = check_records([{"order_id": "1"}] * 5, fields, Path("test.jsonl"), main=False)
    assert warnings == ["test.jsonl: never a value for amount"]


def test_label_and_id_columns_are_checked_in_target_data(tmp_path):
    """A `label_column` left at its default may be absent (one stratum); one named in the config must exist,
    or the splits would silently lose the stratification asked for. `id_column` as for classification."""
    path = _targets_csv(tmp_path / "data.csv", category=["a", "b"] * 10)
    spec = TaskSpec(type="extraction", data={"path": path}, fields={"order_id": "order"})
    assert prepare_task(spec).test.labels  # default `label`: absent, one stratum
    assert prepare_task(TaskSpec.model_validate(spec.model_dump())).test.labels  # ... also when written out
    named = TaskSpec(type="extraction", data={"path": path, "label_column": "category"}, fields={"order_id": "order"})
    assert set(prepare_task(named).test.labels) == {"a", "b"}
    typo = TaskSpec(type="extraction", data={"path": path, "label_column": "categroy"}, fields={"order_id": "order"})
    with pytest.raises(DataError, match=r"no column 'categroy' \(task.data.label_column\)"):
        prepare_task(typo)
    for id_column, message in (("uid", r"no id column 'uid'"), ("category", r"2 ids occur more than once")):
        ids = TaskSpec(type="generation", data={"path": path, "reference_column": "order", "id_column": id_column})
        with pytest.raises(DataError, match=message):
            prepare_task(ids)


def test_a_target_record_naming_a_key_twice_is_refused_by_row(tmp_path):
    records = [json.dumps({"order_id": str(k)}) for k in range(20)]
    records[6] = '{"order_id": "6", "order_id": "7"}'
    path = _targets_csv(tmp_path / "data.csv", record=records)
    spec = TaskSpec(type="extraction", data={"path": path, "target_column": "record"}, fields=["order_id"])
    with pytest.raises(DataError, match=r"data row 7: the target record names `order_id` twice"):
        load_target_examples(path, spec)


def _run_spec(task: dict, candidates: list[dict] | None = None) -> dict:
    return {
        "name": "t",
        "task": {"builtin_examples": 200, **task},
        "candidates": candidates or [{"name": "base", "model": "tfidf-retrieval"}],
    }


def test_sampling_settings_with_greedy_decoding_are_refused_unless_at_their_defaults():
    from bakeoff.errors import ConfigError

    task = {"type": "generation", "builtin": "support-tickets-replies"}
    spec = spec_from_dict(_run_spec(task))
    spec_from_dict(spec.model_dump(mode="json"))  # written out whole: every default is there
    spec_from_dict(_run_spec(task | {"decoding": {"strategy": "sample", "temperature": 0.2}}))
    with pytest.raises(ConfigError, match=r"task.decoding.temperature: 0.2 is for sampled decoding, but .* greedy"):
        spec_from_dict(_run_spec(task | {"decoding": {"temperature": 0.2}}))
    with pytest.raises(ConfigError, match=r"task.decoding.seed: 3 is for sampled decoding"):
        spec_from_dict(_run_spec(task | {"decoding": {"strategy": "greedy", "seed": 3}}))


def test_max_new_tokens_must_fit_each_candidates_context_read_from_its_config():
    from bakeoff.errors import ConfigError
    from bakeoff.runners.preflight import check_context

    llm = {"name": "llm", "model": "/nowhere"}
    spec = spec_from_dict(
        _run_spec({"type": "generation", "builtin": "support-tickets-replies", "decoding": {"max_new_tokens": 300}})
        | {"candidates": [llm]}
    )
    candidate = spec.candidates[0]
    check_context(candidate, spec, {"max_position_embeddings": 492})  # 192 prompt + 300 new: exactly fits
    with pytest.raises(ConfigError, match=r"exceed the model's context of 491 \(max_position_embeddings"):
        check_context(candidate, spec, {"max_position_embeddings": 491})
    with pytest.raises(ConfigError, match=r"context of 256 \(n_positions in its config.json\); set .* at most 64"):
        check_context(candidate, spec, {"n_positions": 256})
    with pytest.raises(ConfigError, match=r"context of 100 .*lower training.max_prompt_tokens below 100"):
        check_context(candidate, spec, {"text_config": {"max_position_embeddings": 100}})  # multimodal configs
    check_context(candidate, spec, {})  # no length named: nothing to check
    classification = spec_from_dict(_run_spec({"builtin": "support-tickets"}) | {"candidates": [llm]})
    check_context(classification.candidates[0], classification, {"max_position_embeddings": 16})  # nothing decoded


@pytest.mark.parametrize("kind", ["extraction", "generation"])
def test_a_resolved_spec_written_out_whole_validates_again(tmp_path, kind):
    """`validate --explain` and stored specs hold every default (temperature, top_p, label_column `label`...):
    read back as a config, they must pass the checks that refuse settings a user wrote."""
    import yaml

    from bakeoff.config import load_spec
    from bakeoff.runners.preflight import preflight

    path = _targets_csv(tmp_path / "data.csv", reply=[f"Hi {k}" for k in range(20)])
    task = {"type": kind, "data": {"path": str(path)}}
    task |= (
        {"fields": {"order_id": "order"}}
        if kind == "extraction"
        else {"data": task["data"] | {"reference_column": "reply"}}
    )
    config = {
        "name": "whole",
        "task": task,
        "candidates": [{"name": "base", "model": "crf" if kind == "extraction" else "tfidf-retrieval"}],
        "grid": {"train_sizes": [4]},
        "output": {"dir": str(tmp_path / "run")},
    }
    (tmp_path / "whole.yaml").write_text(yaml.safe_dump(spec_from_dict(config).model_dump(mode="json")))
    assert preflight(load_spec(tmp_path / "whole.yaml")) is not None
