"""The Structured Medication Review workflow in the dashboard: the review panel of the patient page and the
worklist's "show reviewed and snoozed" switch and review columns.

The states and what the worklist does with them are defined (and explained) once, in
``data_access.queries.reviews``; this module only draws them and records what the user chose.

Why callbacks are registered by a function: Dash keeps callbacks declared at import in one process-wide list that
the first app built takes, but ``create_app`` builds a fresh app for each test and re-imports the pages for it
(``app.pages.import_pages``). The patient page calls ``register_patient_review_callbacks()`` when it is imported,
so each app gets its own copy, exactly as it gets the page's own callbacks.

Every callback declares its permission with ``requires`` and re-checks the patient's practice with
``authorize_patient`` (callbacks can be POSTed directly with any id). Recording a review writes one audit record
(``record_review``) that names the status only: the outcome text is clinical content and stays in the ``review``
table, never in the audit log.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import dash
import dash_bootstrap_components as dbc
from dash import Input, Output, State, callback, dcc, html
from sqlalchemy.exc import SQLAlchemyError

from app.runtime import app_context
from app.security import AuditAction, Permission, audit, authorize_patient, current_user, requires, scope_for
from data_access.queries.reviews import (
    NEXT_DUE_MONTHS,
    OUTCOME_MAX_CHARS,
    REVIEW_STATUSES,
    PatientOutOfScope,
    ReviewError,
    ReviewRecord,
    record_review,
    review_history,
)

log = logging.getLogger(__name__)

REVIEW_PATIENT_ID = "review-patient-id"
REVIEW_STATE_ID = "review-state"
REVIEW_HISTORY_ID = "review-history"
REVIEW_STATUS_ID = "review-status"
REVIEW_DATE_ID = "review-date"
REVIEW_OUTCOME_ID = "review-outcome"
REVIEW_SUBMIT_ID = "review-submit"
REVIEW_MESSAGE_ID = "review-message"
SHOW_REVIEWED_ID = "worklist-show-reviewed"
PLANNER_LINK_ID = "worklist-plan-link"

HISTORY_SHOWN = 5
LOAD_ERROR = "The review record could not be loaded just now. Please try again."
SAVE_ERROR = "The review could not be saved just now. Please try again; nothing was recorded."
DATE_HELP = (
    "Booked: the appointment date (optional). Snoozed: the date the patient comes back to the worklist (required, "
    f"at most 12 months). Reviewed: when the next review is due (leave empty for {NEXT_DUE_MONTHS} months)."
)


# -- patient page --------------------------------------------------------------------------------------------------


def review_panel(patient_id: str) -> html.Div:
    """The patient page's review section: current state and who set it, the form, the recent history.

    Holds only the patient's id (as the patient page does); the state is read by a callback."""
    return html.Div(
        [
            dcc.Store(id=REVIEW_PATIENT_ID, data=patient_id),
            html.Div(id=REVIEW_STATE_ID, className="mb-3", **{"aria-live": "polite"}),
            html.Fieldset(
                [
                    html.Legend("Record what happened", className="dx-legend"),
                    dbc.RadioItems(
                        id=REVIEW_STATUS_ID,
                        options=[{"label": label, "value": key} for key, label in REVIEW_STATUSES.items()],
                        value="reviewed",
                        inline=True,
                        className="mb-2",
                    ),
                    dbc.Row(
                        [
                            dbc.Col(
                                [
                                    dbc.Label("Date", html_for=REVIEW_DATE_ID),
                                    dbc.Input(id=REVIEW_DATE_ID, type="date"),
                                    dbc.FormText(DATE_HELP),
                                ],
                                md=4,
                            ),
                            dbc.Col(
                                [
                                    dbc.Label("Outcome (short)", html_for=REVIEW_OUTCOME_ID),
                                    dbc.Textarea(
                                        id=REVIEW_OUTCOME_ID,
                                        maxLength=OUTCOME_MAX_CHARS,
                                        rows=2,
                                        placeholder="e.g. stopped naproxen, booked eGFR; discussed falls",
                                    ),
                                ],
                                md=8,
                            ),
                        ],
                        className="g-2",
                    ),
                    dbc.Button(
                        "Record review", id=REVIEW_SUBMIT_ID, color="primary", className="mt-2", n_clicks=0
                    ),
                ]
            ),
            html.Div(id=REVIEW_MESSAGE_ID, className="mt-2", role="status"),
            html.H3("Recent review actions", className="h6 mt-3"),
            html.Div(id=REVIEW_HISTORY_ID),
        ],
        className="dx-review",
    )


def state_view(history: list[ReviewRecord]) -> html.Div:
    """The latest state in words, with who set it (so nobody reviews the patient twice)."""
    if not history:
        return html.P(
            "No review has been recorded in DynAIRx for this patient yet.", className="dx-muted mb-0"
        )
    latest = history[0]
    return dbc.Alert(
        [html.Strong("Current status: "), latest.summary(), "."],
        color="success" if latest.status == "reviewed" else "info",
        className="mb-0",
    )


def history_view(history: list[ReviewRecord]) -> Any:
    if not history:
        return html.P("None.", className="dx-muted")
    rows = [
        html.Tr(
            [
                html.Td(record.at.strftime("%d %b %Y %H:%M")),
                html.Td(record.label),
                html.Td(record.reviewer),
                html.Td(record.outcome or "—"),
            ]
        )
        for record in history[:HISTORY_SHOWN]
    ]
    return dbc.Table(
        [
            html.Thead(html.Tr([html.Th("When"), html.Th("Status"), html.Th("By"), html.Th("Outcome")])),
            html.Tbody(rows),
        ],
        size="sm",
        bordered=False,
        striped=True,
        className="mb-0",
    )


def _parse_date(value: Any) -> dt.date | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return dt.date.fromisoformat(value[:10])
    except ValueError:
        return None


def _history(patient_id: str) -> list[ReviewRecord]:
    return review_history(app_context().engine, scope_for(current_user()), patient_id)


def register_patient_review_callbacks() -> None:
    """Register the review panel's callbacks for the app being built (see the module docstring for why)."""

    @callback(
        Output(REVIEW_STATE_ID, "children"),
        Output(REVIEW_HISTORY_ID, "children"),
        Input(REVIEW_PATIENT_ID, "data"),
    )
    @requires(Permission.VIEW_PATIENT)
    def load_review_state(patient_id: str | None) -> tuple[Any, Any]:
        if not patient_id:
            return None, None
        authorize_patient(patient_id)
        try:
            history = _history(patient_id)
        except SQLAlchemyError as exc:
            log.error("review history failed: %s", type(exc).__name__)
            return dbc.Alert(LOAD_ERROR, color="danger"), None
        return state_view(history), history_view(history)

    @callback(
        Output(REVIEW_MESSAGE_ID, "children"),
        Output(REVIEW_STATE_ID, "children", allow_duplicate=True),
        Output(REVIEW_HISTORY_ID, "children", allow_duplicate=True),
        Output(REVIEW_OUTCOME_ID, "value"),
        Input(REVIEW_SUBMIT_ID, "n_clicks"),
        State(REVIEW_PATIENT_ID, "data"),
        State(REVIEW_STATUS_ID, "value"),
        State(REVIEW_DATE_ID, "value"),
        State(REVIEW_OUTCOME_ID, "value"),
        prevent_initial_call=True,
    )
    @requires(Permission.RECORD_REVIEW)
    def save_review(
        n_clicks: int | None,
        patient_id: str | None,
        status: str | None,
        on_date: str | None,
        outcome: str | None,
    ) -> tuple[Any, Any, Any, Any]:
        keep = dash.no_update
        if not n_clicks or not patient_id:
            return keep, keep, keep, keep
        authorize_patient(patient_id)
        user = current_user()
        try:
            record = record_review(
                app_context().engine,
                scope_for(user),
                patient_id,
                status=str(status or ""),
                reviewer=user.username if user else "",
                outcome=outcome if isinstance(outcome, str) else None,
                on_date=_parse_date(on_date),
            )
        except ReviewError as exc:
            return dbc.Alert(str(exc), color="warning"), keep, keep, keep
        except PatientOutOfScope:
            return dbc.Alert("This patient is not in your practices.", color="warning"), keep, keep, keep
        except SQLAlchemyError as exc:
            log.error("recording a review failed: %s", type(exc).__name__)
            return dbc.Alert(SAVE_ERROR, color="danger"), keep, keep, keep
        audit(AuditAction.RECORD_REVIEW, patient_id=patient_id, detail=f"status {record.status}")
        history = _history(patient_id)
        message = dbc.Alert(f"Recorded: {record.summary()}.", color="success")
        return message, state_view(history), history_view(history), ""


# -- worklist -------------------------------------------------------------------------------------------------------


def show_reviewed_switch(value: bool) -> dbc.Switch:
    """The worklist's toggle: reviewed (not yet due) and snoozed patients are hidden unless it is on."""
    return dbc.Switch(id=SHOW_REVIEWED_ID, label="Show reviewed and snoozed patients", value=bool(value))


def review_column_defs() -> list[dict[str, Any]]:
    """The worklist grid's review columns (filled by ``data_access.queries.reviews.review_cells``)."""
    return [
        {
            "field": "next_due",
            "headerName": "Next SMR due",
            "headerTooltip": f"{NEXT_DUE_MONTHS} months after the last completed review, unless the reviewer set "
            "another date; a booking's appointment; the end of a snooze",
            "sortable": False,
            "width": 175,
            "tooltipField": "next_due",
        },
        {
            "field": "review_status",
            "headerName": "Review status",
            "headerTooltip": "The latest action recorded in DynAIRx, and who recorded it",
            "sortable": False,
            "width": 280,
            "tooltipField": "review_status",
        },
    ]


def planner_link() -> html.A:
    """A link from the worklist to the capacity planner (``/plan``)."""
    return html.A(
        "Plan this month's SMR slots",
        href="/plan",
        id=PLANNER_LINK_ID,
        className="btn btn-outline-primary btn-sm ms-2",
    )
