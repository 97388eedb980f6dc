"""Single sign-on with an OpenID Connect identity provider (NHS CIS2, or an ICB's Azure AD / Keycloak).

Authorization code flow with PKCE (S256), state and nonce, done by Authlib; the ID token's signature (the
provider's JWKS), issuer, audience, expiry and nonce are checked before anything in it is believed. The provider's
groups map to exactly one DynAIRx role through ``DYNAIRX_OIDC_ROLE_MAP``; a user whose groups map to no role, or
to several different roles, is refused rather than given a guess.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import flask
import requests
from authlib.common.errors import AuthlibBaseError
from authlib.integrations.flask_client import OAuth
from joserfc.errors import JoseError

from app.security.accounts import USERNAME_PATTERN
from app.security.audit import AuditAction, audit
from app.security.config import OIDCConfig
from app.security.identity import CurrentUser, set_current_user
from app.security.paths import safe_next
from app.security.roles import PRACTICE_SCOPED_ROLES, Role
from app.security.session import start_session
from app.security.state import security_state
from data_access import users as store
from data_access.queries.audit import append_audit_record

blueprint = flask.Blueprint("dynairx_oidc", __name__)
CLIENT_NAME = "idp"
NEXT_KEY = "oidc_next"
REFUSED_MESSAGE = "Single sign-on did not give you access to DynAIRx. Ask your administrator."


class OIDCRefused(Exception):
    """The identity provider's answer does not give this user access; ``reason`` goes to the audit log."""

    def __init__(self, reason: str, username: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.username = username


def register_client(server: flask.Flask, config: OIDCConfig) -> Any:
    oauth = OAuth(server)
    return oauth.register(
        name=CLIENT_NAME,
        client_id=config.client_id,
        client_secret=config.client_secret,
        server_metadata_url=f"{config.issuer}/.well-known/openid-configuration",
        client_kwargs={"scope": config.scopes, "code_challenge_method": "S256"},
    )


def _as_list(value: object) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [part for part in value.replace(",", " ").split() if part]
    if isinstance(value, Iterable):
        return [str(item) for item in value]
    return [str(value)]


def identity_from_claims(claims: dict[str, Any], config: OIDCConfig) -> tuple[str, Role, list[str] | None]:
    """(username, role, practices or None = keep local assignment) from validated ID-token claims."""
    username = str(claims.get(config.username_claim) or claims.get("sub") or "")
    if not USERNAME_PATTERN.fullmatch(username):
        raise OIDCRefused("user name claim missing or not a valid user name")
    groups = _as_list(claims.get(config.groups_claim))
    roles = {config.role_map[group] for group in groups if group in config.role_map}
    if not roles:
        raise OIDCRefused("no group maps to a role", username)
    if len(roles) > 1:
        raise OIDCRefused(
            "groups map to several roles: " + ",".join(sorted(r.value for r in roles)), username
        )
    role = roles.pop()
    practices = _as_list(claims.get(config.practices_claim)) if config.practices_claim else None
    return username, role, practices


@blueprint.get("/login/oidc")
def start() -> flask.Response:
    state = security_state()
    if state.oidc_client is None:
        flask.abort(404)
    flask.session[NEXT_KEY] = safe_next(flask.request.args.get("next"))
    redirect_uri = flask.url_for("dynairx_oidc.callback", _external=True)
    return state.oidc_client.authorize_redirect(redirect_uri)


@blueprint.get("/login/oidc/callback")
def callback() -> flask.Response:
    state = security_state()
    config = state.config.oidc
    if state.oidc_client is None or config is None:
        flask.abort(404)
    address = flask.request.remote_addr or "unknown"
    try:
        user = _complete_sign_in(state.oidc_client, config)
    except OIDCRefused as refused:
        _record_refusal(refused.username, address, refused.reason)
        return _refused_page()
    except (AuthlibBaseError, JoseError, requests.RequestException, ValueError, KeyError) as error:
        # Bad state, a replayed code, a bad signature or claim, an unreachable provider: the class says which;
        # the message is not logged because it may quote the token.
        _record_refusal(None, address, f"identity provider exchange failed: {type(error).__name__}")
        return _refused_page()
    next_url = flask.session.get(NEXT_KEY, "/")
    start_session(user, method="oidc")
    set_current_user(user)
    audit(AuditAction.LOGIN, detail=f"oidc; ip={address}")
    return flask.redirect(safe_next(next_url))


def _complete_sign_in(client: Any, config: OIDCConfig) -> CurrentUser:
    metadata = client.load_server_metadata()
    if str(metadata.get("issuer", "")).rstrip("/") != config.issuer:
        # OpenID Connect Discovery 1.0 §4.3: the issuer in the metadata must be the one we configured.
        raise OIDCRefused("issuer in the provider metadata does not match DYNAIRX_OIDC_ISSUER")
    token = client.authorize_access_token()
    claims = token.get("userinfo")
    if not claims:
        raise OIDCRefused("the provider returned no ID token")
    username, role, practices = identity_from_claims(dict(claims), config)
    engine = security_state().engine
    existing = store.get_credentials(engine, username)
    if existing is not None and existing.password_hash is not None:
        raise OIDCRefused("a local password account has this user name", username)
    if existing is not None and not existing.active:
        raise OIDCRefused("account disabled", username)
    store.upsert_user(engine, username, role.value, practices, None)
    assigned = practices if practices is not None else list(existing.practice_ids if existing else ())
    if role in PRACTICE_SCOPED_ROLES and not assigned:
        raise OIDCRefused("no practice assigned", username)
    return CurrentUser.for_role(username, role, assigned)


def _record_refusal(username: str | None, address: str, reason: str) -> None:
    append_audit_record(
        security_state().engine,
        username=username or "(unknown account)",
        role=None,
        action=AuditAction.LOGIN_FAILED,
        detail=f"ip={address}; reason=oidc: {reason}",
        outcome="denied",
    )


def _refused_page() -> flask.Response:
    from app.security.views import render_login

    return render_login(error=REFUSED_MESSAGE, status=403)
