"""Worked examples: the smallest patient record that satisfies a rule, built from the rule's own ``when`` block.

Used by the generic rule test (every rule of every file must fire on its own minimal example, and stop firing
when any one required drug is taken away, which catches malformed rules such as a requirement whose class is
also excluded), and usable to show a reviewer what a rule means in terms of data.

The example takes the first alternative of each ``any_of``, every block of ``all_of``, picks class members that
no absence criterion of the rule excludes, dates every positive item shortly before ``as_of`` (far enough back
for any ``duration_min_days``) and adds nothing else.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, timedelta

from clinical.knowledge import Knowledge
from clinical.record import (
    ConditionEpisode,
    Event,
    LabResult,
    PatientRecord,
    Prescription,
    SocialCare,
    add_years,
)
from clinical.rules import Rule, When

DEFAULT_AS_OF = date(2025, 6, 30)
_EFI_CATEGORY_COUNTS = {"fit": 0, "mild": 6, "moderate": 10, "severe": 14}


@dataclass
class RuleExample:
    """A minimal positive record for a rule, and which prescriptions each drug requirement uses."""

    rule: Rule
    record: PatientRecord
    as_of: date
    required_prescriptions: list[int] = field(default_factory=list)  # indexes into record.prescriptions

    def without_prescription(self, index: int) -> PatientRecord:
        """The same record without one prescription."""
        kept = tuple(rx for i, rx in enumerate(self.record.prescriptions) if i != index)
        return PatientRecord(
            patient_id=self.record.patient_id,
            birth_date=self.record.birth_date,
            sex=self.record.sex,
            conditions=self.record.conditions,
            prescriptions=kept,
            labs=self.record.labs,
            events=self.record.events,
            social_care=self.record.social_care,
        )


class _Plan:
    def __init__(self, rule: Rule, knowledge: Knowledge, as_of: date) -> None:
        self.rule = rule
        self.kb = knowledge
        self.as_of = as_of
        self.age_min = 0
        self.age_max = 120
        self.sex: str | None = None
        self.prescriptions: list[Prescription] = []
        self.required: list[int] = []
        self.used_drugs: set[str] = set()
        self.conditions: list[ConditionEpisode] = []
        self.labs: list[LabResult] = []
        self.events: list[Event] = []
        self.social: list[SocialCare] = []
        blocks = list(_chosen_blocks(rule.when))
        self.forbidden_drugs: set[str] = set()
        self.forbidden_conditions: set[str] = set()
        self.requirement_drugs: set[str] = set()
        for block in blocks:
            for ref in block.no_drugs:
                self.forbidden_drugs |= knowledge.expand_ref(ref)
            self.forbidden_conditions |= knowledge.expand_conditions(
                block.no_conditions + block.no_conditions_ever
            )
            for requirement in block.drugs:
                for ref in requirement.refs:
                    self.requirement_drugs |= knowledge.expand_ref(ref)
        self.blocks = blocks

    def days_before(self, days: int) -> date:
        return self.as_of - timedelta(days=days)

    def add_drug(self, drug: str, days_back: int, required: bool) -> None:
        self.used_drugs.add(drug)
        if required:
            self.required.append(len(self.prescriptions))
        self.prescriptions.append(
            Prescription(ingredients=(drug,), start=self.days_before(days_back), name=drug)
        )

    def pick_condition(self, refs: tuple[str, ...]) -> str:
        for key in sorted(self.kb.expand_conditions(refs)):
            if key not in self.forbidden_conditions:
                return key
        raise ValueError(f"{self.rule.id}: no condition in {refs} escapes the rule's own exclusions")


def _chosen_blocks(when: When):
    yield when
    for block in when.all_of:
        yield from _chosen_blocks(block)
    if when.any_of:
        yield from _chosen_blocks(when.any_of[0])


def minimal_example(rule: Rule, knowledge: Knowledge, as_of: date = DEFAULT_AS_OF) -> RuleExample:
    """The smallest record on which ``rule`` holds on ``as_of`` (see the module docstring)."""
    plan = _Plan(rule, knowledge, as_of)
    lab_bounds: dict[str, list[float]] = {}
    lab_window: dict[str, int] = {}
    for block in plan.blocks:
        if block.age_min is not None:
            plan.age_min = max(plan.age_min, block.age_min)
        if block.age_max is not None:
            plan.age_max = min(plan.age_max, block.age_max)
        if block.sex is not None:
            plan.sex = block.sex
        _add_requirements(plan, block)
        _add_cascade(plan, block)
        for refs in (block.conditions, block.conditions_ever):
            if refs:
                key = plan.pick_condition(refs)
                onset = plan.days_before(400)
                plan.conditions.append(ConditionEpisode(key=key, onset=onset, resolved=None))
        for test in block.lab:
            bounds = lab_bounds.setdefault(test.name, [-math.inf, math.inf])
            if test.op in ("<", "<="):
                bounds[1] = min(bounds[1], test.value - (1e-3 if test.op == "<" else 0.0))
            else:
                bounds[0] = max(bounds[0], test.value + (1e-3 if test.op == ">" else 0.0))
            lab_window[test.name] = min(lab_window.get(test.name, test.within_days), test.within_days)
        for item in block.events:
            back = 5 if item.within_days is None else min(5, item.within_days)
            for _ in range(item.min_count):
                plan.events.append(Event(type=item.types[0], date=plan.days_before(back)))
        if block.social_care:
            plan.social.append(SocialCare(kind=block.social_care[0], start=plan.days_before(200)))
        if block.acb_min is not None:
            _add_acb(plan, block.acb_min)
        if block.medicines_min is not None:
            _add_fillers(plan, block.medicines_min - len(plan.used_drugs))
        needed_deficits = 0
        if block.efi_min is not None:
            needed_deficits = math.ceil(block.efi_min * knowledge.efi_denominator - 1e-9)
        if block.efi_category:
            needed_deficits = max(needed_deficits, _EFI_CATEGORY_COUNTS[block.efi_category[0]])
        if needed_deficits:
            _add_deficits(plan, needed_deficits)
    for name, (low, high) in lab_bounds.items():
        value = _value_between(low, high)
        plan.labs.append(LabResult(name=name, date=plan.days_before(min(10, lab_window[name])), value=value))
    age = max(plan.age_min, min(70, plan.age_max))
    # Born a month and a day before the birthday that makes them `age` on as_of: the age holds for a month.
    birth = add_years(as_of - timedelta(days=31), -age)
    record = PatientRecord(
        patient_id=f"example-{rule.id}",
        birth_date=birth,
        sex=plan.sex or "F",
        conditions=tuple(plan.conditions),
        prescriptions=tuple(plan.prescriptions),
        labs=tuple(plan.labs),
        events=tuple(plan.events),
        social_care=tuple(plan.social),
    )
    return RuleExample(rule=rule, record=record, as_of=as_of, required_prescriptions=plan.required)


def _add_cascade(plan: _Plan, block: When) -> None:
    """Drug A started 60 days before ``as_of`` and drug B started within the rule's window after it, both still
    taken (a prescribing cascade: B may treat a side effect of A)."""
    if block.cascade is None:
        return
    gap = min(30, block.cascade.within_days)
    for refs, days_back in ((block.cascade.index, 60), (block.cascade.marker, 60 - gap)):
        candidates: set[str] = set()
        for ref in refs:
            candidates |= plan.kb.expand_ref(ref)
        usable = sorted(candidates - plan.forbidden_drugs - plan.used_drugs)
        if not usable:
            raise ValueError(f"{plan.rule.id}: cascade drugs {refs} are all excluded by the rule itself")
        plan.add_drug(usable[0], days_back, required=True)


def _add_requirements(plan: _Plan, block: When) -> None:
    for requirement in block.drugs:
        candidates: set[str] = set()
        for ref in requirement.refs:
            candidates |= plan.kb.expand_ref(ref)
        for ref in requirement.exclude:
            candidates -= plan.kb.expand_ref(ref)
        usable = sorted(candidates - plan.forbidden_drugs - plan.used_drugs)
        if len(usable) < requirement.min_count:
            raise ValueError(
                f"{plan.rule.id}: requirement {requirement.refs} cannot be met by distinct drugs"
            )
        days_back = (requirement.duration_min_days or 0) + 30
        for drug in usable[: requirement.min_count]:
            plan.add_drug(drug, days_back, required=True)


def _add_acb(plan: _Plan, acb_min: int) -> None:
    total = sum(plan.kb.acb.get(d, 0) for d in plan.used_drugs)
    ranked = sorted(plan.kb.acb.items(), key=lambda item: (-item[1], item[0]))
    for drug, score in ranked:
        if total >= acb_min:
            break
        if drug in plan.used_drugs or drug in plan.forbidden_drugs:
            continue
        plan.add_drug(drug, 60, required=False)
        total += score


def _add_fillers(plan: _Plan, count: int) -> None:
    for drug in sorted(plan.kb.drug_keys):
        if count <= 0:
            return
        if drug in plan.used_drugs or drug in plan.forbidden_drugs or drug in plan.requirement_drugs:
            continue
        if plan.kb.acb.get(drug):
            continue
        plan.add_drug(drug, 60, required=False)
        count -= 1


def _add_deficits(plan: _Plan, count: int) -> None:
    present = {c.key for c in plan.conditions}
    for deficit in plan.kb.efi_deficits:
        if count <= 0:
            return
        keys = sorted(deficit.condition_keys - plan.forbidden_conditions)
        if not keys:
            continue
        if not present.isdisjoint(deficit.condition_keys):
            count -= 1
            continue
        plan.conditions.append(ConditionEpisode(key=keys[0], onset=plan.days_before(500)))
        present.add(keys[0])
        count -= 1


def _value_between(low: float, high: float) -> float:
    if math.isinf(low) and math.isinf(high):
        return 50.0
    if math.isinf(low):
        return round(high - 1, 3) if high - 1 >= 0 else high
    if math.isinf(high):
        return round(low + 1, 3)
    return (low + high) / 2
