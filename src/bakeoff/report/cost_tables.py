"""The money view of a recommendation made with `decision.costs`: a table per candidate, the comparison of the
top two, and the chart of cost against the abstention threshold. Reads the recommendation only (its evidence
and its `costs` section), so the report and summary.md show the same numbers the decision used."""

from __future__ import annotations

from bakeoff.report.svg import line_chart


def _usd(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def cost_rows(recommendation: dict | None) -> list[dict[str, str]]:
    """One row per costed candidate, cheapest first (the ranking's order)."""
    if not recommendation or not recommendation.get("costs"):
        return []
    by_name = {e["candidate"]: e for e in recommendation["evidence"] if e.get("costs")}
    order = [name for name, _ in recommendation["ranking"]] + sorted(
        set(by_name) - set(dict(recommendation["ranking"]))
    )
    rows = []
    for name in order:
        if name not in by_name:
            continue
        c = by_name[name]["costs"]
        total_ci = c["usd_per_month_total_ci"]
        rows.append(
            {
                "candidate": name,
                "trained on": str(c["measured_at"]),
                "threshold (validation)": f"{c['threshold']:.2f}",
                "automated %": f"{100 * c['automation_rate']:.1f} [{100 * c['automation_rate_ci'][0]:.1f}, "
                f"{100 * c['automation_rate_ci'][1]:.1f}]",
                "$/1k items (errors + review, test)": f"{c['usd_per_1k_items']:,.2f} "
                f"[{c['usd_per_1k_items_ci'][0]:,.2f}, {c['usd_per_1k_items_ci'][1]:,.2f}]",
                "wrong answers $/month": _usd(c["usd_per_month_errors"]),
                "reviews $/month": _usd(c["usd_per_month_review"]),
                "serving $/month": _usd(c["usd_per_month_serving"]),
                "fine-tune $/month": f"{c['usd_per_month_fine_tune']:,.2f}",
                "total $/month": _usd(c["usd_per_month_total"])
                + (f" [{_usd(total_ci[0])}, {_usd(total_ci[1])}]" if total_ci else ""),
            }
        )
    return rows


def cost_lines(recommendation: dict | None) -> list[str]:
    """The settings the money was computed with, the top two's difference, and the notes on the costs."""
    section = (recommendation or {}).get("costs")
    if not section:
        return []
    costs = (recommendation.get("answers") or {}).get("costs") or {}
    review = costs.get("review")
    lines = [
        f"Volume {section['volume_items_per_month']:,.0f} items/month; a wrong answer ${costs.get('error', 0):g}"
        + (" (or as the matrix says)" if costs.get("matrix") else "")
        + (f", a review ${review:g} per item" if review is not None else ", no review (every item answered)")
        + f"; the fine-tune spread over {section['amortize_months']:g} months. Thresholds are chosen on "
        "validation, costs measured on test."
    ]
    comparison = section.get("comparison")
    if comparison:
        low, high = comparison["ci"]
        how = "paired bootstrap, same test items" if comparison["paired"] else "bootstrap, different test items"
        verdict = "within noise" if comparison["within_noise"] else "a real difference"
        lines.append(
            f"{comparison['other']} costs ${comparison['usd_per_month_difference']:,.0f}/month more than "
            f"{comparison['cheaper']} [{low:,.0f}, {high:,.0f}] ({how}): {verdict}."
        )
    return lines + list(section.get("notes") or [])


def cost_chart(recommendation: dict | None) -> str | None:
    """Validation $ per 1k items against the confidence threshold, one line per candidate (SVG markup)."""
    curves = ((recommendation or {}).get("costs") or {}).get("curves") or {}
    series = {name: list(zip(c["threshold"], c["usd_per_1k_items"])) for name, c in curves.items()}
    if not series:
        return None
    top = max((y for points in series.values() for _, y in points), default=1.0) or 1.0
    return line_chart(
        series,
        "confidence threshold (below it: a person reviews)",
        "$ per 1k items (validation)",
        x_range=(0, 1),
        y_range=(0.0, top * 1.05),
        y_format=",.0f" if top >= 10 else ".2g",
    )
