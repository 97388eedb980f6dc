"""``init_security(server, engine, settings)``: wire sign-in, guard, CSRF, headers and error pages into Flask."""

from __future__ import annotations

import datetime as dt

import dash
import flask
from flask_wtf.csrf import CSRFProtect
from sqlalchemy import Engine
from werkzeug.middleware.proxy_fix import ProxyFix

from app.security.config import SecurityConfig
from app.security.errors import register_error_handlers
from app.security.guard import guard
from app.security.headers import harden_response
from app.security.logs import install_log_redaction
from app.security.state import EXTENSION_KEY, SecurityState
from data_access.settings import Settings

MAX_REQUEST_BYTES = 4 * 1024 * 1024


def init_security(
    server: flask.Flask,
    engine: Engine,
    settings: Settings | None = None,
    *,
    dash_app: dash.Dash | None = None,
) -> SecurityState:
    """Protect every route of ``server``. Call once per app, after the Dash app is built on it.

    Pass ``dash_app`` when more than one Dash app may exist in the process (tests): the guard reads its callback
    map and the CSP reads its script hashes. Without it the most recently created Dash app is used.
    """
    if EXTENSION_KEY in server.extensions:
        raise RuntimeError("init_security was already called on this app")
    config = SecurityConfig.from_settings(settings or Settings.from_env())
    _configure_flask(server, config)
    state = SecurityState(engine=engine, config=config, dash_app=dash_app)
    server.extensions[EXTENSION_KEY] = state

    # The guard is registered before CSRFProtect so that an anonymous callback gets 401 (sign in), not 400.
    server.before_request(guard)
    CSRFProtect(server)
    from app.security.oidc import blueprint as oidc_blueprint
    from app.security.oidc import register_client
    from app.security.views import blueprint as login_blueprint

    server.register_blueprint(login_blueprint)
    if config.oidc is not None:
        state.oidc_client = register_client(server, config.oidc)
        server.register_blueprint(oidc_blueprint)
    server.after_request(harden_response)
    register_error_handlers(server)
    install_log_redaction()
    if config.trusted_proxies:
        server.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            server.wsgi_app,
            x_for=config.trusted_proxies,
            x_proto=config.trusted_proxies,
            x_host=config.trusted_proxies,
        )
    return state


def _configure_flask(server: flask.Flask, config: SecurityConfig) -> None:
    server.secret_key = config.secret_key
    server.config.update(
        # "__Host-" cookies must be Secure, path "/" and carry no Domain: a sibling site cannot plant one.
        SESSION_COOKIE_NAME="__Host-dynairx_session" if config.secure_cookies else "dynairx_session",
        SESSION_COOKIE_SECURE=config.secure_cookies,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_PATH="/",
        SESSION_REFRESH_EACH_REQUEST=False,
        PERMANENT_SESSION_LIFETIME=dt.timedelta(seconds=config.max_session_s),
        WTF_CSRF_TIME_LIMIT=config.max_session_s,
        WTF_CSRF_SSL_STRICT=True,
        MAX_CONTENT_LENGTH=MAX_REQUEST_BYTES,
        PROPAGATE_EXCEPTIONS=False,
        TRAP_HTTP_EXCEPTIONS=False,
        DEBUG=False,
    )
    if not config.demo:
        server.debug = False
