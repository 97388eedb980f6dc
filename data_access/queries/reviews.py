"""The Structured Medication Review (SMR) workflow: who marked which patient reviewed, booked, declined or snoozed.

Why it is built this way:
- One row per action, never updated: the ``review`` table is the history of a patient's SMR workflow and its
  latest row is the patient's current state. Nothing is overwritten, so "who did what, when" is always answerable
  and two users acting at once both leave their record (the later one is the state).
- Reviews are real actions taken today, so they are dated by the wall clock (``at``) and judged against today's
  date; the clinical record (flags, risks) is judged at the data cut. A snooze "until 15 January" therefore means
  the real 15 January, also in a demo database whose data ended long ago.
- Every read and write is limited to the user's practices (``Scope``): a review is visible to everyone who covers
  the patient's practice, so a patient reviewed by the PCN pharmacist is not reviewed again by the GP, and nobody
  outside the practice sees it.

States and what the worklist does with them (the "Show reviewed and snoozed" toggle shows them all again):

==========  =======================================================  ===========================================
status      meaning                                                  worklist by default
==========  =======================================================  ===========================================
reviewed    an SMR was completed; ``next_due`` = 12 months later     hidden until ``next_due``
            unless the reviewer chose another date
booked      an SMR appointment is booked (``next_due`` = its date)    shown, with "Booked" (so it is not missed if
                                                                     the appointment falls through)
declined    the patient declined an SMR                              shown (they can be offered it again; snooze
                                                                     them if they should not be asked for a while)
snoozed     deliberately deferred until ``snooze_until``             hidden until ``snooze_until``
==========  =======================================================  ===========================================

The 12-month default follows NHS England's SMR guidance, under which people in the priority groups should be
offered a review at least once a year (NHS England, "Structured medication reviews and medicines optimisation:
guidance", 2020, updated 2023).
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import ColumnElement, Connection, Engine, Select, and_, exists, func, insert, or_, select
from sqlalchemy.orm import aliased

from data_access.queries.connection import connected
from data_access.queries.scope import Scope, patient_in_scope
from data_access.schema import Patient, Review

REVIEW_STATUSES: dict[str, str] = {
    "reviewed": "Reviewed",
    "booked": "Review booked",
    "declined": "Declined",
    "snoozed": "Snoozed",
}
NEXT_DUE_MONTHS = 12
OUTCOME_MAX_CHARS = 500
# A snooze is a deliberate deferral, not a way to drop a patient: at most a year, after which they come back.
SNOOZE_MAX_DAYS = 366
HISTORY_ROWS = 20


class ReviewError(ValueError):
    """A review that cannot be recorded as given (the message says why, in words for the user)."""


class PatientOutOfScope(LookupError):
    """The patient is not in the user's practices (or does not exist: the two are never told apart)."""


@dataclass(frozen=True)
class ReviewRecord:
    """One action of the SMR workflow."""

    patient_id: str
    status: str
    reviewer: str
    outcome: str | None
    at: dt.datetime
    snooze_until: dt.date | None
    next_due: dt.date | None

    @property
    def label(self) -> str:
        return REVIEW_STATUSES.get(self.status, self.status)

    def hides_on(self, today: dt.date) -> bool:
        """Whether this state takes the patient off the default worklist on ``today`` (see the module table)."""
        return hides(self.status, self.at, self.snooze_until, self.next_due, today)

    def summary(self) -> str:
        """'Reviewed on 01 Dec 2026 by demo-gp; next due 01 Dec 2027' (what the patient page and worklist show)."""
        text = f"{self.label} on {_uk(self.at.date())} by {self.reviewer}"
        if self.status == "snoozed" and self.snooze_until:
            text += f"; snoozed until {_uk(self.snooze_until)}"
        elif self.status == "booked" and self.next_due:
            text += f"; appointment {_uk(self.next_due)}"
        elif self.status == "reviewed":
            text += f"; next due {_uk(self.next_due or next_due_after(self.at.date()))}"
        return text


def _uk(day: dt.date) -> str:
    return day.strftime("%d %b %Y")


def add_months(day: dt.date, months: int) -> dt.date:
    """The same day ``months`` calendar months later (clamped to the month's length: 29 Feb + 12 → 28 Feb)."""
    year, month = divmod(day.year * 12 + day.month - 1 + months, 12)
    return dt.date(year, month + 1, min(day.day, calendar.monthrange(year, month + 1)[1]))


def next_due_after(reviewed_on: dt.date) -> dt.date:
    """When the next SMR is due after one completed on ``reviewed_on`` (12 months by default; module docstring)."""
    return add_months(reviewed_on, NEXT_DUE_MONTHS)


def hides(
    status: str,
    at: dt.datetime,
    snooze_until: dt.date | None,
    next_due: dt.date | None,
    today: dt.date,
) -> bool:
    """The worklist's hiding rule for one latest state (the same rule as ``hidden_patients_select`` in SQL)."""
    if status == "reviewed":
        return (next_due or next_due_after(at.date())) > today
    if status == "snoozed":
        return snooze_until is not None and snooze_until > today
    return False


def validate_review(
    status: str, outcome: str | None, on_date: dt.date | None, today: dt.date
) -> tuple[str | None, dt.date | None, dt.date | None]:
    """Check a review as entered; returns (outcome, snooze_until, next_due) to store, or raises ``ReviewError``.

    ``on_date`` is the one date the form asks for: the appointment of a booking, the end of a snooze, or (rarely)
    a next-due date other than the 12-month default for a completed review.
    """
    if status not in REVIEW_STATUSES:
        raise ReviewError("Choose what happened: reviewed, booked, declined or snoozed.")
    text = (outcome or "").strip() or None
    if text is not None and len(text) > OUTCOME_MAX_CHARS:
        raise ReviewError(f"Keep the outcome short: at most {OUTCOME_MAX_CHARS} characters.")
    if status == "snoozed":
        if on_date is None:
            raise ReviewError("Choose the date to snooze the review until.")
        if on_date <= today:
            raise ReviewError("A snooze must end after today.")
        if (on_date - today).days > SNOOZE_MAX_DAYS:
            raise ReviewError("Snooze for at most 12 months; the patient then comes back to the list.")
        return text, on_date, on_date
    if status == "booked":
        if on_date is not None and on_date < today:
            raise ReviewError("The appointment date cannot be in the past.")
        return text, None, on_date
    if status == "reviewed":
        if on_date is not None and on_date <= today:
            raise ReviewError("The next review must be due after today.")
        return text, None, on_date or next_due_after(today)
    return text, None, None


def record_review(
    conn: Connection | Engine,
    scope: Scope,
    patient_id: str,
    *,
    status: str,
    reviewer: str,
    outcome: str | None = None,
    on_date: dt.date | None = None,
    now: dt.datetime | None = None,
) -> ReviewRecord:
    """Append one workflow action for a patient of the user's practices and return it (one transaction).

    Raises ``ReviewError`` for an invalid entry and ``PatientOutOfScope`` for a patient outside ``scope``.
    """
    now = (now or dt.datetime.now(dt.UTC)).replace(tzinfo=None, microsecond=0)
    text, snooze_until, next_due = validate_review(status, outcome, on_date, now.date())
    record = ReviewRecord(
        patient_id=patient_id,
        status=status,
        reviewer=reviewer,
        outcome=text,
        at=now,
        snooze_until=snooze_until,
        next_due=next_due,
    )
    if isinstance(conn, Engine):
        with conn.begin() as connection:
            return _insert(connection, scope, record)
    return _insert(conn, scope, record)


def _insert(connection: Connection, scope: Scope, record: ReviewRecord) -> ReviewRecord:
    if not patient_in_scope(connection, scope, record.patient_id):
        raise PatientOutOfScope(record.patient_id)
    connection.execute(
        insert(Review).values(
            patient_id=record.patient_id,
            status=record.status,
            reviewer=record.reviewer,
            outcome=record.outcome,
            at=record.at,
            snooze_until=record.snooze_until,
            next_due=record.next_due,
        )
    )
    return record


def _record(row: object) -> ReviewRecord:
    m = row._mapping  # type: ignore[attr-defined]
    return ReviewRecord(
        patient_id=m["patient_id"],
        status=m["status"],
        reviewer=m["reviewer"],
        outcome=m["outcome"],
        at=m["at"],
        snooze_until=m["snooze_until"],
        next_due=m["next_due"],
    )


_COLUMNS = (
    Review.patient_id,
    Review.status,
    Review.reviewer,
    Review.outcome,
    Review.at,
    Review.snooze_until,
    Review.next_due,
)


def review_history(
    conn: Connection | Engine, scope: Scope, patient_id: str, limit: int = HISTORY_ROWS
) -> list[ReviewRecord]:
    """A patient's workflow actions, newest first (empty outside ``scope``)."""
    query = (
        select(*_COLUMNS)
        .join(Patient, Patient.id == Review.patient_id)
        .where(Review.patient_id == patient_id, scope.clause(Patient.practice_id))
        .order_by(Review.at.desc(), Review.id.desc())
        .limit(limit)
    )
    with connected(conn) as connection:
        return [_record(r) for r in connection.execute(query)]


def latest_review(conn: Connection | Engine, scope: Scope, patient_id: str) -> ReviewRecord | None:
    """The patient's current workflow state (None when nothing was ever recorded, or outside ``scope``)."""
    history = review_history(conn, scope, patient_id, limit=1)
    return history[0] if history else None


def _is_latest() -> ColumnElement[bool]:
    """The ``review`` row is its patient's latest (no later action; ties on ``at`` broken by the later insert).

    A NOT EXISTS probe on the (patient_id, at) index: about ten times faster on SQLite than ranking every row with
    a window function, and it lets the database filter on the hiding states first."""
    later = aliased(Review)
    return ~exists().where(
        later.patient_id == Review.patient_id,
        or_(later.at > Review.at, and_(later.at == Review.at, later.id > Review.id)),
    )


def latest_reviews(
    conn: Connection | Engine, scope: Scope, patient_ids: Iterable[str]
) -> dict[str, ReviewRecord]:
    """The latest workflow state of each of ``patient_ids`` that has one (for a page of worklist rows)."""
    ids = list(dict.fromkeys(patient_ids))
    if not ids:
        return {}
    query = (
        select(*_COLUMNS)
        .join(Patient, Patient.id == Review.patient_id)
        .where(Review.patient_id.in_(ids), scope.clause(Patient.practice_id))
        .order_by(Review.patient_id, Review.at, Review.id)
    )
    out: dict[str, ReviewRecord] = {}
    with connected(conn) as connection:
        for row in connection.execute(query):
            record = _record(row)
            out[record.patient_id] = record  # rows ascend by time, so the last one wins
    return out


def latest_completed_reviews(
    conn: Connection | Engine, scope: Scope, patient_ids: Iterable[str]
) -> dict[str, dt.date]:
    """The date of each patient's latest completed SMR recorded through the workflow (for 'last SMR')."""
    ids = list(dict.fromkeys(patient_ids))
    if not ids:
        return {}
    query = (
        select(Review.patient_id, func.max(Review.at))
        .join(Patient, Patient.id == Review.patient_id)
        .where(Review.patient_id.in_(ids), Review.status == "reviewed", scope.clause(Patient.practice_id))
        .group_by(Review.patient_id)
    )
    with connected(conn) as connection:
        return {pid: at.date() for pid, at in connection.execute(query) if at is not None}


def _hiding(today: dt.date) -> ColumnElement[bool]:
    # A completed review written without ``next_due`` (an import) is due 12 months after it, as in ``hides``.
    default_cutoff = dt.datetime.combine(add_months(today, -NEXT_DUE_MONTHS), dt.time.max)
    reviewed = and_(
        Review.status == "reviewed",
        or_(Review.next_due > today, and_(Review.next_due.is_(None), Review.at > default_cutoff)),
    )
    snoozed = and_(Review.status == "snoozed", Review.snooze_until > today)
    return or_(reviewed, snoozed)


def hidden_patients_select(today: dt.date) -> Select:
    """SELECT of the ids whose latest state hides them from the default worklist on ``today`` (``hides`` in SQL).

    Not correlated with the outer query, so the database evaluates it once per worklist query; the review table
    holds actions (hundreds to thousands of rows), not patients, so this stays cheap at 100,000 patients.
    """
    return select(Review.patient_id).where(hidden_review_condition(today))


def hidden_review_condition(today: dt.date) -> ColumnElement[bool]:
    """A ``review`` row that is its patient's latest and hides them on ``today`` (for queries that drive from the
    few review rows rather than from every patient)."""
    return and_(_hiding(today), _is_latest())


def review_state_text(record: ReviewRecord | None) -> str:
    """The worklist's 'Review status' cell: '' when nothing was recorded."""
    if record is None:
        return ""
    if record.status == "snoozed" and record.snooze_until:
        return f"Snoozed until {_uk(record.snooze_until)} ({record.reviewer})"
    if record.status == "booked":
        when = f" for {_uk(record.next_due)}" if record.next_due else ""
        return f"Booked{when} ({record.reviewer})"
    return f"{record.label} {_uk(record.at.date())} ({record.reviewer})"


def next_due_date(last_smr: dt.date | None, record: ReviewRecord | None) -> dt.date | None:
    """When the next SMR is due: the workflow's own date when it set one (a completed review's next-due date, a
    booking's appointment, a snooze's end), else 12 months after the last SMR, else None (never reviewed: due now).
    """
    if record is not None and record.status in ("reviewed", "booked", "snoozed") and record.next_due:
        if record.status != "reviewed" or last_smr is None or record.at.date() >= last_smr:
            return record.next_due
    return next_due_after(last_smr) if last_smr else None


def workflow_excluded_select(today: dt.date) -> Select:
    """SELECT of the ids a capacity plan leaves out because of their workflow state on ``today``: hidden from the
    worklist (completed and not yet due, or snoozed), or already booked for an appointment today or later (or with
    no date given). A decline does not exclude: the patient may be offered a review again."""
    booked = and_(Review.status == "booked", or_(Review.next_due.is_(None), Review.next_due >= today))
    return select(Review.patient_id).where(or_(_hiding(today), booked), _is_latest())


def review_cells(
    conn: Connection | Engine,
    scope: Scope,
    recorded_last_review: dict[str, dt.date | None],
    today: dt.date | None = None,
) -> dict[str, dict[str, str]]:
    """The worklist's review cells for a page of patients: 'Review status', 'Next SMR due' and, when the workflow
    recorded a later completed review than the clinical record, 'Last review'.

    ``recorded_last_review`` maps each patient id to the last medication review in the record (``worklist_entry``).
    """
    today = today or dt.date.today()
    ids = list(recorded_last_review)
    latest = latest_reviews(conn, scope, ids)
    completed = latest_completed_reviews(conn, scope, ids)
    out: dict[str, dict[str, str]] = {}
    for patient_id, recorded in recorded_last_review.items():
        known = [d for d in (recorded, completed.get(patient_id)) if d is not None]
        last = max(known) if known else None
        record = latest.get(patient_id)
        due = next_due_date(last, record)
        if due is None:
            due_text = "Due now (none recorded)"
        elif due <= today:
            due_text = f"{_uk(due)} (overdue)"
        else:
            due_text = _uk(due)
        cells = {"review_status": review_state_text(record), "next_due": due_text}
        if last is not None and last != recorded:
            cells["last_review"] = _uk(last)
        out[patient_id] = cells
    return out
