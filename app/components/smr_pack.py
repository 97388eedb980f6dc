"""The Structured Medication Review pre-visit pack: one printable page for the clinician, and a plain-English sheet
for the patient to take home.

``smr_pack(view)`` gathers the content once (pure, unit-tested); ``clinician_pack_html`` and ``patient_sheet_html``
render it as standalone HTML files (inline styles, an inline SVG sparkline, no scripts, every value escaped) for the
download, and ``pack_components`` renders the same content as Dash components for the on-screen, printable version.

The conversation prompts follow NHS England's SMR guidance (Network Contract DES, "Structured medication reviews and
medicines optimisation: guidance", 2020/21: shared decision-making, "what matters to the patient") and NICE NG5
"Medicines optimisation" (2015), recommendation 1.4 on medication review.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from html import escape

from dash import html

from app import theme
from data_access.queries.patient import PatientRecordView
from data_access.worklist_build import months_before

WHAT_MATTERS_PROMPTS = (
    "What matters most to you about your health and daily life at the moment?",
    "Which of your medicines do you feel help you, and which do you feel do not?",
    "Have you noticed any side effects, falls, dizziness, drowsiness or stomach problems?",
    "Are there any medicines you take differently from the label, or have stopped taking?",
    "Do you take anything bought from a pharmacy or shop, or herbal remedies?",
    "Is there anything you would like to stop, change or understand better?",
)
PATIENT_QUESTIONS = (
    "What is each of my medicines for, and do I still need it?",
    "Are there any side effects I should look out for?",
    "Is there anything I could stop or take less of?",
    "What should I do if I feel unwell or have a fall?",
)
DISCLAIMER = (
    "Decision support only. Safety flags apply published criteria to the coded record; risks are associations "
    "estimated by a statistical model and are not advice. Check the full record and talk with the patient "
    "before changing any medicine."
)
NOT_CODED_INDICATION = "not coded"


@dataclass(frozen=True)
class PackMedicine:
    name: str
    ingredients: str
    chapter: str
    plain_words: str
    started: str
    supply: str
    dose: str


@dataclass(frozen=True)
class PackFlag:
    rule_id: str
    title: str
    severity: str
    drugs: str
    since: str
    recommendation: str
    evidence: str
    url: str


@dataclass(frozen=True)
class PackRisk:
    outcome: str
    label: str
    current: str
    interval: str
    change: str
    band: str | None
    series: tuple[tuple[dt.date, float], ...]


@dataclass(frozen=True)
class SmrPack:
    patient_id: str
    summary: str
    as_of: str
    prepared_on: str
    model_version: str
    scores: tuple[tuple[str, str], ...]
    conditions: tuple[str, ...]
    medicines: tuple[PackMedicine, ...]
    flags: tuple[PackFlag, ...]
    risks: tuple[PackRisk, ...]
    drivers: tuple[str, ...]
    notes: tuple[str, ...]
    last_review: str
    patient_topics: tuple[str, ...]


def smr_pack(view: PatientRecordView, prepared_on: dt.date | None = None) -> SmrPack:
    """Everything the pack shows, formatted (UK dates, units) but not yet rendered."""
    header, scores = view.header, view.scores
    sex = {"F": "female", "M": "male"}.get(header.sex, "sex not recorded")
    medicines = tuple(
        PackMedicine(
            name=m.name,
            ingredients=m.drug,
            chapter=m.chapter_title,
            plain_words=m.plain_words,
            started=theme.format_date(m.start),
            supply="repeat" if m.repeat else "acute",
            dose=m.dose_text or "—",
        )
        for m in sorted(view.active_medications, key=lambda m: (m.chapter_title, m.name))
    )
    flags = tuple(
        PackFlag(
            rule_id=f.rule_id,
            title=f.title,
            severity=f.severity,
            drugs=", ".join(f.drugs) or "—",
            since=theme.format_date(f.start),
            recommendation=f.recommendation or "—",
            evidence=f.evidence or f.source or "—",
            url=f.evidence_url,
        )
        for f in view.active_flags
    )
    return SmrPack(
        patient_id=header.patient_id,
        summary=f"{header.age} years, {sex} · {header.practice_name}",
        as_of=theme.format_date(view.as_of),
        prepared_on=theme.format_date(prepared_on or dt.date.today()),
        model_version=view.trajectory.model_version or "no model",
        scores=(
            ("Electronic Frailty Index (eFI)", _efi_text(scores.efi, scores.efi_category)),
            ("Anticholinergic burden (ACB)", theme.format_number(scores.acb)),
            ("Cambridge Multimorbidity Score", theme.format_number(scores.cms, 2)),
            ("Active medicines", str(len({m.drug for m in view.active_medications}))),
            ("Long-term conditions", theme.format_number(scores.long_term_conditions)),
        ),
        conditions=tuple(sorted({c.term for c in view.active_conditions})),
        medicines=medicines,
        flags=flags,
        risks=_risks(view),
        drivers=tuple(
            f"{d.label} ({'raises' if d.contribution > 0 else 'lowers'} {theme.OUTCOME_LABELS.get(d.outcome, d.outcome).lower()} risk)"
            for d in view.drivers[:6]
        ),
        notes=tuple(view.data_notes),
        last_review=theme.format_date(view.last_review, "none recorded"),
        patient_topics=_patient_topics(view),
    )


def _efi_text(efi: float | None, category: str | None) -> str:
    if efi is None:
        return "not calculated"
    return f"{efi:.2f} ({category or 'unknown'} frailty)"


def _risks(view: PatientRecordView) -> tuple[PackRisk, ...]:
    out = []
    six_months_ago = months_before(view.as_of, 6)
    for outcome, label in theme.OUTCOME_LABELS.items():
        points = view.trajectory.points.get(outcome) or []
        if not points:
            continue
        latest = points[-1]
        earlier = [p for p in points if p.as_of <= six_months_ago]
        change = latest.risk - earlier[-1].risk if earlier else None
        out.append(
            PackRisk(
                outcome=outcome,
                label=label,
                current=theme.format_percent(latest.risk),
                interval=f"{theme.format_percent(latest.lower)}–{theme.format_percent(latest.upper)}",
                change=theme.format_points(change),
                band=theme.risk_band(latest.risk),
                series=tuple((p.as_of, p.risk) for p in points[-36:]),
            )
        )
    return tuple(out)


def _patient_topics(view: PatientRecordView) -> tuple[str, ...]:
    topics = ["How you are getting on with each of your medicines, and what matters to you."]
    for flag in view.active_flags:
        if flag.drugs:
            topics.append(
                f"Whether {_and_list(flag.drugs)} {'is' if len(flag.drugs) == 1 else 'are'} still the "
                "best choice for you."
            )
    if any(not m.repeat for m in view.active_medications):
        topics.append("Any short courses of medicine you may have finished.")
    if any("eGFR" in note for note in view.data_notes):
        topics.append("Whether you are due a blood test to check your kidneys.")
    return tuple(dict.fromkeys(topics))


def _and_list(items: tuple[str, ...]) -> str:
    items = tuple(items)
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


# ---------------------------------------------------------------- standalone HTML
_PACK_CSS = """
body{font-family:Arial,Helvetica,sans-serif;color:#212B32;margin:24px;font-size:12.5px;line-height:1.4}
h1{font-size:20px;margin:0 0 4px;color:#003087}h2{font-size:14.5px;margin:14px 0 6px;color:#003087;
border-bottom:2px solid #005EB8;padding-bottom:2px}table{border-collapse:collapse;width:100%}
th,td{border:1px solid #D8DDE0;padding:3px 6px;text-align:left;vertical-align:top}th{background:#F0F4F5}
.muted{color:#4C6272}.sev{font-weight:bold;text-transform:capitalize}.notes{border:1px solid #4C6272;height:130px}
.cols{display:flex;gap:16px}.cols>div{flex:1}.disclaimer{font-size:11px;color:#4C6272;margin-top:12px}
ul{margin:4px 0 4px 18px;padding:0}@page{size:A4;margin:12mm}@media print{body{margin:0}}
"""


def clinician_pack_html(pack: SmrPack) -> str:
    """The clinician's pre-visit pack as one standalone, printable HTML document."""
    e = escape
    scores = "".join(f"<tr><th scope='row'>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in pack.scores)
    meds = (
        "".join(
            f"<tr><td>{e(m.name)}</td><td>{e(m.ingredients)}</td><td>{e(m.chapter)}</td><td>{e(NOT_CODED_INDICATION)}</td>"
            f"<td>{e(m.started)}</td><td>{e(m.supply)}</td><td>{e(m.dose)}</td></tr>"
            for m in pack.medicines
        )
        or "<tr><td colspan='7'>No active medicines.</td></tr>"
    )
    flags = (
        "".join(
            f"<tr><td><b>{e(f.rule_id)}</b><br>{e(f.title)}</td><td class='sev'>{e(f.severity)}</td><td>{e(f.drugs)}</td>"
            f"<td>{e(f.since)}</td><td>{e(f.recommendation)}</td><td>{e(f.evidence)}"
            + (
                f"<br><a href='{e(f.url)}'>{e(f.url)}</a>"
                if f.url.startswith(("https://", "http://"))
                else ""
            )
            + "</td></tr>"
            for f in pack.flags
        )
        or "<tr><td colspan='6'>No active safety flags.</td></tr>"
    )
    risks = (
        "".join(
            f"<tr><td>{e(r.label)}</td><td><b>{e(r.current)}</b> <span class='muted'>({e(r.interval)})</span></td>"
            f"<td>{e(r.change)}</td><td>{sparkline_svg(r.series, theme.OUTCOME_COLOURS.get(r.outcome, '#212B32'))}</td></tr>"
            for r in pack.risks
        )
        or "<tr><td colspan='4'>No model prediction available.</td></tr>"
    )
    return f"""<!DOCTYPE html>
<html lang="en-GB"><head><meta charset="utf-8"><title>SMR pre-visit pack · {e(pack.patient_id)}</title>
<style>{_PACK_CSS}</style></head><body>
<h1>Structured Medication Review: pre-visit pack</h1>
<p><b>Patient {e(pack.patient_id)}</b> · {e(pack.summary)}<br>
<span class="muted">Record as of {e(pack.as_of)} · prepared {e(pack.prepared_on)} · model {e(pack.model_version)}
· last medication review {e(pack.last_review)}</span></p>
<div class="cols"><div><h2>Scores</h2><table>{scores}</table></div>
<div><h2>Long-term conditions</h2><ul>{"".join(f"<li>{e(c)}</li>" for c in pack.conditions) or "<li>None coded</li>"}</ul></div></div>
<h2>Active medicines</h2><table><thead><tr><th>Medicine</th><th>Ingredients</th><th>BNF chapter</th><th>Indication</th>
<th>Started</th><th>Supply</th><th>Dose</th></tr></thead><tbody>{meds}</tbody></table>
<h2>Safety flags to discuss</h2><table><thead><tr><th>Rule</th><th>Severity</th><th>Drugs</th><th>Since</th>
<th>Recommendation</th><th>Evidence</th></tr></thead><tbody>{flags}</tbody></table>
<h2>12-month risk (model estimate, with uncertainty)</h2><table><thead><tr><th>Outcome</th><th>Now</th>
<th>Change over 6 months</th><th>Last 3 years</th></tr></thead><tbody>{risks}</tbody></table>
<p><b>Main drivers of the model's estimate:</b> {e("; ".join(pack.drivers) or "none available")}</p>
<h2>What the model could not see</h2><ul>{"".join(f"<li>{e(n)}</li>" for n in pack.notes) or "<li>No data-quality concerns found.</li>"}</ul>
<h2>What matters to you: prompts for the conversation</h2><ul>{"".join(f"<li>{e(p)}</li>" for p in WHAT_MATTERS_PROMPTS)}</ul>
<h2>Notes</h2><div class="notes"></div>
<p class="disclaimer">{e(DISCLAIMER)}</p>
</body></html>
"""


def patient_sheet_html(pack: SmrPack) -> str:
    """A plain-English sheet for the patient: their medicines, what each is broadly for, what will be discussed."""
    e = escape
    meds = (
        "".join(
            f"<tr><td>{e(m.name)}</td><td>Works on {e(m.plain_words)}</td><td>{'Regular (repeat)' if m.supply == 'repeat' else 'Short course'}</td></tr>"
            for m in pack.medicines
        )
        or "<tr><td colspan='3'>No medicines are recorded as active.</td></tr>"
    )
    return f"""<!DOCTYPE html>
<html lang="en-GB"><head><meta charset="utf-8"><title>Your medicines review</title>
<style>{_PACK_CSS} body{{font-size:15px}} h1{{font-size:24px}} h2{{font-size:18px}}</style></head><body>
<h1>Your medicines review</h1>
<p>Your GP practice has invited you for a review of your medicines (a "structured medication review").
It is a chance to talk about how your medicines are working for you. Please bring all your medicines with you,
including anything you buy yourself.</p>
<h2>Your medicines</h2>
<p class="muted">Our records show these medicines as current on {e(pack.as_of)}. Tell us if anything is different.</p>
<table><thead><tr><th>Medicine</th><th>What it is for (in general)</th><th>How you get it</th></tr></thead>
<tbody>{meds}</tbody></table>
<h2>What we would like to talk about</h2><ul>{"".join(f"<li>{e(t)}</li>" for t in pack.patient_topics)}</ul>
<h2>Questions you might want to ask</h2><ul>{"".join(f"<li>{e(q)}</li>" for q in PATIENT_QUESTIONS)}</ul>
<h2>Your notes</h2><div class="notes"></div>
<p class="disclaimer">Do not stop or change any medicine before talking to your GP or pharmacist.
Reference: {e(pack.patient_id)}.</p>
</body></html>
"""


def sparkline_svg(
    series: tuple[tuple[dt.date, float], ...], colour: str, width: int = 160, height: int = 34
) -> str:
    """A small inline SVG line of risk over time (no script, prints on any browser)."""
    if len(series) < 2:
        return "<span class='muted'>—</span>"
    risks = [r for _, r in series]
    low, high = min(risks), max(risks)
    span = (high - low) or 1.0
    step = (width - 4) / (len(series) - 1)
    points = " ".join(
        f"{2 + i * step:.1f},{height - 3 - (r - low) / span * (height - 6):.1f}" for i, r in enumerate(risks)
    )
    label = f"Risk from {theme.format_percent(risks[0])} to {theme.format_percent(risks[-1])}"
    return (
        f"<svg width='{width}' height='{height}' role='img' aria-label='{escape(label)}'>"
        f"<polyline fill='none' stroke='{escape(colour)}' stroke-width='2' points='{points}'/></svg>"
    )


# ---------------------------------------------------------------- on-screen (printable) version
def pack_components(pack: SmrPack) -> html.Div:
    """The clinician pack as Dash components; print styles (assets) print only this section."""
    return html.Div(
        className="smr-pack",
        children=[
            html.H2("Structured Medication Review: pre-visit pack", className="h4"),
            html.P(
                [
                    html.Strong(f"Patient {pack.patient_id}"),
                    f" · {pack.summary}",
                    html.Br(),
                    html.Span(
                        f"Record as of {pack.as_of} · model {pack.model_version} · last medication review "
                        f"{pack.last_review}",
                        className="text-secondary",
                    ),
                ]
            ),
            html.Div(
                className="row",
                children=[
                    html.Div(
                        className="col-md-6",
                        children=[
                            html.H3("Scores", className="h6"),
                            html.Table(
                                className="table table-sm",
                                children=html.Tbody(
                                    [html.Tr([html.Th(k, scope="row"), html.Td(v)]) for k, v in pack.scores]
                                ),
                            ),
                        ],
                    ),
                    html.Div(
                        className="col-md-6",
                        children=[
                            html.H3("Long-term conditions", className="h6"),
                            html.Ul([html.Li(c) for c in pack.conditions] or [html.Li("None coded")]),
                        ],
                    ),
                ],
            ),
            html.H3("Active medicines", className="h6"),
            html.Table(
                className="table table-sm",
                children=[
                    html.Thead(
                        html.Tr(
                            [
                                html.Th(h)
                                for h in (
                                    "Medicine",
                                    "BNF chapter",
                                    "Indication",
                                    "Started",
                                    "Supply",
                                    "Dose",
                                )
                            ]
                        )
                    ),
                    html.Tbody(
                        [
                            html.Tr(
                                [
                                    html.Td(m.name),
                                    html.Td(m.chapter),
                                    html.Td(NOT_CODED_INDICATION),
                                    html.Td(m.started),
                                    html.Td(m.supply),
                                    html.Td(m.dose),
                                ]
                            )
                            for m in pack.medicines
                        ]
                        or [html.Tr(html.Td("No active medicines.", colSpan=6))]
                    ),
                ],
            ),
            html.H3("Safety flags to discuss", className="h6"),
            html.Ul(
                [
                    html.Li(
                        [
                            html.Strong(f"{f.rule_id} ({f.severity}): "),
                            f.title,
                            f". Drugs: {f.drugs}; since {f.since}. ",
                            html.Em(f.recommendation),
                            html.Br(),
                            html.Small(f.evidence, className="text-secondary"),
                        ]
                    )
                    for f in pack.flags
                ]
                or [html.Li("No active safety flags.")]
            ),
            html.H3("12-month risk (model estimate)", className="h6"),
            html.Ul(
                [
                    html.Li(f"{r.label}: {r.current} ({r.interval}); change over 6 months {r.change}")
                    for r in pack.risks
                ]
                or [html.Li("No model prediction available.")]
            ),
            html.P(["Main drivers: ", "; ".join(pack.drivers) or "none available"]),
            html.H3("What the model could not see", className="h6"),
            html.Ul([html.Li(n) for n in pack.notes] or [html.Li("No data-quality concerns found.")]),
            html.H3("What matters to you", className="h6"),
            html.Ul([html.Li(p) for p in WHAT_MATTERS_PROMPTS]),
            html.H3("Notes", className="h6"),
            html.Div(className="smr-notes-space"),
            html.P(DISCLAIMER, className="small text-secondary mt-2"),
        ],
    )
