"""Sign-in, roles, practice scoping, audit and web hardening for the DynAIRx dashboard.

See ``app/security/README.md`` for what is enforced where, and ``SECURITY.md`` for the threat model.
"""

from app.security.accounts import add_user, disable_user, ensure_demo_accounts, list_users
from app.security.audit import AuditAction, audit
from app.security.identity import (
    CurrentUser,
    authorize_patient,
    current_user,
    required_permission,
    requires,
    scope_for,
)
from app.security.roles import ROLE_PERMISSIONS, Permission, Role
from app.security.setup import init_security

__all__ = [
    "ROLE_PERMISSIONS",
    "AuditAction",
    "CurrentUser",
    "Permission",
    "Role",
    "add_user",
    "audit",
    "authorize_patient",
    "current_user",
    "disable_user",
    "ensure_demo_accounts",
    "init_security",
    "list_users",
    "required_permission",
    "requires",
    "scope_for",
]
