"""Who is signed in, what they may do and which patients they may see.

Pages and callbacks call ``current_user()``, ``scope_for(user)`` and ``authorize_patient(patient_id)``; the
``requires(permission)`` decorator wraps page layouts and callbacks alike. The ``before_request`` guard
(``app.security.guard``) has already refused anonymous requests and callbacks that declare no permission before any
of this runs; these checks are the second, local line of defence.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

import dash
import flask
from werkzeug.exceptions import Forbidden

from app.security.roles import PRACTICE_SCOPED_ROLES, ROLE_PERMISSIONS, Permission, Role
from data_access.queries.scope import Scope, patient_in_scope

P = ParamSpec("P")
R = TypeVar("R")

_USER_KEY = "dynairx_user"
_DISPATCH_KEY = "dynairx_in_callback"
PERMISSION_ATTRIBUTE = "__dynairx_permission__"
PATIENT_ARG_ATTRIBUTE = "__dynairx_patient_arg__"


@dataclass(frozen=True)
class CurrentUser:
    """The signed-in user of this request. ``practice_ids`` None means every practice (aggregate roles)."""

    username: str
    role: Role
    practice_ids: frozenset[str] | None
    permissions: frozenset[Permission]

    @classmethod
    def for_role(
        cls, username: str, role: Role, practices: frozenset[str] | set[str] | list[str]
    ) -> CurrentUser:
        """Build the user from their role, applying practice scoping only to roles that have it."""
        scoped = frozenset(practices) if role in PRACTICE_SCOPED_ROLES else None
        return cls(username=username, role=role, practice_ids=scoped, permissions=ROLE_PERMISSIONS[role])

    def can(self, permission: Permission) -> bool:
        return permission in self.permissions


def current_user() -> CurrentUser | None:
    """The signed-in user of the current request, or None (no request, or nobody signed in)."""
    if not flask.has_request_context():
        return None
    return flask.g.get(_USER_KEY)


def set_current_user(user: CurrentUser | None) -> None:
    """Called by the guard once the session has been validated."""
    flask.g.setdefault(_USER_KEY, None)
    setattr(flask.g, _USER_KEY, user)


def scope_for(user: CurrentUser | None) -> Scope:
    """The query scope of ``user``: their practices, every practice, or nothing at all for no user."""
    if user is None:
        return Scope(practice_ids=frozenset())
    return Scope(practice_ids=user.practice_ids)


def mark_callback_dispatch() -> None:
    """Record that the current request is executing a Dash callback (set by the wrapped dispatch view)."""
    setattr(flask.g, _DISPATCH_KEY, True)


def _in_callback_dispatch() -> bool:
    return flask.has_request_context() and bool(flask.g.get(_DISPATCH_KEY, False))


def deny(
    action: str, *, permission: Permission | None = None, patient_id: str | None = None, detail: str = ""
) -> Forbidden:
    """Audit a refused attempt and return the 403 to raise. Never says whether a patient exists."""
    from app.security.audit import audit

    parts = [detail] if detail else []
    if permission is not None:
        parts.append(f"needs {permission.value}")
    # Outside a request (a unit test calling a callback directly) there is nobody to audit.
    if flask.has_request_context():
        audit(action, patient_id=patient_id, detail="; ".join(parts) or None, outcome="denied")
    return Forbidden("You do not have access to this.")


def authorize_patient(patient_id: str, *, record_view: bool = False) -> None:
    """Refuse (403, audited) unless the signed-in user may see ``patient_id``.

    The check runs against the database through ``patient_in_scope``, so an id typed into the address bar or put
    into a forged callback body is judged by the patient's real practice, never by anything the browser sent.
    ``record_view`` writes the one "view_patient" audit record of a page view (the page layout passes it; the
    page's data callbacks do not, so one view is one record).
    """
    from app.security.audit import AuditAction, audit
    from app.security.state import security_state

    user = current_user()
    if user is None or not user.can(Permission.VIEW_PATIENT):
        raise deny(
            AuditAction.VIEW_PATIENT, permission=Permission.VIEW_PATIENT, patient_id=str(patient_id)[:64]
        )
    patient_id = str(patient_id)
    if len(patient_id) > 64 or not patient_in_scope(security_state().engine, scope_for(user), patient_id):
        raise deny(
            AuditAction.VIEW_PATIENT,
            patient_id=patient_id[:64],
            detail="patient outside the user's practices",
        )
    if record_view:
        audit(AuditAction.VIEW_PATIENT, patient_id=patient_id)


def requires(
    permission: Permission, *, patient_arg: str | None = None
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorate a page layout function or a callback: refuse (403, audited) users without ``permission``.

    Put it *under* ``@callback(...)`` so Dash registers the checked function. On a page layout, ``patient_arg``
    names the path variable that carries a patient id (``/patient/<patient_id>``): the decorator then checks the
    patient is in the user's scope and writes the page view's audit record.

    Dash builds its validation layout by calling every page layout with no arguments before any callback runs;
    such calls outside callback dispatch render an empty shell and pass through unchecked. Any call with
    arguments, or any call inside callback dispatch, is checked.
    """

    def decorate(func: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(func)
        def checked(*args: P.args, **kwargs: P.kwargs) -> R:
            if not args and not kwargs and not _in_callback_dispatch():
                return func(*args, **kwargs)
            user = current_user()
            if user is None or not user.can(permission):
                raise deny(_action_for(checked, patient_arg), permission=permission, detail=_describe(func))
            if patient_arg is not None and kwargs.get(patient_arg) is not None:
                authorize_patient(str(kwargs[patient_arg]), record_view=True)
            return func(*args, **kwargs)

        setattr(checked, PERMISSION_ATTRIBUTE, permission)
        setattr(checked, PATIENT_ARG_ATTRIBUTE, patient_arg)
        return checked

    return decorate


def required_permission(func: Any) -> Permission | None:
    """The permission a decorated layout or callback declared (None if it declared none)."""
    return getattr(func, PERMISSION_ATTRIBUTE, None)


def _action_for(checked: Callable[..., Any], patient_arg: str | None) -> str:
    from app.security.audit import AuditAction

    if patient_arg:
        return AuditAction.VIEW_PATIENT
    is_page = any(page.get("layout") is checked for page in dash.page_registry.values())
    return AuditAction.VIEW_PAGE if is_page else AuditAction.CALLBACK


def _describe(func: Callable[..., Any]) -> str:
    return f"{getattr(func, '__module__', '?')}.{getattr(func, '__qualname__', '?')}"
