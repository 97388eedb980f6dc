"""A GP's journey through the dashboard in the system Chromium: worklist → sort → cohort filter → patient →
trajectory and interaction timeline → what-if → SMR pack download; plus deep links, export and scope."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from data_access.schema import AuditLog, WorklistEntry

pytestmark = pytest.mark.e2e

GRID = "#worklist-grid"
RISK_HEADER = "Emergency admission risk"


def _rows(page: Page):  # noqa: ANN202 - Locator
    return page.locator(f"{GRID} .ag-center-cols-container .ag-row")


def _wait_for_rows(page: Page) -> None:
    expect(page.locator(f"{GRID} .ag-center-cols-container .dx-patient-link").first).to_be_visible()


def _column_values(page: Page, col_id: str) -> list[str]:
    cells = page.locator(f"{GRID} .ag-center-cols-container .ag-row .ag-cell[col-id='{col_id}']")
    return [t.strip() for t in cells.all_inner_texts()]


def _percent(text: str) -> float | None:
    match = re.search(r"(-?\d+(?:\.\d+)?)%", text)
    return float(match.group(1)) if match else None


def _visible_patient_ids(page: Page) -> list[str]:
    return [t.strip() for t in page.locator(f"{GRID} .dx-patient-link").all_inner_texts()]


def _practice_of(live_dashboard, patient_id: str) -> str:  # noqa: ANN001
    with live_dashboard.engine.connect() as conn:
        return conn.execute(
            select(WorklistEntry.practice_id).where(WorklistEntry.patient_id == patient_id)
        ).scalar_one()


def test_worklist_sort_by_risk_and_filter_to_cohort(gp_page: Page, live_dashboard) -> None:  # noqa: ANN001
    page = gp_page
    page.goto("/")
    expect(page.get_by_role("heading", name="Worklist")).to_be_visible()
    _wait_for_rows(page)
    expect(page.locator("#worklist-count")).to_contain_text("patients match")
    from e2e_support import screenshot

    screenshot(page, "worklist")

    header = page.locator(f"{GRID} .ag-header-cell[col-id='risk_emergency_admission'] .ag-header-cell-label")
    header.click()  # ascending
    header.click()  # descending
    expect(page.locator(f"{GRID} .ag-header-cell[col-id='risk_emergency_admission']")).to_have_attribute(
        "aria-sort", "descending"
    )
    page.wait_for_timeout(500)
    _wait_for_rows(page)
    risks = [_percent(t) for t in _column_values(page, "risk_emergency_admission")]
    known = [r for r in risks if r is not None]
    assert len(known) >= 5
    assert known == sorted(known, reverse=True)

    gp_practices = live_dashboard.practices["demo-gp"]
    assert all(_practice_of(live_dashboard, pid) in gp_practices for pid in _visible_patient_ids(page))

    page.get_by_label("Moderate or severe frailty (eFI)").check()
    expect(page).to_have_url(re.compile(r"cohort=frailty"))
    page.wait_for_timeout(500)
    _wait_for_rows(page)
    categories = set(_column_values(page, "efi_category"))
    assert categories and categories <= {"Moderate", "Severe"}
    screenshot(page, "worklist-frailty-cohort")


def test_deep_link_restores_filters(gp_page: Page) -> None:
    page = gp_page
    page.goto("/?cohort=mental_physical&high_flag=1&order=risk")
    expect(page.get_by_label("Mental and physical health conditions")).to_be_checked()
    expect(page.get_by_label("Any active high-severity flag")).to_be_checked()
    expect(page.get_by_label("Order the list by")).to_have_value("risk")


def test_export_is_a_csv_of_the_filtered_list_and_is_audited(gp_page: Page, live_dashboard) -> None:  # noqa: ANN001
    page = gp_page
    page.goto("/?cohort=frailty")
    _wait_for_rows(page)
    with page.expect_download() as download_info:
        page.get_by_role("button", name="Export list (CSV)").click()
    download = download_info.value
    text = Path(download.path()).read_text(encoding="utf-8")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0][0] == "Patient" and len(rows) > 1
    category = rows[0].index("Frailty (eFI category)")
    assert {r[category] for r in rows[1:]} <= {"moderate", "severe"}
    with live_dashboard.engine.connect() as conn:
        exports = (
            conn.execute(
                select(AuditLog.detail).where(AuditLog.action == "export", AuditLog.username == "demo-gp")
            )
            .scalars()
            .all()
        )
    assert any("worklist CSV" in (d or "") and "cohort=frailty" in (d or "") for d in exports)


def _open_first_patient(page: Page) -> str:
    page.goto("/?order=risk&high_flag=1")
    _wait_for_rows(page)
    link = page.locator(f"{GRID} .dx-patient-link").first
    patient_id = link.inner_text().strip()
    link.click()
    page.wait_for_url(re.compile(rf"/patient/{re.escape(patient_id)}$"))
    expect(page.get_by_role("heading", name=f"Patient {patient_id}")).to_be_visible()
    # The pack is the last panel the page's data callback fills: once it is there, every control is ready.
    expect(page.locator("#patient-smr-pack")).to_contain_text("pre-visit pack")
    return patient_id


def test_patient_page_shows_trajectory_and_interaction_timeline(gp_page: Page) -> None:
    from e2e_support import screenshot

    page = gp_page
    _open_first_patient(page)
    trajectory = page.locator("#patient-trajectory")
    expect(trajectory.locator(".main-svg").first).to_be_visible()
    expect(trajectory).to_contain_text("Emergency admission")
    expect(trajectory).to_contain_text("12-month risk (%)")
    timeline = page.locator("#patient-timeline")
    expect(timeline.locator(".main-svg").first).to_be_visible()
    expect(timeline).to_contain_text("Safety flags")
    expect(page.get_by_role("heading", name="Current safety flags")).to_be_visible()
    expect(page.locator("#patient-flags .dx-flag").first).to_be_visible()
    expect(page.locator("#data-notes-heading")).to_be_visible()
    # Hovering a flag bar shows its rule, source and recommendation.
    flag_bar = timeline.locator(".barlayer .trace").first.locator("path").first
    flag_bar.hover(force=True)
    screenshot(page, "patient")


def _option_values(select) -> list[str]:  # noqa: ANN001 - Locator
    return select.locator("option").evaluate_all("(options) => options.map((o) => o.value)")


def test_what_if_shows_scenario_or_a_friendly_notice(gp_page: Page) -> None:
    from e2e_support import screenshot

    page = gp_page
    _open_first_patient(page)
    switch_from = page.get_by_label("Switch from")
    medicines = [v for v in _option_values(switch_from) if v not in ("", "*")]
    assert medicines, "the patient has no active medicine to switch"
    first_drug = medicines[0]
    switch_from.select_option(first_drug)
    expect(switch_from).to_have_value(first_drug)
    switch_to = page.get_by_label("Switch to")
    targets = [v for v in _option_values(switch_to) if v not in ("", "*", first_drug)]
    target = "paracetamol" if "paracetamol" in targets and first_drug != "paracetamol" else targets[-1]
    switch_to.select_option(target)
    expect(switch_to).to_have_value(target)
    page.get_by_role("button", name="Run what-if").click()
    message = page.locator("#what-if-message")
    expect(message).not_to_be_empty()
    text = message.inner_text()
    # Either the model's answer (always labelled as an association) or a friendly notice, never a crash.
    assert "Association, not advice" in text or "model" in text.lower(), text
    screenshot(page, "patient-what-if")


def test_smr_pack_downloads_for_clinician_and_patient(gp_page: Page, live_dashboard) -> None:  # noqa: ANN001
    page = gp_page
    patient_id = _open_first_patient(page)
    expect(page.locator("#patient-smr-pack")).to_contain_text("pre-visit pack")
    with page.expect_download() as download_info:
        page.get_by_role("button", name="Download pack (HTML)").click()
    pack = Path(download_info.value.path()).read_text(encoding="utf-8")
    assert '<html lang="en-GB">' in pack and "pre-visit pack" in pack and patient_id in pack
    assert "What matters to you" in pack
    with page.expect_download() as download_info:
        page.get_by_role("button", name="Download patient version (HTML)").click()
    sheet = Path(download_info.value.path()).read_text(encoding="utf-8")
    assert "Your medicines review" in sheet
    with live_dashboard.engine.connect() as conn:
        details = (
            conn.execute(
                select(AuditLog.detail).where(AuditLog.action == "export", AuditLog.patient_id == patient_id)
            )
            .scalars()
            .all()
        )
    assert "SMR pre-visit pack (HTML)" in details and "SMR patient sheet (HTML)" in details


def test_help_page(gp_page: Page) -> None:
    from e2e_support import screenshot

    page = gp_page
    page.goto("/help")
    expect(page.get_by_role("heading", name="Help", exact=True)).to_be_visible()
    expect(page.get_by_role("heading", name="Intended use and limitations")).to_be_visible()
    screenshot(page, "help")


def test_patient_outside_practice_is_refused(gp_page: Page, live_dashboard, console) -> None:  # noqa: ANN001
    with live_dashboard.engine.connect() as conn:
        other = conn.execute(
            select(WorklistEntry.patient_id)
            .where(WorklistEntry.practice_id.not_in(live_dashboard.practices["demo-gp"]))
            .limit(1)
        ).scalar_one()
    console.allow("403")
    response = gp_page.goto(f"/patient/{other}")
    assert response is not None and response.status == 403
