"""The month-by-month simulation of a whole population at once (numpy over patients, a loop over months).

Order of work in month ``t`` (README.md, "Timing"):

1. The state at the end of month ``t-1`` is what the practice knows on the first day of month ``t``; the true
   12-month risk of each outcome is computed from it (``synthetic_truth`` for month ``t``).
2. Acute courses of month ``t`` are drawn (antibiotics, short NSAID and steroid courses ...).
3. Events of month ``t`` are drawn from the hazards of that state plus this month's acute exposures; deaths,
   falls, fractures, bleeds, AKI, hypoglycaemia, admissions and A&E attendances get dates within the month.
4. Conditions, social care, tests and prescribing move on (their changes count from month ``t+1``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

import numpy as np

from clinical.vocabulary import ConditionVocabulary, DrugVocabulary
from data_access.sources.synthetic import hazards as hz
from data_access.sources.synthetic import social
from data_access.sources.synthetic.calendar import DAYS_PER_YEAR, NO_DATE, MonthGrid, epoch_day
from data_access.sources.synthetic.conditions import (
    CONDITIONS,
    DERIVED_CONDITIONS,
    FACTORS,
    MI_SHARE_OF_IHD,
    ConditionModel,
)
from data_access.sources.synthetic.demography import (
    ENRICHED_MULTIMORBIDITY_SHIFT,
    ETHNIC_GROUPS,
    Demography,
    Practices,
    make_practices,
    practice_count,
    sample_demography,
)
from data_access.sources.synthetic.physiology import (
    EGFR_CKD_THRESHOLD,
    HYPERTENSIVE_MMHG_PER_DRUG,
    OPPORTUNISTIC_MONTHS,
    PANELS,
    Physiology,
    bp_target,
    ckd_stage,
    creatinine_from_egfr,
)
from data_access.sources.synthetic.prescribing import (
    DIABETES_LOWERING,
    DIABETES_SLOTS,
    HBA1C_DIAGNOSTIC,
    HBA1C_INTENSIFY,
    NEW_NSAID_DAYS,
    AcuteExposure,
    MedicineTable,
    Prescriber,
)

FAR_FUTURE = np.int32(2**31 - 1)
EVENT_TYPES = (
    "emergency_admission",
    "ae_attendance",
    "fall",
    "fracture",
    "gi_bleed",
    "aki",
    "hypoglycaemia",
    "death",
    "medication_review",
)
OUTCOMES = ("emergency_admission", "fall_fracture", "medication_harm", "death")
OBSERVATION_TYPES = tuple(t for types in PANELS.values() for t in types)


@dataclass
class Records:
    """Everything the simulation writes, as lists of array chunks (turned into frames by ``frames.py``)."""

    condition: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=list)
    """(patient, condition index, onset day, code variant)"""
    event: list[tuple[np.ndarray, int, np.ndarray]] = field(default_factory=list)
    observation: list[tuple[np.ndarray, int, np.ndarray, np.ndarray]] = field(default_factory=list)
    social: list[tuple[np.ndarray, int, np.ndarray, np.ndarray]] = field(default_factory=list)
    truth: list[tuple[np.ndarray, int, np.ndarray]] = field(default_factory=list)
    """(patient, month index, risk[n, 4] float32)"""

    def add_event(self, who: np.ndarray, kind: str, day: np.ndarray) -> None:
        if who.size:
            self.event.append((who.astype(np.int32), EVENT_TYPES.index(kind), day.astype(np.int32)))

    def add_observation(self, who: np.ndarray, kind: str, value: np.ndarray, day: np.ndarray) -> None:
        if who.size:
            self.observation.append(
                (
                    who.astype(np.int32),
                    OBSERVATION_TYPES.index(kind),
                    value.astype(np.float64),
                    day.astype(np.int32),
                )
            )


@dataclass
class Simulation:
    """The finished simulation: inputs and records for ``frames.build_frames``."""

    grid: MonthGrid
    practices: Practices
    demography: Demography
    condition_keys: tuple[str, ...]
    table: MedicineTable
    prescriber: Prescriber
    records: Records
    died_day: np.ndarray
    conditions: ConditionVocabulary


class World:
    """Per-patient state shared by the sub-models; attribute arrays are indexed by patient number."""

    def __init__(
        self, n: int, seed: int, start: date, end: date, practices: int | None, enrich_smr: bool
    ) -> None:
        self.rng = np.random.default_rng(seed)
        rng = self.rng
        self.n = n
        self.grid = MonthGrid.spanning(start, end)
        self.practices = make_practices(practice_count(n, practices), rng)
        self.demography = sample_demography(
            n, self.practices, self.grid.first_day, self.grid.last_day, enrich_smr, rng
        )
        d = self.demography
        self.male = d.male
        self.black = np.asarray(ETHNIC_GROUPS)[d.ethnicity] == "Black"
        self.birth_day = d.birth_day
        self.factors = rng.normal(size=(n, len(FACTORS)))
        if enrich_smr:
            self.factors[:, 0] += ENRICHED_MULTIMORBIDITY_SHIFT
        self.condition_model = ConditionModel.build(
            CONDITIONS, self.factors, d.male, d.deprivation, np.asarray(ETHNIC_GROUPS)[d.ethnicity]
        )
        self.social_model = ConditionModel.build(
            social.SOCIAL_SPECS, self.factors, d.male, d.deprivation, np.asarray(ETHNIC_GROUPS)[d.ethnicity]
        )
        self.condition_keys = self.condition_model.keys + DERIVED_CONDITIONS
        self.ci = {k: i for i, k in enumerate(self.condition_keys)}
        self.has_matrix = np.zeros((n, len(self.condition_keys)), dtype=bool)
        self.onset_matrix = np.full((n, len(self.condition_keys)), NO_DATE, dtype=np.int32)
        self.social_on = np.zeros((n, len(social.SOCIAL_KINDS)), dtype=bool)
        self.social_start = np.zeros((n, len(social.SOCIAL_KINDS)), dtype=np.int32)
        self.physiology = Physiology.sample(n, d.male, self.factors, rng)
        self.alive = np.ones(n, dtype=bool)
        self.died_day = np.full(n, NO_DATE, dtype=np.int32)
        self.last_fall_day = np.full(n, NO_DATE, dtype=np.int32)
        self.last_admission_day = np.full(n, NO_DATE, dtype=np.int32)
        self.records = Records()
        self.t = 0
        self.month_start = self.grid.first_day
        self.age = self._age_on(self.grid.first_day)
        self.tests: dict[str, np.ndarray] = {}
        self.test_days: dict[str, np.ndarray] = {}
        self.trigger_day: dict[str, np.ndarray] = {}
        self.next_due = {panel: np.full(n, FAR_FUTURE, dtype=np.int32) for panel in PANELS}
        self.last_bp_uncontrolled = np.zeros(n, dtype=bool)
        self.deficits = np.zeros(n, dtype=np.int16)
        self.step4_preference = rng.random(n)
        conditions = ConditionVocabulary.load()
        self.conditions = conditions
        self._efi_map, self._efi_other = _efi_inputs(conditions, self.condition_keys)
        self._efi_bounds = conditions.efi_categories
        self.table = MedicineTable(DrugVocabulary.load())
        self.prescriber = Prescriber(self.table, n, self.grid, rng)
        self.hazards = hz.HazardModel()

    # ------------------------------------------------------------------ lookups used by the sub-models
    def _age_on(self, day: int) -> np.ndarray:
        return (day - self.birth_day) / DAYS_PER_YEAR

    def has(self, key: str) -> np.ndarray:
        return self.has_matrix[:, self.ci[key]]

    def any_of(self, keys: tuple[str, ...]) -> np.ndarray:
        return self.has_matrix[:, [self.ci[k] for k in keys]].any(axis=1)

    def onset(self, key: str) -> np.ndarray:
        return self.onset_matrix[:, self.ci[key]]

    def earliest_onset(self, keys: tuple[str, ...]) -> np.ndarray:
        if not keys:
            return np.full(self.n, NO_DATE, dtype=np.int32)
        columns = [self.ci[k] for k in keys]
        onsets = np.where(self.has_matrix[:, columns], self.onset_matrix[:, columns], FAR_FUTURE)
        earliest = onsets.min(axis=1)
        return np.where(earliest == FAR_FUTURE, NO_DATE, earliest).astype(np.int32)

    def social_now(self, kind: str) -> np.ndarray:
        return self.social_on[:, social.SOCIAL_KINDS.index(kind)]

    def tested_value(self, kind: str) -> np.ndarray:
        return self.tests.get(kind, self._nan)

    def test_day(self, panel: str) -> np.ndarray:
        return self.test_days.get(panel, self._no_days)

    def schedule(self, panel: str, who: np.ndarray, day: np.ndarray | int) -> None:
        if np.size(who):
            self.next_due[panel][who] = np.minimum(
                self.next_due[panel][who], np.asarray(day, dtype=np.int64).clip(max=FAR_FUTURE)
            )

    def on_prescription_start(self, slot: str, who: np.ndarray, day: np.ndarray) -> None:
        """Monitoring that starting a medicine calls for (NICE NG203: U&E 1-2 weeks after a RAS blocker; NICE
        NG238: ALT within 3 months of a statin; BSR 2017: methotrexate bloods every 2-4 weeks at first)."""
        if day.size == 0 or int(day.max()) < self.grid.first_day:
            return
        recent = day >= self.grid.first_day
        who, day = who[recent], day[recent]
        soon = day + self.rng.integers(7, 22, size=day.size)
        if slot in (
            "renin_angiotensin",
            "mineralocorticoid_antagonist",
            "loop_diuretic",
            "thiazide",
            "lithium",
            "anticoagulant",
        ):
            self.schedule("renal", who, soon)
        if slot == "statin":
            self.schedule("lft", who, day + 90)
        if slot == "anticoagulant":
            warfarin = self.table.member("vitamin_k_antagonist")[
                self.prescriber.med[self.prescriber.s("anticoagulant"), who] + 1
            ]
            self.schedule("inr", who[warfarin], soon[warfarin])
        if slot == "lithium":
            self.schedule("lithium", who, soon)
        if slot == "levothyroxine":
            self.schedule("tsh", who, day + 60)
        if slot == "dmard":
            for panel in ("fbc", "lft", "renal"):
                self.schedule(panel, who, soon)

    # ------------------------------------------------------------------ the start of the window
    def initialise(self) -> None:
        """The state on the first day of the window: prevalent conditions, social care, treatment, test schedule."""
        rng, n = self.rng, self.n
        self._nan = np.full(n, np.nan)
        self._no_days = np.full(n, NO_DATE, dtype=np.int32)
        self._ltc_columns = [
            self.ci[k] for k in self.condition_keys if k in self.conditions.long_term_conditions
        ]
        first = self.grid.first_day
        age = self.age
        model = self.condition_model
        prevalence = model.prevalence_at(age)
        has = rng.random(prevalence.shape) < prevalence
        for c in range(len(model.specs)):
            who = np.flatnonzero(has[:, c])
            onset_age = model.onset_ages(c, who, age[who], prevalence[who, c], rng.random(who.size))
            self._set_condition(
                who, c, (self.birth_day[who] + onset_age * DAYS_PER_YEAR).astype(np.int32), record=True
            )
        self._initial_derived_conditions()
        self._initial_social()
        self.egfr = self.physiology.egfr(age)
        self._initial_treatment_steps()
        self._refresh_latent()
        self.prescriber.baseline(self)
        self._refresh_latent()
        for panel in PANELS:
            interval = self._interval_months(panel)
            finite = np.isfinite(interval)
            phase = rng.random(n) * np.where(finite, interval, 0.0) * 30.4 * self.physiology.overdue_factor
            self.next_due[panel] = (
                np.where(finite, first + phase, FAR_FUTURE)
                .astype(np.int64)
                .clip(max=FAR_FUTURE)
                .astype(np.int32)
            )
        self.last_test = {panel: np.full(n, NO_DATE, dtype=np.int32) for panel in PANELS}
        self.interval_used = {panel: self._interval_months(panel) for panel in PANELS}

    def _set_condition(
        self, who: np.ndarray, c: int, day: np.ndarray, record: bool, variant: np.ndarray | None = None
    ) -> None:
        day = np.broadcast_to(np.asarray(day, dtype=np.int32), who.shape)
        fresh = ~self.has_matrix[who, c]
        who, day = who[fresh], day[fresh]
        variant = None if variant is None else np.asarray(variant)[fresh]
        if who.size == 0:
            return
        self.has_matrix[who, c] = True
        self.onset_matrix[who, c] = day
        if record:
            code = np.zeros(who.size, dtype=np.int8) if variant is None else variant
            self.records.condition.append(
                (who.astype(np.int32), np.full(who.size, c, dtype=np.int16), day.astype(np.int32), code)
            )

    def add_condition(
        self, key: str, who: np.ndarray, day: np.ndarray, variant: np.ndarray | None = None
    ) -> None:
        """Record a new condition for those of ``who`` who do not have it yet."""
        c = self.ci[key]
        new = ~self.has_matrix[who, c]
        self._set_condition(
            who[new], c, day[new], record=True, variant=None if variant is None else variant[new]
        )

    def _initial_derived_conditions(self) -> None:
        rng = self.rng
        ihd = np.flatnonzero(self.has("ischaemic_heart_disease") & (rng.random(self.n) < MI_SHARE_OF_IHD))
        self._set_condition(
            ihd, self.ci["myocardial_infarction"], self.onset("ischaemic_heart_disease")[ihd], record=True
        )
        egfr = self.physiology.egfr(self.age)
        ckd = np.flatnonzero(egfr < EGFR_CKD_THRESHOLD)
        crossed = self.physiology.age_egfr_crosses(EGFR_CKD_THRESHOLD)[ckd]
        onset_age = np.clip(crossed, 18.0, self.age[ckd])
        onset_day = (self.birth_day[ckd] + onset_age * DAYS_PER_YEAR).astype(np.int32)
        # The stage code recorded is the stage at diagnosis (G3a unless eGFR was already lower at age 18).
        stage = ckd_stage(np.full(ckd.size, 59.0))
        self._set_condition(ckd, self.ci["ckd"], onset_day, record=True, variant=stage)

    def _initial_social(self) -> None:
        rng, model = self.rng, self.social_model
        deficits = self._efi_deficits_from_conditions()
        dementia = self.has("dementia")
        extra = np.column_stack([social.modifiers(kind, dementia, deficits) for kind in social.SOCIAL_KINDS])
        prevalence = model.prevalence_at(self.age, extra)
        on = rng.random(prevalence.shape) < prevalence
        care_home = social.SOCIAL_KINDS.index("care_home")
        for k, kind in enumerate(social.SOCIAL_KINDS):
            if kind in social.ENDED_BY_CARE_HOME:
                on[:, k] &= ~on[:, care_home]
            who = np.flatnonzero(on[:, k])
            onset_age = model.onset_ages(k, who, self.age[who], prevalence[who, k], rng.random(who.size))
            start = (self.birth_day[who] + onset_age * DAYS_PER_YEAR).astype(np.int32)
            start = np.maximum(start, self.grid.first_day - 20 * 365).astype(np.int32)
            self.social_on[who, k] = True
            self.social_start[who, k] = start

    def _initial_treatment_steps(self) -> None:
        """How far along the hypertension and diabetes pathways each patient already is (for baseline prescribing)."""
        rng, n = self.rng, self.n
        untreated = self.physiology.untreated_systolic(self.age, self.has("hypertension"))
        per_drug = HYPERTENSIVE_MMHG_PER_DRUG * self.physiology.sbp_response
        needed = np.clip(np.ceil((untreated - bp_target(self.age)) / per_drug), 0, 4)
        reached = np.zeros(n, dtype=np.int8)
        for step in range(1, 5):
            advance = (needed >= step) & (reached == step - 1) & (rng.random(n) < 0.85)
            reached = np.where(advance, step, reached)
        self.htn_baseline_steps = reached
        years = np.where(
            self.has("type2_diabetes"),
            (self.grid.first_day - self.onset("type2_diabetes")) / DAYS_PER_YEAR,
            0.0,
        )
        level = self.physiology.hba1c(self.has("type2_diabetes"), years, np.zeros(n))
        steps = np.where((level >= HBA1C_DIAGNOSTIC) & (rng.random(n) < 0.9), 1, 0).astype(np.int8)
        lowered = np.where(steps == 1, DIABETES_LOWERING[0], 0.0)
        for step in range(2, 5):
            advance = (steps == step - 1) & (level - lowered >= HBA1C_INTENSIFY) & (rng.random(n) < 0.8)
            steps = np.where(advance, step, steps)
            lowered = np.where(advance, lowered + DIABETES_LOWERING[step - 1], lowered)
        self.diabetes_baseline_steps = steps

    # ------------------------------------------------------------------ latent state
    def _refresh_latent(self) -> None:
        p = self.prescriber
        self.egfr = self.physiology.egfr(self.age)
        antihypertensives = sum(
            p.on(k).astype(np.int8)
            for k in (
                "renin_angiotensin",
                "dihydropyridine",
                "thiazide",
                "mineralocorticoid_antagonist",
                "alpha_blocker_antihypertensive",
                "beta_blocker",
                "loop_diuretic",
            )
        )
        self.antihypertensive_count = antihypertensives
        self.sbp = self.physiology.systolic(self.age, self.has("hypertension"), antihypertensives)
        self.bp_target = bp_target(self.age)
        diabetic = self.any_of(("type2_diabetes", "type1_diabetes"))
        onset = np.where(
            self.has("type1_diabetes"), self.onset("type1_diabetes"), self.onset("type2_diabetes")
        )
        years = np.where(diabetic, np.maximum(self.month_start - onset, 0) / DAYS_PER_YEAR, 0.0)
        lowering = sum(
            step * p.on(k)
            for k, step in zip(
                DIABETES_SLOTS,
                DIABETES_LOWERING,
                strict=True,
            )
        )
        self.hba1c = self.physiology.hba1c(diabetic, years, lowering)
        self.potassium = (
            4.3
            + self.physiology.potassium_offset
            + 0.15 * p.on("renin_angiotensin")
            + 0.3 * p.on("mineralocorticoid_antagonist")
            + 0.25 * (self.egfr < 45)
            + 0.35 * (self.egfr < 30)
            - 0.2 * (p.on("loop_diuretic") | p.on("thiazide"))
        )
        self.medicines, self.acb = p.medicine_count_and_acb()
        self.deficits = self._efi_deficits()

    def _efi_deficits_from_conditions(self) -> np.ndarray:
        return ((self.has_matrix.astype(np.float32) @ self._efi_map) > 0).sum(axis=1)

    def _efi_deficits(self) -> np.ndarray:
        present = (self.has_matrix.astype(np.float32) @ self._efi_map) > 0
        inputs = {
            "social_care.home_care": self.social_now("home_care"),
            "social_care.care_home": self.social_now("care_home"),
            "social_care.unpaid_carer": self.social_now("unpaid_carer"),
            "social_care.lives_alone": self.social_now("lives_alone"),
            "observation.egfr_below_60": self.egfr < 60,
            "event.fall": self.last_fall_day >= self.month_start - 365,
            "event.fracture": self.has("fragility_fracture"),
            "prescription.distinct_drugs_5_or_more": self.medicines >= 5,
            "observation.haemoglobin_low": self.has("anaemia"),
        }
        for j, names in enumerate(self._efi_other):
            for name in names:
                if name in inputs:
                    present[:, j] |= inputs[name]
        return present.sum(axis=1).astype(np.int16)

    def efi_category_index(self) -> np.ndarray:
        efi = self.deficits / float(self._efi_map.shape[1])
        bounds = [b for _, b in self._efi_bounds]
        return np.searchsorted(np.array(bounds) + 1e-12, efi, side="left")

    # ------------------------------------------------------------------ covariates of the hazard model
    def covariates(self) -> dict[str, np.ndarray]:
        """Hazard covariates from the state at the start of the month (repeat prescriptions only).

        Keys starting with "_" are helpers for ``with_acute``, not terms of the hazard model."""
        p = self.prescriber
        x: dict[str, np.ndarray] = {}
        f = np.float32
        x["age_decades"] = ((self.age - 65.0) / 10.0).astype(f)
        x["male"] = self.male.astype(f)
        x["deprivation"] = (3 - self.demography.deprivation).astype(f)
        category = self.efi_category_index()
        for i, name in enumerate(("frailty_mild", "frailty_moderate", "frailty_severe"), start=1):
            x[name] = (category == i).astype(f)
        for key in (
            "dementia",
            "parkinsons",
            "stroke_tia",
            "visual_impairment",
            "urinary_incontinence",
            "dizziness",
            "osteoporosis",
            "heart_failure",
            "copd",
            "cancer",
            "alcohol_misuse",
        ):
            x[key] = self.has(key).astype(f)
        x["diabetes"] = self.any_of(("type2_diabetes", "type1_diabetes")).astype(f)
        x["ulcer_or_bleed_history"] = self.any_of(("peptic_ulcer", "gi_bleed_history")).astype(f)
        ltc = self.has_matrix[:, self._ltc_columns].sum(axis=1)
        x["ltc_6plus"] = (ltc >= 6).astype(f)
        x["care_home"] = self.social_now("care_home").astype(f)
        x["lives_alone"] = self.social_now("lives_alone").astype(f)
        x["fall_last_year"] = (self.last_fall_day >= self.month_start - 365).astype(f)
        x["admission_last_year"] = (self.last_admission_day >= self.month_start - 365).astype(f)
        x["egfr_lt_60"] = (self.egfr < 60).astype(f)
        x["egfr_lt_45"] = (self.egfr < 45).astype(f)
        x["egfr_lt_30"] = (self.egfr < 30).astype(f)
        for key in (
            "nsaid",
            "oral_corticosteroid",
            "z_drug",
            "opioid",
            "benzodiazepine",
            "anticoagulant",
            "antiplatelet",
            "ssri",
            "mra",
            "antidepressant",
            "antipsychotic",
            "gabapentinoid",
            "sulfonylurea",
            "insulin",
            "alpha_blocker",
            "antihypertensive",
            "renin_angiotensin",
            "diuretic",
        ):
            x[key] = p.on_class(key).astype(f)
        x["nsaid_new"] = p.started_within("nsaid", self.month_start, NEW_NSAID_DAYS).astype(f)
        x["benzodiazepine_or_z_drug"] = np.maximum(x["benzodiazepine"], x["z_drug"])
        x["_ppi"] = p.on_class("ppi").astype(f)
        x["ppi_with_bleeding_drug"] = x["_ppi"] * (
            np.maximum(np.maximum(x["nsaid"], x["antiplatelet"]), x["anticoagulant"])
        )
        cns = sum(
            p.class_count(k)
            for k in (
                "antiepileptic",
                "antipsychotic",
                "benzodiazepine",
                "z_drug",
                "antidepressant",
                "opioid",
            )
        )
        x["_cns_count"] = cns.astype(f)
        x["cns_active_3plus"] = (cns >= 3).astype(f)
        x["acb_3plus"] = (self.acb >= 3).astype(f)
        meds = self.medicines
        x["meds_4_6"] = ((meds >= 4) & (meds <= 6)).astype(f)
        x["meds_7_9"] = ((meds >= 7) & (meds <= 9)).astype(f)
        x["meds_10plus"] = (meds >= 10).astype(f)
        x["low_sbp_treated"] = ((self.sbp < 110) & (self.antihypertensive_count >= 2)).astype(f)
        x["hypo_risk_drug"] = p.on_class("hypoglycaemia_risk").astype(f)
        x["tight_control_70plus"] = ((self.hba1c < 53) & (self.age >= 70) & (x["diabetes"] > 0)).astype(f)
        x["osteoporosis_treated"] = (self.has("osteoporosis") & p.on_class("bone_antiresorptive")).astype(f)
        return x

    def with_acute(
        self, x: dict[str, np.ndarray], base: hz.MonthlyRisk, acute: AcuteExposure
    ) -> hz.MonthlyRisk:
        """The month's hazards including acute courses: re-evaluated only for patients who had one."""
        idx = np.flatnonzero(acute.nsaid | acute.oral_corticosteroid | acute.z_drug | acute.opioid)
        if idx.size == 0:
            return base
        sub = {k: v[idx].copy() for k, v in x.items()}
        for key in ("nsaid", "oral_corticosteroid", "z_drug", "opioid"):
            added = getattr(acute, key)[idx]
            if key in ("z_drug", "opioid"):
                sub["_cns_count"] += added & (sub[key] == 0)
            sub[key] = np.maximum(sub[key], added)
        sub["nsaid_new"] = np.maximum(sub["nsaid_new"], acute.nsaid[idx])
        sub["benzodiazepine_or_z_drug"] = np.maximum(sub["benzodiazepine"], sub["z_drug"])
        sub["ppi_with_bleeding_drug"] = sub["_ppi"] * np.maximum(
            np.maximum(sub["nsaid"], sub["antiplatelet"]), sub["anticoagulant"]
        )
        sub["cns_active_3plus"] = (sub["_cns_count"] >= 3).astype(np.float32)
        risk = self.hazards.monthly(sub)
        components = {c: v.copy() for c, v in base.components.items()}
        for c in components:
            components[c][idx] = risk.components[c]
        fracture_given_fall = base.fracture_given_fall.copy()
        fracture_given_fall[idx] = risk.fracture_given_fall
        return hz.MonthlyRisk(components=components, fracture_given_fall=fracture_given_fall)

    # ------------------------------------------------------------------ the monthly loop
    def run(self, progress: Callable[[int, int], None] | None = None) -> Simulation:
        self.initialise()
        registered_day = self.demography.registered_day
        deregistered_day = np.where(
            self.demography.deregistered_day == NO_DATE, FAR_FUTURE, self.demography.deregistered_day
        )
        for t in range(self.grid.count):
            self.t = t
            self.month_start = int(self.grid.starts[t])
            self.age = self._age_on(self.month_start)
            self._refresh_latent()
            x = self.covariates()
            base = self.hazards.monthly(x)
            observed = (
                self.alive
                & (registered_day <= self.grid.month_firsts[t])
                & (deregistered_day > self.grid.month_firsts[t])
            )
            self._record_truth(t, base, observed)
            acute = self.prescriber.acute_courses(self, t)
            risk = self.with_acute(x, base, acute)
            self._events(t, risk, acute, deregistered_day)
            self._deregister(t, deregistered_day)
            self._condition_onsets(t)
            self._social_changes(t)
            self._tests(t)
            self.prescriber.month(self, t)
            reviews = self.prescriber.review(self, t)
            self.records.add_event(reviews[0], "medication_review", reviews[1])
            if progress is not None:
                progress(t + 1, self.grid.count)
        self.prescriber.open_periods()
        self._close_social(np.flatnonzero(self.social_on.any(axis=1)), None)
        return Simulation(
            grid=self.grid,
            practices=self.practices,
            demography=self.demography,
            condition_keys=self.condition_keys,
            table=self.table,
            prescriber=self.prescriber,
            records=self.records,
            died_day=self.died_day,
            conditions=self.conditions,
        )

    def _record_truth(self, t: int, monthly: hz.MonthlyRisk, observed: np.ndarray) -> None:
        """True 12-month risk at the first day of month t: the state known that day held for 12 months (README)."""
        outcome = monthly.outcome_monthly()
        who = np.flatnonzero(observed)
        risk = np.column_stack([hz.twelve_month_risk(outcome[o][who]) for o in OUTCOMES]).astype(np.float32)
        self.records.truth.append((who.astype(np.int32), t, risk))

    # ------------------------------------------------------------------ events
    def _events(
        self, t: int, monthly: hz.MonthlyRisk, acute: AcuteExposure, deregistered_day: np.ndarray
    ) -> None:
        rng, n, grid = self.rng, self.n, self.grid
        c = monthly.components
        alive = self.alive
        lo = np.where(acute.first_day == NO_DATE, grid.starts[t], acute.first_day)

        def draw(p: np.ndarray) -> np.ndarray:
            return alive & (rng.random(n) < p)

        def dates() -> np.ndarray:
            return grid.days_between(lo, t, rng.random(n))

        fall, fall_day = draw(c["fall"]), dates()
        from_fall = fall & (rng.random(n) < monthly.fracture_given_fall)
        direct_fracture, fracture_day = draw(c["fracture"]), dates()
        fracture = from_fall | direct_fracture
        fracture_day = np.where(from_fall, fall_day, fracture_day)
        gi_bleed, gi_day = draw(c["gi_bleed"]), dates()
        aki, aki_day = draw(c["aki"]), dates()
        hypo, hypo_day = draw(c["hypoglycaemia"]), dates()
        admission_direct, admission_day = draw(c["admission"]), dates()
        death_direct, death_day = draw(c["death"]), dates()
        ae_direct, ae_day = draw(c["ae"]), dates()

        admission = admission_direct.copy()
        causes = (
            (gi_bleed, gi_day, "gi_bleed"),
            (aki, aki_day, "aki"),
            (hypo, hypo_day, "hypoglycaemia"),
            (fracture, fracture_day, "fracture"),
        )
        for happened, day, name in (*causes, (fall & ~from_fall, fall_day, "fall")):
            admitted = happened & (rng.random(n) < hz.ADMISSION_AFTER[name])
            admission_day = np.where(admitted & (~admission | (day < admission_day)), day, admission_day)
            admission |= admitted
        death = death_direct.copy()
        for happened, day, name in causes:
            died = happened & (rng.random(n) < hz.DEATH_AFTER[name])
            later = np.minimum(day + rng.integers(0, 8, size=n), grid.ends[t])
            death_day = np.where(died & (~death | (later < death_day)), later, death_day)
            death |= died
        via_admission = admission & (rng.random(n) < hz.AE_AFTER["admission"])
        via_fall = fall & ~via_admission & (rng.random(n) < hz.AE_AFTER["fall"])
        ae = ae_direct | via_admission | via_fall
        ae_day = np.where(via_admission, admission_day, np.where(via_fall, fall_day, ae_day))

        # A patient who leaves the practice this month has no recorded events (nor death) after leaving.
        death &= death_day <= deregistered_day
        cutoff = np.minimum(np.where(death, death_day, FAR_FUTURE), deregistered_day)
        for happened, day, kind in (
            (fall, fall_day, "fall"),
            (fracture, fracture_day, "fracture"),
            (gi_bleed, gi_day, "gi_bleed"),
            (aki, aki_day, "aki"),
            (hypo, hypo_day, "hypoglycaemia"),
            (admission, admission_day, "emergency_admission"),
            (ae, ae_day, "ae_attendance"),
        ):
            keep = happened & (day <= cutoff)
            who = np.flatnonzero(keep)
            self.records.add_event(who, kind, day[who])
            if kind == "fall":
                self.last_fall_day[who] = day[who]
                self.add_condition("falls_history", who, day[who])
            elif kind == "fracture":
                older = who[self.age[who] >= 50]
                self.add_condition("fragility_fracture", older, fracture_day[older])
            elif kind == "gi_bleed":
                self.add_condition("gi_bleed_history", who, day[who])
                self.physiology.last_gi_bleed_day[who] = day[who]
            elif kind == "aki":
                # AKI leaves lasting loss of kidney function (Coca SG et al. Kidney Int 2012;81:442-8).
                self.physiology.egfr_loss[who] += rng.uniform(3.0, 10.0, who.size).astype(np.float32)
            elif kind == "emergency_admission":
                self.last_admission_day[who] = day[who]
        harm_day = np.minimum(
            np.minimum(np.where(gi_bleed, gi_day, FAR_FUTURE), np.where(aki, aki_day, FAR_FUTURE)),
            np.where(hypo, hypo_day, FAR_FUTURE),
        )
        self.prescriber.after_harm(
            self,
            t,
            gi_bleed & (gi_day <= cutoff),
            aki & (aki_day <= cutoff),
            hypo & (hypo_day <= cutoff),
            np.minimum(harm_day, grid.ends[t]).astype(np.int32),
        )
        dead = np.flatnonzero(death)
        self.records.add_event(dead, "death", death_day[dead])
        self._leave(dead, death_day[dead])
        self.died_day[dead] = death_day[dead]

    def _leave(self, who: np.ndarray, day: np.ndarray) -> None:
        """The patient leaves the simulation (death or deregistration): close every open period."""
        if who.size == 0:
            return
        self.prescriber.stop_everything(who, day.astype(np.int32))
        self._close_social(who, day)
        self.alive[who] = False

    def _deregister(self, t: int, deregistered_day: np.ndarray) -> None:
        who = np.flatnonzero(
            self.alive & (deregistered_day >= self.grid.starts[t]) & (deregistered_day <= self.grid.ends[t])
        )
        self._leave(who, deregistered_day[who])

    def _close_social(self, who: np.ndarray, day: np.ndarray | None) -> None:
        for k in range(len(social.SOCIAL_KINDS)):
            on = who[self.social_on[who, k]]
            if on.size == 0:
                continue
            end = (
                np.full(on.size, NO_DATE, dtype=np.int32)
                if day is None
                else np.maximum(day[self.social_on[who, k]], self.social_start[on, k])
            )
            self.records.social.append(
                (on.astype(np.int32), k, self.social_start[on, k].copy(), end.astype(np.int32))
            )
            self.social_on[on, k] = False

    # ------------------------------------------------------------------ conditions and social care
    def _condition_onsets(self, t: int) -> None:
        rng, grid = self.rng, self.grid
        probability = self.condition_model.monthly_onset_probability(self.age)
        model_columns = len(self.condition_model.specs)
        new = (rng.random(probability.shape, dtype=np.float32) < probability) & ~self.has_matrix[
            :, :model_columns
        ]
        new &= self.alive[:, None]
        for c in np.flatnonzero(new.any(axis=0)):
            who = np.flatnonzero(new[:, c])
            day = grid.days_in(t, rng.random(who.size))
            self._set_condition(who, int(c), day, record=True)
            key = self.condition_keys[c]
            if key == "ischaemic_heart_disease":
                mi = who[rng.random(who.size) < MI_SHARE_OF_IHD]
                self.add_condition("myocardial_infarction", mi, day[np.isin(who, mi)])
            self._diagnostic_tests(key, who, day)
        next_egfr = self.physiology.egfr(self._age_on(int(grid.ends[t])))
        crossing = np.flatnonzero(self.alive & ~self.has("ckd") & (next_egfr < EGFR_CKD_THRESHOLD))
        day = grid.days_in(t, rng.random(crossing.size))
        self.add_condition("ckd", crossing, day, variant=ckd_stage(next_egfr[crossing]))

    def _diagnostic_tests(self, key: str, who: np.ndarray, day: np.ndarray) -> None:
        """Tests done at diagnosis (the reading or result that makes the diagnosis)."""
        panels = {
            "hypertension": ("bp", "renal"),
            "type2_diabetes": ("hba1c", "renal", "bmi"),
            "heart_failure": ("renal", "fbc"),
            "atrial_fibrillation": ("renal", "fbc"),
            "hypothyroidism": ("tsh",),
            "anaemia": ("fbc",),
        }.get(key, ())
        for panel in panels:
            self.schedule(panel, who, day + self.rng.integers(0, 21, size=who.size))

    def _social_changes(self, t: int) -> None:
        rng, grid, n = self.rng, self.grid, self.n
        probability = self.social_model.monthly_onset_probability(self.age)
        dementia = self.has("dementia")
        care_home = social.SOCIAL_KINDS.index("care_home")
        for k, kind in enumerate(social.SOCIAL_KINDS):
            on = self.social_on[:, k] & self.alive
            end = np.flatnonzero(on & (rng.random(n) < social.MONTHLY_END[kind]))
            self._end_social(k, end, grid.days_in(t, rng.random(end.size)))
            p = probability[:, k] * np.exp(social.modifiers(kind, dementia, self.deficits))
            blocked = self.social_on[:, care_home] if kind in social.ENDED_BY_CARE_HOME else False
            start = np.flatnonzero(self.alive & ~self.social_on[:, k] & ~blocked & (rng.random(n) < p))
            day = grid.days_in(t, rng.random(start.size))
            self.social_on[start, k] = True
            self.social_start[start, k] = day
            if kind == "care_home":
                for other in social.ENDED_BY_CARE_HOME:
                    j = social.SOCIAL_KINDS.index(other)
                    moving = start[self.social_on[start, j]]
                    self._end_social(j, moving, day[self.social_on[start, j]] - 1)

    def _end_social(self, k: int, who: np.ndarray, day: np.ndarray) -> None:
        if who.size == 0:
            return
        end = np.maximum(day, self.social_start[who, k]).astype(np.int32)
        self.records.social.append((who.astype(np.int32), k, self.social_start[who, k].copy(), end))
        self.social_on[who, k] = False

    # ------------------------------------------------------------------ tests
    def _interval_months(self, panel: str) -> np.ndarray:
        """Intended months between tests of a panel (inf: not tested), from the monitoring reasons present."""
        p, age = self.prescriber, self.age
        adult = age >= 18
        inf = np.inf
        out = np.where(adult, OPPORTUNISTIC_MONTHS.get(panel, inf), inf)
        if panel in ("bp", "hba1c"):
            out = np.where(age >= 40, out, np.where(adult, out * 2, inf))

        def at_most(mask: np.ndarray, months: float) -> None:
            nonlocal out
            out = np.where(mask, np.minimum(out, months), out)

        egfr = self.egfr
        if panel == "renal":
            monitored = (
                p.on_class("renin_angiotensin")
                | p.on_class("diuretic")
                | p.on("metformin")
                | p.on_class("doac")
                | p.on("digoxin")
                | p.on("nsaid")
                | self.any_of(("type2_diabetes", "type1_diabetes", "heart_failure"))
            )
            at_most(monitored, 12)
            at_most(age >= 75, 18)
            at_most(
                p.on("mineralocorticoid_antagonist") | p.on("lithium"), 6
            )  # NICE CG185: lithium U&E 6-monthly
            at_most(self.has("ckd") & (egfr < 45), 6)  # NICE NG203: G3b 1-2 times a year
            at_most(self.has("ckd") & (egfr < 30), 4)
            at_most(self.has("ckd") & (egfr < 15), 3)
            at_most(p.on_class("methotrexate"), 3)  # BSR 2017: every 3 months once stable
        elif panel == "hba1c":
            diabetic = self.any_of(("type2_diabetes", "type1_diabetes"))
            at_most(diabetic, 12)
            at_most(diabetic & (self.hba1c >= HBA1C_INTENSIFY), 6)  # NICE NG28: 3-6 monthly until stable
        elif panel == "bp":
            at_most(self.has("hypertension"), 12)
            at_most(self.has("hypertension") & self.last_bp_uncontrolled, 3)
            at_most(self.any_of(("type2_diabetes", "ckd", "heart_failure", "stroke_tia")), 12)
        elif panel == "lft":
            at_most(p.on("statin"), 12)  # NICE NG238: at 3 and 12 months, then as indicated
            at_most(p.on_class("methotrexate"), 3)
        elif panel == "fbc":
            at_most(p.on_class("methotrexate"), 3)
            at_most(self.has("anaemia"), 6)
            at_most(self.has("ckd") | p.on_class("anticoagulant"), 12)
        elif panel == "inr":
            at_most(p.on_class("vitamin_k_antagonist"), 1.5)
        elif panel == "lithium":
            at_most(
                p.on("lithium") & ((age >= 65) | (egfr < 60)), 3
            )  # NICE CG185: 3-monthly in older or at risk
            at_most(p.on("lithium"), 6)
        elif panel == "tsh":
            at_most(p.on("levothyroxine"), 12)  # NICE NG145: once a year when stable
        elif panel == "bmi":
            at_most(self.any_of(("type2_diabetes", "obesity")), 12)
        return out

    def _tests(self, t: int) -> None:
        rng, grid, n = self.rng, self.grid, self.n
        self.tests = {}
        self.test_days = {}
        self.trigger_day = {}
        for panel, kinds in PANELS.items():
            interval = self._interval_months(panel)
            finite = np.isfinite(interval)
            # A new monitoring reason with a shorter interval brings the next test forward.
            shorter = finite & (interval < self.interval_used[panel]) & (self.last_test[panel] != NO_DATE)
            planned = self.last_test[panel] + interval * self.physiology.overdue_factor * 30.4
            self.next_due[panel] = np.where(
                shorter, np.minimum(self.next_due[panel], planned), self.next_due[panel]
            ).astype(np.int32)
            self.interval_used[panel] = np.where(shorter, interval, self.interval_used[panel])
            due = self.alive & (self.next_due[panel] <= grid.ends[t])
            who = np.flatnonzero(due)
            day = np.clip(self.next_due[panel][who], grid.starts[t], grid.ends[t]).astype(np.int32)
            self.last_test[panel][who] = day
            jitter = self.physiology.overdue_factor[who] * rng.uniform(0.85, 1.15, who.size) * 30.4
            gap = np.where(finite[who], interval[who] * jitter, FAR_FUTURE)
            self.next_due[panel][who] = np.minimum(day + gap, FAR_FUTURE).astype(np.int32)
            self.interval_used[panel][who] = interval[who]
            days = np.full(n, NO_DATE, dtype=np.int32)
            days[who] = day
            self.test_days[panel] = days
            for kind in kinds:
                value = self._measure(kind, who)
                self.records.add_observation(who, kind, value, day)
                full = np.full(n, np.nan)
                full[who] = value
                self.tests[kind] = full
        bp = self.tests["systolic_bp"]
        tested = ~np.isnan(bp)
        self.last_bp_uncontrolled[tested] = bp[tested] > self.bp_target[tested]
        for key in (
            "renin_angiotensin",
            "dihydropyridine",
            "thiazide",
            "mineralocorticoid_antagonist",
            "alpha_blocker_antihypertensive",
        ):
            self.trigger_day[key] = self.test_days["bp"]
        for key in ("metformin", "diabetes_second_line", "diabetes_third_line", "basal_insulin"):
            self.trigger_day[key] = self.test_days["hba1c"]

    def _measure(self, kind: str, who: np.ndarray) -> np.ndarray:
        """A measured value: the latent state plus measurement noise, rounded as a laboratory reports it."""
        rng, p = self.rng, self.prescriber
        size = who.size
        age, male = self.age[who], self.male[who]
        if kind in ("egfr", "creatinine"):
            if kind == "egfr":
                creatinine = creatinine_from_egfr(self.egfr[who], age, male) * np.exp(
                    rng.normal(0, 0.05, size)
                )
                self._creatinine = creatinine
                return np.round(np.clip(_ckd_epi(creatinine, age, male), 3, 130))
            return np.round(self._creatinine)
        if kind == "potassium":
            return np.round(self.potassium[who] + rng.normal(0, 0.3, size), 1)
        if kind == "sodium":
            value = (
                139.5
                - 1.5 * p.on_class("thiazide_diuretic")[who]
                - 1.0 * (p.on_class("ssri")[who] & (age >= 65))
                - 0.5 * p.on_class("loop_diuretic")[who]
            )
            return np.round(value + rng.normal(0, 2.2, size))
        if kind == "hba1c":
            return np.round(self.hba1c[who] + rng.normal(0, 2.5, size))
        if kind == "systolic_bp":
            return np.round(self.sbp[who] + rng.normal(0, 9.0, size))
        if kind == "alt":
            factor = np.where(p.on_class("methotrexate")[who], 1.3, 1.0) * np.where(
                p.on_class("statin")[who], 1.1, 1.0
            )
            return np.round(self.physiology.alt_base[who] * factor * np.exp(rng.normal(0, 0.2, size)))
        if kind == "haemoglobin":
            recent_bleed = (self.physiology.last_gi_bleed_day[who] >= self.month_start - 90) & (
                self.physiology.last_gi_bleed_day[who] != NO_DATE
            )
            value = (
                self.physiology.haemoglobin_base[who]
                - 10 * self.has("anaemia")[who]
                - 0.25 * np.maximum(age - 65, 0)
                - 8 * (self.egfr[who] < 45)
                - 25 * recent_bleed
            )
            return np.round(value + rng.normal(0, 5.0, size))
        if kind == "inr":
            labile = self.physiology.overdue_factor[who] > 1.3
            return np.round(np.clip(rng.normal(2.5, np.where(labile, 0.9, 0.45), size), 0.9, 8.0), 1)
        if kind == "lithium":
            raised = 0.15 * (
                (self.egfr[who] < 45)
                | p.on_class("thiazide_diuretic")[who]
                | p.on_class("renin_angiotensin")[who]
            )
            return np.round(np.clip(rng.normal(0.65, 0.15, size) + raised, 0.1, 2.0), 2)
        if kind == "tsh":
            levo = p.s("levothyroxine")
            on = p.med[levo, who] >= 0
            gap = self.physiology.thyroid_requirement[who] - 1 - p.dose[levo, who]
            treated = np.exp(np.log(1.8) + 0.8 * gap + rng.normal(0, 0.35, size))
            untreated_hypo = np.exp(rng.normal(np.log(8.0), 0.4, size))
            normal = np.exp(rng.normal(np.log(1.7), 0.45, size))
            value = np.where(on, treated, np.where(self.has("hypothyroidism")[who], untreated_hypo, normal))
            return np.round(value, 2)
        if kind == "bmi":
            obese = self.has("obesity")[who]
            value = np.where(obese, np.maximum(self.physiology.bmi[who], 31.0), self.physiology.bmi[who])
            return np.round(value + rng.normal(0, 0.5, size), 1)
        raise ValueError(f"unknown observation type {kind}")


def _ckd_epi(creatinine_umol: np.ndarray, age: np.ndarray, male: np.ndarray) -> np.ndarray:
    """CKD-EPI 2021 eGFR from serum creatinine (umol/L)."""
    scr = creatinine_umol / 88.4
    kappa = np.where(male, 0.9, 0.7)
    alpha = np.where(male, -0.302, -0.241)
    ratio = scr / kappa
    return (
        142.0
        * np.minimum(ratio, 1.0) ** alpha
        * np.maximum(ratio, 1.0) ** -1.200
        * 0.9938**age
        * np.where(male, 1.0, 1.012)
    )


def _efi_inputs(
    conditions: ConditionVocabulary, keys: tuple[str, ...]
) -> tuple[np.ndarray, list[tuple[str, ...]]]:
    """Matrix (conditions x eFI deficits) and the other inputs of each deficit, from conditions.yaml."""
    deficits = conditions.efi_deficits
    matrix = np.zeros((len(keys), len(deficits)), dtype=np.float32)
    for j, deficit in enumerate(deficits):
        for i, key in enumerate(keys):
            if key in deficit.condition_keys:
                matrix[i, j] = 1.0
    return matrix, [d.other_inputs for d in deficits]


def simulate(
    n_patients: int,
    seed: int,
    start: date,
    end: date,
    practices: int | None,
    enrich_smr: bool,
    progress: Callable[[int, int], None] | None = None,
) -> Simulation:
    if n_patients < 1:
        raise ValueError("n_patients must be at least 1")
    if epoch_day(end) < epoch_day(start):
        raise ValueError("end must not be before start")
    world = World(n_patients, seed, start, end, practices, enrich_smr)
    return world.run(progress)
