"""The ``before_request`` guard: the one gate every request passes, whatever Dash or a page does.

Order of checks (OWASP ASVS V4 "Access control": deny by default, enforce on the server):
1. public paths (sign-in flow, static files) pass;
2. no valid session → a redirect to /login for pages, 401 JSON for Dash's endpoints and any non-GET;
3. a page GET needs the permission its layout declared with ``requires`` (and, for a patient page, the patient
   must be in the user's practices);
4. a callback POST needs the permission its function declared; a callback that declared none is refused, so a
   forgotten decorator fails closed. Dash's own internal callbacks (the pages router) are let through: the
   layouts they call carry their own ``requires``.
"""

from __future__ import annotations

import functools
import inspect
import logging
import threading
from urllib.parse import quote

import flask
from werkzeug.exceptions import BadRequest

from app.security.audit import AuditAction
from app.security.identity import (
    PATIENT_ARG_ATTRIBUTE,
    authorize_patient,
    current_user,
    deny,
    mark_callback_dispatch,
    required_permission,
    set_current_user,
)
from app.security.paths import is_dash_endpoint, is_dispatch, is_public, match_page
from app.security.session import SessionEnded, record_session_end, user_from_session
from app.security.state import SecurityState, security_state

logger = logging.getLogger(__name__)
_wrap_lock = threading.Lock()


def guard() -> flask.Response | None:
    state = security_state()
    _wrap_dispatch_once(state)
    path = flask.request.path
    set_current_user(None)
    if is_public(path):
        return None
    try:
        user = user_from_session(state.config, state.engine)
    except SessionEnded as ended:
        record_session_end(state.engine, ended)
        return _sign_in_required(path, expired=True)
    if user is None:
        return _sign_in_required(path, expired=False)
    set_current_user(user)
    if is_dispatch(path):
        _check_callback(state)
    elif flask.request.method in {"GET", "HEAD"} and not is_dash_endpoint(path):
        _check_page(path)
    return None


def _sign_in_required(path: str, *, expired: bool) -> flask.Response:
    """401 for machine endpoints and non-GETs (a redirect would hand the Dash renderer an HTML page)."""
    if is_dash_endpoint(path) or flask.request.method not in {"GET", "HEAD"}:
        response = flask.jsonify({"error": "sign-in required", "expired": expired})
        response.status_code = 401
        response.headers["WWW-Authenticate"] = 'Session realm="DynAIRx"'
        return response
    target = flask.request.full_path if flask.request.query_string else path
    query = f"next={quote(target, safe='/')}" + ("&expired=1" if expired else "")
    return flask.redirect(f"/login?{query}", code=302)


def _check_page(path: str) -> None:
    match = match_page(path)
    if match is None:
        return
    page, variables = match
    layout = page.get("layout")
    if not callable(layout):
        return  # a static layout is the same for everyone and carries no patient data
    permission = required_permission(layout)
    user = current_user()
    assert user is not None  # the guard set it before calling
    if permission is None:
        logger.warning("Page %s has no requires(...) on its layout; refusing it", page.get("module"))
        raise deny(AuditAction.VIEW_PAGE, detail=f"{path_label(page)} declares no permission")
    if not user.can(permission):
        raise deny(AuditAction.VIEW_PAGE, permission=permission, detail=path_label(page))
    patient_arg = getattr(layout, PATIENT_ARG_ATTRIBUTE, None)
    if patient_arg and variables.get(patient_arg):
        authorize_patient(variables[patient_arg], record_view=False)


def path_label(page: dict) -> str:
    return str(page.get("path_template") or page.get("path") or page.get("module"))


def _check_callback(state: SecurityState) -> None:
    body = flask.request.get_json(silent=True)
    if not isinstance(body, dict) or not isinstance(body.get("output"), str):
        raise BadRequest("Malformed callback request.")
    app = state.dash()
    if app is None:
        return
    spec = app.callback_map.get(body["output"])
    if spec is None:
        return  # unknown output: Dash answers it with an error; nothing runs
    func = spec.get("callback")
    permission = required_permission(func)
    if permission is None:
        if _is_framework_callback(func):
            return
        logger.warning("Callback %s has no requires(...); refusing it", body["output"][:200])
        raise deny(AuditAction.CALLBACK, detail=f"{body['output'][:200]} declares no permission")
    user = current_user()
    assert user is not None
    if not user.can(permission):
        raise deny(AuditAction.CALLBACK, permission=permission, detail=body["output"][:200])


def _is_framework_callback(func: object) -> bool:
    """Callbacks Dash defines itself (the pages router): their module is inside the ``dash`` package."""
    if func is None:
        return False
    module = getattr(inspect.unwrap(func), "__module__", "") or ""
    return module == "dash" or module.startswith("dash.")


def _wrap_dispatch_once(state: SecurityState) -> None:
    """Mark the execution of Dash's callback view, so ``requires`` knows a layout call is a real page render."""
    if state.dispatch_wrapped:
        return
    with _wrap_lock:
        if state.dispatch_wrapped:
            return
        server = flask.current_app
        for rule in server.url_map.iter_rules():
            if not is_dispatch(rule.rule):
                continue
            original = server.view_functions[rule.endpoint]

            @functools.wraps(original)
            def dispatch_marked(*args, _original=original, **kwargs):  # noqa: ANN002, ANN003, ANN202
                mark_callback_dispatch()
                return _original(*args, **kwargs)

            server.view_functions[rule.endpoint] = dispatch_marked
        state.dispatch_wrapped = True
