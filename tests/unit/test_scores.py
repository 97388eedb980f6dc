"""Clinical scores: ACB total, eFI (Clegg 2016), Cambridge Multimorbidity Score (Payne 2020), counts."""

from __future__ import annotations

from datetime import date

import pytest
from engine_cases import AS_OF, patient

from clinical.knowledge import load_knowledge
from clinical.scores import efi_deficits_on, score_history, scores
from clinical.timeline import PatientTimeline, efi_category


def score(record, as_of=AS_OF):
    return scores(record, as_of, load_knowledge())


def test_acb_sums_the_active_drugs_only():
    record = patient(
        drugs=(
            ("amitriptyline", "2025-01-01", None),
            ("codeine", "2025-01-01", None),
            ("oxybutynin", "2024-01-01", "2024-12-31"),
        )
    )
    assert score(record)["acb"] == 4
    assert score(record, date(2024, 6, 1))["acb"] == 3


def test_medicines_counts_distinct_active_ingredients():
    record = patient(
        drugs=(
            (("codeine", "paracetamol"), "2025-01-01", None),
            ("paracetamol", "2025-02-01", None),
            ("amlodipine", "2025-01-01", "2025-06-29"),
        )
    )
    assert score(record)["medicines"] == 2


def test_efi_counts_deficits_over_36_and_categorises():
    conditions = (
        ("hypertension", "2010-01-01"),
        ("atrial_fibrillation", "2015-01-01"),
        ("heart_failure", "2016-01-01"),
        ("type2_diabetes", "2012-01-01"),
    )
    fit = patient(conditions=conditions)
    assert score(fit)["efi"] == pytest.approx(4 / 36, abs=1e-4)
    assert score(fit)["efi_category"] == "fit"
    mild = patient(
        conditions=conditions, events=(("fall", "2024-01-01"),), social=(("home_care", "2024-06-01"),)
    )
    values = score(mild)
    # falls; home care evidences both activity limitation and requirement for care (conditions.yaml)
    assert values["efi"] == pytest.approx(7 / 36, abs=1e-4)
    assert values["efi_category"] == "mild"


def test_efi_deficit_counts_from_first_evidence_and_polypharmacy_only_while_on_five_drugs():
    drugs = tuple(
        (d, "2025-01-01", "2025-03-31")
        for d in ("amlodipine", "ramipril", "atorvastatin", "aspirin", "metformin")
    )
    record = patient(drugs=drugs, conditions=(("osteoporosis", "2025-02-01"),))
    timeline = PatientTimeline(record, AS_OF, load_knowledge())
    assert efi_deficits_on(timeline, date(2025, 3, 1).toordinal()) == ["osteoporosis", "polypharmacy"]
    assert efi_deficits_on(timeline, AS_OF.toordinal()) == ["osteoporosis"]
    assert efi_deficits_on(timeline, date(2025, 1, 15).toordinal()) == ["polypharmacy"]


def test_low_haemoglobin_and_low_egfr_are_efi_inputs():
    record = patient(sex="F", labs=(("haemoglobin", "2024-01-01", 105.0), ("egfr", "2024-02-01", 50.0)))
    timeline = PatientTimeline(record, AS_OF, load_knowledge())
    assert set(efi_deficits_on(timeline, AS_OF.toordinal())) >= {
        "anaemia_haematinic_deficiency",
        "chronic_kidney_disease",
    }


@pytest.mark.parametrize(
    ("efi", "category"),
    [
        (0.0, "fit"),
        (0.12, "fit"),
        (5 / 36, "mild"),
        (0.24, "mild"),
        (9 / 36, "moderate"),
        (0.36, "moderate"),
        (13 / 36, "severe"),
    ],
)
def test_efi_category_cutoffs(efi, category):
    assert efi_category(efi) == category


def test_cms_weights_count_each_cms_condition_once_and_only_while_active():
    record = patient(
        conditions=(
            ("anxiety", "2015-01-01"),
            ("depression", "2016-01-01"),
            ("heart_failure", "2019-01-01"),
            ("copd", "2010-01-01", "2012-01-01"),
        )
    )
    assert score(record)["cms"] == pytest.approx(0.5 + 1.18)


def test_long_term_conditions_counts_active_ltc_keys():
    record = patient(
        conditions=(
            ("hypertension", "2015-01-01"),
            ("asthma", "2016-01-01", "2020-01-01"),
            ("insomnia", "2019-01-01"),
            ("copd", "2019-01-01"),
        )
    )
    assert score(record)["long_term_conditions"] == 2


def test_scores_have_the_documented_keys_and_history_works():
    record = patient(drugs=(("amitriptyline", "2025-01-01", None),))
    values = score(record)
    assert set(values) == {"acb", "efi", "efi_category", "cms", "medicines", "long_term_conditions"}
    timeline = PatientTimeline(record, AS_OF, load_knowledge())
    history = score_history(timeline, [date(2024, 12, 31), date(2025, 1, 31), date(2025, 12, 31)])
    assert [(d.isoformat(), v["acb"]) for d, v in history] == [("2024-12-31", 0), ("2025-01-31", 3)]
