"""Prescribing dynamics: who starts, stops, switches and changes the dose of what, month by month.

Every slot of ``medicines.SLOTS`` has an indication rule below (monthly start probability and the share already
treated at the start of the window), written from the NICE pathway it follows. Starts depend only on the
patient's conditions, latent physiology (blood pressure, HbA1c, eGFR, TSH as measured at this month's tests),
age, sex, ethnicity and the earlier steps of the *same* pathway, plus the planted cascades of ``cascades.py``;
that is what keeps unplanned drug pairs free of temporal asymmetry.

Pathways (ordered steps, expected to look sequential in sequence symmetry analysis):
- Hypertension, NICE NG136: step 1 ACE inhibitor/ARB if under 55 and not of Black African/Caribbean origin, or
  with type 2 diabetes; otherwise a dihydropyridine CCB. Step 2 adds the other; step 3 a thiazide-like diuretic;
  step 4 spironolactone if potassium <= 4.5 mmol/L, else an alpha-blocker. A step is added when a blood pressure
  check is above target (< 140 mmHg under 80, < 150 at 80+) with probability 0.5 (therapeutic inertia). ARBs are
  preferred to ACE inhibitors in people of Black African or Caribbean family origin.
- Type 2 diabetes, NICE NG28: metformin (if eGFR >= 30) when HbA1c >= 48; add a second and third agent
  (sulfonylurea, DPP-4 inhibitor or SGLT2 inhibitor; SGLT2 preferred with CVD, heart failure or CKD) when HbA1c
  >= 58 mmol/mol; basal insulin when HbA1c stays above 75.
- Heart failure, NICE NG106: loop diuretic for congestion, ACE inhibitor/ARB and beta-blocker, then MRA and
  SGLT2 inhibitor (NICE TA679).
- Atrial fibrillation, NICE NG196: DOAC (warfarin for a minority) when CHA2DS2-VASc >= 2 (men >= 1 considered),
  beta-blocker for rate control.
- Asthma (BTS/SIGN 158) and COPD (NICE NG115): reliever, then ICS, then ICS/LABA (replacing the ICS); LAMA for COPD.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from clinical.vocabulary import DrugVocabulary
from data_access.sources.synthetic.calendar import NO_DATE, MonthGrid
from data_access.sources.synthetic.cascades import MIN_DELAY_DAYS, PLANTED_CASCADES
from data_access.sources.synthetic.medicines import (
    ACUTE_COURSES,
    CASCADE_MARKER_MEDICINE,
    SLOTS,
    AcuteCourse,
    Slot,
)

if (
    TYPE_CHECKING
):  # the engine's state object; imported for type checking only (the engine imports this module)
    from data_access.sources.synthetic.engine import World

HTN_STEP_PROBABILITY = 0.5
"""Probability of adding the next antihypertensive at an above-target reading (therapeutic inertia is common:
Okonofua EC et al. Hypertension 2006;47:345-51 - intensification at about half of uncontrolled visits)."""
DIABETES_STEP_PROBABILITY = 0.45
HBA1C_DIAGNOSTIC = 48.0  # mmol/mol: NICE NG28 / WHO diagnostic threshold; metformin starts from here
HBA1C_INTENSIFY = 58.0  # mmol/mol: NICE NG28, intensify when HbA1c rises to 58 on treatment
HBA1C_INSULIN = 75.0  # mmol/mol: basal insulin when HbA1c stays this high on three agents (assumption)
NEW_NSAID_DAYS = 60
"""An NSAID started within this many days counts as a *new* NSAID (Lapi 2013: AKI risk highest early)."""
REVIEW_INTERVAL_MONTHS = 12.0


class MedicineTable:
    """Flat arrays over every medicine of every slot (index ``m``; arrays of length M + 1 use ``m + 1`` so that
    -1, "no medicine", maps to row 0)."""

    def __init__(
        self,
        drugs: DrugVocabulary,
        slots: tuple[Slot, ...] = SLOTS,
        acute: tuple[AcuteCourse, ...] = ACUTE_COURSES,
    ) -> None:
        self.drugs = drugs
        self.slots = slots
        self.slot_index = {slot.key: i for i, slot in enumerate(slots)}
        self.medicines = [m for slot in slots for m in slot.medicines]
        self.slot_of = np.array([i for i, slot in enumerate(slots) for _ in slot.medicines], dtype=np.int16)
        counts = [len(slot.medicines) for slot in slots]
        self.first = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int32)
        self.count = np.array(counts, dtype=np.int32)
        self.dose_count = np.array([len(m.doses) for m in self.medicines], dtype=np.int8)
        self.start_dose = np.array([m.start_dose for m in self.medicines], dtype=np.int8)
        self.weights = [np.array([m.weight for m in slot.medicines], dtype=np.float64) for slot in slots]
        for key in {k for m in self.medicines for k in m.ingredients} | {
            k for a in acute for k in a.medicine.ingredients
        }:
            drugs.drug(key)  # fail loudly on a key the vocabulary does not know
        self.ingredient_count = np.concatenate([[0], [len(m.ingredients) for m in self.medicines]]).astype(
            np.int8
        )
        self.acb = np.concatenate(
            [[0], [sum(drugs.acb(k) for k in m.ingredients) for m in self.medicines]]
        ).astype(np.int8)
        self.count_and_acb_packed = self.ingredient_count.astype(np.int32) + 1024 * self.acb.astype(np.int32)
        tags = sorted({m.tag for m in self.medicines if m.tag})
        self.tag_id = {tag: i + 1 for i, tag in enumerate(tags)}
        self.tag_of = np.concatenate([[0], [self.tag_id.get(m.tag, 0) for m in self.medicines]]).astype(
            np.int16
        )
        self.acute = acute
        self.acute_index = {a.key: i for i, a in enumerate(acute)}
        self._members: dict[str, np.ndarray] = {}
        self._holding: dict[str, list[int]] = {}

    @property
    def size(self) -> int:
        return len(self.medicines)

    def member(self, class_key: str) -> np.ndarray:
        """bool[M + 1]: medicines with any ingredient in the class (row 0, no medicine, is False)."""
        if class_key not in self._members:
            members = self.drugs.members(class_key)
            flags = [any(k in members for k in m.ingredients) for m in self.medicines]
            self._members[class_key] = np.concatenate([[False], flags]).astype(bool)
        return self._members[class_key]

    def slots_holding(self, class_key: str) -> list[int]:
        if class_key not in self._holding:
            flags = self.member(class_key)[1:]
            self._holding[class_key] = sorted({int(self.slot_of[m]) for m in np.flatnonzero(flags)})
        return self._holding[class_key]

    def acute_member(self, class_key: str) -> np.ndarray:
        members = self.drugs.members(class_key)
        return np.array([any(k in members for k in a.medicine.ingredients) for a in self.acute], dtype=bool)

    def medicine_of(self, slot_key: str, drug: str) -> int:
        s = self.slot_index[slot_key]
        for j in range(self.count[s]):
            if self.medicines[self.first[s] + j].drug == drug:
                return int(self.first[s] + j)
        raise KeyError(f"{drug} is not a medicine of slot {slot_key}")


@dataclass
class PrescriptionLog:
    """Closed prescription periods and acute courses, accumulated as array chunks."""

    patient: list[np.ndarray] = field(default_factory=list)
    medicine: list[np.ndarray] = field(default_factory=list)
    dose: list[np.ndarray] = field(default_factory=list)
    start: list[np.ndarray] = field(default_factory=list)
    stop: list[np.ndarray] = field(default_factory=list)
    acute_patient: list[np.ndarray] = field(default_factory=list)
    acute_course: list[np.ndarray] = field(default_factory=list)
    acute_start: list[np.ndarray] = field(default_factory=list)

    def add_period(
        self, who: np.ndarray, medicine: np.ndarray, dose: np.ndarray, start: np.ndarray, stop: np.ndarray
    ) -> None:
        if who.size:
            self.patient.append(who.astype(np.int32))
            self.medicine.append(medicine.astype(np.int16))
            self.dose.append(dose.astype(np.int8))
            self.start.append(start.astype(np.int32))
            self.stop.append(stop.astype(np.int32))

    def add_acute(self, who: np.ndarray, course: int | np.ndarray, start: np.ndarray) -> None:
        if who.size:
            self.acute_patient.append(who.astype(np.int32))
            self.acute_course.append(np.broadcast_to(np.asarray(course, dtype=np.int16), who.shape).copy())
            self.acute_start.append(start.astype(np.int32))


@dataclass
class AcuteExposure:
    """This month's acute courses, as hazard covariates."""

    nsaid: np.ndarray
    oral_corticosteroid: np.ndarray
    z_drug: np.ndarray
    opioid: np.ndarray
    first_day: np.ndarray
    """Earliest course start this month (NO_DATE if none): events caused by it are dated after it."""


class Prescriber:
    """Slot state for every patient and the monthly prescribing decisions."""

    def __init__(self, table: MedicineTable, n: int, grid: MonthGrid, rng: np.random.Generator) -> None:
        self.table = table
        self.n = n
        self.grid = grid
        self.rng = rng
        slots = len(table.slots)
        # Slot-major (slot, patient) arrays: almost every operation reads one slot for many patients.
        self.med = np.full((slots, n), -1, dtype=np.int16)
        self.dose = np.zeros((slots, n), dtype=np.int8)
        self.period_start = np.zeros((slots, n), dtype=np.int32)
        self.since = np.zeros((slots, n), dtype=np.int32)
        self.ever = np.zeros((slots, n), dtype=bool)
        self.last_stop = np.full((slots, n), NO_DATE, dtype=np.int32)
        self.log = PrescriptionLog()
        self.pending = np.full((n, len(PLANTED_CASCADES)), NO_DATE, dtype=np.int32)
        self.next_review = np.full(n, NO_DATE, dtype=np.int32)
        self._indications = _indication_rules()
        self._acute_classes = {
            name: table.acute_member(name) for name in ("nsaid", "oral_corticosteroid", "z_drug", "opioid")
        }
        self._cascade_index = [table.member(c.index_class) for c in PLANTED_CASCADES]

    # ------------------------------------------------------------------ queries
    def s(self, key: str) -> int:
        return self.table.slot_index[key]

    def on(self, key: str) -> np.ndarray:
        return self.med[self.s(key)] >= 0

    def on_class(self, class_key: str) -> np.ndarray:
        member = self.table.member(class_key)
        out = np.zeros(self.n, dtype=bool)
        for s in self.table.slots_holding(class_key):
            out |= member[self.med[s] + 1]
        return out

    def class_count(self, class_key: str) -> np.ndarray:
        member = self.table.member(class_key)
        out = np.zeros(self.n, dtype=np.int16)
        for s in self.table.slots_holding(class_key):
            out += member[self.med[s] + 1]
        return out

    def medicine_count_and_acb(self) -> tuple[np.ndarray, np.ndarray]:
        """Distinct ingredients on repeat (a combination product counts each ingredient) and the total ACB score."""
        packed = np.take(self.table.count_and_acb_packed, self.med.astype(np.intp) + 1).sum(axis=0)
        return packed % 1024, packed // 1024

    def started_within(self, key: str, day: int, days: int) -> np.ndarray:
        s = self.s(key)
        return (self.med[s] >= 0) & (self.since[s] > day - days)

    # ------------------------------------------------------------------ period bookkeeping
    def _close(self, s: int, who: np.ndarray, stop_day: np.ndarray) -> None:
        self.log.add_period(who, self.med[s, who], self.dose[s, who], self.period_start[s, who], stop_day)
        self.last_stop[s, who] = stop_day

    def stop(self, s: int, who: np.ndarray, day: np.ndarray | int) -> None:
        day = np.broadcast_to(np.asarray(day, dtype=np.int32), who.shape)
        active = self.med[s, who] >= 0
        who, day = who[active], day[active]
        if who.size == 0:
            return
        day = np.maximum(day, self.period_start[s, who])
        self._close(s, who, day)
        self.med[s, who] = -1

    def stop_mask(self, key: str, mask: np.ndarray, t: int, u: np.ndarray | None = None) -> None:
        who = np.flatnonzero(mask & self.on(key))
        if who.size:
            uu = self.rng.random(who.size) if u is None else u
            self.stop(self.s(key), who, self.grid.days_in(t, uu))

    def stop_everything(self, who: np.ndarray, day: np.ndarray) -> None:
        """Close every open period at ``day`` (death or deregistration)."""
        for s in range(len(self.table.slots)):
            active = self.med[s, who] >= 0
            if active.any():
                w = who[active]
                self._close(s, w, np.maximum(day[active], self.period_start[s, w]))
                self.med[s, w] = -1

    def open_periods(self) -> None:
        """Write the periods still open at the end of the window (stop = null)."""
        for s in range(len(self.table.slots)):
            who = np.flatnonzero(self.med[s] >= 0)
            self._close(s, who, np.full(who.size, NO_DATE, dtype=np.int32))

    def _open(
        self,
        s: int,
        who: np.ndarray,
        medicine: np.ndarray,
        dose: np.ndarray,
        day: np.ndarray,
        new_course: bool,
    ) -> None:
        self.med[s, who] = medicine
        self.dose[s, who] = dose
        self.period_start[s, who] = day
        if new_course:
            self.since[s, who] = day
            self.ever[s, who] = True

    # ------------------------------------------------------------------ starting
    def start(
        self, w: World, s: int, who: np.ndarray, day: np.ndarray, medicine: np.ndarray | None = None
    ) -> None:
        """Start slot ``s`` for patients ``who`` (not on it) on ``day``, choosing a medicine unless given."""
        keep = self.med[s, who] < 0
        who, day = who[keep], day[keep]
        day = np.maximum(day, self.last_stop[s, who] + 1)  # never overlap the slot's previous period
        if who.size == 0:
            return
        if medicine is None:
            medicine = self.choose(w, s, who)
        else:
            medicine = medicine[keep] if np.ndim(medicine) else np.full(who.size, medicine, dtype=np.int16)
        slot = self.table.slots[s]
        before = {i: self._on_index_class(i, who) for i in range(len(PLANTED_CASCADES))}
        for other in slot.replaces:
            o = self.s(other)
            replacing = self.med[o, who] >= 0
            day = np.where(replacing, np.maximum(day, self.period_start[o, who] + 1), day).astype(np.int32)
            self.stop(o, who, day - 1)
        self._open(s, who, medicine, self.starting_dose(w, s, who, medicine), day, new_course=True)
        self._after_start(w, s, who, day, before)

    def _after_start(
        self, w: World, s: int, who: np.ndarray, day: np.ndarray, before: dict[int, np.ndarray]
    ) -> None:
        slot = self.table.slots[s]
        for companion, probability in slot.companions:
            pick = self.rng.random(who.size) < probability
            self.start(w, self.s(companion), who[pick], day[pick])
        self._companion_rules(w, slot.key, who, day)
        self._plant_cascades(s, who, day, before)
        w.on_prescription_start(slot.key, who, day)

    def _plant_cascades(
        self, s: int, who: np.ndarray, day: np.ndarray, before: dict[int, np.ndarray]
    ) -> None:
        """A new start of an index class schedules the marker drug with the planted probability."""
        for i, cascade in enumerate(PLANTED_CASCADES):
            newly = self._cascade_index[i][self.med[s, who] + 1] & ~before[i]
            fire = (
                newly
                & (self.rng.random(who.size) < cascade.excess_probability)
                & (self.pending[who, i] == NO_DATE)
            )
            if fire.any():
                delay = self.rng.integers(MIN_DELAY_DAYS, cascade.window_days + 1, size=int(fire.sum()))
                self.pending[who[fire], i] = day[fire] + delay

    def _on_index_class(self, i: int, who: np.ndarray) -> np.ndarray:
        member = self._cascade_index[i]
        out = np.zeros(who.size, dtype=bool)
        for s in self.table.slots_holding(PLANTED_CASCADES[i].index_class):
            out |= member[self.med[s, who] + 1]
        return out

    def _companion_rules(self, w: World, key: str, who: np.ndarray, day: np.ndarray) -> None:
        """Co-prescriptions started the same day (not cascades: same-day starts carry no order)."""
        if key == "nsaid":
            # NICE CKS NSAIDs / PINCER: gastroprotection for 65+; in practice about two thirds get it.
            p = np.where(w.age[who] >= 65, 0.55, 0.2)
            pick = self.rng.random(who.size) < p
            self.start(w, self.s("proton_pump_inhibitor"), who[pick], day[pick])
        elif key == "dmard":
            methotrexate = self.table.member("methotrexate")[self.med[self.s("dmard"), who] + 1]
            pick = methotrexate & (self.rng.random(who.size) < 0.95)
            self.start(w, self.s("folic_acid"), who[pick], day[pick])
        elif key == "weak_opioid":
            pick = self.rng.random(who.size) < np.where(w.age[who] >= 65, 0.3, 0.1)
            self.start(w, self.s("laxative"), who[pick], day[pick])

    def choose(self, w: World, s: int, who: np.ndarray) -> np.ndarray:
        slot = self.table.slots[s]
        weights = np.broadcast_to(self.table.weights[s], (who.size, self.table.count[s])).copy()
        _adjust_weights(self, w, slot.key, who, weights)
        tags = self.table.tag_of[self.table.first[s] + 1 : self.table.first[s] + self.table.count[s] + 1]
        for tag_value in set(tags.tolist()) - {0}:
            conflict = (self.table.tag_of[self.med[:, who] + 1] == tag_value).any(axis=0)
            weights[np.ix_(conflict, tags == tag_value)] = 0.0
        total = weights.sum(axis=1, keepdims=True)
        empty = total[:, 0] <= 0
        weights[empty] = self.table.weights[s]
        cumulative = np.cumsum(weights / weights.sum(axis=1, keepdims=True), axis=1)
        u = self.rng.random(who.size)
        choice = (u[:, None] > cumulative).sum(axis=1).clip(0, self.table.count[s] - 1)
        return (self.table.first[s] + choice).astype(np.int16)

    def starting_dose(self, w: World, s: int, who: np.ndarray, medicine: np.ndarray) -> np.ndarray:
        dose = self.table.start_dose[medicine].copy()
        key = self.table.slots[s].key
        if key == "anticoagulant":
            # DOAC dose reduction (SmPCs: apixaban >= 80 y with renal impairment, edoxaban/rivaroxaban CrCl < 50);
            # applied imperfectly (about 80%), as audits of DOAC dosing find.
            reduce = ((w.egfr[who] < 50) | (w.age[who] >= 80)) & (self.rng.random(who.size) < 0.8)
            dose = np.where(reduce & (self.table.dose_count[medicine] > 1), 0, dose)
        elif key == "statin":
            secondary = w.any_of(
                (
                    "ischaemic_heart_disease",
                    "myocardial_infarction",
                    "stroke_tia",
                    "peripheral_arterial_disease",
                )
            )[who]
            atorva = medicine == self.table.medicine_of("statin", "atorvastatin")
            dose = np.where(
                secondary & atorva, 3, dose
            )  # NICE NG238: atorvastatin 80 mg for secondary prevention
        elif key == "levothyroxine":
            dose = np.clip(w.physiology.thyroid_requirement[who] - 1, 0, 5)
        return np.minimum(dose, self.table.dose_count[medicine] - 1).astype(np.int8)

    # ------------------------------------------------------------------ switching and titration
    def switch(self, w: World, s: int, who: np.ndarray, day: np.ndarray) -> None:
        who = who[self.med[s, who] >= 0]
        if who.size == 0 or self.table.count[s] < 2:
            return
        current = self.med[s, who]
        new = self.choose(w, s, who)
        same = new == current
        if same.any():
            alternative = self.table.first[s] + (new[same] - self.table.first[s] + 1) % self.table.count[s]
            new[same] = alternative.astype(np.int16)
        later = day > self.period_start[s, who]
        who, day, new = who[later], day[later], new[later]
        before = {i: self._on_index_class(i, who) for i in range(len(PLANTED_CASCADES))}
        self._close(s, who, day - 1)
        self._open(s, who, new, self.table.start_dose[new], day, new_course=False)
        self._plant_cascades(s, who, day, before)

    def titrate(self, s: int, who: np.ndarray, day: np.ndarray | int, step: np.ndarray | int) -> None:
        """Move the dose one step (a new period from ``day``); patients at the end of the range keep theirs."""
        day = np.broadcast_to(np.asarray(day, dtype=np.int32), who.shape)
        step = np.broadcast_to(np.asarray(step), who.shape)
        active = self.med[s, who] >= 0
        who, day, step = who[active], day[active], step[active]
        current = self.dose[s, who]
        new = np.clip(current + step, 0, self.table.dose_count[self.med[s, who]] - 1)
        change = (new != current) & (day > self.period_start[s, who])
        who, new, day = who[change], new[change], day[change]
        if who.size == 0:
            return
        self._close(s, who, day - 1)
        self._open(s, who, self.med[s, who], new.astype(np.int8), day, new_course=False)

    # ------------------------------------------------------------------ the start of the window
    def baseline(self, w: World) -> None:
        """Treatment already in place on the first day of the window, with start dates in the past."""
        first = self.grid.first_day
        for s, slot in enumerate(self.table.slots):
            rule = self._indications.get(slot.key)
            if rule is None:
                continue
            share = rule.baseline(self, w)
            pick = np.flatnonzero((self.rng.random(self.n) < share) & (self.med[s] < 0) & w.alive)
            if pick.size == 0:
                continue
            indicated_since = np.maximum(rule.since(self, w)[pick], w.birth_day[pick] + 18 * 365)
            earliest = np.maximum(indicated_since, first - 12 * 365)
            earliest = np.maximum(earliest, self._latest_prerequisite(slot.key, pick))
            span = np.maximum(first - 1 - earliest, 0)
            day = (earliest + np.floor(self.rng.random(pick.size) * (span + 1))).astype(np.int32)
            day = np.minimum(day, first - 1)
            self.start(w, s, pick, day)
            dose_pick = self.rng.random(pick.size) < 0.45
            self.dose[s, pick[dose_pick]] = np.minimum(
                self.dose[s, pick[dose_pick]] + 1, self.table.dose_count[self.med[s, pick[dose_pick]]] - 1
            )
        self.pending[:] = NO_DATE  # cascades are planted in the window only
        u = self.rng.random(self.n)
        self.next_review = (first + np.floor(u * 365 * w.physiology.overdue_factor)).astype(np.int32)

    def _latest_prerequisite(self, key: str, who: np.ndarray) -> np.ndarray:
        prerequisites = PREREQUISITES.get(key, ())
        latest = np.full(who.size, -(10**6), dtype=np.int64)
        for other in prerequisites:
            s = self.s(other)
            on = self.med[s, who] >= 0
            latest = np.where(on, np.maximum(latest, self.since[s, who]), latest)
        return latest

    # ------------------------------------------------------------------ a month
    def acute_courses(self, w: World, t: int) -> AcuteExposure:
        n = self.n
        first_day = np.full(n, NO_DATE, dtype=np.int32)
        exposure = {name: np.zeros(n, dtype=bool) for name in self._acute_classes}
        rates = _acute_rates(self, w)
        for key, rate in rates.items():
            i = self.table.acute_index[key]
            who = np.flatnonzero((self.rng.random(n) < rate) & w.alive)
            if who.size == 0:
                continue
            day = self.grid.days_in(t, self.rng.random(who.size))
            self.log.add_acute(who, i, day)
            for name, member in self._acute_classes.items():
                if member[i]:
                    exposure[name][who] = True
            first_day[who] = np.where(first_day[who] == NO_DATE, day, np.minimum(first_day[who], day))
        return AcuteExposure(first_day=first_day, **exposure)

    def month(self, w: World, t: int) -> None:
        """Stops, switches, dose changes and starts of month ``t`` (after this month's tests)."""
        grid, rng = self.grid, self.rng
        alive = w.alive
        self._lab_driven_changes(w, t)
        for s, slot in enumerate(self.table.slots):
            active = np.flatnonzero((self.med[s] >= 0) & alive)
            stopped = np.full(self.n, grid.starts[t] - 1, dtype=np.int32)
            if active.size:
                stop_p = slot.stop * _stop_multiplier(self, w, slot.key)
                stop_p = stop_p[active] if np.ndim(stop_p) else stop_p
                u = rng.random(active.size)
                stopping = u < stop_p
                switching = ~stopping & (u < stop_p + slot.switch)
                titrating = ~stopping & ~switching & (u < stop_p + slot.switch + slot.titrate)
                for mask, action in ((stopping, "stop"), (switching, "switch"), (titrating, "titrate")):
                    if not mask.any():
                        continue
                    idx = active[mask]
                    day = grid.days_in(t, rng.random(idx.size))
                    if action == "stop":
                        self.stop(s, idx, day)
                        stopped[idx] = day
                    elif action == "switch":
                        self.switch(w, s, idx, day)
                    else:
                        up = rng.random(idx.size) < slot.titrate_up
                        self.titrate(s, idx, day, np.where(up, 1, -1))
            rule = self._indications.get(slot.key)
            if rule is None:
                continue
            p = rule.start(self, w)
            candidates = np.flatnonzero((p > 0) & (self.med[s] < 0) & alive & (stopped < grid.ends[t]))
            starting = candidates[rng.random(candidates.size) < p[candidates]]
            if starting.size:
                # A restart follows this month's stop; a step-up follows the test that prompted it.
                after = np.maximum(stopped[starting] + 1, w.trigger_day.get(slot.key, stopped)[starting])
                self.start(w, s, starting, grid.days_between(after, t, rng.random(starting.size)))
        self._dependent_stops(w, t)
        self._due_cascades(w, t)

    def _lab_driven_changes(self, w: World, t: int) -> None:
        """Dose changes and stops that follow this month's test results."""
        rng = self.rng
        tsh = w.tested_value("tsh")
        levo = self.s("levothyroxine")
        day = w.test_day("tsh")
        high = np.flatnonzero((tsh > 4.5) & (self.med[levo] >= 0) & (rng.random(self.n) < 0.7))
        low = np.flatnonzero((tsh < 0.3) & (self.med[levo] >= 0) & (rng.random(self.n) < 0.6))
        self.titrate(levo, high, self.grid.days_between(day[high], t, rng.random(high.size)), 1)
        self.titrate(levo, low, self.grid.days_between(day[low], t, rng.random(low.size)), -1)
        for ids in (high, low):
            w.schedule(
                "tsh", ids, self.grid.ends[t] + 90
            )  # NICE NG145: recheck TSH 3 months after a dose change
        egfr = w.tested_value("egfr")
        potassium = w.tested_value("potassium")
        self.stop_mask("metformin", (egfr < 30) & (rng.random(self.n) < 0.6), t)
        self.stop_mask("nsaid", (egfr < 30) & (rng.random(self.n) < 0.3), t)
        self.stop_mask("mineralocorticoid_antagonist", (potassium > 5.5) & (rng.random(self.n) < 0.6), t)
        hba1c = w.tested_value("hba1c")
        poorly_controlled = np.flatnonzero(
            (hba1c >= HBA1C_INTENSIFY) & self.on("metformin") & (rng.random(self.n) < 0.2)
        )
        self.titrate(
            self.s("metformin"),
            poorly_controlled,
            self.grid.days_between(
                w.test_day("hba1c")[poorly_controlled], t, rng.random(poorly_controlled.size)
            ),
            1,
        )
        bp = w.tested_value("systolic_bp")
        uncontrolled = (bp > w.bp_target) & w.has("hypertension")
        for key in ("renin_angiotensin", "dihydropyridine"):
            idx = np.flatnonzero(uncontrolled & self.on(key) & (rng.random(self.n) < 0.2))
            self.titrate(
                self.s(key), idx, self.grid.days_between(w.test_day("bp")[idx], t, rng.random(idx.size)), 1
            )

    def _dependent_stops(self, w: World, t: int) -> None:
        # Folic acid goes with methotrexate; an ICS/LABA replaces the ICS (done at start).
        methotrexate = self.table.member("methotrexate")[self.med[self.s("dmard")] + 1]
        self.stop_mask("folic_acid", ~methotrexate, t)

    def _due_cascades(self, w: World, t: int) -> None:
        for i, cascade in enumerate(PLANTED_CASCADES):
            due = self.pending[:, i]
            who = np.flatnonzero((due >= self.grid.starts[t]) & (due <= self.grid.ends[t]))
            if who.size == 0:
                continue
            day = due[who]
            self.pending[who, i] = NO_DATE
            who, day = who[w.alive[who]], day[w.alive[who]]
            if cascade.marker.startswith("acute:"):
                self.log.add_acute(who, self.table.acute_index[cascade.marker.removeprefix("acute:")], day)
            else:
                medicine = self.table.medicine_of(cascade.marker, CASCADE_MARKER_MEDICINE[cascade.marker])
                self.start(w, self.s(cascade.marker), who, day, np.full(who.size, medicine, dtype=np.int16))
            # Events after the window end are simply not realised.

    # ------------------------------------------------------------------ harm and review
    def after_harm(
        self, w: World, t: int, gi_bleed: np.ndarray, aki: np.ndarray, hypo: np.ndarray, day: np.ndarray
    ) -> None:
        """Withdraw the likely culprits after a harm event (dated the day of the event)."""
        rng = self.rng
        for key, mask in (("nsaid", gi_bleed | (aki & (rng.random(self.n) < 0.9))),):
            idx = np.flatnonzero(mask & self.on(key))
            self.stop(self.s(key), idx, day[idx])
        su_slots = [s for s in (self.s("diabetes_second_line"), self.s("diabetes_third_line"))]
        sulfonylurea = self.table.member("sulfonylurea")
        for s in su_slots:
            idx = np.flatnonzero(hypo & sulfonylurea[self.med[s] + 1] & (rng.random(self.n) < 0.5))
            self.stop(s, idx, day[idx])
        insulin = self.s("basal_insulin")
        idx = np.flatnonzero(hypo & (self.med[insulin] >= 0) & (rng.random(self.n) < 0.5))
        self.titrate(insulin, idx, day[idx], -1)

    def review(self, w: World, t: int) -> np.ndarray:
        """Structured/annual medication reviews due this month; returns (patients, days) and deprescribes."""
        grid, rng = self.grid, self.rng
        on_repeat = (self.med >= 0).any(axis=0)
        due = (self.next_review <= grid.ends[t]) & w.alive & on_repeat
        who = np.flatnonzero(due)
        day = grid.days_between(self.next_review[who], t, rng.random(who.size))
        interval = (
            REVIEW_INTERVAL_MONTHS
            * 30.4
            * w.physiology.overdue_factor[who]
            * rng.uniform(0.85, 1.25, who.size)
        )
        self.next_review[who] = (day + interval).astype(np.int32)
        idle = ~on_repeat & (self.next_review <= grid.ends[t])
        self.next_review[idle] = grid.ends[t] + 30
        if who.size == 0:
            return np.empty((2, 0), dtype=np.int32)
        older = w.age[who] >= 65
        unprotected_need = ~_ppi_indicated(self, w)[who]
        ppi = self.s("proton_pump_inhibitor")
        ppi_long = (self.med[ppi, who] >= 0) & (self.since[ppi, who] < day - 56)
        decisions = (
            ("proton_pump_inhibitor", ppi_long & unprotected_need, 0.25),  # NICE CG184: step down / stop PPIs
            ("hypnotic", older, 0.15),  # STOPP v3 D: benzodiazepines/Z-drugs >= 4 weeks
            ("anxiolytic", older, 0.15),
            ("nsaid", older, 0.25),
            (
                "antipsychotic",
                w.has("dementia")[who] & ~w.any_of(("schizophrenia", "bipolar_disorder"))[who],
                0.2,
            ),
            ("bladder_antimuscarinic", w.has("dementia")[who], 0.2),
        )
        for key, mask, probability in decisions:
            s = self.s(key)
            pick = mask & (self.med[s, who] >= 0) & (rng.random(who.size) < probability)
            self.stop(s, who[pick], day[pick])
        return np.vstack([who, day]).astype(np.int32)


# ====================================================================== indication rules
@dataclass(frozen=True)
class Indication:
    start: Callable[[Prescriber, World], np.ndarray]
    baseline: Callable[[Prescriber, World], np.ndarray]
    since: Callable[[Prescriber, World], np.ndarray]
    """Day from which the patient was indicated (for baseline start dates)."""


# Slots whose baseline start must follow another slot's (treatment escalation).
PREREQUISITES: dict[str, tuple[str, ...]] = {
    "thiazide": ("renin_angiotensin", "dihydropyridine"),
    "mineralocorticoid_antagonist": ("thiazide",),
    "alpha_blocker_antihypertensive": ("thiazide",),
    "diabetes_second_line": ("metformin",),
    "diabetes_third_line": ("diabetes_second_line",),
    "ics_laba_inhaler": ("inhaled_corticosteroid",),
}


def _indication_rules() -> dict[str, Indication]:
    rules: dict[str, Indication] = {}

    def simple(
        key: str, spec: tuple[tuple[str | tuple[str, ...], float, float], ...], extra: Callable | None = None
    ) -> None:
        """Start/baseline from (conditions, monthly start probability, baseline share) rows; the max applies."""

        def start(p: Prescriber, w: World) -> np.ndarray:
            out = np.zeros(p.n)
            for conditions, rate, _ in spec:
                out = np.maximum(out, np.where(w.any_of(_keys(conditions)), rate, 0.0))
            return extra(p, w, out, "start") if extra else out

        def baseline(p: Prescriber, w: World) -> np.ndarray:
            out = np.zeros(p.n)
            for conditions, _, share in spec:
                out = np.maximum(out, np.where(w.any_of(_keys(conditions)), share, 0.0))
            return extra(p, w, out, "baseline") if extra else out

        def since(p: Prescriber, w: World) -> np.ndarray:
            return w.earliest_onset(tuple(k for conditions, _, _ in spec for k in _keys(conditions)))

        rules[key] = Indication(start, baseline, since)

    # Hypertension steps (and other indications of the same drugs).
    for key in HTN_SLOTS:
        rules[key] = Indication(
            start=lambda p, w, key=key: np.maximum(
                _htn_step(p, w, key, "start"), _other_cardiac(p, w, key, "start")
            ),
            baseline=lambda p, w, key=key: np.maximum(
                _htn_step(p, w, key, "baseline"), _other_cardiac(p, w, key, "baseline")
            ),
            since=lambda p, w, key=key: w.earliest_onset(
                ("hypertension", "heart_failure", "ischaemic_heart_disease", "type2_diabetes")
            ),
        )
    simple(
        "beta_blocker",
        (
            ("heart_failure", 0.12, 0.75),
            ("atrial_fibrillation", 0.2, 0.6),
            (("ischaemic_heart_disease", "myocardial_infarction"), 0.03, 0.4),
        ),
    )
    simple("loop_diuretic", (("heart_failure", 0.3, 0.85),), extra=_background_oedema)
    rules["anticoagulant"] = Indication(
        _anticoagulant_start,
        _anticoagulant_baseline,
        lambda p, w: w.earliest_onset(("atrial_fibrillation", "venous_thromboembolism")),
    )
    rules["antiplatelet"] = Indication(
        _antiplatelet("start"),
        _antiplatelet("baseline"),
        lambda p, w: w.earliest_onset(CVD + ("type2_diabetes",)),
    )
    rules["statin"] = Indication(
        _statin("start"),
        _statin("baseline"),
        lambda p, w: w.earliest_onset(CVD + ("type2_diabetes", "hyperlipidaemia", "hypertension")),
    )
    simple("nitrate", ((("ischaemic_heart_disease", "myocardial_infarction"), 0.03, 0.25),))
    simple("digoxin", (), extra=_digoxin)
    for key in DIABETES_SLOTS:
        rules[key] = Indication(
            start=lambda p, w, key=key: _diabetes_step(p, w, key, "start"),
            baseline=lambda p, w, key=key: _diabetes_step(p, w, key, "baseline"),
            since=lambda p, w: w.earliest_onset(("type2_diabetes", "type1_diabetes")),
        )
    simple("bolus_insulin", (("type1_diabetes", 0.9, 0.95),))
    simple("heart_failure_sglt2", (("heart_failure", 0.015, 0.2),), extra=_no_sglt2_and_egfr_20)
    simple("reliever_inhaler", ((("asthma", "copd"), 0.5, 0.92),))
    simple("inhaled_corticosteroid", (("asthma", 0.03, 0.55),), extra=_not_on_ics_laba)
    rules["ics_laba_inhaler"] = Indication(
        _ics_laba("start"), _ics_laba("baseline"), lambda p, w: w.earliest_onset(("asthma", "copd"))
    )
    simple("long_acting_antimuscarinic", (("copd", 0.05, 0.6),))
    simple("montelukast", (), extra=_montelukast)
    simple("mucolytic", (("copd", 0.004, 0.15),))
    simple(
        "antidepressant",
        (("depression", 0.06, 0.55), ("anxiety", 0.015, 0.3)),
        extra=_restart_less_often("antidepressant"),
    )
    simple("hypnotic", (("insomnia", 0.04, 0.35),), extra=_restart_less_often("hypnotic"))
    simple(
        "anxiolytic",
        (("anxiety", 0.008, 0.07), ("alcohol_misuse", 0.004, 0.04)),
        extra=_restart_less_often("anxiolytic"),
    )
    simple("antipsychotic", ((("schizophrenia", "bipolar_disorder"), 0.3, 0.85), ("dementia", 0.006, 0.07)))
    simple("lithium", (("bipolar_disorder", 0.02, 0.3),))
    simple("cholinesterase_inhibitor", (("dementia", 0.04, 0.45),))
    simple("memantine", (), extra=_memantine)
    simple("antiparkinson", (("parkinsons", 0.3, 0.92),))
    simple("antiepileptic", (("epilepsy", 0.5, 0.85),))
    simple("triptan", (("migraine", 0.02, 0.25),))
    simple("glaucoma_drops", (("glaucoma", 0.3, 0.85),))
    simple(
        "paracetamol",
        ((("osteoarthritis", "chronic_pain", "rheumatoid_arthritis"), 0.02, 0.45),),
        extra=_older_osteoarthritis,
    )
    simple("weak_opioid", ((("chronic_pain", "osteoarthritis"), 0.008, 0.16), ("cancer", 0.01, 0.1)))
    simple("strong_opioid", (("cancer", 0.008, 0.1),), extra=_strong_opioid)
    simple(
        "nsaid",
        ((("osteoarthritis", "rheumatoid_arthritis", "chronic_pain", "gout"), 0.006, 0.09),),
        extra=_nsaid_caution,
    )
    simple("gabapentinoid", (("chronic_pain", 0.006, 0.10),), extra=_diabetic_neuropathy)
    simple("low_dose_amitriptyline", ((("chronic_pain", "migraine"), 0.004, 0.06),), extra=_halve_at(75))
    rules["proton_pump_inhibitor"] = Indication(
        _ppi("start"),
        _ppi("baseline"),
        lambda p, w: w.earliest_onset(("gord", "peptic_ulcer", "gi_bleed_history")),
    )
    simple("dmard", (("rheumatoid_arthritis", 0.2, 0.75),))
    simple("folic_acid", (), extra=_folic_acid_baseline)
    simple("oral_corticosteroid", (("rheumatoid_arthritis", 0.01, 0.12), ("copd", 0.002, 0.03)))
    simple("allopurinol", (("gout", 0.02, 0.45),))
    simple("bisphosphonate", (("osteoporosis", 0.05, 0.5),))
    simple("calcium_vitamin_d", (("osteoporosis", 0.0, 0.55),), extra=_care_home_vitamin_d)
    simple("levothyroxine", (("hypothyroidism", 0.5, 0.96),))
    simple("bladder_antimuscarinic", (("urinary_incontinence", 0.03, 0.3),))
    simple("mirabegron", (), extra=_mirabegron)
    simple("prostate", (("prostatic_hyperplasia", 0.05, 0.6),))
    simple(
        "laxative", (("chronic_constipation", 0.1, 0.55), ("parkinsons", 0.01, 0.3)), extra=_older_laxative
    )
    simple("iron", (("anaemia", 0.08, 0.3),))
    simple("vitamin_b12", (("anaemia", 0.01, 0.15),), extra=_older_b12)
    simple("vestibular", (("dizziness", 0.03, 0.3),))
    simple("uti_prophylaxis", (("recurrent_uti", 0.03, 0.3),))
    simple("antihistamine", (), extra=_background_antihistamine)
    return rules


HTN_SLOTS = (
    "renin_angiotensin",
    "dihydropyridine",
    "thiazide",
    "mineralocorticoid_antagonist",
    "alpha_blocker_antihypertensive",
)
DIABETES_SLOTS = ("metformin", "diabetes_second_line", "diabetes_third_line", "basal_insulin")
DIABETES_LOWERING = (11.0, 9.0, 8.0, 15.0)
"""HbA1c lowering (mmol/mol) of each diabetes step: metformin about 1% (11 mmol/mol), add-ons 0.5-1%, insulin more
(NICE NG28 evidence reviews); used for the latent HbA1c in physiology."""
CVD = ("ischaemic_heart_disease", "myocardial_infarction", "stroke_tia", "peripheral_arterial_disease")


def _keys(conditions: str | tuple[str, ...]) -> tuple[str, ...]:
    return (conditions,) if isinstance(conditions, str) else conditions


def _htn_positions(p: Prescriber, w: World) -> dict[str, np.ndarray]:
    """Step number of each hypertension slot for each patient (NICE NG136 order)."""
    ccb_first = ((w.age >= 55) | w.black) & ~w.has("type2_diabetes")
    # NICE NG136 step 4: spironolactone if potassium <= 4.5 mmol/L; in practice about half get an alpha- or
    # beta-blocker instead (a fixed preference per patient).
    spironolactone = (w.potassium <= 4.5) & (w.egfr >= 30) & (w.step4_preference < 0.5)
    return {
        "renin_angiotensin": np.where(ccb_first, 2, 1),
        "dihydropyridine": np.where(ccb_first, 1, 2),
        "thiazide": np.full(p.n, 3),
        "mineralocorticoid_antagonist": np.where(spironolactone, 4, 99),
        "alpha_blocker_antihypertensive": np.where(spironolactone, 99, 4),
    }


def _htn_step(p: Prescriber, w: World, key: str, mode: str) -> np.ndarray:
    positions = _htn_positions(p, w)
    position = positions[key]
    hypertensive = w.has("hypertension")
    if mode == "baseline":
        return np.where(hypertensive & (position <= w.htn_baseline_steps), 1.0, 0.0)
    on = {k: p.on(k) for k in positions}
    earlier_done = np.ones(p.n, dtype=bool)
    for other, other_position in positions.items():
        earlier_done &= ~(other_position < position) | on[other]
    uncontrolled = w.tested_value("systolic_bp") > w.bp_target
    return np.where(hypertensive & earlier_done & uncontrolled & (position < 99), HTN_STEP_PROBABILITY, 0.0)


def _other_cardiac(p: Prescriber, w: World, key: str, mode: str) -> np.ndarray:
    """ACE inhibitor/ARB for heart failure, IHD and diabetic kidney disease; MRA for heart failure (NICE NG106)."""
    out = np.zeros(p.n)
    start = mode == "start"
    if key == "renin_angiotensin":
        out = np.maximum(out, np.where(w.has("heart_failure"), 0.15 if start else 0.8, 0.0))
        out = np.maximum(
            out,
            np.where(
                w.any_of(("ischaemic_heart_disease", "myocardial_infarction")), 0.02 if start else 0.5, 0.0
            ),
        )
        out = np.maximum(out, np.where(w.has("type2_diabetes") & w.has("ckd"), 0.03 if start else 0.6, 0.0))
    elif key == "mineralocorticoid_antagonist":
        out = np.where(w.has("heart_failure") & (w.egfr >= 30), 0.04 if start else 0.35, 0.0)
    elif key == "dihydropyridine":
        out = np.where(w.has("ischaemic_heart_disease"), 0.004 if start else 0.08, 0.0)
    return out


def _background_oedema(p: Prescriber, w: World, out: np.ndarray, mode: str) -> np.ndarray:
    # Loop diuretics for oedema of other causes (venous insufficiency, hypoalbuminaemia) in older people; these
    # starts are independent of any other drug and form the background against which the CCB cascade is seen.
    older = w.age >= 65
    return np.maximum(out, np.where(older, 0.0008 if mode == "start" else 0.03, 0.0))


def _cha2ds2_vasc(w: World) -> np.ndarray:
    """CHA2DS2-VASc (Lip GYH et al. Chest 2010;137:263-72)."""
    score = (
        w.has("heart_failure").astype(int)
        + w.has("hypertension")
        + 2 * (w.age >= 75)
        + w.has("type2_diabetes")
        + w.has("type1_diabetes")
        + 2 * w.has("stroke_tia")
        + w.any_of(("ischaemic_heart_disease", "myocardial_infarction", "peripheral_arterial_disease"))
        + ((w.age >= 65) & (w.age < 75))
        + ~w.male
    )
    return score


def _anticoagulant_start(p: Prescriber, w: World) -> np.ndarray:
    score = _cha2ds2_vasc(w)
    af = w.has("atrial_fibrillation")
    out = np.where(af & (score >= 2), 0.25, np.where(af & (score == 1) & w.male, 0.05, 0.0))
    recent_vte = w.has("venous_thromboembolism") & (w.onset("venous_thromboembolism") >= w.month_start - 31)
    return np.maximum(out, np.where(recent_vte, 0.9, 0.0))


def _anticoagulant_baseline(p: Prescriber, w: World) -> np.ndarray:
    score = _cha2ds2_vasc(w)
    af = w.has("atrial_fibrillation")
    out = np.where(af & (score >= 2), 0.85, np.where(af & (score == 1) & w.male, 0.4, 0.0))
    vte = w.has("venous_thromboembolism")
    recent = w.onset("venous_thromboembolism") >= w.month_start - 182
    return np.maximum(out, np.where(vte & recent, 0.9, np.where(vte, 0.15, 0.0)))


def _antiplatelet(mode: str) -> Callable[[Prescriber, World], np.ndarray]:
    def rule(p: Prescriber, w: World) -> np.ndarray:
        cvd = w.any_of(CVD)
        anticoagulated = p.on("anticoagulant")
        start = mode == "start"
        out = np.where(cvd & ~anticoagulated, 0.2 if start else 0.8, 0.0)
        out = np.maximum(out, np.where(cvd & anticoagulated, 0.003 if start else 0.12, 0.0))
        # Aspirin for primary prevention in older people with diabetes: historical practice still seen (STOPP v3 A).
        legacy = w.has("type2_diabetes") & ~cvd & (w.age >= 60)
        return np.maximum(out, np.where(legacy, 0.0 if start else 0.08, 0.0))

    return rule


def _statin(mode: str) -> Callable[[Prescriber, World], np.ndarray]:
    def rule(p: Prescriber, w: World) -> np.ndarray:
        start = mode == "start"
        rows = (
            (w.any_of(CVD), 0.15, 0.82),  # NICE NG238 secondary prevention
            (w.has("type2_diabetes") & (w.age >= 40), 0.05, 0.65),
            (w.has("ckd"), 0.03, 0.55),
            (w.has("hyperlipidaemia"), 0.06, 0.6),
            (
                (w.age >= 55) & (w.age < 85) & (w.has("hypertension") | (w.male & (w.age >= 60))),
                0.005,
                0.33,
            ),  # QRISK >= 10% proxy
        )
        out = np.zeros(p.n)
        for mask, rate, share in rows:
            out = np.maximum(out, np.where(mask, rate if start else share, 0.0))
        return out

    return rule


def _digoxin(p: Prescriber, w: World, out: np.ndarray, mode: str) -> np.ndarray:
    af = w.has("atrial_fibrillation")
    start = mode == "start"
    out = np.maximum(out, np.where(af & (w.age >= 75), 0.003 if start else 0.08, 0.0))
    return np.maximum(out, np.where(af & w.has("heart_failure"), 0.01 if start else 0.15, 0.0))


def _diabetes_step(p: Prescriber, w: World, key: str, mode: str) -> np.ndarray:
    t1 = w.has("type1_diabetes")
    t2 = w.has("type2_diabetes")
    position = DIABETES_SLOTS.index(key) + 1
    if mode == "baseline":
        steps = w.diabetes_baseline_steps
        out = np.where(t2 & (position <= steps), 1.0, 0.0)
        if key == "metformin":
            out = np.where(w.egfr < 30, 0.0, out)
        if key == "basal_insulin":
            out = np.where(t1, 1.0, out)
        return out
    hba1c = w.tested_value("hba1c")
    if key == "basal_insulin":
        escalate = t2 & p.on("diabetes_third_line") & (hba1c > HBA1C_INSULIN)
        return np.where(t1, 0.9, np.where(escalate, 0.3, 0.0))
    if key == "metformin":
        return np.where(t2 & (hba1c >= HBA1C_DIAGNOSTIC) & (w.egfr >= 30), 0.5, 0.0)
    previous = DIABETES_SLOTS[position - 2]
    prior_ok = p.on(previous) | ((previous == "metformin") & (w.egfr < 30))
    return np.where(t2 & prior_ok & (hba1c >= HBA1C_INTENSIFY), DIABETES_STEP_PROBABILITY, 0.0)


def _no_sglt2_and_egfr_20(p: Prescriber, w: World, out: np.ndarray, mode: str) -> np.ndarray:
    return np.where(p.on_class("sglt2_inhibitor") | (w.egfr < 20), 0.0, out)


def _ics_laba(mode: str) -> Callable[[Prescriber, World], np.ndarray]:
    def rule(p: Prescriber, w: World) -> np.ndarray:
        start = mode == "start"
        asthma = w.has("asthma") & p.on("inhaled_corticosteroid")
        copd = w.has("copd") & (p.on("long_acting_antimuscarinic") | ~start)
        out = np.where(asthma, 0.008 if start else 0.3, 0.0)
        return np.maximum(out, np.where(copd, 0.01 if start else 0.35, 0.0))

    return rule


def _not_on_ics_laba(p: Prescriber, w: World, out: np.ndarray, mode: str) -> np.ndarray:
    return np.where(p.on("ics_laba_inhaler"), 0.0, out)


def _montelukast(p: Prescriber, w: World, out: np.ndarray, mode: str) -> np.ndarray:
    return np.where(w.has("asthma") & p.on("ics_laba_inhaler"), 0.005 if mode == "start" else 0.12, 0.0)


def _restart_less_often(key: str) -> Callable:
    def rule(p: Prescriber, w: World, out: np.ndarray, mode: str) -> np.ndarray:
        return np.where(p.ever[p.s(key)], out * 0.3, out) if mode == "start" else out

    return rule


def _memantine(p: Prescriber, w: World, out: np.ndarray, mode: str) -> np.ndarray:
    dementia = w.has("dementia") & (p.on("cholinesterase_inhibitor") | (w.age >= 85))
    return np.where(dementia, 0.006 if mode == "start" else 0.18, 0.0)


def _older_osteoarthritis(p: Prescriber, w: World, out: np.ndarray, mode: str) -> np.ndarray:
    out = np.where(w.has("osteoarthritis") & (w.age >= 75), np.minimum(out * 1.5, 1.0), out)
    # Co-codamol already contains paracetamol; duplication still happens occasionally (a reviewable finding).
    out = np.where(p.on("weak_opioid"), out * 0.15, out)
    # Regular paracetamol for the aches of old age without a coded painful condition.
    return np.maximum(out, np.where(w.age >= 75, 0.003 if mode == "start" else 0.18, 0.0))


def _strong_opioid(p: Prescriber, w: World, out: np.ndarray, mode: str) -> np.ndarray:
    start = mode == "start"
    out = np.maximum(out, np.where(w.has("chronic_pain") & (w.age >= 50), 0.0015 if start else 0.05, 0.0))
    return np.maximum(out, np.where(w.has("osteoarthritis") & (w.age >= 75), 0.0008 if start else 0.03, 0.0))


def _nsaid_caution(p: Prescriber, w: World, out: np.ndarray, mode: str) -> np.ndarray:
    # Prescribers avoid NSAIDs in people at risk - but not always. They also avoid them with anticoagulants; that is
    # represented through the conditions that call for anticoagulation, because making an NSAID start depend on
    # another drug would create an unplanned drug-drug ordering.
    return out * _nsaid_caution_factor(w)


def _nsaid_caution_factor(w: World) -> np.ndarray:
    """NSAIDs are prescribed less to older people and to those with CKD, heart failure, CVD or an indication for
    anticoagulation (NICE CKS NSAIDs: prescribing issues) - judged from conditions, not from other drugs."""
    factor = np.ones(w.n)
    factor *= np.where(w.age >= 75, 0.6, 1.0)
    factor *= np.where(w.egfr < 45, 0.5, 1.0)
    factor *= np.where(w.has("heart_failure"), 0.5, 1.0)
    factor *= np.where(w.any_of(("atrial_fibrillation", "venous_thromboembolism")), 0.4, 1.0)
    factor *= np.where(w.any_of(CVD), 0.6, 1.0)
    return factor


def _diabetic_neuropathy(p: Prescriber, w: World, out: np.ndarray, mode: str) -> np.ndarray:
    neuropathy = w.has("type2_diabetes") & (w.age >= 50)
    return np.maximum(out, np.where(neuropathy, 0.0006 if mode == "start" else 0.03, 0.0))


def _halve_at(age: float) -> Callable:
    def rule(p: Prescriber, w: World, out: np.ndarray, mode: str) -> np.ndarray:
        return np.where(w.age >= age, out * 0.5, out)

    return rule


def _ppi_indicated(p: Prescriber, w: World) -> np.ndarray:
    """Gastroprotection or acid disease: what a review would accept as a reason for a long-term PPI."""
    return (
        w.any_of(("gord", "peptic_ulcer", "gi_bleed_history"))
        | p.on("nsaid")
        | (p.on("antiplatelet") & (w.age >= 75))
        | (p.on("antiplatelet") & p.on("anticoagulant"))
        | p.on("oral_corticosteroid")
    )


def _ppi(mode: str) -> Callable[[Prescriber, World], np.ndarray]:
    def rule(p: Prescriber, w: World) -> np.ndarray:
        start = mode == "start"
        rows = (
            (w.has("gord"), 0.1, 0.6),
            (w.has("peptic_ulcer"), 0.05, 0.6),
            # A recorded bleed, and gastroprotection for antithrombotics or steroids, only set who was already on a
            # PPI at the start of the window: during the window a PPI is never started *because of* an event or a
            # drug of another clinical area, which would order otherwise unrelated drugs (README.md).
            (w.has("gi_bleed_history"), 0.0, 0.6),
            (p.on("antiplatelet") & (w.age >= 75), 0.0, 0.4),
            (p.on("antiplatelet") & p.on("anticoagulant"), 0.0, 0.5),
            (p.on("oral_corticosteroid"), 0.0, 0.3),
            (p.on("nsaid"), 0.0, 0.6),
            # Long-term PPI without a recorded indication is common in older people (hence NICE CG184's advice to
            # review and step down at the lowest effective dose).
            (w.age >= 65, 0.0018, 0.18),
            ((w.age >= 50) & (w.age < 65), 0.0008, 0.06),
        )
        out = np.zeros(p.n)
        for mask, rate, share in rows:
            out = np.maximum(out, np.where(mask, rate if start else share, 0.0))
        return out

    return rule


def _folic_acid_baseline(p: Prescriber, w: World, out: np.ndarray, mode: str) -> np.ndarray:
    if mode == "start":
        return out
    methotrexate = p.table.member("methotrexate")[p.med[p.s("dmard")] + 1]
    return np.where(methotrexate, 0.95, 0.0)


def _care_home_vitamin_d(p: Prescriber, w: World, out: np.ndarray, mode: str) -> np.ndarray:
    care_home = w.social_now("care_home") & (w.age >= 75)
    out = np.maximum(out, np.where(care_home, 0.01 if mode == "start" else 0.3, 0.0))
    # Vitamin D (with or without calcium) for older women at risk of falls and fractures (NICE CKS Vitamin D).
    older_woman = ~w.male & (w.age >= 75)
    return np.maximum(out, np.where(older_woman, 0.002 if mode == "start" else 0.15, 0.0))


def _older_b12(p: Prescriber, w: World, out: np.ndarray, mode: str) -> np.ndarray:
    # Vitamin B12 deficiency (pernicious anaemia, metformin, PPIs) rises with age; about 3% of 75+ have injections.
    return np.maximum(out, np.where(w.age >= 70, 0.0003 if mode == "start" else 0.03, 0.0))


def _mirabegron(p: Prescriber, w: World, out: np.ndarray, mode: str) -> np.ndarray:
    return np.where(w.has("urinary_incontinence") & (w.age >= 75), 0.005 if mode == "start" else 0.06, 0.0)


def _older_laxative(p: Prescriber, w: World, out: np.ndarray, mode: str) -> np.ndarray:
    out = np.maximum(out, np.where(w.age >= 75, 0.0015 if mode == "start" else 0.05, 0.0))
    return np.maximum(out, np.where(w.age >= 85, 0.003 if mode == "start" else 0.1, 0.0))


def _background_antihistamine(p: Prescriber, w: World, out: np.ndarray, mode: str) -> np.ndarray:
    adult = w.age >= 16
    return np.where(adult, 0.0015 if mode == "start" else 0.015, 0.0)


def _adjust_weights(p: Prescriber, w: World, key: str, who: np.ndarray, weights: np.ndarray) -> None:
    """Patient-specific preferences among a slot's medicines (NICE and common UK practice)."""
    medicines = p.table.slots[p.s(key)].medicines
    drug = [m.drug for m in medicines]

    def scale(name: str, mask: np.ndarray, factor: float) -> None:
        if name in drug:
            weights[mask, drug.index(name)] *= factor

    age = w.age[who]
    if key == "renin_angiotensin":
        for j, m in enumerate(medicines):
            if m.tag == "arb":
                weights[w.black[who], j] *= (
                    3.0  # NICE NG136: ARB in preference for Black African/Caribbean origin
                )
    elif key == "antiplatelet":
        scale("clopidogrel", w.has("stroke_tia")[who], 4.0)  # NICE TA210: clopidogrel after ischaemic stroke
        scale("aspirin", w.any_of(("ischaemic_heart_disease", "myocardial_infarction"))[who], 2.0)
    elif key in ("diabetes_second_line", "diabetes_third_line"):
        cardiorenal = w.any_of(("ischaemic_heart_disease", "myocardial_infarction", "heart_failure", "ckd"))[
            who
        ]
        for j, m in enumerate(medicines):
            if m.tag == "sglt2_inhibitor":
                weights[cardiorenal, j] *= 2.5  # NICE NG28 (2022): SGLT2 inhibitor with CVD, HF or CKD
                weights[w.egfr[who] < 20, j] = 0.0
            if m.tag == "sulfonylurea":
                weights[age >= 75, j] *= 0.6
    elif key == "antidepressant":
        scale("mirtazapine", age >= 65, 1.8)
        scale("citalopram", age >= 65, 0.7)
    elif key == "antipsychotic":
        dementia_only = (w.has("dementia") & ~w.any_of(("schizophrenia", "bipolar_disorder")))[who]
        scale("risperidone", dementia_only, 3.0)
        scale("quetiapine", dementia_only, 2.0)
        scale("olanzapine", dementia_only, 0.3)
    elif key == "hypnotic":
        scale("temazepam", age >= 65, 0.7)
    elif key == "strong_opioid":
        scale("buprenorphine", age >= 75, 1.5)
    elif key == "antihistamine":
        scale("chlorphenamine", age >= 65, 2.0)


def _stop_multiplier(p: Prescriber, w: World, key: str) -> np.ndarray | float:
    if key == "anticoagulant":
        # VTE without AF: 3-6 months of treatment (NICE NG158), then stop.
        vte_only = w.has("venous_thromboembolism") & ~w.has("atrial_fibrillation")
        long_enough = p.since[p.s("anticoagulant")] < w.month_start - 90
        return np.where(vte_only & long_enough, 75.0, 1.0)
    if key in ("basal_insulin", "bolus_insulin"):
        return np.where(w.has("type1_diabetes"), 0.0, 1.0)
    return 1.0


def _acute_rates(p: Prescriber, w: World) -> dict[str, np.ndarray]:
    """Monthly probability of each acute course (NHSBSA: about 0.5 antibiotic items per person-year, more at the
    extremes of age; short NSAID courses; rescue steroids about once a year in COPD)."""
    age = w.age
    female = ~w.male
    base = np.select([age < 5, age < 15, age < 65, age < 80], [0.06, 0.025, 0.03, 0.045], 0.06)
    base = base + 0.04 * w.has("copd") + 0.01 * w.has("type2_diabetes")
    uti = (0.006 * female * (age >= 16) + 0.05 * w.has("recurrent_uti")) * ~p.on("uti_prophylaxis")
    respiratory = base
    pain = w.any_of(("osteoarthritis", "chronic_pain", "gout"))
    nsaid = np.select([age < 16, age < 65, age < 80], [0.001, 0.008, 0.0035], 0.002) * np.where(
        pain, 2.0, 1.0
    )
    nsaid *= _nsaid_caution_factor(w) / np.where(w.age >= 75, 0.6, 1.0) * ~p.on("nsaid")
    adult = age >= 16
    return {
        "amoxicillin": respiratory * 0.45,
        "doxycycline": respiratory * 0.2 * adult,
        "clarithromycin": respiratory * 0.1,
        "phenoxymethylpenicillin": respiratory * 0.15,
        "flucloxacillin": respiratory * 0.1,
        "nitrofurantoin": uti * 0.6,
        "trimethoprim": uti * 0.4,
        "ibuprofen": nsaid * 0.6,
        "naproxen": nsaid * 0.4,
        # A short course is not given on top of a repeat of the same kind of medicine.
        "prednisolone": (0.06 * w.has("copd") + 0.015 * w.has("asthma")) * ~p.on("oral_corticosteroid"),
        "colchicine": 0.03 * w.has("gout"),
        "co-codamol": 0.004 * adult * ~(p.on("weak_opioid") | p.on("paracetamol")),
        "zopiclone": (0.02 * w.has("insomnia") + 0.001 * adult) * ~p.on("hypnotic"),
        "lansoprazole": 0.002 * adult * ~p.on("proton_pump_inhibitor"),
        "pholcodine": 0.001 * adult,
    }
