"""Temporal semantics of the safety engine: inclusive dates, overlaps, durations, lab validity, distinct drugs."""

from __future__ import annotations

from datetime import date

import pytest
from engine_cases import AS_OF, active_now, engine, patient, periods

from clinical import intervals as iv
from clinical.engine import SafetyEngine
from clinical.knowledge import load_knowledge
from clinical.record import age_on, birth_date_from_age, birth_date_from_year_month
from clinical.rules import RuleBook, parse_rule_document
from clinical.timeline import PatientTimeline


def test_past_only_overlap_is_reported_with_its_end_and_is_not_active_now():
    record = patient(
        drugs=(("warfarin", "2024-01-01", "2024-03-31"), ("ibuprofen", "2024-03-01", "2024-04-30"))
    )
    assert periods(record, "DDI-WARFARIN_NSAID") == [("2024-03-01", "2024-03-31", ("ibuprofen", "warfarin"))]
    assert not active_now(record, "DDI-WARFARIN_NSAID")


def test_a_single_day_of_overlap_flags_that_day():
    record = patient(
        drugs=(("warfarin", "2025-01-01", "2025-03-10"), ("naproxen", "2025-03-10", "2025-04-10"))
    )
    assert periods(record, "DDI-WARFARIN_NSAID") == [("2025-03-10", "2025-03-10", ("naproxen", "warfarin"))]


def test_no_overlap_when_one_stops_the_day_before_the_other_starts():
    record = patient(drugs=(("warfarin", "2025-01-01", "2025-03-09"), ("naproxen", "2025-03-10", None)))
    assert periods(record, "DDI-WARFARIN_NSAID") == []


def test_drug_stopped_yesterday_is_not_active_today():
    record = patient(age=70, drugs=(("ibuprofen", "2025-05-01", "2025-06-29"),))
    assert periods(record, "PINCER-GI_P3A") == [("2025-05-01", "2025-06-29", ("ibuprofen",))]
    assert not active_now(record, "PINCER-GI_P3A")


def test_drug_stopping_on_as_of_is_still_active():
    record = patient(age=70, drugs=(("ibuprofen", "2025-05-01", AS_OF.isoformat()),))
    assert periods(record, "PINCER-GI_P3A") == [("2025-05-01", None, ("ibuprofen",))]


def test_gastroprotection_started_after_the_nsaid_leaves_only_the_unprotected_period():
    record = patient(age=72, drugs=(("ibuprofen", "2025-01-01", None), ("omeprazole", "2025-03-01", None)))
    assert periods(record, "PINCER-GI_P3A") == [("2025-01-01", "2025-02-28", ("ibuprofen",))]


def test_gap_in_gastroprotection_flags_again():
    record = patient(
        age=72,
        drugs=(
            ("ibuprofen", "2025-01-01", None),
            ("omeprazole", "2024-12-01", "2025-02-28"),
            ("lansoprazole", "2025-04-01", None),
        ),
    )
    assert periods(record, "PINCER-GI_P3A") == [("2025-03-01", "2025-03-31", ("ibuprofen",))]


def test_switching_nsaid_without_a_gap_is_one_period_with_both_drugs():
    record = patient(
        age=80, drugs=(("ibuprofen", "2025-01-01", "2025-03-31"), ("naproxen", "2025-04-01", None))
    )
    assert periods(record, "PINCER-GI_P3A") == [("2025-01-01", None, ("ibuprofen", "naproxen"))]


def test_future_prescriptions_are_ignored():
    record = patient(age=80, drugs=(("ibuprofen", "2025-07-01", None),))
    assert periods(record, "PINCER-GI_P3A") == []


def test_age_threshold_starts_the_flag_on_the_birthday():
    record = patient(drugs=(("ibuprofen", "2024-01-01", None),))
    birth = date(1960, 3, 15)
    record = type(record)(patient_id="p", birth_date=birth, sex="F", prescriptions=record.prescriptions)
    assert periods(record, "PINCER-GI_P3A") == [("2025-03-15", None, ("ibuprofen",))]


def test_lab_result_is_valid_for_its_window_and_superseded_by_a_later_result():
    base = {"drugs": (("ibuprofen", "2023-01-01", None),), "age": 50}
    stale = patient(labs=(("egfr", "2024-01-10", 40.0),), **base)
    assert periods(stale, "PINCER-KI_P3K") == [("2024-01-10", "2025-01-09", ("ibuprofen",))]
    superseded = patient(labs=(("egfr", "2024-01-10", 40.0), ("egfr", "2024-06-01", 70.0)), **base)
    assert periods(superseded, "PINCER-KI_P3K") == [("2024-01-10", "2024-05-31", ("ibuprofen",))]


def test_null_lab_value_neither_satisfies_a_comparison_nor_hides_an_earlier_value():
    record = patient(
        age=50,
        drugs=(("ibuprofen", "2025-01-01", None),),
        labs=(("egfr", "2025-02-01", 30.0), ("egfr", "2025-05-01", None)),
    )
    assert periods(record, "PINCER-KI_P3K") == [("2025-02-01", None, ("ibuprofen",))]


def test_null_lab_value_counts_as_a_test_for_monitoring():
    record = patient(drugs=(("lithium", "2024-01-01", None),), labs=(("lithium", "2025-05-01", None),))
    assert not active_now(record, "PINCER-MO_P17")


def test_duration_threshold_counts_the_start_day():
    record = patient(drugs=(("methotrexate", "2025-01-01", None),))
    assert periods(record, "PINCER-MO_P15_FBC") == [("2025-04-01", None, ("methotrexate",))]


def test_resolved_condition_ends_the_flag_on_its_resolution_date():
    record = patient(
        conditions=(("asthma", "2010-01-01", "2024-12-31"),), drugs=(("propranolol", "2024-06-01", None),)
    )
    assert periods(record, "PINCER-AS_P3G") == [("2024-06-01", "2024-12-31", ("propranolol",))]


def test_combination_product_contributes_each_ingredient():
    record = patient(
        drugs=(
            (("amiloride", "furosemide"), "2025-01-01", None),
            ("ramipril", "2025-01-01", None),
            ("ibuprofen", "2025-06-01", None),
        )
    )
    assert periods(record, "DDI-TRIPLE_WHAMMY") == [
        ("2025-06-01", None, ("amiloride", "furosemide", "ibuprofen", "ramipril"))
    ]


def test_as_of_in_the_past_cuts_the_record():
    record = patient(age=80, drugs=(("ibuprofen", "2024-01-01", None),))
    assert periods(record, "PINCER-GI_P3A", as_of=date(2024, 6, 30)) == [("2024-01-01", None, ("ibuprofen",))]


def _custom_engine(when: dict) -> SafetyEngine:
    doc = {
        "source": {"key": "t", "name": "test", "citation": "test"},
        "rules": [
            {
                "id": "DDI-TEST",
                "family": "DDI",
                "source": "t",
                "title": "t",
                "severity": "low",
                "rationale": "r",
                "recommendation": "r",
                "evidence": "e",
                "when": when,
            }
        ],
    }
    source, rules, _ = parse_rule_document(doc, "test.yaml")
    return SafetyEngine(RuleBook(tuple(rules), (source,)), load_knowledge())


def test_requirements_are_met_by_distinct_drugs():
    custom = _custom_engine({"drugs": ["class:beta_blocker", "class:qt_prolonging"]})
    sotalol_only = patient(drugs=(("sotalol", "2025-01-01", None),))
    assert custom.evaluate(sotalol_only, AS_OF) == []
    with_bisoprolol = patient(drugs=(("sotalol", "2025-01-01", None), ("bisoprolol", "2025-02-01", None)))
    [flag] = custom.evaluate(with_bisoprolol, AS_OF)
    assert (flag.start, flag.end, flag.drugs) == (date(2025, 2, 1), None, ("bisoprolol", "sotalol"))


def test_min_count_needs_that_many_distinct_drugs_at_once():
    record = patient(drugs=(("citalopram", "2025-01-01", "2025-02-28"), ("domperidone", "2025-03-01", None)))
    assert periods(record, "DDI-QT_TWO_KNOWN_RISK") == []
    overlap = patient(drugs=(("citalopram", "2025-01-01", "2025-03-05"), ("domperidone", "2025-03-01", None)))
    assert periods(overlap, "DDI-QT_TWO_KNOWN_RISK") == [
        ("2025-03-01", "2025-03-05", ("citalopram", "domperidone"))
    ]


def test_same_drug_twice_does_not_meet_min_count():
    record = patient(drugs=(("citalopram", "2025-01-01", None), ("citalopram", "2025-02-01", None)))
    assert periods(record, "DDI-QT_TWO_KNOWN_RISK") == []


def test_events_window_and_min_count():
    custom = _custom_engine({"events": [{"type": "fall", "within_days": 365, "min_count": 2}]})
    record = patient(events=(("fall", "2024-03-01"), ("fall", "2024-09-01")))
    [flag] = custom.evaluate(record, AS_OF)
    assert (flag.start, flag.end) == (date(2024, 9, 1), date(2025, 3, 1))


def test_unknown_sex_never_satisfies_a_sex_criterion():
    custom = _custom_engine({"sex": "F", "drugs": ["class:nsaid"]})
    record = patient(drugs=(("ibuprofen", "2025-01-01", None),))
    unknown = type(record)(
        patient_id="p", birth_date=record.birth_date, sex=None, prescriptions=record.prescriptions
    )
    assert custom.evaluate(unknown, AS_OF) == []
    assert len(custom.evaluate(record, AS_OF)) == 1


def test_candidate_rules_skip_rules_whose_drugs_are_absent():
    timeline = PatientTimeline(patient(drugs=(("paracetamol", "2025-01-01", None),)), AS_OF, load_knowledge())
    ids = {c.rule.id for c in engine().candidate_rules(timeline)}
    assert "DDI-WARFARIN_NSAID" not in ids and "PINCER-GI_P3A" not in ids


@pytest.mark.parametrize(
    ("left", "right", "expected"),
    [
        (((1, 5), (10, 12)), ((4, 11),), ((4, 5), (10, 11))),
        (((1, 5),), ((6, 9),), ()),
        (((1, 5),), ((5, 5),), ((5, 5),)),
    ],
)
def test_interval_intersection(left, right, expected):
    assert iv.intersect(left, right) == expected


def test_interval_normalise_complement_and_runs():
    assert iv.normalise([(5, 6), (1, 3), (4, 4)]) == ((1, 6),)
    assert iv.complement(((3, 4), (8, 9)), 1, 10) == ((1, 2), (5, 7), (10, 10))
    assert iv.after_run_of(((1, 10), (20, 21)), 3) == ((3, 10),)
    assert iv.union(((1, 2),), ((3, 4),)) == ((1, 4),)


def test_age_on_and_birth_date_conventions():
    assert age_on(date(2000, 2, 29), date(2021, 2, 28)) == 21
    assert age_on(date(2000, 3, 1), date(2021, 2, 28)) == 20
    assert birth_date_from_year_month(1950, 7) == date(1950, 7, 1)
    born = birth_date_from_age(81, AS_OF)
    assert age_on(born, AS_OF) == 81
    assert age_on(born, date(2024, 12, 29)) == 80  # the 81st birthday is 182 days before as_of
    assert age_on(born, date(2024, 12, 30)) == 81
