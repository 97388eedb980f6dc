"""Population at ``/population`` (researchers, ICB): risk distribution, multimorbidity and polypharmacy by age, sex
and deprivation, the commonest condition clusters and practice flag rates on a funnel plot.

Everything here is aggregated (``data_access.queries.population``, which also documents the definitions and the
small-number suppression): no patient identifier reaches the browser, so the page is open to every role with
``VIEW_AGGREGATE``. Counts are cached per scope (``Scope.cache_key()``), so one user's view never reaches another.
"""

from __future__ import annotations

import logging
from typing import Any

import dash
import dash_bootstrap_components as dbc
from dash import Input, Output, callback, dcc, html
from sqlalchemy.exc import SQLAlchemyError

from app import theme
from app.components.analysis import AGGREGATE_CACHE_SECONDS, GRAPH_CONFIG, data_cut, suppression_note, uk_date
from app.components.analysis_figures import funnel_plot, message_figure, risk_histogram
from app.runtime import app_context
from app.security import Permission, current_user, requires, scope_for
from data_access.queries.combinations import RULE_GROUPS, SEVERITIES, rule_catalogue
from data_access.queries.population import (
    FUNNEL_WORDS,
    OUTCOMES,
    Cluster,
    PracticeRate,
    PrevalenceRow,
    condition_clusters,
    condition_sets,
    current_risks,
    funnel_position,
    is_small,
    overall_proportion,
    practice_flag_rates,
    prevalence_table,
    risk_distribution,
    rule_ids_in_groups,
    shown_count,
    shown_percent,
)
from data_access.queries.scope import Scope

dash.register_page(__name__, path="/population", title="Population · DynAIRx", name="Population", order=20)

log = logging.getLogger(__name__)

OUTCOME_ID = "population-outcome"
HISTOGRAM_ID = "population-histogram"
HISTOGRAM_SUMMARY_ID = "population-histogram-summary"
PREVALENCE_ID = "population-prevalence"
CLUSTERS_ID = "population-clusters"
FUNNEL_GROUP_ID = "population-funnel-group"
FUNNEL_SEVERITY_ID = "population-funnel-severity"
FUNNEL_ID = "population-funnel"
FUNNEL_TABLE_ID = "population-funnel-table"
FUNNEL_SUMMARY_ID = "population-funnel-summary"
ERROR_ID = "population-error"

ALL = "*"
CLUSTER_TOP = 10
LOAD_ERROR = "These figures could not be computed just now. Please try again; if it keeps happening, tell your administrator."


def _section(title: str, section_id: str, children: list[Any]) -> html.Section:
    heading = f"{section_id}-heading"
    return html.Section(
        dbc.Card(dbc.CardBody([html.H2(title, className="h5", id=heading), *children])),
        className="mb-3",
        **{"aria-labelledby": heading},
    )


@requires(Permission.VIEW_AGGREGATE)
def layout(**_query: Any) -> html.Div:
    try:
        cut_text = uk_date(data_cut()) if current_user() else ""
    except SQLAlchemyError as exc:
        log.error("data cut failed: %s", type(exc).__name__)
        cut_text = ""
    return html.Div(
        [
            html.H1("Population", className="h3"),
            html.P(
                "Aggregated views of the registered patients in view (alive and registered at the data cut, "
                f"{cut_text}). Nothing on this page identifies a patient.",
                className="text-secondary",
            ),
            suppression_note(),
            html.Div(id=ERROR_ID, role="alert"),
            _section(
                "Distribution of current 12-month risk",
                "risk-distribution",
                [
                    dbc.Row(
                        dbc.Col(
                            [
                                dbc.Label("Outcome", html_for=OUTCOME_ID, className="dx-legend"),
                                dbc.Select(
                                    id=OUTCOME_ID,
                                    value=OUTCOMES[0],
                                    options=[
                                        {"label": theme.OUTCOME_LABELS[o], "value": o} for o in OUTCOMES
                                    ],
                                ),
                            ],
                            md=4,
                        )
                    ),
                    html.P(id=HISTOGRAM_SUMMARY_ID, className="dx-count mt-2", **{"aria-live": "polite"}),
                    dcc.Loading(
                        dcc.Graph(
                            id=HISTOGRAM_ID, config=GRAPH_CONFIG, figure=message_figure("Loading…", 320)
                        ),
                        type="default",
                        delay_show=300,
                    ),
                ],
            ),
            _section(
                "Multimorbidity and polypharmacy",
                "prevalence",
                [
                    html.P(
                        "Multimorbidity: 2 or more long-term conditions. Polypharmacy: 5 or more active medicines; "
                        "complex polypharmacy: 10 or more.",
                        className="small text-secondary",
                    ),
                    dcc.Loading(html.Div(id=PREVALENCE_ID), type="default", delay_show=300),
                ],
            ),
            _section(
                "Commonest condition clusters",
                "clusters",
                [
                    html.P(
                        "Pairs and triples of long-term conditions held together by one patient, with the share of "
                        "patients who have at least that many long-term conditions.",
                        className="small text-secondary",
                    ),
                    dcc.Loading(html.Div(id=CLUSTERS_ID), type="default", delay_show=300),
                ],
            ),
            _section("Safety-flag rates by practice (funnel plot)", "funnel", _funnel_children()),
        ]
    )


def _funnel_children() -> list[Any]:
    return [
        html.P(
            [
                "Each point is a practice: the share of its patients with at least one active safety flag at the "
                "data cut (per 1,000), against its size. The lines are the 95% and 99.8% control limits around the "
                "overall rate for a practice of that size (normal approximation to the binomial; Spiegelhalter DJ. "
                "Funnel plots for comparing institutional performance. Stat Med 2005;24:1185-1202). Limits are "
                "wide for small practices, so an extreme rate from few patients is not mistaken for an outlier; a "
                "point outside the 99.8% limits is unlikely to be chance alone and worth a closer look, not a "
                "judgement of quality.",
            ],
            className="small text-secondary",
        ),
        dbc.Row(
            [
                dbc.Col(
                    [
                        dbc.Label("Rule group", html_for=FUNNEL_GROUP_ID, className="dx-legend"),
                        dbc.Select(
                            id=FUNNEL_GROUP_ID,
                            value=ALL,
                            options=[{"label": "All safety rules", "value": ALL}]
                            + [{"label": text, "value": key} for key, text in RULE_GROUPS.items()],
                        ),
                    ],
                    md=4,
                ),
                dbc.Col(
                    [
                        dbc.Label("Severity", html_for=FUNNEL_SEVERITY_ID, className="dx-legend"),
                        dbc.Select(
                            id=FUNNEL_SEVERITY_ID,
                            value=ALL,
                            options=[{"label": "Any severity", "value": ALL}]
                            + [{"label": s.capitalize(), "value": s} for s in SEVERITIES],
                        ),
                    ],
                    md=4,
                ),
            ],
            className="g-2",
        ),
        html.P(id=FUNNEL_SUMMARY_ID, className="dx-count mt-2", **{"aria-live": "polite"}),
        dcc.Loading(
            dcc.Graph(id=FUNNEL_ID, config=GRAPH_CONFIG, figure=message_figure("Loading…", 440)),
            type="default",
            delay_show=300,
        ),
        html.Div(id=FUNNEL_TABLE_ID),
    ]


# -- cached computations --------------------------------------------------------------------------------------------


def _cached(name: str, scope: Scope, compute: Any, *extra: Any) -> Any:
    context = app_context()
    return context.cached(
        (f"population-{name}", scope.cache_key(), *extra), compute, seconds=AGGREGATE_CACHE_SECONDS
    )


def _long_term_conditions() -> frozenset[str]:
    from data_access.worklist_build import ConditionGroups

    return ConditionGroups.from_knowledge().ltc


# -- tables ---------------------------------------------------------------------------------------------------------


def _cell(count: int, group: int) -> str:
    shown = shown_count(count, group)
    percent = shown_percent(count, group)
    if isinstance(shown, str):
        return shown
    return f"{shown:,} ({percent:.1f}%)" if percent is not None else f"{shown:,}"


def prevalence_view(rows: list[PrevalenceRow]) -> Any:
    if not rows:
        return html.P("No patients in view.", className="dx-muted")
    body = []
    for row in rows:
        size = shown_count(row.patients)
        body.append(
            html.Tr(
                [
                    html.Td(row.dimension if row.dimension != "All" else ""),
                    html.Th(row.group, scope="row"),
                    html.Td(f"{size:,}" if isinstance(size, int) else size, className="text-end"),
                    html.Td(_cell(row.multimorbidity, row.patients), className="text-end"),
                    html.Td(_cell(row.polypharmacy, row.patients), className="text-end"),
                    html.Td(_cell(row.complex_polypharmacy, row.patients), className="text-end"),
                ]
            )
        )
    head = html.Thead(
        html.Tr(
            [
                html.Th("Grouped by", scope="col"),
                html.Th("Group", scope="col"),
                html.Th("Patients", scope="col", className="text-end"),
                html.Th("2+ long-term conditions", scope="col", className="text-end"),
                html.Th("5+ medicines", scope="col", className="text-end"),
                html.Th("10+ medicines", scope="col", className="text-end"),
            ]
        )
    )
    return dbc.Table(
        [head, html.Tbody(body)], size="sm", striped=True, responsive=True, id="prevalence-table"
    )


def clusters_view(pairs: tuple[list[Cluster], int], triples: tuple[list[Cluster], int]) -> Any:
    columns = []
    for title, (clusters, eligible) in (("Pairs", pairs), ("Triples", triples)):
        rows = [
            html.Tr(
                [
                    html.Td(" + ".join(k.replace("_", " ") for k in cluster.conditions)),
                    html.Td(_cell(cluster.patients, eligible), className="text-end"),
                ]
            )
            for cluster in clusters
        ]
        denominator = shown_count(eligible)
        table = dbc.Table(
            [
                html.Thead(
                    html.Tr(
                        [
                            html.Th("Conditions", scope="col"),
                            html.Th(
                                f"Patients (% of {denominator:,})"
                                if isinstance(denominator, int)
                                else "Patients",
                                scope="col",
                                className="text-end",
                            ),
                        ]
                    )
                ),
                html.Tbody(rows or [html.Tr(html.Td("None", colSpan=2))]),
            ],
            size="sm",
            striped=True,
        )
        columns.append(dbc.Col([html.H3(title, className="h6"), table], lg=6))
    return dbc.Row(columns)


def funnel_table(rates: list[PracticeRate], p0: float) -> Any:
    rows = []
    for rate in sorted(rates, key=lambda r: r.name):
        shown = shown_count(rate.flagged, rate.patients)
        suppressed = isinstance(shown, str)
        per_1000 = "—" if suppressed else f"{1000 * rate.proportion:.0f}"
        position = "Not shown (small numbers)" if suppressed else FUNNEL_WORDS[funnel_position(rate, p0)]
        rows.append(
            html.Tr(
                [
                    html.Th(rate.name, scope="row"),
                    html.Td(f"{rate.patients:,}", className="text-end"),
                    html.Td(shown if suppressed else f"{shown:,}", className="text-end"),
                    html.Td(per_1000, className="text-end"),
                    html.Td(position),
                ]
            )
        )
    return dbc.Table(
        [
            html.Thead(
                html.Tr(
                    [
                        html.Th("Practice", scope="col"),
                        html.Th("Patients", scope="col", className="text-end"),
                        html.Th("With an active flag", scope="col", className="text-end"),
                        html.Th("Per 1,000", scope="col", className="text-end"),
                        html.Th("Position on the funnel", scope="col"),
                    ]
                )
            ),
            html.Tbody(rows),
        ],
        size="sm",
        striped=True,
        responsive=True,
        id="funnel-table",
    )


# -- callbacks ------------------------------------------------------------------------------------------------------


@callback(
    Output(HISTOGRAM_ID, "figure"),
    Output(HISTOGRAM_SUMMARY_ID, "children"),
    Input(OUTCOME_ID, "value"),
)
@requires(Permission.VIEW_AGGREGATE)
def update_histogram(outcome: Any) -> tuple[Any, Any]:
    outcome = outcome if outcome in OUTCOMES else OUTCOMES[0]
    scope = scope_for(current_user())
    try:
        risks = _cached("risks", scope, lambda: current_risks(app_context().engine, scope))
    except SQLAlchemyError as exc:
        log.error("risk distribution failed: %s", type(exc).__name__)
        return message_figure(LOAD_ERROR, 320), ""
    distribution = risk_distribution(risks, outcome)
    if not distribution.patients:
        return risk_histogram(distribution), "No current model risks (no model has scored this population)."
    patients = shown_count(distribution.patients)
    if isinstance(patients, str):
        return message_figure("Too few patients to show.", 320), ""
    summary = (
        f"{patients:,} patients with a current risk of {theme.OUTCOME_LABELS[outcome].lower()}; median "
        f"{100 * (distribution.median or 0):.1f}%, mean {100 * (distribution.mean or 0):.1f}%."
    )
    return risk_histogram(distribution), summary


@callback(
    Output(PREVALENCE_ID, "children"),
    Output(CLUSTERS_ID, "children"),
    Output(ERROR_ID, "children"),
    Input(OUTCOME_ID, "id"),
)
@requires(Permission.VIEW_AGGREGATE)
def update_tables(_trigger: Any) -> tuple[Any, Any, Any]:
    scope = scope_for(current_user())
    engine = app_context().engine
    try:
        rows = _cached("prevalence", scope, lambda: prevalence_table(engine, scope))
        pairs, triples = _cached("clusters", scope, lambda: _clusters(engine, scope))
    except SQLAlchemyError as exc:
        log.error("population tables failed: %s", type(exc).__name__)
        return None, None, dbc.Alert(LOAD_ERROR, color="danger")
    return prevalence_view(rows), clusters_view(pairs, triples), None


def _clusters(engine: Any, scope: Scope) -> tuple[tuple[list[Cluster], int], tuple[list[Cluster], int]]:
    sets = condition_sets(engine, scope)
    long_term = _long_term_conditions()
    return condition_clusters(sets, long_term, 2, CLUSTER_TOP), condition_clusters(
        sets, long_term, 3, CLUSTER_TOP
    )


@callback(
    Output(FUNNEL_ID, "figure"),
    Output(FUNNEL_TABLE_ID, "children"),
    Output(FUNNEL_SUMMARY_ID, "children"),
    Input(FUNNEL_GROUP_ID, "value"),
    Input(FUNNEL_SEVERITY_ID, "value"),
)
@requires(Permission.VIEW_AGGREGATE)
def update_funnel(group: Any, severity: Any) -> tuple[Any, Any, Any]:
    group = group if group in RULE_GROUPS else None
    severity = severity if severity in SEVERITIES else None
    scope = scope_for(current_user())
    rule_ids = rule_ids_in_groups(rule_catalogue(), [group]) if group else None

    def compute() -> list[PracticeRate]:
        return practice_flag_rates(
            app_context().engine,
            scope,
            data_cut(),
            rule_ids=rule_ids,
            severities=[severity] if severity else None,
        )

    try:
        rates = _cached("funnel", scope, compute, group, severity)
    except SQLAlchemyError as exc:
        log.error("funnel failed: %s", type(exc).__name__)
        return message_figure(LOAD_ERROR, 440), None, ""
    p0 = overall_proportion(rates)
    outside = [
        r for r in rates if funnel_position(r, p0) == "above 99.8%" and not is_small(r.flagged, r.patients)
    ]
    flagged, patients = sum(r.flagged for r in rates), sum(r.patients for r in rates)
    overall = "not shown (small numbers)" if is_small(flagged, patients) else f"{1000 * p0:.0f} per 1,000"
    summary = (
        f"{len(rates)} practice{'s' if len(rates) != 1 else ''}; overall {overall} patients with an active flag; "
        f"{len(outside)} above the 99.8% limit."
    )
    return funnel_plot(rates, p0), funnel_table(rates, p0), summary
