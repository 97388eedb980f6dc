"""Everything the patient page shows, read in one call: ``patient_record(conn, scope, patient_id)``.

Each part is a small indexed query on one table for one patient (the indexes of ``data_access.schema`` lead with
``patient_id``), so the whole page is a dozen millisecond-scale lookups regardless of population size. Rule
metadata (title, source, recommendation, evidence) comes from the clinical knowledge base, not the database, so a
flag always shows the published criterion text of the rules version that is installed.

"As of" for a patient is the date of their latest cached prediction (the model's "now"), else the latest date in
their record: in a synthetic or historical extract that date is not today.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from functools import lru_cache

from sqlalchemy import Connection, Engine, func, or_, select

from data_access.queries.bnf import bnf_chapter, chapter_plain_words, chapter_title
from data_access.queries.connection import connected
from data_access.queries.scope import Scope
from data_access.queries.worklist import OUTCOMES
from data_access.schema import (
    Condition,
    Event,
    Explanation,
    Flag,
    Observation,
    Patient,
    Practice,
    Prediction,
    Prescription,
    Review,
    Score,
    SocialCare,
)
from data_access.worklist_build import current_model_version, factor_label

SHORT_RECORD_DAYS = 730
EGFR_WINDOW_DAYS = 365
LAB_UNITS = {
    "egfr": "mL/min/1.73m²",
    "creatinine": "µmol/L",
    "potassium": "mmol/L",
    "sodium": "mmol/L",
    "hba1c": "mmol/mol",
    "systolic_bp": "mmHg",
    "alt": "U/L",
    "haemoglobin": "g/L",
    "inr": "",
    "lithium": "mmol/L",
    "tsh": "mU/L",
    "bmi": "kg/m²",
}
LAB_LABELS = {
    "egfr": "eGFR",
    "creatinine": "Creatinine",
    "potassium": "Potassium",
    "sodium": "Sodium",
    "hba1c": "HbA1c",
    "systolic_bp": "Systolic BP",
    "alt": "ALT",
    "haemoglobin": "Haemoglobin",
    "inr": "INR",
    "lithium": "Lithium",
    "tsh": "TSH",
    "bmi": "BMI",
}
EVENT_LABELS = {
    "emergency_admission": "Emergency admission",
    "ae_attendance": "A&E attendance",
    "fall": "Fall",
    "fracture": "Fracture",
    "gi_bleed": "GI bleed",
    "aki": "Acute kidney injury",
    "hypoglycaemia": "Hypoglycaemia",
    "death": "Death",
    "medication_review": "Medication review",
}


@dataclass(frozen=True)
class PatientHeader:
    patient_id: str
    practice_id: str
    practice_name: str
    age: int
    sex: str
    registered_on: dt.date | None
    deregistered_on: dt.date | None
    died_on: dt.date | None
    social_care: tuple[str, ...]


@dataclass(frozen=True)
class RiskPoint:
    as_of: dt.date
    risk: float
    lower: float
    upper: float


@dataclass(frozen=True)
class Trajectory:
    """Cached 12-month risks over time for one model version (scenario 'current')."""

    model_version: str | None
    points: dict[str, list[RiskPoint]]

    def latest(self, outcome: str) -> RiskPoint | None:
        points = self.points.get(outcome) or []
        return points[-1] if points else None


@dataclass(frozen=True)
class MedicationPeriod:
    drug: str  # ingredient key(s) joined by ' + ', or the product name when unmatched
    name: str
    ingredients: tuple[str, ...]
    bnf_section: str
    chapter: str
    chapter_title: str
    plain_words: str
    start: dt.date
    stop: dt.date | None
    repeat: bool
    dose_text: str

    def active_on(self, day: dt.date) -> bool:
        return self.start <= day and (self.stop is None or self.stop >= day)


@dataclass(frozen=True)
class FlagView:
    rule_id: str
    severity: str
    start: dt.date
    end: dt.date | None
    drugs: tuple[str, ...]
    title: str
    family: str
    source: str
    rationale: str
    recommendation: str
    evidence: str
    evidence_url: str
    active: bool


@dataclass(frozen=True)
class ConditionView:
    key: str | None
    term: str
    onset: dt.date
    resolved: dt.date | None


@dataclass(frozen=True)
class LabView:
    type: str
    label: str
    value: float | None
    unit: str
    date: dt.date


@dataclass(frozen=True)
class EventView:
    type: str
    label: str
    date: dt.date


@dataclass(frozen=True)
class Driver:
    outcome: str
    factor: str
    label: str
    contribution: float


@dataclass(frozen=True)
class Scores:
    as_of: dt.date | None
    efi: float | None
    efi_category: str | None
    acb: float | None
    cms: float | None
    medicines: float | None
    long_term_conditions: float | None


@dataclass(frozen=True)
class PatientRecordView:
    header: PatientHeader
    as_of: dt.date
    scores: Scores
    trajectory: Trajectory
    medications: list[MedicationPeriod]
    flags: list[FlagView]
    conditions: list[ConditionView]
    labs: list[LabView]
    events: list[EventView]
    drivers: list[Driver]
    last_review: dt.date | None
    data_notes: list[str] = field(default_factory=list)

    @property
    def active_medications(self) -> list[MedicationPeriod]:
        return [m for m in self.medications if m.active_on(self.as_of)]

    @property
    def active_flags(self) -> list[FlagView]:
        return [f for f in self.flags if f.active]

    @property
    def active_conditions(self) -> list[ConditionView]:
        return [
            c
            for c in self.conditions
            if c.onset <= self.as_of and (c.resolved is None or c.resolved >= self.as_of)
        ]


class PatientNotFound(LookupError):
    """The patient does not exist or is outside the user's scope (the two are indistinguishable on purpose)."""


def patient_record(conn: Connection | Engine, scope: Scope, patient_id: str) -> PatientRecordView:
    """The whole patient page's data; raises ``PatientNotFound`` for an unknown or out-of-scope patient."""
    with connected(conn) as connection:
        patient = connection.execute(
            select(Patient.__table__, Practice.name.label("practice_name"))
            .join(Practice, Practice.id == Patient.practice_id, isouter=True)
            .where(Patient.id == patient_id, scope.clause(Patient.practice_id))
        ).first()
        if patient is None:
            raise PatientNotFound(patient_id)
        record = patient
        practice_name = patient.practice_name
        model_version = current_model_version(connection)
        trajectory = risk_trajectory(connection, patient_id, model_version)
        medications = medication_periods(connection, patient_id)
        conditions = condition_history(connection, patient_id)
        labs = lab_results(connection, patient_id)
        events = event_history(connection, patient_id)
        scores = latest_scores(connection, patient_id)
        as_of = _patient_as_of(trajectory, scores, medications, labs, events, record.died_on)
        header = PatientHeader(
            patient_id=record.id,
            practice_id=record.practice_id,
            practice_name=practice_name or record.practice_id,
            age=age_on(record.birth_year, record.birth_month, as_of),
            sex=record.sex,
            registered_on=record.registered_on,
            deregistered_on=record.deregistered_on,
            died_on=record.died_on,
            social_care=_social_care(connection, patient_id, as_of),
        )
        view = PatientRecordView(
            header=header,
            as_of=as_of,
            scores=scores,
            trajectory=trajectory,
            medications=medications,
            flags=flag_history(connection, patient_id, as_of),
            conditions=conditions,
            labs=labs,
            events=events,
            drivers=risk_drivers(connection, patient_id, model_version),
            last_review=_last_review(connection, patient_id, as_of, events),
        )
    return _with_notes(view)


def age_on(birth_year: int, birth_month: int, day: dt.date) -> int:
    """Completed years on ``day`` taking the birth date as the 1st of the birth month (TPP/OpenSAFELY)."""
    return day.year - birth_year - (1 if birth_month > day.month else 0)


def risk_trajectory(connection: Connection, patient_id: str, model_version: str | None) -> Trajectory:
    points: dict[str, list[RiskPoint]] = {o: [] for o in OUTCOMES}
    if model_version is None:
        return Trajectory(model_version=None, points=points)
    rows = connection.execute(
        select(Prediction.outcome, Prediction.as_of, Prediction.risk, Prediction.lower, Prediction.upper)
        .where(
            Prediction.patient_id == patient_id,
            Prediction.model_version == model_version,
            Prediction.scenario == "current",
            Prediction.horizon_months == 12,
        )
        .order_by(Prediction.outcome, Prediction.as_of)
    )
    for outcome, as_of, risk, lower, upper in rows:
        points.setdefault(outcome, []).append(RiskPoint(as_of, risk, lower, upper))
    return Trajectory(model_version=model_version, points=points)


def medication_periods(connection: Connection, patient_id: str) -> list[MedicationPeriod]:
    rows = connection.execute(
        select(
            Prescription.name,
            Prescription.drug_key,
            Prescription.ingredients,
            Prescription.bnf_section,
            Prescription.start,
            Prescription.stop,
            Prescription.repeat,
            Prescription.dose_text,
        )
        .where(Prescription.patient_id == patient_id)
        .order_by(Prescription.bnf_section, Prescription.start, Prescription.id)
    )
    out = []
    for name, drug_key, ingredients, section, start, stop, repeat, dose in rows:
        keys = tuple(k for k in (ingredients or "").split(";") if k) or ((drug_key,) if drug_key else ())
        out.append(
            MedicationPeriod(
                drug=" + ".join(keys) if keys else name,
                name=name,
                ingredients=keys,
                bnf_section=section or "",
                chapter=bnf_chapter(section),
                chapter_title=chapter_title(section),
                plain_words=chapter_plain_words(section),
                start=start,
                stop=stop,
                repeat=bool(repeat),
                dose_text=dose or "",
            )
        )
    return out


def condition_history(connection: Connection, patient_id: str) -> list[ConditionView]:
    rows = connection.execute(
        select(Condition.condition_key, Condition.term, Condition.onset, Condition.resolved)
        .where(Condition.patient_id == patient_id)
        .order_by(Condition.onset, Condition.id)
    )
    return [ConditionView(key, term, onset, resolved) for key, term, onset, resolved in rows]


def lab_results(connection: Connection, patient_id: str) -> list[LabView]:
    rows = connection.execute(
        select(Observation.type, Observation.value, Observation.unit, Observation.date)
        .where(Observation.patient_id == patient_id)
        .order_by(Observation.type, Observation.date)
    )
    return [
        LabView(kind, LAB_LABELS.get(kind, kind), value, unit or LAB_UNITS.get(kind, ""), on)
        for kind, value, unit, on in rows
    ]


def event_history(connection: Connection, patient_id: str) -> list[EventView]:
    rows = connection.execute(
        select(Event.type, Event.date).where(Event.patient_id == patient_id).order_by(Event.date, Event.id)
    )
    return [
        EventView(kind, EVENT_LABELS.get(kind, kind.replace("_", " ").capitalize()), on) for kind, on in rows
    ]


def flag_history(connection: Connection, patient_id: str, as_of: dt.date) -> list[FlagView]:
    """Every flag period, active ones first (by severity), each with its rule's published metadata."""
    rows = connection.execute(
        select(Flag.rule_id, Flag.severity, Flag.start, Flag.end, Flag.drugs)
        .where(Flag.patient_id == patient_id)
        .order_by(Flag.start, Flag.id)
    )
    catalogue = rule_catalogue()
    flags = []
    for rule_id, severity, start, end, drugs in rows:
        meta = catalogue.get(rule_id, {})
        flags.append(
            FlagView(
                rule_id=rule_id,
                severity=severity,
                start=start,
                end=end,
                drugs=tuple(d for d in (drugs or "").split(";") if d),
                title=meta.get("title", "Rule not in the installed rule set"),
                family=meta.get("family", rule_id.split("-", 1)[0]),
                source=meta.get("source", ""),
                rationale=meta.get("rationale", ""),
                recommendation=meta.get("recommendation", ""),
                evidence=meta.get("evidence", ""),
                evidence_url=meta.get("url", ""),
                active=start <= as_of and (end is None or end >= as_of),
            )
        )
    severity_rank = {"high": 0, "moderate": 1, "low": 2}
    return sorted(flags, key=lambda f: (not f.active, severity_rank.get(f.severity, 3), -f.start.toordinal()))


@lru_cache(maxsize=1)
def rule_catalogue() -> dict[str, dict[str, str]]:
    """Rule id → title, family, source, rationale, recommendation, evidence and the source's URL."""
    from clinical.rules import load_rules

    book = load_rules()
    urls = {source.file: source.url for source in book.sources}
    return {
        rule.id: {
            "title": rule.title,
            "family": rule.family,
            "source": rule.source,
            "rationale": rule.rationale,
            "recommendation": rule.recommendation,
            "evidence": rule.evidence,
            "url": urls.get(rule.file, "") or "",
        }
        for rule in book.rules
    }


def latest_scores(connection: Connection, patient_id: str, as_of: dt.date | None = None) -> Scores:
    """The latest value of each score kind (on or before ``as_of`` when given)."""
    query = select(Score.kind, Score.value, Score.as_of).where(Score.patient_id == patient_id)
    if as_of is not None:
        query = query.where(Score.as_of <= as_of)
    rows = connection.execute(query.order_by(Score.kind, Score.as_of))
    latest: dict[str, tuple[float, dt.date]] = {}
    for kind, value, on in rows:
        latest[kind] = (value, on)
    efi = latest.get("efi", (None, None))[0]
    from clinical.timeline import efi_category

    dates = [on for _, on in latest.values()]
    return Scores(
        as_of=max(dates) if dates else None,
        efi=efi,
        efi_category=efi_category(efi) if efi is not None else None,
        acb=latest.get("acb", (None, None))[0],
        cms=latest.get("cms", (None, None))[0],
        medicines=latest.get("medicines", (None, None))[0],
        long_term_conditions=latest.get("long_term_conditions", (None, None))[0],
    )


def risk_drivers(
    connection: Connection, patient_id: str, model_version: str | None, per_outcome: int = 5
) -> list[Driver]:
    """The factors with the largest contributions (either sign) at the latest explained date, per outcome."""
    if model_version is None:
        return []
    latest = connection.execute(
        select(func.max(Explanation.as_of)).where(
            Explanation.patient_id == patient_id, Explanation.model_version == model_version
        )
    ).scalar_one_or_none()
    if latest is None:
        return []
    rows = connection.execute(
        select(Explanation.outcome, Explanation.factor, Explanation.contribution).where(
            Explanation.patient_id == patient_id,
            Explanation.model_version == model_version,
            Explanation.as_of == latest,
        )
    )
    titles = {rule_id: meta["title"] for rule_id, meta in rule_catalogue().items()}
    by_outcome: dict[str, list[Driver]] = {}
    for outcome, factor, contribution in rows:
        label = factor_label(factor, titles)
        by_outcome.setdefault(outcome, []).append(Driver(outcome, factor, label, contribution))
    out: list[Driver] = []
    for outcome in sorted(by_outcome, key=lambda o: OUTCOMES.index(o) if o in OUTCOMES else 99):
        ranked = sorted(by_outcome[outcome], key=lambda d: (-abs(d.contribution), d.factor))
        out.extend(ranked[:per_outcome])
    return out


def _social_care(connection: Connection, patient_id: str, as_of: dt.date) -> tuple[str, ...]:
    rows = connection.execute(
        select(SocialCare.kind).where(
            SocialCare.patient_id == patient_id,
            SocialCare.start <= as_of,
            or_(SocialCare.end.is_(None), SocialCare.end >= as_of),
        )
    )
    return tuple(sorted({kind for (kind,) in rows}))


def _last_review(
    connection: Connection, patient_id: str, as_of: dt.date, events: list[EventView]
) -> dt.date | None:
    dates = [e.date for e in events if e.type == "medication_review" and e.date <= as_of]
    reviewed = connection.execute(
        select(func.max(Review.at)).where(Review.patient_id == patient_id, Review.status == "reviewed")
    ).scalar_one_or_none()
    if reviewed is not None:
        dates.append(reviewed.date())
    return max(dates) if dates else None


def _patient_as_of(
    trajectory: Trajectory,
    scores: Scores,
    medications: list[MedicationPeriod],
    labs: list[LabView],
    events: list[EventView],
    died_on: dt.date | None,
) -> dt.date:
    derived = [points[-1].as_of for points in trajectory.points.values() if points]
    if scores.as_of is not None:
        derived.append(scores.as_of)
    if derived:
        return max(derived)
    dated = [m.start for m in medications] + [m.stop for m in medications if m.stop] + [x.date for x in labs]
    dated += [e.date for e in events]
    today = dt.date.today()
    candidates = [d for d in dated if d <= today]
    if died_on is not None:
        candidates.append(died_on)
    return max(candidates) if candidates else today


def _with_notes(view: PatientRecordView) -> PatientRecordView:
    return PatientRecordView(**{**view.__dict__, "data_notes": data_quality_notes(view)})


def data_quality_notes(view: PatientRecordView) -> list[str]:
    """What the model and the rules could not see: plain sentences, most important first."""
    notes: list[str] = []
    as_of = view.as_of
    if not any(view.trajectory.points.values()):
        notes.append("No model prediction is cached for this patient, so no risk trajectory can be shown.")
    recent_renal = [
        lab
        for lab in view.labs
        if lab.type in ("egfr", "creatinine") and (as_of - lab.date).days <= EGFR_WINDOW_DAYS
    ]
    if not recent_renal:
        notes.append(
            "No eGFR or creatinine in the last 12 months: kidney-function rules (dose and contraindication checks) "
            "could not be applied."
        )
    active = view.active_medications
    acute = sorted({m.name for m in active if not m.repeat})
    if acute:
        notes.append(
            f"{len(acute)} active medicine{'s are' if len(acute) > 1 else ' is'} not on repeat ({', '.join(acute[:4])}"
            f"{', …' if len(acute) > 4 else ''}): acute issues may have stopped without a recorded end date."
        )
    unmatched = sorted({m.name for m in view.medications if not m.ingredients})
    if unmatched:
        notes.append(
            f"{len(unmatched)} prescription{'s' if len(unmatched) > 1 else ''} could not be matched to a medicine "
            f"({', '.join(unmatched[:3])}{', …' if len(unmatched) > 3 else ''}): no rule or model saw "
            f"{'them' if len(unmatched) > 1 else 'it'}."
        )
    uncoded = sorted({c.term for c in view.conditions if not c.key})
    if uncoded:
        notes.append(
            f"{len(uncoded)} recorded condition{'s are' if len(uncoded) > 1 else ' is'} not in the DynAIRx "
            f"vocabulary ({', '.join(uncoded[:3])}{', …' if len(uncoded) > 3 else ''}) and did not count."
        )
    registered = view.header.registered_on
    if registered is not None and (as_of - registered).days < SHORT_RECORD_DAYS:
        months = max(0, (as_of.year - registered.year) * 12 + as_of.month - registered.month)
        notes.append(
            f"Short record: registered {months} month{'s' if months != 1 else ''} before "
            f"{as_of.strftime('%d %b %Y')}; earlier history may be missing."
        )
    if view.header.died_on is not None:
        notes.append(f"Died on {view.header.died_on.strftime('%d %b %Y')}.")
    elif view.header.deregistered_on is not None and view.header.deregistered_on <= as_of:
        notes.append(f"Left the practice on {view.header.deregistered_on.strftime('%d %b %Y')}.")
    return notes
