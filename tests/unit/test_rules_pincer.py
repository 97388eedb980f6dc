"""Each PINCER indicator: a positive case, near-miss negatives and timing (OpenSAFELY definitions)."""

from __future__ import annotations

import pytest
from engine_cases import active_now, patient, periods

NSAID_NOW = ("ibuprofen", "2025-05-01", None)


@pytest.mark.parametrize(
    ("rule_id", "positive", "negatives"),
    [
        (
            "PINCER-GI_P3A",
            patient(age=70, drugs=(NSAID_NOW,)),
            [
                patient(age=64, drugs=(NSAID_NOW,)),
                patient(age=70, drugs=(NSAID_NOW, ("omeprazole", "2025-01-01", None))),
                patient(age=70, drugs=(NSAID_NOW, ("famotidine", "2025-01-01", None))),
                patient(age=70, drugs=(NSAID_NOW, ("misoprostol", "2025-01-01", None))),
                patient(age=70, drugs=(("aspirin", "2025-01-01", None),)),
            ],
        ),
        (
            "PINCER-GI_P3B",
            patient(age=50, drugs=(NSAID_NOW,), conditions=(("peptic_ulcer", "2015-01-01", "2015-06-01"),)),
            [
                patient(age=50, drugs=(NSAID_NOW,)),
                patient(
                    age=50,
                    drugs=(NSAID_NOW, ("lansoprazole", "2025-01-01", None)),
                    conditions=(("peptic_ulcer", "2015-01-01"),),
                ),
                patient(age=50, drugs=(NSAID_NOW,), conditions=(("gord", "2015-01-01"),)),
            ],
        ),
        (
            "PINCER-GI_P3C",
            patient(
                age=50, drugs=(("clopidogrel", "2025-01-01", None),), events=(("gi_bleed", "2020-02-02"),)
            ),
            [
                patient(age=50, drugs=(("clopidogrel", "2025-01-01", None),)),
                patient(
                    age=50,
                    drugs=(("clopidogrel", "2025-01-01", None), ("omeprazole", "2024-01-01", None)),
                    conditions=(("gi_bleed_history", "2020-02-02"),),
                ),
                patient(
                    age=50,
                    drugs=(("warfarin", "2025-01-01", None),),
                    conditions=(("peptic_ulcer", "2020-02-02"),),
                ),
            ],
        ),
        (
            "PINCER-GI_P3D",
            patient(drugs=(("apixaban", "2024-01-01", None), NSAID_NOW)),
            [
                patient(drugs=(("apixaban", "2024-01-01", "2025-04-30"), NSAID_NOW)),
                patient(drugs=(("enoxaparin", "2024-01-01", None), NSAID_NOW)),
                patient(drugs=(("apixaban", "2024-01-01", None), ("paracetamol", "2025-01-01", None))),
            ],
        ),
        (
            "PINCER-GI_P3E",
            patient(drugs=(("warfarin", "2024-01-01", None), ("aspirin", "2025-01-01", None))),
            [
                patient(
                    drugs=(
                        ("warfarin", "2024-01-01", None),
                        ("aspirin", "2025-01-01", None),
                        ("omeprazole", "2024-01-01", None),
                    )
                ),
                patient(drugs=(("warfarin", "2024-01-01", None),)),
            ],
        ),
        (
            "PINCER-GI_P3F",
            patient(drugs=(("aspirin", "2024-01-01", None), ("clopidogrel", "2025-01-01", None))),
            [
                patient(
                    drugs=(
                        ("aspirin", "2024-01-01", None),
                        ("clopidogrel", "2025-01-01", None),
                        ("pantoprazole", "2024-01-01", None),
                    )
                ),
                patient(drugs=(("clopidogrel", "2024-01-01", None), ("ticagrelor", "2025-01-01", None))),
                patient(drugs=(("aspirin", "2024-01-01", None),)),
            ],
        ),
        (
            "PINCER-AS_P3G",
            patient(conditions=(("asthma", "2000-01-01"),), drugs=(("propranolol", "2025-01-01", None),)),
            [
                patient(conditions=(("asthma", "2000-01-01"),), drugs=(("bisoprolol", "2025-01-01", None),)),
                patient(
                    conditions=(("asthma", "2000-01-01", "2020-01-01"),),
                    drugs=(("propranolol", "2025-01-01", None),),
                ),
                patient(conditions=(("copd", "2000-01-01"),), drugs=(("propranolol", "2025-01-01", None),)),
            ],
        ),
        (
            "PINCER-HF_P3I",
            patient(age=50, conditions=(("heart_failure", "2019-03-01"),), drugs=(NSAID_NOW,)),
            [
                patient(
                    age=50,
                    conditions=(("heart_failure", "2019-03-01"),),
                    drugs=(("paracetamol", "2025-01-01", None),),
                ),
                patient(
                    age=50,
                    conditions=(("heart_failure", "2025-06-01"),),
                    drugs=(("naproxen", "2025-01-01", "2025-05-31"),),
                ),
            ],
        ),
        (
            "PINCER-KI_P3K",
            patient(age=50, drugs=(NSAID_NOW,), labs=(("egfr", "2025-04-02", 38.0),)),
            [
                patient(age=50, drugs=(NSAID_NOW,), labs=(("egfr", "2025-04-02", 45.0),)),
                patient(age=50, drugs=(NSAID_NOW,), labs=(("egfr", "2023-04-02", 30.0),)),
                patient(
                    age=50,
                    drugs=(NSAID_NOW,),
                    labs=(("egfr", "2025-04-02", 30.0), ("egfr", "2025-05-15", 62.0)),
                ),
                patient(age=50, drugs=(NSAID_NOW,), labs=(("creatinine", "2025-04-02", 300.0),)),
            ],
        ),
        (
            "PINCER-MO_P13",
            patient(age=80, drugs=(("ramipril", "2020-01-01", None),), labs=(("egfr", "2024-01-01", 70.0),)),
            [
                patient(
                    age=80, drugs=(("ramipril", "2020-01-01", None),), labs=(("egfr", "2025-01-01", 70.0),)
                ),
                patient(age=74, drugs=(("ramipril", "2020-01-01", None),)),
                patient(age=80, drugs=(("ramipril", "2025-01-01", None),)),
                patient(
                    age=80,
                    drugs=(("ramipril", "2020-01-01", None),),
                    labs=(("egfr", "2025-01-01", 70.0), ("potassium", "2025-01-01", 4.5)),
                ),
                patient(age=80, drugs=(("amlodipine", "2020-01-01", None),)),
            ],
        ),
        (
            "PINCER-MO_P15_FBC",
            patient(drugs=(("methotrexate", "2024-01-01", None),), labs=(("alt", "2025-06-01", 20.0),)),
            [
                patient(
                    drugs=(("methotrexate", "2024-01-01", None),),
                    labs=(("haemoglobin", "2025-05-01", 130.0),),
                ),
                patient(drugs=(("methotrexate", "2025-05-01", None),)),
            ],
        ),
        (
            "PINCER-MO_P15_LFT",
            patient(
                drugs=(("methotrexate", "2024-01-01", None),), labs=(("haemoglobin", "2025-06-01", 130.0),)
            ),
            [
                patient(drugs=(("methotrexate", "2024-01-01", None),), labs=(("alt", "2025-05-01", 25.0),)),
                patient(drugs=(("methotrexate", "2024-01-01", "2025-01-31"),)),
            ],
        ),
        (
            "PINCER-MO_P17",
            patient(drugs=(("lithium", "2024-01-01", None),), labs=(("lithium", "2025-01-05", 0.7),)),
            [
                patient(drugs=(("lithium", "2024-01-01", None),), labs=(("lithium", "2025-05-05", 0.7),)),
                patient(drugs=(("lithium", "2025-05-01", None),)),
            ],
        ),
        (
            "PINCER-MO_P18",
            patient(drugs=(("amiodarone", "2024-01-01", None),), labs=(("tsh", "2024-10-01", 2.0),)),
            [
                patient(drugs=(("amiodarone", "2024-01-01", None),), labs=(("tsh", "2025-02-01", 2.0),)),
                patient(drugs=(("amiodarone", "2025-03-01", None),)),
            ],
        ),
    ],
)
def test_pincer_indicator(rule_id, positive, negatives):
    assert active_now(positive, rule_id)
    for negative in negatives:
        assert not active_now(negative, rule_id), negative


def test_gi_p3b_history_counts_even_when_the_ulcer_is_resolved():
    record = patient(age=40, drugs=(NSAID_NOW,), conditions=(("peptic_ulcer", "2010-01-01", "2010-06-01"),))
    assert periods(record, "PINCER-GI_P3B") == [("2025-05-01", None, ("ibuprofen",))]


def test_gi_p3b_does_not_flag_before_the_history_exists():
    record = patient(
        age=40, drugs=(("ibuprofen", "2025-01-01", None),), conditions=(("peptic_ulcer", "2025-03-01"),)
    )
    assert periods(record, "PINCER-GI_P3B") == [("2025-03-01", None, ("ibuprofen",))]


def test_mo_p13_starts_when_the_drug_is_long_term_and_the_last_test_has_expired():
    record = patient(
        age=85, drugs=(("furosemide", "2022-01-01", None),), labs=(("sodium", "2023-06-01", 140.0),)
    )
    # Long-term (456 days) from 2023-04-01, untested until 2023-06-01, then again 456 days after that test.
    assert periods(record, "PINCER-MO_P13") == [
        ("2023-04-01", "2023-05-31", ("furosemide",)),
        ("2024-08-31", None, ("furosemide",)),
    ]


def test_mo_p18_amiodarone_started_recently_is_not_flagged_until_six_months():
    record = patient(drugs=(("amiodarone", "2025-01-01", None),))
    assert periods(record, "PINCER-MO_P18") == []  # day 182 of treatment is 2025-07-01, after as_of
