"""The run spec: every shipped YAML validates; mistakes name the key and the fix."""

from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from bakeoff.cli.demo import demo_config_path
from bakeoff.config import RunSpec, apply_overrides, load_spec, spec_from_dict
from bakeoff.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]
MINIMAL = {
    "name": "t",
    "task": {"builtin": "support-tickets"},
    "candidates": [{"name": "tfidf", "model": "tfidf-logreg"}],
}


@pytest.mark.parametrize("path", sorted((REPO / "configs").glob("*.yaml")) + [demo_config_path()], ids=lambda p: p.name)
def test_shipped_configs_validate(path):
    spec = load_spec(path)
    assert isinstance(spec, RunSpec) and spec.candidates


def test_unknown_key_is_an_error_with_a_suggestion():
    raw = MINIMAL | {"training": {"epoch": 2}}
    with pytest.raises(ConfigError, match=r"training\.epoch: unknown key; did you mean `epochs`"):
        spec_from_dict(raw)


def test_wrong_type_names_the_key():
    raw = MINIMAL | {"grid": {"train_sizes": ["many"]}}
    with pytest.raises(ConfigError, match=r"grid\.train_sizes\.0"):
        spec_from_dict(raw)


def test_task_needs_exactly_one_source():
    with pytest.raises(ConfigError, match="exactly one of `task.builtin`"):
        spec_from_dict(MINIMAL | {"task": {}})


def test_baselines_take_no_training_method_and_llms_no_fit():
    with pytest.raises(ConfigError, match="classical baseline"):
        spec_from_dict(MINIMAL | {"candidates": [{"name": "x", "model": "tfidf-logreg", "method": "lora"}]})
    with pytest.raises(ConfigError, match="`fit` is for the classical baselines"):
        spec_from_dict(MINIMAL | {"candidates": [{"name": "x", "model": "smollm2-135m", "method": "fit"}]})


def test_candidate_names_must_be_unique():
    twice = [{"name": "a", "model": "tfidf-logreg"}, {"name": "a", "model": "minilm-logreg"}]
    with pytest.raises(ConfigError, match="repeated: a"):
        spec_from_dict(MINIMAL | {"candidates": twice})


def test_spec_is_frozen_and_defaults_resolve():
    spec = spec_from_dict(MINIMAL)
    with pytest.raises(ValidationError, match="frozen"):
        spec.name = "other"
    assert spec.candidates[0].resolved_method == "fit"
    assert spec.run_dir == Path("runs/t")


def test_overrides_reach_nested_keys_and_list_items():
    raw = apply_overrides(
        {"candidates": [{"name": "a"}], "training": {}},
        ["training.epochs=2", "grid.train_sizes=[10, 20]", "candidates.0.method=full"],
    )
    assert raw["training"]["epochs"] == 2 and raw["grid"]["train_sizes"] == [10, 20]
    assert raw["candidates"][0]["method"] == "full"
    with pytest.raises(ConfigError, match="not key=value"):
        apply_overrides({}, ["training.epochs"])
    with pytest.raises(ConfigError, match="not an index"):
        apply_overrides({"candidates": []}, ["candidates.3.method=full"])


def test_fingerprint_ignores_output_folder_but_not_settings():
    a = spec_from_dict(MINIMAL)
    assert a.fingerprint() == spec_from_dict(MINIMAL | {"output": {"dir": "/elsewhere"}}).fingerprint()
    assert a.fingerprint() != spec_from_dict(MINIMAL | {"training": {"epochs": 1}}).fingerprint()


def test_malformed_yaml_and_non_mapping(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(ConfigError, match="malformed YAML"):
        load_spec(bad)
    bad.write_text("- just\n- a list\n")
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_spec(bad)


def test_data_paths_are_relative_to_the_config_file(tmp_path):
    (tmp_path / "cfg").mkdir()
    config = tmp_path / "cfg" / "run.yaml"
    config.write_text("name: r\ntask: {data: {path: ../data.csv}}\ncandidates: [{name: t, model: tfidf-logreg}]\n")
    assert load_spec(config).task.data.path == (tmp_path / "data.csv").resolve()


def test_prompt_style_defaults_to_auto_and_rejects_unknown_styles():
    assert spec_from_dict(MINIMAL).task.prompt_style == "auto"
    assert spec_from_dict(MINIMAL).training.lora.dropout == 0.0
    raw = MINIMAL | {"task": MINIMAL["task"] | {"prompt_style": "fancy"}}
    with pytest.raises(ConfigError, match=r"task\.prompt_style"):
        spec_from_dict(raw)


def test_explain_describes_every_setting_and_reads_back_as_the_same_spec():
    from bakeoff.config import explain, load_spec

    spec = load_spec(REPO / "configs" / "banking77.yaml")
    lines = explain(spec)
    assert "# Peak learning rate. Default: 2e-4 for LoRA/QLoRA, 2e-5 for full fine-tuning." in [
        line.strip() for line in lines
    ]
    assert spec_from_dict(yaml.safe_load("\n".join(lines))) == spec


def test_demo_has_one_qlora_row_at_the_larger_size_and_no_qlora_drops_only_it():
    from bakeoff.cli.demo import without_qlora_rows

    demo = load_spec(demo_config_path(), ["output.dir=/tmp/demo-test"])
    qlora_rows = [candidate for candidate in demo.candidates if candidate.method == "qlora"]
    assert [(c.model, c.train_sizes) for c in qlora_rows] == [("smollm2-135m", [max(demo.grid.train_sizes)])]
    assert any(c.model == "smollm2-135m" and c.method == "lora" for c in demo.candidates), "beside its LoRA row"
    plain = without_qlora_rows(demo)
    assert plain.model_dump() == demo.model_dump() | {"candidates": plain.model_dump()["candidates"]}
    assert plain.model_dump()["candidates"] == [c for c in demo.model_dump()["candidates"] if c["method"] != "qlora"]
    assert plain.fingerprint() != demo.fingerprint(), "a run folder of one is not resumed as the other"


@pytest.mark.parametrize(
    ("flag", "installed", "qlora_rows", "note"),
    [([], True, 1, False), ([], False, 0, True), (["--no-qlora"], True, 0, False), (["--qlora"], False, 1, False)],
)
def test_the_demo_command_keeps_the_qlora_row_unless_asked_or_bitsandbytes_is_missing(
    monkeypatch, tmp_path, flag, installed, qlora_rows, note
):
    from typer.testing import CliRunner

    import bakeoff.api
    from bakeoff.cli import demo
    from bakeoff.cli.main import app

    ran = []
    monkeypatch.setattr(bakeoff.api, "run", lambda spec, console=None: ran.append(spec))  # what the demo runs
    monkeypatch.setattr(demo, "show", lambda run: None)
    monkeypatch.setattr(demo, "has_bitsandbytes", lambda: installed)
    result = CliRunner().invoke(app, ["demo", "--out", str(tmp_path / "demo"), *flag, "training.epochs=1"])
    assert result.exit_code == 0, result.output
    (spec,) = ran
    assert sum(candidate.method == "qlora" for candidate in spec.candidates) == qlora_rows
    assert (spec.training.epochs, spec.run_dir) == (1, tmp_path / "demo")
    assert ("bitsandbytes is not installed" in result.output) is note


def test_a_candidate_learning_rate_is_its_own_and_only_where_it_trains(tmp_path, tiny_folder):
    import json

    from run_fixture import make_run

    base = {"name": "x", "task": {"builtin": "support-tickets"}}
    for candidate in ({"model": "tfidf-logreg"}, {"model": "smollm2-135m", "method": "zero-shot"}):
        with pytest.raises(ConfigError, match="learning_rate` applies to lora"):
            spec_from_dict(base | {"candidates": [{"name": "c", "learning_rate": 1e-3, **candidate}]})
    candidates = [
        {"name": "run rate", "model": str(tiny_folder), "method": "lora"},
        {"name": "own rate", "model": str(tiny_folder), "method": "lora", "learning_rate": 1e-3},
    ]
    trials = json.loads((make_run(tmp_path / "run", candidates, [16]) / "results.json").read_text())["trials"]
    rates = {t["candidate"]: t["result"]["training"]["learning_rate"] for t in trials}
    assert rates == {"run rate": 5e-3, "own rate": 1e-3}


def test_a_key_written_twice_is_refused_with_both_lines_in_the_file_and_in_overrides(tmp_path):
    """PyYAML keeps the last of two equal keys without a word (a second `training:` section replaced the
    first; `fields: {a: x, a: y}` lost a field); merge keys (`<<: *base`) may still be overridden."""
    from bakeoff.config import DuplicateKeyError, yaml_load

    config = tmp_path / "twice.yaml"
    config.write_text(
        "name: t\ntask: {builtin: support-tickets}\ncandidates: [{name: tfidf, model: tfidf-logreg}]\n"
        "training:\n  epochs: 2\n  batch_size: 4\n  epochs: 5\n"
    )
    with pytest.raises(ConfigError, match=r"twice.yaml: line 7: key `epochs` is written twice .*first on line 5"):
        load_spec(config)
    with pytest.raises(DuplicateKeyError):
        yaml_load("- {a: 1}\n- {b: 1, b: 2}\n")  # in any mapping, at any depth
    assert yaml_load("base: &b {x: 1, y: 2}\nmine:\n  <<: *b\n  x: 3\n")["mine"] == {"x": 3, "y": 2}
    with pytest.raises(ConfigError, match=r"override `task.fields=\{a: x, a: y\}`: key `a` appears twice"):
        apply_overrides({"task": {}}, ["task.fields={a: x, a: y}"])
    assert apply_overrides({"task": {}}, ["task.fields={a: x, b: y}"]) == {"task": {"fields": {"a": "x", "b": "y"}}}


def test_a_blank_fallback_reference_is_refused():
    with pytest.raises(ValidationError, match="blank; write the reply expected"):
        RunSpec.model_validate(
            MINIMAL
            | {"task": {"type": "generation", "builtin": "support-tickets-replies", "fallback_reference": " \n"}}
        )


TASKS = {
    "classification": {"data": {"path": "/d/a.csv", "labels": ["a", "b"], "out_of_scope_path": "/d/o.csv"}},
    "extraction": {"type": "extraction", "data": {"path": "/d/a.csv", "target_column": "r"}, "fields": ["a"]},
    "generation": {"type": "generation", "data": {"hub": "a/b", "reference_column": "r"}, "fallback_reference": None},
}
OWN_KEYS = {  # keys only one or two task types have, as `validate --explain` writes them
    "classification": {"labels", "max_per_label", "out_of_scope_labels", "out_of_scope_path"},
    "extraction": {"fields", "decoding", "target_column"},
    "generation": {"fallback_reference", "decoding", "reference_column", "out_of_scope_path"},
}


@pytest.mark.parametrize("kind", TASKS)
def test_each_task_type_has_and_explains_only_its_own_keys(kind):
    from bakeoff.config import TASK_CLASSES, explain

    spec = spec_from_dict({"name": "t", "task": TASKS[kind], "candidates": [{"name": "c", "model": "smollm2-135m"}]})
    assert type(spec.task) is TASK_CLASSES[kind]
    explained = {line.strip().split(":")[0] for line in explain(spec) if not line.strip().startswith("#")}
    others = set().union(*OWN_KEYS.values()) - OWN_KEYS[kind]
    assert OWN_KEYS[kind] <= explained and not explained & others
    assert spec_from_dict(yaml.safe_load("\n".join(explain(spec)))) == spec


def test_run_fingerprints_are_those_of_the_spec_before_task_types_had_their_own_keys():
    """A run folder made before keeps resuming: the hash still covers every type's keys, unset ones included
    (the values were computed with the one flat TaskSpec and DataSpec of before)."""
    tasks = {
        "6886536444fb32ff": {
            "data": {"path": "/x/a.csv", "labels": ["a", "b"], "out_of_scope_path": "/x/o.csv", "max_per_label": 5}
        },
        "5c33ae2bb6534c5f": {
            "type": "extraction",
            "data": {"path": "/x/a.csv", "target_column": "rec"},
            "fields": ["a"],
            "decoding": {"max_new_tokens": 50},
        },
        "efdb21409363f44a": {
            "type": "generation",
            "data": {"hub": "a/b", "reference_column": "r", "test_split": "test"},
            "decoding": {"strategy": "sample", "temperature": 0.3},
        },
    }
    for fingerprint, task in tasks.items():
        spec = spec_from_dict({"name": "t", "task": task, "candidates": [{"name": "c", "model": "smollm2-135m"}]})
        assert spec.fingerprint() == fingerprint, task


def test_a_spec_stored_whole_with_every_types_keys_unset_still_loads():
    from bakeoff.config.task import with_every_type_key

    llm = [{"name": "c", "model": "smollm2-135m"}]
    for task in ({"builtin": "support-tickets"}, *TASKS.values()):
        spec = spec_from_dict(MINIMAL | {"task": task, "candidates": llm})
        stored = spec.model_dump(mode="json")
        stored["task"] = with_every_type_key(stored["task"])  # as runs stored it before: `fields: null`, ...
        assert {"fields", "fallback_reference", "decoding"} <= set(stored["task"])
        assert RunSpec.model_validate(stored) == spec


def test_a_key_of_another_task_type_is_refused_naming_the_types_it_belongs_to():
    refused = {
        "decoding": {"builtin": "support-tickets", "decoding": {"strategy": "sample"}},
        "fallback_reference": TASKS["extraction"] | {"fallback_reference": "Sorry"},
    }
    with pytest.raises(ConfigError, match=r"`task.decoding` is for another task type \(extraction, generation\); "):
        spec_from_dict(MINIMAL | {"task": refused["decoding"]})
    with pytest.raises(ConfigError, match=r"`task.fallback_reference` is for another task type \(generation\); task"):
        spec_from_dict(MINIMAL | {"task": refused["fallback_reference"], "candidates": [{"name": "c", "model": "crf"}]})
    spec_from_dict(MINIMAL | {"task": {"builtin": "support-tickets", "decoding": {}, "fields": None}})  # unset


def test_task_spec_and_data_spec_build_the_class_of_their_type():
    from bakeoff.config import DataSpec, ExtractionDataSpec, GenerationTaskSpec, TaskSpec

    assert type(TaskSpec(type="generation", builtin="support-tickets-replies")) is GenerationTaskSpec
    assert type(TaskSpec.model_validate({"type": "generation", "builtin": "support-tickets-replies"})) is (
        GenerationTaskSpec
    )
    assert type(DataSpec(path="a.csv", target_column="r")) is ExtractionDataSpec
    task = TaskSpec(type="extraction", data=DataSpec(path="a.csv"), fields={"a": "b"})  # read again as extraction's
    assert type(task.data) is ExtractionDataSpec
