"""Accounts, sign-in throttling, session expiry and the administrators' audit page and export."""

from __future__ import annotations

import csv
import importlib.util
import io
import re
import time
from collections.abc import Iterator
from pathlib import Path

import dash
import pytest
from security_support import PASSWORD, Browser, security_app, seed_practices, seed_users
from sqlalchemy import Engine, update

import app.security.session as session_module
from app.security import add_user, disable_user, ensure_demo_accounts, list_users
from app.security.passwords import WeakPasswordError
from data_access.db import make_engine
from data_access.migrate import upgrade_database
from data_access.queries.audit import AuditFilter, append_audit_record, search_audit
from data_access.schema import AppUser
from data_access.users import UnknownUserError, UserExistsError

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path_factory.mktemp('acc') / 'acc.sqlite'}")
    upgrade_database(engine)
    seed_practices(engine)
    seed_users(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def app(engine: Engine) -> Iterator[dash.Dash]:
    with security_app(engine) as built:
        yield built


def _records(engine: Engine, **criteria: str) -> list:
    return search_audit(engine, AuditFilter(**criteria), limit=1000)


def test_user_management_functions(db_engine: Engine) -> None:
    add_user(db_engine, "dr.who", "gp", "PA, PB", "a sufficiently long password")
    add_user(db_engine, "sso.only", "researcher", None, None)
    with pytest.raises(UserExistsError):
        add_user(db_engine, "dr.who", "gp", ["PA"], "a sufficiently long password")
    with pytest.raises(ValueError, match="at least one practice"):
        add_user(db_engine, "nobody", "pharmacist", [], "a sufficiently long password")
    with pytest.raises(ValueError, match="Unknown role"):
        add_user(db_engine, "root", "superuser", [], "a sufficiently long password")
    with pytest.raises(ValueError, match="User names"):
        add_user(db_engine, "x'; drop table app_user; --", "admin", [], "a sufficiently long password")
    with pytest.raises(WeakPasswordError):
        add_user(db_engine, "weak", "admin", [], "short")
    users = {u["username"]: u for u in list_users(db_engine)}
    assert users["dr.who"]["practices"] == ["PA", "PB"] and users["dr.who"]["has_password"]
    assert not users["sso.only"]["has_password"] and users["sso.only"]["role"] == "researcher"
    assert "password_hash" not in users["dr.who"]
    disable_user(db_engine, "dr.who")
    assert not {u["username"]: u for u in list_users(db_engine)}["dr.who"]["active"]
    with pytest.raises(UnknownUserError):
        disable_user(db_engine, "ghost")
    actions = [r.action for r in search_audit(db_engine, AuditFilter(username="(cli)"))]
    assert actions.count("user_added") == 2 and actions.count("user_disabled") == 1


def test_demo_accounts_cover_the_first_practices_only(db_engine: Engine) -> None:
    seed_practices(db_engine)
    assigned = ensure_demo_accounts(db_engine, "first demo password")
    assert assigned == {
        "demo-gp": ("PA",),
        "demo-pharmacist": ("PA", "PB"),
        "demo-researcher": (),
        "demo-admin": (),
    }
    ensure_demo_accounts(db_engine, "second demo password")  # re-running the demo with a new password
    users = {u["username"]: u for u in list_users(db_engine)}
    assert {users[name]["role"] for name in assigned} == {"gp", "pharmacist", "researcher", "admin"}
    assert all(users[name]["active"] for name in assigned)


def test_demo_password_works_after_a_rerun(engine: Engine, app: dash.Dash) -> None:
    ensure_demo_accounts(engine, "one demo password")
    ensure_demo_accounts(engine, "another demo password")
    browser = Browser(app.server.test_client())
    assert browser.login("demo-gp", "one demo password").status_code == 401
    assert browser.login("demo-gp", "another demo password").status_code == 302


def test_account_locks_after_repeated_failures(engine: Engine, app: dash.Dash) -> None:
    add_user(engine, "locky", "gp", ["PA"], PASSWORD)
    browser = Browser(app.server.test_client())
    statuses = [browser.login("locky", "wrong password!!").status_code for _ in range(5)]
    assert statuses == [401] * 5
    locked = browser.login("locky", PASSWORD)
    assert locked.status_code == 401  # right password, but locked: the same message as a wrong one
    assert "Sign-in failed" in locked.get_data(as_text=True) and "locked" not in locked.get_data(as_text=True)
    reasons = [r.detail for r in _records(engine, username="locky", action="login_failed")]
    assert any("account locked" in d for d in reasons) and any("reason=locked" in d for d in reasons)
    with engine.begin() as conn:  # the lock expires
        conn.execute(update(AppUser).where(AppUser.username == "locky").values(locked_until=None))
    assert browser.login("locky", PASSWORD).status_code == 302


def test_unknown_and_disabled_accounts_get_the_same_answer(engine: Engine, app: dash.Dash) -> None:
    add_user(engine, "gone", "gp", ["PA"], PASSWORD)
    disable_user(engine, "gone")
    browser = Browser(app.server.test_client())
    unknown = browser.login("no-such-user", PASSWORD)
    disabled = browser.login("gone", PASSWORD)
    assert unknown.status_code == disabled.status_code == 401

    def strip(response) -> str:  # noqa: ANN001
        # The CSRF token is signed with a timestamp, so it differs between any two responses; the rest must not.
        page = response.get_data(as_text=True).replace("no-such-user", "").replace("gone", "")
        return re.sub(r'name="csrf_token" value="[^"]*"', 'name="csrf_token" value=""', page)

    assert strip(unknown) == strip(disabled)
    assert _records(engine, username="(unknown account)", action="login_failed")


def test_too_many_failures_from_one_address_are_throttled(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DYNAIRX_IP_FAILURE_LIMIT", "3")
    with security_app(engine) as app:
        browser = Browser(app.server.test_client())
        address = "203.0.113.9"
        browser.client.environ_base["REMOTE_ADDR"] = address
        statuses = [browser.login(f"guess-{i}", "wrong password!!").status_code for i in range(4)]
        assert statuses == [401, 401, 401, 429]
        assert browser.login("gp-a", PASSWORD).status_code == 429  # even the right password, for a while
        other = Browser(app.server.test_client())
        other.client.environ_base["REMOTE_ADDR"] = "198.51.100.7"
        assert other.login("gp-a", PASSWORD).status_code == 302


def test_idle_session_expires(engine: Engine, app: dash.Dash, monkeypatch: pytest.MonkeyPatch) -> None:
    browser = Browser(app.server.test_client())
    assert browser.login("gp-b").status_code == 302
    assert browser.get("/sec-help").status_code == 200
    now = time.time()
    monkeypatch.setattr(session_module, "clock", lambda: now + 29 * 60)
    assert browser.get("/sec-help").status_code == 200  # activity resets the idle clock
    monkeypatch.setattr(session_module, "clock", lambda: now + 29 * 60 + 31 * 60)
    response = browser.get("/sec-worklist")
    assert response.status_code == 302 and "expired=1" in response.headers["Location"]
    assert browser.get("/_dash-layout").status_code == 401
    assert any(
        r.detail == "idle timeout" for r in _records(engine, username="gp-b", action="session_expired")
    )


def test_disabling_an_account_ends_its_sessions(
    engine: Engine, app: dash.Dash, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_user(engine, "leaver", "pharmacist", ["PB"], PASSWORD)
    browser = Browser(app.server.test_client())
    assert browser.login("leaver").status_code == 302
    disable_user(engine, "leaver")
    now = time.time()
    monkeypatch.setattr(session_module, "clock", lambda: now + 61)
    assert browser.get("/sec-help").status_code == 302
    assert browser.login("leaver").status_code == 401


def _load_admin_page(app: dash.Dash) -> None:
    """Execute app/pages/admin_audit.py as Dash's pages loader would, into the test app."""
    spec = importlib.util.spec_from_file_location(
        "app.pages.admin_audit", REPO / "app" / "pages" / "admin_audit.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    dash.page_registry["app.pages.admin_audit"]["layout"] = module.layout


SEARCH_OUTPUT = "..audit-results.children...audit-summary.children...audit-export.href.."


def _search_state(**values: str) -> list[dict]:
    ids = [
        "audit-username",
        "audit-action",
        "audit-patient-id",
        "audit-outcome",
        "audit-since",
        "audit-until",
    ]
    keys = ["username", "action", "patient_id", "outcome", "since", "until"]
    return [{"id": i, "property": "value", "value": values.get(k)} for i, k in zip(ids, keys, strict=True)]


def test_admin_audit_page_search_and_export(engine: Engine) -> None:
    real_page = dash.page_registry.get("app.pages.admin_audit")  # the real dashboard's, if one was built
    with security_app(engine) as app:
        _load_admin_page(app)
        try:
            append_audit_record(
                engine,
                username="=cmd|' /C calc'!A0",
                role=None,
                action="login_failed",
                detail="ip=1.2.3.4; reason=unknown_account",
                outcome="denied",
            )
            append_audit_record(
                engine, username="gp-a", role="gp", action="view_patient", patient_id="pat-a1"
            )
            admin = Browser(app.server.test_client())
            admin.login("admin")
            assert admin.get("/admin/audit").status_code == 200
            click = [{"id": "audit-search", "property": "n_clicks", "value": 1}]
            found = admin.callback(
                SEARCH_OUTPUT, click, state=_search_state(username="gp-a", action="view_patient")
            )
            assert found.status_code == 200
            text = found.get_data(as_text=True)
            assert "pat-a1" in text and "export.csv?username=gp-a" in text
            bad = admin.callback(SEARCH_OUTPUT, click, state=_search_state(action="x' OR '1'='1"))
            assert bad.status_code == 200 and "Search not run" in bad.get_data(as_text=True)

            export = admin.get("/admin/audit/export.csv?outcome=denied")
            assert export.status_code == 200 and export.mimetype == "text/csv"
            assert "attachment" in export.headers["Content-Disposition"]
            rows = list(csv.DictReader(io.StringIO(export.get_data(as_text=True))))
            assert rows and all(r["outcome"] == "denied" for r in rows)
            assert any(r["username"].startswith("'=cmd") for r in rows)  # no formula reaches a spreadsheet
            assert admin.get("/admin/audit/export.csv?action=DROP%20TABLE").status_code == 400
            assert _records(engine, username="admin", action="export_audit")
            assert _records(engine, username="admin", action="search_audit")

            gp = Browser(app.server.test_client())
            gp.login("gp-a")
            assert gp.get("/admin/audit").status_code == 403
            assert gp.get("/admin/audit/export.csv").status_code == 403
            assert gp.callback(SEARCH_OUTPUT, click, state=_search_state()).status_code == 403
            assert _records(engine, username="gp-a", action="export_audit", outcome="denied")
        finally:
            dash.page_registry.pop("app.pages.admin_audit", None)
            if real_page is not None:
                dash.page_registry["app.pages.admin_audit"] = real_page
