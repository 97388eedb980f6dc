"""A patient's history as day-interval sets: the shared substrate of the rule engine and the scores.

``PatientTimeline`` converts a ``PatientRecord`` once into the interval sets every criterion needs (when each drug
was active, when each condition was active, lab results in date order, ...), clipped to the record's window
``[birth, as_of]``. The rule engine, the clinical scores and the population path all read from it, so a drug's
active days (inclusive start and stop, stop = d active on d, not on d + 1) are computed in exactly one place.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from clinical.intervals import EMPTY, IntervalSet, complement, normalise, union
from clinical.knowledge import Knowledge
from clinical.record import PatientRecord, add_years

# The 36 deficits of the electronic Frailty Index (Clegg A et al. Age Ageing 2016;45:353-60, Table 1).
# Condition keys evidence a deficit through ``Knowledge.efi_deficits``; a few deficits are also evidenced by
# events, social care or prescriptions as noted in ``_efi_deficit_sets``.
EFI_DEFICITS = (
    "activity_limitation",
    "anaemia",
    "arthritis",
    "atrial_fibrillation",
    "cerebrovascular_disease",
    "chronic_kidney_disease",
    "diabetes",
    "dizziness",
    "dyspnoea",
    "falls",
    "foot_problems",
    "fragility_fracture",
    "hearing_impairment",
    "heart_failure",
    "heart_valve_disease",
    "housebound",
    "hypertension",
    "hypotension_syncope",
    "ischaemic_heart_disease",
    "memory_cognitive_problems",
    "mobility_transfer_problems",
    "osteoporosis",
    "parkinsonism_tremor",
    "peptic_ulcer",
    "peripheral_vascular_disease",
    "polypharmacy",
    "requirement_for_care",
    "respiratory_disease",
    "skin_ulcer",
    "sleep_disturbance",
    "social_vulnerability",
    "thyroid_disease",
    "urinary_incontinence",
    "urinary_system_disease",
    "visual_impairment",
    "weight_loss_anorexia",
)
EFI_DEFICIT_COUNT = len(EFI_DEFICITS)

# Clegg 2016: fit 0-0.12, mild >0.12-0.24, moderate >0.24-0.36, severe >0.36.
EFI_CUTOFFS = (("fit", 0.12), ("mild", 0.24), ("moderate", 0.36))

# Clegg 2016 defines polypharmacy as five or more medicines; we count distinct active ingredients on the day.
POLYPHARMACY_MIN = 5


def efi_category(efi: float) -> str:
    """The eFI category of a score (Clegg 2016 cut-offs, upper bounds inclusive)."""
    for name, upper in EFI_CUTOFFS:
        if efi <= upper + 1e-12:
            return name
    return "severe"


@dataclass(frozen=True, slots=True)
class Step:
    """A piecewise-constant value: ``value`` on days ``start`` to ``end`` inclusive."""

    start: int
    end: int
    value: float


class PatientTimeline:
    """Interval sets for one patient up to ``as_of``, built lazily and cached."""

    def __init__(self, record: PatientRecord, as_of: date, knowledge: Knowledge) -> None:
        self.record = record
        self.knowledge = knowledge
        self.as_of = as_of
        self.hi = as_of.toordinal()
        self.lo = min(record.birth_date.toordinal(), self.hi)
        self.drug_active = self._drug_intervals()
        self.condition_active, self.condition_onset = self._condition_intervals()
        self.labs = self._labs()
        self.events = self._events()
        self.social_care = self._social_care()
        self._cache: dict[object, object] = {}

    # -- construction -------------------------------------------------------------------------------------------

    def _drug_intervals(self) -> dict[str, IntervalSet]:
        spans: dict[str, list[tuple[int, int]]] = {}
        for rx in self.record.prescriptions:
            start = rx.start.toordinal()
            stop = self.hi if rx.stop is None else min(rx.stop.toordinal(), self.hi)
            if start > stop:
                continue
            for drug in rx.ingredients:
                spans.setdefault(drug, []).append((start, stop))
        return {drug: normalise(items) for drug, items in spans.items()}

    def _condition_intervals(self) -> tuple[dict[str, IntervalSet], dict[str, int]]:
        spans: dict[str, list[tuple[int, int]]] = {}
        onset: dict[str, int] = {}
        for episode in self.record.conditions:
            start = episode.onset.toordinal()
            if start > self.hi:
                continue
            end = self.hi if episode.resolved is None else min(episode.resolved.toordinal(), self.hi)
            spans.setdefault(episode.key, []).append((start, end))
            if start < onset.get(episode.key, start + 1):
                onset[episode.key] = start
        return {key: normalise(items) for key, items in spans.items()}, onset

    def _labs(self) -> dict[str, list[tuple[int, float | None]]]:
        out: dict[str, list[tuple[int, float | None]]] = {}
        for result in self.record.labs:
            day = result.date.toordinal()
            if day <= self.hi:
                out.setdefault(result.name, []).append((day, result.value))
        for items in out.values():
            items.sort(key=lambda item: item[0])  # stable: same-day results keep input order, last one wins
        return out

    def _events(self) -> dict[str, list[int]]:
        out: dict[str, list[int]] = {}
        for event in self.record.events:
            day = event.date.toordinal()
            if day <= self.hi:
                out.setdefault(event.type, []).append(day)
        for days in out.values():
            days.sort()
        return out

    def _social_care(self) -> dict[str, IntervalSet]:
        spans: dict[str, list[tuple[int, int]]] = {}
        for period in self.record.social_care:
            start = period.start.toordinal()
            end = self.hi if period.end is None else min(period.end.toordinal(), self.hi)
            if start <= end:
                spans.setdefault(period.kind, []).append((start, end))
        return {kind: normalise(items) for kind, items in spans.items()}

    # -- shared derived sets ------------------------------------------------------------------------------------

    def tokens(self) -> frozenset[str]:
        """What this record contains, for skipping rules that cannot apply (``d:``, ``c:``, ``l:``, ``e:``, ``s:``)."""
        cached = self._cache.get("tokens")
        if cached is None:
            cached = frozenset(
                [f"d:{k}" for k in self.drug_active]
                + [f"c:{k}" for k in self.condition_active]
                + [f"l:{k}" for k in self.labs]
                + [f"e:{k}" for k in self.events]
                + [f"s:{k}" for k in self.social_care]
            )
            self._cache["tokens"] = cached
        return cached  # type: ignore[return-value]

    def age_at_least(self, years: int) -> IntervalSet:
        """Days on which the patient is at least ``years`` old."""
        start = add_years(self.record.birth_date, years).toordinal()
        return ((max(start, self.lo), self.hi),) if start <= self.hi else EMPTY

    def age_at_most(self, years: int) -> IntervalSet:
        """Days on which the patient is at most ``years`` old (i.e. before the ``years + 1`` birthday)."""
        end = add_years(self.record.birth_date, years + 1).toordinal() - 1
        return ((self.lo, min(end, self.hi)),) if end >= self.lo else EMPTY

    def conditions_active(self, keys: Iterable[str]) -> IntervalSet:
        """Days on which any of the conditions is active."""
        return union(*(self.condition_active.get(k, EMPTY) for k in keys))

    def conditions_ever(self, keys: Iterable[str]) -> IntervalSet:
        """Days on or after the first onset of any of the conditions."""
        starts = [self.condition_onset[k] for k in keys if k in self.condition_onset]
        return ((min(starts), self.hi),) if starts else EMPTY

    def events_within(self, types: Iterable[str], within_days: int | None, min_count: int = 1) -> IntervalSet:
        """Days with at least ``min_count`` events of ``types`` in ``[d - within_days, d]`` (or ever)."""
        days = sorted(d for t in types for d in self.events.get(t, ()))
        if len(days) < min_count:
            return EMPTY
        if within_days is None:
            return ((days[min_count - 1], self.hi),)
        spans = []
        for j in range(min_count - 1, len(days)):
            first_in_window = days[j - min_count + 1]
            spans.append((days[j], min(first_in_window + within_days, self.hi)))
        return normalise(spans)

    def distinct_drug_count_at_least(self, drugs: Iterable[str], k: int, weights: dict[str, float] | None = None):
        """Days on which the (weighted) number of active drugs among ``drugs`` is at least ``k``."""
        steps = self.weighted_steps(drugs, weights)
        return normalise((s.start, s.end) for s in steps if s.value >= k - 1e-9)

    def weighted_steps(self, drugs: Iterable[str], weights: dict[str, float] | None = None) -> list[Step]:
        """Piecewise-constant sum of ``weights`` (default 1) of active drugs; only non-zero pieces."""
        deltas: dict[int, float] = {}
        for drug in drugs:
            intervals = self.drug_active.get(drug)
            if not intervals:
                continue
            weight = 1.0 if weights is None else float(weights.get(drug, 0))
            if not weight:
                continue
            for a, b in intervals:
                deltas[a] = deltas.get(a, 0.0) + weight
                deltas[b + 1] = deltas.get(b + 1, 0.0) - weight
        return _steps_from_deltas(deltas)

    def acb_steps(self) -> list[Step]:
        """Total Anticholinergic Cognitive Burden of the distinct active ingredients, over time."""
        cached = self._cache.get("acb")
        if cached is None:
            acb = self.knowledge.acb
            cached = self.weighted_steps((d for d in self.drug_active if acb.get(d)), dict(acb))
            self._cache["acb"] = cached
        return cached  # type: ignore[return-value]

    def medicine_steps(self) -> list[Step]:
        """Number of distinct active ingredients over time."""
        cached = self._cache.get("medicines")
        if cached is None:
            cached = self.weighted_steps(self.drug_active)
            self._cache["medicines"] = cached
        return cached  # type: ignore[return-value]

    def efi_deficit_sets(self) -> dict[str, IntervalSet]:
        """For each eFI deficit present at some time, the days on which it counts."""
        cached = self._cache.get("efi_sets")
        if cached is None:
            cached = _efi_deficit_sets(self)
            self._cache["efi_sets"] = cached
        return cached  # type: ignore[return-value]

    def efi_count_steps(self) -> list[Step]:
        """Number of eFI deficits present, over time (only pieces with at least one deficit)."""
        cached = self._cache.get("efi")
        if cached is None:
            deltas: dict[int, float] = {}
            for intervals in self.efi_deficit_sets().values():
                for a, b in intervals:
                    deltas[a] = deltas.get(a, 0.0) + 1
                    deltas[b + 1] = deltas.get(b + 1, 0.0) - 1
            cached = _steps_from_deltas(deltas)
            self._cache["efi"] = cached
        return cached  # type: ignore[return-value]

    def efi_at_least(self, efi_min: float) -> IntervalSet:
        """Days on which eFI ≥ ``efi_min``."""
        needed = math.ceil(efi_min * EFI_DEFICIT_COUNT - 1e-9)
        if needed <= 0:
            return ((self.lo, self.hi),)
        return normalise((s.start, s.end) for s in self.efi_count_steps() if s.value >= needed - 1e-9)

    def efi_in_categories(self, categories: Iterable[str]) -> IntervalSet:
        """Days on which the eFI category is one of ``categories``."""
        wanted = set(categories)
        steps = self.efi_count_steps()
        covered = normalise((s.start, s.end) for s in steps)
        spans = [(s.start, s.end) for s in steps if efi_category(s.value / EFI_DEFICIT_COUNT) in wanted]
        if "fit" in wanted:  # days with no deficit at all are 'fit' too
            spans.extend(complement(covered, self.lo, self.hi))
        return normalise(spans)


def _steps_from_deltas(deltas: dict[int, float]) -> list[Step]:
    steps: list[Step] = []
    running = 0.0
    points = sorted(deltas)
    for i, day in enumerate(points):
        running += deltas[day]
        if i + 1 < len(points) and abs(running) > 1e-9:
            steps.append(Step(day, points[i + 1] - 1, running))
    return steps


def _efi_deficit_sets(timeline: PatientTimeline) -> dict[str, IntervalSet]:
    """eFI deficits over time.

    Clegg 2016 counts a deficit when its code appears anywhere in the record, so coded deficits count from their
    first onset onwards. Falls and fragility fractures are also evidenced by the canonical ``event`` table;
    requirement for care by a home-care or care-home period; social vulnerability by living alone; polypharmacy by
    five or more distinct active medicines on the day (the only deficit that can go away).
    """
    hi = timeline.hi
    starts: dict[str, int] = {}
    for key, onset in timeline.condition_onset.items():
        deficit = timeline.knowledge.efi_deficits.get(key)
        if deficit and onset < starts.get(deficit, hi + 1):
            starts[deficit] = onset
    for event_type, deficit in (("fall", "falls"), ("fracture", "fragility_fracture")):
        days = timeline.events.get(event_type)
        if days and days[0] < starts.get(deficit, hi + 1):
            starts[deficit] = days[0]
    for kinds, deficit in ((("home_care", "care_home"), "requirement_for_care"), (("lives_alone",), "social_vulnerability")):
        for kind in kinds:
            intervals = timeline.social_care.get(kind)
            if intervals and intervals[0][0] < starts.get(deficit, hi + 1):
                starts[deficit] = intervals[0][0]
    sets: dict[str, IntervalSet] = {deficit: ((start, hi),) for deficit, start in starts.items()}
    polypharmacy = normalise(
        (s.start, s.end) for s in timeline.medicine_steps() if s.value >= POLYPHARMACY_MIN - 1e-9
    )
    if polypharmacy:
        sets["polypharmacy"] = union(sets.get("polypharmacy", EMPTY), polypharmacy)
    return sets
