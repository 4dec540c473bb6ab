"""Generation: free text per input; quality is chrF against the reference (an LLM judge may add a win-rate)."""

from bakeoff.tasks.base import TaskType

GENERATION = TaskType(
    name="generation",
    main_metric="chrf",
    higher_is_better=True,
    metric_labels={"chrf": "chrF", "rouge_l": "ROUGE-L", "judge_win_rate": "judge win-rate"},
)
