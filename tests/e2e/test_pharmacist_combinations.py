"""A pharmacist in the system Chromium: filter the flagged combinations to drug-drug interactions, drill down to
the patients with one and open a patient's record; then plan this month's SMR slots. Fails on any console error
(the ``console`` fixture of conftest.py)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from data_access.schema import Patient

pytestmark = pytest.mark.e2e

GRID = "#combinations-grid"
DRILL = "#combinations-drill-grid"
WAIT_MS = 30_000


@pytest.fixture
def pharmacist_page(page: Page, console, live_dashboard) -> Page:  # noqa: ANN001
    from e2e_support import sign_in

    page.set_default_timeout(WAIT_MS)
    sign_in(page, "demo-pharmacist", next_path="/combinations")
    return page


def _rule_ids(page: Page) -> list[str]:
    cells = page.locator(f"{GRID} .ag-pinned-left-cols-container .ag-row .ag-cell[col-id='rule_id']")
    return [t.strip() for t in cells.all_inner_texts()]


def test_pharmacist_filters_combinations_and_drills_down_to_a_patient(
    pharmacist_page: Page, live_dashboard
) -> None:  # noqa: ANN001
    from e2e_support import screenshot

    page = pharmacist_page
    page.goto("/combinations")
    expect(page.get_by_role("heading", name="Flagged combinations")).to_be_visible()
    summary = page.locator("#combinations-summary")
    expect(summary).to_contain_text("combinations match", timeout=WAIT_MS)
    expect(page.locator("#combinations-heatmap .main-svg").first).to_be_visible(timeout=WAIT_MS)

    page.get_by_label("Drug–drug interaction (DDI)").check()
    expect(page.locator(f"{GRID} .ag-pinned-left-cols-container .ag-row").first).to_contain_text(
        "DDI-", timeout=WAIT_MS
    )
    rules = _rule_ids(page)
    assert rules and all(r.startswith("DDI-") for r in rules), rules
    screenshot(page, "pharmacist-combinations-ddi")

    page.locator(f"{GRID} .ag-pinned-left-cols-container .ag-row").first.click()
    expect(page.locator("#combinations-drill-heading")).to_contain_text(rules[0], timeout=WAIT_MS)
    count = page.locator("#combinations-drill-count")
    expect(count).to_contain_text(re.compile(r"\d+ patients?: active now"), timeout=WAIT_MS)
    if count.inner_text().startswith("0 "):  # the commonest DDI may have ended everywhere: list everyone ever
        page.get_by_label("Show patients").select_option("ever")
        expect(count).to_contain_text(re.compile(r"[1-9][\d,]* patients?: ever"), timeout=WAIT_MS)
    links = page.locator(f"{DRILL} .dx-patient-link")
    expect(links.first).to_be_visible(timeout=WAIT_MS)
    listed = [t.strip() for t in links.all_inner_texts()]
    with live_dashboard.engine.connect() as conn:
        practices = set(conn.execute(select(Patient.practice_id).where(Patient.id.in_(listed))).scalars())
    assert practices <= set(live_dashboard.practices["demo-pharmacist"])
    screenshot(page, "pharmacist-combinations-drill-down")

    patient_id = listed[0]
    links.first.click()
    page.wait_for_url(re.compile(rf"/patient/{re.escape(patient_id)}$"))
    expect(page.get_by_role("heading", name=f"Patient {patient_id}")).to_be_visible(timeout=WAIT_MS)
    expect(page.get_by_role("heading", name="Structured medication review", exact=True)).to_be_visible()

    page.goto("/plan")
    expect(page.get_by_role("heading", name="Plan this month's SMRs")).to_be_visible()
    page.get_by_label("SMR slots this month").fill("5")
    page.get_by_role("button", name="Propose patients").click()
    expect(page.locator("#plan-summary")).to_contain_text("Proposed for 5 slots", timeout=WAIT_MS)
    proposed = page.locator("#plan-table tbody tr")
    assert proposed.count() <= 5
    expect(page.locator("#equity-table")).to_contain_text("Deprivation quintile")
    expect(page.locator("#plan-equity-graph .main-svg").first).to_be_visible()
    screenshot(page, "pharmacist-smr-plan")
