"""The audit trail: append one record, search records, stream them out as CSV.

The table has no foreign keys and this module has no update or delete: records are only ever appended, so the
trail of who looked at which patient cannot be rewritten through the application.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, func, insert, select

from data_access.queries.csv_safety import spreadsheet_safe as _csv_safe
from data_access.schema import AuditLog

OUTCOMES = ("allowed", "denied")
MAX_SEARCH_ROWS = 1000
CSV_COLUMNS = ("id", "at", "username", "role", "action", "patient_id", "outcome", "detail")


@dataclass(frozen=True)
class AuditRecord:
    id: int
    at: dt.datetime
    username: str
    role: str | None
    action: str
    patient_id: str | None
    detail: str | None
    outcome: str


@dataclass(frozen=True)
class AuditFilter:
    """What an administrator searches by. Every field is compared by value (bound parameters), never spliced."""

    username: str | None = None
    action: str | None = None
    patient_id: str | None = None
    outcome: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None

    def clauses(self) -> list:
        clauses = []
        if self.username:
            clauses.append(AuditLog.username == self.username)
        if self.action:
            clauses.append(AuditLog.action == self.action)
        if self.patient_id:
            clauses.append(AuditLog.patient_id == self.patient_id)
        if self.outcome:
            if self.outcome not in OUTCOMES:
                raise ValueError(f"outcome must be one of {OUTCOMES}")
            clauses.append(AuditLog.outcome == self.outcome)
        if self.since:
            clauses.append(AuditLog.at >= self.since)
        if self.until:
            clauses.append(AuditLog.at <= self.until)
        return clauses


def utc_now() -> dt.datetime:
    """Audit times are naive UTC (the column has no time zone on SQLite), truncated to microseconds."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def append_audit_record(
    conn: Engine | Connection,
    *,
    username: str,
    role: str | None,
    action: str,
    patient_id: str | None = None,
    detail: str | None = None,
    outcome: str = "allowed",
    at: dt.datetime | None = None,
) -> None:
    """Append one record in its own transaction (or the caller's, given a connection)."""
    if outcome not in OUTCOMES:
        raise ValueError(f"outcome must be one of {OUTCOMES}")
    values = {
        "at": at or utc_now(),
        "username": username[:100],
        "role": role,
        "action": action[:64],
        "patient_id": patient_id[:64] if patient_id else None,
        "detail": detail[:2000] if detail else None,
        "outcome": outcome,
    }
    statement = insert(AuditLog).values(**values)
    if isinstance(conn, Engine):
        with conn.begin() as connection:
            connection.execute(statement)
    else:
        conn.execute(statement)


def _row_to_record(row) -> AuditRecord:  # noqa: ANN001 - SQLAlchemy Row
    return AuditRecord(
        id=row.id,
        at=row.at,
        username=row.username,
        role=row.role,
        action=row.action,
        patient_id=row.patient_id,
        detail=row.detail,
        outcome=row.outcome,
    )


def search_audit(engine: Engine, criteria: AuditFilter, *, limit: int = 200) -> list[AuditRecord]:
    """The newest records matching ``criteria`` (at most ``MAX_SEARCH_ROWS``)."""
    limit = max(1, min(int(limit), MAX_SEARCH_ROWS))
    query = (
        select(AuditLog)
        .where(*criteria.clauses())
        .order_by(AuditLog.at.desc(), AuditLog.id.desc())
        .limit(limit)
    )
    with engine.connect() as conn:
        return [_row_to_record(row) for row in conn.execute(query)]


def count_audit(engine: Engine, criteria: AuditFilter) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(select(func.count()).select_from(AuditLog).where(*criteria.clauses())).scalar_one()
        )


def iter_audit_csv(engine: Engine, criteria: AuditFilter, *, batch_size: int = 5000) -> Iterator[str]:
    """The matching records, oldest first, as CSV text chunks (header first), streamed in id order.

    Cells that a spreadsheet would read as a formula are prefixed with a quote (OWASP "CSV injection"), because
    usernames and details can carry text chosen by whoever typed into a sign-in form.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    yield _drain(buffer)
    last_id = 0
    while True:
        query = (
            select(AuditLog.__table__)
            .where(*criteria.clauses(), AuditLog.id > last_id)
            .order_by(AuditLog.id)
            .limit(batch_size)
        )
        with engine.connect() as conn:
            rows = [_row_to_record(row) for row in conn.execute(query)]
        if not rows:
            return
        for record in rows:
            writer.writerow([_csv_safe(getattr(record, column)) for column in CSV_COLUMNS])
        last_id = rows[-1].id
        yield _drain(buffer)


def _drain(buffer: io.StringIO) -> str:
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate(0)
    return text


def patient_view_count(engine: Engine, *, since: dt.datetime | None = None) -> int:
    """How many allowed patient views are recorded (the load test checks that none were lost)."""
    return count_audit(engine, AuditFilter(action="view_patient", outcome="allowed", since=since))


def sign_in_failure_detail(address: str, reason: str) -> str:
    """The detail of a failed sign-in record: the client address first, so it can be counted by prefix."""
    return f"ip={address}; reason={reason}"


def failed_sign_ins_from(engine: Engine, address: str, since: dt.datetime) -> int:
    """Failed sign-ins from client ``address`` recorded since ``since`` (per-address throttling)."""
    prefix = sign_in_failure_detail(address, "").removesuffix("reason=")
    query = (
        select(func.count())
        .select_from(AuditLog)
        .where(
            AuditLog.action == "login_failed",
            AuditLog.at >= since,
            AuditLog.detail.startswith(prefix, autoescape=True),
        )
    )
    with engine.connect() as conn:
        return int(conn.execute(query).scalar_one())
