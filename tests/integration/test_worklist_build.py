"""refresh_worklist materialises one correct summary row per registered patient, on SQLite and Postgres."""

from __future__ import annotations

import datetime as dt

import pytest
from dashboard_factory import AS_OF, TEST_GROUPS, TEST_RULE_TITLES, CohortBuilder
from sqlalchemy import Engine, select

from data_access.schema import WorklistEntry
from data_access.worklist_build import refresh_worklist

D = dt.date


def _cohort() -> CohortBuilder:
    b = CohortBuilder().model_run()
    # A: older woman with depression and four physical LTCs, ten medicines, a new NSAID-with-heart-failure flag,
    # rising risk and a recent emergency admission after her last review.
    b.patient("A", birth=(1940, 3), sex="F")
    for key, onset in (
        ("depression", D(2010, 1, 1)),
        ("heart_failure", D(2015, 1, 1)),
        ("hypertension", D(2008, 1, 1)),
        ("ckd", D(2018, 1, 1)),
        ("type2_diabetes", D(2012, 1, 1)),
    ):
        b.condition("A", key, onset)
    b.condition("A", "copd", D(2000, 1, 1), resolved=D(2001, 1, 1))  # resolved: not counted
    for drug in (
        "ibuprofen",
        "ramipril",
        "amlodipine",
        "furosemide",
        "bisoprolol",
        "atorvastatin",
        "metformin",
        "omeprazole",
        "sertraline",
        "paracetamol",
    ):
        b.prescription("A", drug, D(2024, 1, 1))
    b.prescription("A", "naproxen", D(2020, 1, 1), stop=D(2021, 1, 1))  # stopped: not counted
    b.prescription(
        "A", "codeine", D(2026, 6, 30), stop=D(2026, 6, 30)
    )  # active on its single day? starts = as_of
    b.score("A", "efi", 0.30).score("A", "acb", 2).score("A", "cms", 3.1)
    b.score("A", "efi", 0.10, as_of=D(2020, 1, 1))  # older score: superseded
    b.event("A", "medication_review", D(2025, 9, 15))
    b.event("A", "emergency_admission", D(2026, 5, 20))
    b.flag("A", "STOPP-v3-B11", D(2026, 5, 1), drugs="ibuprofen", severity="high")
    b.flag("A", "PINCER-GI_P3A", D(2024, 1, 1), drugs="ibuprofen", severity="moderate")
    b.flag("A", "DDI-warfarin-nsaid", D(2022, 1, 1), D(2025, 1, 1), severity="high")  # ended: not active
    b.trajectory("A", "emergency_admission", [0.20 + 0.0125 * m for m in range(13)])  # 0.20 → 0.35
    b.trajectory("A", "fall_fracture", [0.10] * 13)
    b.explanation("A", "drug:ibuprofen", 0.08)
    b.explanation("A", "condition:heart_failure", 0.05)
    b.explanation("A", "drug:furosemide", 0.03, outcome="fall_fracture")
    b.explanation("A", "drug:amlodipine", 0.01)
    b.explanation("A", "drug:paracetamol", -0.02)
    # B: young man with nothing recorded.
    b.patient("B", birth=(1990, 7), sex="M")
    # C died and E left the practice before the as-of date; F registers after it.
    b.patient("C", died_on=D(2026, 1, 1))
    b.patient("E", deregistered_on=D(2025, 1, 1))
    b.patient("F", registered_on=D(2026, 8, 1))
    # D: another practice, review snoozed.
    b.patient("D", practice_id="P002", birth=(1950, 12), sex="M")
    b.score("D", "efi", 0.05)
    b.flag("D", "STOPP-v3-D5", D(2026, 1, 1), severity="low")
    b.review("D", "snoozed", dt.datetime(2026, 6, 1, 10), snooze_until=D(2026, 9, 1))
    return b


def _entries(engine: Engine) -> dict[str, dict]:
    with engine.connect() as conn:
        return {r.patient_id: dict(r._mapping) for r in conn.execute(select(WorklistEntry))}


@pytest.fixture
def built(db_engine: Engine) -> Engine:
    _cohort().load(db_engine)
    refresh_worklist(db_engine, as_of=AS_OF, groups=TEST_GROUPS, rule_titles=TEST_RULE_TITLES)
    return db_engine


def test_registered_patients_only(built: Engine) -> None:
    assert set(_entries(built)) == {"A", "B", "D"}


def test_counts_scores_and_cohort_markers(built: Engine) -> None:
    a = _entries(built)["A"]
    assert a["practice_id"] == "P001"
    assert a["age"] == 86  # born March 1940, as of 30 Jun 2026
    assert a["ltc_count"] == 5
    assert a["mental_and_physical"] is True
    assert a["medicines_count"] == 11  # ten repeats plus codeine active on its single day (inclusive dates)
    assert a["efi"] == pytest.approx(0.30)
    assert a["efi_category"] == "moderate"
    assert a["acb"] == 2 and a["cms"] == pytest.approx(3.1)
    assert a["condition_keys"] == "ckd;depression;heart_failure;hypertension;type2_diabetes"
    assert "naproxen" not in a["active_drugs"].split(";") and "ibuprofen" in a["active_drugs"].split(";")


def test_flags_reviews_and_risks(built: Engine) -> None:
    a = _entries(built)["A"]
    assert (a["flags_high"], a["flags_moderate"], a["flags_low"]) == (1, 1, 0)
    assert a["active_rules"] == "PINCER-GI_P3A;STOPP-v3-B11"
    assert a["last_review"] == D(2025, 9, 15)
    assert a["last_discharge"] == D(2026, 5, 20)
    assert a["risk_emergency_admission"] == pytest.approx(0.35)
    assert a["risk_fall_fracture"] == pytest.approx(0.10)
    assert a["risk_death"] is None
    # 6 calendar months before 30 Jun 2026 is 30 Dec 2025, a monthly point (index 6): 0.20 + 6 × 0.0125 = 0.275
    assert a["risk_change_6m"] == pytest.approx(0.075)
    assert a["model_version"] == "test-model-1"


def test_why_text_names_rule_admission_and_drivers(built: Engine) -> None:
    why = _entries(built)["A"]["why"]
    assert why.startswith("New: STOPP-v3-B11 NSAID with heart failure (high); PINCER-GI_P3A")
    assert "Risk of emergency admission up 8 points in 6 months" in why
    assert "Emergency admission 20 May 2026" in why
    assert "Model risk driven by ibuprofen, heart failure, furosemide" in why
    assert "paracetamol" not in why  # negative contributions are not drivers


def test_why_now_score_follows_documented_weights(built: Engine) -> None:
    entries = _entries(built)
    # new high flag 3 + rise 20 × 0.075 + recent admission 2 + level 2 × 0.35 (reviewed within 12 months)
    assert entries["A"]["why_now_score"] == pytest.approx(3 + 1.5 + 2 + 0.7)
    # B: never reviewed (+1), nothing else.
    assert entries["B"]["why_now_score"] == pytest.approx(1.0)
    assert entries["B"]["why"] == ""
    assert entries["D"]["why_now_score"] == 0.0
    assert entries["D"]["why"].startswith("Review snoozed until 01 Sep 2026")


def test_refresh_of_some_patients_leaves_others(built: Engine) -> None:
    before = _entries(built)
    CohortBuilder().flag("B", "STOPP-v3-D5", D(2026, 6, 1), severity="high").load(built)
    written = refresh_worklist(
        built, ["B", "C"], as_of=AS_OF, groups=TEST_GROUPS, rule_titles=TEST_RULE_TITLES
    )
    after = _entries(built)
    assert written == 1  # C is dead: removed, not re-added
    assert after["B"]["flags_high"] == 1 and "STOPP-v3-D5" in after["B"]["why"]
    assert after["A"] == before["A"] and after["D"] == before["D"]


def test_empty_database_builds_nothing(db_engine: Engine) -> None:
    assert refresh_worklist(db_engine, as_of=AS_OF, groups=TEST_GROUPS, rule_titles={}) == 0


def test_default_as_of_is_latest_prediction(db_engine: Engine) -> None:
    _cohort().load(db_engine)
    refresh_worklist(db_engine, groups=TEST_GROUPS, rule_titles=TEST_RULE_TITLES)
    assert _entries(db_engine)["A"]["risk_emergency_admission"] == pytest.approx(0.35)
