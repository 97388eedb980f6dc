"""Workshop data against a real database (SQLite and Postgres): feedback stored, summarised per variant and exported
as CSV; the synthetic-data gate; persona candidates read from the worklist and the latest eFI score, in scope."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from dashboard_factory import AS_OF, TEST_GROUPS, TEST_RULE_TITLES, CohortBuilder
from sqlalchemy import Engine, update

from data_access.queries.scope import Scope
from data_access.queries.workshop import (
    CSV_COLUMNS,
    RATING_MAX,
    FeedbackEntry,
    feedback_comments,
    feedback_csv,
    feedback_sessions,
    feedback_summary,
    persona_candidates,
    record_feedback,
    synthetic_source,
    validate_feedback,
    workshop_personas,
    workshop_readiness,
)
from data_access.schema import Feedback, Patient
from data_access.worklist_build import refresh_worklist

D = dt.date
T0 = dt.datetime(2026, 12, 1, 10, 0, 0)


def entry(
    session: str, view: str, variant: str, rating: int, comment: str | None = None, code: str | None = None
):  # noqa: ANN201
    return validate_feedback(
        session_id=session, participant_code=code, view=view, variant=variant, rating=rating, comment=comment
    )


@pytest.fixture
def feedback(db_engine: Engine) -> Engine:
    rows = [
        entry("ws-20261201-aaaaaa", "risk", "fan", 4, "Bands are clear", "P01"),
        entry("ws-20261201-aaaaaa", "risk", "fan", 5, None, "P02"),
        entry("ws-20261201-aaaaaa", "risk", "icons", 2, "=cmd|' /C calc'!A0", "P01"),
        entry(
            "ws-20261201-aaaaaa", "timeline", "table", 3, "<img src=x onerror=alert(1)>\nSecond line", None
        ),
        entry("ws-20261202-bbbbbb", "risk", "fan", 1, "Too busy", "P09"),
    ]
    for minutes, row in enumerate(rows):
        record_feedback(db_engine, row, at=T0 + dt.timedelta(minutes=minutes))
    return db_engine


def test_summary_per_variant_lists_every_variant(feedback: Engine) -> None:
    summary = {(s.view, s.variant): s for s in feedback_summary(feedback)}
    assert len(summary) == 6
    fan = summary[("risk", "fan")]
    assert (fan.n, fan.distribution) == (3, (1, 0, 0, 1, 1))
    assert fan.mean == pytest.approx(10 / 3)
    assert (fan.view_label, fan.variant_label) == ("Risk over time", "Fan chart")
    unrated = summary[("timeline", "gantt")]
    assert (unrated.n, unrated.mean, unrated.distribution) == (0, None, (0,) * RATING_MAX)
    one_session = {(s.view, s.variant): s for s in feedback_summary(feedback, "ws-20261201-aaaaaa")}
    assert one_session[("risk", "fan")].n == 2 and one_session[("risk", "fan")].mean == pytest.approx(4.5)
    assert sum(s.n for s in feedback_summary(feedback, "ws-nobody-here")) == 0


def test_ratings_of_a_retired_variant_are_still_summarised(feedback: Engine) -> None:
    retired = FeedbackEntry(
        "ws-20261203-cccccc", None, "risk", "pie", 2, None
    )  # bypasses validation on purpose
    record_feedback(feedback, retired, at=T0)
    summary = feedback_summary(feedback)
    assert (summary[-1].view, summary[-1].variant, summary[-1].n) == ("risk", "pie", 1)


def test_sessions_and_comments(feedback: Engine) -> None:
    sessions = feedback_sessions(feedback)
    assert [s.session_id for s in sessions] == ["ws-20261202-bbbbbb", "ws-20261201-aaaaaa"]
    first = sessions[1]
    assert (first.ratings, first.participants) == (4, 2)
    assert first.first_at == T0 and first.last_at == T0 + dt.timedelta(minutes=3)
    comments = feedback_comments(feedback, "ws-20261201-aaaaaa")
    assert [c.rating for c in comments] == [3, 2, 4]  # newest first; the rating without a comment is left out
    assert comments[0].comment == "<img src=x onerror=alert(1)>\nSecond line"  # stored as typed


def test_csv_export_round_trips_and_guards_formulas(feedback: Engine) -> None:
    text, count = feedback_csv(feedback)
    rows = list(csv.reader(io.StringIO(text)))
    assert count == 5 and rows[0] == list(CSV_COLUMNS) and len(rows) == 6
    assert rows[1] == [
        "2026-12-01 10:00:00",
        "ws-20261201-aaaaaa",
        "P01",
        "risk",
        "fan",
        "4",
        "Bands are clear",
    ]
    assert rows[3][-1] == "'=cmd|' /C calc'!A0"
    assert rows[4][-1] == "<img src=x onerror=alert(1)>\nSecond line"
    assert rows[4][2] == ""
    text, count = feedback_csv(feedback, "ws-20261202-bbbbbb")
    assert count == 1 and list(csv.reader(io.StringIO(text)))[1][1] == "ws-20261202-bbbbbb"


def test_feedback_table_holds_exactly_what_was_validated(feedback: Engine) -> None:
    with feedback.connect() as conn:
        stored = conn.execute(Feedback.__table__.select().order_by(Feedback.id)).mappings().all()
    assert [r["participant_code"] for r in stored] == ["P01", "P02", "P01", None, "P09"]
    assert all(1 <= r["rating"] <= 5 for r in stored)


def _cohort(engine: Engine) -> None:
    builder = CohortBuilder().model_run()
    builder.patient("F1", birth=(1941, 6), sex="F")  # 85 on AS_OF
    for drug in (
        "ramipril",
        "amlodipine",
        "furosemide",
        "bisoprolol",
        "atorvastatin",
        "metformin",
        "omeprazole",
    ):
        builder.prescription("F1", drug, D(2020, 1, 1))
    for drug in ("sertraline", "paracetamol", "codeine", "levothyroxine", "alendronic_acid"):
        builder.prescription("F1", drug, D(2021, 1, 1))
    builder.score("F1", "efi", 0.10, as_of=D(2025, 1, 1)).score("F1", "efi", 0.40, as_of=D(2026, 12, 31))
    builder.trajectory("F1", "emergency_admission", [0.2] * 13)
    builder.patient("M1", birth=(1968, 1), sex="M")  # 58
    for key in ("depression", "type2_diabetes"):
        builder.condition("M1", key, D(2015, 1, 1))
    builder.condition("M1", "chronic_pain", D(2016, 1, 1))
    builder.trajectory("M1", "emergency_admission", [0.1] * 13)
    builder.patient("OTHER", practice_id="P002", birth=(1942, 1))
    for drug in ("ramipril", "amlodipine", "furosemide", "bisoprolol", "atorvastatin", "metformin"):
        builder.prescription("OTHER", drug, D(2020, 1, 1))
    for drug in ("omeprazole", "sertraline", "paracetamol", "codeine", "levothyroxine", "alendronic_acid"):
        builder.prescription("OTHER", drug, D(2020, 1, 1))
    builder.score("OTHER", "efi", 0.5)
    builder.load(engine)
    refresh_worklist(engine, as_of=AS_OF, groups=TEST_GROUPS, rule_titles=TEST_RULE_TITLES)


def _make_synthetic(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(update(Patient).values(source=synthetic_source()))


def test_the_workshop_refuses_to_start_on_imported_data(db_engine: Engine) -> None:
    empty = workshop_readiness(db_engine)
    assert not empty.ready and "no patients" in empty.message
    _cohort(db_engine)  # the test factory marks its patients as source 'test', i.e. not synthetic
    refused = workshop_readiness(db_engine)
    assert not refused.ready and refused.non_synthetic == 3
    assert "synthetic data only" in refused.message and "3 imported patient records" in refused.message
    _make_synthetic(db_engine)
    assert workshop_readiness(db_engine).ready
    with db_engine.begin() as conn:
        conn.execute(update(Patient).where(Patient.id == "M1").values(source="fhir"))
    one = workshop_readiness(db_engine)
    assert not one.ready and "1 imported patient record," in one.message


def test_persona_candidates_use_the_latest_efi_and_the_scope(db_engine: Engine) -> None:
    _cohort(db_engine)
    candidates = {c.patient_id: c for c in persona_candidates(db_engine, Scope.practices("P001"))}
    assert set(candidates) == {"F1", "M1"}
    frail = candidates["F1"]
    assert (frail.age, frail.medicines, frail.efi, frail.efi_category) == (85, 12, 0.40, "severe")
    assert frail.has_prediction
    midlife = candidates["M1"]
    assert midlife.conditions == {"depression", "type2_diabetes", "chronic_pain"}
    assert midlife.efi is None and midlife.efi_category is None
    assert persona_candidates(db_engine, Scope(frozenset())) == []

    personas = {p.key: p for p in workshop_personas(db_engine, Scope.practices("P001"))}
    assert personas["frailty-many-medicines"].patient_id == "F1"
    assert personas["mental-physical-pain"].patient_id == "M1"
    # OTHER (84, 12 medicines, severe frailty) is nearer the target, but has no model predictions to show.
    everyone = {p.key: p.patient_id for p in workshop_personas(db_engine, Scope.everything())}
    assert everyone["frailty-many-medicines"] == "F1"
