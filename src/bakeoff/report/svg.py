"""Tiny inline-SVG charts for the HTML report: no plotting library, no network, text always escaped.

Hand-written because the report must be one self-contained file readable offline, and the charts
needed are simple: lines with points, and horizontal bars.
"""

from __future__ import annotations

from html import escape

PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf", "#7f7f7f", "#bcbd22"]


def line_chart(
    series: dict[str, list[tuple[float, float]]],
    x_label: str,
    y_label: str,
    width: int = 520,
    height: int = 300,
    y_range: tuple[float, float] = (0.0, 1.0),
    x_range: tuple[float, float] | None = None,
    diagonal: bool = False,
    y_format: str = ".2g",
) -> str:
    """Lines with points; `diagonal` draws y = x (for ROC and reliability diagrams); `y_format` writes the
    y-axis ticks (`,.0f` for dollars: .2g writes 950 as 9.5e+02)."""
    left, right, top, bottom = 50, 150, 12, 40
    xs = [x for points in series.values() for x, _ in points] or [0.0, 1.0]
    x0, x1 = x_range or (min(xs), max(xs))
    if x1 == x0:
        x1 = x0 + 1
    y0, y1 = y_range
    plot_w, plot_h = width - left - right, height - top - bottom

    def px(x: float) -> float:
        return left + (x - x0) / (x1 - x0) * plot_w

    def py(y: float) -> float:
        return top + (1 - (y - y0) / (y1 - y0)) * plot_h

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" font-size="11" '
        'font-family="sans-serif">',
        f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#999"/>',
    ]
    for i in range(5):
        y = y0 + i * (y1 - y0) / 4
        parts.append(
            f'<line x1="{left}" x2="{left + plot_w}" y1="{py(y):.1f}" y2="{py(y):.1f}" stroke="#eee"/>'
            f'<text x="{left - 4}" y="{py(y) + 4:.1f}" text-anchor="end">{y:{y_format}}</text>'
        )
    for x in sorted(set(xs))[:12] if x_range is None else [x0 + i * (x1 - x0) / 4 for i in range(5)]:
        parts.append(f'<text x="{px(x):.1f}" y="{top + plot_h + 14}" text-anchor="middle">{x:.3g}</text>')
    if diagonal:
        parts.append(
            f'<line x1="{px(x0):.1f}" y1="{py(y0):.1f}" x2="{px(x1):.1f}" y2="{py(y1):.1f}" stroke="#bbb" '
            'stroke-dasharray="4"/>'
        )
    for index, (name, points) in enumerate(series.items()):
        color = PALETTE[index % len(PALETTE)]
        path = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in points)
        parts.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2"/>')
        parts += [
            f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="3" fill="{color}"/>' for x, y in points if len(points) <= 30
        ]
        parts.append(f'<text x="{left + plot_w + 8}" y="{top + 14 + 14 * index}" fill="{color}">{escape(name)}</text>')
    parts.append(
        f'<text x="{left + plot_w / 2:.0f}" y="{height - 6}" text-anchor="middle">{escape(x_label)}</text>'
        f'<text x="12" y="{top + plot_h / 2:.0f}" transform="rotate(-90 12 {top + plot_h / 2:.0f})" '
        f'text-anchor="middle">{escape(y_label)}</text>'
    )
    return "".join(parts) + "</svg>"


def bar_chart(
    bars: list[tuple[str, float]], x_label: str, width: int = 520, bar_height: int = 18, x_max: float = 1.0
) -> str:
    """Horizontal bars, one per (label, value), values in [0, x_max]."""
    left, right = 190, 60
    height = 20 + bar_height * len(bars) + 24
    plot_w = width - left - right
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" font-size="11" '
        'font-family="sans-serif">'
    ]
    for i, (label, value) in enumerate(bars):
        y = 10 + i * bar_height
        w = max(0.0, min(value, x_max)) / x_max * plot_w
        parts.append(
            f'<text x="{left - 6}" y="{y + bar_height * 0.7:.1f}" text-anchor="end">{escape(label)}</text>'
            f'<rect x="{left}" y="{y + 2}" width="{w:.1f}" height="{bar_height - 4}" '
            f'fill="{PALETTE[i % len(PALETTE)]}"/>'
            f'<text x="{left + w + 4:.1f}" y="{y + bar_height * 0.7:.1f}">{value:.3g}</text>'
        )
    parts.append(f'<text x="{left + plot_w / 2:.0f}" y="{height - 6}" text-anchor="middle">{escape(x_label)}</text>')
    return "".join(parts) + "</svg>"


def interval_chart(
    bars: list[tuple[str, float, float, float]],
    x_label: str,
    width: int = 520,
    bar_height: int = 18,
    x_max: float = 1.0,
) -> str:
    """Horizontal bars with their confidence interval as a whisker, one per (label, value, low, high)."""
    left, right = 190, 60
    height = 20 + bar_height * len(bars) + 24
    plot_w = width - left - right

    def px(v: float) -> float:
        return left + max(0.0, min(v, x_max)) / x_max * plot_w

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" font-size="11" '
        'font-family="sans-serif">'
    ]
    for i, (label, value, low, high) in enumerate(bars):
        y = 10 + i * bar_height
        mid = y + bar_height / 2
        parts.append(
            f'<text x="{left - 6}" y="{y + bar_height * 0.7:.1f}" text-anchor="end">{escape(label)}</text>'
            f'<rect x="{left}" y="{y + 2}" width="{px(value) - left:.1f}" height="{bar_height - 4}" '
            f'fill="{PALETTE[i % len(PALETTE)]}" fill-opacity="0.6"/>'
            f'<line x1="{px(low):.1f}" x2="{px(high):.1f}" y1="{mid:.1f}" y2="{mid:.1f}" stroke="#222"/>'
            f'<line x1="{px(low):.1f}" x2="{px(low):.1f}" y1="{mid - 4:.1f}" y2="{mid + 4:.1f}" stroke="#222"/>'
            f'<line x1="{px(high):.1f}" x2="{px(high):.1f}" y1="{mid - 4:.1f}" y2="{mid + 4:.1f}" stroke="#222"/>'
            f'<text x="{px(high) + 4:.1f}" y="{y + bar_height * 0.7:.1f}">{value:.3g}</text>'
        )
    parts.append(f'<text x="{left + plot_w / 2:.0f}" y="{height - 6}" text-anchor="middle">{escape(x_label)}</text>')
    return "".join(parts) + "</svg>"
