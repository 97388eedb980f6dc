"""Turn the admin's search form (page inputs or export query string) into a validated ``AuditFilter``."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from urllib.parse import urlencode

from app.security.audit import AuditAction
from data_access.queries.audit import OUTCOMES, AuditFilter

FILTER_FIELDS = ("username", "action", "patient_id", "outcome", "since", "until")
ACTIONS = tuple(action.value for action in AuditAction)


class BadAuditFilter(ValueError):
    pass


def _date(value: str, field: str) -> dt.date | None:
    if not value:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise BadAuditFilter(f"{field} must be a date (YYYY-MM-DD)") from None


def parse_audit_filter(params: Mapping[str, str | None]) -> AuditFilter:
    """Validate each field; values are only ever compared as bound parameters, never put into SQL text."""
    values = {field: (params.get(field) or "").strip() for field in FILTER_FIELDS}
    if len(values["username"]) > 100 or len(values["patient_id"]) > 64:
        raise BadAuditFilter("user name or patient id is too long")
    if values["action"] and values["action"] not in ACTIONS:
        raise BadAuditFilter("unknown action")
    if values["outcome"] and values["outcome"] not in OUTCOMES:
        raise BadAuditFilter("outcome must be allowed or denied")
    since = _date(values["since"], "since")
    until = _date(values["until"], "until")
    if since and until and since > until:
        raise BadAuditFilter("the 'from' date is after the 'to' date")
    return AuditFilter(
        username=values["username"] or None,
        action=values["action"] or None,
        patient_id=values["patient_id"] or None,
        outcome=values["outcome"] or None,
        since=dt.datetime.combine(since, dt.time.min) if since else None,
        until=dt.datetime.combine(until, dt.time.max) if until else None,
    )


def describe_filter(criteria: AuditFilter) -> str:
    """A short text of the search for the audit record of the search itself."""
    parts = [
        f"{name}={getattr(criteria, name)}"
        for name in ("username", "action", "patient_id", "outcome", "since", "until")
        if getattr(criteria, name)
    ]
    return ", ".join(parts) or "everything"


def export_query(params: Mapping[str, str | None]) -> str:
    """The query string of the CSV export link for the same search."""
    return urlencode({field: params.get(field) or "" for field in FILTER_FIELDS if params.get(field)})
