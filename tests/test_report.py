"""The HTML report and summary from recorded results: every section, real numbers, dataset text escaped."""

from decision_fixture import results, typed

from bakeoff.decision.engine import recommend
from bakeoff.report.html import render
from bakeoff.report.summary import markdown


def test_report_has_every_section_with_numbers_and_is_self_contained():
    data = results()
    html = render(typed(data), recommend(typed(data)))
    for section in (
        "Recommendation",
        "Candidates",
        "Data appetite",
        "Generalization, out-of-scope items, calibration",
        "Confusion matrices",
        "Latency, throughput and memory",
        "Cost and capacity on GPUs",
        "Architecture facts",
        "Run metadata",
    ):
        assert section in html, section
    assert "fine-tune big-llm" in html and "93.0 [90.0, 96.0]" in html
    assert html.count("<svg") >= 5  # learning curves, robustness, ROC, risk-coverage, reliability, latency
    assert "http://" not in html.replace("http://www.w3.org/2000/svg", "") and "https://" not in html, (
        "no external resources"
    )


def test_dataset_text_is_escaped_everywhere():
    data = results()
    evil = "<script>alert('x')</script>"
    data["run"]["labels"] = [evil, "b"]
    data["trials"][0]["candidate"] = evil  # a hostile name reaching tables and charts
    data["run"]["analysis"]["learning_curves"][evil] = data["run"]["analysis"]["learning_curves"]["big-llm"]
    html = render(typed(data), recommend(typed(results())))
    assert "<script>" not in html and "&lt;script&gt;" in html


def test_summary_markdown_leads_with_the_recommendation():
    data = results()
    text = markdown("fixture", typed(data), recommend(typed(data)))
    assert text.index("## Recommendation") < text.index("## Quality")


def test_summary_states_the_runs_own_evaluation_settings():
    data = results()
    data["run"]["spec"]["evaluation"] = {"calibration_bins": 10, "max_train_items": 50, "confidence": 0.9}
    text = markdown("fixture", typed(data), recommend(typed(data)))
    assert "(10 bins)" in text and "up to 50 of" in text and "percentile-bootstrap 90% intervals" in text
    assert "15 bins" not in text and "up to 200" not in text


def test_a_failed_trials_multiline_error_with_a_pipe_stays_in_its_table_cell():
    data = results()
    failed = dict(data["trials"][0], trial_id="tfidf/n400/s0", train_size=400, status="failed", result=None)
    failed["error"] = "loss became nan | step 3\nlower training.learning_rate"
    data["trials"].append(failed)
    rows = [line for line in markdown("fixture", typed(data)).splitlines() if "loss became nan" in line]
    assert rows and all(line.count(" | ") == rows[0].count(" | ") for line in rows)
    assert "nan \\| step 3 lower training.learning_rate" in rows[0]
