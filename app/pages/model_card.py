"""The model card at ``/model``: intended use, data, version, discrimination and calibration per outcome, the
baseline comparison, subgroup performance and data freshness.

Every number comes from the trained model's metrics report and model card (``data_access.queries.model_report``
reads what ``models/`` wrote: the ``model_run`` row, else the files beside the checkpoint); nothing is typed in.
Reports follow Mitchell M et al. Model Cards for Model Reporting (FAT* 2019) and the TRIPOD+AI reporting items
(Collins GS et al. BMJ 2024;385:e078378) for discrimination, calibration and subgroup performance.
"""

from __future__ import annotations

import logging
from typing import Any

import dash
import dash_bootstrap_components as dbc
from dash import Input, Output, callback, dcc, html
from sqlalchemy.exc import SQLAlchemyError

from app import theme
from app.components.analysis import GRAPH_CONFIG, data_cut, uk_date
from app.components.analysis_figures import (
    MODEL_LABELS,
    calibration_figure,
    discrimination_figure,
    message_figure,
    roc_figure,
)
from app.runtime import app_context
from app.security import Permission, current_user, requires
from data_access.queries.model_report import ModelReport, format_interval, format_value, load_model_report

dash.register_page(__name__, path="/model", title="Model · DynAIRx", name="Model", order=50)

log = logging.getLogger(__name__)

OUTCOME_ID = "model-outcome"
AUROC_ID = "model-auroc"
AUPRC_ID = "model-auprc"
ROC_ID = "model-roc"
ROC_NOTE_ID = "model-roc-note"
CALIBRATION_ID = "model-calibration"
BASELINES_ID = "model-baselines"
SUBGROUPS_ID = "model-subgroups"
HOLDOUT_ID = "model-holdout"

NO_MODEL = (
    "No model has been trained on this database yet, so there is no model card to show. An administrator can train "
    "one with 'dynairx train' (the demo does this for you); until then the worklist shows safety flags and scores "
    "but no model risks."
)
SUBGROUP_TITLES = {
    "age_band": "Age band",
    "sex": "Sex",
    "deprivation": "Deprivation quintile (1 = most deprived)",
}
SUBGROUP_MODELS = ("graph_model", "gradient_boosting", "oracle")
FRESHNESS_WARNING_DAYS = 92


def _report() -> ModelReport | None:
    context = app_context()

    def compute() -> ModelReport | None:
        from data_access.settings import model_dir

        return load_model_report(context.engine, model_dir())

    return context.cached(("model-report",), compute)


def _outcome_label(outcome: str) -> str:
    return theme.OUTCOME_LABELS.get(outcome, outcome.replace("_", " ").capitalize())


def _definition_list(items: list[tuple[str, Any]]) -> html.Dl:
    children: list[Any] = []
    for term, value in items:
        children += [html.Dt(term, className="col-sm-4"), html.Dd(value, className="col-sm-8")]
    return html.Dl(children, className="row mb-0")


def freshness(report: ModelReport) -> html.Div:
    """When the model was trained, on data up to when, and how that compares with the data now loaded."""
    cut = data_cut()
    extract = report.training_extract
    items = [
        ("Model version", html.Code(report.version)),
        ("Status", "Active (used for the worklist's risks)" if report.active else "Not active"),
        ("Trained at", report.trained_at.strftime("%d %b %Y %H:%M") if report.trained_at else "unknown"),
        ("Training data up to", uk_date(extract) if extract else "unknown"),
        ("Data cut of this database", uk_date(cut)),
        (
            "Risks on the worklist as of",
            uk_date(report.predictions_as_of) if report.predictions_as_of else "none cached",
        ),
    ]
    children: list[Any] = [_definition_list(items)]
    if extract and (cut - extract).days > FRESHNESS_WARNING_DAYS:
        children.append(
            dbc.Alert(
                f"The data now loaded run to {uk_date(cut)}, {(cut - extract).days} days after the model's training "
                "data; consider retraining and re-checking its performance.",
                color="warning",
                className="mt-2 mb-0",
            )
        )
    return html.Div(children)


def intended_use(card: dict[str, Any]) -> list[Any]:
    use = card.get("intended_use", {})
    return [
        html.P(use.get("primary") or "Not stated in the model card."),
        html.H3("Out of scope", className="h6"),
        html.Ul([html.Li(item) for item in use.get("out_of_scope", [])] or [html.Li("Not stated.")]),
        html.H3("Limitations", className="h6"),
        html.Ul([html.Li(item) for item in card.get("limitations", [])] or [html.Li("Not stated.")]),
    ]


def data_summary(report: ModelReport) -> list[Any]:
    data = report.metrics.get("data") or report.card.get("data") or {}
    details = report.card.get("model_details", {})
    split = data.get("split_patients") or {}
    landmarks = data.get("labelled_landmarks") or {}
    sources = data.get("sources") or {}
    items = [
        ("Patients", f"{data['patients']:,}" if isinstance(data.get("patients"), int) else "unknown"),
        ("Sources", ", ".join(f"{k} ({v:,})" for k, v in sources.items()) or "unknown"),
        ("Landmarks (monthly)", " to ".join(data.get("landmarks", [])) or "unknown"),
        (
            "Split",
            f"by {data.get('split_method', '?')}: " + ", ".join(f"{k} {v:,}" for k, v in split.items()),
        ),
        ("Labelled landmarks", ", ".join(f"{k} {v:,}" for k, v in landmarks.items()) or "unknown"),
        ("Architecture", details.get("architecture", "not stated")),
        (
            "Parameters",
            f"{details['parameters']:,}" if isinstance(details.get("parameters"), int) else "unknown",
        ),
    ]
    children: list[Any] = [_definition_list(items)]
    if report.card.get("labelling"):
        children.append(html.P(report.card["labelling"], className="small text-secondary mt-2 mb-0"))
    if report.metrics.get("oracle_note"):
        children.append(html.P(report.metrics["oracle_note"], className="small text-secondary mb-0"))
    return children


def _section(title: str, section_id: str, children: list[Any]) -> html.Section:
    heading = f"{section_id}-heading"
    return html.Section(
        dbc.Card(dbc.CardBody([html.H2(title, className="h5", id=heading), *children])),
        className="mb-3",
        **{"aria-labelledby": heading},
    )


def _graph(graph_id: str, height: int) -> dcc.Loading:
    return dcc.Loading(
        dcc.Graph(id=graph_id, config=GRAPH_CONFIG, figure=message_figure("Loading…", height)),
        type="default",
        delay_show=300,
    )


@requires(Permission.VIEW_MODEL)
def layout(**_query: Any) -> html.Div:
    if current_user() is None:
        return html.Div(html.H1("Model", className="h3"))
    try:
        report = _report()
    except SQLAlchemyError as exc:
        log.error("model report failed: %s", type(exc).__name__)
        return html.Div(
            [
                html.H1("Model", className="h3"),
                dbc.Alert("The model card could not be loaded.", color="danger"),
            ]
        )
    if report is None or not report.outcomes:
        return html.Div(
            [html.H1("Model", className="h3"), dbc.Alert(NO_MODEL, color="info", id="model-missing")]
        )
    outcomes = report.outcomes
    return html.Div(
        [
            html.H1(f"Model card: {report.version}", className="h3"),
            html.P(
                "What the risk model is for, what it was trained on and how well it performed on patients it never "
                "saw (the test split), compared with simpler baselines. All figures are read from the model's own "
                "metrics report.",
                className="text-secondary",
            ),
            _section("Version and data freshness", "freshness", [freshness(report)]),
            _section("Intended use", "intended-use", intended_use(report.card)),
            _section("Data", "training-data", data_summary(report)),
            html.Div(
                dbc.Row(
                    dbc.Col(
                        [
                            dbc.Label("Outcome", html_for=OUTCOME_ID, className="dx-legend"),
                            dbc.Select(
                                id=OUTCOME_ID,
                                value=outcomes[0],
                                options=[{"label": _outcome_label(o), "value": o} for o in outcomes],
                            ),
                        ],
                        md=4,
                    )
                ),
                className="mb-3",
            ),
            _section(
                "Discrimination",
                "discrimination",
                [
                    dbc.Row(
                        [
                            dbc.Col([html.H3("AUROC", className="h6"), _graph(AUROC_ID, 280)], lg=6),
                            dbc.Col([html.H3("AUPRC", className="h6"), _graph(AUPRC_ID, 280)], lg=6),
                        ]
                    ),
                    html.H3("ROC curve", className="h6 mt-3"),
                    html.P(id=ROC_NOTE_ID, className="small text-secondary"),
                    _graph(ROC_ID, 360),
                ],
            ),
            _section(
                "Calibration",
                "calibration",
                [
                    html.P(
                        "Observed event rate against mean predicted risk, in bins of predicted risk on the test "
                        "split (marker size grows with the number of landmarks in the bin). Points on the diagonal "
                        "are well calibrated.",
                        className="small text-secondary",
                    ),
                    _graph(CALIBRATION_ID, 360),
                ],
            ),
            _section("Comparison with baselines", "baselines", [html.Div(id=BASELINES_ID)]),
            _section("Performance in subgroups", "subgroups", [html.Div(id=SUBGROUPS_ID)]),
            _section("Temporal hold-out", "holdout", [html.Div(id=HOLDOUT_ID)]),
        ]
    )


# -- tables ---------------------------------------------------------------------------------------------------------


def _model_order(names: list[str]) -> list[str]:
    return [m for m in MODEL_LABELS if m in names] + [m for m in names if m not in MODEL_LABELS]


def metrics_table(by_model: dict[str, Any], table_id: str) -> Any:
    if not by_model:
        return html.P("No results in the metrics report.", className="dx-muted")
    rows = []
    for model in _model_order(list(by_model)):
        m = by_model[model]
        rows.append(
            html.Tr(
                [
                    html.Th(MODEL_LABELS.get(model, model), scope="row"),
                    html.Td(format_interval(m.get("auroc"))),
                    html.Td(format_interval(m.get("auprc"))),
                    html.Td(format_value(m.get("brier"))),
                    html.Td(format_value(m.get("ece"))),
                    html.Td(f"{m['n']:,}" if isinstance(m.get("n"), int) else "n/a", className="text-end"),
                    html.Td(
                        f"{m['events']:,}" if isinstance(m.get("events"), int) else "n/a",
                        className="text-end",
                    ),
                ]
            )
        )
    head = html.Thead(
        html.Tr(
            [
                html.Th("Model", scope="col"),
                html.Th("AUROC (95% CI)", scope="col"),
                html.Th("AUPRC (95% CI)", scope="col"),
                html.Th("Brier", scope="col"),
                html.Th("ECE", scope="col"),
                html.Th("Landmarks", scope="col", className="text-end"),
                html.Th("Events", scope="col", className="text-end"),
            ]
        )
    )
    return dbc.Table([head, html.Tbody(rows)], size="sm", striped=True, responsive=True, id=table_id)


def comparison_text(comparison: dict[str, Any]) -> Any:
    if not comparison:
        return None
    parts = []
    if "beats_every_baseline" in comparison:
        parts.append(
            "The graph model's AUROC is above every baseline's."
            if comparison["beats_every_baseline"]
            else "The graph model's AUROC is not above every baseline's."
        )
    if "graph_minus_oracle" in comparison:
        gap = comparison["graph_minus_oracle"]
        within = comparison.get("within_0.02_of_oracle")
        # Reports carry the paired-bootstrap difference as [lower, point, upper]; older ones a single number.
        if isinstance(gap, list | tuple) and len(gap) == 3:
            text = f"{gap[1]:+.3f} (95% interval {gap[0]:+.3f} to {gap[2]:+.3f})"
        else:
            text = f"{float(gap):+.3f}"
        parts.append(
            f"AUROC difference from the oracle: {text} ({'within' if within else 'not within'} the 0.02 target)."
        )
    return html.P(" ".join(parts), className="mb-2")


def subgroup_tables(subgroups: dict[str, Any], outcome: str) -> Any:
    if not subgroups:
        return html.P("No subgroup results in the metrics report.", className="dx-muted")
    blocks = []
    for family, title in SUBGROUP_TITLES.items():
        groups = subgroups.get(family) or {}
        if not groups:
            continue
        models = [m for m in SUBGROUP_MODELS if any(m in (g.get(outcome) or {}) for g in groups.values())]
        rows = []
        for group, entry in groups.items():
            results = entry.get(outcome) or {}
            events = next(
                (r.get("events") for r in results.values() if isinstance(r.get("events"), int)), None
            )
            rows.append(
                html.Tr(
                    [
                        html.Th({"F": "Female", "M": "Male"}.get(group, group), scope="row"),
                        html.Td(
                            f"{entry['landmarks']:,}" if isinstance(entry.get("landmarks"), int) else "n/a",
                            className="text-end",
                        ),
                        html.Td(f"{events:,}" if events is not None else "n/a", className="text-end"),
                        *(html.Td(format_interval((results.get(m) or {}).get("auroc"))) for m in models),
                    ]
                )
            )
        head = html.Thead(
            html.Tr(
                [
                    html.Th(title, scope="col"),
                    html.Th("Landmarks", scope="col", className="text-end"),
                    html.Th("Events", scope="col", className="text-end"),
                    *(html.Th(f"AUROC: {MODEL_LABELS.get(m, m)}", scope="col") for m in models),
                ]
            )
        )
        blocks.append(dbc.Table([head, html.Tbody(rows)], size="sm", striped=True, responsive=True))
    return html.Div(
        [
            html.P(
                "AUROC with 95% intervals from a patient-level bootstrap. Small subgroups have wide intervals; a "
                "difference between groups matters only when the intervals barely overlap.",
                className="small text-secondary",
            ),
            *blocks,
        ]
    )


@callback(
    Output(AUROC_ID, "figure"),
    Output(AUPRC_ID, "figure"),
    Output(ROC_ID, "figure"),
    Output(ROC_NOTE_ID, "children"),
    Output(CALIBRATION_ID, "figure"),
    Output(BASELINES_ID, "children"),
    Output(SUBGROUPS_ID, "children"),
    Output(HOLDOUT_ID, "children"),
    Input(OUTCOME_ID, "value"),
)
@requires(Permission.VIEW_MODEL)
def show_outcome(outcome: Any) -> tuple[Any, ...]:
    try:
        report = _report()
    except SQLAlchemyError as exc:
        log.error("model report failed: %s", type(exc).__name__)
        report = None
    if report is None or outcome not in report.outcomes:
        blank = message_figure("Not available.", 260)
        return blank, blank, blank, None, blank, None, None, None
    metrics = report.metrics
    by_model = metrics["outcomes"][outcome]
    roc = (metrics.get("roc_curve") or {}).get(outcome) or {}
    if roc:
        roc_fig, roc_note = roc_figure(roc), "True against false positive rate on the test split."
    else:
        roc_fig = message_figure("This model's metrics report has no ROC curve points.", 260)
        roc_note = (
            "The metrics report of this model version holds AUROC with intervals (above) but not the points of the "
            "ROC curve; a report written with them (key 'roc_curve') is drawn here."
        )
    holdout = (metrics.get("temporal_holdout") or {}).get("outcomes", {}).get(outcome) or {}
    holdout_children = [
        html.P(
            "Later landmarks of the training and validation practices, which no fit saw: performance when time moves on.",
            className="small text-secondary",
        ),
        metrics_table(holdout, "model-holdout-table"),
    ]
    return (
        discrimination_figure(by_model, "auroc"),
        discrimination_figure(by_model, "auprc"),
        roc_fig,
        roc_note,
        calibration_figure((metrics.get("calibration_curve") or {}).get(outcome) or {}),
        html.Div(
            [
                comparison_text((metrics.get("comparison") or {}).get(outcome) or {}),
                metrics_table(by_model, "model-baselines-table"),
            ]
        ),
        subgroup_tables(metrics.get("subgroups") or {}, outcome),
        holdout_children,
    )
