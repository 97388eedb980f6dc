"""Access control of a Dash app behind ``init_security``: the crawl, roles, practice scope, CSRF and audit.

Runs on a small Dash app built for these tests (tests/security_support.py) so the rules are proven independently
of the real pages; tests/integration/test_security_dashboard.py repeats the crawl over the real dashboard.
"""

from __future__ import annotations

from collections.abc import Iterator

import dash
import pytest
from security_support import Browser, router_inputs, security_app, seed_practices, seed_users
from sqlalchemy import Engine

from app.security.identity import required_permission
from data_access.db import make_engine
from data_access.migrate import upgrade_database
from data_access.queries.audit import AuditFilter, search_audit

PAGES = ["/sec-help", "/sec-worklist", "/sec-patient/pat-a1", "/sec-audit", "/sec-no-such-page"]


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path_factory.mktemp('sec') / 'sec.sqlite'}")
    upgrade_database(engine)
    seed_practices(engine)
    seed_users(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def app(engine: Engine) -> Iterator[dash.Dash]:
    with security_app(engine) as built:
        yield built


def _browser(app: dash.Dash) -> Browser:
    return Browser(app.server.test_client())


def _signed_in(app: dash.Dash, username: str) -> Browser:
    browser = _browser(app)
    response = browser.login(username)
    assert response.status_code == 302, response.get_data(as_text=True)
    return browser


def _callbacks(app: dash.Dash) -> list[dict]:
    """The callback map as the browser sees it, from the public /_dash-dependencies response."""
    admin = _signed_in(app, "admin")
    response = admin.client.get("/_dash-dependencies")
    assert response.status_code == 200
    return response.get_json()


def _inputs_of(spec: dict, value: object = None) -> list[dict]:
    return [{"id": i["id"], "property": i["property"], "value": value} for i in spec["inputs"]]


def _records(engine: Engine, **criteria: str) -> list:
    return search_audit(engine, AuditFilter(**criteria), limit=1000)


def test_crawl_without_session(app: dash.Dash) -> None:
    anonymous = _browser(app)
    rules = [rule for rule in app.server.url_map.iter_rules()]
    assert any(rule.rule == "/_dash-update-component" for rule in rules)
    for rule in rules:
        path = rule.rule.replace("<path:path>", "some/page").replace("<path:filename>", "x.css")
        path = path.replace("<string:package_name>", "dash").replace(
            "<path:fingerprinted_path>", "dash.v1.js"
        )
        if path.startswith(("/assets/", "/static/")) or path in {"/_favicon.ico", "/login", "/logout"}:
            continue
        if "<" in path:
            path = path.split("<")[0] + "x"
        if "GET" in rule.methods:
            response = anonymous.client.get(path)
            if path.startswith("/_") or path == "/admin/audit/export.csv":
                assert response.status_code in {401, 302}, path
                if path.startswith("/_"):
                    assert response.status_code == 401, path
            else:
                assert response.status_code == 302, path
                assert response.headers["Location"].startswith("/login?next="), path
        if "POST" in rule.methods and path != "/login":
            assert anonymous.client.post(path, json={}).status_code == 401, path
    for spec in _callbacks(app):
        response = anonymous.callback(spec["output"], _inputs_of(spec), csrf=False)
        assert response.status_code == 401, spec["output"]
        assert response.is_json and "sign-in" in response.get_json()["error"]


def test_pages_need_a_session_then_their_permission(app: dash.Dash) -> None:
    gp = _signed_in(app, "gp-a")
    researcher = _signed_in(app, "researcher")
    admin = _signed_in(app, "admin")
    assert [gp.client.get(p).status_code for p in PAGES] == [200, 200, 200, 403, 200]
    assert [researcher.client.get(p).status_code for p in PAGES] == [200, 403, 403, 403, 200]
    assert [admin.client.get(p).status_code for p in PAGES] == [200, 403, 403, 200, 200]


def test_every_callback_with_the_wrong_role_is_403(app: dash.Dash, engine: Engine) -> None:
    """Each server callback is POSTed by every role; those lacking its declared permission get 403."""
    from security_support import USERS

    from app.security import ROLE_PERMISSIONS, Role

    specs = [s for s in _callbacks(app) if not s.get("clientside_function") and "_pages" not in s["output"]]
    assert len(specs) >= 3
    sessions = {username: _signed_in(app, username) for username in USERS}
    for spec in specs:
        func = app.callback_map[spec["output"]]["callback"]
        needed = required_permission(func)
        for username, (role, _) in USERS.items():
            response = sessions[username].callback(spec["output"], _inputs_of(spec))
            if needed is None or needed not in ROLE_PERMISSIONS[Role(role)]:
                assert response.status_code == 403, (spec["output"], username)
            else:
                assert response.status_code in {200, 204}, (spec["output"], username, response.status_code)
    assert _records(engine, action="callback", outcome="denied")


def test_callback_without_requires_is_refused_for_everyone(app: dash.Dash, engine: Engine) -> None:
    admin = _signed_in(app, "admin")
    response = admin.callback("sec-naked.children", [{"id": "sec-url", "property": "pathname", "value": "/"}])
    assert response.status_code == 403
    denied = _records(engine, username="admin", action="callback", outcome="denied")
    assert any("declares no permission" in (r.detail or "") for r in denied)


def test_gp_cannot_reach_another_practices_patient(app: dash.Dash, engine: Engine) -> None:
    gp = _signed_in(app, "gp-a")
    before = len(_records(engine, username="gp-a", patient_id="pat-b1", outcome="denied"))
    # 1. the address bar
    assert gp.client.get("/sec-patient/pat-b1").status_code == 403
    # 2. a forged pages-router callback (client-side navigation)
    router = next(s["output"] for s in _callbacks(app) if "_pages_content" in s["output"])
    assert gp.callback(router, router_inputs("/sec-patient/pat-b1")).status_code == 403
    # 3. a forged data callback with the other practice's patient id
    forged = gp.callback(
        "sec-patient-detail.children", [{"id": "sec-patient-id", "property": "data", "value": "pat-b1"}]
    )
    assert forged.status_code == 403
    assert "pat-b1" not in forged.get_data(as_text=True) or "Record of" not in forged.get_data(as_text=True)
    after = _records(engine, username="gp-a", patient_id="pat-b1", outcome="denied")
    assert len(after) - before == 3
    # a patient who does not exist is refused the same way (no existence oracle)
    assert gp.client.get("/sec-patient/nobody").status_code == 403
    # the pharmacist of both practices may see it
    pharmacist = _signed_in(app, "pharm-ab")
    assert pharmacist.client.get("/sec-patient/pat-b1").status_code == 200


def test_worklist_lists_only_the_users_practices(app: dash.Dash) -> None:
    inputs = [{"id": "sec-filter", "property": "value", "value": ""}]
    gp_a = _signed_in(app, "gp-a").callback("sec-list.children", inputs).get_data(as_text=True)
    gp_b = _signed_in(app, "gp-b").callback("sec-list.children", inputs).get_data(as_text=True)
    assert "pat-a1" in gp_a and "pat-b1" not in gp_a
    assert "pat-b1" in gp_b and "pat-a1" not in gp_b


def test_one_audit_record_per_patient_view(app: dash.Dash, engine: Engine) -> None:
    gp = _signed_in(app, "pharm-ab")
    router = next(s["output"] for s in _callbacks(app) if "_pages_content" in s["output"])
    before = len(_records(engine, username="pharm-ab", action="view_patient", outcome="allowed"))
    for _ in range(3):
        assert gp.client.get("/sec-patient/pat-a2").status_code == 200  # the HTML shell: not a view
        assert gp.callback(router, router_inputs("/sec-patient/pat-a2")).status_code == 200  # the view
        detail = gp.callback(
            "sec-patient-detail.children", [{"id": "sec-patient-id", "property": "data", "value": "pat-a2"}]
        )
        assert detail.status_code == 200 and "Record of pat-a2" in detail.get_data(as_text=True)
    views = _records(engine, username="pharm-ab", action="view_patient", outcome="allowed")
    assert len(views) - before == 3
    assert {v.patient_id for v in views} == {"pat-a2"} and all(v.role == "pharmacist" for v in views)


def test_callbacks_need_the_csrf_token(app: dash.Dash) -> None:
    gp = _signed_in(app, "gp-a")
    inputs = [{"id": "sec-filter", "property": "value", "value": ""}]
    assert gp.callback("sec-list.children", inputs, csrf=False).status_code == 400
    gp.client.get("/sec-help")
    response = gp.client.post(
        "/_dash-update-component",
        json={
            "output": "sec-list.children",
            "outputs": {"id": "sec-list", "property": "children"},
            "inputs": inputs,
            "changedPropIds": [],
        },
        headers={"X-CSRFToken": "forged"},
    )
    assert response.status_code == 400
    assert gp.callback("sec-list.children", inputs).status_code == 200


def test_login_form_needs_the_csrf_token(app: dash.Dash) -> None:
    browser = _browser(app)
    browser.client.get("/login")
    response = browser.client.post(
        "/login", data={"username": "gp-a", "password": "correct horse battery staple"}
    )
    assert response.status_code == 400
    assert browser.client.get("/sec-help").status_code == 302


def test_security_headers_and_csp_cover_clientside_callbacks(app: dash.Dash) -> None:
    gp = _signed_in(app, "gp-a")
    page = gp.client.get("/sec-help")
    csp = page.headers["Content-Security-Policy"]
    for digest in app.csp_hashes():  # includes the pages title callback Dash registers on the first request
        assert digest in csp
    assert "script-src 'self' 'sha256-" in csp and "'unsafe-eval'" not in csp
    assert "frame-ancestors 'none'" in csp and "object-src 'none'" in csp
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert page.headers["X-Frame-Options"] == "DENY"
    assert page.headers["Referrer-Policy"] == "same-origin"
    assert "camera=()" in page.headers["Permissions-Policy"]
    assert page.headers["Cache-Control"] == "no-store"
    assert "Strict-Transport-Security" not in page.headers  # plain-http demo
    api = gp.client.get("/_dash-layout")
    assert api.headers["Content-Security-Policy"].startswith("default-src 'none'")


def test_error_pages_leak_nothing(app: dash.Dash) -> None:
    @app.server.route("/sec-boom")
    def boom() -> str:
        raise RuntimeError("secret detail pat-a1 SELECT * FROM patient")

    gp = _signed_in(app, "gp-a")
    response = gp.client.get("/sec-boom")
    body = response.get_data(as_text=True)
    assert response.status_code == 500
    assert "secret detail" not in body and "Traceback" not in body and "pat-a1" not in body
    assert "Error reference" in body
    missing = gp.client.get("/_dash-component-suites/nothing/here.js")
    assert missing.status_code in {400, 404} and "Traceback" not in missing.get_data(as_text=True)


def test_logout_ends_the_session(app: dash.Dash, engine: Engine) -> None:
    gp = _signed_in(app, "gp-b")
    cross_site = gp.client.get("/logout", headers={"Sec-Fetch-Site": "cross-site"})
    assert cross_site.status_code == 200 and "Sign out of DynAIRx?" in cross_site.get_data(as_text=True)
    assert gp.client.get("/sec-help").status_code == 200
    response = gp.client.get("/logout", headers={"Sec-Fetch-Site": "same-origin"})
    assert response.status_code == 302 and response.headers["Location"] == "/login?signed_out=1"
    assert gp.client.get("/sec-help").status_code == 302
    assert _records(engine, username="gp-b", action="logout")


def test_sign_in_redirect_is_local_only(app: dash.Dash) -> None:
    response = _browser(app).login("gp-a", next_url="//evil.example/x")
    assert response.headers["Location"] == "/"
    response = _browser(app).login("gp-a", next_url="/sec-patient/pat-a1")
    assert response.headers["Location"] == "/sec-patient/pat-a1"


def test_demo_sign_in_page_names_the_demo_accounts(app: dash.Dash) -> None:
    page = _browser(app).client.get("/login").get_data(as_text=True)
    assert 'lang="en-GB"' in page and "demo-gp" in page and "demo accounts" in page
    assert '<label for="username">' in page and 'autocomplete="current-password"' in page


def test_production_cookies_and_hsts(engine: Engine) -> None:
    with security_app(engine, demo=False, secret="x" * 48) as app:
        browser = Browser(app.server.test_client(), base_url="https://dynairx.test")
        page = browser.get("/login")
        assert "demo-gp" not in page.get_data(as_text=True)
        assert page.headers["Strict-Transport-Security"].startswith("max-age=")
        response = browser.login("gp-a")
        cookie = next(
            h for h in response.headers.getlist("Set-Cookie") if h.startswith("__Host-dynairx_session=")
        )
        assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/" in cookie
        assert "Domain" not in cookie
        assert browser.get("/sec-help").status_code == 200
        # the same secure cookie offered over plain http is not a session there (HSTS keeps browsers on https)


def test_dash_validation_layout_build_neither_breaks_nor_leaks(engine: Engine) -> None:
    """With suppress_callback_exceptions off, Dash renders every layout argument-free on the first request."""
    with security_app(engine, validation_layout=True) as app:
        anonymous = _browser(app)
        assert anonymous.get("/sec-worklist").status_code == 302  # first request: anonymous
        gp = _signed_in(app, "gp-a")
        page = gp.get("/sec-worklist")
        assert page.status_code == 200 and "pat-a1" not in page.get_data(as_text=True)
        listing = gp.callback("sec-list.children", [{"id": "sec-filter", "property": "value", "value": ""}])
        assert "pat-a1" in listing.get_data(as_text=True)
