"""LLM-as-judge: verdict parsing, position swapping, win-rate, and the OpenAI-compatible path against a local
stand-in server (127.0.0.1, ephemeral port, started and stopped here)."""

import numpy as np
import pytest

from bakeoff.config import JudgeSpec
from bakeoff.errors import BakeoffError
from bakeoff.evaluation.judge import (
    judge_candidates,
    judge_from_spec,
    judge_item_scores,
    judge_summary,
    openai_judge,
    parse_verdict,
)

TEXTS = ["Where is my order?", "Refund please", "Can you fix my car?", "Change my address"]
REFS = ["It ships today.", "Your refund is issued.", "We only handle orders, sorry.", "Address updated."]


def _replies(prompt: str) -> tuple[str, str]:
    a = prompt.split("Reply A:\n", 1)[1].split("\n\nReply B:", 1)[0]
    b = prompt.split("Reply B:\n", 1)[1].split("\n\n", 1)[0]
    return a, b


def longer_wins(prompt: str) -> str:
    """A content judge: the longer reply wins, equal lengths tie."""
    a, b = _replies(prompt)
    return "A" if len(a) > len(b) else "B" if len(b) > len(a) else "TIE"


def test_parse_verdict():
    assert parse_verdict("A") == "A" and parse_verdict(" b.") == "B" and parse_verdict("Tie") == "TIE"
    assert parse_verdict("Reply A is better") == "A"  # the first A/B/TIE word
    assert parse_verdict("neither") is None and parse_verdict("") is None


def test_win_rate_by_hand_and_position_swap_cancels_order_bias():
    candidate = ["It ships today, tracking attached.", "Refund issued.", "x", "Address updated."]
    baseline = ["Soon.", "Your refund has been issued today.", "x", "Address updated."]
    scores = judge_item_scores(longer_wins, TEXTS, candidate, baseline, REFS)
    # item 0: candidate longer (win both orders) 1; item 1: loses 0; items 2, 3: equal, tie 0.5
    assert scores["score"].tolist() == [1.0, 0.0, 0.5, 0.5]
    summary = judge_summary(scores, n_resamples=200)
    assert summary["win_rate"] == pytest.approx(0.5)
    assert (summary["wins"], summary["ties"], summary["losses"]) == (1, 2, 1)
    assert summary["position_consistency"] == 1.0 and summary["first_position_rate"] == pytest.approx(0.5)
    assert summary["win_rate_ci"][0] <= 0.5 <= summary["win_rate_ci"][1]

    # A judge that always says "A" prefers whatever comes first: swapping positions makes it a tie everywhere.
    biased = judge_summary(judge_item_scores(lambda p: "A", TEXTS, candidate, baseline), n_resamples=200)
    assert biased["win_rate"] == 0.5 and biased["position_consistency"] == 0.0
    assert biased["first_position_rate"] == 1.0 and biased["ties"] == 4
    garbled = judge_summary(judge_item_scores(lambda p: "hmm", TEXTS, candidate, baseline), n_resamples=200)
    assert garbled["win_rate"] == 0.5 and garbled["unparsed_verdicts"] == 8 and garbled["first_position_rate"] is None


def test_judge_candidates_against_a_baseline():
    outputs = {
        "big": ["A long and complete reply here."] * 4,
        "small": ["Short."] * 4,
        "same": ["Short."] * 4,
    }
    result = judge_candidates(longer_wins, TEXTS, outputs, baseline="small", n_resamples=200)
    assert set(result) == {"big", "same"}
    assert result["big"]["win_rate"] == 1.0 and result["big"]["baseline"] == "small"
    assert result["same"]["win_rate"] == 0.5
    with pytest.raises(BakeoffError, match="evaluation.judge.baseline"):
        judge_candidates(longer_wins, TEXTS, outputs, baseline="nope")


def test_openai_compatible_endpoint_on_a_local_stand_in(monkeypatch):
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse

    from bakeoff.serving.server import background

    app = FastAPI()
    seen: list[dict] = []

    @app.post("/v1/chat/completions")
    async def completions(request: Request):
        if request.headers.get("authorization") != "Bearer sekrit":
            return JSONResponse({"error": "bad key"}, status_code=401)
        body = await request.json()
        seen.append(body)
        verdict = longer_wins(body["messages"][0]["content"])
        return {"choices": [{"index": 0, "message": {"role": "assistant", "content": verdict}}]}

    candidate = ["It ships today, tracking attached.", "Refund issued.", "x", "Address updated."]
    baseline = ["Soon.", "Your refund has been issued today.", "x", "Address updated."]
    with background(app, start_timeout_s=30) as url:
        judge = openai_judge(url + "/v1", "judge-model", api_key="sekrit", timeout_s=10)
        scores = judge_item_scores(judge, TEXTS, candidate, baseline, REFS)
        assert scores["score"].tolist() == [1.0, 0.0, 0.5, 0.5]
        assert len(seen) == 8 and seen[0]["model"] == "judge-model" and seen[0]["temperature"] == 0
        assert "Reference reply" in seen[0]["messages"][0]["content"]

        monkeypatch.setenv("JUDGE_KEY", "sekrit")
        spec = JudgeSpec(endpoint=url + "/v1", model="judge-model", api_key_env="JUDGE_KEY", baseline="small")
        assert judge_from_spec(spec)("Reply A:\nlonger one\n\nReply B:\nshort\n\n") == "A"
        with pytest.raises(BakeoffError, match="answered 401"):
            openai_judge(url + "/v1", "judge-model", api_key="wrong")("x")
        with pytest.raises(BakeoffError, match="answered 404"):
            openai_judge(url + "/nope", "judge-model", api_key="sekrit")("x")


def test_judge_spec_and_local_judge():
    with pytest.raises(ValueError, match="exactly one"):
        JudgeSpec(baseline="a")
    with pytest.raises(ValueError, match="needs `model`"):
        JudgeSpec(endpoint="http://127.0.0.1:1/v1", baseline="a")
    local = JudgeSpec(candidate="big", baseline="small")
    assert judge_from_spec(local, longer_wins) is longer_wins
    with pytest.raises(BakeoffError, match="no loaded model"):
        judge_from_spec(local)
    missing = JudgeSpec(endpoint="http://127.0.0.1:1/v1", model="m", api_key_env="BAKEOFF_NO_SUCH_KEY", baseline="a")
    with pytest.raises(BakeoffError, match="is not set"):
        judge_from_spec(missing)
    assert np.isclose(judge_summary(judge_item_scores(longer_wins, [], [], []))["win_rate"], 0.0)


def test_run_spec_checks_the_judge_names_and_task_type():
    from bakeoff.config import spec_from_dict
    from bakeoff.errors import ConfigError

    raw = {
        "name": "t",
        "task": {"type": "generation", "builtin": "support-tickets-replies"},
        "candidates": [{"name": "big", "model": "smollm2-135m"}, {"name": "small", "model": "smollm2-135m"}],
        "evaluation": {"judge": {"candidate": "big", "baseline": "small"}},
    }
    spec = spec_from_dict(raw)
    assert spec.evaluation.judge.baseline == "small"
    unjudged = spec_from_dict(raw | {"evaluation": {}})
    assert spec.fingerprint() == unjudged.fingerprint()  # judged after the trials: it changes none of them
    with pytest.raises(ConfigError, match="evaluation.judge.baseline `nope` is not a candidate"):
        spec_from_dict(raw | {"evaluation": {"judge": {"candidate": "big", "baseline": "nope"}}})
    with pytest.raises(ConfigError, match="task.type to generation"):
        spec_from_dict(raw | {"task": {"builtin": "support-tickets"}})
    with_retrieval = raw | {"candidates": raw["candidates"] + [{"name": "ret", "model": "tfidf-retrieval"}]}
    with pytest.raises(ConfigError, match="`ret` is a classical baseline"):
        spec_from_dict(with_retrieval | {"evaluation": {"judge": {"candidate": "ret", "baseline": "small"}}})


def test_the_local_judge_loads_the_candidates_most_trained_finished_trial():
    from bakeoff.evaluation.judge import judging_trial

    rows = [
        {"candidate": "big", "train_size": 100, "seed": 0, "status": "done", "trial_id": "big/n100/s0"},
        {"candidate": "big", "train_size": 400, "seed": 1, "status": "done", "trial_id": "big/n400/s1"},
        {"candidate": "big", "train_size": 400, "seed": 0, "status": "done", "trial_id": "big/n400/s0"},
        {"candidate": "big", "train_size": 800, "seed": 0, "status": "failed", "trial_id": "big/n800/s0"},
        {"candidate": "small", "train_size": 900, "seed": 0, "status": "done", "trial_id": "small/n900/s0"},
    ]
    assert judging_trial(rows, "big")["trial_id"] == "big/n400/s0"
    assert judging_trial(rows[3:4], "big") is None


def test_local_judge_prompts_through_the_chat_template_when_there_is_one():
    from tiny import tiny_tokenizer

    from bakeoff.evaluation.local_judge import _prompt_ids

    chat, plain = tiny_tokenizer(chat=True), tiny_tokenizer(chat=False)
    assert chat.decode(_prompt_ids(chat, "A or B?")) == "<|im_start|>user\nA or B?<|im_end|>\n<|im_start|>assistant\n"
    assert plain.decode(_prompt_ids(plain, "A or B?")) == "A or B?"
