"""Flagged combinations at ``/combinations`` (pharmacists): every rule-and-medicines combination flagged in the
user's practices, a co-prescription heat map by drug class, and a drill-down to the patients affected.

Data flow (each callback is one call of a plain function in ``data_access.queries.combinations``):
- the filters (rule group, severity, drug, drug class, practice) choose rows of the combination table, which is
  computed once per scope and practice (cached, keyed by ``Scope.cache_key()``) and filtered in memory;
- clicking (or selecting with the keyboard) a row keeps only its key (rule id and drug keys, no patient data) in
  ``combinations-selected``; the drill-down grid (AG Grid infinite row model) then asks for blocks of patients,
  answered from the database within the user's scope; a change of combination or status re-mounts the grid so it
  starts again from the first block;
- the export writes the drill-down list as CSV and is audited.
Researchers and administrators see the counts (with small numbers suppressed) but no patient list: the drill-down
and export are not in their layout and their callbacks refuse them (``VIEW_PATIENT``, ``EXPORT_PATIENT_LIST``).
"""

from __future__ import annotations

import logging
from typing import Any

import dash
import dash_ag_grid as dag
import dash_bootstrap_components as dbc
import polars as pl
from dash import Input, Output, State, callback, dcc, html
from sqlalchemy.exc import SQLAlchemyError

from app.components.analysis import AGGREGATE_CACHE_SECONDS, GRAPH_CONFIG, data_cut, suppression_note, uk_date
from app.components.analysis_figures import coprescription_heatmap, message_figure
from app.runtime import app_context
from app.security import AuditAction, Permission, audit, current_user, requires, scope_for
from data_access.queries.combinations import (
    HEATMAP_DEFAULT_CLASSES,
    NEW_DAYS,
    RULE_GROUPS,
    SEVERITIES,
    STATUSES,
    CombinationFilters,
    DrillRequest,
    class_members,
    class_prevalence,
    co_prescription,
    combination_counts_by_practice,
    combination_patients,
    combination_patients_csv,
    combination_rows,
    counts_for_practice,
    default_heatmap_classes,
    describe_combination,
    drug_choices,
    parse_combination_key,
    patient_classes,
    practice_choices,
    rule_catalogue,
    rule_class_ranking,
)
from data_access.queries.combinations import active_drugs as active_drug_rows
from data_access.queries.population import shown_count
from data_access.queries.scope import Scope

dash.register_page(
    __name__, path="/combinations", title="Combinations · DynAIRx", name="Combinations", order=10
)

log = logging.getLogger(__name__)

GROUP_ID = "combinations-group"
SEVERITY_ID = "combinations-severity"
DRUG_ID = "combinations-drug"
CLASS_ID = "combinations-class"
PRACTICE_ID = "combinations-practice"
SUMMARY_ID = "combinations-summary"
GRID_ID = "combinations-grid"
ERROR_ID = "combinations-error"
HEATMAP_ID = "combinations-heatmap"
HEATMAP_CLASSES_ID = "combinations-heatmap-classes"
SELECTED_ID = "combinations-selected"
DRILL_HEADING_ID = "combinations-drill-heading"
DRILL_STATUS_ID = "combinations-drill-status"
DRILL_CONTAINER_ID = "combinations-drill-container"
DRILL_GRID_ID = "combinations-drill-grid"
DRILL_COUNT_ID = "combinations-drill-count"
EXPORT_ID = "combinations-export"
DOWNLOAD_ID = "combinations-download"

ALL_PRACTICES = "*"
ANY = "*"
DRILL_BLOCK_ROWS = 100
LOAD_ERROR = "The combinations could not be loaded just now. Please try again; if it keeps happening, tell your administrator."
CHOOSE_ROW = "Choose a combination in the table to list the patients who have it."


def _label(key: str) -> str:
    return key.replace("_", " ")


# -- cached computations --------------------------------------------------------------------------------------------


def _practice(value: Any) -> str | None:
    return value if isinstance(value, str) and value not in ("", ALL_PRACTICES) and len(value) <= 64 else None


def _counts(scope: Scope, practice_id: str | None) -> pl.DataFrame:
    """The combination table of the user's practices (or of one of them), from a per-scope cache."""
    context = app_context()
    cut = data_cut()
    by_practice = context.cached(
        ("combination-counts", scope.cache_key(), cut),
        lambda: combination_counts_by_practice(context.engine, scope, cut),
        seconds=AGGREGATE_CACHE_SECONDS,
    )
    return counts_for_practice(by_practice, practice_id)


def _patient_classes(scope: Scope, practice_id: str | None) -> pl.DataFrame:
    context = app_context()
    return context.cached(
        ("combination-classes", scope.cache_key(), practice_id),
        lambda: patient_classes(active_drug_rows(context.engine, scope, practice_id), class_members()),
        seconds=AGGREGATE_CACHE_SECONDS,
    )


def _practices(scope: Scope) -> list[tuple[str, str]]:
    context = app_context()
    return context.cached(
        ("combination-practices", scope.cache_key()), lambda: practice_choices(context.engine, scope)
    )


# -- layout ---------------------------------------------------------------------------------------------------------


def combination_column_defs() -> list[dict[str, Any]]:
    number = {"filter": "agNumberColumnFilter", "type": "rightAligned"}
    text = {"filter": "agTextColumnFilter"}
    return [
        {
            "field": "rule_id",
            "headerName": "Rule",
            "pinned": "left",
            "width": 240,
            "tooltipField": "rule_id",
            **text,
        },
        {
            "field": "title",
            "headerName": "Criterion",
            "flex": 2,
            "minWidth": 260,
            "wrapText": True,
            "autoHeight": True,
            "tooltipField": "title",
            **text,
        },
        {
            "field": "drugs",
            "headerName": "Medicines",
            "flex": 1,
            "minWidth": 170,
            "wrapText": True,
            "autoHeight": True,
            **text,
        },
        {"field": "severity", "headerName": "Severity", "width": 110, **text},
        {"field": "source", "headerName": "Source", "width": 170, "tooltipField": "source", **text},
        {
            "field": "active_now",
            "headerName": "Patients now",
            "headerTooltip": "Patients with it active at the data cut",
            "width": 120,
            **number,
        },
        {
            "field": "new_30d",
            "headerName": f"New ({NEW_DAYS} days)",
            "headerTooltip": f"Patients in whom it started in the {NEW_DAYS} days up to the data cut",
            "width": 120,
            **number,
        },
        {"field": "ever", "headerName": "Patients ever", "width": 120, **number},
        {"field": "group", "headerName": "Rule group", "width": 200, "tooltipField": "group", **text},
    ]


def combination_grid(selectable: bool) -> dag.AgGrid:
    options: dict[str, Any] = {
        "animateRows": False,
        "ensureDomOrder": True,
        "enableCellTextSelection": True,
        "tooltipShowDelay": 300,
        "pagination": True,
        "paginationPageSize": 20,
        "paginationPageSizeSelector": False,
        "localeText": {"noRowsToShow": "No flagged combination matches these filters."},
    }
    if selectable:
        options["rowSelection"] = {"mode": "singleRow", "checkboxes": False, "enableClickSelection": True}
    return dag.AgGrid(
        id=GRID_ID,
        rowData=[],
        columnDefs=combination_column_defs(),
        defaultColDef={"sortable": True, "resizable": True, "wrapHeaderText": True, "autoHeaderHeight": True},
        dashGridOptions=options,
        style={"height": "620px", "width": "100%"},
        className="dx-grid",
    )


def drill_column_defs() -> list[dict[str, Any]]:
    number = {"type": "rightAligned"}
    return [
        {
            "field": "patient_id",
            "headerName": "Patient",
            "cellRenderer": "PatientLink",
            "pinned": "left",
            "sortable": False,
            "width": 130,
        },
        {"field": "practice", "headerName": "Practice", "width": 190},
        {"field": "age", "headerName": "Age", "width": 80, **number},
        {"field": "sex", "headerName": "Sex", "width": 70},
        {"field": "active_now", "headerName": "Active now", "width": 180},
        {"field": "latest_start", "headerName": "Latest period started", "width": 150},
        {"field": "first_start", "headerName": "First flagged", "width": 130},
        {"field": "medicines_count", "headerName": "Medicines", "width": 110, **number},
        {"field": "flags_high", "headerName": "High-severity flags", "width": 140, **number},
        {
            "field": "risk_emergency_admission",
            "headerName": "Emergency admission risk (%)",
            "width": 150,
            **number,
        },
        {"field": "risk_medication_harm", "headerName": "Medication harm risk (%)", "width": 150, **number},
    ]


def drill_grid() -> dag.AgGrid:
    return dag.AgGrid(
        id=DRILL_GRID_ID,
        rowModelType="infinite",
        columnDefs=drill_column_defs(),
        defaultColDef={"sortable": True, "resizable": True, "wrapHeaderText": True, "autoHeaderHeight": True},
        dashGridOptions={
            "cacheBlockSize": DRILL_BLOCK_ROWS,
            "maxBlocksInCache": 10,
            "infiniteInitialRowCount": DRILL_BLOCK_ROWS,
            "animateRows": False,
            "ensureDomOrder": True,
            "enableCellTextSelection": True,
            "localeText": {"noRowsToShow": "No patients with this combination in this view."},
        },
        style={"height": "460px", "width": "100%"},
        className="dx-grid",
    )


def _filters(practices: list[tuple[str, str]], drugs: list[str], classes: list[str]) -> dbc.Card:
    return dbc.Card(
        className="dx-filters mb-3",
        children=dbc.CardBody(
            dbc.Row(
                [
                    dbc.Col(
                        html.Fieldset(
                            [
                                html.Legend("Rule group", className="dx-legend"),
                                dbc.Checklist(
                                    id=GROUP_ID,
                                    options=[
                                        {"label": text, "value": key} for key, text in RULE_GROUPS.items()
                                    ],
                                    value=[],
                                ),
                            ]
                        ),
                        lg=4,
                    ),
                    dbc.Col(
                        html.Fieldset(
                            [
                                html.Legend("Severity", className="dx-legend"),
                                dbc.Checklist(
                                    id=SEVERITY_ID,
                                    options=[{"label": s.capitalize(), "value": s} for s in SEVERITIES],
                                    value=[],
                                ),
                            ]
                        ),
                        lg=2,
                    ),
                    dbc.Col(
                        [
                            dbc.Label("Medicine", html_for=DRUG_ID, className="dx-legend"),
                            dcc.Dropdown(
                                id=DRUG_ID,
                                options=[{"label": _label(d), "value": d} for d in drugs],
                                placeholder="Any medicine",
                            ),
                            dbc.Label("Drug class", html_for=CLASS_ID, className="dx-legend mt-2"),
                            dcc.Dropdown(
                                id=CLASS_ID,
                                options=[{"label": _label(c), "value": c} for c in classes],
                                placeholder="Any class",
                            ),
                        ],
                        lg=3,
                    ),
                    dbc.Col(
                        [
                            dbc.Label("Practice", html_for=PRACTICE_ID, className="dx-legend"),
                            dbc.Select(
                                id=PRACTICE_ID,
                                value=ALL_PRACTICES,
                                options=[{"label": "All practices in view", "value": ALL_PRACTICES}]
                                + [{"label": name, "value": pid} for pid, name in practices],
                            ),
                        ],
                        lg=3,
                    ),
                ],
                className="g-3",
            )
        ),
    )


def _drill_section() -> html.Section:
    return html.Section(
        dbc.Card(
            dbc.CardBody(
                [
                    html.H2("Patients with the selected combination", className="h5", id=DRILL_HEADING_ID),
                    dcc.Store(id=SELECTED_ID),
                    dbc.Row(
                        [
                            dbc.Col(
                                [
                                    dbc.Label(
                                        "Show patients", html_for=DRILL_STATUS_ID, className="dx-legend"
                                    ),
                                    dbc.Select(
                                        id=DRILL_STATUS_ID,
                                        value="active",
                                        options=[
                                            {"label": text, "value": key} for key, text in STATUSES.items()
                                        ],
                                    ),
                                ],
                                md=4,
                            ),
                            dbc.Col(
                                dbc.Button(
                                    "Export patients (CSV)",
                                    id=EXPORT_ID,
                                    color="primary",
                                    size="sm",
                                    n_clicks=0,
                                    className="mt-4",
                                ),
                                md=4,
                            ),
                        ],
                        className="g-2 mb-2",
                    ),
                    html.P(
                        id=DRILL_COUNT_ID,
                        className="dx-count",
                        children=CHOOSE_ROW,
                        **{"aria-live": "polite"},
                    ),
                    html.Div(id=DRILL_CONTAINER_ID),
                    dcc.Download(id=DOWNLOAD_ID),
                ]
            )
        ),
        className="mb-3",
        **{"aria-labelledby": DRILL_HEADING_ID},
    )


def _heatmap_section(classes: list[str]) -> html.Section:
    defaults = list(rule_class_ranking()[:HEATMAP_DEFAULT_CLASSES])
    return html.Section(
        dbc.Card(
            dbc.CardBody(
                [
                    html.H2(
                        "Co-prescription by drug class (active now)",
                        className="h5",
                        id="coprescription-heading",
                    ),
                    html.P(
                        "Patients on at least one medicine of the row's class and one of the column's class now "
                        "(their current medicines on the worklist, as at the data cut); each label carries the number "
                        "on that class. It opens on the classes the safety rules name most often; add or remove "
                        "classes below.",
                        className="small text-secondary",
                    ),
                    dbc.Label("Classes shown", html_for=HEATMAP_CLASSES_ID, className="dx-legend"),
                    dcc.Dropdown(
                        id=HEATMAP_CLASSES_ID,
                        options=[{"label": _label(c), "value": c} for c in classes],
                        value=defaults,
                        multi=True,
                    ),
                    dcc.Loading(
                        dcc.Graph(id=HEATMAP_ID, config=GRAPH_CONFIG, figure=message_figure("Loading…", 420)),
                        type="default",
                        delay_show=300,
                    ),
                ]
            )
        ),
        className="mb-3",
        **{"aria-labelledby": "coprescription-heading"},
    )


@requires(Permission.VIEW_AGGREGATE)
def layout(**_query: Any) -> html.Div:
    user = current_user()
    clinician = bool(user and user.can(Permission.VIEW_PATIENT))
    scope = scope_for(user)
    classes = sorted(class_members())
    try:
        practices = _practices(scope) if user else []
        drugs = drug_choices(_counts(scope, None)) if user else []
        cut_text = uk_date(data_cut()) if user else ""
    except SQLAlchemyError as exc:
        log.error("combinations choices failed: %s", type(exc).__name__)
        practices, drugs, cut_text = [], [], ""
    intro = (
        "Every combination of a safety rule and the medicines it named, flagged among the patients in view. "
        f"'Now' is the data cut ({cut_text}), not today's date. "
        + (
            "Choose a row to see the patients who have it, then open their record."
            if clinician
            else "Patient lists are available only to the GPs and pharmacists of each practice."
        )
    )
    return html.Div(
        [
            html.H1("Flagged combinations", className="h3"),
            html.P(intro, className="text-secondary"),
            _filters(practices, drugs, classes),
            html.Div(id=ERROR_ID, role="alert"),
            html.P(id=SUMMARY_ID, className="dx-count", **{"aria-live": "polite"}),
            dcc.Loading(combination_grid(selectable=clinician), type="default", delay_show=300),
            html.Div(className="mb-3"),
            *([_drill_section()] if clinician else [suppression_note()]),
            _heatmap_section(classes),
        ]
    )


# -- callbacks ------------------------------------------------------------------------------------------------------


def filters_from_controls(
    groups: Any, severities: Any, drug: Any, drug_class: Any, practice: Any
) -> CombinationFilters:
    return CombinationFilters(
        groups=tuple(g for g in groups or () if isinstance(g, str)),
        severities=tuple(s for s in severities or () if isinstance(s, str)),
        drug=drug if isinstance(drug, str) and drug != ANY else None,
        drug_class=drug_class if isinstance(drug_class, str) and drug_class != ANY else None,
        practice_id=_practice(practice),
    ).normalised()


def suppressed_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Counts of 1 to 4 shown as "<5" (for users who see aggregates only)."""
    for row in rows:
        for column in ("active_now", "new_30d", "ever"):
            row[column] = shown_count(row[column])
    return rows


def summary_text(rows: list[dict[str, Any]], cut_text: str) -> str:
    active = sum(1 for r in rows if r["active_now"])
    return (
        f"{len(rows):,} combination{'s' if len(rows) != 1 else ''} match these filters; {active:,} active in at least "
        f"one patient at the data cut ({cut_text})."
    )


@callback(
    Output(GRID_ID, "rowData"),
    Output(SUMMARY_ID, "children"),
    Output(ERROR_ID, "children"),
    Input(GROUP_ID, "value"),
    Input(SEVERITY_ID, "value"),
    Input(DRUG_ID, "value"),
    Input(CLASS_ID, "value"),
    Input(PRACTICE_ID, "value"),
)
@requires(Permission.VIEW_AGGREGATE)
def update_combinations(groups: Any, severities: Any, drug: Any, drug_class: Any, practice: Any) -> tuple:
    user = current_user()
    filters = filters_from_controls(groups, severities, drug, drug_class, practice)
    try:
        counts = _counts(scope_for(user), filters.practice_id)
        cut_text = uk_date(data_cut())
    except SQLAlchemyError as exc:
        log.error("combination counts failed: %s", type(exc).__name__)
        return [], "", dbc.Alert(LOAD_ERROR, color="danger")
    rows = combination_rows(counts, filters, rule_catalogue(), class_members())
    text = summary_text(rows, cut_text)
    if not (user and user.can(Permission.VIEW_PATIENT)):
        rows = suppressed_rows(rows)
    return rows, text, None


@callback(
    Output(HEATMAP_ID, "figure"),
    Input(HEATMAP_CLASSES_ID, "value"),
    Input(PRACTICE_ID, "value"),
    Input(CLASS_ID, "value"),
)
@requires(Permission.VIEW_AGGREGATE)
def update_heatmap(chosen: Any, practice: Any, drug_class: Any) -> Any:
    user = current_user()
    known = class_members()
    wanted = [c for c in chosen or () if isinstance(c, str) and c in known]
    if isinstance(drug_class, str) and drug_class in known and drug_class not in wanted:
        wanted.append(drug_class)
    try:
        classes = _patient_classes(scope_for(user), _practice(practice))
    except SQLAlchemyError as exc:
        log.error("co-prescription failed: %s", type(exc).__name__)
        return message_figure(LOAD_ERROR, 420)
    prevalence = class_prevalence(classes)
    shown = [c for c in wanted if prevalence.get(c, 0) > 0] or default_heatmap_classes(
        prevalence, rule_class_ranking()
    )
    matrix = co_prescription(classes, shown)
    return coprescription_heatmap(matrix, suppress=not (user and user.can(Permission.VIEW_PATIENT)))


@callback(
    Output(SELECTED_ID, "data"),
    Output(DRILL_HEADING_ID, "children"),
    Input(GRID_ID, "selectedRows"),
    prevent_initial_call=True,
)
@requires(Permission.VIEW_PATIENT)
def choose_combination(selected: Any) -> tuple[Any, Any]:
    """Keep the chosen row's key (rule id and drug keys only) and name it in the heading."""
    row = selected[0] if isinstance(selected, list) and selected and isinstance(selected[0], dict) else None
    combination = parse_combination_key(row.get("key")) if row else None
    if combination is None:
        return None, "Patients with the selected combination"
    return row["key"], f"Patients with {describe_combination(combination, rule_catalogue())}"


@callback(
    Output(DRILL_CONTAINER_ID, "children"),
    Input(SELECTED_ID, "data"),
    Input(DRILL_STATUS_ID, "value"),
    Input(PRACTICE_ID, "value"),
)
@requires(Permission.VIEW_PATIENT)
def mount_drill_grid(key: Any, status: Any, practice: Any) -> Any:
    """A new grid (``key`` changes) for each combination, status and practice, so paging starts afresh."""
    if parse_combination_key(key) is None:
        return None
    return html.Div(drill_grid(), key=f"{key}|{status}|{practice}")


@callback(
    Output(DRILL_GRID_ID, "getRowsResponse"),
    Output(DRILL_COUNT_ID, "children"),
    Input(DRILL_GRID_ID, "getRowsRequest"),
    State(SELECTED_ID, "data"),
    State(DRILL_STATUS_ID, "value"),
    State(PRACTICE_ID, "value"),
    prevent_initial_call=True,
)
@requires(Permission.VIEW_PATIENT)
def drill_rows(request: Any, key: Any, status: Any, practice: Any) -> tuple[Any, Any]:
    combination = parse_combination_key(key)
    if combination is None:
        return {"rowData": [], "rowCount": 0}, CHOOSE_ROW
    status = status if status in STATUSES else "active"
    try:
        page = combination_patients(
            app_context().engine,
            scope_for(current_user()),
            combination,
            data_cut(),
            status=status,
            practice_id=_practice(practice),
            request=DrillRequest.from_ag_grid(request),
        )
    except SQLAlchemyError as exc:
        log.error("combination patients failed: %s", type(exc).__name__)
        return {"rowData": [], "rowCount": 0}, LOAD_ERROR
    noun = "patient" if page.total == 1 else "patients"
    return {
        "rowData": page.rows,
        "rowCount": page.total,
    }, f"{page.total:,} {noun}: {STATUSES[status].lower()}."


@callback(
    Output(DOWNLOAD_ID, "data"),
    Output(DRILL_COUNT_ID, "children", allow_duplicate=True),
    Input(EXPORT_ID, "n_clicks"),
    State(SELECTED_ID, "data"),
    State(DRILL_STATUS_ID, "value"),
    State(PRACTICE_ID, "value"),
    prevent_initial_call=True,
)
@requires(Permission.EXPORT_PATIENT_LIST)
def export_patients(n_clicks: Any, key: Any, status: Any, practice: Any) -> tuple[Any, Any]:
    if not n_clicks:
        return dash.no_update, dash.no_update
    combination = parse_combination_key(key)
    if combination is None:
        return dash.no_update, CHOOSE_ROW
    status = status if status in STATUSES else "active"
    try:
        text, rows = combination_patients_csv(
            app_context().engine,
            scope_for(current_user()),
            combination,
            data_cut(),
            status=status,
            practice_id=_practice(practice),
        )
    except SQLAlchemyError as exc:
        log.error("combination export failed: %s", type(exc).__name__)
        return dash.no_update, "The export failed. Please try again."
    audit(
        AuditAction.EXPORT,
        detail=f"combination patients CSV, {rows} rows, {status}: {describe_combination(combination, rule_catalogue())}",
    )
    filename = f"dynairx-combination-{combination[0]}.csv"
    return dcc.send_string(text, filename, type="text/csv"), dash.no_update
