"""Worklist (GPs) at ``/``: every patient of the user's practices, filtered, sorted and paged on the server.

Data flow (each callback is one call of a plain function in ``data_access.queries.worklist``):
- the quick filters write the filter state, as a URL query string, into ``worklist-query`` (ids and filter state
  only, never patient data); a clientside function mirrors it into the address bar (deep links) and refreshes the
  grid's cache;
- the grid (AG Grid infinite row model) asks for blocks of rows with its sort and column-filter model;
  ``worklist_page`` answers from ``worklist_entry`` within the user's scope;
- the export button writes the same filtered, sorted list as CSV, and the export is audited.
"""

from __future__ import annotations

import logging
from typing import Any

import dash
import dash_ag_grid as dag
import dash_bootstrap_components as dbc
from dash import ClientsideFunction, Input, Output, State, callback, clientside_callback, dcc, html
from sqlalchemy.exc import SQLAlchemyError

from app import theme
from app.components.review import SHOW_REVIEWED_ID, planner_link, review_column_defs, show_reviewed_switch
from app.runtime import app_context
from app.security import AuditAction, Permission, audit, current_user, requires, scope_for
from data_access.queries.worklist import (
    COHORTS,
    ORDERS,
    OUTCOME_LABELS,
    OUTCOMES,
    GridRequest,
    WorklistFilters,
    filter_choices,
    sort_model_from_column_state,
    worklist_csv,
    worklist_page,
)

dash.register_page(__name__, path="/", title="Worklist · DynAIRx", name="Worklist", order=0)

log = logging.getLogger(__name__)

GRID_ID = "worklist-grid"
QUERY_STORE_ID = "worklist-query"
COHORT_ID = "worklist-cohort"
HIGH_FLAG_ID = "worklist-high-flag"
RISING_ID = "worklist-rising"
RISK_OUTCOME_ID = "worklist-risk-outcome"
RISK_MIN_ID = "worklist-risk-min"
CONDITION_ID = "worklist-condition"
DRUG_ID = "worklist-drug"
ORDER_ID = "worklist-order"
COUNT_ID = "worklist-count"
EXPORT_ID = "worklist-export"
DOWNLOAD_ID = "worklist-download"
ERROR_ID = "worklist-error"
URL_SYNC_ID = "worklist-url-sync"

BLOCK_ROWS = 100
ANY = "*"  # the "any condition/medicine" choice (never a valid key, so normalised() drops it)
ROW_LOAD_ERROR = "The worklist could not be loaded just now. Please try again; if it keeps happening, tell your administrator."


def _key_label(key: str) -> str:
    return key.replace("_", " ").capitalize()


def column_defs() -> list[dict[str, Any]]:
    """Grid columns; ``field`` is the server's whitelisted column id, so sorting and filtering map one to one."""
    number = {
        "filter": "agNumberColumnFilter",
        "filterParams": {"buttons": ["apply", "reset"], "maxNumConditions": 1},
    }
    text = {
        "filter": "agTextColumnFilter",
        "filterParams": {"buttons": ["apply", "reset"], "maxNumConditions": 1},
    }
    risk_columns = [
        {
            "field": f"risk_{o}",
            "headerName": OUTCOME_LABELS[o],
            "headerTooltip": f"Model estimate of the risk of {OUTCOME_LABELS[o].lower()} in the next 12 months (%)",
            "cellRenderer": "RiskCell",
            "width": 125,
            **number,
        }
        for o in OUTCOMES
    ]
    return [
        {
            "field": "patient_id",
            "headerName": "Patient",
            "cellRenderer": "PatientLink",
            "sortable": False,
            "width": 130,
            **text,
        },
        {
            "field": "why",
            "headerName": "Why on the list",
            "sortable": False,
            "width": 340,
            "wrapText": True,
            "tooltipField": "why",
            "cellClass": "dx-why-cell",
            **text,
        },
        {"field": "age", "headerName": "Age", "width": 90, **number},
        {"field": "sex", "headerName": "Sex", "width": 80, **text},
        {
            "field": "ltc_count",
            "headerName": "LTCs",
            "headerTooltip": "Number of long-term conditions",
            "width": 90,
            **number,
        },
        {"field": "medicines_count", "headerName": "Medicines", "width": 110, **number},
        {"field": "efi_category", "headerName": "Frailty (eFI)", "width": 120, **text},
        {"headerName": "12-month risk (model)", "children": risk_columns},
        {
            "field": "risk_change_6m",
            "headerName": "6-month change",
            "cellRenderer": "RiskChange",
            "headerTooltip": "Largest change in 12-month risk over the last 6 months (percentage points); ▲ marks rising risk",
            "width": 130,
            **number,
        },
        {
            "field": "flags_high",
            "headerName": "Active flags",
            "cellRenderer": "FlagsCell",
            "headerTooltip": "Active safety flags by severity (sorted by high-severity count)",
            "width": 150,
            **number,
        },
        {
            "field": "last_review",
            "headerName": "Last review",
            "width": 130,
            "filter": "agDateColumnFilter",
            "filterParams": {"buttons": ["apply", "reset"], "maxNumConditions": 1},
        },
        *review_column_defs(),
    ]


def grid() -> dag.AgGrid:
    return dag.AgGrid(
        id=GRID_ID,
        rowModelType="infinite",
        columnDefs=column_defs(),
        defaultColDef={"sortable": True, "resizable": True, "wrapHeaderText": True, "autoHeaderHeight": True},
        dashGridOptions={
            "cacheBlockSize": BLOCK_ROWS,
            "maxBlocksInCache": 20,
            "infiniteInitialRowCount": BLOCK_ROWS,
            "rowBuffer": 5,
            "rowHeight": 58,
            "animateRows": False,
            "ensureDomOrder": True,
            "enableCellTextSelection": True,
            "tooltipShowDelay": 300,
            "localeText": {"noRowsToShow": "No patients match these filters."},
        },
        style={"height": "640px", "width": "100%"},
        className="dx-grid",
    )


def _filter_panel(filters: WorklistFilters, choices: dict[str, list[str]]) -> dbc.Card:
    return dbc.Card(
        className="dx-filters mb-3",
        children=dbc.CardBody(
            [
                html.H2("Filters", className="h6 visually-hidden"),
                dbc.Row(
                    [
                        dbc.Col(
                            html.Fieldset(
                                [
                                    html.Legend("SMR cohorts (DynAIRx protocol)", className="dx-legend"),
                                    dbc.Checklist(
                                        id=COHORT_ID,
                                        options=[
                                            {"label": label, "value": key} for key, label in COHORTS.items()
                                        ],
                                        value=list(filters.cohorts),
                                    ),
                                ]
                            ),
                            lg=4,
                        ),
                        dbc.Col(
                            [
                                html.Fieldset(
                                    [
                                        html.Legend("Safety and change", className="dx-legend"),
                                        dbc.Switch(
                                            id=HIGH_FLAG_ID,
                                            label="Any active high-severity flag",
                                            value=filters.high_severity_flag,
                                        ),
                                        dbc.Switch(
                                            id=RISING_ID,
                                            label="Rising risk (▲ 5 points or more in 6 months)",
                                            value=filters.rising_only,
                                        ),
                                        show_reviewed_switch(filters.show_reviewed),
                                    ]
                                ),
                                dbc.Label("Order the list by", html_for=ORDER_ID, className="dx-legend mt-2"),
                                dbc.Select(
                                    id=ORDER_ID,
                                    value=filters.order,
                                    options=[{"label": label, "value": key} for key, label in ORDERS.items()],
                                ),
                            ],
                            lg=3,
                        ),
                        dbc.Col(
                            [
                                dbc.Label("Risk outcome", html_for=RISK_OUTCOME_ID, className="dx-legend"),
                                dbc.Select(
                                    id=RISK_OUTCOME_ID,
                                    value=filters.risk_outcome,
                                    options=[{"label": OUTCOME_LABELS[o], "value": o} for o in OUTCOMES],
                                ),
                                dbc.Label(
                                    "Minimum 12-month risk (%)",
                                    html_for=RISK_MIN_ID,
                                    className="dx-legend mt-2",
                                ),
                                dbc.Input(
                                    id=RISK_MIN_ID,
                                    type="number",
                                    min=0,
                                    max=100,
                                    step=1,
                                    debounce=True,
                                    value=filters.risk_min_percent,
                                    placeholder="e.g. 20",
                                ),
                            ],
                            lg=2,
                        ),
                        dbc.Col(
                            [
                                dbc.Label("Condition", html_for=CONDITION_ID, className="dx-legend"),
                                dbc.Select(
                                    id=CONDITION_ID,
                                    value=filters.condition or ANY,
                                    options=[{"label": "Any condition", "value": ANY}]
                                    + [{"label": _key_label(k), "value": k} for k in choices["conditions"]],
                                ),
                                dbc.Label("Medicine", html_for=DRUG_ID, className="dx-legend mt-2"),
                                dbc.Select(
                                    id=DRUG_ID,
                                    value=filters.drug or ANY,
                                    options=[{"label": "Any medicine", "value": ANY}]
                                    + [{"label": _key_label(k), "value": k} for k in choices["drugs"]],
                                ),
                            ],
                            lg=3,
                        ),
                    ],
                    className="g-3",
                ),
                html.Div(
                    [
                        html.A("Clear filters", href="/", className="btn btn-outline-secondary btn-sm me-2"),
                        dbc.Button("Export list (CSV)", id=EXPORT_ID, color="primary", size="sm", n_clicks=0),
                        planner_link(),
                    ],
                    className="mt-3",
                ),
            ]
        ),
    )


@requires(Permission.VIEW_WORKLIST)
def layout(**query: Any) -> html.Div:
    filters = WorklistFilters.from_query_string(query)
    user = current_user()
    scope = scope_for(user)
    context = app_context()
    try:
        choices = context.cached(
            ("filter-choices", scope.cache_key()), lambda: filter_choices(context.engine, scope)
        )
    except SQLAlchemyError as exc:
        log.error("worklist filter choices failed: %s", type(exc).__name__)
        choices = {"conditions": [], "drugs": []}
    return html.Div(
        [
            html.H1("Worklist", className="h3"),
            html.P(
                "Patients of your practice for a Structured Medication Review. 'Why now' puts first the patients "
                "whose picture changed since their last review: a new high-severity flag, a rise in risk or a "
                "recent emergency admission.",
                className="text-secondary",
            ),
            dcc.Store(id=QUERY_STORE_ID, data=filters.to_query_string()),
            dcc.Store(id=URL_SYNC_ID),
            _filter_panel(filters, choices),
            html.Div(id=ERROR_ID, role="alert"),
            html.P(id=COUNT_ID, className="dx-count", **{"aria-live": "polite"}),
            dcc.Loading(grid(), type="default", delay_show=300),
            dcc.Download(id=DOWNLOAD_ID),
        ]
    )


def count_text(total: int) -> str:
    return f"{total:,} patient{'s' if total != 1 else ''} match{'es' if total == 1 else ''} these filters."


def rows_with_bands(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Add each risk's display band (from ``app.theme``, the one home of the bands) for the cell renderer."""
    for row in rows:
        for outcome in OUTCOMES:
            value = row.get(f"risk_{outcome}")
            row[f"risk_{outcome}_band"] = theme.risk_band(value / 100.0) if value is not None else None
    return rows


@callback(
    Output(QUERY_STORE_ID, "data"),
    Input(COHORT_ID, "value"),
    Input(HIGH_FLAG_ID, "value"),
    Input(RISING_ID, "value"),
    Input(RISK_OUTCOME_ID, "value"),
    Input(RISK_MIN_ID, "value"),
    Input(CONDITION_ID, "value"),
    Input(DRUG_ID, "value"),
    Input(ORDER_ID, "value"),
    Input(SHOW_REVIEWED_ID, "value"),
    prevent_initial_call=True,
)
@requires(Permission.VIEW_WORKLIST)
def filters_to_query(
    cohorts: list[str] | None,
    high_flag: bool | None,
    rising: bool | None,
    risk_outcome: str | None,
    risk_min: float | str | None,
    condition: str | None,
    drug: str | None,
    order: str | None,
    show_reviewed: bool | None = False,
) -> str:
    return WorklistFilters.from_controls(
        cohorts, high_flag, rising, risk_outcome, risk_min, condition, drug, order, show_reviewed
    ).to_query_string()


# Mirror the filter state into the address bar and refresh the grid's row cache (assets/dynairx.js).
clientside_callback(
    ClientsideFunction(namespace="dynairx", function_name="syncWorklistQuery"),
    Output(URL_SYNC_ID, "data"),
    Input(QUERY_STORE_ID, "data"),
    State(GRID_ID, "id"),
    prevent_initial_call=True,
)


@callback(
    Output(GRID_ID, "getRowsResponse"),
    Output(COUNT_ID, "children"),
    Output(ERROR_ID, "children"),
    Input(GRID_ID, "getRowsRequest"),
    State(QUERY_STORE_ID, "data"),
    prevent_initial_call=True,
)
@requires(Permission.VIEW_WORKLIST)
def fetch_rows(request: dict[str, Any] | None, query: str | None) -> tuple[Any, str, Any]:
    filters = WorklistFilters.from_query_string(query)
    try:
        page = worklist_page(
            app_context().engine, scope_for(current_user()), filters, GridRequest.from_ag_grid(request)
        )
    except SQLAlchemyError as exc:
        log.error("worklist rows failed: %s", type(exc).__name__)
        return {"rowData": [], "rowCount": 0}, "", dbc.Alert(ROW_LOAD_ERROR, color="danger")
    return {"rowData": rows_with_bands(page.rows), "rowCount": page.total}, count_text(page.total), None


@callback(
    Output(DOWNLOAD_ID, "data"),
    Output(ERROR_ID, "children", allow_duplicate=True),
    Input(EXPORT_ID, "n_clicks"),
    State(QUERY_STORE_ID, "data"),
    State(GRID_ID, "columnState"),
    State(GRID_ID, "filterModel"),
    prevent_initial_call=True,
)
@requires(Permission.EXPORT_PATIENT_LIST)
def export_csv(
    n_clicks: int | None,
    query: str | None,
    column_state: list[dict[str, Any]] | None,
    filter_model: dict | None,
) -> tuple[Any, Any]:
    if not n_clicks:
        return dash.no_update, dash.no_update
    filters = WorklistFilters.from_query_string(query)
    grid_request = GridRequest(0, 1, sort_model_from_column_state(column_state), filter_model or {})
    try:
        text, rows = worklist_csv(app_context().engine, scope_for(current_user()), filters, grid_request)
    except SQLAlchemyError as exc:
        log.error("worklist export failed: %s", type(exc).__name__)
        return dash.no_update, dbc.Alert("The export failed. Please try again.", color="danger")
    audit(
        AuditAction.EXPORT,
        detail=f"worklist CSV, {rows} rows, filters: {filters.to_query_string() or 'none'}",
    )
    return dcc.send_string(text, "dynairx-worklist.csv", type="text/csv"), None
