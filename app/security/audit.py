"""``audit(...)``: append who did what to which patient, from inside a request.

Fail closed: if the record cannot be written the exception propagates and the request fails, so no patient view
is ever shown without its audit record.
"""

from __future__ import annotations

from enum import StrEnum

from app.security.identity import current_user
from app.security.state import security_state
from data_access.queries.audit import append_audit_record


class AuditAction(StrEnum):
    VIEW_PATIENT = "view_patient"
    VIEW_PAGE = "view_page"
    CALLBACK = "callback"
    REQUEST = "request"
    EXPORT = "export"
    WHAT_IF = "what_if"
    RECORD_REVIEW = "record_review"
    SEARCH_AUDIT = "search_audit"
    EXPORT_AUDIT = "export_audit"
    LOGIN = "login"
    LOGIN_FAILED = "login_failed"
    LOGOUT = "logout"
    SESSION_EXPIRED = "session_expired"
    USER_ADDED = "user_added"
    USER_DISABLED = "user_disabled"


ANONYMOUS = "(anonymous)"


def audit(
    action: str, *, patient_id: str | None = None, detail: str | None = None, outcome: str = "allowed"
) -> None:
    """Append an audit record for the signed-in user (or "(anonymous)") of the current request.

    ``detail`` must not carry patient details (names, dates, clinical values): say what was done ("export
    worklist, 100 rows", "what-if: stop ibuprofen") and put the pseudonymous patient id in ``patient_id``.
    """
    user = current_user()
    append_audit_record(
        security_state().engine,
        username=user.username if user else ANONYMOUS,
        role=user.role.value if user else None,
        action=str(action),
        patient_id=str(patient_id) if patient_id is not None else None,
        detail=detail,
        outcome=outcome,
    )
