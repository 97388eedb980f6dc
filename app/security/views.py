"""/login (a plain HTML form posting to Flask, not a Dash callback) and /logout.

Messages never say whether the user name exists, is locked or is disabled (OWASP Authentication Cheat Sheet,
"Authentication and error messages"); the audit log records the real reason for administrators.
"""

from __future__ import annotations

import datetime as dt

import flask
from flask_wtf.csrf import generate_csrf

from app.security.accounts import check_password_sign_in
from app.security.audit import AuditAction, audit
from app.security.audit_search import BadAuditFilter, describe_filter, parse_audit_filter
from app.security.identity import CurrentUser, current_user, deny, set_current_user
from app.security.paths import safe_next
from app.security.roles import Permission
from app.security.session import SessionEnded, end_session, start_session, user_from_session
from app.security.state import security_state
from data_access.queries.audit import (
    append_audit_record,
    failed_sign_ins_from,
    iter_audit_csv,
    sign_in_failure_detail,
    utc_now,
)

blueprint = flask.Blueprint("dynairx_security", __name__)

UNKNOWN_ACCOUNT = "(unknown account)"
FAILED_MESSAGE = "Sign-in failed. Check your user name and password, or ask your administrator."
THROTTLED_MESSAGE = "Too many failed sign-ins from this computer. Wait 15 minutes and try again."

LOGIN_TEMPLATE = """<!DOCTYPE html>
<html lang="en-GB">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in - DynAIRx</title>
<style>
body { font-family: Arial, Helvetica, sans-serif; background: #f0f4f5; color: #212b32; margin: 0; }
main { max-width: 26rem; margin: 4rem auto; background: #fff; padding: 2rem; border-radius: 4px;
       box-shadow: 0 1px 3px rgba(0,0,0,.2); }
h1 { font-size: 1.6rem; margin-top: 0; }
label { display: block; font-weight: bold; margin: 1rem 0 .3rem; }
input[type=text], input[type=password] { width: 100%; box-sizing: border-box; padding: .5rem; font-size: 1rem;
       border: 2px solid #4c6272; border-radius: 2px; }
input:focus, button:focus, a:focus { outline: 3px solid #ffeb3b; outline-offset: 0; }
button { margin-top: 1.5rem; padding: .6rem 1.2rem; font-size: 1rem; background: #007f3b; color: #fff;
       border: 0; border-radius: 4px; cursor: pointer; }
.alert { border-left: 6px solid #d5281b; padding: .6rem 1rem; background: #fff4f4; margin-bottom: 1rem; }
.info { border-left: 6px solid #005eb8; padding: .6rem 1rem; background: #eef7ff; margin-bottom: 1rem; }
.sso { display: inline-block; margin-top: 1rem; color: #005eb8; font-weight: bold; }
</style>
</head>
<body>
<main>
<h1>Sign in to DynAIRx</h1>
{% if demo %}<div class="info" role="note"><strong>Demo mode.</strong> These are demo accounts over synthetic
patients: <code>demo-gp</code>, <code>demo-pharmacist</code>, <code>demo-researcher</code> and
<code>demo-admin</code>, with the password printed by <code>dynairx demo</code>.</div>{% endif %}
{% if notice %}<div class="info" role="status">{{ notice }}</div>{% endif %}
{% if error %}<div class="alert" role="alert">{{ error }}</div>{% endif %}
<form method="post" action="/login">
<input type="hidden" name="csrf_token" value="{{ csrf_token }}">
<input type="hidden" name="next" value="{{ next }}">
<label for="username">User name</label>
<input type="text" id="username" name="username" autocomplete="username" required value="{{ username }}"
       autocapitalize="none" spellcheck="false">
<label for="password">Password</label>
<input type="password" id="password" name="password" autocomplete="current-password" required>
<button type="submit">Sign in</button>
</form>
{% if oidc_label %}<p><a class="sso" href="/login/oidc?next={{ next | urlencode }}">{{ oidc_label }}</a></p>{% endif %}
</main>
</body>
</html>
"""

LOGOUT_TEMPLATE = """<!DOCTYPE html>
<html lang="en-GB"><head><meta charset="utf-8"><title>Sign out - DynAIRx</title></head>
<body><main><h1>Sign out of DynAIRx?</h1>
<form method="post" action="/logout"><input type="hidden" name="csrf_token" value="{{ csrf_token }}">
<button type="submit">Sign out</button></form></main></body></html>
"""


def render_login(*, error: str | None = None, status: int = 200, username: str = "") -> flask.Response:
    state = security_state()
    notice = None
    if flask.request.args.get("expired"):
        notice = "You were signed out after a period of inactivity. Sign in again to continue."
    elif flask.request.args.get("signed_out"):
        notice = "You have signed out."
    html = flask.render_template_string(
        LOGIN_TEMPLATE,
        demo=state.config.demo,
        notice=notice,
        error=error,
        csrf_token=generate_csrf(),
        next=safe_next(flask.request.values.get("next")),
        username=username[:100],
        oidc_label=state.config.oidc.label if state.config.oidc else None,
    )
    return flask.Response(html, status=status, mimetype="text/html")


def _signed_in_user() -> CurrentUser | None:
    state = security_state()
    try:
        return user_from_session(state.config, state.engine)
    except SessionEnded:
        return None


@blueprint.get("/login")
def login_form() -> flask.Response:
    if _signed_in_user() is not None:
        return flask.redirect(safe_next(flask.request.args.get("next")))
    return render_login()


@blueprint.post("/login")
def login_submit() -> flask.Response:
    state = security_state()
    config = state.config
    username = (flask.request.form.get("username") or "").strip()
    password = flask.request.form.get("password") or ""
    address = flask.request.remote_addr or "unknown"
    window_start = utc_now() - dt.timedelta(seconds=config.lockout_s)
    if failed_sign_ins_from(state.engine, address, window_start) >= config.ip_failure_limit:
        _record_failure(None, address, "too many failures from this address")
        return render_login(error=THROTTLED_MESSAGE, status=429, username=username)
    result = check_password_sign_in(
        state.engine,
        username[:100],
        password,
        max_attempts=config.lockout_attempts,
        lockout=dt.timedelta(seconds=config.lockout_s),
    )
    if not result.ok:
        reason = result.failure.value if result.failure else "unknown"
        if result.locked_now:
            reason += "; account locked"
        _record_failure(result.username, address, reason)
        return render_login(error=FAILED_MESSAGE, status=401, username=username)
    assert result.role is not None and result.username is not None
    user = CurrentUser.for_role(result.username, result.role, result.practice_ids)
    start_session(user, method="password")
    set_current_user(user)
    audit(AuditAction.LOGIN, detail=f"password; ip={address}")
    return flask.redirect(safe_next(flask.request.form.get("next")))


def _record_failure(username: str | None, address: str, reason: str) -> None:
    append_audit_record(
        security_state().engine,
        username=username or UNKNOWN_ACCOUNT,
        role=None,
        action=AuditAction.LOGIN_FAILED,
        detail=sign_in_failure_detail(address, reason),
        outcome="denied",
    )


@blueprint.route("/logout", methods=["GET", "POST"])
def logout() -> flask.Response:
    """POST (with CSRF token) signs out; so does a GET from a link inside the app.

    A cross-site GET (``Sec-Fetch-Site: cross-site``) gets a confirmation form instead, so another site cannot
    sign a user out behind their back.
    """
    fetch_site = flask.request.headers.get("Sec-Fetch-Site", "same-origin")
    if flask.request.method == "GET" and fetch_site not in {"same-origin", "none"}:
        html = flask.render_template_string(LOGOUT_TEMPLATE, csrf_token=generate_csrf())
        return flask.Response(html, mimetype="text/html")
    user = _signed_in_user()
    if user is not None:
        set_current_user(user)
        audit(AuditAction.LOGOUT)
    end_session()
    set_current_user(None)
    return flask.redirect("/login?signed_out=1")


AUDIT_EXPORT_PATH = "/admin/audit/export.csv"


@blueprint.get(AUDIT_EXPORT_PATH)
def export_audit_csv() -> flask.Response:
    """The audit trail (filtered as on /admin/audit) as CSV, streamed; the export is itself audited."""
    user = current_user()
    if user is None or not user.can(Permission.EXPORT_AUDIT):
        raise deny(AuditAction.EXPORT_AUDIT, permission=Permission.EXPORT_AUDIT)
    try:
        criteria = parse_audit_filter(flask.request.args)
    except BadAuditFilter as error:
        flask.abort(400, description=str(error))
    audit(AuditAction.EXPORT_AUDIT, detail=describe_filter(criteria))
    engine = security_state().engine
    stamp = utc_now().strftime("%Y%m%dT%H%M%SZ")
    return flask.Response(
        flask.stream_with_context(iter_audit_csv(engine, criteria)),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="dynairx-audit-{stamp}.csv"'},
    )
