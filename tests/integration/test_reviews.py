"""The SMR review workflow against a real database (SQLite and Postgres): recording, scope, the worklist's hiding
and review columns, the capacity-aware proposal, and the audited callback of the real dashboard."""

from __future__ import annotations

import datetime as dt

import pytest
from dashboard_factory import AS_OF, TEST_GROUPS, TEST_RULE_TITLES, CohortBuilder
from sqlalchemy import Engine, func, select

from data_access.queries.capacity import plan_reviews
from data_access.queries.reviews import (
    PatientOutOfScope,
    ReviewError,
    add_months,
    hides,
    latest_review,
    record_review,
    review_history,
    validate_review,
)
from data_access.queries.scope import Scope
from data_access.queries.worklist import GridRequest, WorklistFilters, worklist_page
from data_access.schema import Review
from data_access.worklist_build import refresh_worklist

D = dt.date
TODAY = dt.date.today()
NOW = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
P001 = Scope.practices("P001")


def _patient(b: CohortBuilder, pid: str, *, practice: str = "P001", risk: float = 0.2, high: int = 0) -> None:
    """An SMR-eligible patient (10 medicines) with a current risk and ``high`` active high-severity flags."""
    b.patient(pid, practice_id=practice, birth=(1940, 1), sex="F")
    for drug in (
        "ramipril",
        "amlodipine",
        "furosemide",
        "bisoprolol",
        "atorvastatin",
        "metformin",
        "omeprazole",
        "sertraline",
        "paracetamol",
        "warfarin",
    ):
        b.prescription(pid, drug, D(2024, 1, 1))
    for i in range(high):
        b.flag(
            pid, ("STOPP-v3-B11", "DDI-warfarin-nsaid", "PINCER-GI_P3A")[i], D(2026, 1, 1), severity="high"
        )
    for outcome in ("emergency_admission", "fall_fracture", "medication_harm", "death"):
        b.trajectory(pid, outcome, [risk if outcome == "emergency_admission" else 0.01])


@pytest.fixture
def cohort(db_engine: Engine) -> Engine:
    b = CohortBuilder().model_run()
    _patient(b, "R-HIGH", risk=0.42, high=0)
    _patient(b, "R-FLAGS", risk=0.41, high=2)
    _patient(b, "R-MID", risk=0.30, high=3)
    _patient(b, "R-LOW", risk=0.05)
    _patient(b, "R-RECORD", risk=0.50)  # had a medication review in the record 3 months before the cut
    b.event("R-RECORD", "medication_review", D(2026, 3, 31))
    _patient(b, "R-OLD", risk=0.35)  # their last review was 2 years ago: due again
    b.event("R-OLD", "medication_review", D(2024, 6, 1))
    _patient(b, "R-OTHER", practice="P002", risk=0.6)
    b.patient("R-YOUNG", birth=(2000, 1))  # not eligible: no cohort, few medicines, no flags
    b.load(db_engine)
    refresh_worklist(db_engine, as_of=AS_OF, groups=TEST_GROUPS, rule_titles=TEST_RULE_TITLES)
    return db_engine


def _ids(engine: Engine, filters: WorklistFilters | None = None, scope: Scope = P001) -> list[str]:
    page = worklist_page(engine, scope, filters or WorklistFilters(), GridRequest(0, 500))
    return [r["patient_id"] for r in page.rows]


# -- validation (pure) ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "outcome", "on_date", "message"),
    [
        ("done", None, None, "Choose what happened"),
        ("reviewed", "x" * 501, None, "at most 500"),
        ("snoozed", None, None, "date to snooze"),
        ("snoozed", None, TODAY, "after today"),
        ("snoozed", None, TODAY + dt.timedelta(days=400), "at most 12 months"),
        ("booked", None, TODAY - dt.timedelta(days=1), "in the past"),
        ("reviewed", None, TODAY, "after today"),
    ],
)
def test_invalid_reviews_are_refused_with_a_reason(
    status: str, outcome: str | None, on_date: dt.date | None, message: str
) -> None:
    with pytest.raises(ReviewError, match=message):
        validate_review(status, outcome, on_date, TODAY)


def test_what_is_stored_for_each_status() -> None:
    assert validate_review("reviewed", "  stopped naproxen ", None, D(2026, 1, 31)) == (
        "stopped naproxen",
        None,
        D(2027, 1, 31),
    )
    assert validate_review("snoozed", "", D(2026, 3, 1), D(2026, 1, 31)) == (
        None,
        D(2026, 3, 1),
        D(2026, 3, 1),
    )
    assert validate_review("booked", None, D(2026, 2, 14), D(2026, 1, 31)) == (None, None, D(2026, 2, 14))
    assert validate_review("declined", "not now", D(2026, 2, 14), D(2026, 1, 31)) == ("not now", None, None)
    assert add_months(D(2024, 2, 29), 12) == D(2025, 2, 28)
    at = dt.datetime(2026, 1, 31, 9)
    assert hides("reviewed", at, None, None, D(2027, 1, 30)) and not hides(
        "reviewed", at, None, None, D(2027, 1, 31)
    )
    assert hides("snoozed", at, D(2026, 2, 1), D(2026, 2, 1), D(2026, 1, 31))
    assert not hides("booked", at, None, D(2026, 2, 1), D(2026, 1, 31))
    assert not hides("declined", at, None, None, D(2026, 1, 31))


# -- recording and reading ------------------------------------------------------------------------------------------


def test_record_review_appends_and_the_latest_wins(cohort: Engine) -> None:
    first = record_review(
        cohort, P001, "R-HIGH", status="booked", reviewer="gp-a", on_date=TODAY + dt.timedelta(7)
    )
    second = record_review(
        cohort, P001, "R-HIGH", status="reviewed", reviewer="pharm-b", outcome="stopped naproxen"
    )
    assert first.next_due == TODAY + dt.timedelta(7)
    assert second.next_due == add_months(second.at.date(), 12)
    latest = latest_review(cohort, P001, "R-HIGH")
    assert latest is not None and latest.status == "reviewed" and latest.reviewer == "pharm-b"
    assert "by pharm-b" in latest.summary() and "next due" in latest.summary()
    assert [r.status for r in review_history(cohort, P001, "R-HIGH")] == ["reviewed", "booked"]
    # Visible to everyone covering the practice, to nobody else.
    assert latest_review(cohort, Scope.practices("P001", "P002"), "R-HIGH") is not None
    assert latest_review(cohort, Scope.practices("P002"), "R-HIGH") is None
    # Outside the user's practices (or unknown): refused, and nothing written.
    with pytest.raises(PatientOutOfScope):
        record_review(cohort, P001, "R-OTHER", status="reviewed", reviewer="gp-a")
    with pytest.raises(PatientOutOfScope):
        record_review(cohort, P001, "nobody", status="reviewed", reviewer="gp-a")
    with pytest.raises(ReviewError):
        record_review(cohort, P001, "R-HIGH", status="snoozed", reviewer="gp-a")
    with cohort.connect() as conn:
        assert conn.execute(select(func.count()).select_from(Review)).scalar_one() == 2


# -- the worklist ---------------------------------------------------------------------------------------------------


def test_worklist_hides_reviewed_and_snoozed_until_the_toggle_shows_them(cohort: Engine) -> None:
    everyone = set(_ids(cohort))
    assert {"R-HIGH", "R-FLAGS", "R-MID", "R-LOW"} <= everyone
    record_review(cohort, P001, "R-HIGH", status="reviewed", reviewer="gp-a", outcome="ok")
    record_review(
        cohort, P001, "R-FLAGS", status="snoozed", reviewer="gp-a", on_date=TODAY + dt.timedelta(30)
    )
    record_review(cohort, P001, "R-MID", status="booked", reviewer="gp-a", on_date=TODAY + dt.timedelta(3))
    record_review(cohort, P001, "R-LOW", status="declined", reviewer="gp-a")
    shown = set(_ids(cohort))
    assert shown == everyone - {"R-HIGH", "R-FLAGS"}
    page = worklist_page(cohort, P001, WorklistFilters(), GridRequest(0, 500))
    assert page.total == len(everyone) - 2
    rows = {r["patient_id"]: r for r in worklist_page(cohort, P001, WorklistFilters(show_reviewed=True)).rows}
    assert set(rows) == everyone
    assert rows["R-HIGH"]["review_status"] == f"Reviewed {TODAY:%d %b %Y} (gp-a)"
    assert rows["R-HIGH"]["last_review"] == f"{TODAY:%d %b %Y}"
    assert rows["R-HIGH"]["next_due"] == f"{add_months(TODAY, 12):%d %b %Y}"
    assert rows["R-FLAGS"]["review_status"].startswith("Snoozed until")
    assert rows["R-MID"]["review_status"].startswith("Booked for")
    assert rows["R-LOW"]["review_status"].startswith("Declined")
    assert rows["R-OLD"]["next_due"] == "01 Jun 2025 (overdue)"
    assert rows["R-YOUNG"]["next_due"] == "Due now (none recorded)"
    assert WorklistFilters.from_query_string("?show_reviewed=1").show_reviewed
    assert WorklistFilters(show_reviewed=True).to_query_string() == "?show_reviewed=1"
    # A later action replaces the hiding state.
    record_review(cohort, P001, "R-FLAGS", status="booked", reviewer="gp-b")
    assert "R-FLAGS" in _ids(cohort)
    # An expired snooze and a review more than 12 months old (imported without next_due) come back; a recent one
    # without next_due is due 12 months after it.
    old = {"reviewer": "x", "outcome": None, "next_due": None}
    with cohort.begin() as conn:
        conn.execute(
            Review.__table__.insert(),
            [
                {
                    **old,
                    "patient_id": "R-OLD",
                    "status": "snoozed",
                    "at": NOW - dt.timedelta(days=60),
                    "snooze_until": TODAY - dt.timedelta(days=1),
                },
                {
                    **old,
                    "patient_id": "R-RECORD",
                    "status": "reviewed",
                    "at": NOW - dt.timedelta(days=400),
                    "snooze_until": None,
                },
                {
                    **old,
                    "patient_id": "R-YOUNG",
                    "status": "reviewed",
                    "at": NOW - dt.timedelta(days=30),
                    "snooze_until": None,
                },
            ],
        )
    shown = set(_ids(cohort))
    assert {"R-OLD", "R-RECORD"} <= shown and "R-YOUNG" not in shown


# -- the capacity-aware proposal ------------------------------------------------------------------------------------


def test_capacity_plan_excludes_reviewed_snoozed_and_booked_and_orders_by_priority(cohort: Engine) -> None:
    record_review(cohort, P001, "R-LOW", status="booked", reviewer="gp-a")
    plan = plan_reviews(cohort, P001, "P001", 3, cut=AS_OF, today=TODAY)
    ids = [p["patient_id"] for p in plan.proposed]
    assert "R-RECORD" not in ids and "R-LOW" not in ids and "R-YOUNG" not in ids and "R-OTHER" not in ids
    assert plan.excluded == {"workflow": 1, "reviewed_in_record": 1}
    assert plan.eligible == 6 and plan.to_review == 4
    # 42% and 41% share the 40-45% band, where more high-severity flags come first; then 35%, then 30%.
    assert ids == ["R-FLAGS", "R-HIGH", "R-OLD"]
    assert [p["rank"] for p in plan.proposed] == [1, 2, 3]
    sexes = [r for r in plan.equity if r.dimension == "Sex"]
    assert sum(r.eligible for r in sexes) == plan.eligible and sum(r.proposed for r in sexes) == 3
    assert plan_reviews(cohort, Scope.practices("P002"), "P001", 3, cut=AS_OF, today=TODAY).proposed == []


# -- through the dashboard: recorded, audited, scoped ---------------------------------------------------------------


def test_recording_through_the_dashboard_is_audited_without_the_outcome_text(sqlite_engine: Engine) -> None:
    from dataclasses import replace

    from security_support import Browser

    from app import create_app
    from app.security import ensure_demo_accounts
    from data_access.queries.audit import AuditFilter, search_audit
    from data_access.settings import Settings

    b = CohortBuilder().model_run()
    _patient(b, "R-OWN", risk=0.3)
    _patient(b, "R-AWAY", practice="P003", risk=0.3)
    b.practice("P002")
    b.load(sqlite_engine)
    refresh_worklist(sqlite_engine, as_of=AS_OF, groups=TEST_GROUPS, rule_titles=TEST_RULE_TITLES)
    ensure_demo_accounts(sqlite_engine, "review test password")
    settings = Settings(
        database_url=str(sqlite_engine.url),
        model_service_url=None,
        model_service_token=None,
        secret_key="review-test-secret-0123456789abcdef",
        device="cpu",
        demo=True,
    )
    app = create_app(replace(settings), engine=sqlite_engine)
    browser = Browser(app.server.test_client())
    assert browser.login("demo-gp", "review test password", next_url="/help").status_code == 302
    output = next(
        s["output"]
        for s in browser.get("/_dash-dependencies").get_json()
        if "review-message.children" in s["output"]
    )

    def save(patient_id: str) -> int:
        state = [
            {"id": "review-patient-id", "property": "data", "value": patient_id},
            {"id": "review-status", "property": "value", "value": "reviewed"},
            {"id": "review-date", "property": "value", "value": None},
            {"id": "review-outcome", "property": "value", "value": "Stopped naproxen (patient worried)"},
        ]
        inputs = [{"id": "review-submit", "property": "n_clicks", "value": 1}]
        return browser.callback(output, inputs, state=state).status_code

    assert save("R-OWN") == 200
    assert save("R-AWAY") == 403  # another practice: refused and audited as a denial
    with sqlite_engine.connect() as conn:
        stored = conn.execute(select(Review.patient_id, Review.reviewer, Review.outcome)).all()
    assert stored == [("R-OWN", "demo-gp", "Stopped naproxen (patient worried)")]
    records = search_audit(sqlite_engine, AuditFilter(username="demo-gp", action="record_review"))
    assert [(r.patient_id, r.detail, r.outcome) for r in records] == [("R-OWN", "status reviewed", "allowed")]
    denied = search_audit(
        sqlite_engine, AuditFilter(username="demo-gp", patient_id="R-AWAY", outcome="denied")
    )
    assert denied and all("naproxen" not in (r.detail or "") for r in denied)
