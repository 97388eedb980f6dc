"""Response hardening: security headers, Content-Security-Policy with Dash's script hashes, the CSRF cookie.

The CSP is built per response because with ``use_pages=True`` Dash registers a clientside callback (an inline
script) on the first request, so hashes taken at start-up would miss it (shared/notes/web-stack.md).
"""

from __future__ import annotations

import flask
from flask_wtf.csrf import generate_csrf

from app.security.identity import current_user
from app.security.paths import is_dispatch, is_static
from app.security.state import security_state

CSRF_COOKIE = (
    "_csrf_token"  # the cookie the Dash renderer copies into the X-CSRFToken header of each callback
)

BASE_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=(), usb=(), interest-cohort=()",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}
HSTS = "max-age=31536000; includeSubDomains"
# JSON and other non-documents: nothing may load from them and nobody may frame them.
NON_DOCUMENT_CSP = "default-src 'none'; frame-ancestors 'none'"


def document_csp() -> str:
    """The policy of HTML documents. Styles keep 'unsafe-inline': Dash and Plotly set inline style attributes."""
    script_src = ["'self'"]
    app = security_state().dash()
    if app is not None:
        script_src += list(app.csp_hashes())  # already quoted: "'sha256-...'"
    directives = {
        "default-src": "'self'",
        "script-src": " ".join(script_src),
        "style-src": "'self' 'unsafe-inline'",
        "img-src": "'self' data: blob:",
        "font-src": "'self' data:",
        "connect-src": "'self'",
        "worker-src": "'self' blob:",
        "object-src": "'none'",
        "base-uri": "'self'",
        "form-action": "'self'",
        "frame-ancestors": "'none'",
    }
    return "; ".join(f"{name} {value}" for name, value in directives.items())


def harden_response(response: flask.Response) -> flask.Response:
    state = security_state()
    request = flask.request
    for name, value in BASE_HEADERS.items():
        response.headers.setdefault(name, value)
    if request.is_secure and not state.config.demo:
        response.headers.setdefault("Strict-Transport-Security", HSTS)
    if response.mimetype == "text/html":
        response.headers["Content-Security-Policy"] = document_csp()
    else:
        response.headers.setdefault("Content-Security-Policy", NON_DOCUMENT_CSP)
    if not is_static(request.path):
        # Patient data must not linger in browser or proxy caches on shared clinical computers.
        response.headers["Cache-Control"] = "no-store"
        response.headers["Pragma"] = "no-cache"
    _set_csrf_cookie(response)
    return response


def _set_csrf_cookie(response: flask.Response) -> None:
    """Give the Dash renderer the token for its callbacks: on documents and on callback answers of a session."""
    request = flask.request
    wants_token = response.mimetype == "text/html" or (
        is_dispatch(request.path) and current_user() is not None
    )
    if not wants_token or is_static(request.path):
        return
    config = security_state().config
    response.set_cookie(
        CSRF_COOKIE,
        generate_csrf(),
        secure=config.secure_cookies,
        httponly=False,  # the renderer's JavaScript must read it
        samesite="Strict",
        path="/",
    )
