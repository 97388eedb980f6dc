"""A researcher in the system Chromium: read the population page (risk distribution, prevalence table, funnel plot
of practice flag rates), see combinations without any patient list, and open the model card. Fails on any console
error (the ``console`` fixture of conftest.py)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import func, select

from data_access.schema import ModelRun, Patient

pytestmark = pytest.mark.e2e

WAIT_MS = 30_000


@pytest.fixture
def researcher_page(page: Page, console, live_dashboard) -> Page:  # noqa: ANN001
    from e2e_support import sign_in

    page.set_default_timeout(WAIT_MS)
    sign_in(page, "demo-researcher", next_path="/population")
    return page


def test_researcher_reads_the_funnel_plot_and_opens_the_model_card(
    researcher_page: Page, live_dashboard
) -> None:  # noqa: ANN001
    from e2e_support import screenshot

    page = researcher_page
    page.goto("/population")
    expect(page.get_by_role("heading", name="Population", exact=True)).to_be_visible()
    expect(page.locator("#population-histogram-summary")).to_contain_text("median", timeout=WAIT_MS)
    expect(page.locator("#prevalence-table")).to_contain_text("All patients", timeout=WAIT_MS)
    expect(page.locator("#prevalence-table")).to_contain_text("Deprivation quintile")

    funnel = page.locator("#population-funnel")
    expect(funnel.locator(".main-svg").first).to_be_visible(timeout=WAIT_MS)
    expect(funnel).to_contain_text("99.8% limits")
    summary = page.locator("#population-funnel-summary")
    expect(summary).to_contain_text(re.compile(r"\d+ practices?; overall \d+ per 1,000"), timeout=WAIT_MS)
    with live_dashboard.engine.connect() as conn:
        practices = conn.execute(select(func.count(func.distinct(Patient.practice_id)))).scalar_one()
    rows = page.locator("#funnel-table tbody tr")
    expect(rows).to_have_count(practices)
    positions = " ".join(rows.all_inner_texts())
    assert "expected range" in positions or "limit" in positions or "Not shown" in positions
    page.get_by_label("Severity").select_option("high")
    expect(summary).to_contain_text("per 1,000", timeout=WAIT_MS)
    screenshot(page, "researcher-population")

    page.goto("/combinations")
    expect(page.locator("#combinations-summary")).to_contain_text("combinations match", timeout=WAIT_MS)
    expect(page.get_by_text("Patient lists are available only to the GPs and pharmacists")).to_be_visible()
    expect(page.locator("#combinations-drill-grid")).to_have_count(0)
    expect(page.get_by_role("button", name="Export patients (CSV)")).to_have_count(0)

    page.get_by_role("link", name="Model").click()
    page.wait_for_url(re.compile(r"/model$"))
    with live_dashboard.engine.connect() as conn:
        version = conn.execute(select(ModelRun.version).where(ModelRun.active.is_(True))).scalar()
    if version is None:
        expect(page.locator("#model-missing")).to_be_visible()
        return
    expect(page.get_by_role("heading", name=f"Model card: {version}")).to_be_visible(timeout=WAIT_MS)
    expect(page.get_by_role("heading", name="Intended use")).to_be_visible()
    expect(page.locator("#model-auroc .main-svg").first).to_be_visible(timeout=WAIT_MS)
    expect(page.locator("#model-calibration .main-svg").first).to_be_visible()
    baselines = page.locator("#model-baselines-table")
    expect(baselines).to_contain_text("Gradient boosting", timeout=WAIT_MS)
    expect(baselines).to_contain_text("Logistic regression")
    expect(page.locator("#subgroups-heading")).to_be_visible()
    page.get_by_label("Outcome").select_option("death")
    expect(baselines).to_contain_text("AUROC (95% CI)")
    screenshot(page, "researcher-model-card")
