"""The co-design workshop in the system Chromium: a researcher runs a session end to end (switches a picture, leaves
feedback, is told clearly when a participant code is wrong, sees the rating in the summary and in the CSV), the
in-app tour is dismissed and replayed, axe-core finds no serious accessibility problem on the workshop pages, and
the workshop refuses to start while imported data are present. Every test fails on a browser console error."""

from __future__ import annotations

import csv
import io
import json
import re
import secrets
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import func, select, update

from data_access.schema import Feedback, Patient

pytestmark = pytest.mark.e2e

AXE_JS = Path(__file__).resolve().parent / "vendor" / "axe.min.js"
COMMENT = "<b>Icons</b> are clearer than lines\nfor patients"
TABLET = {"width": 768, "height": 1024}
MIN_TOUCH_PX = 44  # touch target size (Apple HIG and the NHS digital service manual: 44 px or more)


@pytest.fixture
def researcher(page: Page, console, live_dashboard) -> Page:  # noqa: ANN001
    from e2e_support import sign_in

    page.set_default_timeout(30_000)
    sign_in(page, "demo-researcher", next_path="/help")
    return page


def _section(page: Page, heading: str):  # noqa: ANN202 - Locator
    return page.locator("section", has=page.get_by_role("heading", name=heading, exact=True))


def _ratings(live_dashboard, session_id: str) -> int:  # noqa: ANN001 - LiveDashboard
    with live_dashboard.engine.connect() as conn:
        return conn.execute(
            select(func.count()).select_from(Feedback).where(Feedback.session_id == session_id)
        ).scalar_one()


def test_workshop_session_end_to_end(researcher: Page, live_dashboard) -> None:  # noqa: ANN001
    page = researcher
    page.set_viewport_size(TABLET)  # participants use tablets: run the whole session at tablet size
    session_id = f"ws-e2e-{secrets.token_hex(3)}"
    page.goto(f"/workshop?session={session_id}")
    expect(page.get_by_role("heading", name="Co-design workshop")).to_be_visible()
    expect(page.get_by_text(session_id, exact=True)).to_be_visible()
    expect(page.locator("#workshop-persona-progress")).to_have_text(re.compile(r"Person 1 of [23]"))
    card = page.locator("#workshop-persona-card")
    expect(card).to_contain_text(re.compile(r"(Woman|Man) aged \d+"))
    personas = page.locator("#workshop-persona .form-check")
    for pid in _persona_patient_ids(live_dashboard):
        expect(page.locator("main")).not_to_contain_text(pid)

    risk = _section(page, "Risk over time")
    expect(risk.locator(".js-plotly-plot")).to_be_visible()
    # No sideways scrolling, and every choice is a large touch target.
    assert page.evaluate("() => document.documentElement.scrollWidth") <= TABLET["width"]
    for button in risk.locator(".dx-segmented .btn").all():
        box = button.bounding_box()
        assert box is not None and box["height"] >= MIN_TOUCH_PX and box["width"] >= MIN_TOUCH_PX
    risk.get_by_text("Icon array", exact=True).click()
    expect(risk.locator(".dx-icon-grid").first).to_be_visible()
    expect(risk.locator("figcaption").first).to_contain_text(re.compile(r"in 100 people like this"))
    timeline = _section(page, "Medicines over time")
    timeline.get_by_text("Table", exact=True).click()
    expect(timeline.get_by_role("columnheader", name="Safety flags")).to_be_visible()

    # A participant code that could be an NHS number is refused, with a message, and nothing is stored.
    page.get_by_label("Your participant code (optional)").fill("4857773456")
    risk.get_by_text("4 · Well", exact=True).click()
    risk.get_by_role("button", name="Send feedback").click()
    message = risk.locator("#workshop-risk-feedback-message")
    expect(message).to_contain_text("A participant code is 2 to 12 letters")
    assert _ratings(live_dashboard, session_id) == 0

    page.get_by_label("Your participant code (optional)").fill("t07")
    risk.get_by_label("Comment (optional)").fill(COMMENT)
    risk.get_by_role("button", name="Send feedback").click()
    expect(message).to_contain_text("Thank you: your rating of 4 (well) for 'Icon array' was saved.")
    expect(risk.get_by_label("Comment (optional)")).to_have_value("")
    assert _ratings(live_dashboard, session_id) == 1

    # The persona stepper moves on; the feedback link carries the session.
    page.get_by_role("button", name="Next person →").click()
    expect(page.locator("#workshop-persona-progress")).to_have_text(re.compile(r"Person 2 of"))
    assert personas.count() >= 2

    page.get_by_role("link", name="workshop feedback").click()
    expect(page.get_by_role("heading", name="Workshop feedback")).to_be_visible()
    expect(page.locator("#feedback-count")).to_have_text(f"1 rating in session {session_id}.")
    row = page.locator("#feedback-summary tbody tr", has=page.get_by_role("rowheader", name="Icon array"))
    expect(row.locator("td")).to_have_text(["Risk over time", "1", "4.0", "0", "0", "0", "1", "0"])
    comments = page.locator("#feedback-comments")
    expect(comments).to_contain_text("<b>Icons</b> are clearer than lines")
    expect(comments).to_contain_text("participant T07")
    assert comments.locator("b").count() == 0  # the comment is text, never markup

    with page.expect_download() as download_info:
        page.get_by_role("button", name="Export feedback (CSV)").click()
    download = download_info.value
    assert download.suggested_filename == f"workshop-feedback-{session_id}.csv"
    rows = list(csv.DictReader(io.StringIO(Path(download.path()).read_text(encoding="utf-8"))))
    assert len(rows) == 1
    assert {k: rows[0][k] for k in ("session_id", "participant_code", "view", "variant", "rating")} == {
        "session_id": session_id,
        "participant_code": "T07",
        "view": "risk",
        "variant": "icons",
        "rating": "4",
    }
    assert rows[0]["comment"] == COMMENT


def _persona_patient_ids(live_dashboard) -> list[str]:  # noqa: ANN001 - LiveDashboard
    from data_access.queries.scope import Scope
    from data_access.queries.workshop import workshop_personas

    return [p.patient_id for p in workshop_personas(live_dashboard.engine, Scope.everything())]


def test_tour_is_dismissed_and_replayed(researcher: Page) -> None:
    page = researcher
    invite = page.locator("#tour-invite")
    expect(invite).to_be_visible()
    page.get_by_role("button", name="Start the tour").click()
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_role("heading", name="Welcome to DynAIRx")).to_be_visible()
    expect(dialog.get_by_role("button", name="Back")).to_be_disabled()
    dialog.get_by_role("button", name="Next").click()
    expect(dialog.locator(".dx-tour-progress")).to_have_text(re.compile(r"Step 2 of \d+"))
    expect(dialog).not_to_contain_text("Worklist")  # researchers are shown only the pages they can open
    page.keyboard.press("Escape")
    expect(page.get_by_role("dialog")).to_have_count(0)
    expect(invite).to_be_hidden()
    stored = page.evaluate("() => ({...window.localStorage})")
    assert stored.get("tour-dismissed") == "true"
    assert set(stored) <= {"tour-dismissed", "tour-dismissed-timestamp"}  # a flag, nothing else

    page.reload()
    expect(page.get_by_role("heading", name="Help", exact=True)).to_be_visible()
    expect(invite).to_be_hidden()
    page.get_by_role("button", name="Take the tour").click()
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_role("heading", name="Welcome to DynAIRx")).to_be_visible()
    progress = dialog.locator(".dx-tour-progress")
    expect(progress).to_have_text(re.compile(r"Step 1 of \d+"))
    steps = int(re.fullmatch(r"Step 1 of (\d+)", progress.inner_text()).group(1))
    for step in range(2, steps + 1):
        dialog.get_by_role("button", name="Next").click()
        expect(progress).to_have_text(f"Step {step} of {steps}")
    dialog.get_by_role("button", name="Finish").click()
    expect(page.get_by_role("dialog")).to_have_count(0)


def test_workshop_pages_pass_axe(browser: Browser, live_dashboard) -> None:  # noqa: ANN001
    from e2e_support import sign_in

    context = browser.new_context(base_url=live_dashboard.base_url, bypass_csp=True)
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(f"uncaught: {error}"))
    page.set_default_timeout(30_000)
    try:
        sign_in(page, "demo-researcher", next_path="/help")
        for path, ready in (
            ("/workshop", "#workshop-persona-card .card"),
            ("/workshop/feedback", "#feedback-summary table"),
            ("/help/guides/researcher", ".dx-guide h1"),
        ):
            page.goto(path)
            expect(page.locator(ready).first).to_be_visible()
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
            assert not serious, f"{path}: {json.dumps(serious, indent=1)}"
        assert not errors, errors
    finally:
        context.close()


def test_workshop_refuses_to_start_on_imported_data(researcher: Page, live_dashboard) -> None:  # noqa: ANN001
    page = researcher
    engine = live_dashboard.engine
    with engine.connect() as conn:
        patient_id, source = conn.execute(
            select(Patient.id, Patient.source).order_by(Patient.id).limit(1)
        ).one()
    with engine.begin() as conn:
        conn.execute(update(Patient).where(Patient.id == patient_id).values(source="fhir"))
    try:
        page.goto("/workshop")
        refusal = page.locator("#workshop-refusal")
        expect(refusal).to_contain_text("Workshop mode runs on synthetic data only")
        expect(refusal).to_contain_text("1 imported patient record")
        expect(page.locator("#workshop-persona-card")).to_have_count(0)
    finally:
        with engine.begin() as conn:
            conn.execute(update(Patient).where(Patient.id == patient_id).values(source=source))
