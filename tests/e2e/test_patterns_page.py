"""The /patterns page in the system Chromium: a researcher screens drug pairs by sequence symmetry, switches to drug
classes, picks a pair from the table and sees its histogram; a signed-out visitor is sent to sign in; axe-core finds no
serious accessibility problem.
Every test fails on a browser console error (the ``console`` fixture of conftest.py)."""

from __future__ import annotations

import json
import re

import pytest
from playwright.sync_api import Browser, Page, expect

pytestmark = pytest.mark.e2e

GRID = "#patterns-grid"


@pytest.fixture
def researcher_page(page: Page, console, live_dashboard) -> Page:  # noqa: ANN001
    from e2e_support import sign_in

    page.set_default_timeout(30_000)
    sign_in(page, "demo-researcher", next_path="/patterns")
    return page


def _rows(page: Page):  # noqa: ANN202 - Locator
    return page.locator(f"{GRID} .ag-center-cols-container .ag-row")


def test_researcher_screens_pairs_and_opens_one(researcher_page: Page) -> None:
    page = researcher_page
    page.goto("/patterns")
    expect(page.get_by_role("heading", name="Patterns of care: prescribing cascades")).to_be_visible()
    expect(page.get_by_role("link", name="Patterns")).to_be_visible()
    summary = page.locator("#patterns-summary")
    expect(summary).to_contain_text(re.compile(r"patients, .* new users only .* 365-day window"))
    expect(page.locator(f"{GRID} .ag-header-cell-text", has_text="Adjusted SR")).to_be_visible()

    # The smallest cohort of the e2e suite needs the lowest threshold to list pairs.
    page.get_by_label("Minimum people with both").select_option("5")
    expect(summary).to_contain_text(re.compile(r"[1-9][\d,]* drug pairs shown"))
    expect(_rows(page).first).to_be_visible()

    first = _rows(page).first
    index = first.locator(".ag-cell[col-id='index_label']")
    if not index.count():  # pinned columns live in their own container
        index = page.locator(f"{GRID} .ag-pinned-left-cols-container .ag-row").first.locator(
            ".ag-cell[col-id='index_label']"
        )
    drug_a = index.inner_text().strip()
    marker = page.locator(f"{GRID} .ag-pinned-left-cols-container .ag-row").first.locator(
        ".ag-cell[col-id='marker_label']"
    )
    drug_b = marker.inner_text().strip()
    first.locator(".ag-cell[col-id='n_index_first']").click()
    pair = page.locator("#patterns-pair")
    expect(pair.get_by_role("heading", name=f"{drug_a} → {drug_b}")).to_be_visible()
    expect(pair.get_by_role("columnheader", name="Adjusted SR (95% CI)")).to_be_visible()
    expect(page.locator("#patterns-histogram .js-plotly-plot")).to_be_visible()
    expect(page.locator("#patterns-histogram")).to_contain_text(f"Days from the first start of {drug_a}")
    from e2e_support import screenshot

    screenshot(page, "patterns")

    # The same pair read the other way round, chosen with the selects (drug keys are the option values).
    page.get_by_label("Drug A (suspected cause)").select_option(value=drug_b)
    expect(pair).to_have_text("Choose two different drugs.")  # A and B are the same drug for a moment
    page.get_by_label("Drug B (started to treat a side effect?)").select_option(value=drug_a)
    expect(pair.get_by_role("heading", name=f"{drug_b} → {drug_a}")).to_be_visible()

    page.get_by_label("Drug classes").check()
    expect(summary).to_contain_text("drug class pairs shown")
    page.get_by_label("Signals only (CI above 1)").check()
    expect(summary).to_contain_text(re.compile(r"(\d[\d,]*) drug class pairs shown, \1 signals"))


def test_signed_out_visitor_is_sent_to_sign_in(page: Page, console, live_dashboard) -> None:  # noqa: ANN001
    page.set_default_timeout(20_000)
    page.goto("/patterns")
    expect(page).to_have_url(re.compile(r"/login"))
    expect(page.get_by_label("User name")).to_be_visible()


def test_patterns_page_passes_axe(browser: Browser, live_dashboard) -> None:  # noqa: ANN001
    from e2e_support import AXE_JS, sign_in

    context = browser.new_context(base_url=live_dashboard.base_url, bypass_csp=True)  # axe is injected inline
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(f"uncaught: {error}"))
    page.set_default_timeout(30_000)
    try:
        sign_in(page, "demo-researcher", next_path="/patterns")
        page.goto("/patterns")
        expect(page.locator("#patterns-summary")).to_contain_text("patients")
        expect(page.locator("#patterns-histogram .js-plotly-plot")).to_be_visible()
        page.wait_for_timeout(500)
        page.add_script_tag(path=str(AXE_JS))
        result = page.evaluate(
            "async () => await axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa']}})"
        )
        serious = [
            f"{v['id']}: {v['help']} ({len(v['nodes'])} nodes, e.g. {v['nodes'][0]['target']})"
            for v in result["violations"]
            if v["impact"] in ("serious", "critical")
        ]
        assert not serious, json.dumps(serious, indent=1)
        assert not errors, errors
    finally:
        context.close()
