"""Sign-in and session isolation in a real browser (system Chromium) against the live dashboard.

Two GPs of different practices work at the same time in two browser contexts: neither ever sees the other's
filters or patients, and each is refused the other's patient pages. The sign-in form, the 403 page and the
session cookie's flags are checked as a browser sees them; every page must run without console errors (CSP).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect
from sqlalchemy import select

from app.security import add_user
from data_access.schema import Patient, Practice

pytestmark = pytest.mark.e2e

OTHER_GP = "e2e-gp-other-practice"
PATIENT_LINKS = "a.dx-patient-link"


def _sign_in(page: Page, username: str, password: str, next_path: str = "/") -> None:
    page.goto(f"/login?next={next_path}")
    page.get_by_label("User name").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"^(?!.*/login).*$"))


def _watch_console(page: Page, errors: list[str]) -> None:
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(f"uncaught: {error}"))


def _practice_of(live_dashboard, patient_ids: list[str]) -> set[str]:  # noqa: ANN001 - LiveDashboard
    with live_dashboard.engine.connect() as conn:
        return set(conn.execute(select(Patient.practice_id).where(Patient.id.in_(patient_ids))).scalars())


def _listed_patients(page: Page) -> list[str]:
    expect(page.locator(PATIENT_LINKS).first).to_be_visible(timeout=20_000)
    return [text.strip() for text in page.locator(PATIENT_LINKS).all_inner_texts()]


@pytest.fixture
def two_gps(browser: Browser, live_dashboard) -> Iterator[tuple[Page, Page, str, str, list[str]]]:  # noqa: ANN001
    """demo-gp (practice A) and a GP of another practice (B), each in their own browser context."""
    practice_a = live_dashboard.practices["demo-gp"][0]
    with live_dashboard.engine.connect() as conn:
        practice_b = conn.execute(
            select(Practice.id).where(Practice.id != practice_a).order_by(Practice.id).limit(1)
        ).scalar_one()
    existing = {u for u in _usernames(live_dashboard)}
    if OTHER_GP not in existing:
        add_user(live_dashboard.engine, OTHER_GP, "gp", [practice_b], live_dashboard.password)
    errors: list[str] = []
    contexts: list[BrowserContext] = []
    pages = []
    for username in ("demo-gp", OTHER_GP):
        context = browser.new_context(base_url=live_dashboard.base_url)
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(20_000)
        _watch_console(page, errors)
        _sign_in(page, username, live_dashboard.password)
        pages.append(page)
    yield pages[0], pages[1], practice_a, practice_b, errors
    for context in contexts:
        context.close()
    assert not errors, errors


def _usernames(live_dashboard) -> list[str]:  # noqa: ANN001
    from app.security import list_users

    return [u["username"] for u in list_users(live_dashboard.engine)]


def test_two_users_at_once_never_see_each_others_filters_or_patients(two_gps, live_dashboard) -> None:  # noqa: ANN001
    page_a, page_b, practice_a, practice_b, errors = two_gps
    page_a.goto("/?high_flag=1&order=risk")
    page_b.goto("/")
    patients_a = _listed_patients(page_a)
    patients_b = _listed_patients(page_b)
    assert _practice_of(live_dashboard, patients_a) == {practice_a}
    assert _practice_of(live_dashboard, patients_b) == {practice_b}
    assert not set(patients_a) & set(patients_b)

    # B's session keeps its own (default) filters while A's are set; then B changes one and A is untouched.
    expect(page_b.get_by_label("Any active high-severity flag")).not_to_be_checked()
    expect(page_a.get_by_label("Any active high-severity flag")).to_be_checked()
    page_b.get_by_label("Rising risk (▲ 5 points or more in 6 months)").check()
    expect(page_b).to_have_url(re.compile(r"rising=1"))
    page_a.reload()
    expect(page_a).to_have_url(re.compile(r"high_flag=1"))
    assert "rising=1" not in page_a.url
    expect(page_a.get_by_label("Rising risk (▲ 5 points or more in 6 months)")).not_to_be_checked()
    assert _practice_of(live_dashboard, _listed_patients(page_a)) == {practice_a}

    # Each is refused the other's patient, by address, and sees their own.
    page_a.goto(f"/patient/{patients_b[0]}")
    expect(page_a.get_by_role("heading", name="Forbidden")).to_be_visible()
    page_b.goto(f"/patient/{patients_b[0]}")
    expect(page_b.get_by_role("heading", name="Current 12-month risk")).to_be_visible()
    expect(page_b.get_by_role("heading", name="Forbidden")).to_have_count(0)
    errors[:] = [
        e for e in errors if "403" not in e
    ]  # the refused page load is reported by Chromium as an error


def test_sign_in_form_and_cookie_flags(browser: Browser, live_dashboard) -> None:  # noqa: ANN001
    context = browser.new_context(base_url=live_dashboard.base_url)
    page = context.new_page()
    errors: list[str] = []
    _watch_console(page, errors)
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/login\?next=/"))
    expect(page.get_by_role("note")).to_contain_text("demo accounts")
    page.get_by_label("User name").fill("demo-gp")
    page.get_by_label("Password").fill("not the password at all")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("Sign-in failed")
    errors[:] = [e for e in errors if "401" not in e]  # Chromium logs the refused sign-in's status
    _sign_in(page, "demo-gp", live_dashboard.password)
    expect(page.get_by_role("heading", name="Worklist")).to_be_visible()
    cookies = {c["name"]: c for c in context.cookies()}
    session = cookies["dynairx_session"]
    assert session["httpOnly"] and session["sameSite"] == "Lax"
    assert not cookies["_csrf_token"]["httpOnly"]  # the Dash renderer must read it to send X-CSRFToken
    page.goto("/admin/audit")
    expect(page.get_by_role("heading", name="Forbidden")).to_be_visible()
    errors[:] = [e for e in errors if "403" not in e]
    page.goto("/logout")
    expect(page).to_have_url(re.compile(r"/login\?signed_out=1"))
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/login"))
    context.close()
    assert not errors, errors


def test_admin_searches_the_audit_trail(browser: Browser, live_dashboard) -> None:  # noqa: ANN001
    context = browser.new_context(base_url=live_dashboard.base_url)
    page = context.new_page()
    page.set_default_timeout(20_000)
    errors: list[str] = []
    _watch_console(page, errors)
    _sign_in(page, "demo-admin", live_dashboard.password, next_path="/admin/audit")
    expect(page.get_by_role("heading", name="Audit trail")).to_be_visible()
    page.get_by_label("User", exact=True).fill("demo-gp")
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_role("status")).to_contain_text("matching records")
    expect(page.get_by_role("table")).to_contain_text("demo-gp")
    with page.expect_download() as download:
        page.get_by_role("link", name="Download CSV").click()
    assert download.value.suggested_filename.startswith("dynairx-audit-")
    context.close()
    assert not errors, errors
