"""Single sign-on against a fake OpenID Connect provider running locally (no internet needed).

The provider is a small Flask app served on 127.0.0.1 in a thread: discovery document, authorization endpoint
(approves whichever identity the test sets), token endpoint (checks the client secret and PKCE), JWKS. The
dashboard talks to it over real HTTP through Authlib, exactly as it would to NHS CIS2 or an ICB's provider.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import dash
import flask
import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey
from security_support import Browser, security_app, seed_practices, seed_users
from sqlalchemy import Engine
from werkzeug.serving import make_server

from data_access.db import make_engine
from data_access.migrate import upgrade_database
from data_access.queries.audit import AuditFilter, search_audit
from data_access.users import get_credentials

CLIENT_ID = "dynairx-test"
CLIENT_SECRET = "client-secret-for-tests"


@dataclass
class FakeProvider:
    """What the provider will say next; tests change these to simulate a misbehaving or hostile provider."""

    issuer: str = ""
    claims: dict[str, Any] = field(default_factory=dict)
    key: RSAKey = field(
        default_factory=lambda: RSAKey.generate_key(2048, parameters={"kid": "k1", "alg": "RS256"})
    )
    rogue_key: RSAKey | None = None
    audience: str = CLIENT_ID
    token_issuer: str | None = None
    metadata_issuer: str | None = None
    codes: dict[str, dict[str, Any]] = field(default_factory=dict)

    def app(self) -> flask.Flask:
        provider = flask.Flask("fake_idp")

        @provider.get("/.well-known/openid-configuration")
        def discovery() -> flask.Response:
            return flask.jsonify(
                {
                    "issuer": self.metadata_issuer or self.issuer,
                    "authorization_endpoint": f"{self.issuer}/authorize",
                    "token_endpoint": f"{self.issuer}/token",
                    "jwks_uri": f"{self.issuer}/jwks",
                    "response_types_supported": ["code"],
                    "subject_types_supported": ["public"],
                    "id_token_signing_alg_values_supported": ["RS256"],
                    "code_challenge_methods_supported": ["S256"],
                }
            )

        @provider.get("/jwks")
        def jwks() -> flask.Response:
            return flask.jsonify(KeySet([self.key]).as_dict(private=False))

        @provider.get("/authorize")
        def authorize() -> flask.Response:
            args = flask.request.args
            assert args["client_id"] == CLIENT_ID and args["response_type"] == "code"
            assert args["code_challenge_method"] == "S256" and "openid" in args["scope"].split()
            code = secrets.token_urlsafe(16)
            self.codes[code] = {
                "nonce": args.get("nonce"),
                "challenge": args["code_challenge"],
                "redirect_uri": args["redirect_uri"],
            }
            return flask.redirect(
                f"{args['redirect_uri']}?{urlencode({'code': code, 'state': args['state']})}"
            )

        @provider.post("/token")
        def token() -> flask.Response:
            form = flask.request.form
            auth = flask.request.authorization
            if auth is None or (auth.username, auth.password) != (CLIENT_ID, CLIENT_SECRET):
                return flask.jsonify({"error": "invalid_client"}), 401
            grant = self.codes.pop(form.get("code", ""), None)
            if grant is None or form.get("redirect_uri") != grant["redirect_uri"]:
                return flask.jsonify({"error": "invalid_grant"}), 400
            digest = hashlib.sha256(form.get("code_verifier", "").encode()).digest()
            if base64.urlsafe_b64encode(digest).rstrip(b"=").decode() != grant["challenge"]:
                return flask.jsonify({"error": "invalid_grant", "error_description": "PKCE"}), 400
            now = int(time.time())
            claims = {
                "iss": self.token_issuer or self.issuer,
                "aud": self.audience,
                "iat": now,
                "exp": now + 300,
                "nonce": grant["nonce"],
                **self.claims,
            }
            signer = self.rogue_key or self.key
            id_token = jwt.encode({"alg": "RS256", "kid": "k1"}, claims, signer)
            return flask.jsonify(
                {
                    "access_token": secrets.token_urlsafe(16),
                    "token_type": "Bearer",
                    "expires_in": 300,
                    "id_token": id_token,
                }
            )

        return provider


@pytest.fixture(scope="module")
def provider() -> Iterator[FakeProvider]:
    fake = FakeProvider()
    server = make_server("127.0.0.1", 0, fake.app(), threaded=True)
    fake.issuer = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield fake
    server.shutdown()
    thread.join(timeout=5)


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path_factory.mktemp('oidc') / 'oidc.sqlite'}")
    upgrade_database(engine)
    seed_practices(engine)
    seed_users(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def app(provider: FakeProvider, engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[dash.Dash]:
    provider.claims = {}
    provider.rogue_key = None
    provider.audience = CLIENT_ID
    provider.token_issuer = None
    provider.metadata_issuer = None
    monkeypatch.setenv("DYNAIRX_OIDC_ISSUER", provider.issuer)
    monkeypatch.setenv("DYNAIRX_OIDC_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("DYNAIRX_OIDC_CLIENT_SECRET", CLIENT_SECRET)
    monkeypatch.setenv(
        "DYNAIRX_OIDC_ROLE_MAP", "cis2-gp=gp,cis2-pharmacist=pharmacist,icb-research=researcher"
    )
    monkeypatch.setenv("DYNAIRX_OIDC_PRACTICES_CLAIM", "ods_codes")
    monkeypatch.setenv("DYNAIRX_OIDC_LABEL", "Sign in with NHS Care Identity")
    with security_app(engine) as built:
        yield built


def _sso(browser: Browser, *, next_url: str = "/sec-worklist", tamper_state: bool = False) -> flask.Response:
    """Follow the redirects of a browser through the provider and back; return the dashboard's final answer."""
    start = browser.get(f"/login/oidc?next={next_url}")
    assert start.status_code == 302
    authorize_url = start.headers["Location"]
    back = httpx.get(authorize_url, follow_redirects=False)
    assert back.status_code == 302
    callback = urlsplit(back.headers["Location"])
    query = callback.query
    if tamper_state:
        params = {k: v[0] for k, v in parse_qs(query).items()}
        params["state"] = "forged-state"
        query = urlencode(params)
    return browser.get(f"{callback.path}?{query}")


def _denials(engine: Engine) -> list[str]:
    records = search_audit(engine, AuditFilter(action="login_failed"), limit=1000)
    return [r.detail or "" for r in records if "oidc" in (r.detail or "")]


def test_login_page_offers_single_sign_on(app: dash.Dash) -> None:
    page = Browser(app.server.test_client()).get("/login").get_data(as_text=True)
    assert "Sign in with NHS Care Identity" in page and 'href="/login/oidc?next=' in page


def test_provider_groups_grant_a_role_and_practices(
    app: dash.Dash, provider: FakeProvider, engine: Engine
) -> None:
    provider.claims = {
        "sub": "5551234",
        "preferred_username": "dr.jones",
        "groups": ["cis2-gp", "staff"],
        "ods_codes": ["PB"],
    }
    browser = Browser(app.server.test_client())
    done = _sso(browser)
    assert done.status_code == 302 and done.headers["Location"] == "/sec-worklist"
    listed = browser.callback("sec-list.children", [{"id": "sec-filter", "property": "value", "value": ""}])
    assert "pat-b1" in listed.get_data(as_text=True) and "pat-a1" not in listed.get_data(as_text=True)
    assert browser.get("/sec-audit").status_code == 403
    stored = get_credentials(engine, "dr.jones")
    assert stored is not None and stored.role == "gp" and stored.practice_ids == ("PB",)
    assert stored.password_hash is None
    logins = search_audit(engine, AuditFilter(username="dr.jones", action="login"))
    assert logins and "oidc" in (logins[0].detail or "")


def test_researcher_group_needs_no_practice(app: dash.Dash, provider: FakeProvider) -> None:
    provider.claims = {"sub": "r-1", "preferred_username": "analyst", "groups": ["icb-research"]}
    browser = Browser(app.server.test_client())
    assert _sso(browser).status_code == 302
    assert browser.get("/sec-worklist").status_code == 403
    assert browser.get("/sec-help").status_code == 200


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"sub": "u-2", "preferred_username": "visitor", "groups": ["staff"]}, "no group maps"),
        (
            {"sub": "u-3", "preferred_username": "twohats", "groups": ["cis2-gp", "icb-research"]},
            "several roles",
        ),
        (
            {"sub": "u-4", "preferred_username": "gp-a", "groups": ["cis2-gp"], "ods_codes": ["PB"]},
            "local password",
        ),
        (
            {"sub": "u-5", "preferred_username": "floating", "groups": ["cis2-pharmacist"], "ods_codes": []},
            "no practice",
        ),
    ],
)
def test_provider_answers_that_grant_nothing_are_refused(
    app: dash.Dash, provider: FakeProvider, engine: Engine, claims: dict, reason: str
) -> None:
    provider.claims = claims
    browser = Browser(app.server.test_client())
    refused = _sso(browser)
    assert refused.status_code == 403
    assert browser.get("/sec-help").status_code == 302
    assert any(reason in detail for detail in _denials(engine))


def test_forged_or_misissued_tokens_are_refused(
    app: dash.Dash, provider: FakeProvider, engine: Engine
) -> None:
    provider.claims = {
        "sub": "u-6",
        "preferred_username": "mallory",
        "groups": ["cis2-gp"],
        "ods_codes": ["PA"],
    }
    attempts = {
        "signed with a key not in the provider's JWKS": {"rogue_key": RSAKey.generate_key(2048)},
        "issued for another client": {"audience": "someone-else"},
        "from another issuer": {"token_issuer": "https://evil.example"},
    }
    for label, changes in attempts.items():
        for name, value in changes.items():
            setattr(provider, name, value)
        browser = Browser(app.server.test_client())
        assert _sso(browser).status_code == 403, label
        assert browser.get("/sec-help").status_code == 302, label
        provider.rogue_key, provider.audience, provider.token_issuer = None, CLIENT_ID, None
    browser = Browser(app.server.test_client())
    assert _sso(browser, tamper_state=True).status_code == 403  # CSRF on the callback (state mismatch)
    assert get_credentials(engine, "mallory") is None
    assert len([d for d in _denials(engine) if "exchange failed" in d]) >= 4


def test_provider_metadata_must_name_the_configured_issuer(app: dash.Dash, provider: FakeProvider) -> None:
    provider.claims = {"sub": "u-7", "preferred_username": "eve", "groups": ["cis2-gp"], "ods_codes": ["PA"]}
    provider.metadata_issuer = "https://impostor.example"
    browser = Browser(app.server.test_client())
    assert _sso(browser).status_code == 403
