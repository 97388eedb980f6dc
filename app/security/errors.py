"""Error pages that never leak stack traces, SQL or patient ids to the browser.

HTTP errors answer in JSON to Dash's endpoints and in a small HTML page elsewhere; anything unexpected is a plain
500 with an error reference the operator can find in the server log (which holds the traceback frames, but not the
exception message, because database errors repeat their bound parameters).
"""

from __future__ import annotations

import logging
import secrets
import traceback

import flask
from dash.exceptions import DependencyException
from werkzeug.exceptions import HTTPException

from app.security.logs import redact
from app.security.paths import is_dash_endpoint

logger = logging.getLogger("app.security.errors")

ERROR_TEMPLATE = """<!DOCTYPE html>
<html lang="en-GB"><head><meta charset="utf-8"><title>{{ title }} - DynAIRx</title></head>
<body><main><h1>{{ title }}</h1><p>{{ message }}</p>{% if reference %}<p>Error reference: {{ reference }}</p>
{% endif %}<p><a href="/">Back to DynAIRx</a></p></main></body></html>
"""

MESSAGES = {
    400: "The request could not be understood. If you were filling in a form, reload the page and try again.",
    401: "Please sign in.",
    403: "You do not have access to this.",
    404: "There is nothing at this address.",
    405: "That action is not allowed here.",
    413: "That request is too large.",
    429: "Too many requests. Wait a few minutes and try again.",
}


def _wants_json() -> bool:
    request = flask.request
    return is_dash_endpoint(request.path) or request.method not in {"GET", "HEAD"} and not request.form


def _render(code: int, title: str, message: str, reference: str | None = None) -> flask.Response:
    if _wants_json():
        body = {"error": title, "status": code}
        if reference:
            body["reference"] = reference
        response = flask.jsonify(body)
    else:
        html = flask.render_template_string(ERROR_TEMPLATE, title=title, message=message, reference=reference)
        response = flask.Response(html, mimetype="text/html")
    response.status_code = code
    return response


def handle_http_error(error: HTTPException) -> flask.Response:
    code = error.code or 500
    response = _render(code, error.name, MESSAGES.get(code, "The request could not be completed."))
    if code == 401:
        response.headers["WWW-Authenticate"] = 'Session realm="DynAIRx"'
    return response


def handle_unexpected_error(error: Exception) -> flask.Response:
    if isinstance(error, HTTPException):
        return handle_http_error(error)
    if isinstance(error, DependencyException):
        # A request for a JavaScript bundle Dash does not serve: a missing file, not a server fault.
        return _render(404, "Not Found", MESSAGES[404])
    reference = secrets.token_hex(6)
    frames = "".join(traceback.format_tb(error.__traceback__))
    logger.error(
        "Unhandled %s on %s %s (reference %s)\n%s",
        type(error).__name__,
        flask.request.method,
        redact(flask.request.path),
        reference,
        frames,
    )
    return _render(500, "Internal Server Error", "Something went wrong on our side.", reference)


def register_error_handlers(server: flask.Flask) -> None:
    server.register_error_handler(HTTPException, handle_http_error)
    server.register_error_handler(Exception, handle_unexpected_error)
