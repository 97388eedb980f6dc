"""Help at ``/help``: what each score, flag and chart means, intended use and limitations, in plain language."""

from __future__ import annotations

import dash
from dash import html

from app import theme
from app.components.guides import guide_links
from app.security import Permission, requires
from data_access.queries.worklist import COHORTS, RISING_RISK_CHANGE
from data_access.worklist_build import (
    RECENT_DISCHARGE_DAYS,
    WHY_NOW_NEW_HIGH_FLAG,
    WHY_NOW_NEW_MODERATE_FLAG,
    WHY_NOW_PER_RISK_LEVEL,
    WHY_NOW_PER_RISK_RISE,
    WHY_NOW_RECENT_DISCHARGE,
    WHY_NOW_REVIEW_OVERDUE,
)

dash.register_page(__name__, path="/help", title="Help · DynAIRx", name="Help", order=90)


def _term(name: str, *definition: object) -> list:
    return [html.Dt(name), html.Dd(list(definition))]


def _band_text() -> str:
    (low_name, low_upper), (mid_name, mid_upper) = theme.RISK_BANDS
    return (
        f"Risks are shown in three display bands: {low_name} (under {low_upper:.0%}), {mid_name} "
        f"({low_upper:.0%} to under {mid_upper:.0%}) and high ({mid_upper:.0%} or more). The bands only help you scan "
        "the list; they are not clinical thresholds. Each band has a colour chosen to be distinguishable with colour "
        "blindness, and always a word or number beside it."
    )


@requires(Permission.VIEW_HELP)
def layout(**_query: object) -> html.Div:
    points_per_rise = WHY_NOW_PER_RISK_RISE * 0.05
    return html.Div(
        className="dx-help",
        children=[
            html.H1("Help", className="h3"),
            html.P(
                "DynAIRx helps GP practices and clinical pharmacists choose who to invite for a Structured Medication "
                "Review (SMR) and prepare for it. This page explains what you see and what it cannot tell you."
            ),
            html.H2("User guides and the tour", id="guides"),
            html.P(
                "Step-by-step guides with screenshots, one for each role. New here? 'Take the tour' at the top of "
                "every page shows the pages you can use."
            ),
            guide_links(),
            html.H2("Intended use and limitations", id="limitations"),
            html.Ul(
                [
                    html.Li(
                        "Decision support for qualified clinicians in UK primary care. It never replaces clinical "
                        "judgement, the full record or a conversation with the patient."
                    ),
                    html.Li(
                        "Safety flags apply published criteria (STOPP/START version 3, PINCER, interaction and "
                        "anticholinergic-burden lists) to the coded record. A flag means 'look at this', not "
                        "'this is wrong': the indication, dose, route and the patient's wishes are often not "
                        "coded."
                    ),
                    html.Li(
                        "Risks come from a statistical model trained on records. They are associations: they say "
                        "how often people with similar records had the outcome, not what will happen to this "
                        "person, and not what a change of medicine would cause."
                    ),
                    html.Li(
                        "The model only sees what is coded: missing tests, medicines bought over the counter, "
                        "hospital-only prescribing and short records all reduce what it can know. Each patient "
                        "page lists what the model could not see."
                    ),
                    html.Li("In the demo, every patient is synthetic (generated), not a real person."),
                ]
            ),
            html.H2("The worklist"),
            html.Dl(
                [
                    *_term(
                        "Why on the list",
                        "The rules that fired (newest and most severe first) and the medicines "
                        "or conditions that drive the model's risk for this patient.",
                    ),
                    *_term(
                        "Why now ordering",
                        "Puts first the patients whose picture changed since their last medication review. It is a "
                        "transparent ordering rule, not a validated score: each new high-severity flag since the last "
                        f"review adds {WHY_NOW_NEW_HIGH_FLAG:g}, each new moderate one {WHY_NOW_NEW_MODERATE_FLAG:g}; "
                        f"a rise in risk over 6 months adds {points_per_rise:g} for every 5 percentage points; an "
                        f"emergency admission in the last {RECENT_DISCHARGE_DAYS} days (after the last review) adds "
                        f"{WHY_NOW_RECENT_DISCHARGE:g}; no review in 12 months adds {WHY_NOW_REVIEW_OVERDUE:g}; and "
                        f"the highest current risk adds up to {WHY_NOW_PER_RISK_LEVEL:g}. A snoozed review scores 0.",
                    ),
                    *_term(
                        "Rising risk ▲",
                        f"12-month risk rose by {RISING_RISK_CHANGE * 100:.0f} percentage points "
                        "or more over the last 6 months.",
                    ),
                    *_term(
                        "SMR cohorts",
                        "The three groups the DynAIRx protocol targets (Walker LE et al., Journal of Multimorbidity "
                        "and Comorbidity 2022): ",
                        "; ".join(label.lower() for label in COHORTS.values()),
                        ".",
                    ),
                    *_term(
                        "Export",
                        "Downloads the filtered list as CSV. Every export is recorded in the audit log.",
                    ),
                ]
            ),
            html.H2("Scores"),
            html.Dl(
                [
                    *_term(
                        "eFI (electronic Frailty Index)",
                        "The proportion of 36 deficits (symptoms, signs, "
                        "conditions, disabilities and polypharmacy) recorded for the patient (Clegg A et al., Age "
                        "and Ageing 2016). Categories: fit (0 to 0.12), mild (over 0.12 to 0.24), moderate (over "
                        "0.24 to 0.36), severe (over 0.36).",
                    ),
                    *_term(
                        "ACB (Anticholinergic Cognitive Burden)",
                        "The sum of published anticholinergic scores "
                        "(1 to 3) of the active medicines (Boustani M et al. 2008, 2012 update). A total of 3 or "
                        "more is associated with cognitive impairment and falls.",
                    ),
                    *_term(
                        "CMS (Cambridge Multimorbidity Score)",
                        "A weighted count of 20 long-term conditions that "
                        "predicts GP consultations, unplanned admission and death (Payne RA et al., CMAJ 2020).",
                    ),
                    *_term(
                        "Medicines and long-term conditions",
                        "Distinct active medicines (by ingredient) and coded "
                        "long-term conditions on the record's as-of date.",
                    ),
                ]
            ),
            html.H2("Risk"),
            html.P(
                "Each risk is the model's estimate of the chance of the outcome in the next 12 months: emergency "
                "admission, fall or fracture, medication harm, and death. The shaded band is the model's "
                "uncertainty; the model version is shown beside every risk."
            ),
            html.P(_band_text()),
            html.H2("Safety flags"),
            html.P(
                "Each flag names its rule (for example STOPP-v3-B11), its source, what to consider and the "
                "published evidence. Severity (high, moderate, low) reflects the potential for harm described by "
                "the source, not how likely harm is for this patient. A flag period starts the first day the "
                "criterion held and ends the last day it held."
            ),
            html.H2("Charts on the patient page"),
            html.Dl(
                [
                    *_term(
                        "Risk trajectory",
                        "12-month risk over the whole record, per outcome, with its "
                        "uncertainty band. Markers along the bottom show when medicines started (▲) or stopped "
                        "(▼) and when events happened.",
                    ),
                    *_term(
                        "Polypharmacy interaction timeline",
                        "One lane per medicine, grouped by BNF chapter; each "
                        "bar is a prescription period (hatched bars were not on repeat). When a flagged "
                        "combination was active, a shaded band spans the medicines involved and a bar in the top "
                        "lane carries the rule, source and recommendation when you hover it. Events, conditions "
                        "and test results share the time axis.",
                    ),
                    *_term(
                        "What if?",
                        "Choose medicines to stop or switch: the chart shows the model's forward risk "
                        "for the current medicines beside the scenario. This is an association learned from data, "
                        "not the effect of the change and not advice.",
                    ),
                    *_term(
                        "SMR pre-visit pack",
                        "A one-page summary to print or download (HTML), and a plain-English "
                        "sheet for the patient with their medicines and what will be discussed. Downloads are "
                        "recorded in the audit log.",
                    ),
                ]
            ),
            html.H2("Dates and numbers"),
            html.P(
                "Dates are shown as day, month and year (for example 01 Dec 2026). Risks are percentages; changes "
                "in risk are percentage points. Laboratory values carry their units."
            ),
        ],
    )
