"""Pure parts of the patient page's data: data-quality notes, BNF grouping, ages, factor labels, month arithmetic.
``patient_view`` builds a readable record by hand; the figures and pack tests reuse it."""

from __future__ import annotations

import datetime as dt

from data_access.queries.bnf import bnf_chapter, chapter_plain_words, chapter_title
from data_access.queries.patient import (
    ConditionView,
    Driver,
    EventView,
    FlagView,
    LabView,
    MedicationPeriod,
    PatientHeader,
    PatientRecordView,
    RiskPoint,
    Scores,
    Trajectory,
    age_on,
    data_quality_notes,
)
from data_access.worklist_build import factor_label, months_before

D = dt.date
AS_OF = D(2026, 6, 30)


def medication(
    drug: str,
    section: str,
    start: dt.date,
    stop: dt.date | None = None,
    repeat: bool = True,
    name: str | None = None,
    ingredients: tuple[str, ...] | None = None,
) -> MedicationPeriod:
    keys = (drug,) if ingredients is None else ingredients
    return MedicationPeriod(
        drug=drug,
        name=name or f"{drug.capitalize()} tablets",
        ingredients=keys,
        bnf_section=section,
        chapter=bnf_chapter(section),
        chapter_title=chapter_title(section),
        plain_words=chapter_plain_words(section),
        start=start,
        stop=stop,
        repeat=repeat,
        dose_text="One daily",
    )


def flag(
    rule_id: str, drugs: tuple[str, ...], start: dt.date, end: dt.date | None = None, severity: str = "high"
) -> FlagView:
    return FlagView(
        rule_id=rule_id,
        severity=severity,
        start=start,
        end=end,
        drugs=drugs,
        title=f"{rule_id} title",
        family=rule_id.split("-")[0],
        source="STOPP/START v3",
        rationale="Because.",
        recommendation="Stop the NSAID.",
        evidence="O'Mahony D et al. 2023",
        evidence_url="https://example.org/stopp",
        active=start <= AS_OF and (end is None or end >= AS_OF),
    )


def patient_view(**changes: object) -> PatientRecordView:
    points = [
        RiskPoint(months_before(AS_OF, 12 - m), 0.2 + 0.01 * m, 0.15 + 0.01 * m, 0.25 + 0.01 * m)
        for m in range(13)
    ]
    view = PatientRecordView(
        header=PatientHeader(
            "P-1", "PR1", "Riverside Surgery", 81, "F", D(2010, 1, 1), None, None, ("lives_alone",)
        ),
        as_of=AS_OF,
        scores=Scores(AS_OF, 0.3, "moderate", 3.0, 2.4, 6.0, 5.0),
        trajectory=Trajectory(
            "test-model", {"emergency_admission": points, "fall_fracture": [], "death": []}
        ),
        medications=[
            medication("ibuprofen", "10.1.1", D(2026, 3, 1), repeat=False),
            medication("ramipril", "2.5.5.1", D(2015, 1, 1)),
            medication("furosemide", "2.2.2", D(2016, 1, 1)),
            medication("diazepam", "4.1.2", D(2019, 1, 1), D(2019, 6, 1)),
        ],
        flags=[
            flag("STOPP-v3-B11", ("ibuprofen", "furosemide"), D(2026, 3, 1)),
            flag("STOPP-v3-D5", ("diazepam",), D(2019, 1, 1), D(2019, 6, 1), severity="moderate"),
        ],
        conditions=[ConditionView("heart_failure", "Heart failure", D(2014, 5, 1), None)],
        labs=[LabView("egfr", "eGFR", 48.0, "mL/min/1.73m²", D(2026, 1, 10))],
        events=[
            EventView("fall", "Fall", D(2026, 4, 2)),
            EventView("medication_review", "Medication review", D(2025, 9, 1)),
        ],
        drivers=[
            Driver("emergency_admission", "drug:ibuprofen", "ibuprofen", 0.08),
            Driver("emergency_admission", "drug:ramipril", "ramipril", -0.02),
        ],
        last_review=D(2025, 9, 1),
    )
    view = PatientRecordView(**{**view.__dict__, **changes})
    return PatientRecordView(**{**view.__dict__, "data_notes": data_quality_notes(view)})


def test_bnf_chapters() -> None:
    assert bnf_chapter("2.6.2") == "2" and chapter_title("2.6.2") == "Cardiovascular system"
    assert bnf_chapter("10.1.1") == "10" and "joints" in chapter_plain_words("10.1.1")
    assert bnf_chapter(None) == "" and bnf_chapter("99.1") == "" and chapter_title("") == "Not classified"


def test_age_uses_the_first_of_the_birth_month() -> None:
    assert age_on(1940, 6, D(2026, 6, 30)) == 86
    assert age_on(1940, 7, D(2026, 6, 30)) == 85


def test_months_before_clamps_to_the_month_length() -> None:
    assert months_before(D(2026, 8, 31), 6) == D(2026, 2, 28)
    assert months_before(D(2026, 1, 15), 1) == D(2025, 12, 15)


def test_factor_labels_are_plain_words() -> None:
    assert factor_label("drug:alendronic acid") == "alendronic acid"
    assert factor_label("condition:heart_failure") == "heart failure"
    assert factor_label("event:emergency_admission") == "recent emergency admission"
    assert factor_label("lab:egfr") == "eGFR result"
    assert factor_label("interaction:STOPP-v3-B11", {"STOPP-v3-B11": "NSAID with heart failure"}) == (
        "flagged combination STOPP-v3-B11 (NSAID with heart failure)"
    )
    assert factor_label("age_band") == "age band"


def test_view_helpers() -> None:
    view = patient_view()
    assert {m.drug for m in view.active_medications} == {"ibuprofen", "ramipril", "furosemide"}
    assert [f.rule_id for f in view.active_flags] == ["STOPP-v3-B11"]
    assert [c.key for c in view.active_conditions] == ["heart_failure"]


def test_notes_for_a_complete_record_mention_only_acute_issues() -> None:
    notes = patient_view().data_notes
    assert notes == [
        "1 active medicine is not on repeat (Ibuprofen tablets): acute issues may have stopped without a recorded end "
        "date."
    ]


def test_notes_for_gaps_in_the_record() -> None:
    view = patient_view(
        labs=[LabView("egfr", "eGFR", 48.0, "mL/min/1.73m²", D(2024, 1, 10))],
        trajectory=Trajectory(None, {"emergency_admission": []}),
        header=PatientHeader("P-1", "PR1", "Riverside", 81, "F", D(2025, 9, 1), None, None, ()),
        medications=[medication("Mystery cream", "", D(2026, 1, 1), name="Mystery cream", ingredients=())],
        conditions=[ConditionView(None, "Odd finding", D(2020, 1, 1), None)],
    )
    text = " | ".join(view.data_notes)
    assert "No model prediction is cached" in text
    assert "No eGFR or creatinine in the last 12 months" in text
    assert "1 prescription could not be matched to a medicine (Mystery cream)" in text
    assert "1 recorded condition is not in the DynAIRx vocabulary (Odd finding)" in text
    assert "Short record: registered 9 months before 30 Jun 2026" in text


def test_notes_say_when_the_patient_died() -> None:
    view = patient_view(
        header=PatientHeader("P-1", "PR1", "Riverside", 81, "F", D(2010, 1, 1), None, D(2026, 5, 1), ())
    )
    assert view.data_notes[-1] == "Died on 01 May 2026."
