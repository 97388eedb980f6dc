"""Workshop feedback at ``/workshop/feedback`` (researchers): ratings per view and variant (n, mean, distribution),
participants' comments, and the raw feedback as CSV for analysis.

Each callback is one call of a plain function in ``data_access.queries.workshop``. Comments are free text typed by
participants: they are passed to Dash as text (never HTML), and the CSV export guards spreadsheet formulas. The
feedback holds no patient data; exports are audited like every other export.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import dash
import dash_bootstrap_components as dbc
import plotly.graph_objects as go
from dash import Input, Output, State, callback, dcc, html
from sqlalchemy.exc import SQLAlchemyError

from app import theme
from app.components.figures import empty_figure
from app.runtime import app_context
from app.security import AuditAction, Permission, audit, requires
from data_access.queries.workshop import (
    RATING_MAX,
    RATING_MIN,
    RATING_WORDS,
    FeedbackComment,
    SessionSummary,
    VariantSummary,
    feedback_comments,
    feedback_csv,
    feedback_sessions,
    feedback_summary,
    valid_session_id,
    workshop_view,
)

dash.register_page(
    __name__,
    path="/workshop/feedback",
    title="Workshop feedback · DynAIRx",
    name="Workshop feedback",
    order=61,
)

log = logging.getLogger(__name__)

SESSION_ID = "feedback-session"
COUNT_ID = "feedback-count"
TABLE_ID = "feedback-summary"
CHART_ID = "feedback-chart"
COMMENTS_ID = "feedback-comments"
EXPORT_ID = "feedback-export"
DOWNLOAD_ID = "feedback-download"
ERROR_ID = "feedback-error"

ALL_SESSIONS = "*"
LOAD_ERROR = "The feedback could not be loaded just now. Please try again."
GRAPH_CONFIG = {"displaylogo": False, "responsive": True, "modeBarButtonsToRemove": ["select2d", "lasso2d"]}
# Ratings 1 (pale) to 5 (dark) on one hue, so order reads without a legend; each bar also carries its count.
RATING_COLOURS = ("#C6DBEF", "#9ECAE1", "#6BAED6", "#2171B5", theme.NHS_DARK_BLUE)
RATING_TEXT_COLOURS = (theme.NHS_TEXT, theme.NHS_TEXT, theme.NHS_TEXT, theme.NHS_WHITE, theme.NHS_WHITE)


def _session(value: str | None) -> str | None:
    return value if valid_session_id(value) else None


def session_options(sessions: list[SessionSummary]) -> list[dict[str, str]]:
    options = [{"label": "All sessions", "value": ALL_SESSIONS}]
    for s in sessions:
        options.append(
            {
                "label": f"{s.session_id} ({theme.format_date(s.first_at)}, {s.ratings} rating"
                f"{'s' if s.ratings != 1 else ''})",
                "value": s.session_id,
            }
        )
    return options


@requires(Permission.VIEW_AGGREGATE)
def layout(session: str | None = None, **_query: Any) -> html.Div:
    try:
        sessions = feedback_sessions(app_context().engine)
    except SQLAlchemyError as exc:
        log.error("workshop sessions failed: %s", type(exc).__name__)
        sessions = []
    options = session_options(sessions)
    chosen = _session(session)
    if chosen is not None and chosen not in {o["value"] for o in options}:
        options.append({"label": f"{chosen} (no ratings yet)", "value": chosen})
    return html.Div(
        [
            html.H1("Workshop feedback", className="h3"),
            html.P(
                [
                    "Ratings and comments left in ",
                    dcc.Link("co-design workshops", href="/workshop"),
                    ". Each rating is for one picture (variant) of one view; ratings run from "
                    f"{RATING_MIN} ({RATING_WORDS[RATING_MIN].lower()}) to {RATING_MAX} "
                    f"({RATING_WORDS[RATING_MAX].lower()}).",
                ],
                className="text-secondary",
            ),
            dbc.Row(
                [
                    dbc.Col(
                        [
                            dbc.Label("Session", html_for=SESSION_ID),
                            dbc.Select(id=SESSION_ID, options=options, value=chosen or ALL_SESSIONS),
                        ],
                        md=6,
                    ),
                    dbc.Col(
                        dbc.Button("Export feedback (CSV)", id=EXPORT_ID, color="primary", n_clicks=0),
                        md=6,
                        className="d-flex align-items-end",
                    ),
                ],
                className="g-3 mb-3",
            ),
            html.Div(id=ERROR_ID, role="alert"),
            html.P(id=COUNT_ID, className="dx-count", **{"aria-live": "polite"}),
            html.Section(
                [
                    html.H2("Ratings per picture", className="h5", id="feedback-summary-heading"),
                    dcc.Loading(html.Div(id=TABLE_ID), delay_show=300),
                    dcc.Graph(id=CHART_ID, config=GRAPH_CONFIG, figure=empty_figure("Loading…", 200)),
                ],
                className="mb-4",
                **{"aria-labelledby": "feedback-summary-heading"},
            ),
            html.Section(
                [
                    html.H2("Comments", className="h5", id="feedback-comments-heading"),
                    dcc.Loading(html.Div(id=COMMENTS_ID), delay_show=300),
                ],
                **{"aria-labelledby": "feedback-comments-heading"},
            ),
            dcc.Download(id=DOWNLOAD_ID),
        ]
    )


def format_mean(mean: float | None) -> str:
    return "—" if mean is None else f"{mean:.1f}"


def summary_table(rows: list[VariantSummary]) -> dbc.Table:
    ratings = range(RATING_MIN, RATING_MAX + 1)
    header = html.Thead(
        html.Tr(
            [
                html.Th("View", scope="col"),
                html.Th("Picture", scope="col"),
                html.Th("Ratings (n)", scope="col"),
                html.Th("Mean", scope="col"),
                *[html.Th(f"Rated {r}", scope="col") for r in ratings],
            ]
        )
    )
    body = html.Tbody(
        [
            html.Tr(
                [
                    html.Td(row.view_label),
                    html.Th(row.variant_label, scope="row"),
                    html.Td(str(row.n)),
                    html.Td(format_mean(row.mean)),
                    *[html.Td(str(count)) for count in row.distribution],
                ]
            )
            for row in rows
        ]
    )
    return dbc.Table(
        [html.Caption("Number of ratings, mean rating and how many gave each rating"), header, body],
        striped=True,
        responsive=True,
        className="dx-feedback-table",
    )


def distribution_figure(rows: list[VariantSummary]) -> go.Figure:
    """One stacked bar per picture: how many gave each rating."""
    if not any(row.n for row in rows):
        return empty_figure("No ratings yet.", 200)
    labels = [f"{row.view_label}: {row.variant_label}" for row in rows]
    figure = go.Figure(layout=theme.base_layout(height=90 + 46 * len(rows)))
    for index, rating in enumerate(range(RATING_MIN, RATING_MAX + 1)):
        counts = [row.distribution[index] for row in rows]
        figure.add_trace(
            go.Bar(
                orientation="h",
                x=counts,
                y=labels,
                name=f"{rating} · {RATING_WORDS[rating]}",
                marker={"color": RATING_COLOURS[index], "line": {"color": theme.NHS_WHITE, "width": 1}},
                text=[str(c) if c else "" for c in counts],
                textposition="inside",
                insidetextfont={"color": RATING_TEXT_COLOURS[index]},
                hovertemplate=f"%{{y}}<br>Rated {rating}: %{{x}}<extra></extra>",
            )
        )
    most = max(row.n for row in rows)
    figure.update_layout(barmode="stack", margin={"l": 10, "t": 60}, legend={"traceorder": "normal"})
    figure.update_xaxes(
        title_text="Number of ratings",
        tickformat="d",
        tick0=0,
        dtick=max(1, math.ceil(most / 8)),
        rangemode="tozero",
    )
    figure.update_yaxes(autorange="reversed", automargin=True)
    return figure


def comment_list(comments: list[FeedbackComment]) -> Any:
    if not comments:
        return html.P("No comments yet.", className="text-secondary")
    items = []
    for comment in comments:
        view = workshop_view(comment.view)
        variant = view.variant(comment.variant) if view else None
        where = f"{view.label if view else comment.view} · {variant.label if variant else comment.variant}"
        who = f" · participant {comment.participant_code}" if comment.participant_code else ""
        items.append(
            html.Li(
                [
                    html.P(
                        f"{where} · rated {comment.rating}{who} · {theme.format_date(comment.at)}",
                        className="dx-comment-meta",
                    ),
                    # Free text from participants: a plain string child, which Dash renders as text, never markup.
                    html.P(comment.comment, className="dx-comment-text"),
                ]
            )
        )
    return html.Ul(items, className="dx-comments")


@callback(
    Output(TABLE_ID, "children"),
    Output(CHART_ID, "figure"),
    Output(COMMENTS_ID, "children"),
    Output(COUNT_ID, "children"),
    Output(ERROR_ID, "children"),
    Input(SESSION_ID, "value"),
)
@requires(Permission.VIEW_AGGREGATE)
def show_feedback(session_value: str | None) -> tuple[Any, Any, Any, Any, Any]:
    session_id = _session(session_value)
    engine = app_context().engine
    try:
        rows = feedback_summary(engine, session_id)
        comments = feedback_comments(engine, session_id)
    except SQLAlchemyError as exc:
        log.error("workshop feedback summary failed: %s", type(exc).__name__)
        blank = empty_figure("Not available.", 200)
        return None, blank, None, None, dbc.Alert(LOAD_ERROR, color="danger")
    total = sum(row.n for row in rows)
    scope_text = f"session {session_id}" if session_id else "all sessions"
    count = f"{total:,} rating{'s' if total != 1 else ''} in {scope_text}."
    return summary_table(rows), distribution_figure(rows), comment_list(comments), count, None


@callback(
    Output(DOWNLOAD_ID, "data"),
    Input(EXPORT_ID, "n_clicks"),
    State(SESSION_ID, "value"),
    prevent_initial_call=True,
)
@requires(Permission.VIEW_AGGREGATE)
def export_feedback(n_clicks: int | None, session_value: str | None) -> Any:
    if not n_clicks:
        return dash.no_update
    session_id = _session(session_value)
    try:
        text, rows = feedback_csv(app_context().engine, session_id)
    except SQLAlchemyError as exc:
        log.error("workshop feedback export failed: %s", type(exc).__name__)
        return dash.no_update
    audit(AuditAction.EXPORT, detail=f"workshop feedback CSV ({session_id or 'all sessions'}), {rows} rows")
    filename = f"workshop-feedback-{session_id or 'all-sessions'}.csv"
    return dcc.send_string(text, filename, type="text/csv")
