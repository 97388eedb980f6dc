"""WCAG 2.2 AA checks with axe-core (vendored from npm under tests/e2e/vendor) on every page the GP uses.

axe is injected as a script tag, which the strict Content-Security-Policy rightly refuses, so this test alone uses a
browser context that bypasses CSP. It fails on any serious or critical violation.
"""

from __future__ import annotations

import pytest
from e2e_support import AXE_JS, LiveDashboard, screenshot, sign_in
from playwright.sync_api import Browser, expect
from sqlalchemy import select

from data_access.schema import WorklistEntry

pytestmark = pytest.mark.e2e

AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]


def _violations(page) -> list[dict]:  # noqa: ANN001 - playwright Page
    page.add_script_tag(path=str(AXE_JS))
    results = page.evaluate(
        "async (tags) => await axe.run(document, {runOnly: {type: 'tag', values: tags}, resultTypes: ['violations']})",
        AXE_TAGS,
    )
    return [v for v in results["violations"] if v.get("impact") in ("serious", "critical")]


def _describe(violations: list[dict]) -> str:
    return "\n".join(
        f"{v['id']} ({v['impact']}): {v['help']} — e.g. {v['nodes'][0]['target'] if v['nodes'] else '?'}"
        for v in violations
    )


def test_pages_have_no_serious_accessibility_violations(
    browser: Browser, live_dashboard: LiveDashboard
) -> None:
    with live_dashboard.engine.connect() as conn:
        patient_id = conn.execute(
            select(WorklistEntry.patient_id)
            .where(WorklistEntry.practice_id.in_(live_dashboard.practices["demo-gp"]))
            .order_by(WorklistEntry.flags_high.desc(), WorklistEntry.patient_id)
            .limit(1)
        ).scalar_one()
    context = browser.new_context(base_url=live_dashboard.base_url, bypass_csp=True, locale="en-GB")
    page = context.new_page()
    page.set_default_timeout(30_000)
    try:
        sign_in(page, "demo-gp")
        checks = {
            "/": "#worklist-grid .dx-patient-link",
            f"/patient/{patient_id}": "#patient-smr-pack h2",
            "/help": "h1",
        }
        failures = {}
        for path, ready in checks.items():
            page.goto(path)
            expect(page.locator(ready).first).to_be_visible()
            page.wait_for_timeout(500)  # let late callbacks settle before auditing the DOM
            assert page.locator("html").get_attribute("lang") == "en-GB"
            violations = _violations(page)
            if violations:
                failures[path] = _describe(violations)
        screenshot(page, "accessibility-last-page")
        assert not failures, "serious or critical accessibility violations:\n" + "\n".join(
            f"{path}:\n{text}" for path, text in failures.items()
        )
    finally:
        context.close()
