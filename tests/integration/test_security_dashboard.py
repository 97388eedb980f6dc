"""The real dashboard (``create_app``) behind its security: every route and callback crawled by every role,
practice scoping against forged requests, SQL fragments in grid sorting and filtering, and a model service outage.

The cohort comes from the seeded test factory (three practices); the demo accounts are created as the demo does:
demo-gp at the first practice, demo-pharmacist at the first two, so practice P003 is outside both.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import replace

import dash
import pytest
from security_support import Browser
from sqlalchemy import Engine, func, select

from app.security import ROLE_PERMISSIONS, Role, ensure_demo_accounts, required_permission
from data_access.db import make_engine
from data_access.migrate import upgrade_database
from data_access.queries.audit import AuditFilter, search_audit
from data_access.schema import Patient
from data_access.settings import Settings

PASSWORD = "dashboard test password"
ACCOUNTS = {
    "demo-gp": Role.GP,
    "demo-pharmacist": Role.PHARMACIST,
    "demo-researcher": Role.RESEARCHER,
    "demo-admin": Role.ADMIN,
}
PRACTICES = ("P001", "P002", "P003")


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    from dashboard_factory import AS_OF, TEST_GROUPS, TEST_RULE_TITLES, CohortBuilder, add_varied_patients

    from data_access.worklist_build import refresh_worklist

    engine = make_engine(f"sqlite:///{tmp_path_factory.mktemp('dash') / 'dash.sqlite'}")
    upgrade_database(engine)
    builder = CohortBuilder().model_run()
    add_varied_patients(builder, 30, seed=3, practices=PRACTICES)
    builder.load(engine)
    refresh_worklist(engine, as_of=AS_OF, groups=TEST_GROUPS, rule_titles=TEST_RULE_TITLES)
    ensure_demo_accounts(engine, PASSWORD)
    yield engine
    engine.dispose()


def _settings(engine: Engine, **changes: object) -> Settings:
    base = Settings(
        database_url=str(engine.url),
        model_service_url=None,
        model_service_token=None,
        secret_key="dashboard-test-secret-0123456789abcdef",
        device="cpu",
        demo=True,
    )
    return replace(base, **changes)


@pytest.fixture(scope="module")
def app(engine: Engine) -> dash.Dash:
    from app import create_app

    return create_app(_settings(engine), engine=engine)


def _patient_of(engine: Engine, practice: str) -> str:
    with engine.connect() as conn:
        return conn.execute(
            select(Patient.id).where(Patient.practice_id == practice).order_by(Patient.id).limit(1)
        ).scalar_one()


def _signed_in(app: dash.Dash, username: str) -> Browser:
    browser = Browser(app.server.test_client())
    response = browser.login(username, PASSWORD, next_url="/help")
    assert response.status_code == 302, username
    return browser


def _dependencies(app: dash.Dash) -> list[dict]:
    return _signed_in(app, "demo-admin").get("/_dash-dependencies").get_json()


def _inputs(spec: dict) -> list[dict]:
    return [{"id": i["id"], "property": i["property"], "value": None} for i in spec["inputs"]]


def _state(spec: dict) -> list[dict]:
    return [{"id": s["id"], "property": s["property"], "value": None} for s in spec.get("state", [])]


def _router(app: dash.Dash) -> str:
    return next(s["output"] for s in _dependencies(app) if "_pages_content" in s["output"])


def _route_to(pathname: str) -> list[dict]:
    return [
        {"id": "_pages_location", "property": "pathname", "value": pathname},
        {"id": "_pages_location", "property": "search", "value": ""},
    ]


def test_crawl_every_route_and_callback_without_a_session(app: dash.Dash) -> None:
    anonymous = Browser(app.server.test_client())
    checked = 0
    for rule in app.server.url_map.iter_rules():
        path = rule.rule
        if path.startswith(("/assets/", "/static/")) or path in {"/_favicon.ico", "/login", "/logout"}:
            continue
        for placeholder in (
            "<path:path>",
            "<patient_id>",
            "<path:fingerprinted_path>",
            "<string:package_name>",
        ):
            path = path.replace(placeholder, "x")
        if "GET" in rule.methods:
            response = anonymous.get(path)
            expected = {401} if path.startswith("/_") else {302}
            assert response.status_code in expected, (path, response.status_code)
            checked += 1
        if "POST" in rule.methods:
            assert anonymous.client.post(path, json={}).status_code == 401, path
            checked += 1
    for page in dash.page_registry.values():
        path = page.get("path") or "/"
        response = anonymous.get(path)
        assert response.status_code == 302 and response.headers["Location"].startswith("/login"), path
        checked += 1
    for spec in _dependencies(app):
        response = anonymous.callback(spec["output"], _inputs(spec), csrf=False, state=_state(spec))
        assert response.status_code == 401, spec["output"]
        checked += 1
    assert checked > 15


def test_every_page_and_callback_declares_a_permission(app: dash.Dash) -> None:
    for module, page in dash.page_registry.items():
        if module.startswith("app.pages.") and callable(page.get("layout")):
            assert required_permission(page["layout"]) is not None, module
    for output, spec in app.callback_map.items():
        func = spec.get("callback")
        module = getattr(getattr(func, "__wrapped__", func), "__module__", "")
        if module.startswith("app."):
            assert required_permission(func) is not None, output


def test_crawl_every_callback_with_every_role(app: dash.Dash) -> None:
    sessions = {username: _signed_in(app, username) for username in ACCOUNTS}
    server_callbacks = [
        s
        for s in _dependencies(app)
        if not s.get("clientside_function") and "_pages_content" not in s["output"]
    ]
    assert len(server_callbacks) >= 5
    for spec in server_callbacks:
        needed = required_permission(app.callback_map[spec["output"]]["callback"])
        for username, role in ACCOUNTS.items():
            response = sessions[username].callback(spec["output"], _inputs(spec), state=_state(spec))
            if needed not in ROLE_PERMISSIONS[role]:
                assert response.status_code == 403, (spec["output"], username)
            else:
                assert response.status_code in {200, 204}, (spec["output"], username, response.status_code)


def test_crawl_every_page_with_every_role(app: dash.Dash, engine: Engine) -> None:
    own_patient = _patient_of(engine, "P001")
    router = _router(app)
    for username, role in ACCOUNTS.items():
        browser = _signed_in(app, username)
        for module, page in dash.page_registry.items():
            if not module.startswith("app.pages."):
                continue
            path = (page.get("path_template") or page["path"]).replace("<patient_id>", own_patient)
            needed = required_permission(page["layout"]) if callable(page.get("layout")) else None
            allowed = needed is None or needed in ROLE_PERMISSIONS[role]
            assert browser.get(path).status_code == (200 if allowed else 403), (path, username)
            routed = browser.callback(router, _route_to(path))
            assert routed.status_code == (200 if allowed else 403), (path, username)


def test_gp_cannot_see_another_practices_patient(app: dash.Dash, engine: Engine) -> None:
    other = _patient_of(engine, "P003")
    gp = _signed_in(app, "demo-gp")
    assert gp.get(f"/patient/{other}").status_code == 403
    assert gp.callback(_router(app), _route_to(f"/patient/{other}")).status_code == 403
    specs = {s["output"]: s for s in _dependencies(app)}
    patient_callbacks = [
        o for o, s in specs.items() if any(i["id"] == "patient-id" for i in s["inputs"] + s.get("state", []))
    ]
    assert patient_callbacks
    for output in patient_callbacks:
        spec = specs[output]
        inputs = [
            {"id": i["id"], "property": i["property"], "value": other if i["id"] == "patient-id" else 1}
            for i in spec["inputs"]
        ]
        state = [
            {"id": s["id"], "property": s["property"], "value": other if s["id"] == "patient-id" else None}
            for s in spec.get("state", [])
        ]
        response = gp.callback(output, inputs, state=state)
        assert response.status_code == 403, output
        assert other not in response.get_data(as_text=True)
    denied = search_audit(engine, AuditFilter(username="demo-gp", patient_id=other, outcome="denied"))
    assert len(denied) >= 2 + len(patient_callbacks)


def _rows_request(sort_model: list, filter_model: dict, start: object = 0, end: object = 50) -> list[dict]:
    return [
        {
            "id": "worklist-grid",
            "property": "getRowsRequest",
            "value": {"startRow": start, "endRow": end, "sortModel": sort_model, "filterModel": filter_model},
        }
    ]


ROWS_OUTPUT = "..worklist-grid.getRowsResponse...worklist-count.children...worklist-error.children.."
INJECTIONS = [
    ([{"colId": "age; DROP TABLE patient; --", "sort": "asc"}], {}),
    ([{"colId": "age", "sort": "asc; DELETE FROM patient"}], {}),
    ([{"colId": "(SELECT password_hash FROM app_user LIMIT 1)", "sort": "desc"}], {}),
    ([], {"practice_id') OR 1=1 --": {"filterType": "text", "type": "contains", "filter": "x"}}),
    ([], {"patient_id": {"filterType": "text", "type": "contains", "filter": "' OR '1'='1"}}),
    ([], {"age": {"filterType": "number", "type": "greaterThan", "filter": "0 OR 1=1"}}),
    ([], {"age": {"filterType": "number", "type": "1=1) OR (1", "filter": 1}}),
]


@pytest.mark.parametrize(("sort_model", "filter_model"), INJECTIONS)
def test_sql_fragments_in_grid_sort_and_filter_are_never_executed(
    app: dash.Dash, engine: Engine, sort_model: list, filter_model: dict
) -> None:
    with engine.connect() as conn:
        before = conn.execute(select(func.count()).select_from(Patient)).scalar_one()
    gp = _signed_in(app, "demo-gp")
    state = [{"id": "worklist-query", "property": "data", "value": ""}]
    response = gp.callback(ROWS_OUTPUT, _rows_request(sort_model, filter_model), state=state)
    assert response.status_code in {200, 204, 400}
    if response.status_code == 200:
        rows = response.get_json()["response"]["worklist-grid"]["getRowsResponse"]["rowData"]
        ids = [row["patient_id"] for row in rows]
        if not filter_model:
            assert ids  # a bad sort column is ignored, not fatal: the list still comes back
        with engine.connect() as conn:
            practices = set(conn.execute(select(Patient.practice_id).where(Patient.id.in_(ids))).scalars())
        assert practices <= {"P001"}  # demo-gp's practice only, whatever the filter said
        assert "argon2" not in response.get_data(as_text=True)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(Patient)).scalar_one() == before


@pytest.mark.parametrize("bad", ["1; DROP TABLE patient", {"x": 1}, -5, "1e9"])
def test_malformed_grid_paging_is_refused_or_clamped(app: dash.Dash, bad: object) -> None:
    gp = _signed_in(app, "demo-gp")
    state = [{"id": "worklist-query", "property": "data", "value": ""}]
    response = gp.callback(ROWS_OUTPUT, _rows_request([], {}, start=bad), state=state)
    assert response.status_code in {200, 204, 400}, response.status_code


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_model_service_down_keeps_cached_pages_and_says_so(engine: Engine) -> None:
    from app import create_app

    settings = _settings(engine, model_service_url=f"http://127.0.0.1:{_closed_port()}")
    down = create_app(settings, engine=engine)
    patient = _patient_of(engine, "P001")
    gp = _signed_in(down, "demo-gp")
    specs = {s["output"]: s for s in gp.get("/_dash-dependencies").get_json()}
    router = next(o for o in specs if "_pages_content" in o)
    assert gp.callback(router, _route_to(f"/patient/{patient}")).status_code == 200
    loader = next(o for o in specs if "patient-header.children" in o)
    loaded = gp.callback(loader, [{"id": "patient-id", "property": "data", "value": patient}])
    assert loaded.status_code == 200 and "patient-header" in loaded.get_data(as_text=True)
    what_if = next(o for o in specs if "what-if-graph.figure" in o)
    state = [{"id": s["id"], "property": s["property"], "value": None} for s in specs[what_if]["state"]]
    for item in state:
        if item["id"] == "patient-id":
            item["value"] = patient
        if item["id"] == "what-if-stop":
            item["value"] = ["ibuprofen"]
    answer = gp.callback(what_if, [{"id": "what-if-run", "property": "n_clicks", "value": 1}], state=state)
    assert answer.status_code == 200
    body = answer.get_data(as_text=True)
    assert "what-if-message" in body and "cannot be reached" in body


def test_production_dashboard_has_dev_tools_off_and_hardened_responses(engine: Engine) -> None:
    from app import create_app

    production = create_app(_settings(engine, demo=False), engine=engine)
    browser = Browser(production.server.test_client(), base_url="https://dynairx.test")
    login_page = browser.get("/login")
    assert "demo-gp" not in login_page.get_data(as_text=True)  # no demo notice outside demo mode
    assert browser.login("demo-gp", PASSWORD, next_url="/help").status_code == 302
    page = browser.get("/help")
    html = page.get_data(as_text=True)
    assert '"ui":false' in html and '"props_check":false' in html  # Dash dev tools off
    assert page.headers["Strict-Transport-Security"].startswith("max-age=")
    for digest in production.csp_hashes():
        assert digest in page.headers["Content-Security-Policy"]
    cookie = browser.client.get_cookie("__Host-dynairx_session", domain="dynairx.test")
    assert cookie is not None and cookie.secure and cookie.http_only and cookie.same_site == "Lax"
    boom = browser.callback("no-such-output.children", [{"id": "x", "property": "y", "value": 1}])
    assert boom.status_code in {400, 404, 500} and "Traceback" not in boom.get_data(as_text=True)
