"""Capacity-aware SMR planning at ``/plan`` (GPs, pharmacists): given this month's review slots at a practice,
which patients to offer them to, and how that choice spreads across age, sex, deprivation and ethnicity compared
with the practice's eligible population.

Who is eligible, who is left out and the order are defined (and explained) once, in
``data_access.queries.capacity``; the page shows the same words. The plan is computed on request (one practice's
patients), within the user's practices.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import dash
import dash_bootstrap_components as dbc
import plotly.graph_objects as go
from dash import Input, Output, State, callback, dcc, html
from sqlalchemy.exc import SQLAlchemyError

from app import theme
from app.components.analysis import GRAPH_CONFIG, data_cut, uk_date
from app.components.analysis_figures import message_figure
from app.runtime import app_context
from app.security import Permission, current_user, requires, scope_for
from data_access.queries.capacity import (
    MAX_SLOTS,
    CapacityPlan,
    EquityRow,
    largest_gaps,
    plan_reviews,
)
from data_access.queries.combinations import practice_choices

dash.register_page(__name__, path="/plan", title="Plan SMRs · DynAIRx", name="Plan SMRs", order=5)

log = logging.getLogger(__name__)

PRACTICE_ID = "plan-practice"
SLOTS_ID = "plan-slots"
RUN_ID = "plan-run"
SUMMARY_ID = "plan-summary"
PROPOSAL_ID = "plan-proposal"
EQUITY_ID = "plan-equity"
EQUITY_GRAPH_ID = "plan-equity-graph"
ERROR_ID = "plan-error"

DEFAULT_SLOTS = 20
LOAD_ERROR = "The plan could not be computed just now. Please try again; if it keeps happening, tell your administrator."


def _method() -> html.Details:
    return html.Details(
        [
            html.Summary("Who is proposed, and in what order"),
            html.Ul(
                [
                    html.Li(
                        "Eligible: patients in a DynAIRx cohort (mental and physical health conditions; 4 or more "
                        "long-term conditions with 10 or more medicines; moderate or severe frailty), or on 10 or "
                        "more medicines, or with an active high-severity safety flag: an approximation from coded "
                        "data of NHS England's SMR priority groups."
                    ),
                    html.Li(
                        "Left out: a completed SMR not yet due again (recorded in DynAIRx, or a medication review in "
                        "the record in the 12 months before the data cut), a snooze that has not ended, and a review "
                        "already booked. Declining does not exclude a patient."
                    ),
                    html.Li(
                        "Order: highest 12-month risk of any outcome first, in 5-point bands; within a band, more "
                        "high-severity flags, then more moderate flags (the most actionable); then the exact risk."
                    ),
                    html.Li(
                        "Fairness check: each group's share of the proposal beside its share of the practice's "
                        "eligible population. Older and frailer patients are expected to be over-represented, "
                        "because risk rises with age; a large gap in sex, deprivation or ethnicity deserves a look."
                    ),
                ]
            ),
        ],
        className="mb-3",
    )


@requires(Permission.VIEW_WORKLIST)
def layout(**_query: Any) -> html.Div:
    user = current_user()
    practices: list[tuple[str, str]] = []
    cut_text = ""
    if user is not None:
        try:
            context = app_context()
            scope = scope_for(user)
            practices = context.cached(
                ("combination-practices", scope.cache_key()), lambda: practice_choices(context.engine, scope)
            )
            cut_text = uk_date(data_cut())
        except SQLAlchemyError as exc:
            log.error("planner choices failed: %s", type(exc).__name__)
    return html.Div(
        [
            html.Nav(
                html.A("← Back to the worklist", href="/"), className="mb-2", **{"aria-label": "Breadcrumb"}
            ),
            html.H1("Plan this month's SMRs", className="h3"),
            html.P(
                "Enter how many Structured Medication Review slots the practice has this month; DynAIRx proposes "
                f"whom to offer them to. Clinical data are as at the data cut ({cut_text}); reviews recorded in "
                "DynAIRx count from the day they were recorded.",
                className="text-secondary",
            ),
            _method(),
            dbc.Card(
                dbc.CardBody(
                    dbc.Row(
                        [
                            dbc.Col(
                                [
                                    dbc.Label("Practice", html_for=PRACTICE_ID, className="dx-legend"),
                                    dbc.Select(
                                        id=PRACTICE_ID,
                                        value=practices[0][0] if practices else None,
                                        options=[{"label": name, "value": pid} for pid, name in practices],
                                    ),
                                ],
                                md=5,
                            ),
                            dbc.Col(
                                [
                                    dbc.Label(
                                        "SMR slots this month", html_for=SLOTS_ID, className="dx-legend"
                                    ),
                                    dbc.Input(
                                        id=SLOTS_ID,
                                        type="number",
                                        min=1,
                                        max=MAX_SLOTS,
                                        step=1,
                                        value=DEFAULT_SLOTS,
                                    ),
                                ],
                                md=3,
                            ),
                            dbc.Col(
                                dbc.Button(
                                    "Propose patients",
                                    id=RUN_ID,
                                    color="primary",
                                    n_clicks=0,
                                    className="mt-4",
                                ),
                                md=4,
                            ),
                        ],
                        className="g-3",
                    )
                ),
                className="dx-filters mb-3",
            ),
            html.Div(id=ERROR_ID, role="alert"),
            html.P(id=SUMMARY_ID, className="dx-count", **{"aria-live": "polite"}),
            dcc.Loading(html.Div(id=PROPOSAL_ID), type="default", delay_show=300),
            html.Section(
                dbc.Card(
                    dbc.CardBody(
                        [
                            html.H2(
                                "Does the proposal reflect the eligible population?",
                                className="h5",
                                id="equity-heading",
                            ),
                            dcc.Graph(
                                id=EQUITY_GRAPH_ID,
                                config=GRAPH_CONFIG,
                                figure=message_figure("Propose patients to see the comparison.", 300),
                            ),
                            html.Div(id=EQUITY_ID),
                        ]
                    )
                ),
                className="mb-3 mt-3",
                **{"aria-labelledby": "equity-heading"},
            ),
        ]
    )


def slots_from_input(value: Any) -> int | None:
    try:
        slots = int(value)
    except (TypeError, ValueError):
        return None
    return slots if 1 <= slots <= MAX_SLOTS else None


def summary_text(plan: CapacityPlan) -> str:
    proposed = len(plan.proposed)
    return (
        f"{plan.eligible:,} eligible patients; {plan.excluded.get('reviewed_in_record', 0):,} had a medication review "
        f"in the record within 12 months and {plan.excluded.get('workflow', 0):,} are reviewed, snoozed or booked in "
        f"DynAIRx, leaving {plan.to_review:,} to review. Proposed for {plan.slots:,} slots: {proposed:,}."
    )


def proposal_table(plan: CapacityPlan) -> Any:
    if not plan.proposed:
        return html.P("Nobody is left to propose this month.", className="dx-muted")
    rows = []
    for item in plan.proposed:
        risk = (
            f"{item['max_risk']:.1f}% ({theme.OUTCOME_LABELS.get(item['max_outcome'], '')})"
            if item["max_risk"] is not None
            else "—"
        )
        flags = " · ".join(
            f"{n} {word}"
            for n, word in ((item["flags_high"], "high"), (item["flags_moderate"], "moderate"))
            if n
        )
        rows.append(
            html.Tr(
                [
                    html.Td(item["rank"], className="text-end"),
                    html.Td(
                        html.A(
                            item["patient_id"],
                            href=f"/patient/{item['patient_id']}",
                            className="dx-patient-link",
                        )
                    ),
                    html.Td(item["age"], className="text-end"),
                    html.Td(item["sex"]),
                    html.Td(risk),
                    html.Td(flags or "None"),
                    html.Td(item["medicines_count"], className="text-end"),
                    html.Td(item["last_review"]),
                    html.Td(item["why"], className="small"),
                ]
            )
        )
    head = html.Thead(
        html.Tr(
            [
                html.Th("#", scope="col", className="text-end"),
                html.Th("Patient", scope="col"),
                html.Th("Age", scope="col", className="text-end"),
                html.Th("Sex", scope="col"),
                html.Th("Highest 12-month risk", scope="col"),
                html.Th("Active flags", scope="col"),
                html.Th("Medicines", scope="col", className="text-end"),
                html.Th("Last review", scope="col"),
                html.Th("Why", scope="col"),
            ]
        )
    )
    return dbc.Table([head, html.Tbody(rows)], size="sm", striped=True, responsive=True, id="plan-table")


def equity_table(rows: list[EquityRow]) -> Any:
    body = [
        html.Tr(
            [
                html.Td(row.dimension),
                html.Th(row.group, scope="row"),
                html.Td(f"{row.eligible:,} ({row.eligible_percent:.1f}%)", className="text-end"),
                html.Td(f"{row.proposed:,} ({row.proposed_percent:.1f}%)", className="text-end"),
                html.Td(f"{row.difference_points:+.1f}", className="text-end"),
            ]
        )
        for row in rows
    ]
    head = html.Thead(
        html.Tr(
            [
                html.Th("Grouped by", scope="col"),
                html.Th("Group", scope="col"),
                html.Th("Eligible population", scope="col", className="text-end"),
                html.Th("Proposed", scope="col", className="text-end"),
                html.Th("Difference (points)", scope="col", className="text-end"),
            ]
        )
    )
    return dbc.Table([head, html.Tbody(body)], size="sm", striped=True, responsive=True, id="equity-table")


def equity_figure(rows: list[EquityRow]) -> go.Figure:
    """Share of the eligible population and of the proposal per group, side by side, one panel row per dimension."""
    if not rows:
        return message_figure("Nobody eligible at this practice.", 300)
    labels = [f"{r.dimension}: {r.group}" for r in rows]
    figure = go.Figure(layout=theme.base_layout(height=max(320, 22 * len(rows) + 120)))
    figure.add_trace(
        go.Bar(
            y=labels,
            x=[r.eligible_percent for r in rows],
            orientation="h",
            name="Eligible population",
            marker={"color": theme.NHS_MID_GREY},
            hovertemplate="%{y}: %{x:.1f}% of the eligible population<extra></extra>",
        )
    )
    figure.add_trace(
        go.Bar(
            y=labels,
            x=[r.proposed_percent for r in rows],
            orientation="h",
            name="Proposed",
            marker={"color": theme.NHS_BLUE},
            hovertemplate="%{y}: %{x:.1f}% of the proposal<extra></extra>",
        )
    )
    figure.update_xaxes(tickformat="", ticksuffix="%", title={"text": "Share of the group"})
    figure.update_yaxes(autorange="reversed", automargin=True)
    figure.update_layout(barmode="group", margin={"l": 10, "r": 10, "t": 40, "b": 40})
    return figure


@callback(
    Output(SUMMARY_ID, "children"),
    Output(PROPOSAL_ID, "children"),
    Output(EQUITY_GRAPH_ID, "figure"),
    Output(EQUITY_ID, "children"),
    Output(ERROR_ID, "children"),
    Input(RUN_ID, "n_clicks"),
    State(PRACTICE_ID, "value"),
    State(SLOTS_ID, "value"),
    prevent_initial_call=True,
)
@requires(Permission.VIEW_WORKLIST)
def propose(n_clicks: Any, practice_id: Any, slots_value: Any) -> tuple[Any, ...]:
    keep = dash.no_update
    if not n_clicks:
        return keep, keep, keep, keep, keep
    slots = slots_from_input(slots_value)
    if slots is None:
        return (
            keep,
            keep,
            keep,
            keep,
            dbc.Alert(f"Enter a number of slots from 1 to {MAX_SLOTS}.", color="warning"),
        )
    user = current_user()
    scope = scope_for(user)
    if not isinstance(practice_id, str) or (
        scope.practice_ids is not None and practice_id not in scope.practice_ids
    ):
        return keep, keep, keep, keep, dbc.Alert("Choose one of your practices.", color="warning")
    try:
        plan = plan_reviews(
            app_context().engine, scope, practice_id, slots, cut=data_cut(), today=dt.date.today()
        )
    except SQLAlchemyError as exc:
        log.error("capacity plan failed: %s", type(exc).__name__)
        return keep, keep, keep, keep, dbc.Alert(LOAD_ERROR, color="danger")
    gaps = [g for g in largest_gaps(plan.equity) if abs(g.difference_points) >= 10]
    notes = (
        html.P(
            "Largest differences: "
            + "; ".join(f"{g.dimension.lower()} {g.group} {g.difference_points:+.0f} points" for g in gaps)
            + ".",
            className="small",
        )
        if gaps
        else html.P(
            "No group's share of the proposal differs from its share of the eligible population by 10 points or more.",
            className="small",
        )
    )
    return (
        summary_text(plan),
        proposal_table(plan),
        equity_figure(plan.equity),
        [notes, equity_table(plan.equity)],
        None,
    )
