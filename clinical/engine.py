"""The temporal safety engine: when, over a patient's history, did each rule hold?

Every criterion of a rule's ``when`` block (see ``clinical/rules/FORMAT.md``) is turned into the set of days on
which it is true, as sorted inclusive day intervals (``clinical.intervals``); a conjunction is an intersection,
``any_of`` a union, an absence a complement. The maximal runs of days in the result are the flag periods. This
is equivalent to cutting the history at every breakpoint (prescription start/stop, birthdays, lab validity expiry,
duration thresholds) and testing each constant segment, but it never materialises the segments, so a five-year
history costs a handful of list merges per rule.

Speed comes from not evaluating rules that cannot apply: each compiled rule carries *gates*, sets of record
tokens (drugs, conditions, labs, events present anywhere in the record) of which at least one must be present,
and an index from token to rules, so a patient on three medicines is tested against the few rules that mention
them. Both the Patient JSON front end and the population path call ``SafetyEngine.evaluate``, so there is one
implementation of the rule semantics.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from functools import lru_cache

from clinical.intervals import (
    EMPTY,
    IntervalSet,
    after_run_of,
    complement,
    intersect,
    normalise,
    union,
)
from clinical.knowledge import Knowledge, load_knowledge
from clinical.record import PatientRecord
from clinical.rules import DrugRequirement, LabTest, Rule, RuleBook, When, load_rules, vocabulary_problems
from clinical.timeline import PatientTimeline

_OPS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}


@dataclass(frozen=True, slots=True)
class FlagPeriod:
    """A maximal run of days on which a rule held; ``end`` is ``None`` when it still holds on ``as_of``."""

    rule_id: str
    start: date
    end: date | None
    drugs: tuple[str, ...]
    severity: str
    rule: Rule = field(repr=False, compare=False)

    def as_dict(self) -> dict[str, object]:
        """The flag as the Patient JSON output describes it (DESIGN.md)."""
        return {
            "rule_id": self.rule_id,
            "source": self.rule.source,
            "title": self.rule.title,
            "severity": self.severity,
            "drugs": list(self.drugs),
            "start": self.start.isoformat(),
            "end": None if self.end is None else self.end.isoformat(),
            "recommendation": self.rule.recommendation,
            "evidence": self.rule.evidence,
        }


# -- compiled form ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Requirement:
    candidates: frozenset[str]
    min_count: int
    duration: int | None


@dataclass(frozen=True, slots=True)
class _Block:
    when: When
    requirements: tuple[_Requirement, ...]
    no_drugs: frozenset[str]
    conditions: frozenset[str]
    conditions_ever: frozenset[str]
    no_conditions: frozenset[str]
    no_conditions_ever: frozenset[str]
    any_of: tuple[_Block, ...]
    all_of: tuple[_Block, ...]
    gates: tuple[frozenset[str], ...]  # each: at least one of these tokens must be in the record
    cascade: _Cascade | None = None  # top-level block only (the loader refuses it elsewhere)


@dataclass(frozen=True, slots=True)
class _Cascade:
    index: frozenset[str]
    marker: frozenset[str]
    within_days: int


@dataclass(frozen=True, slots=True)
class _CompiledRule:
    rule: Rule
    block: _Block
    acb_drugs: frozenset[str]  # for acb_min rules: drugs reported are those with ACB >= 1


class SafetyEngine:
    """Rules compiled against a knowledge base, ready to evaluate patient records."""

    def __init__(self, book: RuleBook, knowledge: Knowledge, strict: bool = True) -> None:
        if strict:
            problems = vocabulary_problems(
                book,
                set(knowledge.class_members),
                set(knowledge.drug_keys),
                set(knowledge.condition_keys),
                set(knowledge.condition_groups),
            )
            if problems:
                raise ValueError("rules reference unknown vocabulary keys:\n" + "\n".join(problems))
        self.book = book
        self.knowledge = knowledge
        self.rules = tuple(self._compile(rule) for rule in book.rules)
        self._always: list[int] = []
        self._index: dict[str, list[int]] = {}
        for i, compiled in enumerate(self.rules):
            gates = compiled.block.gates
            if not gates:
                self._always.append(i)
                continue
            smallest = min(gates, key=len)
            for token in smallest:
                self._index.setdefault(token, []).append(i)

    # -- compilation ---------------------------------------------------------------------------------------------

    def _compile(self, rule: Rule) -> _CompiledRule:
        block = self._compile_block(rule.when)
        acb_drugs = frozenset(d for d, score in self.knowledge.acb.items() if score >= 1)
        if rule.when.acb_min:
            block = _with_gate(block, frozenset(f"d:{d}" for d in acb_drugs))
        return _CompiledRule(
            rule=rule, block=block, acb_drugs=acb_drugs if rule.when.acb_min else frozenset()
        )

    def _compile_block(self, when: When) -> _Block:
        kb = self.knowledge
        requirements = tuple(self._compile_requirement(r) for r in when.drugs)
        any_of = tuple(self._compile_block(b) for b in when.any_of)
        all_of = tuple(self._compile_block(b) for b in when.all_of)
        conditions = kb.expand_conditions(when.conditions)
        conditions_ever = kb.expand_conditions(when.conditions_ever)
        gates: list[frozenset[str]] = [frozenset(f"d:{d}" for d in r.candidates) for r in requirements]
        for keys in (conditions, conditions_ever):
            if keys:
                gates.append(frozenset(f"c:{k}" for k in keys))
        gates.extend(frozenset({f"l:{t.name}"}) for t in when.lab)
        gates.extend(frozenset(f"e:{t}" for t in e.types) for e in when.events)
        if when.social_care:
            gates.append(frozenset(f"s:{k}" for k in when.social_care))
        if any_of and all(b.gates for b in any_of):
            gates.append(frozenset().union(*(min(b.gates, key=len) for b in any_of)))
        for block in all_of:
            gates.extend(block.gates)
        cascade = None
        if when.cascade is not None:
            cascade = _Cascade(
                index=frozenset().union(*(kb.expand_ref(r) for r in when.cascade.index)),
                marker=frozenset().union(*(kb.expand_ref(r) for r in when.cascade.marker)),
                within_days=when.cascade.within_days,
            )
            gates.append(frozenset(f"d:{d}" for d in cascade.index))
            gates.append(frozenset(f"d:{d}" for d in cascade.marker))
        return _Block(
            when=when,
            requirements=requirements,
            no_drugs=frozenset().union(*(kb.expand_ref(r) for r in when.no_drugs))
            if when.no_drugs
            else frozenset(),
            conditions=conditions,
            conditions_ever=conditions_ever,
            no_conditions=kb.expand_conditions(when.no_conditions),
            no_conditions_ever=kb.expand_conditions(when.no_conditions_ever),
            any_of=any_of,
            all_of=all_of,
            gates=tuple(gates),
            cascade=cascade,
        )

    def _compile_requirement(self, requirement: DrugRequirement) -> _Requirement:
        kb = self.knowledge
        candidates = frozenset().union(*(kb.expand_ref(r) for r in requirement.refs))
        if requirement.exclude:
            candidates -= frozenset().union(*(kb.expand_ref(r) for r in requirement.exclude))
        return _Requirement(candidates, requirement.min_count, requirement.duration_min_days)

    # -- evaluation ----------------------------------------------------------------------------------------------

    def candidate_rules(self, timeline: PatientTimeline) -> list[_CompiledRule]:
        """Rules whose gates the record passes (the others cannot hold on any day)."""
        tokens = timeline.tokens()
        chosen = set(self._always)
        for token in tokens:
            chosen.update(self._index.get(token, ()))
        return [
            self.rules[i]
            for i in sorted(chosen)
            if all(not gate.isdisjoint(tokens) for gate in self.rules[i].block.gates)
        ]

    def evaluate(
        self, record: PatientRecord, as_of: date, rule_ids: Iterable[str] | None = None
    ) -> list[FlagPeriod]:
        """Flag periods of every rule over the record up to ``as_of``, ordered by start, then rule id."""
        timeline = PatientTimeline(record, as_of, self.knowledge)
        return self.evaluate_timeline(timeline, rule_ids)

    def evaluate_timeline(
        self, timeline: PatientTimeline, rule_ids: Iterable[str] | None = None
    ) -> list[FlagPeriod]:
        """As ``evaluate``, on an already-built timeline (the scores reuse it)."""
        wanted = None if rule_ids is None else set(rule_ids)
        flags: list[FlagPeriod] = []
        for compiled in self.candidate_rules(timeline):
            if wanted is not None and compiled.rule.id not in wanted:
                continue
            flags.extend(self._evaluate_rule(compiled, timeline))
        flags.sort(key=lambda f: (f.start, f.rule_id))
        return flags

    def holds(self, rule_id: str, timeline: PatientTimeline) -> IntervalSet:
        """The days on which one rule holds (for tests and explanations)."""
        for compiled in self.rules:
            if compiled.rule.id == rule_id:
                involved: list[tuple[IntervalSet, frozenset[str]]] = []
                return _block_truth(compiled.block, timeline, involved)
        raise KeyError(rule_id)

    def _evaluate_rule(self, compiled: _CompiledRule, timeline: PatientTimeline) -> list[FlagPeriod]:
        involved: list[tuple[IntervalSet, frozenset[str]]] = []
        truth = _block_truth(compiled.block, timeline, involved)
        if not truth:
            return []
        rule = compiled.rule
        if compiled.acb_drugs:
            involved.append((truth, compiled.acb_drugs))
        out = []
        for a, b in truth:
            if rule.suggest:
                drugs = tuple(rule.suggest)
            elif compiled.block.cascade is not None:
                drugs = _cascade_drugs(compiled.block.cascade, a, b, timeline)
            else:
                drugs = tuple(sorted(_drugs_in_period(a, b, involved, timeline)))
            out.append(
                FlagPeriod(
                    rule_id=rule.id,
                    start=date.fromordinal(a),
                    end=None if b >= timeline.open_from else date.fromordinal(b),
                    drugs=drugs,
                    severity=rule.severity,
                    rule=rule,
                )
            )
        return out


def _with_gate(block: _Block, gate: frozenset[str]) -> _Block:
    return replace(block, gates=(*block.gates, gate))


def _drugs_in_period(
    a: int, b: int, involved: list[tuple[IntervalSet, frozenset[str]]], timeline: PatientTimeline
) -> set[str]:
    period = ((a, b),)
    found: set[str] = set()
    for block_truth, candidates in involved:
        window = intersect(block_truth, period)
        if not window:
            continue
        for drug in timeline.drug_active.keys() & candidates:
            if drug not in found and intersect(timeline.drug_active[drug], window):
                found.add(drug)
    return found


# -- criteria ---------------------------------------------------------------------------------------------------


def _block_truth(
    block: _Block, tl: PatientTimeline, involved: list[tuple[IntervalSet, frozenset[str]]]
) -> IntervalSet:
    """Days on which every criterion of the block holds; records which drugs could be involved."""
    tokens = tl.tokens()
    if any(gate.isdisjoint(tokens) for gate in block.gates):
        return EMPTY
    when = block.when
    truth: IntervalSet = ((tl.lo, tl.hi),)

    def narrow(days: IntervalSet) -> bool:
        nonlocal truth
        truth = intersect(truth, days)
        return bool(truth)

    if when.sex is not None and tl.sex != when.sex:
        return EMPTY
    if when.age_min is not None and not narrow(tl.age_at_least(when.age_min)):
        return EMPTY
    if when.age_max is not None and not narrow(tl.age_at_most(when.age_max)):
        return EMPTY
    if block.conditions and not narrow(tl.conditions_active(block.conditions)):
        return EMPTY
    if block.conditions_ever and not narrow(tl.conditions_ever(block.conditions_ever)):
        return EMPTY
    for test in when.lab:
        if not narrow(_lab_truth(test, tl)):
            return EMPTY
    for item in when.events:
        if not narrow(tl.events_within(item.types, item.within_days, item.min_count)):
            return EMPTY
    if when.social_care and not narrow(union(*(tl.social_care.get(k, EMPTY) for k in when.social_care))):
        return EMPTY
    if block.requirements and not narrow(_requirements_truth(block.requirements, tl)):
        return EMPTY
    if block.cascade is not None and not narrow(
        normalise((s, e) for s, e, _, _ in _cascade_starts(block.cascade, tl))
    ):
        return EMPTY
    if when.acb_min is not None and not narrow(_steps_at_least(tl.acb_steps(), when.acb_min)):
        return EMPTY
    if when.medicines_min is not None and not narrow(
        _steps_at_least(tl.medicine_steps(), when.medicines_min)
    ):
        return EMPTY
    if when.efi_min is not None and not narrow(tl.efi_at_least(when.efi_min)):
        return EMPTY
    if when.efi_category and not narrow(tl.efi_in_categories(when.efi_category)):
        return EMPTY
    # Absences: remove the days on which the excluded thing is present.
    if block.no_drugs:
        present = union(*(tl.drug_active.get(d, EMPTY) for d in block.no_drugs))
        if present and not narrow(complement(present, tl.lo, tl.hi)):
            return EMPTY
    if block.no_conditions:
        present = tl.conditions_active(block.no_conditions)
        if present and not narrow(complement(present, tl.lo, tl.hi)):
            return EMPTY
    if block.no_conditions_ever:
        present = tl.conditions_ever(block.no_conditions_ever)
        if present and not narrow(complement(present, tl.lo, tl.hi)):
            return EMPTY
    for item in when.no_events:
        present = tl.events_within(item.types, item.within_days, 1)
        if present and not narrow(complement(present, tl.lo, tl.hi)):
            return EMPTY
    if when.no_social_care:
        present = union(*(tl.social_care.get(k, EMPTY) for k in when.no_social_care))
        if present and not narrow(complement(present, tl.lo, tl.hi)):
            return EMPTY
    for missing in when.lab_missing:
        if not narrow(_lab_missing_truth(missing.names, missing.within_days, tl)):
            return EMPTY
    for sub in block.all_of:
        if not narrow(_block_truth(sub, tl, involved)):
            return EMPTY
    if block.any_of:
        alternatives = [_block_truth(sub, tl, involved) for sub in block.any_of]
        if not narrow(union(*alternatives)):
            return EMPTY
    for requirement in block.requirements:
        involved.append((truth, requirement.candidates))
    return truth


def _cascade_starts(cascade: _Cascade, tl: PatientTimeline) -> list[tuple[int, int, str, str]]:
    """Each start of a prescribing cascade as ``(first day, last day, drug A, drug B)``.

    Continuity is at the class level, as for ``duration_min_days``: a marker *start* is the first day of a run of
    days on which some marker drug is taken (switching furosemide to bumetanide is not a new start), and drug A's
    start is the first day of the run of index-drug use that covers that day. The cascade holds from B's start
    while both runs continue. Drug A is the index drug taken on B's start day that was started most recently
    (the likeliest culprit), drug B the marker drug started that day (alphabetical on ties), so the flag's
    ``drugs`` read "A;B".
    """
    index_days = union(*(tl.drug_active[d] for d in cascade.index if d in tl.drug_active))
    marker_days = union(*(tl.drug_active[d] for d in cascade.marker if d in tl.drug_active))
    out = []
    for start, end in marker_days:
        for index_start, index_end in index_days:
            if index_start <= start <= index_end:
                if 1 <= start - index_start <= cascade.within_days:
                    drug_a = _latest_started(cascade.index, start, tl)
                    drug_b = min(d for d in cascade.marker if _started_on(tl, d, start))
                    out.append((start, min(end, index_end), drug_a, drug_b))
                break
    return out


def _run_containing(tl: PatientTimeline, drug: str, day: int) -> tuple[int, int] | None:
    for a, b in tl.drug_active.get(drug, ()):
        if a <= day <= b:
            return a, b
    return None


def _started_on(tl: PatientTimeline, drug: str, day: int) -> bool:
    run = _run_containing(tl, drug, day)
    return run is not None and run[0] == day


def _latest_started(drugs: frozenset[str], day: int, tl: PatientTimeline) -> str:
    runs = [(run[0], drug) for drug in drugs if (run := _run_containing(tl, drug, day)) is not None]
    latest = max(start for start, _ in runs)
    return min(drug for start, drug in runs if start == latest)


def _cascade_drugs(cascade: _Cascade, a: int, b: int, tl: PatientTimeline) -> tuple[str, ...]:
    """Drugs A and B (in that order) of the first cascade start that falls in the flag period ``[a, b]``."""
    for start, end, drug_a, drug_b in _cascade_starts(cascade, tl):
        if start <= b and end >= a:
            return (drug_a, drug_b)
    return ()


def _steps_at_least(steps, threshold: float) -> IntervalSet:
    return normalise((s.start, s.end) for s in steps if s.value >= threshold - 1e-9)


def _lab_truth(test: LabTest, tl: PatientTimeline) -> IntervalSet:
    """Days whose latest non-null result (dated within the validity window) satisfies the comparison."""
    results = [(day, value) for day, value in tl.labs.get(test.name, ()) if value is not None]
    if not results:
        return EMPTY
    compare = _OPS[test.op]
    spans = []
    for i, (day, value) in enumerate(results):
        next_day = results[i + 1][0] if i + 1 < len(results) else tl.hi + 1
        end = min(next_day - 1, day + test.within_days, tl.hi)
        if end >= day and compare(value, test.value):
            spans.append((day, end))
    return normalise(spans)


def _lab_missing_truth(names: Sequence[str], within_days: int, tl: PatientTimeline) -> IntervalSet:
    """Days with no result of any of ``names`` (null values included) dated in ``[d - within_days, d]``."""
    covered = normalise(
        (day, min(day + within_days, tl.hi)) for name in names for day, _ in tl.labs.get(name, ())
    )
    return complement(covered, tl.lo, tl.hi)


def _requirements_truth(requirements: tuple[_Requirement, ...], tl: PatientTimeline) -> IntervalSet:
    """Days on which every requirement is met, each by its own distinct drugs."""
    present_sets: list[list[str]] = []
    truth: IntervalSet | None = None
    for requirement in requirements:
        present = sorted(tl.drug_active.keys() & requirement.candidates)
        if len(present) < requirement.min_count:
            return EMPTY
        if requirement.min_count == 1:
            days = union(*(tl.drug_active[d] for d in present))
        else:
            days = tl.distinct_drug_count_at_least(present, requirement.min_count)
        if requirement.duration:
            days = after_run_of(days, requirement.duration)
        truth = days if truth is None else intersect(truth, days)
        if not truth:
            return EMPTY
        present_sets.append(present)
    assert truth is not None
    if len(requirements) == 1 or _pairwise_disjoint(present_sets):
        return truth
    return _distinct_assignment_days(requirements, present_sets, truth, tl)


def _pairwise_disjoint(sets: list[list[str]]) -> bool:
    seen: set[str] = set()
    for items in sets:
        if not seen.isdisjoint(items):
            return False
        seen.update(items)
    return True


def _distinct_assignment_days(
    requirements: tuple[_Requirement, ...],
    present_sets: list[list[str]],
    truth: IntervalSet,
    tl: PatientTimeline,
) -> IntervalSet:
    """Keep the days of ``truth`` on which drugs can be assigned to requirements without sharing one.

    Requirements that overlap (``[class:nsaid, class:nsaid]``, or a drug in two classes) need a matching; the
    active drug set only changes at prescription boundaries, so we test one day per elementary segment.
    """
    drugs = sorted({d for items in present_sets for d in items})
    cuts = set()
    for a, b in truth:
        cuts.add(a)
        cuts.add(b + 1)
    for drug in drugs:
        for a, b in tl.drug_active[drug]:
            cuts.add(a)
            cuts.add(b + 1)
    points = sorted(cuts)
    kept = []
    for start, next_start in zip(points, points[1:], strict=False):
        end = next_start - 1
        if not intersect(truth, ((start, start),)):
            continue
        active = {d for d in drugs if intersect(tl.drug_active[d], ((start, start),))}
        slots = [
            [d for d in items if d in active]
            for requirement, items in zip(requirements, present_sets, strict=True)
            for _ in range(requirement.min_count)
        ]
        if _has_matching(slots):
            kept.append((start, end))
    return intersect(truth, normalise(kept))


def _has_matching(slots: list[list[str]]) -> bool:
    """Whether each slot can take a different drug from its list (Kuhn's augmenting paths; tiny inputs)."""
    owner: dict[str, int] = {}

    def assign(slot: int, seen: set[str]) -> bool:
        for drug in slots[slot]:
            if drug in seen:
                continue
            seen.add(drug)
            if drug not in owner or assign(owner[drug], seen):
                owner[drug] = slot
                return True
        return False

    return all(assign(i, set()) for i in range(len(slots)))


@lru_cache(maxsize=1)
def default_engine() -> SafetyEngine:
    """The engine over all rule files and the project vocabularies (built once per process)."""
    return SafetyEngine(load_rules(), load_knowledge())
