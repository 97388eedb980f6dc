"""The SMR review workflow end to end in the system Chromium: a pharmacist marks the top patient reviewed on the
patient page, sees them leave the worklist and come back with "Show reviewed and snoozed patients", and an
administrator finds the action in the audit trail. Fails on any console error."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Browser, Page, expect

pytestmark = pytest.mark.e2e

GRID = "#worklist-grid"
LINKS = f"{GRID} .dx-patient-link"
WAIT_MS = 30_000


def _count(page: Page) -> int:
    text = page.locator("#worklist-count").inner_text()
    return int(re.match(r"([\d,]+)", text).group(1).replace(",", ""))  # type: ignore[union-attr]


def _listed(page: Page) -> list[str]:
    expect(page.locator(LINKS).first).to_be_visible(timeout=WAIT_MS)
    return [t.strip() for t in page.locator(LINKS).all_inner_texts()]


def test_mark_reviewed_leaves_the_worklist_and_is_audited(
    page: Page,
    console,
    live_dashboard,
    browser: Browser,  # noqa: ANN001
) -> None:
    from e2e_support import screenshot, sign_in

    page.set_default_timeout(WAIT_MS)
    sign_in(page, "demo-pharmacist")
    page.goto("/?order=risk")
    top = _listed(page)[0]
    expect(page.locator("#worklist-count")).to_contain_text("patients match")
    before = _count(page)

    page.locator(LINKS).first.click()
    page.wait_for_url(re.compile(rf"/patient/{re.escape(top)}$"))
    expect(page.get_by_role("heading", name=f"Patient {top}")).to_be_visible(timeout=WAIT_MS)
    state = page.locator("#review-state")
    expect(state).to_contain_text("No review has been recorded", timeout=WAIT_MS)
    page.get_by_label("Reviewed", exact=True).check()
    page.get_by_label("Outcome (short)").fill("Stopped naproxen; eGFR in 2 weeks")
    page.get_by_role("button", name="Record review").click()
    expect(state).to_contain_text("Reviewed on", timeout=WAIT_MS)
    expect(state).to_contain_text("by demo-pharmacist")
    expect(page.locator("#review-history")).to_contain_text("Stopped naproxen")
    screenshot(page, "review-recorded")

    page.goto("/?order=risk")
    expect(page.locator("#worklist-count")).to_contain_text(f"{before - 1:,} patient", timeout=WAIT_MS)
    assert top not in _listed(page)

    page.get_by_label("Show reviewed and snoozed patients").check()
    expect(page).to_have_url(re.compile(r"show_reviewed=1"))
    expect(page.locator("#worklist-count")).to_contain_text(f"{before:,} patient", timeout=WAIT_MS)
    expect(page.locator(LINKS).first).to_have_text(top, timeout=WAIT_MS)
    # AG Grid renders only the columns in view: scroll the review status column into view through its API.
    page.evaluate(
        "async (id) => { const api = await window.dash_ag_grid.getApiAsync(id); "
        "api.ensureColumnVisible('review_status'); }",
        GRID.lstrip("#"),
    )
    status = page.locator(f"{GRID} .ag-row[row-index='0'] .ag-cell[col-id='review_status']")
    expect(status).to_contain_text("Reviewed")
    expect(status).to_contain_text("demo-pharmacist")
    screenshot(page, "review-worklist-shown")

    # The administrator finds the action in the audit trail (without the outcome text).
    context = browser.new_context(base_url=live_dashboard.base_url)
    admin = context.new_page()
    admin.set_default_timeout(WAIT_MS)
    errors: list[str] = []
    admin.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    admin.on("pageerror", lambda e: errors.append(f"uncaught: {e}"))
    try:
        sign_in(admin, "demo-admin", next_path="/admin/audit")
        admin.goto("/admin/audit")
        admin.get_by_label("Patient").fill(top)
        admin.get_by_label("Patient").press("Enter")
        admin.get_by_role("button", name="Search").click()
        results = admin.locator("#audit-results")
        expect(results).to_contain_text("record_review", timeout=WAIT_MS)
        expect(results).to_contain_text("demo-pharmacist")
        expect(results).to_contain_text("status reviewed")
        expect(results).not_to_contain_text("naproxen")
        screenshot(admin, "review-audit-trail")
    finally:
        context.close()
    assert not errors, errors
