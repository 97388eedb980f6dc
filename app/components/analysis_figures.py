"""Figures of the combinations, population and model pages, as pure functions of query results.

Colours, fonts and the plotly layout come from ``app.theme``. Suppressed small numbers (``data_access.queries.
population``) arrive as "<5" and are drawn as labelled gaps, never as a number.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import plotly.graph_objects as go

from app import theme
from data_access.queries.combinations import CoPrescription
from data_access.queries.population import (
    SUPPRESSED,
    Z_95,
    Z_998,
    PracticeRate,
    RiskDistribution,
    funnel_curve,
    is_small,
)

MODEL_LABELS = {
    "graph_model": "DynAIRx graph model",
    "logistic_regression": "Logistic regression",
    "gradient_boosting": "Gradient boosting",
    "efi": "eFI alone",
    "cms": "Cambridge Multimorbidity Score alone",
    "oracle": "Oracle (generator's true risk)",
}
MODEL_COLOURS = {
    "graph_model": theme.NHS_BLUE,
    "logistic_regression": theme.OI_ORANGE,
    "gradient_boosting": theme.OI_GREEN,
    "efi": theme.OI_PURPLE,
    "cms": theme.OI_SKY_BLUE,
    "oracle": theme.OI_BLACK,
}
MODEL_SYMBOLS = {
    "graph_model": "circle",
    "logistic_regression": "square",
    "gradient_boosting": "diamond",
    "efi": "triangle-up",
    "cms": "triangle-down",
    "oracle": "x",
}


def message_figure(message: str, height: int = 260) -> go.Figure:
    """A blank figure that says why it is blank."""
    figure = go.Figure(layout=theme.base_layout(height=height))
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
    return figure


def label(key: str) -> str:
    return key.replace("_", " ")


# -- combinations ---------------------------------------------------------------------------------------------------


def coprescription_heatmap(matrix: CoPrescription, *, suppress: bool) -> go.Figure:
    """Patients on a medicine of class A and one of class B at the data cut (the diagonal is left blank; each
    axis label carries the number on that class)."""
    if not matrix.classes:
        return message_figure("Nobody in this selection is on any of the chosen classes.", 420)
    names = [
        f"{label(k)} ({SUPPRESSED if suppress and is_small(matrix.on_any.get(k, 0)) else matrix.on_any.get(k, 0)})"
        for k in matrix.classes
    ]
    z: list[list[float | None]] = []
    text: list[list[str]] = []
    for i, row in enumerate(matrix.counts):
        z_row: list[float | None] = []
        text_row: list[str] = []
        for j, count in enumerate(row):
            if i == j:
                z_row.append(None)
                text_row.append("")
            elif suppress and is_small(count):
                z_row.append(None)
                text_row.append(SUPPRESSED)
            else:
                z_row.append(count)
                text_row.append(str(count))
        z.append(z_row)
        text.append(text_row)
    size = max(420, 28 * len(names) + 180)
    figure = go.Figure(
        go.Heatmap(
            z=z,
            x=names,
            y=names,
            text=text,
            texttemplate="%{text}",
            textfont={"size": 11},
            colorscale=[[0.0, theme.NHS_WHITE], [0.15, theme.OI_SKY_BLUE], [1.0, theme.NHS_DARK_BLUE]],
            hovertemplate="%{y} with %{x}: %{text} patients<extra></extra>",
            colorbar={"title": {"text": "Patients"}},
            xgap=1,
            ygap=1,
        ),
        layout=theme.base_layout(height=size),
    )
    figure.update_xaxes(tickformat="", tickangle=-45, showgrid=False, automargin=True)
    figure.update_yaxes(autorange="reversed", showgrid=False, automargin=True)
    figure.update_layout(margin={"l": 10, "r": 10, "t": 20, "b": 10})
    return figure


# -- population -----------------------------------------------------------------------------------------------------


def risk_histogram(distribution: RiskDistribution, *, suppress: bool = True) -> go.Figure:
    """Patients per band of current 12-month risk; bins of 1 to 4 patients are gaps labelled "<5"."""
    if not distribution.bins:
        return message_figure("No current model risks for this outcome.", 320)
    colour = theme.OUTCOME_COLOURS.get(distribution.outcome, theme.NHS_BLUE)
    x = [100 * (b.lower + b.upper) / 2 for b in distribution.bins]
    width = [100 * (b.upper - b.lower) for b in distribution.bins]
    hidden = [suppress and is_small(b.count) for b in distribution.bins]
    y = [0 if h else b.count for b, h in zip(distribution.bins, hidden, strict=True)]
    text = [SUPPRESSED if h else "" for h in hidden]
    ranges = [f"{100 * b.lower:.0f}–{100 * b.upper:.0f}%" for b in distribution.bins]
    shown = [SUPPRESSED if h else f"{b.count:,}" for b, h in zip(distribution.bins, hidden, strict=True)]
    figure = go.Figure(
        go.Bar(
            x=x,
            y=y,
            width=width,
            text=text,
            textposition="outside",
            customdata=list(zip(ranges, shown, strict=True)),
            marker={"color": colour, "line": {"color": theme.NHS_WHITE, "width": 1}},
            hovertemplate="Risk %{customdata[0]}: %{customdata[1]} patients<extra></extra>",
            name=theme.OUTCOME_LABELS.get(distribution.outcome, distribution.outcome),
        ),
        layout=theme.base_layout(height=320),
    )
    figure.update_xaxes(tickformat="", title={"text": "Current 12-month risk (%)"}, ticksuffix="%")
    figure.update_yaxes(title={"text": "Patients"}, rangemode="tozero")
    if distribution.median is not None:
        figure.add_vline(
            x=100 * distribution.median,
            line={"color": theme.NHS_TEXT, "dash": "dash", "width": 1},
            annotation_text=f"median {100 * distribution.median:.1f}%",
            annotation_position="top right",
        )
    figure.update_layout(showlegend=False, bargap=0)
    return figure


def funnel_plot(rates: Sequence[PracticeRate], p0: float, *, suppress: bool = True) -> go.Figure:
    """Flagged patients per 1,000 against practice size, with the 95% and 99.8% limits (Spiegelhalter 2005).
    Practices whose count is suppressed are not plotted (their rate would reveal it)."""
    shown = [r for r in rates if not (suppress and is_small(r.flagged, r.patients))]
    if not rates:
        return message_figure("No practices with registered patients in this view.", 420)
    sizes = [r.patients for r in rates]
    n_min, n_max = max(1, int(min(sizes) * 0.8)), int(max(sizes) * 1.2) + 1
    figure = go.Figure(layout=theme.base_layout(height=440))
    for z, name, dash in ((Z_998, "99.8% limits", "dash"), (Z_95, "95% limits", "dot")):
        curve = funnel_curve(p0, n_min, n_max, z)
        xs = [n for n, _lo, _hi in curve]
        for index, part in ((1, "upper"), (2, "lower")):
            figure.add_trace(
                go.Scatter(
                    x=xs,
                    y=[1000 * point[index] for point in curve],
                    mode="lines",
                    line={"color": theme.NHS_SECONDARY_TEXT, "dash": dash, "width": 1.5},
                    name=name,
                    legendgroup=name,
                    showlegend=part == "upper",
                    hovertemplate=f"{name} ({part}) at %{{x:,}} patients: %{{y:.0f}} per 1,000<extra></extra>",
                )
            )
    figure.add_trace(
        go.Scatter(
            x=[n_min, n_max],
            y=[1000 * p0, 1000 * p0],
            mode="lines",
            line={"color": theme.NHS_TEXT, "width": 1.5},
            name=f"Overall {1000 * p0:.0f} per 1,000",
            hoverinfo="skip",
        )
    )
    figure.add_trace(
        go.Scatter(
            x=[r.patients for r in shown],
            y=[1000 * r.proportion for r in shown],
            mode="markers",
            marker={"color": theme.NHS_BLUE, "size": 10, "line": {"color": theme.NHS_WHITE, "width": 1}},
            text=[r.name for r in shown],
            customdata=[[r.flagged] for r in shown],
            name="Practice",
            hovertemplate="%{text}<br>%{x:,} patients, %{customdata[0]:,} flagged<br>%{y:.0f} per 1,000"
            "<extra></extra>",
        )
    )
    figure.update_xaxes(tickformat=",", title={"text": "Registered patients (practice size)"}, type="log")
    figure.update_yaxes(title={"text": "Patients with an active flag per 1,000"}, rangemode="tozero")
    return figure


# -- model ----------------------------------------------------------------------------------------------------------


def discrimination_figure(by_model: Mapping[str, Mapping[str, Any]], metric: str = "auroc") -> go.Figure:
    """Each model's AUROC (or AUPRC) with its 95% interval, one row per model (a forest plot)."""
    names = [m for m in MODEL_LABELS if m in by_model] + [m for m in by_model if m not in MODEL_LABELS]
    rows = [(m, by_model[m].get(metric) or [None, None, None]) for m in names]
    rows = [(m, v) for m, v in rows if v[1] is not None]
    if not rows:
        return message_figure("No discrimination results in the metrics report.", 260)
    figure = go.Figure(layout=theme.base_layout(height=70 + 34 * len(rows)))
    for model, (lo, point, hi) in rows:
        has_ci = lo is not None and hi is not None
        figure.add_trace(
            go.Scatter(
                x=[point],
                y=[MODEL_LABELS.get(model, model)],
                mode="markers",
                marker={
                    "color": MODEL_COLOURS.get(model, theme.NHS_TEXT),
                    "symbol": MODEL_SYMBOLS.get(model, "circle"),
                    "size": 11,
                },
                error_x={
                    "type": "data",
                    "symmetric": False,
                    "array": [hi - point] if has_ci else [0],
                    "arrayminus": [point - lo] if has_ci else [0],
                    "color": MODEL_COLOURS.get(model, theme.NHS_TEXT),
                },
                showlegend=False,
                hovertemplate=(
                    f"{MODEL_LABELS.get(model, model)}: {point:.3f}"
                    + (f" (95% CI {lo:.3f} to {hi:.3f})" if has_ci else "")
                    + "<extra></extra>"
                ),
            )
        )
    title = "AUROC" if metric == "auroc" else "AUPRC (average precision)"
    figure.update_xaxes(tickformat=".2f", title={"text": f"{title} with 95% interval"})
    figure.update_yaxes(autorange="reversed", automargin=True)
    if metric == "auroc":
        figure.add_vline(x=0.5, line={"color": theme.NHS_MID_GREY, "dash": "dot"})
    figure.update_layout(margin={"l": 10, "r": 20, "t": 10, "b": 50})
    return figure


def roc_figure(curves: Mapping[str, Sequence[Mapping[str, float]]]) -> go.Figure:
    """ROC curves from the report's ``roc_curve`` points (false and true positive rates), with the diagonal."""
    figure = go.Figure(layout=theme.base_layout(height=360))
    figure.add_trace(
        go.Scatter(
            x=[0, 1],
            y=[0, 1],
            mode="lines",
            line={"color": theme.NHS_MID_GREY, "dash": "dot"},
            name="Chance",
            hoverinfo="skip",
        )
    )
    for model, points in curves.items():
        figure.add_trace(
            go.Scatter(
                x=[p.get("fpr") for p in points],
                y=[p.get("tpr") for p in points],
                mode="lines",
                line={"color": MODEL_COLOURS.get(model, theme.NHS_TEXT), "width": 2},
                name=MODEL_LABELS.get(model, model),
            )
        )
    figure.update_xaxes(
        tickformat=".1f", title={"text": "False positive rate (1 − specificity)"}, range=[0, 1]
    )
    figure.update_yaxes(title={"text": "True positive rate (sensitivity)"}, range=[0, 1])
    return figure


def calibration_figure(curves: Mapping[str, Sequence[Mapping[str, float]]]) -> go.Figure:
    """Reliability diagram: observed event rate against mean predicted risk per bin, marker size ~ bin count."""
    if not curves:
        return message_figure("No calibration curve in the metrics report.", 360)
    figure = go.Figure(layout=theme.base_layout(height=360))
    top = max(
        [max(p.get("mean_predicted", 0), p.get("observed", 0)) for points in curves.values() for p in points]
        or [1.0]
    )
    limit = min(1.0, max(0.05, top * 1.1))
    figure.add_trace(
        go.Scatter(
            x=[0, limit],
            y=[0, limit],
            mode="lines",
            line={"color": theme.NHS_MID_GREY, "dash": "dot"},
            name="Perfect calibration",
            hoverinfo="skip",
        )
    )
    for model, points in curves.items():
        counts = [p.get("count", 0) for p in points]
        biggest = max(counts or [1]) or 1
        figure.add_trace(
            go.Scatter(
                x=[p.get("mean_predicted") for p in points],
                y=[p.get("observed") for p in points],
                mode="lines+markers",
                marker={
                    "size": [6 + 14 * (c / biggest) ** 0.5 for c in counts],
                    "color": MODEL_COLOURS.get(model, theme.NHS_TEXT),
                    "symbol": MODEL_SYMBOLS.get(model, "circle"),
                },
                line={"color": MODEL_COLOURS.get(model, theme.NHS_TEXT), "width": 1.5},
                name=MODEL_LABELS.get(model, model),
                customdata=counts,
                hovertemplate="predicted %{x:.1%}, observed %{y:.1%} (%{customdata:,} landmarks)<extra></extra>",
            )
        )
    figure.update_xaxes(tickformat=".0%", title={"text": "Mean predicted 12-month risk"}, range=[0, limit])
    figure.update_yaxes(tickformat=".0%", title={"text": "Observed event rate"}, range=[0, limit])
    return figure
