"""Alternative visualisations of the same patient data, for the co-design workshop to compare side by side.

Risk over time (the model's cached 12-month risks per outcome):
- ``line_band``: the patient page's risk trajectory (a line with the model's uncertainty band);
- ``fan``: a fan chart, one panel per outcome, with nested bands;
- ``icons``: icon arrays of the latest risk ("12 in 100 people like this"). Icon arrays of person-shaped icons are
  understood and recalled better than numbers alone or blocks (Galesic M, Garcia-Retamero R, Gigerenzer G. Health
  Psychology 2009;28:210-6; Zikmund-Fisher BJ et al. Medical Decision Making 2014;34:443-53).

Medicines over time (prescription periods, safety flags):
- ``gantt``: the patient page's interaction timeline (swim lanes by BNF chapter);
- ``heatmap``: one row per medicine, one column per month, shaded by the days covered;
- ``table``: one row per medicine, with start, stop, and the safety flags that involved it.

Every function is a pure function of ``PatientRecordView`` (or its parts); the variant keys are those of
``data_access.queries.workshop.WORKSHOP_VIEWS``. Text from the record is always passed to Dash as text, never HTML.
"""

from __future__ import annotations

import calendar
import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import dash_bootstrap_components as dbc
import plotly.graph_objects as go
from dash import dcc, html
from plotly.subplots import make_subplots

from app import theme
from app.components.figures import (
    empty_figure,
    interaction_timeline_figure,
    risk_trajectory_figure,
    timeline_lanes,
)
from data_access.queries.patient import FlagView, MedicationPeriod, PatientRecordView, RiskPoint, Trajectory

PRESENTER_FONT_SIZE = 17
# Every medicines-over-time variant shows the same window (the Gantt chart is zoomed to it, not cut), so that the
# pictures compared are of the same data.
TIMELINE_MONTHS = 24
FAN_LEVELS = (0.5, 0.75)  # inner bands, drawn inside the model's own interval
ICONS_PER_ARRAY = 100
GRAPH_CONFIG = {"displaylogo": False, "responsive": True, "modeBarButtonsToRemove": ["select2d", "lasso2d"]}


def model_interval_level() -> float:
    """The central interval the model stores as lower/upper (``ModelConfig.interval_level``, 0.9 by default)."""
    from models.config import ModelConfig

    return ModelConfig().interval_level


def presenter_figure(figure: go.Figure, height: int | None = None) -> go.Figure:
    """Large type for a projector or a tablet held at arm's length."""
    figure.update_layout(
        font={"size": PRESENTER_FONT_SIZE},
        hoverlabel={"font": {"size": PRESENTER_FONT_SIZE}},
        legend={"font": {"size": PRESENTER_FONT_SIZE - 1}},
    )
    if height is not None:
        figure.update_layout(height=height)
    return figure


def graph(figure: go.Figure) -> dcc.Graph:
    """A Graph with the dashboard's config (the view's heading and the variant's description name it)."""
    return dcc.Graph(figure=figure, config=GRAPH_CONFIG)


# ---------------------------------------------------------------- risk over time: fan chart


def _logit(p: float) -> float:
    p = min(max(p, 1e-6), 1 - 1e-6)
    return math.log(p / (1 - p))


def _expit(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def fan_bounds(point: RiskPoint, level: float, reference_level: float) -> tuple[float, float]:
    """The central ``level`` interval of a point whose ``reference_level`` interval is (lower, upper).

    Only the reference interval is stored, so inner bands assume a split normal distribution on the log-odds
    scale through the point estimate and the stored bounds (exact at ``level == reference_level``). The fan chart's
    caption says so.
    """
    z_reference = NormalDist().inv_cdf((1 + reference_level) / 2)
    z = NormalDist().inv_cdf((1 + level) / 2)
    centre = _logit(point.risk)
    below = max(0.0, centre - _logit(point.lower)) / z_reference
    above = max(0.0, _logit(point.upper) - centre) / z_reference
    return _expit(centre - z * below), _expit(centre + z * above)


def risk_fan_figure(trajectory: Trajectory, reference_level: float | None = None) -> go.Figure:
    """One panel per outcome: the model's interval as the palest band, inner bands darker, the estimate as a line."""
    outcomes = [o for o in theme.OUTCOME_LABELS if trajectory.points.get(o)]
    if not outcomes:
        return empty_figure("No cached model predictions for this person.")
    reference_level = reference_level or model_interval_level()
    levels = sorted({*FAN_LEVELS, reference_level}, reverse=True)
    columns = 2 if len(outcomes) > 1 else 1
    rows = math.ceil(len(outcomes) / columns)
    figure = make_subplots(
        rows=rows,
        cols=columns,
        subplot_titles=[theme.OUTCOME_LABELS[o] for o in outcomes],
        vertical_spacing=0.16,
        horizontal_spacing=0.08,
    )
    figure.update_layout(theme.base_layout(height=300 * rows + 80))
    for index, outcome in enumerate(outcomes):
        row, col = index // columns + 1, index % columns + 1
        points = trajectory.points[outcome]
        colour = theme.OUTCOME_COLOURS[outcome]
        x = [p.as_of for p in points]
        for shade, level in enumerate(levels):
            bounds = [fan_bounds(p, level, reference_level) for p in points]
            figure.add_trace(
                go.Scatter(
                    x=x + x[::-1],
                    y=[hi * 100 for _, hi in bounds] + [lo * 100 for lo, _ in bounds][::-1],
                    fill="toself",
                    fillcolor=theme.with_alpha(colour, 0.14 + 0.14 * shade),
                    line={"width": 0},
                    hoverinfo="skip",
                    name=f"{level:.0%} of likely values",
                    legendgroup=f"band-{level}",
                    showlegend=index == 0,
                ),
                row=row,
                col=col,
            )
        figure.add_trace(
            go.Scatter(
                x=x,
                y=[p.risk * 100 for p in points],
                mode="lines",
                line={"color": colour, "width": 3},
                name="Model estimate",
                legendgroup="estimate",
                showlegend=index == 0,
                customdata=[theme.format_date(p.as_of) for p in points],
                hovertemplate=f"<b>{theme.OUTCOME_LABELS[outcome]}</b><br>%{{customdata}}: %{{y:.1f}}%<extra></extra>",
            ),
            row=row,
            col=col,
        )
        figure.update_yaxes(ticksuffix="%", rangemode="tozero", row=row, col=col)
        figure.update_xaxes(tickformat="%b %Y", row=row, col=col)
    figure.update_layout(margin={"t": 90}, legend={"y": 1.08})
    return figure


def fan_caption(reference_level: float | None = None) -> str:
    level = reference_level or model_interval_level()
    return (
        f"The palest band is the model's {level:.0%} uncertainty interval; the darker bands inside it (the middle "
        f"{FAN_LEVELS[1]:.0%} and {FAN_LEVELS[0]:.0%}) are drawn from that interval assuming a smooth, bell-shaped "
        "spread. The darker the shade, the more likely the risk lies there."
    )


# ---------------------------------------------------------------- risk over time: icon arrays


@dataclass(frozen=True)
class IconCount:
    """A risk as 'people in 100': ``affected`` icons filled, with the model's range."""

    outcome: str
    affected: int
    lower: int
    upper: int
    risk: float
    as_of: dt.date

    def sentence(self) -> str:
        label = theme.OUTCOME_LABELS.get(self.outcome, self.outcome).lower()
        if self.affected == 0:
            count = "Fewer than 1 in 100 people" if self.risk > 0 else "None of 100 people"
        else:
            count = f"About {self.affected} in 100 people"
        verb = "would die" if self.outcome == "death" else f"would have {_article(label)}{label}"
        range_text = (
            f" (the model's range: {self.lower} to {self.upper} in 100)" if self.upper > self.lower else ""
        )
        return f"{count} like this {verb} in the next 12 months{range_text}."


def _article(label: str) -> str:
    # "a fall or fracture", "an emergency admission", "medication harm" (uncountable)
    if label.startswith("medication"):
        return ""
    return "an " if label[:1] in "aeiou" else "a "


def people_in_100(risk: float) -> int:
    """Whole people out of 100, rounded half up (0.124 → 12, 0.125 → 13); below 0.5 in 100 shows none, and the
    sentence then says "fewer than 1 in 100"."""
    return max(0, min(ICONS_PER_ARRAY, math.floor(risk * ICONS_PER_ARRAY + 0.5)))


def icon_counts(trajectory: Trajectory) -> list[IconCount]:
    """The latest risk of each outcome as people in 100."""
    counts = []
    for outcome in theme.OUTCOME_LABELS:
        latest = trajectory.latest(outcome)
        if latest is None:
            continue
        counts.append(
            IconCount(
                outcome=outcome,
                affected=people_in_100(latest.risk),
                lower=people_in_100(latest.lower),
                upper=people_in_100(latest.upper),
                risk=latest.risk,
                as_of=latest.as_of,
            )
        )
    return counts


def icon_array(count: IconCount) -> html.Figure:
    """A 10 × 10 array of people, ``affected`` of them coloured; the sentence is its accessible name."""
    colour = theme.OUTCOME_COLOURS.get(count.outcome, theme.NHS_TEXT)
    people = [
        html.Span(className="dx-person dx-person-affected" if i < count.affected else "dx-person")
        for i in range(ICONS_PER_ARRAY)
    ]
    return html.Figure(
        [
            html.Div(
                people,
                className="dx-icon-grid",
                role="img",
                style={"--dx-icon-colour": colour},
                **{"aria-label": count.sentence()},
            ),
            html.Figcaption(
                [
                    html.Strong(theme.OUTCOME_LABELS.get(count.outcome, count.outcome)),
                    html.Br(),
                    count.sentence(),
                ]
            ),
        ],
        className="dx-icon-array",
    )


def icon_arrays(trajectory: Trajectory) -> html.Div:
    counts = icon_counts(trajectory)
    if not counts:
        return html.P("No cached model predictions for this person.", className="dx-notice")
    as_of = max(c.as_of for c in counts)
    return html.Div(
        [
            html.P(
                f"Out of 100 people like this, as estimated by the model on {theme.format_date(as_of)}:",
                className="dx-workshop-lead",
            ),
            html.Div([icon_array(c) for c in counts], className="dx-icon-arrays"),
        ]
    )


# ---------------------------------------------------------------- medicines over time: heat map


@dataclass(frozen=True)
class MonthMatrix:
    """Days on each medicine per calendar month, and the months when a safety flag involved it."""

    medicines: tuple[str, ...]
    months: tuple[dt.date, ...]  # first day of each month
    days: tuple[tuple[int, ...], ...]  # [medicine][month]
    flagged: tuple[tuple[tuple[str, ...], ...], ...]  # [medicine][month] → rule ids

    def days_in(self, month: dt.date) -> int:
        return calendar.monthrange(month.year, month.month)[1]


def month_starts(end: dt.date, months: int) -> tuple[dt.date, ...]:
    """The first days of the ``months`` calendar months ending with ``end``'s month, oldest first."""
    first = end.year * 12 + end.month - 1 - (months - 1)
    return tuple(dt.date(m // 12, m % 12 + 1, 1) for m in range(first, first + months))


def _month_end(month: dt.date) -> dt.date:
    return month.replace(day=calendar.monthrange(month.year, month.month)[1])


def _overlap(start: dt.date, stop: dt.date, month: dt.date) -> tuple[int, int] | None:
    """Inclusive ordinal range of ``start``..``stop`` within ``month`` (None if disjoint)."""
    first, last = max(start, month), min(stop, _month_end(month))
    return (first.toordinal(), last.toordinal()) if first <= last else None


def medicine_month_matrix(view: PatientRecordView, months: int = TIMELINE_MONTHS) -> MonthMatrix:
    """Rows in the interaction timeline's order (BNF chapter, then name); only medicines taken in the window.

    Overlapping periods of one medicine count each day once; a course with no stop runs to the record's as-of date.
    """
    window = month_starts(view.as_of, months)
    by_medicine: dict[str, list[MedicationPeriod]] = {}
    for medication in view.medications:
        by_medicine.setdefault(medication.drug, []).append(medication)
    order = [lane.key for lane in timeline_lanes(view) if lane.key in by_medicine]
    medicines, days, flagged = [], [], []
    for name in order:
        periods = by_medicine[name]
        ingredients = {i for p in periods for i in p.ingredients}
        row_days, row_flags = [], []
        for month in window:
            covered: set[int] = set()
            for period in periods:
                span = _overlap(period.start, min(period.stop or view.as_of, view.as_of), month)
                if span:
                    covered.update(range(span[0], span[1] + 1))
            row_days.append(len(covered))
            row_flags.append(_flags_in_month(view.flags, ingredients, month, view.as_of))
        if any(row_days):
            medicines.append(name)
            days.append(tuple(row_days))
            flagged.append(tuple(row_flags))
    return MonthMatrix(tuple(medicines), window, tuple(days), tuple(flagged))


def _flags_in_month(
    flags: Sequence[FlagView], ingredients: set[str], month: dt.date, as_of: dt.date
) -> tuple[str, ...]:
    rules = {
        f.rule_id
        for f in flags
        if ingredients & set(f.drugs) and _overlap(f.start, min(f.end or as_of, as_of), month) is not None
    }
    return tuple(sorted(rules))


def heatmap_figure(matrix: MonthMatrix) -> go.Figure:
    """Shade = share of the month on the medicine; ◇ marks months when a safety flag involved it."""
    if not matrix.medicines:
        return empty_figure(f"No medicines in the last {len(matrix.months)} months.")
    labels = [m.strftime("%b %Y") for m in matrix.months]
    share = [
        [round(100 * d / matrix.days_in(month)) for d, month in zip(row, matrix.months, strict=True)]
        for row in matrix.days
    ]
    hover = [
        [
            f"<b>{name}</b><br>{month.strftime('%B %Y')}: {d} of {matrix.days_in(month)} days"
            + (f"<br>Safety flag: {', '.join(rules)}" if rules else "")
            for d, month, rules in zip(row, matrix.months, flags, strict=True)
        ]
        for name, row, flags in zip(matrix.medicines, matrix.days, matrix.flagged, strict=True)
    ]
    figure = go.Figure(layout=theme.base_layout(height=max(320, 120 + 34 * len(matrix.medicines))))
    figure.add_trace(
        go.Heatmap(
            z=share,
            x=labels,
            y=list(matrix.medicines),
            zmin=0,
            zmax=100,
            colorscale=[
                [0.0, theme.NHS_WHITE],
                [0.01, theme.with_alpha(theme.NHS_BLUE, 0.25)],
                [1.0, theme.NHS_BLUE],
            ],
            xgap=2,
            ygap=2,
            text=hover,
            hoverinfo="text",
            colorbar={"title": {"text": "Days on it"}, "ticksuffix": "%", "len": 0.8},
            name="Days on the medicine",
        )
    )
    flagged = [
        (label, name, ", ".join(rules))
        for name, flags in zip(matrix.medicines, matrix.flagged, strict=True)
        for label, rules in zip(labels, flags, strict=True)
        if rules
    ]
    if flagged:
        figure.add_trace(
            go.Scatter(
                x=[f[0] for f in flagged],
                y=[f[1] for f in flagged],
                mode="markers",
                marker={
                    "symbol": "diamond-open",
                    "size": 13,
                    "color": theme.OI_VERMILLION,
                    "line": {"width": 2.5},
                },
                name="Safety flag involved it",
                text=[f"<b>{f[1]}</b>, {f[0]}<br>Safety flag: {f[2]}" for f in flagged],
                hovertemplate="%{text}<extra></extra>",
            )
        )
    figure.update_yaxes(autorange="reversed", type="category", automargin=True, gridcolor=theme.NHS_WHITE)
    figure.update_xaxes(type="category", tickangle=-45, gridcolor=theme.NHS_WHITE)
    figure.update_layout(margin={"l": 10, "t": 50}, showlegend=bool(flagged))
    return figure


# ---------------------------------------------------------------- medicines over time: table


@dataclass(frozen=True)
class MedicineRow:
    medicine: str
    used_for: str
    started: dt.date
    stopped: dt.date | None  # None: still taken on the as-of date
    courses: int
    on_repeat: bool
    flags: tuple[str, ...]  # "STOPP-v3-B11 NSAID with heart failure (now)" etc.


def window_start(view: PatientRecordView, months: int = TIMELINE_MONTHS) -> dt.date:
    """The first day of the medicines-over-time window (the first of ``months`` calendar months to the as-of date)."""
    return month_starts(view.as_of, months)[0]


def gantt_figure(view: PatientRecordView, months: int = TIMELINE_MONTHS) -> go.Figure:
    """The patient page's interaction timeline, zoomed to the window (pan or zoom out to see earlier years)."""
    figure = interaction_timeline_figure(view)
    figure.update_xaxes(range=[window_start(view, months), view.as_of + dt.timedelta(days=15)])
    return figure


def medicine_rows(view: PatientRecordView, months: int = TIMELINE_MONTHS) -> list[MedicineRow]:
    """One row per medicine taken in the window, in the timeline's order: first start, last stop (or still
    taken), and the safety flags that involved it."""
    start = window_start(view, months)
    by_medicine: dict[str, list[MedicationPeriod]] = {}
    for medication in view.medications:
        if (medication.stop is None or medication.stop >= start) and medication.start <= view.as_of:
            by_medicine.setdefault(medication.drug, []).append(medication)
    rows = []
    for lane in timeline_lanes(view):
        periods = by_medicine.get(lane.key)
        if not periods:
            continue
        ingredients = {i for p in periods for i in p.ingredients}
        still_taken = any(p.active_on(view.as_of) for p in periods)
        stops = [p.stop for p in periods if p.stop is not None]
        flags = []
        for flag in view.flags:
            if ingredients & set(flag.drugs):
                text = f"{flag.rule_id} {flag.title} ({'now' if flag.active else 'in the past'})"
                if text not in flags:
                    flags.append(text)
        rows.append(
            MedicineRow(
                medicine=lane.key,
                used_for=periods[0].plain_words or periods[0].chapter_title,
                started=min(p.start for p in periods),
                stopped=None if still_taken or not stops else max(stops),
                courses=len(periods),
                on_repeat=any(p.repeat for p in periods),
                flags=tuple(flags),
            )
        )
    return rows


def medicine_table(rows: Sequence[MedicineRow]) -> Any:
    if not rows:
        return html.P("No medicines recorded for this person.", className="dx-notice")
    header = html.Thead(
        html.Tr(
            [
                html.Th(name, scope="col")
                for name in ("Medicine", "Used for", "Started", "Stopped", "Courses", "Safety flags")
            ]
        )
    )
    body = html.Tbody(
        [
            html.Tr(
                [
                    html.Th(row.medicine, scope="row"),
                    html.Td(row.used_for),
                    html.Td(theme.format_date(row.started)),
                    html.Td("Still taking" if row.stopped is None else theme.format_date(row.stopped)),
                    html.Td(f"{row.courses}{'' if row.on_repeat else ' (not on repeat)'}"),
                    html.Td([html.Div(text) for text in row.flags] if row.flags else "None"),
                ],
                className="dx-table-flagged" if any(t.endswith("(now)") for t in row.flags) else None,
            )
            for row in rows
        ]
    )
    return dbc.Table(
        [
            html.Caption(
                f"Medicines taken in the last {TIMELINE_MONTHS} months: first start, last stop, and the safety "
                "flags that involved them"
            ),
            header,
            body,
        ],
        bordered=False,
        striped=True,
        hover=False,
        responsive=True,
        className="dx-workshop-table",
    )


# ---------------------------------------------------------------- one call per view and variant


def render_variant(view_key: str, variant_key: str, record: PatientRecordView) -> Any:
    """The component showing ``record`` as ``view_key``/``variant_key`` (keys of ``WORKSHOP_VIEWS``)."""
    if view_key == "risk":
        if variant_key == "fan":
            return html.Div(
                [
                    graph(presenter_figure(risk_fan_figure(record.trajectory))),
                    html.P(fan_caption(), className="dx-workshop-caption"),
                ]
            )
        if variant_key == "icons":
            return icon_arrays(record.trajectory)
        figure = risk_trajectory_figure(record.trajectory, record.medications, record.events, record.as_of)
        return graph(presenter_figure(figure, height=460))
    if view_key == "timeline":
        if variant_key == "heatmap":
            return graph(presenter_figure(heatmap_figure(medicine_month_matrix(record))))
        if variant_key == "table":
            return medicine_table(medicine_rows(record))
        return graph(presenter_figure(gantt_figure(record)))
    raise ValueError(f"unknown workshop view {view_key!r}")
