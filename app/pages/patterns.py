"""Patterns of care at ``/patterns`` (researchers): prescribing cascades found by prescription sequence symmetry.

Data flow (each callback is a call of a plain function in ``data_access.queries.patterns``, which calls
``clinical.sequence_symmetry``):
- the controls (drugs or drug classes, time window, minimum number of pairs, signals only) choose the screen; the
  incident users of a scope and level, and the screen of a window, are computed once and cached per scope
  (``AppContext.cached``, keyed by ``Scope.cache_key()``), then filtered in memory;
- clicking a row of the table, or choosing drug A and drug B, shows that pair's ratios and the histogram of the
  time from A's start to B's start.
Only aggregate counts reach the browser; no patient identifier is ever sent.
"""

from __future__ import annotations

import logging
import math
from typing import Any, NamedTuple

import dash
import dash_ag_grid as dag
import dash_bootstrap_components as dbc
import plotly.graph_objects as go
import polars as pl
from dash import Input, Output, State, callback, dcc, html
from sqlalchemy.exc import SQLAlchemyError

from app import theme
from app.runtime import app_context
from app.security import Permission, current_user, requires, scope_for
from clinical.sequence_symmetry import SequenceRatio, SymmetryParameters
from data_access.queries.patterns import (
    HISTOGRAM_BIN_DAYS,
    LEVELS,
    PairDetail,
    incident_users,
    item_choices,
    known_cascade_for,
    pair_detail,
    pattern_inputs,
    signal_table,
)
from data_access.queries.scope import Scope

dash.register_page(__name__, path="/patterns", title="Patterns of care · DynAIRx", name="Patterns", order=40)

log = logging.getLogger(__name__)

LEVEL_ID = "patterns-level"
WINDOW_ID = "patterns-window"
MIN_PAIRS_ID = "patterns-min-pairs"
SIGNALS_ONLY_ID = "patterns-signals-only"
SUMMARY_ID = "patterns-summary"
GRID_ID = "patterns-grid"
INDEX_ID = "patterns-index"
MARKER_ID = "patterns-marker"
PAIR_ID = "patterns-pair"
HISTOGRAM_ID = "patterns-histogram"
ERROR_ID = "patterns-error"

WINDOW_CHOICES = (90, 180, 365)
DEFAULT_WINDOW = 365
MIN_PAIRS_CHOICES = (5, 10, 20, 50, 100)
DEFAULT_MIN_PAIRS = 20
SCREEN_FLOOR = min(
    MIN_PAIRS_CHOICES
)  # the cached screen keeps every pair with this many; the control filters it
GRAPH_CONFIG = {"displaylogo": False, "responsive": True, "modeBarButtonsToRemove": ["select2d", "lasso2d"]}
LOAD_ERROR = "The analysis could not be run just now. Please try again; if it keeps happening, tell your administrator."
CHOOSE_PAIR = "Choose drug A and drug B, or click a row of the table."


def _parameters(window: Any, min_pairs: int = SCREEN_FLOOR) -> SymmetryParameters:
    days = int(window) if str(window).isdigit() and int(window) in WINDOW_CHOICES else DEFAULT_WINDOW
    return SymmetryParameters(window_days=days, min_pairs=min_pairs)


def _level(value: Any) -> str:
    return value if value in LEVELS else "drug"


def label(key: str | None) -> str:
    """A drug or class key as people read it ('ccb_dihydropyridine' → 'ccb dihydropyridine')."""
    return (key or "").replace("_", " ")


def format_ratio(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if math.isinf(value):
        return "∞"
    return f"{value:.2f}"


def format_interval(lower: float | None, upper: float | None) -> str:
    if lower is None or upper is None:
        return "—"
    return f"{format_ratio(lower)} to {format_ratio(upper)}"


# -- cached computations ----------------------------------------------------------------------------------------


class _Population(NamedTuple):
    """The incident users of one scope and level, and what the summary line says about them (a NamedTuple:
    Dash imports page modules outside ``sys.modules``, where dataclasses with string annotations fail)."""

    incident: pl.DataFrame
    period: str
    patients: int


def _population(scope: Scope, level: str) -> _Population:
    context = app_context()

    def compute() -> _Population:
        inputs = pattern_inputs(context.engine, scope)
        period = f"{theme.format_date(inputs.study_start)} to {theme.format_date(inputs.study_end)}"
        return _Population(incident_users(inputs, SymmetryParameters(), level), period, inputs.patients)

    return context.cached(("patterns-incident", scope.cache_key(), level), compute)


def _screen(scope: Scope, level: str, window: int) -> pl.DataFrame:
    context = app_context()
    params = _parameters(window)
    return context.cached(
        ("patterns-screen", scope.cache_key(), level, params.window_days),
        lambda: signal_table(_population(scope, level).incident, params, level),
    )


# -- layout -----------------------------------------------------------------------------------------------------


def column_defs() -> list[dict[str, Any]]:
    number = {"filter": "agNumberColumnFilter", "type": "rightAligned"}
    text = {"filter": "agTextColumnFilter"}
    return [
        {"field": "index_label", "headerName": "Drug A (first)", "pinned": "left", "width": 170, **text},
        {"field": "marker_label", "headerName": "Drug B (then)", "pinned": "left", "width": 170, **text},
        {
            "field": "n_index_first",
            "headerName": "A then B",
            "headerTooltip": "People whose first start of A came 1 to N days before their first start of B",
            "width": 105,
            **number,
        },
        {
            "field": "n_marker_first",
            "headerName": "B then A",
            "headerTooltip": "People whose first start of B came 1 to N days before their first start of A",
            "width": 105,
            **number,
        },
        {"field": "n_same_day", "headerName": "Same day", "width": 100, **number},
        {"field": "crude_sr", "headerName": "Crude SR", "width": 105, **number},
        {
            "field": "null_sr",
            "headerName": "Null-effect SR",
            "headerTooltip": "The ratio expected from prescribing trends alone (Tsiropoulos 2009)",
            "width": 120,
            **number,
        },
        {
            "field": "adjusted_sr",
            "headerName": "Adjusted SR",
            "headerTooltip": "Crude SR divided by the null-effect SR; blank when infinite (no 'B then A' pairs)",
            "width": 115,
            **number,
        },
        {"field": "ci", "headerName": "95% CI", "sortable": False, "width": 140, **text},
        {"field": "ci_lower", "headerName": "CI lower", "width": 100, **number},
        {"field": "signal_text", "headerName": "Signal", "width": 90, **text},
        {
            "field": "known_cascade",
            "headerName": "Published cascade",
            "headerTooltip": "A prescribing cascade of ThinkCascades or the literature (clinical/rules/cascades.yaml)",
            "flex": 1,
            "minWidth": 170,
            **text,
        },
    ]


def grid() -> dag.AgGrid:
    return dag.AgGrid(
        id=GRID_ID,
        rowData=[],
        columnDefs=column_defs(),
        defaultColDef={"sortable": True, "resizable": True, "wrapHeaderText": True, "autoHeaderHeight": True},
        dashGridOptions={
            "animateRows": False,
            "ensureDomOrder": True,
            "enableCellTextSelection": True,
            "tooltipShowDelay": 300,
            "pagination": True,
            "paginationPageSize": 50,
            "paginationPageSizeSelector": False,
            "localeText": {"noRowsToShow": "No pair has enough people who started both drugs."},
        },
        style={"height": "560px", "width": "100%"},
        className="dx-grid",
    )


def _controls() -> dbc.Card:
    return dbc.Card(
        className="dx-filters mb-3",
        children=dbc.CardBody(
            dbc.Row(
                [
                    dbc.Col(
                        html.Fieldset(
                            [
                                html.Legend("Compare", className="dx-legend"),
                                dbc.RadioItems(
                                    id=LEVEL_ID,
                                    options=[{"label": text, "value": key} for key, text in LEVELS.items()],
                                    value="drug",
                                ),
                            ]
                        ),
                        md=3,
                    ),
                    dbc.Col(
                        [
                            dbc.Label(
                                "Time window between the two starts",
                                html_for=WINDOW_ID,
                                className="dx-legend",
                            ),
                            dbc.Select(
                                id=WINDOW_ID,
                                value=str(DEFAULT_WINDOW),
                                options=[{"label": f"{d} days", "value": str(d)} for d in WINDOW_CHOICES],
                            ),
                        ],
                        md=3,
                    ),
                    dbc.Col(
                        [
                            dbc.Label(
                                "Minimum people with both (A then B + B then A)",
                                html_for=MIN_PAIRS_ID,
                                className="dx-legend",
                            ),
                            dbc.Select(
                                id=MIN_PAIRS_ID,
                                value=str(DEFAULT_MIN_PAIRS),
                                options=[{"label": str(n), "value": str(n)} for n in MIN_PAIRS_CHOICES],
                            ),
                        ],
                        md=3,
                    ),
                    dbc.Col(
                        html.Fieldset(
                            [
                                html.Legend("Show", className="dx-legend"),
                                dbc.Switch(
                                    id=SIGNALS_ONLY_ID, label="Signals only (CI above 1)", value=False
                                ),
                            ]
                        ),
                        md=3,
                    ),
                ],
                className="g-3",
            )
        ),
    )


def _method() -> html.Details:
    params = SymmetryParameters()
    return html.Details(
        [
            html.Summary("Method and parameters"),
            html.Ul(
                [
                    html.Li(
                        "Prescription sequence symmetry analysis (Hallas J. Epidemiology 1996;7:478-84). Each "
                        "person counts once per pair, at the first-ever start of each drug (or of any drug of a "
                        "class)."
                    ),
                    html.Li(
                        f"New users only: a first start within {params.washout_days} days of the start of the "
                        "data or of registration may continue earlier treatment and is left out (run-in)."
                    ),
                    html.Li(
                        "Null-effect sequence ratio from the daily numbers of new users of A and of B in the whole "
                        "population, within the time window (Tsiropoulos N et al. Pharmacoepidemiol Drug Saf "
                        "2009;18:483-91); adjusted SR = crude SR / null-effect SR."
                    ),
                    html.Li(
                        "95% confidence interval: Wilson score interval of the share of 'A then B' pairs, turned "
                        "into a ratio and divided by the null-effect SR."
                    ),
                    html.Li(
                        "The table lists each pair once, in the direction in which it is commoner than trends "
                        "explain, among the 200 commonest drugs or classes; classes that share a drug are not "
                        "paired. Published cascades come from ThinkCascades (McCarthy LM et al. Drugs Aging "
                        "2022;39:829-40) and the literature."
                    ),
                ]
            ),
        ],
        className="mb-3",
    )


def _pair_panel() -> dbc.Card:
    return dbc.Card(
        className="mb-3",
        children=dbc.CardBody(
            [
                html.H2("One pair", className="h5"),
                dbc.Row(
                    [
                        dbc.Col(
                            [
                                dbc.Label(
                                    "Drug A (suspected cause)", html_for=INDEX_ID, className="dx-legend"
                                ),
                                dbc.Select(id=INDEX_ID, options=[], value=None),
                            ],
                            md=6,
                        ),
                        dbc.Col(
                            [
                                dbc.Label(
                                    "Drug B (started to treat a side effect?)",
                                    html_for=MARKER_ID,
                                    className="dx-legend",
                                ),
                                dbc.Select(id=MARKER_ID, options=[], value=None),
                            ],
                            md=6,
                        ),
                    ],
                    className="g-3 mb-3",
                ),
                html.Div(id=PAIR_ID, children=html.P(CHOOSE_PAIR), **{"aria-live": "polite"}),
                dcc.Loading(
                    dcc.Graph(id=HISTOGRAM_ID, config=GRAPH_CONFIG, figure=empty_histogram(CHOOSE_PAIR)),
                    type="default",
                    delay_show=300,
                ),
            ]
        ),
    )


@requires(Permission.VIEW_AGGREGATE)
def layout(**_query: Any) -> html.Div:
    return html.Div(
        [
            html.H1("Patterns of care: prescribing cascades", className="h3"),
            html.P(
                [
                    "A prescribing cascade is a drug started to treat a side effect of another drug. Prescription "
                    "sequence symmetry analysis looks for it across the population: among people who started "
                    "both drug A and drug B for the first time within the time window, 'A then B' should be as "
                    "common as 'B then A' unless A leads to B. The adjusted sequence ratio (SR) corrects for "
                    "prescribing trends; a 95% confidence interval wholly above 1 is a signal. Signals are "
                    "hypotheses to check against clinical knowledge, not proof: about 1 in 20 pairs with no link "
                    "shows one by chance, and treatment pathways (step 1 then step 2) are sequential by design.",
                ],
                className="text-secondary",
            ),
            _method(),
            _controls(),
            html.Div(id=ERROR_ID, role="alert"),
            html.P(id=SUMMARY_ID, className="dx-count", **{"aria-live": "polite"}),
            html.H2("Sequence ratios of the commonest drugs", className="h5"),
            dcc.Loading(grid(), type="default", delay_show=300),
            html.Div(className="mb-3"),
            _pair_panel(),
        ]
    )


# -- table ------------------------------------------------------------------------------------------------------


def table_rows(table: pl.DataFrame, min_pairs: int, signals_only: bool) -> list[dict[str, Any]]:
    """Rows for the grid: the screen filtered by the controls, ratios rounded, infinities as blanks or '∞'."""
    chosen = table.filter(pl.col("n_index_first") + pl.col("n_marker_first") >= min_pairs)
    if signals_only:
        chosen = chosen.filter(pl.col("signal"))
    rows = []
    for row in chosen.iter_rows(named=True):
        rows.append(
            {
                "index": row["index"],
                "marker": row["marker"],
                "index_label": label(row["index"]),
                "marker_label": label(row["marker"]),
                "n_index_first": row["n_index_first"],
                "n_marker_first": row["n_marker_first"],
                "n_same_day": row["n_same_day"],
                "crude_sr": _finite(row["crude_sr"]),
                "null_sr": _finite(row["null_sr"]),
                "adjusted_sr": _finite(row["adjusted_sr"]),
                "ci_lower": _finite(row["ci_lower"]),
                "ci": format_interval(row["ci_lower"], row["ci_upper"]),
                "signal_text": "Yes" if row["signal"] else "",
                "known_cascade": row.get("known_cascade") or "",
            }
        )
    return rows


def _finite(value: float | None) -> float | None:
    if value is None or math.isnan(value) or math.isinf(value):
        return None
    return round(value, 2)


def summary_text(
    period: str, patients: int, rows: list[dict[str, Any]], level: str, params: SymmetryParameters
) -> str:
    signals = sum(1 for r in rows if r["signal_text"])
    known = sum(1 for r in rows if r["signal_text"] and r["known_cascade"])
    noun = "drug" if level == "drug" else "drug class"
    return (
        f"{patients:,} patients, {period}; new users only (first start at least {params.washout_days} days after "
        f"observation began); {params.window_days}-day window. {len(rows):,} {noun} pairs shown, {signals:,} "
        f"signals, {known:,} of them published cascades."
    )


def _default_pair(rows: list[dict[str, Any]]) -> tuple[str | None, str | None]:
    """The strongest signal that is a published cascade, else the strongest signal, else the first row."""
    for condition in (
        lambda r: r["signal_text"] and r["known_cascade"],
        lambda r: r["signal_text"],
        lambda r: True,
    ):
        for row in rows:
            if condition(row):
                return row["index"], row["marker"]
    return None, None


@callback(
    Output(GRID_ID, "rowData"),
    Output(SUMMARY_ID, "children"),
    Output(INDEX_ID, "options"),
    Output(MARKER_ID, "options"),
    Output(INDEX_ID, "value"),
    Output(MARKER_ID, "value"),
    Output(ERROR_ID, "children"),
    Input(LEVEL_ID, "value"),
    Input(WINDOW_ID, "value"),
    Input(MIN_PAIRS_ID, "value"),
    Input(SIGNALS_ONLY_ID, "value"),
)
@requires(Permission.VIEW_AGGREGATE)
def update_screen(level: Any, window: Any, min_pairs: Any, signals_only: Any) -> tuple[Any, ...]:
    level = _level(level)
    params = _parameters(window)
    minimum = int(min_pairs) if str(min_pairs).isdigit() else DEFAULT_MIN_PAIRS
    scope = scope_for(current_user())
    try:
        population = _population(scope, level)
        table = _screen(scope, level, params.window_days)
        choices = item_choices(population.incident)
    except SQLAlchemyError as exc:
        log.error("patterns screen failed: %s", type(exc).__name__)
        return [], "", [], [], None, None, dbc.Alert(LOAD_ERROR, color="danger")
    rows = table_rows(table, minimum, bool(signals_only))
    options = [{"label": f"{label(item)} ({count:,} new users)", "value": item} for item, count in choices]
    index, marker = _default_pair(rows)
    return (
        rows,
        summary_text(population.period, population.patients, rows, level, params),
        options,
        options,
        index,
        marker,
        None,
    )


@callback(
    Output(INDEX_ID, "value", allow_duplicate=True),
    Output(MARKER_ID, "value", allow_duplicate=True),
    Input(GRID_ID, "cellClicked"),
    State(GRID_ID, "rowData"),
    prevent_initial_call=True,
)
@requires(Permission.VIEW_AGGREGATE)
def choose_pair_from_table(
    clicked: dict[str, Any] | None, rows: list[dict[str, Any]] | None
) -> tuple[Any, Any]:
    """A click on a row picks its pair (AG Grid's default row id is the row's position in ``rowData``)."""
    row_id = (clicked or {}).get("rowId")
    if row_id is None or not rows or not str(row_id).isdigit() or int(row_id) >= len(rows):
        return dash.no_update, dash.no_update
    row = rows[int(row_id)]
    return row["index"], row["marker"]


# -- one pair ---------------------------------------------------------------------------------------------------


def empty_histogram(message: str) -> go.Figure:
    figure = go.Figure(layout=theme.base_layout(height=320))
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


def histogram_figure(detail: PairDetail, window: int) -> go.Figure:
    """Bars of people by days from A's start to B's start: left of 0 B came first, right of 0 A came first."""
    bins = detail.histogram
    index, marker = label(detail.ratio.index), label(detail.ratio.marker)
    if bins.is_empty():
        return empty_histogram(
            f"Nobody started both {index} and {marker} within {window} days of each other."
        )
    figure = go.Figure(layout=theme.base_layout(height=340))
    sides = (
        (pl.col("bin_end") < 0, f"{marker} first", theme.OI_SKY_BLUE),
        (pl.col("bin_start") == 0, "same day", theme.NHS_MID_GREY),
        (pl.col("bin_start") > 0, f"{index} first", theme.OI_VERMILLION),
    )
    for condition, name, colour in sides:
        part = bins.filter(condition)
        if part.is_empty():
            continue
        centres = [(a + b) / 2 for a, b in part.select("bin_start", "bin_end").iter_rows()]
        widths = [b - a + 1 for a, b in part.select("bin_start", "bin_end").iter_rows()]
        figure.add_bar(
            x=centres,
            y=part["count"].to_list(),
            width=widths,
            name=name,
            marker={"color": colour, "line": {"color": theme.NHS_WHITE, "width": 1}},
            customdata=list(part.select("bin_start", "bin_end").iter_rows()),
            hovertemplate="%{customdata[0]} to %{customdata[1]} days: %{y} people<extra>" + name + "</extra>",
        )
    figure.add_vline(x=0, line={"color": theme.NHS_TEXT, "width": 1, "dash": "dot"})
    figure.update_layout(
        bargap=0,
        xaxis={
            "title": {"text": f"Days from the first start of {index} to the first start of {marker}"},
            "tickformat": "d",
            "range": [-window - 5, window + 5],
            "zeroline": False,
        },
        yaxis={"title": {"text": "People"}, "rangemode": "tozero", "tickformat": ",d"},
    )
    if int(bins["count"].max()) <= 10:  # whole people: no 0.2 ticks on small counts
        figure.update_yaxes(dtick=1)
    return figure


def pair_summary(ratio: SequenceRatio, known: list[str], window: int) -> html.Div:
    index, marker = label(ratio.index), label(ratio.marker)
    pairs = ratio.n_index_first + ratio.n_marker_first
    if pairs == 0:
        return html.Div(
            [
                html.H3(f"{index} → {marker}", className="h6"),
                html.P(
                    f"Nobody started both within {window} days of each other (same-day starts: "
                    f"{ratio.n_same_day:,})."
                ),
            ]
        )
    verdict = (
        f"Signal: {marker} is started after {index} more often than prescribing trends explain."
        if ratio.signal
        else "No signal: the order of the two starts is compatible with chance and prescribing trends."
    )
    headers = [
        "A then B",
        "B then A",
        "Same day (not counted)",
        "Crude SR",
        "Null-effect SR",
        "Adjusted SR (95% CI)",
    ]
    values = [
        f"{ratio.n_index_first:,}",
        f"{ratio.n_marker_first:,}",
        f"{ratio.n_same_day:,}",
        format_ratio(ratio.crude_sr),
        format_ratio(ratio.null_sr),
        f"{format_ratio(ratio.adjusted_sr)} ({format_interval(ratio.ci_lower, ratio.ci_upper)})",
    ]
    children: list[Any] = [
        html.H3(f"{index} → {marker}", className="h6"),
        dbc.Table(
            [
                html.Thead(html.Tr([html.Th(h, scope="col") for h in headers])),
                html.Tbody(html.Tr([html.Td(v) for v in values])),
            ],
            bordered=False,
            size="sm",
            className="w-auto",
        ),
        html.P(verdict, className="fw-semibold"),
    ]
    if known:
        children.append(
            html.P(
                f"Published cascade: {', '.join(known)} — flagged for individual patients on the worklist and "
                f"the patient page ('consider whether {marker} treats a side effect of {index}')."
            )
        )
    return html.Div(children)


@callback(
    Output(PAIR_ID, "children"),
    Output(HISTOGRAM_ID, "figure"),
    Input(INDEX_ID, "value"),
    Input(MARKER_ID, "value"),
    State(LEVEL_ID, "value"),
    State(WINDOW_ID, "value"),
    prevent_initial_call=True,
)
@requires(Permission.VIEW_AGGREGATE)
def update_pair(index: Any, marker: Any, level: Any, window: Any) -> tuple[Any, go.Figure]:
    if not index or not marker:
        return html.P(CHOOSE_PAIR), empty_histogram(CHOOSE_PAIR)
    if index == marker:
        message = "Choose two different drugs."
        return html.P(message), empty_histogram(message)
    params = _parameters(window)
    scope = scope_for(current_user())
    try:
        incident = _population(scope, _level(level)).incident
        detail = pair_detail(incident, params, str(index), str(marker), HISTOGRAM_BIN_DAYS)
    except SQLAlchemyError as exc:
        log.error("patterns pair failed: %s", type(exc).__name__)
        return dbc.Alert(LOAD_ERROR, color="danger"), empty_histogram(LOAD_ERROR)
    known = known_cascade_for(str(index), str(marker))
    return pair_summary(detail.ratio, known, params.window_days), histogram_figure(detail, params.window_days)
