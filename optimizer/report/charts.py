"""Charts as standalone inline SVG, drawn from plain numbers.

The report must open offline and under a Content-Security-Policy that allows
no script and no external resource, so every chart is an ``<svg>`` element
built here: presentation attributes only (no ``style=``), system fonts, no
references outside the element. The colours are the Okabe-Ito palette, which
stays distinguishable for the common forms of colour blindness.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

#: Okabe, M. and Ito, K. (2008). Color Universal Design: a palette that stays
#: legible to colour-blind readers.
PALETTE = (
    "#0072B2",
    "#E69F00",
    "#009E73",
    "#CC79A7",
    "#56B4E9",
    "#D55E00",
    "#F0E442",
    "#000000",
)
GOOD = "#009E73"
WARN = "#E69F00"
BAD = "#D55E00"
INK = "#222222"
MUTED = "#6b6b6b"
GRID = "#e4e4e4"

_FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif"


@dataclass(frozen=True)
class Band:
    """A shaded range of one axis, e.g. the satisfactory LTV/CAC range."""

    low: float
    high: float
    color: str
    label: str


@dataclass(frozen=True)
class Reference:
    """A labelled line across the plot at one value, e.g. a cap or a target."""

    value: float
    label: str
    color: str = INK


@dataclass(frozen=True)
class Series:
    """One line of a line chart, optionally with a shaded band or error bars.

    ``band`` holds ``(x, low, high)``; ``whiskers`` draws each point of
    ``points`` with an error bar from the band instead of a shaded area.
    """

    name: str
    points: Sequence[tuple[float, float]]
    color: str = PALETTE[0]
    dashed: bool = False
    band: Sequence[tuple[float, float, float]] = ()
    whiskers: bool = False
    markers: bool = False
    step: bool = False


@dataclass(frozen=True)
class Bar:
    """One bar of a horizontal bar chart, with an optional interval.

    ``marker`` draws a short dark tick across the bar's row at that value,
    e.g. the bar's own cap; ``text``, when set, is printed instead of the
    value (for a bar that stands for "beyond the axis").
    """

    label: str
    value: float
    color: str = PALETTE[0]
    low: float | None = None
    high: float | None = None
    note: str = ""
    marker: float | None = None
    text: str = ""


@dataclass(frozen=True)
class Frame:
    """Outer size and margins of a chart, in SVG user units."""

    width: float = 640.0
    height: float = 300.0
    left: float = 56.0
    right: float = 16.0
    top: float = 28.0
    bottom: float = 44.0

    @property
    def plot_width(self) -> float:
        return self.width - self.left - self.right

    @property
    def plot_height(self) -> float:
        return self.height - self.top - self.bottom


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values covering ``[low, high]`` (1, 2, 2.5 or 5 times 10^k)."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return [0.0, 1.0]
    if high <= low:
        high = low + (abs(low) or 1.0)
    raw = (high - low) / max(count, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    start = math.floor(low / step) * step
    ticks = []
    value = start
    while value <= high + step * 1e-9:
        ticks.append(round(value, 10))
        value += step
    if ticks[-1] < high:
        ticks.append(round(value, 10))
    return ticks


def tick_label(value: float) -> str:
    """Short axis label: 1.2k, 15, 0.25."""
    magnitude = abs(value)
    if magnitude >= 1_000_000:
        return f"{value / 1_000_000:g}M"
    if magnitude >= 10_000:
        return f"{value / 1_000:g}k"
    if magnitude >= 100 or value == int(value):
        return f"{value:,.0f}"
    return f"{value:g}"


class _Linear:
    def __init__(self, domain: tuple[float, float], span: tuple[float, float]):
        self.d0, self.d1 = domain
        self.r0, self.r1 = span

    def __call__(self, value: float) -> float:
        if self.d1 == self.d0:
            return (self.r0 + self.r1) / 2
        share = (value - self.d0) / (self.d1 - self.d0)
        return self.r0 + share * (self.r1 - self.r0)


def _svg(
    name: str, title: str, frame: Frame, body: list[str], kind: str = "lines"
) -> str:
    return (
        f'<svg class="chart {kind}" data-chart="{escape(name)}" role="img" '
        f'viewBox="0 0 {frame.width:g} {frame.height:g}" '
        f'xmlns="http://www.w3.org/2000/svg" font-family="{_FONT}" '
        f'font-size="12" fill="{INK}"><title>{escape(title)}</title>'
        + "".join(body)
        + "</svg>"
    )


def _text(
    x: float,
    y: float,
    text: str,
    *,
    anchor: str = "start",
    size: float = 12,
    color: str = INK,
    weight: str = "normal",
    halo: bool = False,
) -> str:
    # A white outline painted under the glyphs keeps a label legible where it
    # crosses a grid or reference line.
    outline = ' stroke="#fff" stroke-width="3" paint-order="stroke"' if halo else ""
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" '
        f'font-size="{size:g}" fill="{color}" font-weight="{weight}"{outline}>'
        f"{escape(text)}</text>"
    )


def _path(points: Sequence[tuple[float, float]], *, step: bool = False) -> str:
    parts = []
    for index, (x, y) in enumerate(points):
        if index and step:
            parts.append(f"H{x:.1f}")
        parts.append(f"{'M' if index == 0 else 'L'}{x:.1f},{y:.1f}")
    return "".join(parts)


def _legend(frame: Frame, entries: Sequence[tuple[str, str, bool]]) -> list[str]:
    out, x = [], frame.left
    for name, color, dashed in entries:
        dash = ' stroke-dasharray="5 3"' if dashed else ""
        out.append(
            f'<line x1="{x:.1f}" y1="14" x2="{x + 18:.1f}" y2="14" stroke="{color}" '
            f'stroke-width="2.5"{dash}/>'
        )
        out.append(_text(x + 23, 18, name, size=11.5))
        x += 32 + 6.6 * len(name)
    return out


def line_chart(
    name: str,
    title: str,
    series: Sequence[Series],
    *,
    x_label: str,
    y_label: str,
    references: Sequence[Reference] = (),
    x_ticks: Sequence[float] | None = None,
    x_format: Callable[[float], str] = "{:g}".format,
    frame: Frame | None = None,
) -> str:
    """A line chart with optional uncertainty bands, error bars and references.

    Parameters
    ----------
    name
        Identifier written to ``data-chart``.
    title
        Accessible title of the chart.
    series
        The lines, drawn in order.
    x_label, y_label
        Axis titles.
    references
        Horizontal lines (caps, targets) labelled at the right end.
    x_ticks
        Where to put x ticks; round values over the data range when ``None``.
    x_format
        Turns an x tick value into its label.
    frame
        Size and margins.

    Returns
    -------
    str
        One ``<svg>`` element.
    """
    frame = frame or Frame()
    xs = [x for s in series for x, _ in s.points] + [
        b[0] for s in series for b in s.band
    ]
    ys = [y for s in series for _, y in s.points]
    ys += [v for s in series for b in s.band for v in b[1:]]
    ys += [r.value for r in references]
    if not xs:
        return _empty(name, title, frame)
    y_ticks = nice_ticks(min(0.0, *ys), max(ys) * 1.05 if max(ys) > 0 else 1.0)
    x_ticks = list(x_ticks) if x_ticks is not None else nice_ticks(min(xs), max(xs))
    sx = _Linear(
        (min(x_ticks[0], *xs), max(x_ticks[-1], *xs)),
        (frame.left, frame.left + frame.plot_width),
    )
    sy = _Linear((y_ticks[0], y_ticks[-1]), (frame.top + frame.plot_height, frame.top))
    body = _axes(frame, sx, sy, x_ticks, y_ticks, x_label, y_label, x_format)

    for ref in references:
        y = sy(ref.value)
        body.append(
            f'<line x1="{frame.left:.1f}" y1="{y:.1f}" '
            f'x2="{frame.left + frame.plot_width:.1f}" y2="{y:.1f}" '
            f'stroke="{ref.color}" stroke-dasharray="2 3" stroke-width="1.2"/>'
        )
        body.append(
            _text(
                frame.left + frame.plot_width - 2,
                y - 4,
                ref.label,
                anchor="end",
                size=11,
                color=ref.color,
            )
        )
    for s in series:
        body.extend(_series(s, sx, sy))
    body.extend(_legend(frame, [(s.name, s.color, s.dashed) for s in series]))
    return _svg(name, title, frame, body)


def _series(s: Series, sx: _Linear, sy: _Linear) -> list[str]:
    out = []
    if s.band and not s.whiskers:
        upper = [(sx(x), sy(high)) for x, _, high in s.band]
        lower = [(sx(x), sy(low)) for x, low, _ in reversed(s.band)]
        out.append(
            f'<path class="mark band" d="{_path(upper + lower)}Z" fill="{s.color}" '
            'fill-opacity="0.16" stroke="none"/>'
        )
    if s.whiskers:
        for x, low, high in s.band:
            cx = sx(x)
            out.append(
                f'<path class="mark" d="M{cx:.1f},{sy(low):.1f}V{sy(high):.1f}'
                f"M{cx - 4:.1f},{sy(low):.1f}h8M{cx - 4:.1f},{sy(high):.1f}h8"
                f'" stroke="{s.color}" stroke-width="1.4" fill="none"/>'
            )
    points = [(sx(x), sy(y)) for x, y in s.points]
    dash = ' stroke-dasharray="6 4"' if s.dashed else ""
    if len(points) > 1:
        out.append(
            f'<path class="mark" d="{_path(points, step=s.step)}" fill="none" '
            f'stroke="{s.color}" '
            f'stroke-width="2.2"{dash}/>'
        )
    if s.markers or len(points) == 1:
        for x, y in points:
            out.append(
                f'<circle class="mark" cx="{x:.1f}" cy="{y:.1f}" r="3.6" '
                f'fill="{s.color}" '
                'stroke="#fff" stroke-width="1"/>'
            )
    return out


def _axes(
    frame: Frame,
    sx: _Linear,
    sy: _Linear,
    x_ticks: Sequence[float],
    y_ticks: Sequence[float],
    x_label: str,
    y_label: str,
    x_format: Callable[[float], str],
) -> list[str]:
    right = frame.left + frame.plot_width
    bottom = frame.top + frame.plot_height
    out = []
    for tick in y_ticks:
        y = sy(tick)
        out.append(
            f'<line x1="{frame.left:.1f}" y1="{y:.1f}" x2="{right:.1f}" '
            f'y2="{y:.1f}" stroke="{GRID}"/>'
        )
        out.append(
            _text(frame.left - 6, y + 4, tick_label(tick), anchor="end", color=MUTED)
        )
    for tick in x_ticks:
        x = sx(tick)
        out.append(
            f'<line x1="{x:.1f}" y1="{bottom:.1f}" x2="{x:.1f}" y2="{bottom + 4:.1f}" '
            f'stroke="{MUTED}"/>'
        )
        out.append(_text(x, bottom + 17, x_format(tick), anchor="middle", color=MUTED))
    out.append(
        f'<line x1="{frame.left:.1f}" y1="{bottom:.1f}" x2="{right:.1f}" '
        f'y2="{bottom:.1f}" stroke="{MUTED}"/>'
    )
    out.append(
        _text(
            (frame.left + right) / 2,
            frame.height - 6,
            x_label,
            anchor="middle",
            color=MUTED,
        )
    )
    mid = (frame.top + bottom) / 2
    out.append(
        f'<text x="14" y="{mid:.1f}" transform="rotate(-90 14 {mid:.1f})" '
        f'text-anchor="middle" font-size="12" fill="{MUTED}">{escape(y_label)}</text>'
    )
    return out


def bar_chart(
    name: str,
    title: str,
    bars: Sequence[Bar],
    *,
    x_label: str,
    references: Sequence[Reference] = (),
    bands: Sequence[Band] = (),
    value_format: str = "{:,.2f}",
    label_width: float = 190.0,
    width: float = 540.0,
    x_max: float | None = None,
) -> str:
    """Horizontal bars with optional intervals, reference lines and bands.

    Parameters
    ----------
    name
        Identifier written to ``data-chart``.
    title
        Accessible title of the chart.
    bars
        One bar per row, top to bottom.
    x_label
        Title of the value axis.
    references
        Vertical lines (a cap, a target) labelled above the plot.
    bands
        Shaded value ranges behind the bars (e.g. satisfactory / excellent).
    value_format
        Format of the value printed at the end of each bar.
    label_width
        Room on the left for the row labels.
    width
        Width of the chart.
    x_max
        Largest value on the axis; longer bars and intervals stop at the
        edge with an arrow, and their label still gives the true value.

    Returns
    -------
    str
        One ``<svg>`` element.
    """
    row = 32.0
    above = (18.0 if references else 0.0) + (16.0 if bands else 0.0)
    frame = Frame(
        width=width,
        height=56.0 + above + row * max(len(bars), 1),
        left=label_width,
        right=96.0,
        top=12.0 + above,
        bottom=40.0,
    )
    if not bars:
        return _empty(name, title, frame)
    values = [b.value for b in bars] + [b.high for b in bars if b.high is not None]
    values += [b.marker for b in bars if b.marker is not None]
    values += [r.value for r in references] + [band.low for band in bands]
    values += [band.high for band in bands if math.isfinite(band.high)]
    top_value = max(values) * 1.08 if max(values) > 0 else 1.0
    if x_max is not None:
        top_value = min(top_value, x_max)
    ticks = nice_ticks(min(0.0, *values), top_value)
    if x_max is not None:
        ticks = [t for t in ticks if t <= x_max] or ticks
    linear = _Linear((ticks[0], ticks[-1]), (frame.left, frame.left + frame.plot_width))

    def sx(value: float) -> float:
        return min(linear(value), frame.left + frame.plot_width)

    top, bottom = frame.top, frame.top + frame.plot_height
    body = []

    for band in bands:
        x0 = sx(max(band.low, ticks[0]))
        x1 = sx(min(band.high, ticks[-1]))
        body.append(
            f'<rect x="{x0:.1f}" y="{top:.1f}" width="{max(x1 - x0, 0):.1f}" '
            f'height="{bottom - top:.1f}" fill="{band.color}" fill-opacity="0.13"/>'
        )
        if x1 - x0 >= 6.5 * len(band.label) + 8:
            body.append(_text(x0 + 4, top - 5, band.label, size=11, color=MUTED))
    for tick in ticks:
        x = sx(tick)
        body.append(
            f'<line x1="{x:.1f}" y1="{top:.1f}" x2="{x:.1f}" y2="{bottom:.1f}" '
            f'stroke="{GRID}"/>'
        )
        body.append(
            _text(x, bottom + 16, tick_label(tick), anchor="middle", color=MUTED)
        )
    body.append(
        _text(
            frame.left + frame.plot_width / 2,
            frame.height - 6,
            x_label,
            anchor="middle",
            color=MUTED,
        )
    )
    for index, bar in enumerate(bars):
        y = top + 8 + index * row
        x0, x1 = sx(0.0), sx(bar.value)
        body.append(
            f'<rect class="mark bar" x="{min(x0, x1):.1f}" y="{y:.1f}" '
            f'width="{max(abs(x1 - x0), 1.0):.1f}" height="{row - 10:.1f}" '
            f'fill="{bar.color}"><title>{escape(bar.label)}: '
            f"{escape(value_format.format(bar.value))}</title></rect>"
        )
        edge = frame.left + frame.plot_width
        if bar.value > ticks[-1]:
            cy = y + (row - 10) / 2
            body.append(
                f'<path d="M{edge:.1f},{y - 2:.1f}l8,{cy - y + 2:.1f}'
                f'l-8,{cy - y + 2:.1f}Z" fill="{bar.color}"/>'
            )
        if bar.marker is not None:
            mx = sx(bar.marker)
            body.append(
                f'<line x1="{mx:.1f}" y1="{y - 3:.1f}" x2="{mx:.1f}" '
                f'y2="{y + row - 7:.1f}" stroke="{INK}" stroke-width="2.5"/>'
            )
        if bar.low is not None and bar.high is not None:
            cy = y + (row - 10) / 2
            body.append(
                f'<path d="M{sx(bar.low):.1f},{cy:.1f}H{sx(bar.high):.1f}'
                f"M{sx(bar.low):.1f},{cy - 5:.1f}v10M{sx(bar.high):.1f},{cy - 5:.1f}"
                f'v10" stroke="{INK}" stroke-width="1.3" fill="none"/>'
            )
        body.append(
            _text(
                frame.left - 8,
                y + row / 2 - 1,
                _clip(bar.label, label_width),
                anchor="end",
                size=13,
            )
        )
    for ref in references:
        x = sx(ref.value)
        body.append(
            f'<line x1="{x:.1f}" y1="{frame.top - above + 14:.1f}" x2="{x:.1f}" '
            f'y2="{bottom:.1f}" stroke="{ref.color}" stroke-width="1.6" '
            'stroke-dasharray="4 3"/>'
        )
        body.append(
            _text(
                x,
                frame.top - above + 10,
                ref.label,
                anchor="middle",
                size=12,
                color=ref.color,
                weight="600",
            )
        )
    for index, bar in enumerate(bars):
        y = top + 8 + index * row
        x1 = sx(bar.value)
        end = max(x1, sx(bar.high) if bar.high is not None else x1)
        if bar.marker is not None:
            end = max(end, sx(bar.marker))
        label = bar.text or value_format.format(bar.value)
        label += f" {bar.note}" if bar.note else ""
        if bar.value > ticks[-1]:
            # Past the axis: the label goes inside the bar, against its arrow.
            body.append(
                _text(
                    frame.left + frame.plot_width - 6,
                    y + row / 2 - 1,
                    label,
                    anchor="end",
                    size=12.5,
                    color="#fff",
                    weight="600",
                )
            )
            continue
        body.append(_text(end + 6, y + row / 2 - 1, label, size=12.5, halo=True))
    body.append(
        f'<line x1="{sx(0):.1f}" y1="{top:.1f}" x2="{sx(0):.1f}" y2="{bottom:.1f}" '
        f'stroke="{MUTED}"/>'
    )
    return _svg(name, title, frame, body, kind="bars")


def _clip(label: str, width: float) -> str:
    # About 8.2 user units per character at 13 px in a wide system sans-serif.
    limit = max(int(width / 8.2), 8)
    return label if len(label) <= limit else label[: limit - 1] + "…"


def _empty(name: str, title: str, frame: Frame) -> str:
    body = [
        _text(
            frame.width / 2, frame.height / 2, "no data", anchor="middle", color=MUTED
        )
    ]
    return _svg(name, title, frame, body)
