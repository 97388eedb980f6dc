"""Persona selection for the co-design workshop: tiers strictest first, predictions first, nearest the target,
ties by patient id, no patient used twice, deterministic whatever the input order."""

from __future__ import annotations

import random
from dataclasses import replace

from data_access.queries.workshop import (
    PERSONAS,
    Candidate,
    Criteria,
    Persona,
    PersonaRule,
    choose_personas,
    step_persona,
)

BASE = Candidate(
    patient_id="X",
    age=60,
    sex="F",
    medicines=3,
    conditions=frozenset(),
    efi=0.05,
    efi_category="fit",
    mental_and_physical=False,
    flags_high=0,
    flags_total=0,
    risk_change_6m=0.0,
    has_prediction=True,
)


def person(patient_id: str, **changes: object) -> Candidate:
    return replace(BASE, patient_id=patient_id, **changes)


FRAIL_84_12 = person("frail-exact", age=84, medicines=12, efi_category="severe", efi=0.4)
FRAIL_82_11 = person("frail-near", age=82, medicines=11, efi_category="moderate", efi=0.3)
MIDLIFE = person(
    "midlife",
    age=58,
    medicines=7,
    conditions=frozenset({"depression", "type2_diabetes", "chronic_pain", "hypertension"}),
    mental_and_physical=True,
)
FLAGGED = person("flagged", age=76, medicines=6, flags_high=1, flags_total=2, risk_change_6m=0.08)


def by_key(personas: list[Persona]) -> dict[str, Persona]:
    return {p.key: p for p in personas}


def test_each_persona_finds_its_archetype_in_the_first_tier() -> None:
    crowd = [person(f"crowd-{i:02d}", age=30 + i, medicines=i % 5) for i in range(20)]
    chosen = by_key(choose_personas([*crowd, FRAIL_82_11, FRAIL_84_12, MIDLIFE, FLAGGED]))
    assert chosen["frailty-many-medicines"].patient_id == "frail-exact"
    assert chosen["mental-physical-pain"].patient_id == "midlife"
    assert chosen["new-flag-rising-risk"].patient_id == "flagged"
    assert {p.tier for p in chosen.values()} == {1}
    assert [p.number for p in choose_personas([FRAIL_84_12, MIDLIFE, FLAGGED])] == [1, 2, 3]


def test_the_choice_does_not_depend_on_input_order() -> None:
    pool = [FRAIL_82_11, FRAIL_84_12, MIDLIFE, FLAGGED] + [
        person(f"p{i:03d}", age=40 + i % 50, medicines=i % 14, efi_category="moderate") for i in range(80)
    ]
    expected = choose_personas(pool)
    for seed in range(5):
        shuffled = pool[:]
        random.Random(seed).shuffle(shuffled)
        assert choose_personas(shuffled) == expected


def test_nearest_to_the_target_wins_and_ties_go_to_the_smallest_id() -> None:
    rule = PersonaRule("r", "t", "s", target_age=84, target_medicines=12, tiers=(Criteria(min_age=80),))
    far = person("a-far", age=89, medicines=16)
    near_b = person("b-near", age=83, medicines=12)
    near_c = person("c-near", age=85, medicines=12)
    assert choose_personas([far, near_c, near_b], (rule,))[0].patient_id == "b-near"


def test_patients_with_model_predictions_come_first() -> None:
    rule = PersonaRule("r", "t", "s", target_age=84, tiers=(Criteria(min_age=80),))
    exact_without = person("a", age=84, has_prediction=False)
    further_with = person("b", age=88, has_prediction=True)
    assert choose_personas([exact_without, further_with], (rule,))[0].patient_id == "b"


def test_later_tiers_relax_the_rule_when_nobody_meets_the_first() -> None:
    # No one is frail by eFI: the third tier (age ≥ 75 and ≥ 8 medicines, any frailty) is used.
    older = person("older", age=79, medicines=9, efi_category="fit")
    chosen = by_key(choose_personas([older, MIDLIFE]))
    assert chosen["frailty-many-medicines"].patient_id == "older"
    assert chosen["frailty-many-medicines"].tier == 3


def test_a_patient_is_never_used_for_two_personas() -> None:
    # One person fits both the frailty and the flag persona: the flag persona gets the next best.
    both = person(
        "both", age=80, medicines=12, efi_category="severe", flags_high=2, flags_total=2, risk_change_6m=0.1
    )
    second = person("second", age=70, medicines=4, flags_high=1, flags_total=1, risk_change_6m=0.06)
    chosen = by_key(choose_personas([both, second]))
    assert chosen["frailty-many-medicines"].patient_id == "both"
    assert chosen["new-flag-rising-risk"].patient_id == "second"
    assert len({p.patient_id for p in chosen.values()}) == len(chosen)


def test_a_persona_nobody_meets_is_left_out() -> None:
    young = [person(f"y{i}", age=25 + i, medicines=1) for i in range(5)]
    assert choose_personas(young) == []
    flag_only = replace(FLAGGED, medicines=3)
    assert [p.key for p in choose_personas([flag_only])] == ["new-flag-rising-risk"]


def test_a_strict_match_is_not_used_up_by_another_personas_relaxed_tier() -> None:
    # FLAGGED also meets the frailty persona's last tier (70 or over, 5 or more medicines), but it is the flag
    # persona's first-tier match, which is tried first.
    chosen = by_key(choose_personas([FLAGGED]))
    assert list(chosen) == ["new-flag-rising-risk"]
    older = person("older", age=72, medicines=5)
    chosen = by_key(choose_personas([FLAGGED, older]))
    assert chosen["new-flag-rising-risk"].patient_id == "flagged"
    assert chosen["frailty-many-medicines"].patient_id == "older"
    assert chosen["frailty-many-medicines"].tier == 4


def test_diabetes_of_any_type_and_the_condition_groups() -> None:
    criteria = PERSONAS[1].tiers[0]
    with_type1 = person("t1", age=55, conditions=frozenset({"depression", "type1_diabetes", "chronic_pain"}))
    missing_pain = person("np", age=55, conditions=frozenset({"depression", "type2_diabetes"}))
    assert criteria.matches(with_type1)
    assert not criteria.matches(missing_pain)
    assert PERSONAS[1].tiers[1].matches(missing_pain)


def test_the_summary_shows_no_identifier() -> None:
    persona = choose_personas([FRAIL_84_12])[0]
    summary = persona.summary()
    assert summary == "Woman aged 84 · severe frailty (eFI) · 12 medicines"
    assert "frail-exact" not in summary


def test_stepping_through_personas_wraps_round() -> None:
    keys = ["a", "b", "c"]
    assert step_persona(keys, "a", 1) == "b"
    assert step_persona(keys, "c", 1) == "a"
    assert step_persona(keys, "a", -1) == "c"
    assert step_persona(keys, "unknown", 1) == "a"
    assert step_persona([], "a", 1) is None
