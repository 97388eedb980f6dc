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

# WHO anaemia thresholds (g/L) used for the eFI input ``observation.haemoglobin_low`` (WHO 2011,
# "Haemoglobin concentrations for the diagnosis of anaemia"): below 130 in men, below 120 in women.
ANAEMIA_HB_G_PER_L = {"M": 130.0, "F": 120.0}


def efi_category(
    efi: float, cutoffs: tuple[tuple[str, float], ...] = (("fit", 0.12), ("mild", 0.24), ("moderate", 0.36))
) -> str:
    """The eFI category of a score: Clegg 2016 cut-offs fit ≤ 0.12 < mild ≤ 0.24 < moderate ≤ 0.36 < severe."""
    for name, upper in cutoffs:
        if efi <= upper + 1e-12:
            return name
    return "severe"


@dataclass(frozen=True, slots=True)
class Step:
    """A piecewise-constant value: ``value`` on days ``start`` to ``end`` inclusive."""

    start: int
    end: int
    value: float


RxRow = tuple[tuple[str, ...], int, int | None]  # ingredients, start ordinal, stop ordinal (None = ongoing)
ConditionRow = tuple[str, int, int | None]  # key, onset ordinal, resolved ordinal
LabRow = tuple[str, int, float | None]  # name, date ordinal, value
EventRow = tuple[str, int]  # type, date ordinal
SocialRow = tuple[str, int, int | None]  # kind, start ordinal, end ordinal


class PatientTimeline:
    """Interval sets for one patient up to ``as_of``, built lazily and cached.

    Build it from a ``PatientRecord`` (``PatientTimeline(record, as_of, knowledge)``) or, on the population path,
    straight from rows of day ordinals (``PatientTimeline.from_rows``); both go through ``_build`` so the
    inclusive-date conventions live in one place.
    """

    def __init__(self, record: PatientRecord, as_of: date, knowledge: Knowledge) -> None:
        self._build(
            patient_id=record.patient_id,
            birth=record.birth_date,
            sex=record.sex,
            hi=as_of.toordinal(),
            knowledge=knowledge,
            prescriptions=[
                (rx.ingredients, rx.start.toordinal(), None if rx.stop is None else rx.stop.toordinal())
                for rx in record.prescriptions
            ],
            conditions=[
                (c.key, c.onset.toordinal(), None if c.resolved is None else c.resolved.toordinal())
                for c in record.conditions
            ],
            labs=[(lab.name, lab.date.toordinal(), lab.value) for lab in record.labs],
            events=[(e.type, e.date.toordinal()) for e in record.events],
            social_care=[
                (p.kind, p.start.toordinal(), None if p.end is None else p.end.toordinal())
                for p in record.social_care
            ],
        )

    @classmethod
    def from_rows(
        cls,
        patient_id: str,
        birth: date,
        sex: str | None,
        hi: int,
        knowledge: Knowledge,
        prescriptions: Iterable[RxRow] = (),
        conditions: Iterable[ConditionRow] = (),
        labs: Iterable[LabRow] = (),
        events: Iterable[EventRow] = (),
        social_care: Iterable[SocialRow] = (),
        open_from: int | None = None,
    ) -> PatientTimeline:
        """A timeline from rows of day ordinals, ``hi`` being the ordinal of the last day evaluated.

        ``open_from`` is the day from which a period that reaches ``hi`` is reported as still active (end
        ``None``); it defaults to ``hi``. The population path evaluates a patient who died before ``as_of`` up to
        the day of death but reports periods ending then as ended, so it passes ``as_of`` here.
        """
        timeline = cls.__new__(cls)
        timeline._build(
            patient_id, birth, sex, hi, knowledge, prescriptions, conditions, labs, events, social_care
        )
        if open_from is not None:
            timeline.open_from = open_from
        return timeline

    def _build(
        self,
        patient_id: str,
        birth: date,
        sex: str | None,
        hi: int,
        knowledge: Knowledge,
        prescriptions: Iterable[RxRow],
        conditions: Iterable[ConditionRow],
        labs: Iterable[LabRow],
        events: Iterable[EventRow],
        social_care: Iterable[SocialRow],
    ) -> None:
        self.patient_id = patient_id
        self.birth_date = birth
        self.sex = sex
        self.knowledge = knowledge
        self.hi = hi
        self.as_of = date.fromordinal(hi)
        self.open_from = hi
        self.lo = min(birth.toordinal(), hi)
        self.drug_active = _drug_intervals(prescriptions, hi)
        self.condition_active, self.condition_onset = _condition_intervals(conditions, hi)
        self.labs = _lab_series(labs, hi)
        self.events = _event_days(events, hi)
        self.social_care = _social_care_intervals(social_care, hi)
        self._cache: dict[object, object] = {}

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
        start = add_years(self.birth_date, years).toordinal()
        return ((max(start, self.lo), self.hi),) if start <= self.hi else EMPTY

    def age_at_most(self, years: int) -> IntervalSet:
        """Days on which the patient is at most ``years`` old (i.e. before the ``years + 1`` birthday)."""
        end = add_years(self.birth_date, years + 1).toordinal() - 1
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

    def distinct_drug_count_at_least(
        self, drugs: Iterable[str], k: int, weights: dict[str, float] | None = None
    ):
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
        needed = math.ceil(efi_min * self.knowledge.efi_denominator - 1e-9)
        if needed <= 0:
            return ((self.lo, self.hi),)
        return normalise((s.start, s.end) for s in self.efi_count_steps() if s.value >= needed - 1e-9)

    def efi_in_categories(self, categories: Iterable[str]) -> IntervalSet:
        """Days on which the eFI category is one of ``categories``."""
        wanted = set(categories)
        steps = self.efi_count_steps()
        covered = normalise((s.start, s.end) for s in steps)
        kb = self.knowledge
        spans = [
            (s.start, s.end)
            for s in steps
            if efi_category(s.value / kb.efi_denominator, kb.efi_cutoffs) in wanted
        ]
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
    """eFI deficits over time, from the deficit definitions of ``conditions.yaml``.

    Clegg 2016 counts a deficit when a code for it appears anywhere in the record, so a deficit counts from its
    first evidence onwards (conditions from first onset, events from the first event, social care from the first
    period, abnormal results from the first abnormal result). Polypharmacy is the exception: it counts on the
    days when the patient has at least the stated number of distinct active medicines.
    """
    kb = timeline.knowledge
    spans: dict[str, list[IntervalSet]] = {}
    for key, onset in timeline.condition_onset.items():
        for deficit in kb.efi_deficits_of_condition.get(key, ()):
            spans.setdefault(deficit, []).append(((onset, timeline.hi),))
    for deficit, ref in kb.efi_other_inputs:
        days = _other_input_days(timeline, ref)
        if days:
            spans.setdefault(deficit, []).append(days)
    return {deficit: union(*items) for deficit, items in spans.items()}


def _other_input_days(timeline: PatientTimeline, ref: str) -> IntervalSet:
    """Days on which an eFI 'other input' of ``conditions.yaml`` counts (see ``EfiDeficit``)."""
    table, _, what = ref.partition(".")
    hi = timeline.hi
    if table == "event":
        days = timeline.events.get(what)
        return ((days[0], hi),) if days else EMPTY
    if table == "social_care":
        periods = timeline.social_care.get(what)
        return ((periods[0][0], hi),) if periods else EMPTY
    if table == "prescription" and what.startswith("distinct_drugs_") and what.endswith("_or_more"):
        needed = int(what.removeprefix("distinct_drugs_").removesuffix("_or_more"))
        return normalise((s.start, s.end) for s in timeline.medicine_steps() if s.value >= needed - 1e-9)
    if table == "observation":
        first = _first_abnormal_result(timeline, what)
        return ((first, hi),) if first is not None else EMPTY
    raise ValueError(f"unknown eFI input {ref!r}")


def _first_abnormal_result(timeline: PatientTimeline, what: str) -> int | None:
    if what == "haemoglobin_low":
        threshold = ANAEMIA_HB_G_PER_L.get(timeline.sex or "", 0.0)
        for day, value in timeline.labs.get("haemoglobin", ()):
            if value is not None and threshold:
                grams_per_litre = value * 10 if value < 25 else value  # g/dL results are converted to g/L
                if grams_per_litre < threshold:
                    return day
        return None
    if "_below_" in what:
        name, _, limit = what.partition("_below_")
        for day, value in timeline.labs.get(name, ()):
            if value is not None and value < float(limit):
                return day
        return None
    raise ValueError(f"unknown eFI observation input {what!r}")


# -- row builders (inclusive dates: a course with stop = d is active on d, not on d + 1) --------------------------


def _drug_intervals(rows: Iterable[RxRow], hi: int) -> dict[str, IntervalSet]:
    spans: dict[str, list[tuple[int, int]]] = {}
    for ingredients, start, stop in rows:
        end = hi if stop is None or stop > hi else stop
        if start > end:
            continue
        for drug in ingredients:
            spans.setdefault(drug, []).append((start, end))
    return {drug: normalise(items) for drug, items in spans.items()}


def _condition_intervals(
    rows: Iterable[ConditionRow], hi: int
) -> tuple[dict[str, IntervalSet], dict[str, int]]:
    spans: dict[str, list[tuple[int, int]]] = {}
    onset: dict[str, int] = {}
    for key, start, resolved in rows:
        if start > hi:
            continue
        end = hi if resolved is None or resolved > hi else resolved
        if end < start:
            end = start  # a resolution recorded before the onset still leaves the coded day itself
        spans.setdefault(key, []).append((start, end))
        if start < onset.get(key, start + 1):
            onset[key] = start
    return {key: normalise(items) for key, items in spans.items()}, onset


def _lab_series(rows: Iterable[LabRow], hi: int) -> dict[str, list[tuple[int, float | None]]]:
    out: dict[str, list[tuple[int, float | None]]] = {}
    for name, day, value in rows:
        if day <= hi:
            out.setdefault(name, []).append((day, value))
    for items in out.values():
        items.sort(key=lambda item: item[0])  # stable: same-day results keep input order, the last one wins
    return out


def _event_days(rows: Iterable[EventRow], hi: int) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for kind, day in rows:
        if day <= hi:
            out.setdefault(kind, []).append(day)
    for days in out.values():
        days.sort()
    return out


def _social_care_intervals(rows: Iterable[SocialRow], hi: int) -> dict[str, IntervalSet]:
    spans: dict[str, list[tuple[int, int]]] = {}
    for kind, start, end in rows:
        last = hi if end is None or end > hi else end
        if start <= last:
            spans.setdefault(kind, []).append((start, last))
    return {kind: normalise(items) for kind, items in spans.items()}
