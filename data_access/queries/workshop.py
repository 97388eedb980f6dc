"""Co-design workshop mode: the synthetic-data gate, persona patients chosen by rule, and participants' feedback.

Why a gate: the workshop shows a whole (pseudonymous) record to clinicians *and patients* on a projector, with
identifiers hidden but dates, medicines and conditions visible. That is only acceptable when nobody in the database
is a real person, so the workshop refuses to start if any patient's ``source`` is not the synthetic generator's.

Why personas by rule: presenters need the same few stories every time (an older person living with frailty and many
medicines; a middle-aged person with mental and physical health conditions; someone with a new high-severity safety
flag whose risk is rising), and hand-picking patient ids does not survive a rebuilt database. Each persona is a list
of tiers of criteria, strictest first (see ``PERSONAS`` and ``choose_personas``):

1. tiers are tried level by level: every persona's first tier (in persona order) before any persona's second, so
   a strict match for one persona is never used up by another persona's relaxed tier;
2. within a tier, patients with cached model predictions come first (the risk views need them);
3. then the patient nearest the persona's target: |age − target age| plus, where the persona sets one,
   |medicines − target medicines|;
4. ties go to the smallest patient id, so the choice is deterministic for a given database;
5. a patient is used for one persona at most; a persona that no tier finds anyone for is left out.

Feedback is one row per rating in ``feedback`` (schema: at, session_id, participant_code, view, variant, rating,
comment). Everything a participant types is validated here (``validate_feedback``) with messages written for them;
comments are stored as typed and are only ever shown as text.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache

from sqlalchemy import Connection, Engine, func, insert, or_, select, true

from data_access.queries.audit import utc_now
from data_access.queries.connection import connected
from data_access.queries.csv_safety import spreadsheet_safe
from data_access.queries.scope import Scope
from data_access.schema import Feedback, Patient, Score, WorklistEntry

# ---------------------------------------------------------------- what can be rated


@dataclass(frozen=True)
class Variant:
    key: str
    label: str
    description: str


@dataclass(frozen=True)
class WorkshopView:
    """One thing the workshop shows, with the alternative ways of drawing the same data."""

    key: str
    label: str
    question: str
    variants: tuple[Variant, ...]

    def variant(self, key: str) -> Variant | None:
        return next((v for v in self.variants if v.key == key), None)


# The alternatives DynAIRx's visualisation work compared: risk as a line with an uncertainty band, as a fan chart
# and as icon arrays ("12 in 100 people like this"); medicines over time as a Gantt chart, a drug-by-month heat
# map and a table.
WORKSHOP_VIEWS: tuple[WorkshopView, ...] = (
    WorkshopView(
        key="risk",
        label="Risk over time",
        question="How well does this picture show how this person's risk is changing?",
        variants=(
            Variant(
                "line_band",
                "Line with band",
                "12-month risk as a line, with the model's uncertainty as a band.",
            ),
            Variant(
                "fan", "Fan chart", "Shaded bands: the darker the shade, the more likely the risk lies there."
            ),
            Variant("icons", "Icon array", "Out of 100 people like this, how many would have each outcome."),
        ),
    ),
    WorkshopView(
        key="timeline",
        label="Medicines over time",
        question="How well does this picture show which medicines were taken together, and when?",
        variants=(
            Variant("gantt", "Gantt chart", "One bar per prescription, with safety flags and events."),
            Variant("heatmap", "Heat map by month", "One row per medicine, one column per month."),
            Variant("table", "Table", "One row per medicine: when it started and stopped, and any flags."),
        ),
    ),
)


def workshop_view(key: str | None) -> WorkshopView | None:
    return next((v for v in WORKSHOP_VIEWS if v.key == key), None)


# ---------------------------------------------------------------- the synthetic-data gate


@dataclass(frozen=True)
class WorkshopReadiness:
    ready: bool
    message: str
    patients: int
    non_synthetic: int


def synthetic_source() -> str:
    """The ``patient.source`` the synthetic generator writes (its one home is the generator's frames module)."""
    from data_access.sources.synthetic.frames import SOURCE

    return SOURCE


def workshop_readiness(conn: Connection | Engine) -> WorkshopReadiness:
    """Whether the workshop may start: the database must hold patients, every one of them synthetic.

    Deliberately not limited to the user's scope: one imported record anywhere means real data are present.
    A missing source counts as imported (fail closed).
    """
    source = synthetic_source()
    with connected(conn) as connection:
        patients = connection.execute(select(func.count()).select_from(Patient)).scalar_one()
        imported = connection.execute(
            select(func.count())
            .select_from(Patient)
            .where(or_(Patient.source.is_(None), Patient.source != source))
        ).scalar_one()
    if imported:
        return WorkshopReadiness(
            False,
            f"Workshop mode runs on synthetic data only, and this database holds {imported:,} imported patient "
            f"record{'s' if imported != 1 else ''}, so the workshop will not start. Run the workshop on a demo "
            "database built with 'dynairx demo'.",
            patients,
            imported,
        )
    if not patients:
        return WorkshopReadiness(
            False,
            "There are no patients in this database yet. Build the synthetic demo ('dynairx demo') first.",
            0,
            0,
        )
    return WorkshopReadiness(True, "", patients, 0)


# ---------------------------------------------------------------- personas


@dataclass(frozen=True)
class Criteria:
    """One tier of a persona rule. ``conditions``: every group must be matched by at least one of its keys."""

    min_age: int = 0
    max_age: int = 200
    min_medicines: int = 0
    efi_categories: frozenset[str] | None = None
    conditions: tuple[frozenset[str], ...] = ()
    mental_and_physical: bool = False
    min_high_flags: int = 0
    min_flags: int = 0
    min_risk_rise: float | None = None

    def matches(self, candidate: Candidate) -> bool:
        if not self.min_age <= candidate.age <= self.max_age or candidate.medicines < self.min_medicines:
            return False
        if self.efi_categories is not None and candidate.efi_category not in self.efi_categories:
            return False
        if any(not (group & candidate.conditions) for group in self.conditions):
            return False
        if self.mental_and_physical and not candidate.mental_and_physical:
            return False
        if candidate.flags_high < self.min_high_flags or candidate.flags_total < self.min_flags:
            return False
        if self.min_risk_rise is not None and (candidate.risk_change_6m or 0.0) < self.min_risk_rise:
            return False
        return True


@dataclass(frozen=True)
class PersonaRule:
    key: str
    title: str
    story: str
    target_age: int
    tiers: tuple[Criteria, ...]
    target_medicines: int | None = None

    def distance(self, candidate: Candidate) -> int:
        distance = abs(candidate.age - self.target_age)
        if self.target_medicines is not None:
            distance += abs(candidate.medicines - self.target_medicines)
        return distance


FRAIL = frozenset({"moderate", "severe"})
SOME_FRAILTY = frozenset({"mild", "moderate", "severe"})
DIABETES = frozenset({"type2_diabetes", "type1_diabetes", "diabetes"})

PERSONAS: tuple[PersonaRule, ...] = (
    PersonaRule(
        key="frailty-many-medicines",
        title="Older age, frailty and many medicines",
        story=(
            "In their eighties, living with moderate or severe frailty and taking a dozen medicines: the group "
            "Structured Medication Reviews were first prioritised for."
        ),
        target_age=84,
        target_medicines=12,
        tiers=(
            Criteria(min_age=80, max_age=89, min_medicines=10, efi_categories=FRAIL),
            Criteria(min_age=75, min_medicines=8, efi_categories=SOME_FRAILTY),
            Criteria(min_age=75, min_medicines=8),
            Criteria(min_age=70, min_medicines=5),
        ),
    ),
    PersonaRule(
        key="mental-physical-pain",
        title="Depression, diabetes and chronic pain in mid-life",
        story=(
            "In their fifties, living with depression, diabetes and chronic pain: mental and physical health "
            "conditions together, where medicines for one can affect the others."
        ),
        target_age=58,
        tiers=(
            Criteria(
                min_age=50,
                max_age=65,
                conditions=(frozenset({"depression"}), DIABETES, frozenset({"chronic_pain"})),
            ),
            Criteria(
                min_age=45,
                max_age=70,
                conditions=(frozenset({"depression"}), DIABETES | {"chronic_pain"}),
            ),
            Criteria(min_age=40, max_age=75, mental_and_physical=True),
            Criteria(min_age=40, max_age=75, conditions=(frozenset({"depression", "anxiety"}),)),
        ),
    ),
    PersonaRule(
        key="new-flag-rising-risk",
        title="A new safety flag and rising risk",
        story=(
            "In their seventies, with a high-severity safety flag now active and a 12-month risk that has risen "
            "over the last six months: someone whose picture has changed since their last review."
        ),
        target_age=76,
        tiers=(
            Criteria(min_age=65, max_age=85, min_high_flags=1, min_risk_rise=0.05),
            Criteria(min_age=60, min_high_flags=1),
            Criteria(min_age=50, min_flags=1),
        ),
    ),
)


@dataclass(frozen=True)
class Candidate:
    """What the persona rules read about one patient (from ``worklist_entry`` and the latest eFI score)."""

    patient_id: str
    age: int
    sex: str
    medicines: int
    conditions: frozenset[str]
    efi: float | None
    efi_category: str | None
    mental_and_physical: bool
    flags_high: int
    flags_total: int
    risk_change_6m: float | None
    has_prediction: bool


@dataclass(frozen=True)
class Persona:
    """A persona and the patient chosen for it. ``patient_id`` stays on the server: pages send only ``key``."""

    key: str
    number: int
    title: str
    story: str
    tier: int
    patient_id: str
    age: int
    sex: str
    medicines: int
    efi_category: str | None
    conditions: tuple[str, ...]

    def summary(self) -> str:
        """A one-line description with no identifier: 'Woman aged 84 · moderate frailty · 12 medicines'."""
        person = {"F": "Woman", "M": "Man"}.get(self.sex, "Person")
        parts = [f"{person} aged {self.age}"]
        if self.efi_category:
            parts.append(f"{self.efi_category} frailty (eFI)" if self.efi_category != "fit" else "fit (eFI)")
        parts.append(f"{self.medicines} medicine{'s' if self.medicines != 1 else ''}")
        return " · ".join(parts)


def persona_candidates(conn: Connection | Engine, scope: Scope) -> list[Candidate]:
    """Every worklist patient in ``scope`` with what the persona rules need, in patient-id order.

    Frailty comes from the latest eFI score in ``score`` (any date), so a worklist built at an earlier as-of date
    than the scores still yields a category.
    """
    from clinical.timeline import efi_category

    latest_efi_date = (
        select(Score.patient_id, func.max(Score.as_of).label("as_of"))
        .where(Score.kind == "efi")
        .group_by(Score.patient_id)
        .subquery()
    )
    latest_efi = (
        select(Score.patient_id, Score.value)
        .join(
            latest_efi_date,
            (latest_efi_date.c.patient_id == Score.patient_id) & (latest_efi_date.c.as_of == Score.as_of),
        )
        .where(Score.kind == "efi")
        .subquery()
    )
    query = (
        select(
            WorklistEntry.patient_id,
            WorklistEntry.age,
            WorklistEntry.sex,
            WorklistEntry.medicines_count,
            WorklistEntry.condition_keys,
            WorklistEntry.mental_and_physical,
            WorklistEntry.flags_high,
            WorklistEntry.flags_moderate,
            WorklistEntry.flags_low,
            WorklistEntry.risk_change_6m,
            WorklistEntry.risk_emergency_admission,
            WorklistEntry.efi,
            latest_efi.c.value.label("latest_efi"),
        )
        .join(latest_efi, latest_efi.c.patient_id == WorklistEntry.patient_id, isouter=True)
        .where(scope.clause(WorklistEntry.practice_id))
        .order_by(WorklistEntry.patient_id)
    )
    out = []
    with connected(conn) as connection:
        for row in connection.execute(query):
            efi = row.latest_efi if row.latest_efi is not None else row.efi
            out.append(
                Candidate(
                    patient_id=row.patient_id,
                    age=int(row.age),
                    sex=row.sex,
                    medicines=int(row.medicines_count or 0),
                    conditions=frozenset(k for k in (row.condition_keys or "").split(";") if k),
                    efi=efi,
                    efi_category=efi_category(efi) if efi is not None else None,
                    mental_and_physical=bool(row.mental_and_physical),
                    flags_high=int(row.flags_high or 0),
                    flags_total=int((row.flags_high or 0) + (row.flags_moderate or 0) + (row.flags_low or 0)),
                    risk_change_6m=row.risk_change_6m,
                    has_prediction=row.risk_emergency_admission is not None,
                )
            )
    return out


def choose_personas(
    candidates: Iterable[Candidate], rules: tuple[PersonaRule, ...] = PERSONAS
) -> list[Persona]:
    """Apply the persona rules (module docstring) to ``candidates``; a persona nobody meets is left out."""
    pool = list(candidates)
    taken: set[str] = set()
    chosen: dict[str, Persona] = {}
    for level in range(max((len(rule.tiers) for rule in rules), default=0)):
        for number, rule in enumerate(rules, start=1):
            if rule.key in chosen or level >= len(rule.tiers):
                continue
            tier = rule.tiers[level]
            matches = [c for c in pool if c.patient_id not in taken and tier.matches(c)]
            if not matches:
                continue
            best = min(matches, key=lambda c: (not c.has_prediction, rule.distance(c), c.patient_id))
            taken.add(best.patient_id)
            chosen[rule.key] = Persona(
                key=rule.key,
                number=number,
                title=rule.title,
                story=rule.story,
                tier=level + 1,
                patient_id=best.patient_id,
                age=best.age,
                sex=best.sex,
                medicines=best.medicines,
                efi_category=best.efi_category,
                conditions=tuple(sorted(best.conditions)),
            )
    return sorted(chosen.values(), key=lambda persona: persona.number)


def step_persona(keys: list[str], current: str | None, step: int) -> str | None:
    """The persona ``step`` places after ``current`` (wrapping round), or the first when ``current`` is unknown."""
    if not keys:
        return None
    if current not in keys:
        return keys[0]
    return keys[(keys.index(current) + step) % len(keys)]


def workshop_personas(conn: Connection | Engine, scope: Scope) -> list[Persona]:
    return choose_personas(persona_candidates(conn, scope))


@lru_cache(maxsize=1)
def condition_terms() -> Mapping[str, str]:
    """Condition key → its plain term from the clinical vocabulary (for persona cards)."""
    from clinical.vocabulary import ConditionVocabulary

    return {key: condition.term for key, condition in ConditionVocabulary.load().conditions.items()}


def condition_term(key: str) -> str:
    return condition_terms().get(key) or key.replace("_", " ").capitalize()


# ---------------------------------------------------------------- feedback

RATING_MIN = 1
RATING_MAX = 5
RATING_WORDS = {1: "Not at all", 2: "A little", 3: "Somewhat", 4: "Well", 5: "Very well"}
COMMENT_MAX_CHARS = 1000
# An anonymous code the facilitator hands out (P07, TABLE3-A). It must start with a letter so that an NHS number,
# a date of birth or a phone number typed by mistake is refused rather than stored.
PARTICIPANT_CODE = re.compile(r"[A-Z][A-Z0-9-]{1,11}")
SESSION_ID = re.compile(r"[a-z0-9][a-z0-9-]{2,63}")
# C0 control characters other than tab and newlines: invisible, and NUL cannot be stored in PostgreSQL text.
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")

MESSAGES = {
    "rating": f"Please choose a rating from {RATING_MIN} to {RATING_MAX}.",
    "comment": f"Please keep your comment to {COMMENT_MAX_CHARS:,} characters (yours has {{length:,}}).",
    "participant_code": (
        "A participant code is 2 to 12 letters, digits or hyphens starting with a letter, like P07. Leave it "
        "empty to stay anonymous."
    ),
    "session_id": "This workshop session is not valid. Reload the workshop page to start a new session.",
    "view": "This view cannot be rated. Reload the workshop page.",
    "variant": "This picture cannot be rated. Reload the workshop page.",
}


@dataclass(frozen=True)
class FeedbackEntry:
    session_id: str
    participant_code: str | None
    view: str
    variant: str
    rating: int
    comment: str | None


@dataclass
class FeedbackInvalid(ValueError):
    """What was wrong with a submission: field name → a message for the participant."""

    errors: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return " ".join(self.errors.values())


def normalise_participant_code(value: str | None) -> str | None:
    """Upper-case and trim; an empty code is no code (anonymous)."""
    code = (value or "").strip().upper()
    return code or None


def normalise_comment(value: str | None) -> str | None:
    """Trim, drop invisible control characters and unify line endings; an empty comment is no comment."""
    text = _CONTROL_CHARACTERS.sub("", value or "").replace("\r\n", "\n").replace("\r", "\n").strip()
    return text or None


def valid_session_id(value: str | None) -> bool:
    return isinstance(value, str) and SESSION_ID.fullmatch(value) is not None


def new_session_id(today: dt.date | None = None) -> str:
    """A fresh workshop session id: 'ws-20261201-3fa9c1' (the date helps researchers find their session)."""
    day = today or utc_now().date()
    return f"ws-{day:%Y%m%d}-{secrets.token_hex(3)}"


def _rating(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        rating = value
    elif isinstance(value, str) and value.strip().isdigit():
        rating = int(value.strip())
    else:
        return None
    return rating if RATING_MIN <= rating <= RATING_MAX else None


def validate_feedback(
    *,
    session_id: str | None,
    participant_code: str | None,
    view: str | None,
    variant: str | None,
    rating: object,
    comment: str | None,
) -> FeedbackEntry:
    """The entry to store, or ``FeedbackInvalid`` with one message per field that was wrong."""
    errors: dict[str, str] = {}
    if not valid_session_id(session_id):
        errors["session_id"] = MESSAGES["session_id"]
    known_view = workshop_view(view)
    if known_view is None:
        errors["view"] = MESSAGES["view"]
    elif known_view.variant(variant or "") is None:
        errors["variant"] = MESSAGES["variant"]
    checked_rating = _rating(rating)
    if checked_rating is None:
        errors["rating"] = MESSAGES["rating"]
    text = normalise_comment(comment)
    if text is not None and len(text) > COMMENT_MAX_CHARS:
        errors["comment"] = MESSAGES["comment"].format(length=len(text))
    code = normalise_participant_code(participant_code)
    if code is not None and PARTICIPANT_CODE.fullmatch(code) is None:
        errors["participant_code"] = MESSAGES["participant_code"]
    if errors:
        raise FeedbackInvalid(errors)
    return FeedbackEntry(
        session_id=str(session_id),
        participant_code=code,
        view=str(view),
        variant=str(variant),
        rating=int(checked_rating),  # type: ignore[arg-type] - checked above
        comment=text,
    )


def record_feedback(conn: Connection | Engine, entry: FeedbackEntry, at: dt.datetime | None = None) -> None:
    """Store one validated rating (its own transaction, or the caller's given a connection)."""
    statement = insert(Feedback).values(
        at=at or utc_now(),
        session_id=entry.session_id,
        participant_code=entry.participant_code,
        view=entry.view,
        variant=entry.variant,
        rating=entry.rating,
        comment=entry.comment,
    )
    if isinstance(conn, Engine):
        with conn.begin() as connection:
            connection.execute(statement)
    else:
        conn.execute(statement)


@dataclass(frozen=True)
class VariantSummary:
    view: str
    view_label: str
    variant: str
    variant_label: str
    n: int
    mean: float | None
    distribution: tuple[int, ...]  # counts of ratings RATING_MIN..RATING_MAX


@dataclass(frozen=True)
class SessionSummary:
    session_id: str
    first_at: dt.datetime
    last_at: dt.datetime
    ratings: int
    participants: int


@dataclass(frozen=True)
class FeedbackComment:
    at: dt.datetime
    view: str
    variant: str
    rating: int
    participant_code: str | None
    comment: str


def _session_clause(session_id: str | None):  # noqa: ANN202 - SQLAlchemy clause
    return Feedback.session_id == session_id if session_id else true()


def feedback_summary(conn: Connection | Engine, session_id: str | None = None) -> list[VariantSummary]:
    """n, mean and the 1–5 distribution per view and variant, every known variant listed (n = 0 if unrated).

    Ratings stored for a view or variant the workshop no longer offers are listed after the known ones.
    """
    with connected(conn) as connection:
        rows = connection.execute(
            select(Feedback.view, Feedback.variant, Feedback.rating, func.count())
            .where(_session_clause(session_id))
            .group_by(Feedback.view, Feedback.variant, Feedback.rating)
        ).all()
    counts: dict[tuple[str, str], list[int]] = {}
    for view, variant, rating, count in rows:
        if RATING_MIN <= rating <= RATING_MAX:
            counts.setdefault((view, variant), [0] * (RATING_MAX - RATING_MIN + 1))[rating - RATING_MIN] += (
                count
            )
    known = [(view, variant) for view in WORKSHOP_VIEWS for variant in view.variants]
    out = [
        _summarise(view.key, view.label, v.key, v.label, counts.pop((view.key, v.key), None))
        for view, v in known
    ]
    for (view_key, variant_key), distribution in sorted(counts.items()):
        out.append(_summarise(view_key, view_key, variant_key, variant_key, distribution))
    return out


def _summarise(
    view: str, view_label: str, variant: str, variant_label: str, distribution: list[int] | None
) -> VariantSummary:
    distribution = distribution or [0] * (RATING_MAX - RATING_MIN + 1)
    n = sum(distribution)
    total = sum(count * (RATING_MIN + i) for i, count in enumerate(distribution))
    return VariantSummary(
        view, view_label, variant, variant_label, n, total / n if n else None, tuple(distribution)
    )


def feedback_sessions(conn: Connection | Engine) -> list[SessionSummary]:
    """Every session with feedback, newest first."""
    with connected(conn) as connection:
        rows = connection.execute(
            select(
                Feedback.session_id,
                func.min(Feedback.at),
                func.max(Feedback.at),
                func.count(),
                func.count(func.distinct(Feedback.participant_code)),
            )
            .group_by(Feedback.session_id)
            .order_by(func.max(Feedback.at).desc(), Feedback.session_id)
        ).all()
    return [SessionSummary(*row) for row in rows]


def feedback_comments(
    conn: Connection | Engine, session_id: str | None = None, limit: int = 200
) -> list[FeedbackComment]:
    """The newest comments (ratings without a comment are left out)."""
    with connected(conn) as connection:
        rows = connection.execute(
            select(
                Feedback.at,
                Feedback.view,
                Feedback.variant,
                Feedback.rating,
                Feedback.participant_code,
                Feedback.comment,
            )
            .where(_session_clause(session_id), Feedback.comment.is_not(None), Feedback.comment != "")
            .order_by(Feedback.at.desc(), Feedback.id.desc())
            .limit(max(1, min(int(limit), 1000)))
        ).all()
    return [FeedbackComment(*row) for row in rows]


CSV_COLUMNS = ("at", "session_id", "participant_code", "view", "variant", "rating", "comment")


def feedback_csv(conn: Connection | Engine, session_id: str | None = None) -> tuple[str, int]:
    """Every rating (of one session, or all) oldest first, as CSV text for analysis; returns (csv, rows)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    count = 0
    with connected(conn) as connection:
        rows = connection.execute(
            select(*(getattr(Feedback, column) for column in CSV_COLUMNS))
            .where(_session_clause(session_id))
            .order_by(Feedback.at, Feedback.id)
        )
        for row in rows:
            writer.writerow([spreadsheet_safe(value) for value in row])
            count += 1
    return buffer.getvalue(), count
