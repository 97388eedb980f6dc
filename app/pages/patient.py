"""Patient at ``/patient/<patient_id>``: one screen a GP can read in a minute.

The layout holds only the patient's id (in ``patient-id``); one callback reads the whole record with
``data_access.queries.patient.patient_record`` and fills every panel and figure. The page view is audited once by
``requires(..., patient_arg=...)`` on the layout; every callback re-checks the permission and the patient's scope,
because callbacks can be POSTed directly with any id.
"""

from __future__ import annotations

import logging
from typing import Any

import dash
import dash_bootstrap_components as dbc
from dash import ClientsideFunction, Input, Output, State, callback, clientside_callback, ctx, dcc, html
from sqlalchemy.exc import SQLAlchemyError

from app.components.figures import (
    empty_figure,
    interaction_timeline_figure,
    risk_trajectory_figure,
    what_if_figure,
)
from app.components.patient_panels import (
    current_risk_panel,
    drivers_panel,
    flags_panel,
    header_panel,
    notes_panel,
    scores_panel,
)
from app.components.review import register_patient_review_callbacks, review_panel
from app.components.smr_pack import clinician_pack_html, pack_components, patient_sheet_html, smr_pack
from app.model_client import ModelUnavailable, Scenario, run_what_if
from app.runtime import app_context
from app.security import AuditAction, Permission, audit, authorize_patient, current_user, requires, scope_for
from data_access.queries.patient import PatientNotFound, patient_record

dash.register_page(
    __name__, path_template="/patient/<patient_id>", title="Patient · DynAIRx", name="Patient", order=1
)
register_patient_review_callbacks()  # the review panel's callbacks (app/components/review.py)

log = logging.getLogger(__name__)

PATIENT_STORE_ID = "patient-id"
HEADER_ID = "patient-header"
SCORES_ID = "patient-scores"
RISKS_ID = "patient-current-risks"
TRAJECTORY_ID = "patient-trajectory"
TIMELINE_ID = "patient-timeline"
FLAGS_ID = "patient-flags"
DRIVERS_ID = "patient-drivers"
NOTES_ID = "patient-data-notes"
PACK_ID = "patient-smr-pack"
ERROR_ID = "patient-error"
WHATIF_STOP_ID = "what-if-stop"
WHATIF_SWITCH_FROM_ID = "what-if-switch-from"
WHATIF_SWITCH_TO_ID = "what-if-switch-to"
WHATIF_FROM_DATE_ID = "what-if-from-date"
WHATIF_RUN_ID = "what-if-run"
WHATIF_GRAPH_ID = "what-if-graph"
WHATIF_MESSAGE_ID = "what-if-message"
PACK_PRINT_ID = "smr-pack-print"
PACK_PRINTED_ID = "smr-pack-printed"
PACK_DOWNLOAD_ID = "smr-pack-download"
SHEET_DOWNLOAD_ID = "patient-sheet-download"
DOWNLOAD_ID = "patient-download"

NOT_FOUND = "This patient was not found in your practices."
LOAD_ERROR = "This record could not be loaded just now. Please try again; if it keeps happening, tell your administrator."
# No "share to cloud": patient data must never leave the server (plotly 7 adds that button by default).
GRAPH_CONFIG = {
    "displaylogo": False,
    "responsive": True,
    "modeBarButtonsToRemove": ["select2d", "lasso2d", "sendChartToCloud"],
}
NONE = "*"  # the "no switch" choice of the what-if selects
WHAT_IF_PROMPT = "Choose medicines to stop or switch, then press 'Run what-if'."


def _section(title: str, body: Any, section_id: str | None = None, className: str = "") -> html.Section:
    heading_id = f"{section_id}-heading" if section_id else None
    children = body if isinstance(body, list) else [body]  # Dash children must be a flat list
    return html.Section(
        dbc.Card(dbc.CardBody([html.H2(title, className="h5", id=heading_id), *children])),
        className=f"mb-3 {className}".strip(),
        **({"aria-labelledby": heading_id} if heading_id else {}),
    )


def _loading(child: Any) -> dcc.Loading:
    return dcc.Loading(child, type="default", delay_show=300)


@requires(Permission.VIEW_PATIENT, patient_arg="patient_id")
def layout(patient_id: str | None = None, **_query: Any) -> html.Div:
    if not patient_id:
        return html.Div(html.P("No patient selected.", className="dx-notice"))
    return html.Div(
        [
            dcc.Store(id=PATIENT_STORE_ID, data=patient_id),
            html.Nav(
                html.A("← Back to the worklist", href="/"),
                className="mb-2 dx-no-print",
                **{"aria-label": "Breadcrumb"},
            ),
            html.Div(id=ERROR_ID, role="alert"),
            _loading(html.Div(id=HEADER_ID, children=html.H1(f"Patient {patient_id}", className="h3"))),
            _loading(html.Div(id=SCORES_ID, className="my-3")),
            dbc.Row(
                [
                    dbc.Col(
                        [
                            _section("Current 12-month risk", _loading(html.Div(id=RISKS_ID)), "risk-now"),
                            _section(
                                "Risk trajectory",
                                _loading(
                                    dcc.Graph(
                                        id=TRAJECTORY_ID, config=GRAPH_CONFIG, figure=empty_figure("Loading…")
                                    )
                                ),
                                "risk-trajectory",
                            ),
                        ],
                        xl=8,
                    ),
                    dbc.Col(
                        [
                            _section("Current safety flags", _loading(html.Div(id=FLAGS_ID)), "flags"),
                            _section("Top risk drivers", _loading(html.Div(id=DRIVERS_ID)), "drivers"),
                            _section(
                                "What the model could not see", _loading(html.Div(id=NOTES_ID)), "data-notes"
                            ),
                        ],
                        xl=4,
                    ),
                ]
            ),
            _section("Structured medication review", review_panel(patient_id), "smr-review"),
            _section(
                "Polypharmacy interaction timeline",
                [
                    html.P(
                        "Each bar is a prescription period, grouped by BNF chapter (hatched: not on repeat). Shaded "
                        "bands mark when a safety flag held across the medicines involved; hover a flag in the top lane "
                        "for its rule, source and recommendation. Events, conditions and tests share the time axis.",
                        className="small text-secondary",
                    ),
                    _loading(dcc.Graph(id=TIMELINE_ID, config=GRAPH_CONFIG, figure=empty_figure("Loading…"))),
                ],
                "timeline",
            ),
            _section("What if?", _what_if_controls(), "what-if"),
            _section(
                "SMR pre-visit pack",
                [
                    html.Div(
                        [
                            dbc.Button(
                                "Print the pack",
                                id=PACK_PRINT_ID,
                                color="primary",
                                className="me-2",
                                n_clicks=0,
                            ),
                            dbc.Button(
                                "Download pack (HTML)",
                                id=PACK_DOWNLOAD_ID,
                                color="secondary",
                                outline=True,
                                className="me-2",
                                n_clicks=0,
                            ),
                            dbc.Button(
                                "Download patient version (HTML)",
                                id=SHEET_DOWNLOAD_ID,
                                color="secondary",
                                outline=True,
                                n_clicks=0,
                            ),
                        ],
                        className="mb-3 dx-no-print",
                    ),
                    _loading(html.Div(id=PACK_ID)),
                    dcc.Store(id=PACK_PRINTED_ID),
                    dcc.Download(id=DOWNLOAD_ID),
                ],
                "smr-pack",
            ),
        ]
    )


def _what_if_controls() -> html.Div:
    return html.Div(
        [
            html.P(
                "Choose medicines to stop, or one to switch, and see the model's forward 12-month risk beside the "
                "current one. This shows an association learned from data, not the effect of a change and not advice.",
                className="dx-association small",
            ),
            dbc.Row(
                [
                    dbc.Col(
                        [
                            html.Fieldset(
                                [
                                    html.Legend("Stop", className="form-label fs-6 mb-1"),
                                    # Checkboxes rather than a multi-select: every medicine is visible at once and
                                    # keyboard and screen-reader use need nothing special.
                                    dbc.Checklist(
                                        id=WHATIF_STOP_ID, options=[], value=[], className="dx-stop-list"
                                    ),
                                ]
                            ),
                        ],
                        md=4,
                    ),
                    dbc.Col(
                        [
                            dbc.Label("Switch from", html_for=WHATIF_SWITCH_FROM_ID),
                            dbc.Select(
                                id=WHATIF_SWITCH_FROM_ID,
                                options=[{"label": "No switch", "value": NONE}],
                                value=NONE,
                            ),
                        ],
                        md=3,
                    ),
                    dbc.Col(
                        [
                            dbc.Label("Switch to", html_for=WHATIF_SWITCH_TO_ID),
                            dbc.Select(
                                id=WHATIF_SWITCH_TO_ID,
                                options=[{"label": "Choose a medicine", "value": NONE}],
                                value=NONE,
                            ),
                        ],
                        md=3,
                    ),
                    dbc.Col(
                        [
                            dbc.Label("From", html_for=WHATIF_FROM_DATE_ID),
                            dbc.Input(id=WHATIF_FROM_DATE_ID, type="date"),
                        ],
                        md=2,
                    ),
                ],
                className="g-2",
            ),
            dbc.Button("Run what-if", id=WHATIF_RUN_ID, color="primary", className="mt-2", n_clicks=0),
            html.Div(id=WHATIF_MESSAGE_ID, className="mt-2", **{"aria-live": "polite"}),
            _loading(
                dcc.Graph(id=WHATIF_GRAPH_ID, config=GRAPH_CONFIG, figure=empty_figure(WHAT_IF_PROMPT, 200))
            ),
        ]
    )


def _load(patient_id: str):  # noqa: ANN202 - PatientRecordView
    authorize_patient(patient_id)
    return patient_record(app_context().engine, scope_for(current_user()), patient_id)


@callback(
    Output(HEADER_ID, "children"),
    Output(SCORES_ID, "children"),
    Output(RISKS_ID, "children"),
    Output(TRAJECTORY_ID, "figure"),
    Output(FLAGS_ID, "children"),
    Output(DRIVERS_ID, "children"),
    Output(NOTES_ID, "children"),
    Output(TIMELINE_ID, "figure"),
    Output(PACK_ID, "children"),
    Output(WHATIF_STOP_ID, "options"),
    Output(WHATIF_SWITCH_FROM_ID, "options"),
    Output(WHATIF_SWITCH_TO_ID, "options"),
    Output(WHATIF_FROM_DATE_ID, "value"),
    Output(ERROR_ID, "children"),
    Input(PATIENT_STORE_ID, "data"),
)
@requires(Permission.VIEW_PATIENT)
def load_patient(patient_id: str | None) -> tuple:
    blank = empty_figure("Not available.")
    nothing = (dash.no_update,) * 8
    if not patient_id:
        return (dash.no_update, *nothing, [], [], [], None, None)
    try:
        view = _load(patient_id)
    except PatientNotFound:
        return (
            html.H1("Patient not found", className="h3"),
            None,
            None,
            blank,
            None,
            None,
            None,
            blank,
            None,
            [],
            [],
            [],
            None,
            dbc.Alert(NOT_FOUND, color="warning"),
        )
    except SQLAlchemyError as exc:
        log.error("patient record failed: %s", type(exc).__name__)
        return (
            dash.no_update,
            None,
            None,
            blank,
            None,
            None,
            None,
            blank,
            None,
            [],
            [],
            [],
            None,
            dbc.Alert(LOAD_ERROR, color="danger"),
        )
    active_drugs = sorted({d for m in view.active_medications for d in m.ingredients})
    drug_options = [{"label": d, "value": d} for d in active_drugs]
    return (
        header_panel(view),
        scores_panel(view),
        current_risk_panel(view),
        risk_trajectory_figure(view.trajectory, view.medications, view.events, view.as_of),
        flags_panel(view.flags),
        drivers_panel(view.drivers),
        notes_panel(view.data_notes),
        interaction_timeline_figure(view),
        pack_components(smr_pack(view)),
        drug_options,
        [{"label": "No switch", "value": NONE}, *drug_options],
        [{"label": "Choose a medicine", "value": NONE}]
        + [{"label": d, "value": d} for d in switch_targets()],
        view.as_of.isoformat(),
        None,
    )


def switch_targets() -> list[str]:
    """Every medicine the vocabularies know (what a switch may go to); cached per app."""
    context = app_context()

    def known_drugs() -> list[str]:
        try:
            from clinical.knowledge import load_knowledge

            return sorted(load_knowledge().drug_keys)
        except Exception as exc:  # noqa: BLE001 - without vocabularies the what-if still offers 'stop'
            log.error("drug vocabulary unavailable: %s", type(exc).__name__)
            return []

    return context.cached(("switch-targets",), known_drugs, seconds=3600)


@callback(
    Output(WHATIF_GRAPH_ID, "figure"),
    Output(WHATIF_MESSAGE_ID, "children"),
    Input(WHATIF_RUN_ID, "n_clicks"),
    State(PATIENT_STORE_ID, "data"),
    State(WHATIF_STOP_ID, "value"),
    State(WHATIF_SWITCH_FROM_ID, "value"),
    State(WHATIF_SWITCH_TO_ID, "value"),
    State(WHATIF_FROM_DATE_ID, "value"),
    prevent_initial_call=True,
)
@requires(Permission.RUN_WHAT_IF)
def what_if(
    n_clicks: int | None,
    patient_id: str | None,
    stop: list[str] | None,
    switch_from: str | None,
    switch_to: str | None,
    from_date: str | None,
) -> tuple[Any, Any]:
    if not n_clicks or not patient_id:
        return dash.no_update, dash.no_update
    authorize_patient(patient_id)
    scenario = Scenario.from_controls(stop, switch_from, switch_to, from_date, none_value=NONE)
    if scenario.is_empty():
        return empty_figure(WHAT_IF_PROMPT, 200), dbc.Alert(
            "Choose at least one medicine to stop or switch.", color="info"
        )
    context = app_context()
    audit(AuditAction.WHAT_IF, patient_id=patient_id, detail=scenario.describe())
    result = run_what_if(context.engine, context.settings, patient_id, scenario)
    if isinstance(result, ModelUnavailable):
        return empty_figure(result.message, 200), dbc.Alert(result.message, color="info")
    figure = what_if_figure(result.current, result.scenario, scenario.describe(), result.model_version)
    message = html.P(
        [
            html.Strong("Association, not advice. "),
            f"Scenario: {scenario.describe()}. The model estimates how risk differed in people like this patient; it "
            "cannot say what would happen if the change were made.",
            *([html.Br(), " ".join(result.notes)] if result.notes else []),
        ],
        className="dx-association small mb-0",
    )
    return figure, message


clientside_callback(
    ClientsideFunction(namespace="dynairx", function_name="printPack"),
    Output(PACK_PRINTED_ID, "data"),
    Input(PACK_PRINT_ID, "n_clicks"),
    prevent_initial_call=True,
)


@callback(
    Output(DOWNLOAD_ID, "data"),
    Input(PACK_DOWNLOAD_ID, "n_clicks"),
    Input(SHEET_DOWNLOAD_ID, "n_clicks"),
    State(PATIENT_STORE_ID, "data"),
    prevent_initial_call=True,
)
@requires(Permission.VIEW_PATIENT)
def download_pack(pack_clicks: int | None, sheet_clicks: int | None, patient_id: str | None) -> Any:
    if not patient_id or not (pack_clicks or sheet_clicks):
        return dash.no_update
    try:
        view = _load(patient_id)
    except (PatientNotFound, SQLAlchemyError) as exc:
        log.error("SMR pack failed: %s", type(exc).__name__)
        return dash.no_update
    pack = smr_pack(view)
    if ctx.triggered_id == SHEET_DOWNLOAD_ID:
        audit(AuditAction.EXPORT, patient_id=patient_id, detail="SMR patient sheet (HTML)")
        return dcc.send_string(
            patient_sheet_html(pack), f"your-medicines-review-{patient_id}.html", type="text/html"
        )
    audit(AuditAction.EXPORT, patient_id=patient_id, detail="SMR pre-visit pack (HTML)")
    return dcc.send_string(clinician_pack_html(pack), f"smr-pack-{patient_id}.html", type="text/html")
