"""patient_record reads one patient's page in one call, within scope, with rule metadata and data notes."""

from __future__ import annotations

import datetime as dt

import pytest
from dashboard_factory import MODEL_VERSION, CohortBuilder
from sqlalchemy import Engine

from data_access.queries.patient import PatientNotFound, patient_record
from data_access.queries.scope import Scope

D = dt.date
P001 = Scope.practices("P001")


@pytest.fixture
def record_db(db_engine: Engine) -> Engine:
    b = CohortBuilder().model_run()
    b.patient("A", birth=(1940, 3), registered_on=D(2025, 3, 1))
    b.condition("A", "heart_failure", D(2015, 1, 1))
    b.condition("A", "copd", D(2000, 1, 1), resolved=D(2001, 1, 1))
    b.rows["condition"].append(
        {
            "patient_id": "A",
            "code_system": "snomed",
            "code": "1",
            "term": "Odd finding",
            "condition_key": None,
            "onset": D(2020, 1, 1),
            "resolved": None,
        }
    )
    b.prescription("A", "ibuprofen", D(2026, 4, 1), repeat=False)
    b.prescription("A", "ramipril", D(2020, 1, 1))
    b.prescription("A", "diazepam", D(2019, 1, 1), stop=D(2019, 6, 1))
    b.rows["prescription"].append(
        {
            "patient_id": "A",
            "code_system": "text",
            "code": None,
            "name": "Mystery cream",
            "drug_key": None,
            "ingredients": "",
            "bnf_section": None,
            "atc": None,
            "start": D(2026, 1, 1),
            "stop": None,
            "dose_text": "",
            "repeat": True,
        }
    )
    b.observation("A", "egfr", 55, D(2024, 1, 1), "mL/min/1.73m2")
    b.observation("A", "potassium", None, D(2026, 5, 1))
    b.event("A", "fall", D(2026, 2, 2)).event("A", "medication_review", D(2025, 9, 15))
    b.flag("A", "STOPP-v3-B11", D(2026, 4, 1), drugs="ibuprofen", severity="high")
    b.flag("A", "STOPP-v3-D5", D(2019, 1, 1), D(2019, 6, 1), drugs="diazepam", severity="moderate")
    b.score("A", "efi", 0.27).score("A", "acb", 1).score("A", "cms", 2.5).score("A", "medicines", 3)
    b.trajectory("A", "emergency_admission", [0.2, 0.25, 0.3])
    b.trajectory("A", "emergency_admission", [0.9, 0.9, 0.9], model_version="test-old-model")
    b.trajectory("A", "emergency_admission", [0.5], scenario="stop:ibuprofen")
    b.explanation("A", "drug:ibuprofen", 0.07).explanation("A", "drug:ramipril", -0.03)
    b.explanation("A", "drug:ibuprofen", 0.02, outcome="medication_harm")
    b.patient("D", practice_id="P002")
    b.load(db_engine)
    return db_engine


def test_out_of_scope_and_unknown_patients_are_not_found(record_db: Engine) -> None:
    with pytest.raises(PatientNotFound):
        patient_record(record_db, P001, "D")
    with pytest.raises(PatientNotFound):
        patient_record(record_db, P001, "nobody")
    assert patient_record(record_db, Scope.everything(), "D").header.practice_id == "P002"


def test_header_scores_and_as_of(record_db: Engine) -> None:
    view = patient_record(record_db, P001, "A")
    assert view.as_of == D(2026, 6, 30)  # the latest cached prediction of the active model
    assert view.header.age == 86 and view.header.practice_name == "Practice P001"
    assert view.scores.efi_category == "moderate" and view.scores.acb == 1 and view.scores.medicines == 3
    assert view.last_review == D(2025, 9, 15)


def test_trajectory_uses_active_model_and_current_scenario(record_db: Engine) -> None:
    trajectory = patient_record(record_db, P001, "A").trajectory
    assert trajectory.model_version == MODEL_VERSION
    assert [p.risk for p in trajectory.points["emergency_admission"]] == [0.2, 0.25, 0.3]
    assert trajectory.points["death"] == []


def test_medications_flags_and_history(record_db: Engine) -> None:
    view = patient_record(record_db, P001, "A")
    active = {m.drug for m in view.active_medications}
    assert active == {"ibuprofen", "ramipril", "Mystery cream"}
    ibuprofen = next(m for m in view.medications if m.drug == "ibuprofen")
    assert ibuprofen.chapter == "10" and ibuprofen.chapter_title == "Musculoskeletal and joint diseases"
    assert [f.rule_id for f in view.flags] == ["STOPP-v3-B11", "STOPP-v3-D5"]
    assert view.flags[0].active and not view.flags[1].active
    assert view.flags[0].drugs == ("ibuprofen",)
    assert [c.key for c in view.active_conditions] == ["heart_failure", None]
    assert [e.label for e in view.events] == ["Medication review", "Fall"]
    assert [lab.label for lab in view.labs] == ["eGFR", "Potassium"]


def test_drivers_are_ranked_by_size_per_outcome(record_db: Engine) -> None:
    drivers = patient_record(record_db, P001, "A").drivers
    assert [(d.outcome, d.label) for d in drivers] == [
        ("emergency_admission", "ibuprofen"),
        ("emergency_admission", "ramipril"),
        ("medication_harm", "ibuprofen"),
    ]


def test_data_quality_notes(record_db: Engine) -> None:
    notes = " ".join(patient_record(record_db, P001, "A").data_notes)
    assert "No eGFR or creatinine in the last 12 months" in notes
    assert "1 active medicine is not on repeat (Ibuprofen 400mg tablets)" in notes
    assert "could not be matched to a medicine (Mystery cream)" in notes
    assert "not in the DynAIRx vocabulary (Odd finding)" in notes
    assert "Short record: registered 15 months before 30 Jun 2026" in notes
