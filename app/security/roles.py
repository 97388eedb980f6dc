"""Roles and what each may do: one enum of permissions and one table of role definitions.

Why least privilege per role (NHS England, "Structured medication reviews and medicines optimisation" and the
Caldicott principles, in particular principle 4 "access to confidential information should be on a strict
need-to-know basis"):
- GPs and clinical pharmacists review their own practices' patients, so only they see per-patient records, run
  what-if scenarios and export worklists, and only for the practices assigned to them (see ``scope_for``).
- Researchers work on pseudonymised, aggregated views; they never see a per-patient page or export one.
- Administrators look after accounts and the audit trail. They have no clinical relationship with any patient, so
  they do not see patient records either; they see aggregates and the audit log.
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    GP = "gp"
    PHARMACIST = "pharmacist"
    RESEARCHER = "researcher"
    ADMIN = "admin"


class Permission(StrEnum):
    """One thing a signed-in user may do; pages and callbacks each declare the one they need."""

    VIEW_HELP = "view_help"
    VIEW_WORKLIST = "view_worklist"
    VIEW_PATIENT = "view_patient"
    RUN_WHAT_IF = "run_what_if"
    RECORD_REVIEW = "record_review"
    EXPORT_PATIENT_LIST = "export_patient_list"
    VIEW_AGGREGATE = "view_aggregate"
    VIEW_MODEL = "view_model"
    GIVE_FEEDBACK = "give_feedback"
    VIEW_AUDIT = "view_audit"
    EXPORT_AUDIT = "export_audit"
    MANAGE_USERS = "manage_users"


_EVERYONE = frozenset(
    {Permission.VIEW_HELP, Permission.VIEW_AGGREGATE, Permission.VIEW_MODEL, Permission.GIVE_FEEDBACK}
)
_CLINICAL = frozenset(
    {
        Permission.VIEW_WORKLIST,
        Permission.VIEW_PATIENT,
        Permission.RUN_WHAT_IF,
        Permission.RECORD_REVIEW,
        Permission.EXPORT_PATIENT_LIST,
    }
)

ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.GP: _EVERYONE | _CLINICAL,
    Role.PHARMACIST: _EVERYONE | _CLINICAL,
    Role.RESEARCHER: _EVERYONE,
    Role.ADMIN: _EVERYONE | {Permission.VIEW_AUDIT, Permission.EXPORT_AUDIT, Permission.MANAGE_USERS},
}

# Roles whose patient-level reach is limited to the practices assigned to the user. Researchers and administrators
# get an unrestricted scope, but none of their permissions reaches a per-patient view, so the scope only ever feeds
# aggregate queries for them.
PRACTICE_SCOPED_ROLES = frozenset({Role.GP, Role.PHARMACIST})


def parse_role(value: str) -> Role:
    """The ``Role`` named by ``value`` (case-insensitive); a clear error listing the valid names otherwise."""
    try:
        return Role(value.strip().lower())
    except ValueError:
        valid = ", ".join(role.value for role in Role)
        raise ValueError(f"Unknown role {value!r}: expected one of {valid}") from None
