"""Prescribing-cascade rules (clinical/rules/cascades.yaml) and the engine's ``cascade:`` criterion.

Each case is a small patient built with ``engine_cases.patient`` (age 70 on 2025-06-30 unless said); the expected
flag periods are written out as (start, end, drugs), where ``drugs`` is ("A", "B"): drug A first, then drug B.
"""

from __future__ import annotations

from datetime import date
from functools import lru_cache

import polars as pl
import pytest
from engine_cases import AS_OF, patient

from clinical.engine import SafetyEngine
from clinical.knowledge import load_knowledge
from clinical.patient_json import flags_report
from clinical.population import evaluate_population
from clinical.rules import RULES_DIR, RuleBook, RuleError, parse_rule_document, parse_rule_file


@lru_cache(maxsize=1)
def cascade_engine() -> SafetyEngine:
    source, rules, omitted = parse_rule_file(RULES_DIR / "cascades.yaml")
    return SafetyEngine(RuleBook(tuple(rules), (source,), tuple(omitted)), load_knowledge())


def periods(record, rule_id: str, as_of: date = AS_OF) -> list[tuple[str, str | None, tuple[str, ...]]]:
    return [
        (f.start.isoformat(), None if f.end is None else f.end.isoformat(), f.drugs)
        for f in cascade_engine().evaluate(record, as_of)
        if f.rule_id == rule_id
    ]


# -- the published cascades: positive and negative -----------------------------------------------------------


def test_loop_diuretic_started_after_amlodipine_flags_with_a_then_b():
    record = patient(drugs=(("amlodipine", "2025-01-01", None), ("furosemide", "2025-02-15", None)))
    assert periods(record, "CASCADE-TC-5") == [("2025-02-15", None, ("amlodipine", "furosemide"))]


def test_no_flag_when_the_diuretic_came_first():
    record = patient(drugs=(("furosemide", "2024-11-01", None), ("amlodipine", "2025-01-01", None)))
    assert periods(record, "CASCADE-TC-5") == []


def test_other_indication_recorded_means_no_cascade():
    record = patient(
        drugs=(("amlodipine", "2025-01-01", None), ("furosemide", "2025-02-15", None)),
        conditions=(("heart_failure", "2024-06-01"),),
    )
    assert periods(record, "CASCADE-TC-5") == []


def test_other_indication_recorded_later_ends_the_flag_the_day_before():
    record = patient(
        drugs=(("amlodipine", "2025-01-01", None), ("furosemide", "2025-02-15", None)),
        conditions=(("heart_failure", "2025-04-01"),),
    )
    assert periods(record, "CASCADE-TC-5") == [("2025-02-15", "2025-03-31", ("amlodipine", "furosemide"))]


def test_under_65_is_not_flagged():
    record = patient(age=60, drugs=(("amlodipine", "2025-01-01", None), ("furosemide", "2025-02-15", None)))
    assert periods(record, "CASCADE-TC-5") == []


@pytest.mark.parametrize(
    ("rule_id", "drug_a", "drug_b"),
    [
        ("CASCADE-TC-1", "doxazosin", "betahistine"),
        ("CASCADE-TC-2", "haloperidol", "procyclidine"),
        ("CASCADE-TC-3", "lorazepam", "donepezil"),
        ("CASCADE-TC-4", "diazepam", "quetiapine"),
        ("CASCADE-TC-6", "donepezil", "solifenacin"),
        ("CASCADE-TC-7", "bendroflumethiazide", "mirabegron"),
        ("CASCADE-TC-8", "naproxen", "ramipril"),
        ("CASCADE-TC-9", "sertraline", "zopiclone"),
        ("CASCADE-LIT-THIAZIDE-GOUT", "indapamide", "allopurinol"),
        ("CASCADE-LIT-ACEI-COUGH", "lisinopril", "pholcodine"),
        ("CASCADE-LIT-GABAPENTINOID-DIURETIC", "pregabalin", "furosemide"),
        ("CASCADE-LIT-METOCLOPRAMIDE-LEVODOPA", "metoclopramide", "levodopa"),
    ],
)
def test_each_cascade_flags_b_after_a_and_not_a_after_b(rule_id, drug_a, drug_b):
    forward = patient(drugs=((drug_a, "2025-01-01", None), (drug_b, "2025-03-01", None)))
    assert periods(forward, rule_id) == [("2025-03-01", None, (drug_a, drug_b))]
    backward = patient(drugs=((drug_b, "2025-01-01", None), (drug_a, "2025-03-01", None)))
    assert periods(backward, rule_id) == []


def test_antipsychotic_then_levodopa_with_parkinsons_is_not_a_cascade():
    record = patient(
        drugs=(("haloperidol", "2025-01-01", None), ("levodopa", "2025-03-01", None)),
        conditions=(("parkinsons", "2025-02-20"),),
    )
    assert periods(record, "CASCADE-TC-2") == []


# -- timing ---------------------------------------------------------------------------------------------------


def test_window_is_inclusive_at_n_days_and_closed_after():
    # TC-5 window is 90 days: 2025-01-01 + 90 days = 2025-04-01.
    at_limit = patient(drugs=(("amlodipine", "2025-01-01", None), ("furosemide", "2025-04-01", None)))
    assert periods(at_limit, "CASCADE-TC-5") == [("2025-04-01", None, ("amlodipine", "furosemide"))]
    too_late = patient(drugs=(("amlodipine", "2025-01-01", None), ("furosemide", "2025-04-02", None)))
    assert periods(too_late, "CASCADE-TC-5") == []


def test_same_day_start_carries_no_order():
    record = patient(drugs=(("amlodipine", "2025-01-01", None), ("furosemide", "2025-01-01", None)))
    assert periods(record, "CASCADE-TC-5") == []


def test_b_started_the_day_after_a_stopped_is_not_flagged():
    record = patient(drugs=(("amlodipine", "2025-01-01", "2025-02-14"), ("furosemide", "2025-02-15", None)))
    assert periods(record, "CASCADE-TC-5") == []


def test_flag_ends_when_a_stops_and_is_not_active_now():
    record = patient(drugs=(("amlodipine", "2025-01-01", "2025-05-10"), ("furosemide", "2025-02-15", None)))
    assert periods(record, "CASCADE-TC-5") == [("2025-02-15", "2025-05-10", ("amlodipine", "furosemide"))]


def test_flag_ends_when_b_stops():
    record = patient(drugs=(("amlodipine", "2025-01-01", None), ("furosemide", "2025-02-15", "2025-03-01")))
    assert periods(record, "CASCADE-TC-5") == [("2025-02-15", "2025-03-01", ("amlodipine", "furosemide"))]


def test_switch_within_class_a_keeps_a_start_and_names_the_drug_taken():
    # Amlodipine switched to felodipine without a gap: the CCB started 2025-01-01, so furosemide 80 days later
    # is within 90 days; drug A is the CCB taken on the day B started (felodipine).
    record = patient(
        drugs=(
            ("amlodipine", "2025-01-01", "2025-02-28"),
            ("felodipine", "2025-03-01", None),
            ("furosemide", "2025-03-22", None),
        )
    )
    assert periods(record, "CASCADE-TC-5") == [("2025-03-22", None, ("felodipine", "furosemide"))]


def test_switch_within_class_b_is_not_a_new_start():
    # Bumetanide for oedema predates the CCB; its switch to furosemide after the CCB is not a new marker start.
    record = patient(
        drugs=(
            ("bumetanide", "2024-10-01", "2025-01-31"),
            ("amlodipine", "2025-01-10", None),
            ("furosemide", "2025-02-01", None),
        )
    )
    assert periods(record, "CASCADE-TC-5") == []


def test_a_restarted_after_a_gap_counts_from_the_restart():
    record = patient(
        drugs=(
            ("amlodipine", "2023-01-01", "2023-06-30"),
            ("amlodipine", "2025-03-01", None),
            ("furosemide", "2025-04-15", None),
        )
    )
    assert periods(record, "CASCADE-TC-5") == [("2025-04-15", None, ("amlodipine", "furosemide"))]


def test_past_cascade_keeps_its_period():
    record = patient(
        drugs=(("sertraline", "2023-01-01", "2023-12-31"), ("zopiclone", "2023-02-01", "2023-03-01"))
    )
    assert periods(record, "CASCADE-TC-9") == [("2023-02-01", "2023-03-01", ("sertraline", "zopiclone"))]


def test_two_cascade_episodes_give_two_periods():
    record = patient(
        drugs=(
            ("sertraline", "2023-01-01", None),
            ("zopiclone", "2023-02-01", "2023-03-01"),
            ("temazepam", "2023-06-01", "2023-06-30"),
        )
    )
    assert periods(record, "CASCADE-TC-9") == [
        ("2023-02-01", "2023-03-01", ("sertraline", "zopiclone")),
        ("2023-06-01", "2023-06-30", ("sertraline", "temazepam")),
    ]


def test_drug_a_is_the_most_recently_started_index_drug():
    record = patient(
        drugs=(
            ("furosemide", "2024-01-01", None),  # a diuretic long before (TC-7 index)
            ("bendroflumethiazide", "2025-03-01", None),
            ("oxybutynin", "2025-03-20", None),
        )
    )
    # The diuretic (class-level) run began 2024-01-01, more than 365 days before oxybutynin: no cascade.
    assert periods(record, "CASCADE-TC-7") == []
    record = patient(
        drugs=(
            ("furosemide", "2025-01-01", None),
            ("bendroflumethiazide", "2025-03-01", None),
            ("oxybutynin", "2025-03-20", None),
        )
    )
    assert periods(record, "CASCADE-TC-7") == [("2025-03-20", None, ("bendroflumethiazide", "oxybutynin"))]


# -- the Patient JSON front end and the rule format -----------------------------------------------------------


def test_patient_json_reports_the_cascade_with_its_citation():
    report = flags_report(
        {
            "as_of": "2025-06-30",
            "age": 78,
            "sex": "F",
            "medications": [
                {"drug": "amlodipine", "start": "2025-01-01"},
                {"drug": "furosemide", "start": "2025-02-15"},
            ],
        },
        engine=cascade_engine(),
    )
    flag = next(f for f in report["flags"] if f["rule_id"] == "CASCADE-TC-5")
    assert flag["drugs"] == ["amlodipine", "furosemide"]
    assert flag["start"] == "2025-02-15" and flag["end"] is None
    assert "Savage" in flag["evidence"] and "ThinkCascades" in flag["evidence"]
    assert "loop diuretic treats ankle oedema caused by the calcium-channel blocker" in flag["recommendation"]


def _cascade_rule(**cascade) -> dict:
    return {
        "source": {"key": "x", "name": "x", "citation": "c"},
        "rules": [
            {
                "id": "CASCADE-X",
                "family": "CASCADE",
                "source": "s",
                "title": "t",
                "severity": "moderate",
                "rationale": "r",
                "recommendation": "r",
                "evidence": "e",
                "when": {"cascade": cascade},
            }
        ],
    }


@pytest.mark.parametrize(
    ("cascade", "message"),
    [
        ({"index": ["class:nsaid"], "marker": ["class:arb"]}, "within_days"),
        ({"index": ["class:nsaid"], "marker": ["class:nsaid"], "within_days": 30}, "same drugs"),
        ({"index": ["nsaid"], "marker": ["class:arb"], "within_days": 30}, "ref"),
        ({"index": ["class:nsaid"], "marker": ["class:arb"], "within_days": 0}, "whole number"),
        ({"index": ["class:nsaid"], "marker": ["class:arb"], "within_days": 30, "lag": 1}, "unknown key"),
    ],
)
def test_malformed_cascades_are_rejected(cascade, message):
    with pytest.raises(RuleError, match=message):
        parse_rule_document(_cascade_rule(**cascade), "bad.yaml")


def test_cascade_inside_any_of_is_rejected():
    document = _cascade_rule(index=["class:nsaid"], marker=["class:arb"], within_days=30)
    document["rules"][0]["when"] = {
        "any_of": [
            {"cascade": {"index": ["class:nsaid"], "marker": ["class:arb"], "within_days": 30}},
            {"drugs": ["class:nsaid"]},
        ]
    }
    with pytest.raises(RuleError, match="top-level"):
        parse_rule_document(document, "bad.yaml")


def test_population_path_writes_drugs_in_the_order_a_then_b():
    frames = {
        "patient": pl.DataFrame({"id": ["p1"], "birth_year": [1945], "birth_month": [3], "sex": ["F"]}),
        "prescription": pl.DataFrame(
            {
                "patient_id": ["p1", "p1"],
                "ingredients": ["furosemide", "amlodipine"],  # B listed first: the order must come from time
                "drug_key": ["furosemide", "amlodipine"],
                "start": [date(2025, 2, 15), date(2025, 1, 1)],
                "stop": [None, None],
            },
            schema_overrides={"stop": pl.Date},
        ),
        "condition": pl.DataFrame(
            schema={"patient_id": pl.Utf8, "condition_key": pl.Utf8, "onset": pl.Date, "resolved": pl.Date}
        ),
    }
    flags, _ = evaluate_population(frames, AS_OF, engine=cascade_engine(), workers=1)
    assert flags.filter(pl.col("rule_id") == "CASCADE-TC-5").rows() == [
        ("p1", "CASCADE-TC-5", date(2025, 2, 15), None, "amlodipine;furosemide", "moderate")
    ]
