"""/admin/audit: search the audit trail and download it as CSV (administrators only).

Searching the trail is itself recorded, because the trail says who looked at which patient. The table shows at
most 200 newest matches; the CSV export (a Flask route, streamed) holds every match.
"""

from __future__ import annotations

import dash
from dash import Input, Output, State, callback, dcc, html

from app.security import AuditAction, Permission, audit, requires
from app.security.audit_search import (
    ACTIONS,
    BadAuditFilter,
    describe_filter,
    export_query,
    parse_audit_filter,
)
from app.security.state import security_state
from app.security.views import AUDIT_EXPORT_PATH
from data_access.queries.audit import AuditRecord, count_audit, search_audit

dash.register_page(__name__, path="/admin/audit", title="Audit trail - DynAIRx", name="Audit trail")

USERNAME_INPUT = "audit-username"
ACTION_INPUT = "audit-action"
PATIENT_INPUT = "audit-patient-id"
OUTCOME_INPUT = "audit-outcome"
SINCE_INPUT = "audit-since"
UNTIL_INPUT = "audit-until"
SEARCH_BUTTON = "audit-search"
RESULTS = "audit-results"
SUMMARY = "audit-summary"
EXPORT_LINK = "audit-export"
SHOWN_ROWS = 200
COLUMNS = (
    ("at", "Time (UTC)"),
    ("username", "User"),
    ("role", "Role"),
    ("action", "Action"),
    ("patient_id", "Patient"),
    ("outcome", "Outcome"),
    ("detail", "Detail"),
)


def _field(label: str, control: object, control_id: str) -> html.Div:
    return html.Div(
        [html.Label(label, htmlFor=control_id, className="form-label"), control], className="col-md-2"
    )


def _filters() -> html.Form:
    return html.Form(
        [
            _field(
                "User",
                dcc.Input(id=USERNAME_INPUT, type="text", className="form-control", debounce=True),
                USERNAME_INPUT,
            ),
            _field(
                "Action",
                dcc.Dropdown(
                    id=ACTION_INPUT, options=[{"label": a, "value": a} for a in ACTIONS], clearable=True
                ),
                ACTION_INPUT,
            ),
            _field(
                "Patient id",
                dcc.Input(id=PATIENT_INPUT, type="text", className="form-control", debounce=True),
                PATIENT_INPUT,
            ),
            _field(
                "Outcome",
                dcc.Dropdown(id=OUTCOME_INPUT, options=["allowed", "denied"], clearable=True),
                OUTCOME_INPUT,
            ),
            _field("From", dcc.Input(id=SINCE_INPUT, type="date", className="form-control"), SINCE_INPUT),
            _field("To", dcc.Input(id=UNTIL_INPUT, type="date", className="form-control"), UNTIL_INPUT),
            html.Div(
                [
                    html.Button(
                        "Search", id=SEARCH_BUTTON, n_clicks=0, type="button", className="btn btn-primary"
                    ),
                    html.A(
                        "Download CSV",
                        id=EXPORT_LINK,
                        href=AUDIT_EXPORT_PATH,
                        className="btn btn-secondary ms-2",
                    ),
                ],
                className="col-12 mt-3",
            ),
        ],
        className="row g-2",
        role="search",
        **{"aria-label": "Search the audit trail"},
    )


@requires(Permission.VIEW_AUDIT)
def layout(**_query: str) -> html.Main:
    return html.Main(
        [
            html.H1("Audit trail"),
            html.P(
                "Every patient record view, export, what-if and refused attempt, newest first. "
                "This search is itself recorded."
            ),
            _filters(),
            html.P(id=SUMMARY, role="status", className="mt-3"),
            html.Div(id=RESULTS, className="table-responsive"),
        ],
        className="container-fluid py-3",
    )


def results_table(records: list[AuditRecord]) -> html.Table:
    header = html.Thead(html.Tr([html.Th(title, scope="col") for _, title in COLUMNS]))
    rows = [
        html.Tr(
            [
                html.Td(
                    record.at.isoformat(sep=" ", timespec="seconds")
                    if key == "at"
                    else getattr(record, key) or ""
                )
                for key, _ in COLUMNS
            ]
        )
        for record in records
    ]
    return html.Table(
        [html.Caption("Matching audit records"), header, html.Tbody(rows)],
        className="table table-sm table-striped",
    )


@callback(
    Output(RESULTS, "children"),
    Output(SUMMARY, "children"),
    Output(EXPORT_LINK, "href"),
    Input(SEARCH_BUTTON, "n_clicks"),
    State(USERNAME_INPUT, "value"),
    State(ACTION_INPUT, "value"),
    State(PATIENT_INPUT, "value"),
    State(OUTCOME_INPUT, "value"),
    State(SINCE_INPUT, "value"),
    State(UNTIL_INPUT, "value"),
)
@requires(Permission.VIEW_AUDIT)
def search(
    _clicks: int | None,
    username: str | None,
    action: str | None,
    patient_id: str | None,
    outcome: str | None,
    since: str | None,
    until: str | None,
) -> tuple[object, str, str]:
    params = {
        "username": username,
        "action": action,
        "patient_id": patient_id,
        "outcome": outcome,
        "since": since,
        "until": until,
    }
    try:
        criteria = parse_audit_filter(params)
    except BadAuditFilter as error:
        return dash.no_update, f"Search not run: {error}.", dash.no_update
    audit(AuditAction.SEARCH_AUDIT, detail=describe_filter(criteria))
    engine = security_state().engine
    records = search_audit(engine, criteria, limit=SHOWN_ROWS)
    total = count_audit(engine, criteria)
    summary = f"{total} matching records" + (
        f"; showing the newest {SHOWN_ROWS}." if total > SHOWN_ROWS else "."
    )
    query = export_query(params)
    return results_table(records), summary, AUDIT_EXPORT_PATH + (f"?{query}" if query else "")
