"""Latent physiology behind the labs, and when the practice measures it.

Each patient carries a few latent quantities that evolve month by month; tests sample them with measurement
noise. The hazard model uses the latent values (what is true), a model sees only the sampled tests (what was
measured), which is the realistic gap between the two.

- Kidney function: eGFR(age) = E0 - slope * max(age - 35, 0) - AKI losses (mL/min/1.73m2), with E0 ~ N(110, 12)
  and slopes correlated with the cardiometabolic factor. Population result: eGFR < 60 in about 12% at 70,
  30% at 80, 45% at 90 (Health Survey for England 2016: CKD stages 3-5 in about a third of people 75+).
  CKD is coded when eGFR first falls below 60 (KDIGO 2012 / NICE NG203 stage G3a-G5), with the stage code of
  that eGFR, so coded CKD and measured eGFR agree by construction.
- Creatinine from eGFR by inverting the CKD-EPI 2021 equation (race-free; NICE NG203 recommends CKD-EPI).
- Systolic blood pressure: untreated level (hypertensives ~ N(148, 10) rising with age), lowered by about
  9 mmHg per antihypertensive class (Law MR et al. BMJ 2009;338:b1665: ~9 mmHg systolic per standard-dose drug).
- HbA1c (mmol/mol): diabetes ~ N(60, 11) at diagnosis drifting up ~0.8/year; metformin lowers ~11 and each add-on
  ~8-9 (NICE NG28 evidence review: ~1% = 11 mmol/mol for metformin, 0.5-1% for add-ons); insulin ~15.
- Potassium: 4.3 mmol/L, higher with RAS blockade, MRAs and low eGFR, lower with loop/thiazide diuretics.
- Sodium: lower with thiazides and SSRIs in older people (hyponatraemia risks named in STOPP v3).
- TSH: on levothyroxine, a function of the gap between the patient's requirement and the dose step.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from data_access.sources.synthetic.calendar import NO_DATE

# Monitoring panels and the observation types each produces.
PANELS: dict[str, tuple[str, ...]] = {
    "renal": ("egfr", "creatinine", "potassium", "sodium"),
    "hba1c": ("hba1c",),
    "bp": ("systolic_bp",),
    "lft": ("alt",),
    "fbc": ("haemoglobin",),
    "inr": ("inr",),
    "lithium": ("lithium",),
    "tsh": ("tsh",),
    "bmi": ("bmi",),
}
UNITS: dict[str, str] = {
    "egfr": "mL/min/1.73m2",
    "creatinine": "umol/L",
    "potassium": "mmol/L",
    "sodium": "mmol/L",
    "hba1c": "mmol/mol",
    "systolic_bp": "mmHg",
    "alt": "U/L",
    "haemoglobin": "g/L",
    "inr": "ratio",
    "lithium": "mmol/L",
    "tsh": "mU/L",
    "bmi": "kg/m2",
}
# Opportunistic testing of adults without a monitoring reason (months between tests): NHS Health Check every
# five years for 40-74 (BP, HbA1c/cholesterol), ad hoc blood tests otherwise.
OPPORTUNISTIC_MONTHS: dict[str, float] = {
    "renal": 36.0,
    "hba1c": 60.0,
    "bp": 36.0,
    "lft": 60.0,
    "fbc": 36.0,
    "tsh": 72.0,
    "bmi": 48.0,
}
OVERDUE_SHARE = 0.2
"""Share of patients whose monitoring runs late (intervals 1.4-2.5x the intended): monitoring indicators fire."""

EGFR_CKD_THRESHOLD = 60.0
CKD_STAGE_BOUNDS = ((45.0, "G3a"), (30.0, "G3b"), (15.0, "G4"), (0.0, "G5"))
# SNOMED CT concepts for CKD stages G3a, G3b, G4, G5 (all listed under condition key "ckd" in conditions.yaml).
CKD_STAGE_SNOMED = ("700378005", "700379002", "431857002", "433146000")
HYPERTENSIVE_MMHG_PER_DRUG = 9.0
BP_TARGET_UNDER_80 = 140.0  # NICE NG136: clinic systolic target < 140 mmHg under 80 years
BP_TARGET_80_PLUS = 150.0  # NICE NG136: < 150 mmHg aged 80 and over


@dataclass
class Physiology:
    egfr_base: np.ndarray
    egfr_slope: np.ndarray
    egfr_loss: np.ndarray
    sbp_base: np.ndarray
    sbp_response: np.ndarray
    hba1c_base: np.ndarray
    hba1c_drift: np.ndarray
    potassium_offset: np.ndarray
    haemoglobin_base: np.ndarray
    alt_base: np.ndarray
    bmi: np.ndarray
    thyroid_requirement: np.ndarray  # dose step (0-5) that normalises TSH
    overdue_factor: np.ndarray
    last_gi_bleed_day: np.ndarray

    @classmethod
    def sample(cls, n: int, male: np.ndarray, factors: np.ndarray, rng: np.random.Generator) -> Physiology:
        cardiometabolic = factors[:, 1]
        general = factors[:, 0]
        slope = np.maximum(0.15, rng.normal(0.85, 0.3, n) + 0.22 * cardiometabolic + 0.12 * general)
        overdue = rng.random(n) < OVERDUE_SHARE
        return cls(
            egfr_base=rng.normal(110.0, 12.0, n).astype(np.float32),
            egfr_slope=slope.astype(np.float32),
            egfr_loss=np.zeros(n, dtype=np.float32),
            sbp_base=rng.normal(0.0, 1.0, n).astype(np.float32),
            sbp_response=rng.uniform(0.7, 1.3, n).astype(np.float32),
            hba1c_base=rng.normal(0.0, 1.0, n).astype(np.float32),
            hba1c_drift=rng.uniform(0.4, 1.2, n).astype(np.float32),
            potassium_offset=rng.normal(0.0, 0.15, n).astype(np.float32),
            haemoglobin_base=(np.where(male, 147.0, 133.0) + rng.normal(0.0, 8.0, n)).astype(np.float32),
            alt_base=np.exp(rng.normal(np.log(21.0), 0.3, n)).astype(np.float32),
            bmi=np.clip(rng.normal(27.3, 4.5, n) + 0.6 * cardiometabolic, 16.0, 55.0).astype(np.float32),
            thyroid_requirement=rng.choice(np.arange(1, 5), size=n, p=[0.25, 0.35, 0.3, 0.1]).astype(np.int8),
            overdue_factor=np.where(overdue, rng.uniform(1.4, 2.5, n), rng.uniform(0.85, 1.15, n)).astype(
                np.float32
            ),
            last_gi_bleed_day=np.full(n, NO_DATE, dtype=np.int32),
        )

    # ------------------------------------------------------------------ kidney
    def egfr(self, age: np.ndarray) -> np.ndarray:
        value = self.egfr_base - self.egfr_slope * np.maximum(age - 35.0, 0.0) - self.egfr_loss
        return np.clip(value, 4.0, 130.0)

    def age_egfr_crosses(self, threshold: float) -> np.ndarray:
        """Age at which the (loss-free) trajectory crosses ``threshold`` (inf if it never does)."""
        above = self.egfr_base - self.egfr_loss - threshold
        return np.where(above <= 0, 0.0, 35.0 + above / self.egfr_slope)

    # ------------------------------------------------------------------ blood pressure
    def systolic(
        self, age: np.ndarray, hypertensive: np.ndarray, antihypertensive_drugs: np.ndarray
    ) -> np.ndarray:
        untreated = self.untreated_systolic(age, hypertensive)
        # Blood pressure-lowering drugs lower normal pressures about half as much as raised ones (Law 2009).
        per_drug = HYPERTENSIVE_MMHG_PER_DRUG * self.sbp_response * np.where(hypertensive, 1.0, 0.5)
        return np.maximum(untreated - per_drug * antihypertensive_drugs, 92.0)

    def untreated_systolic(self, age: np.ndarray, hypertensive: np.ndarray) -> np.ndarray:
        normal = np.minimum(118.0 + 0.45 * np.maximum(age - 30.0, 0.0) + 8.0 * self.sbp_base, 138.0)
        high = 148.0 + 0.25 * np.maximum(age - 60.0, 0.0) + 10.0 * self.sbp_base
        return np.where(hypertensive, high, normal)

    # ------------------------------------------------------------------ glycaemia
    def hba1c(
        self, diabetic: np.ndarray, years_with_diabetes: np.ndarray, lowering: np.ndarray
    ) -> np.ndarray:
        untreated = 60.0 + 11.0 * self.hba1c_base + self.hba1c_drift * years_with_diabetes
        normal = 37.0 + 2.5 * self.hba1c_base
        return np.where(diabetic, np.maximum(untreated - lowering, 38.0), np.minimum(normal, 46.0))


def ckd_stage(egfr: np.ndarray) -> np.ndarray:
    """Index into CKD_STAGE_BOUNDS (0 = G3a ... 3 = G5) for eGFR values below 60."""
    return np.select([egfr >= 45.0, egfr >= 30.0, egfr >= 15.0], [0, 1, 2], 3).astype(np.int8)


def creatinine_from_egfr(egfr: np.ndarray, age: np.ndarray, male: np.ndarray) -> np.ndarray:
    """Serum creatinine (umol/L) that gives ``egfr`` under CKD-EPI 2021 (Inker LA et al. NEJM 2021;385:1737-49).

    eGFR = 142 * min(Scr/k, 1)^a * max(Scr/k, 1)^-1.200 * 0.9938^age * 1.012 [female], Scr in mg/dL,
    k = 0.7 (F) / 0.9 (M), a = -0.241 (F) / -0.302 (M).
    """
    kappa = np.where(male, 0.9, 0.7)
    alpha = np.where(male, -0.302, -0.241)
    ratio = egfr / (142.0 * 0.9938**age * np.where(male, 1.0, 1.012))
    scr_over_k = np.where(ratio <= 1.0, ratio ** (-1.0 / 1.200), ratio ** (1.0 / alpha))
    return scr_over_k * kappa * 88.4


def bp_target(age: np.ndarray) -> np.ndarray:
    return np.where(age >= 80, BP_TARGET_80_PLUS, BP_TARGET_UNDER_80)
