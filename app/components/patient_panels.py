"""The text panels of the patient page (header, scores, current risks, flags, drivers, data notes), as pure
functions of ``PatientRecordView`` returning Dash components."""

from __future__ import annotations

from dash import html

from app import theme
from data_access.queries.patient import Driver, FlagView, PatientRecordView
from data_access.worklist_build import months_before

FLAGS_SHOWN = 5  # active flags shown before "more" (they are sorted by severity, then recency)
DRIVERS_SHOWN = 3  # per outcome

SEX_WORDS = {"F": "Female", "M": "Male"}
SOCIAL_CARE_WORDS = {
    "care_home": "lives in a care home",
    "home_care": "receives home care",
    "lives_alone": "lives alone",
    "unpaid_carer": "has an unpaid carer",
}


def header_panel(view: PatientRecordView) -> html.Div:
    h = view.header
    facts = [
        f"{h.age} years",
        SEX_WORDS.get(h.sex, "Sex not recorded"),
        h.practice_name,
        f"registered {theme.format_date(h.registered_on)}",
        f"last medication review {theme.format_date(view.last_review, 'none recorded')}",
    ]
    facts += [SOCIAL_CARE_WORDS.get(kind, kind) for kind in h.social_care]
    return html.Div(
        [
            html.H1(f"Patient {h.patient_id}", className="h3 mb-1"),
            html.P(" · ".join(facts), className="mb-1"),
            html.P(
                f"Record as of {theme.format_date(view.as_of)} · model {view.trajectory.model_version or 'not available'}",
                className="text-secondary small mb-0",
            ),
        ]
    )


def _score_tile(label: str, value: str, detail: str = "", extra_class: str = "") -> html.Div:
    return html.Div(
        html.Div(
            [
                html.Div(label, className="dx-score-label"),
                html.Div(value, className="dx-score-value"),
                html.Div(detail, className="small text-secondary") if detail else None,
            ],
            className=f"dx-score {extra_class}".strip(),
        ),
        className="col-6 col-md-4 col-xl-2",
    )


def scores_panel(view: PatientRecordView) -> html.Div:
    s = view.scores
    category = s.efi_category or ""
    active = len({m.drug for m in view.active_medications})
    ltc = s.long_term_conditions
    return html.Div(
        [
            _score_tile(
                "eFI (frailty)",
                theme.format_number(s.efi, 2) if s.efi is not None else "—",
                f"{category.capitalize()} frailty" if category else "not calculated",
                f"dx-efi-{category}" if category else "",
            ),
            _score_tile("ACB score", theme.format_number(s.acb), "anticholinergic burden"),
            _score_tile("CMS", theme.format_number(s.cms, 2), "Cambridge Multimorbidity Score"),
            _score_tile("Medicines", str(active), "active on the as-of date"),
            _score_tile(
                "Long-term conditions",
                theme.format_number(ltc) if ltc is not None else "—",
                "coded, active" if ltc is not None else "not calculated",
            ),
            _score_tile(
                "Active flags",
                str(len(view.active_flags)),
                f"{sum(f.severity == 'high' for f in view.active_flags)} high severity",
            ),
        ],
        className="row g-2",
    )


def current_risk_panel(view: PatientRecordView) -> html.Div:
    """Current 12-month risk per outcome with its band (colour plus word), interval and 6-month change."""
    items = []
    six_months_ago = months_before(view.as_of, 6)
    for outcome, label in theme.OUTCOME_LABELS.items():
        points = view.trajectory.points.get(outcome) or []
        if not points:
            continue
        latest = points[-1]
        earlier = [p for p in points if p.as_of <= six_months_ago]
        change = latest.risk - earlier[-1].risk if earlier else None
        band = theme.risk_band(latest.risk) or "none"
        items.append(
            html.Li(
                [
                    html.Span(label, className="me-2"),
                    html.Span(
                        theme.format_percent(latest.risk, 1), className=f"dx-risk-chip dx-risk-{band} me-1"
                    ),
                    html.Span(f"{band} · ", className="small"),
                    html.Span(
                        f"range {theme.format_percent(latest.lower)}–{theme.format_percent(latest.upper)}; "
                        f"6 months: {theme.format_points(change)}",
                        className="small text-secondary",
                    ),
                ],
                className="mb-1",
            )
        )
    if not items:
        return html.P("No model prediction is available for this patient.", className="text-secondary")
    return html.Ul(items, className="list-unstyled mb-0")


def flags_panel(flags: list[FlagView]) -> html.Div:
    """Active flags with their rule, source, recommendation and citation; past flags folded away."""
    active = [f for f in flags if f.active]
    past = [f for f in flags if not f.active]
    children: list = [flag_card(f) for f in active] or [
        html.P("No active safety flags.", className="text-secondary")
    ]
    if past:
        children.append(
            html.Details(
                [
                    html.Summary(f"{len(past)} earlier flag period{'s' if len(past) != 1 else ''}"),
                    html.Div([flag_card(f) for f in past], className="mt-2"),
                ]
            )
        )
    return html.Div(children)


def flag_card(flag: FlagView) -> html.Div:
    period = (
        f"since {theme.format_date(flag.start)}"
        if flag.active
        else (f"{theme.format_date(flag.start)} to {theme.format_date(flag.end)}")
    )
    evidence = [html.Span(flag.evidence or flag.source)]
    if flag.evidence_url.startswith(("https://", "http://")):
        evidence += [
            " ",
            html.A("Source", href=flag.evidence_url, target="_blank", rel="noopener noreferrer"),
        ]
    return html.Div(
        [
            html.Div(
                [
                    html.Span(
                        flag.severity.capitalize(), className=f"dx-badge dx-severity-{flag.severity} me-2"
                    ),
                    html.Strong(flag.rule_id, className="me-2"),
                    html.Span(flag.title),
                ]
            ),
            html.Div(
                f"Drugs: {', '.join(flag.drugs) or '—'} · {period} · {flag.source or flag.family}",
                className="small text-secondary",
            ),
            html.Div([html.Strong("Consider: "), flag.recommendation or "—"], className="small mt-1"),
            html.Details(
                [
                    html.Summary("Why and evidence", className="small"),
                    html.P(flag.rationale, className="small mb-1") if flag.rationale else None,
                    html.P(evidence, className="small text-secondary mb-0"),
                ]
            ),
        ],
        className=f"dx-flag dx-flag-{flag.severity}",
    )


def drivers_panel(drivers: list[Driver]) -> html.Div:
    """The model's largest contributions per outcome, as words and a proportional bar (never colour alone)."""
    if not drivers:
        return html.P("No model explanation is available.", className="text-secondary")
    largest = max(abs(d.contribution) for d in drivers) or 1.0
    sections = []
    for outcome, label in theme.OUTCOME_LABELS.items():
        items = [d for d in drivers if d.outcome == outcome][:DRIVERS_SHOWN]
        if not items:
            continue
        sections.append(html.H3(label, className="h6 mt-2 mb-1"))
        sections.append(
            html.Ul(
                [
                    html.Li(
                        [
                            html.Span(f"{d.label} ", className="me-1"),
                            html.Span(
                                "raises risk" if d.contribution > 0 else "lowers risk",
                                className="small text-secondary me-2",
                            ),
                            html.Span(
                                className="dx-driver-bar",
                                style={
                                    "display": "inline-block",
                                    "height": "0.6em",
                                    "width": f"{max(4, abs(d.contribution) / largest * 120):.0f}px",
                                    "background": theme.RISK_COLOURS["high"]
                                    if d.contribution > 0
                                    else theme.RISK_COLOURS["low"],
                                },
                            ),
                        ]
                    )
                    for d in items
                ],
                className="list-unstyled mb-1",
            )
        )
    sections.append(
        html.P("Associations learned by the model, not causes.", className="small text-secondary mb-0")
    )
    return html.Div(sections)


def notes_panel(notes: list[str]) -> html.Div:
    if not notes:
        return html.P("No data-quality concerns found.", className="text-secondary mb-0")
    return html.Ul([html.Li(n) for n in notes], className="mb-0")
