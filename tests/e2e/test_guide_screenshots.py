"""Regenerate the user guides' screenshots (``docs/images/*.png``) from the live demo, so they never go stale.

One browser context per role (GP, pharmacist, researcher, administrator) walks the pages its guide describes and
saves each picture the guides reference; the test then checks that every image a guide references was produced
here. The cohort is the synthetic e2e cohort, so no real person appears. Console errors fail the test.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Locator, Page, expect

pytestmark = pytest.mark.e2e

REPO_ROOT = Path(__file__).resolve().parents[2]
DOCS = REPO_ROOT / "docs"
IMAGES = DOCS / "images"
VIEWPORT = {"width": 1280, "height": 800}
IMAGE_REFERENCE = re.compile(r"\]\(images/([a-z0-9][a-z0-9-]*\.png)\)")
GUIDE_SESSION = "ws-guide-screenshots"


class Camera:
    """Saves screenshots into docs/images and remembers which it saved."""

    def __init__(self) -> None:
        self.saved: set[str] = set()

    def page(self, page: Page, name: str) -> None:
        settle(page)
        page.screenshot(path=str(IMAGES / name))
        self.saved.add(name)

    def element(self, locator: Locator, name: str, max_height: int = 900) -> None:
        """The element, cut at ``max_height`` pixels (a guide needs the top of a long panel, not all of it)."""
        settle(locator.page)
        locator.scroll_into_view_if_needed()
        box = locator.bounding_box()  # relative to the viewport; the full-page clip is relative to the page
        assert box is not None, name
        scroll_x, scroll_y = locator.page.evaluate("() => [window.scrollX, window.scrollY]")
        clip = {
            "x": box["x"] + scroll_x,
            "y": box["y"] + scroll_y,
            "width": box["width"],
            "height": min(box["height"], max_height),
        }
        locator.page.screenshot(path=str(IMAGES / name), clip=clip, full_page=True)
        self.saved.add(name)


def settle(page: Page) -> None:
    """Wait until Dash has no callback in flight, then give plotly a moment to draw."""
    page.wait_for_function("() => !document.querySelector('[data-dash-is-loading]')")
    page.wait_for_timeout(300)
    page.wait_for_function("() => !document.querySelector('[data-dash-is-loading]')")


@pytest.fixture
def camera() -> Camera:
    IMAGES.mkdir(parents=True, exist_ok=True)
    return Camera()


@pytest.fixture
def signed_in(browser: Browser, live_dashboard) -> Iterator[Callable[[str], Page]]:  # noqa: ANN001
    """Open a fresh browser context signed in as a demo user; console errors of any of them fail the test."""
    from e2e_support import sign_in

    contexts, errors = [], []

    def open_as(username: str) -> Page:
        context = browser.new_context(base_url=live_dashboard.base_url, viewport=VIEWPORT)
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(30_000)
        page.on("console", lambda m: errors.append(f"{username}: {m.text}") if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(f"{username}: uncaught {e}"))
        sign_in(page, username, next_path="/help")
        return page

    yield open_as
    for context in contexts:
        context.close()
    assert not errors, f"browser console errors: {errors}"


def decline_tour(page: Page) -> None:
    page.get_by_role("button", name="No thanks").click()
    expect(page.locator("#tour-invite")).to_be_hidden()


def heading(page: Page, name: str) -> None:
    expect(page.get_by_role("heading", name=name, exact=True).first).to_be_visible()


def section(page: Page, title: str) -> Locator:
    return page.locator("section", has=page.get_by_role("heading", name=title, exact=True)).first


def shoot_gp(page: Page, camera: Camera) -> None:
    page.get_by_role("button", name="Start the tour").click()
    expect(page.get_by_role("dialog").get_by_role("heading", name="Welcome to DynAIRx")).to_be_visible()
    page.get_by_role("dialog").get_by_role("button", name="Next").click()
    camera.page(page, "tour.png")
    page.keyboard.press("Escape")
    expect(page.get_by_role("dialog")).to_have_count(0)

    page.goto("/")
    heading(page, "Worklist")
    expect(page.locator("#worklist-grid .dx-patient-link").first).to_be_visible()
    camera.page(page, "gp-worklist.png")

    page.locator("#worklist-grid .dx-patient-link").first.click()
    # The patient page draws several figures on first load: allow for a busy test machine.
    expect(page.locator("#patient-trajectory .main-svg").first).to_be_visible(timeout=60_000)
    camera.page(page, "gp-patient.png")
    camera.element(section(page, "Polypharmacy interaction timeline"), "gp-patient-timeline.png")
    camera.element(section(page, "Current safety flags"), "pharmacist-flags.png")
    camera.element(section(page, "SMR pre-visit pack"), "gp-smr-pack.png")


def shoot_pharmacist(page: Page, camera: Camera) -> None:
    decline_tour(page)
    page.goto("/plan")
    heading(page, "Plan this month's SMRs")
    page.get_by_role("button", name="Propose patients").click()
    expect(
        page.get_by_role("heading", name="Does the proposal reflect the eligible population?")
    ).to_be_visible()
    camera.page(page, "pharmacist-plan.png")

    page.goto("/combinations")
    heading(page, "Flagged combinations")
    camera.page(page, "pharmacist-combinations.png")


def shoot_researcher(page: Page, camera: Camera) -> None:
    decline_tour(page)
    page.goto("/population")
    heading(page, "Population")
    camera.page(page, "researcher-population.png")

    page.goto("/patterns")
    heading(page, "Patterns of care: prescribing cascades")
    page.get_by_label("Minimum people with both").select_option("5")  # the e2e cohort is small
    expect(page.locator("#patterns-summary")).to_contain_text(re.compile(r"[1-9][\d,]* drug pairs shown"))
    camera.page(page, "researcher-patterns.png")

    page.goto("/model")
    expect(page.get_by_role("heading", name=re.compile(r"^Model card")).first).to_be_visible()
    camera.page(page, "researcher-model.png")

    page.goto(f"/workshop?session={GUIDE_SESSION}")
    heading(page, "Co-design workshop")
    expect(page.locator("#workshop-persona-card .card")).to_be_visible()
    camera.page(page, "workshop.png")
    risk = section(page, "Risk over time")
    risk.get_by_text("Icon array", exact=True).click()
    expect(risk.locator(".dx-icon-grid").first).to_be_visible()
    risk.get_by_text("5 · Very well", exact=True).click()
    risk.get_by_label("Comment (optional)").fill("Easy to explain to a patient.")
    risk.get_by_role("button", name="Send feedback").click()
    expect(risk.locator("#workshop-risk-feedback-message")).to_contain_text("was saved")
    camera.element(risk, "workshop-icons.png")
    timeline = section(page, "Medicines over time")
    timeline.get_by_text("Heat map by month", exact=True).click()
    expect(timeline.locator(".js-plotly-plot")).to_be_visible()
    camera.element(timeline.locator("#workshop-timeline-content"), "workshop-heatmap.png")

    page.goto(f"/workshop/feedback?session={GUIDE_SESSION}")
    heading(page, "Workshop feedback")
    expect(page.locator("#feedback-summary table")).to_be_visible()
    camera.page(page, "workshop-feedback.png")


def shoot_admin(page: Page, camera: Camera) -> None:
    decline_tour(page)
    page.goto("/admin/audit")
    expect(page.locator("main h1").first).to_be_visible()
    camera.page(page, "admin-audit.png")
    page.goto("/help")
    heading(page, "User guides and the tour")
    camera.page(page, "help.png")


def test_guide_screenshots_are_regenerated(signed_in: Callable[[str], Page], camera: Camera) -> None:
    shoot_gp(signed_in("demo-gp"), camera)
    shoot_pharmacist(signed_in("demo-pharmacist"), camera)
    shoot_researcher(signed_in("demo-researcher"), camera)
    shoot_admin(signed_in("demo-admin"), camera)

    referenced = {
        name for guide in DOCS.glob("user-guide-*.md") for name in IMAGE_REFERENCE.findall(guide.read_text())
    }
    assert referenced, "the guides reference no screenshots"
    assert referenced <= camera.saved, (
        f"guides reference images this test does not produce: {referenced - camera.saved}"
    )
    for name in camera.saved:
        assert (IMAGES / name).stat().st_size > 5_000, name
