"""Plotly figures of the patient page: risk trajectory, polypharmacy interaction timeline and what-if comparison.

Figures are pure functions of the query results (``data_access.queries.patient``) so they are unit-tested without
Dash or a database. All colours, symbols and fonts come from ``app.theme``.
"""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import plotly.graph_objects as go

from app import theme
from data_access.queries.patient import FlagView, MedicationPeriod, PatientRecordView, Trajectory

LANE_HEIGHT_PX = 24


class _Spec:
    """A figure assembled as plain dicts and turned into a ``go.Figure`` once, without plotly's per-property
    validation: building a busy patient's timeline through the validated API cost half a second per page."""

    def __init__(self, layout: dict[str, Any]) -> None:
        self.data: list[dict[str, Any]] = []
        self.layout: dict[str, Any] = copy.deepcopy(layout)

    def add_trace(self, trace: dict[str, Any]) -> None:
        self.data.append(trace)

    def add_shape(self, **shape: Any) -> None:
        self.layout.setdefault("shapes", []).append(shape)

    def add_annotation(self, **annotation: Any) -> None:
        self.layout.setdefault("annotations", []).append(annotation)

    def add_vline(self, x: Any, line: dict[str, Any]) -> None:
        self.add_shape(type="line", xref="x", yref="paper", x0=x, x1=x, y0=0, y1=1, line=line)

    def update_xaxes(self, **settings: Any) -> None:
        _merge(self.layout.setdefault("xaxis", {}), _axis(settings))

    def update_yaxes(self, **settings: Any) -> None:
        _merge(self.layout.setdefault("yaxis", {}), _axis(settings))

    def update_layout(self, **settings: Any) -> None:
        _merge(self.layout, settings)

    def build(self) -> go.Figure:
        return go.Figure({"data": self.data, "layout": self.layout}, _validate=False)


def _axis(settings: dict[str, Any]) -> dict[str, Any]:
    out = dict(settings)
    if "title_text" in out:
        out["title"] = {"text": out.pop("title_text")}
    return out


def _merge(target: dict[str, Any], update: dict[str, Any]) -> None:
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = value


def _trace(kind: str, **properties: Any) -> dict[str, Any]:
    return {"type": kind, **properties}


MS_PER_DAY = 86_400_000
FLAG_LANE = "Safety flags"
EVENT_LANE = "Events"
CONDITION_LANE_PREFIX = "Condition: "
LAB_LANE = "Tests"


def empty_figure(message: str, height: int = 260) -> go.Figure:
    """A blank figure that says why it is blank (never an empty white box)."""
    figure = _Spec(theme.base_layout(height=height))
    figure.update_xaxes(visible=False)
    figure.update_yaxes(visible=False)
    figure.add_annotation(
        text=message,
        showarrow=False,
        x=0.5,
        y=0.5,
        xref="paper",
        yref="paper",
        font={"size": 14, "color": theme.NHS_SECONDARY_TEXT},
    )
    return figure.build()


# ---------------------------------------------------------------- risk trajectory
def risk_trajectory_figure(
    trajectory: Trajectory,
    medications: Sequence[MedicationPeriod] = (),
    events: Iterable = (),
    as_of: dt.date | None = None,
) -> go.Figure:
    """12-month risk per outcome over the record, with the model's uncertainty band, and markers where medicines
    started or stopped and where events happened."""
    if not any(trajectory.points.values()):
        return empty_figure("No cached model predictions for this patient.")
    figure = _Spec(theme.base_layout(height=380))
    first = min(p[0].as_of for p in trajectory.points.values() if p)
    last = max(p[-1].as_of for p in trajectory.points.values() if p)
    for outcome, points in trajectory.points.items():
        if not points:
            continue
        colour = theme.OUTCOME_COLOURS.get(outcome, theme.NHS_TEXT)
        label = theme.OUTCOME_LABELS.get(outcome, outcome)
        x = [p.as_of for p in points]
        figure.add_trace(
            _trace(
                "scatter",
                x=x + x[::-1],
                y=[p.upper * 100 for p in points] + [p.lower * 100 for p in points][::-1],
                fill="toself",
                fillcolor=theme.with_alpha(colour, 0.12),
                line={"width": 0},
                hoverinfo="skip",
                showlegend=False,
                legendgroup=outcome,
                name=f"{label} uncertainty",
            )
        )
        figure.add_trace(
            _trace(
                "scatter",
                x=x,
                y=[p.risk * 100 for p in points],
                mode="lines",
                name=label,
                legendgroup=outcome,
                line={"color": colour, "width": 2.5, "dash": theme.OUTCOME_DASHES.get(outcome, "solid")},
                customdata=[[p.lower * 100, p.upper * 100, theme.format_date(p.as_of)] for p in points],
                hovertemplate=(
                    f"<b>{label}</b><br>%{{customdata[2]}}<br>12-month risk %{{y:.1f}}% "
                    "(%{customdata[0]:.1f}–%{customdata[1]:.1f}%)<extra></extra>"
                ),
            )
        )
    top = max(p.upper for pts in trajectory.points.values() for p in pts) * 100
    _add_change_markers(figure, medications, events, first, last, marker_y=-top * 0.06)
    figure.update_yaxes(
        title_text="12-month risk (%)", range=[-top * 0.12, max(5.0, top * 1.08)], ticksuffix="%"
    )
    figure.update_xaxes(
        title_text="Date", range=[first - dt.timedelta(days=15), last + dt.timedelta(days=15)]
    )
    if as_of is not None:
        figure.add_vline(x=as_of, line={"color": theme.NHS_SECONDARY_TEXT, "dash": "dot", "width": 1})
    figure.update_layout(margin={"t": 70}, hovermode="closest")
    return figure.build()


def _add_change_markers(
    figure: _Spec,
    medications: Sequence[MedicationPeriod],
    events: Iterable,
    first: dt.date,
    last: dt.date,
    marker_y: float,
) -> None:
    """Markers in a strip just below zero (the y-range leaves room): ▲ medicine started, ▼ stopped, events."""
    starts = [(m.start, f"Started {m.drug}") for m in medications if first <= m.start <= last]
    stops = [(m.stop, f"Stopped {m.drug}") for m in medications if m.stop and first <= m.stop <= last]
    for points, symbol, name, colour in (
        (starts, "triangle-up", "Medicine started", theme.OI_GREEN),
        (stops, "triangle-down", "Medicine stopped", theme.NHS_SECONDARY_TEXT),
    ):
        if points:
            figure.add_trace(
                _trace(
                    "scatter",
                    x=[d for d, _ in points],
                    y=[marker_y] * len(points),
                    mode="markers",
                    marker={"symbol": symbol, "size": 10, "color": colour},
                    name=name,
                    text=[f"{text}<br>{theme.format_date(d)}" for d, text in points],
                    hovertemplate="%{text}<extra></extra>",
                )
            )
    dated_events = [e for e in events if first <= e.date <= last]
    if dated_events:
        figure.add_trace(
            _trace(
                "scatter",
                x=[e.date for e in dated_events],
                y=[marker_y] * len(dated_events),
                mode="markers",
                marker={
                    "symbol": [theme.EVENT_SYMBOLS.get(e.type, "circle") for e in dated_events],
                    "size": 11,
                    "color": theme.NHS_DARK_BLUE,
                },
                name="Event",
                text=[f"{e.label}<br>{theme.format_date(e.date)}" for e in dated_events],
                hovertemplate="%{text}<extra></extra>",
            )
        )


# ---------------------------------------------------------------- interaction timeline
@dataclass(frozen=True)
class Lane:
    key: str
    label: str
    chapter: str
    chapter_title: str


def timeline_lanes(view: PatientRecordView) -> list[Lane]:
    """Lanes top to bottom: flags, events, conditions, tests, then one per medicine grouped by BNF chapter."""
    lanes = [Lane(FLAG_LANE, FLAG_LANE, "", ""), Lane(EVENT_LANE, EVENT_LANE, "", "")]
    seen_conditions = []
    for condition in view.conditions:
        label = condition.term
        if label not in seen_conditions:
            seen_conditions.append(label)
    lanes += [Lane(CONDITION_LANE_PREFIX + c, c, "", "") for c in seen_conditions]
    if view.labs:
        lanes.append(Lane(LAB_LANE, LAB_LANE, "", ""))
    medicines: dict[str, MedicationPeriod] = {}
    for m in view.medications:
        medicines.setdefault(m.drug, m)
    ordered = sorted(medicines.values(), key=lambda m: (_chapter_order(m.chapter), m.drug))
    lanes += [Lane(m.drug, m.drug, m.chapter, m.chapter_title) for m in ordered]
    return lanes


def _chapter_order(chapter: str) -> int:
    return int(chapter) if chapter.isdigit() else 99


def interaction_timeline_figure(view: PatientRecordView) -> go.Figure:
    """A swim-lane (Gantt) chart of every prescription period by BNF chapter, the periods when a safety flag held
    (a bar in the flags lane, and a shaded band across the lanes of the drugs involved), events, conditions and
    labs on one time axis. Hovering a flag shows its rule, source and recommendation."""
    if not view.medications and not view.flags and not view.events:
        return empty_figure("No prescriptions, flags or events recorded for this patient.")
    lanes = timeline_lanes(view)
    labels = [lane.key for lane in lanes]
    end = view.as_of
    figure = _Spec(theme.base_layout(height=max(320, 90 + LANE_HEIGHT_PX * len(lanes))))
    chapters = {lane.chapter for lane in lanes if lane.chapter or lane.chapter_title}
    colours = {
        c: theme.CHAPTER_COLOURS[i % len(theme.CHAPTER_COLOURS)]
        for i, c in enumerate(sorted(chapters, key=_chapter_order))
    }
    _add_medication_bars(figure, view.medications, colours, end)
    _add_condition_bars(figure, view, end)
    _add_flags(figure, view.flags, labels, end)
    _add_cascade_arrows(figure, view.flags, view.medications, labels)
    _add_event_markers(figure, view)
    _add_lab_markers(figure, view)
    _add_chapter_bands(figure, lanes)
    tick_text = [lane.label if lane.chapter == "" else f"{lane.label}" for lane in lanes]
    figure.update_yaxes(
        type="category",
        categoryorder="array",
        categoryarray=labels[::-1],
        tickmode="array",
        tickvals=labels,
        ticktext=tick_text,
        automargin=True,
        gridcolor=theme.NHS_PALE_GREY,
        title_text=None,
    )
    figure.update_xaxes(type="date", title_text="Date")
    figure.update_layout(
        barmode="overlay", bargap=0.35, hovermode="closest", showlegend=True, margin={"l": 10, "t": 60}
    )
    return figure.build()


def _period_end(stop: dt.date | None, end: dt.date) -> dt.date:
    return stop if stop is not None else end


def _duration_ms(start: dt.date, stop: dt.date) -> int:
    # Inclusive dates: a course stopped on d is drawn to the end of d.
    return ((stop - start).days + 1) * MS_PER_DAY


def _add_medication_bars(
    figure: _Spec, medications: Sequence[MedicationPeriod], colours: dict[str, str], end: dt.date
) -> None:
    by_chapter: dict[str, list[MedicationPeriod]] = {}
    for m in medications:
        by_chapter.setdefault(m.chapter, []).append(m)
    for chapter in sorted(by_chapter, key=_chapter_order):
        items = by_chapter[chapter]
        title = items[0].chapter_title
        figure.add_trace(
            _trace(
                "bar",
                orientation="h",
                base=[m.start.isoformat() for m in items],
                x=[_duration_ms(m.start, _period_end(m.stop, end)) for m in items],
                y=[m.drug for m in items],
                name=f"BNF {chapter} {title}" if chapter else title,
                marker={
                    "color": colours.get(chapter, theme.NHS_SECONDARY_TEXT),
                    "pattern": {"shape": ["" if m.repeat else "/" for m in items]},
                },
                text=None,
                hovertext=[
                    f"<b>{m.name}</b><br>{theme.format_date(m.start)} to "
                    f"{theme.format_date(m.stop, 'ongoing')}<br>{m.dose_text or 'No dose recorded'}"
                    f"<br>{'Repeat' if m.repeat else 'Acute (not on repeat)'} · BNF {m.bnf_section or 'unknown'}"
                    for m in items
                ],
                hoverinfo="text",
            )
        )


def _add_condition_bars(figure: _Spec, view: PatientRecordView, end: dt.date) -> None:
    if not view.conditions:
        return
    figure.add_trace(
        _trace(
            "bar",
            orientation="h",
            base=[c.onset.isoformat() for c in view.conditions],
            x=[_duration_ms(c.onset, _period_end(c.resolved, end)) for c in view.conditions],
            y=[CONDITION_LANE_PREFIX + c.term for c in view.conditions],
            name="Condition",
            marker={"color": theme.with_alpha(theme.NHS_SECONDARY_TEXT, 0.45)},
            hovertext=[
                f"<b>{c.term}</b><br>From {theme.format_date(c.onset)}"
                + (f" to {theme.format_date(c.resolved)}" if c.resolved else " (active)")
                for c in view.conditions
            ],
            hoverinfo="text",
        )
    )


def _add_flags(figure: _Spec, flags: Sequence[FlagView], labels: list[str], end: dt.date) -> None:
    if not flags:
        return
    lane_index = {label: i for i, label in enumerate(labels)}
    for severity in ("high", "moderate", "low"):
        items = [f for f in flags if f.severity == severity]
        if not items:
            continue
        colour = theme.SEVERITY_COLOURS[severity]
        figure.add_trace(
            _trace(
                "bar",
                orientation="h",
                base=[f.start.isoformat() for f in items],
                x=[_duration_ms(f.start, _period_end(f.end, end)) for f in items],
                y=[FLAG_LANE] * len(items),
                name=f"{severity.capitalize()}-severity flag",
                marker={
                    "color": theme.with_alpha(colour, 0.85),
                    "line": {"color": theme.OI_BLACK, "width": 1},
                },
                hovertext=[flag_hover_text(f) for f in items],
                hoverinfo="text",
            )
        )
        for flag in items:
            rows = [lane_index[d] for d in flag.drugs if d in lane_index]
            if not rows:
                continue
            # Category axis positions: the first lane (index 0) is drawn at the top, i.e. position len - 1.
            top = len(labels) - 1 - min(rows) + 0.45
            bottom = len(labels) - 1 - max(rows) - 0.45
            figure.add_shape(
                type="rect",
                xref="x",
                yref="y",
                x0=flag.start,
                x1=_period_end(flag.end, end) + dt.timedelta(days=1),
                y0=bottom,
                y1=top,
                fillcolor=theme.with_alpha(colour, 0.18),
                line={"color": colour, "width": 1.5, "dash": "dot"},
                layer="below",
            )


def cascade_arrow_ends(
    flag: FlagView, medications: Sequence[MedicationPeriod]
) -> tuple[MedicationPeriod, MedicationPeriod] | None:
    """The prescriptions of drug A and drug B of a CASCADE flag (``drugs`` = "A;B" in time order, ``start`` = B's
    start): A's course running when B started, and B's course that started then. None when either is not drawn."""
    if flag.family != "CASCADE" or len(flag.drugs) != 2:
        return None
    index_drug, marker_drug = flag.drugs

    def running_on(m: MedicationPeriod, day: dt.date) -> bool:
        return m.start <= day and (m.stop is None or m.stop >= day)

    index_courses = [m for m in medications if index_drug in m.ingredients and running_on(m, flag.start)]
    marker_courses = [m for m in medications if marker_drug in m.ingredients and running_on(m, flag.start)]
    if not index_courses or not marker_courses:
        return None
    return min(index_courses, key=lambda m: m.start), max(marker_courses, key=lambda m: m.start)


def _add_cascade_arrows(
    figure: _Spec, flags: Sequence[FlagView], medications: Sequence[MedicationPeriod], labels: list[str]
) -> None:
    """An arrow from A's start to B's start for each prescribing cascade: "was B started to treat an effect of A?"."""
    lane_index = {label: i for i, label in enumerate(labels)}
    for flag in flags:
        ends = cascade_arrow_ends(flag, medications)
        if ends is None or ends[0].drug not in lane_index or ends[1].drug not in lane_index:
            continue
        index_course, marker_course = ends
        figure.add_annotation(
            x=marker_course.start.isoformat(),
            y=len(labels) - 1 - lane_index[marker_course.drug],
            ax=index_course.start.isoformat(),
            ay=len(labels) - 1 - lane_index[index_course.drug],
            xref="x",
            yref="y",
            axref="x",
            ayref="y",
            showarrow=True,
            arrowhead=3,
            arrowsize=1.3,
            arrowwidth=2,
            arrowcolor=theme.SEVERITY_COLOURS.get(flag.severity, theme.OI_BLACK),
            text="",
            hovertext=flag_hover_text(flag),
        )


def flag_hover_text(flag: FlagView) -> str:
    """Rule, source and recommendation of a flag, wrapped for a hover label."""
    period = f"{theme.format_date(flag.start)} to {theme.format_date(flag.end, 'now')}"
    drugs = ", ".join(flag.drugs) if flag.drugs else "—"
    return (
        f"<b>{flag.rule_id}</b> ({flag.severity})<br>{_wrap(flag.title)}<br>Drugs: {drugs}<br>{period}"
        f"<br>Source: {_wrap(flag.source or flag.family)}<br>Recommendation: {_wrap(flag.recommendation or '—')}"
    )


def _wrap(text: str, width: int = 70) -> str:
    words, lines, line = text.split(), [], ""
    for word in words:
        if line and len(line) + len(word) + 1 > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    if line:
        lines.append(line)
    return "<br>".join(lines)


def _add_event_markers(figure: _Spec, view: PatientRecordView) -> None:
    if not view.events:
        return
    figure.add_trace(
        _trace(
            "scatter",
            x=[e.date for e in view.events],
            y=[EVENT_LANE] * len(view.events),
            mode="markers",
            name="Event",
            marker={
                "symbol": [theme.EVENT_SYMBOLS.get(e.type, "circle") for e in view.events],
                "size": 12,
                "color": theme.NHS_DARK_BLUE,
                "line": {"width": 1, "color": theme.NHS_DARK_BLUE},
            },
            text=[f"<b>{e.label}</b><br>{theme.format_date(e.date)}" for e in view.events],
            hovertemplate="%{text}<extra></extra>",
        )
    )


def _add_lab_markers(figure: _Spec, view: PatientRecordView) -> None:
    if not view.labs:
        return
    figure.add_trace(
        _trace(
            "scatter",
            x=[lab.date for lab in view.labs],
            y=[LAB_LANE] * len(view.labs),
            mode="markers",
            name="Lab result",
            marker={"symbol": "circle", "size": 8, "color": theme.OI_GREEN},
            text=[
                f"<b>{lab.label}</b> {_lab_value(lab.value)} {lab.unit}<br>{theme.format_date(lab.date)}"
                for lab in view.labs
            ],
            hovertemplate="%{text}<extra></extra>",
        )
    )


def _lab_value(value: float | None) -> str:
    return "(no value)" if value is None else f"{value:g}"


def _add_chapter_bands(figure: _Spec, lanes: list[Lane]) -> None:
    """Shade alternate BNF chapters so lanes read as groups (the legend names each chapter by colour)."""
    total = len(lanes)
    groups: list[tuple[str, int, int]] = []
    for i, lane in enumerate(lanes):
        if not lane.chapter_title:
            continue
        name = f"BNF {lane.chapter} {lane.chapter_title}" if lane.chapter else lane.chapter_title
        if groups and groups[-1][0] == name:
            groups[-1] = (name, groups[-1][1], i)
        else:
            groups.append((name, i, i))
    for n, (_name, first, last) in enumerate(groups):
        y1 = total - 1 - first + 0.5
        y0 = total - 1 - last - 0.5
        if n % 2 == 0:
            figure.add_shape(
                type="rect",
                xref="paper",
                yref="y",
                x0=0,
                x1=1,
                y0=y0,
                y1=y1,
                fillcolor=theme.NHS_PALE_GREY,
                line={"width": 0},
                layer="below",
            )


# ---------------------------------------------------------------- what-if
def what_if_figure(
    current: dict[str, list[tuple[dt.date, float]]],
    scenario: dict[str, list[tuple[dt.date, float]]],
    label: str,
    model_version: str | None,
) -> go.Figure:
    """Forward 12-month risks, current medicines (solid) beside the scenario (dashed), one colour per outcome."""
    if not any(current.values()) and not any(scenario.values()):
        return empty_figure("The model returned no trajectory for this scenario.")
    figure = _Spec(theme.base_layout(height=360))
    for outcome in theme.OUTCOME_LABELS:
        colour = theme.OUTCOME_COLOURS[outcome]
        name = theme.OUTCOME_LABELS[outcome]
        for series, dash, suffix in (
            (current.get(outcome), "solid", "current medicines"),
            (scenario.get(outcome), "dash", label),
        ):
            if not series:
                continue
            figure.add_trace(
                _trace(
                    "scatter",
                    x=[d for d, _ in series],
                    y=[r * 100 for _, r in series],
                    mode="lines+markers",
                    line={"color": colour, "dash": dash, "width": 2.5},
                    marker={"size": 5},
                    name=f"{name}: {suffix}",
                    legendgroup=outcome,
                    customdata=[theme.format_date(d) for d, _ in series],
                    hovertemplate=f"<b>{name}</b> ({suffix})<br>%{{customdata}}: %{{y:.1f}}%<extra></extra>",
                )
            )
    figure.update_yaxes(title_text="12-month risk (%)", ticksuffix="%", rangemode="tozero")
    figure.update_xaxes(title_text="Date")
    figure.update_layout(
        title={
            "text": f"What-if: association from model {model_version or 'unknown'}, not advice",
            "x": 0,
            "font": {"size": 15},
        },
        margin={"t": 110},
        legend={"y": 1.12},
    )
    return figure.build()
