"""Charts drawn on the server as inline SVG: no script, nothing fetched, every label escaped.

Each function takes plain numbers and labels and returns markup; the page decides what to chart.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

BAR = "#3b7ddd"
ACCENT = "#28a745"
MUTED = "#adb5bd"
TEXT = "#212529"
FONT = 'font-family="system-ui, sans-serif" font-size="12"'


@dataclass(frozen=True)
class Bar:
    """One bar: its label, value, the text printed beside it, and a tooltip."""

    label: str
    value: float
    text: str
    title: str = ""


def _svg(width: int, height: int, title: str, body: list[str], chart_id: str) -> Markup:
    # Every label and number in ``body`` went through escape() where it was built.
    return Markup(  # noqa: S704
        f'<svg xmlns="http://www.w3.org/2000/svg" id="{escape(chart_id)}" class="chart" '
        f'role="img" aria-label="{escape(title)}" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" preserveAspectRatio="xMinYMin meet" {FONT}>'
        f"<title>{escape(title)}</title>{''.join(body)}</svg>")


def _empty(title: str, chart_id: str) -> Markup:
    return _svg(400, 40, title, [f'<text x="0" y="24" fill="{MUTED}">No data for these '
                                 "filters.</text>"], chart_id)


def horizontal_bars(bars: Sequence[Bar], title: str, chart_id: str,
                    maximum: float | None = None, label_width: int = 170) -> Markup:
    """Bars left to right, one row each, the label on the left and the text on the right."""
    if not bars:
        return _empty(title, chart_id)
    row, width, text_width = 24, 560, 90
    span = width - label_width - text_width
    top = maximum if maximum else max(b.value for b in bars) or 1
    body = []
    for index, bar in enumerate(bars):
        y = index * row
        length = max(span * bar.value / top, 0) if top else 0
        tip = escape(bar.title or f"{bar.label}: {bar.text}")
        body.append(
            f'<g class="bar"><title>{tip}</title>'
            f'<text x="{label_width - 6}" y="{y + 16}" text-anchor="end" fill="{TEXT}">'
            f"{escape(_clip(bar.label, 26))}</text>"
            f'<rect x="{label_width}" y="{y + 4}" width="{length:.1f}" height="{row - 8}" '
            f'fill="{BAR}"/>'
            f'<text x="{label_width + length + 6:.1f}" y="{y + 16}" fill="{TEXT}">'
            f"{escape(bar.text)}</text></g>")
    return _svg(width, row * len(bars) + 4, title, body, chart_id)


def share_bar(part: float, whole: float, part_label: str, rest_label: str, title: str,
              chart_id: str) -> Markup:
    """One bar split in two: the share ``part`` of ``whole``, with a legend."""
    if not whole:
        return _empty(title, chart_id)
    width, share = 560, part / whole
    split = width * share
    body = [
        f'<rect x="0" y="0" width="{split:.1f}" height="28" fill="{ACCENT}">'
        f"<title>{escape(part_label)}: {part:g} of {whole:g}</title></rect>",
        f'<rect x="{split:.1f}" y="0" width="{width - split:.1f}" height="28" fill="{MUTED}">'
        f"<title>{escape(rest_label)}: {whole - part:g} of {whole:g}</title></rect>",
        f'<rect x="0" y="40" width="12" height="12" fill="{ACCENT}"/>'
        f'<text x="18" y="50" fill="{TEXT}">{escape(part_label)} {share:.0%}</text>',
        f'<rect x="280" y="40" width="12" height="12" fill="{MUTED}"/>'
        f'<text x="298" y="50" fill="{TEXT}">{escape(rest_label)} {1 - share:.0%}</text>',
    ]
    return _svg(width, 58, title, body, chart_id)


def column_trend(points: Sequence[Bar], title: str, chart_id: str) -> Markup:
    """Columns over time (one per month), the value above each and the label below."""
    if not points:
        return _empty(title, chart_id)
    height, base, column = 180, 150, 44
    width = max(column * len(points) + 10, 200)
    top = max(p.value for p in points) or 1
    body = [f'<line x1="0" y1="{base}" x2="{width}" y2="{base}" stroke="{MUTED}"/>']
    for index, point in enumerate(points):
        x = 6 + index * column
        tall = (base - 24) * point.value / top
        tip = escape(point.title or f"{point.label}: {point.text}")
        body.append(
            f'<g class="column"><title>{tip}</title>'
            f'<rect x="{x}" y="{base - tall:.1f}" width="{column - 12}" height="{tall:.1f}" '
            f'fill="{BAR}"/>'
            f'<text x="{x + (column - 12) / 2}" y="{base - tall - 4:.1f}" text-anchor="middle" '
            f'fill="{TEXT}">{escape(point.text)}</text>'
            f'<text x="{x + (column - 12) / 2}" y="{base + 16}" text-anchor="middle" '
            f'fill="{TEXT}">{escape(point.label)}</text></g>')
    return _svg(width, height, title, body, chart_id)


def _clip(text: str, length: int) -> str:
    return text if len(text) <= length else text[: length - 1] + "…"
