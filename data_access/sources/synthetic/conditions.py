"""Long-term conditions: age- and sex-dependent prevalence, incidence consistent with it, and clustering.

Model (see README.md, "Conditions"). Each condition ``c`` has a population prevalence curve ``p_c(age)`` given by
anchor points. A patient's own curve is ``P_ic(a) = sigmoid(mu_c(a) + x_ic)`` where ``x_ic`` is a fixed liability:
sex, deprivation and ethnicity log-odds plus loadings on six latent factors (general multimorbidity,
cardiometabolic, respiratory, mental health, musculoskeletal, neurological). ``mu_c`` is ``logit(p_c)`` scaled so
that the population average of ``P_ic`` matches ``p_c`` (logistic-normal approximation,
E[sigmoid(m + sZ)] ~ sigmoid(m / sqrt(1 + pi s^2 / 8))).

Prevalence at the start of the window is ``P_ic(age)``, with the onset age drawn from the patient's own curve, and
the onset hazard afterwards is exactly the one that keeps the curve: d/da[-log(1 - P)] = P * mu'(a). Because the
liability is fixed in time, conditions cluster (shared factors) but do not cause one another: no condition's
onset is timed by another's, which keeps the prescribing built on top free of spurious temporal orderings.

Anchor prevalences are "ever recorded in primary care" approximations informed by QOF 2022-23 (NHS England,
Quality and Outcomes Framework, England: hypertension 14.4%, diabetes 7.5% of 17+, asthma 6.5%, CHD 3.0%, AF
2.2%, COPD 1.9%, stroke/TIA 1.8%, heart failure 1.0%, dementia 0.7%, depression 13% of 18+, RA 0.8% of 16+,
osteoporosis, epilepsy 0.8% of 18+) for the overall level, and by multimorbidity studies for the age gradient
(Barnett K et al. Lancet 2012;380:37-43; Cassell A et al. Br J Gen Pract 2018;68:e245-51).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

FACTORS: tuple[str, ...] = (
    "general",
    "cardiometabolic",
    "respiratory",
    "mental",
    "musculoskeletal",
    "neurological",
)
AGE_GRID_MONTHS = 106 * 12
"""The age grid (in months) on which prevalence curves are tabulated."""


@dataclass(frozen=True)
class ConditionSpec:
    key: str
    """Condition key of clinical/data/conditions.yaml."""
    anchors: tuple[tuple[float, float], ...]
    """(age, prevalence) points of the population prevalence curve; non-decreasing."""
    male_log_or: float = 0.0
    deprivation_log_or: float = 0.0
    """Log-odds per quintile towards the most deprived (quintile 1)."""
    ethnicity_log_or: Mapping[str, float] = field(default_factory=dict)
    loadings: Mapping[str, float] = field(default_factory=dict)
    sex: str | None = None
    """'M' or 'F' when the condition is restricted to one sex (anchors are then that sex's prevalence)."""
    from_events: bool = False
    """Prevalent at the start from the curve, but afterwards recorded only when the event happens (falls, bleeds,
    fractures come from the hazard model, not from the curve)."""


def _c(key: str, anchors: tuple[tuple[float, float], ...], **kwargs: object) -> ConditionSpec:
    return ConditionSpec(key=key, anchors=anchors, **kwargs)  # type: ignore[arg-type]


CONDITIONS: tuple[ConditionSpec, ...] = (
    # Cardiometabolic (QOF: hypertension 14.4%, diabetes 7.5%, CHD 3.0%, AF 2.2%, stroke 1.8%, HF 1.0%, PAD 0.6%).
    _c(
        "hypertension",
        (
            (18, 0.002),
            (30, 0.02),
            (40, 0.06),
            (50, 0.15),
            (60, 0.29),
            (70, 0.47),
            (80, 0.60),
            (90, 0.66),
            (105, 0.68),
        ),
        male_log_or=0.1,
        deprivation_log_or=0.04,
        ethnicity_log_or={"Black": 0.5},
        loadings={"general": 0.3, "cardiometabolic": 1.0},
    ),
    _c(
        "type2_diabetes",
        ((20, 0.002), (30, 0.01), (40, 0.03), (50, 0.06), (60, 0.11), (70, 0.155), (80, 0.175), (105, 0.18)),
        male_log_or=0.3,
        deprivation_log_or=0.12,
        ethnicity_log_or={"Asian": 1.0, "Black": 0.6},
        loadings={"general": 0.3, "cardiometabolic": 1.1},
    ),
    _c(
        "type1_diabetes",
        ((1, 0.0003), (15, 0.003), (25, 0.005), (105, 0.0055)),
        male_log_or=0.1,
        loadings={"general": 0.1},
    ),
    _c(
        "atrial_fibrillation",
        ((40, 0.001), (50, 0.005), (60, 0.015), (70, 0.05), (80, 0.11), (90, 0.17), (105, 0.19)),
        male_log_or=0.4,
        loadings={"general": 0.3, "cardiometabolic": 0.5},
    ),
    _c(
        "heart_failure",
        ((40, 0.001), (55, 0.004), (65, 0.012), (75, 0.035), (85, 0.08), (95, 0.12), (105, 0.125)),
        male_log_or=0.3,
        deprivation_log_or=0.1,
        loadings={"general": 0.5, "cardiometabolic": 0.7},
    ),
    _c(
        "ischaemic_heart_disease",
        ((35, 0.001), (45, 0.008), (55, 0.03), (65, 0.07), (75, 0.12), (85, 0.17), (95, 0.19), (105, 0.195)),
        male_log_or=0.8,
        deprivation_log_or=0.12,
        ethnicity_log_or={"Asian": 0.4},
        loadings={"general": 0.3, "cardiometabolic": 0.8},
    ),
    _c(
        "stroke_tia",
        ((35, 0.001), (50, 0.008), (60, 0.02), (70, 0.045), (80, 0.08), (90, 0.12), (105, 0.13)),
        male_log_or=0.1,
        deprivation_log_or=0.08,
        ethnicity_log_or={"Black": 0.3},
        loadings={"general": 0.4, "cardiometabolic": 0.6},
    ),
    _c(
        "peripheral_arterial_disease",
        ((45, 0.001), (60, 0.008), (70, 0.02), (80, 0.035), (95, 0.045), (105, 0.046)),
        male_log_or=0.4,
        deprivation_log_or=0.12,
        loadings={"general": 0.4, "cardiometabolic": 0.6, "respiratory": 0.3},
    ),
    _c(
        "heart_valve_disease",
        ((50, 0.002), (70, 0.015), (85, 0.05), (95, 0.07), (105, 0.072)),
        loadings={"general": 0.3, "cardiometabolic": 0.3},
    ),
    _c(
        "venous_thromboembolism",
        ((20, 0.001), (50, 0.01), (70, 0.025), (90, 0.045), (105, 0.047)),
        loadings={"general": 0.4},
    ),
    _c(
        "hyperlipidaemia",
        ((30, 0.01), (50, 0.06), (70, 0.12), (105, 0.125)),
        male_log_or=0.2,
        loadings={"cardiometabolic": 0.6},
    ),
    _c(
        "obesity",
        ((18, 0.02), (40, 0.06), (60, 0.09), (105, 0.092)),
        deprivation_log_or=0.12,
        loadings={"general": 0.2, "cardiometabolic": 0.6},
    ),
    # Endocrine, renal and urinary (CKD is not here: it follows from the eGFR trajectory, see physiology.py).
    _c(
        "hypothyroidism",
        ((20, 0.005), (40, 0.02), (60, 0.05), (75, 0.08), (90, 0.10), (105, 0.102)),
        male_log_or=-1.4,
        loadings={"general": 0.2},
    ),
    _c(
        "prostatic_hyperplasia",
        ((45, 0.005), (60, 0.06), (70, 0.14), (80, 0.22), (95, 0.28), (105, 0.285)),
        sex="M",
        loadings={"general": 0.1},
    ),
    _c(
        "urinary_incontinence",
        ((40, 0.005), (60, 0.025), (75, 0.07), (85, 0.13), (95, 0.20), (105, 0.21)),
        male_log_or=-0.7,
        loadings={"general": 0.5, "neurological": 0.3},
    ),
    _c(
        "recurrent_uti",
        ((20, 0.005), (60, 0.02), (80, 0.05), (95, 0.07), (105, 0.072)),
        male_log_or=-1.5,
        loadings={"general": 0.3},
    ),
    # Respiratory (QOF: asthma 6.5%, COPD 1.9%).
    _c(
        "copd",
        ((35, 0.001), (45, 0.006), (55, 0.025), (65, 0.05), (75, 0.08), (85, 0.09), (105, 0.092)),
        male_log_or=0.1,
        deprivation_log_or=0.25,
        ethnicity_log_or={"Asian": -0.4, "Black": -0.4, "Mixed": -0.2, "Other": -0.4},
        loadings={"general": 0.4, "respiratory": 0.9},
    ),
    _c(
        "asthma",
        ((2, 0.005), (10, 0.06), (20, 0.07), (40, 0.075), (70, 0.085), (105, 0.09)),
        male_log_or=-0.1,
        loadings={"respiratory": 0.6},
    ),
    # Gastrointestinal.
    _c(
        "peptic_ulcer",
        ((30, 0.002), (50, 0.01), (70, 0.025), (90, 0.04), (105, 0.041)),
        male_log_or=0.2,
        loadings={"general": 0.3},
    ),
    _c(
        "gord",
        ((20, 0.005), (40, 0.04), (60, 0.09), (80, 0.13), (105, 0.14)),
        loadings={"general": 0.3, "musculoskeletal": 0.2},
    ),
    _c(
        "chronic_constipation",
        ((40, 0.005), (60, 0.015), (75, 0.04), (85, 0.08), (105, 0.11)),
        male_log_or=-0.3,
        loadings={"general": 0.5, "neurological": 0.3},
    ),
    # Neurological and sensory.
    _c(
        "dementia",
        ((55, 0.001), (65, 0.01), (75, 0.045), (85, 0.14), (95, 0.30), (105, 0.35)),
        male_log_or=-0.2,
        loadings={"general": 0.5, "neurological": 0.8},
    ),
    _c(
        "memory_impairment",
        ((60, 0.005), (80, 0.03), (95, 0.06), (105, 0.065)),
        loadings={"general": 0.4, "neurological": 0.6},
    ),
    _c(
        "parkinsons",
        ((50, 0.0005), (65, 0.004), (75, 0.01), (85, 0.02), (95, 0.025), (105, 0.026)),
        male_log_or=0.4,
        loadings={"neurological": 0.7},
    ),
    _c(
        "epilepsy",
        ((1, 0.001), (10, 0.005), (20, 0.008), (105, 0.01)),
        male_log_or=0.1,
        loadings={"neurological": 0.4},
    ),
    _c(
        "migraine",
        ((15, 0.02), (40, 0.06), (105, 0.065)),
        male_log_or=-1.0,
        loadings={"neurological": 0.3, "mental": 0.2},
    ),
    _c(
        "visual_impairment",
        ((40, 0.003), (60, 0.01), (75, 0.04), (85, 0.10), (95, 0.18), (105, 0.19)),
        loadings={"general": 0.5},
    ),
    _c(
        "hearing_impairment",
        ((40, 0.01), (60, 0.05), (75, 0.15), (85, 0.28), (95, 0.40), (105, 0.41)),
        male_log_or=0.2,
        loadings={"general": 0.4},
    ),
    _c(
        "glaucoma",
        ((40, 0.002), (60, 0.01), (80, 0.04), (95, 0.06), (105, 0.061)),
        ethnicity_log_or={"Black": 0.7},
        loadings={"general": 0.2},
    ),
    _c(
        "dizziness",
        ((40, 0.01), (70, 0.04), (90, 0.08), (105, 0.082)),
        loadings={"general": 0.5, "neurological": 0.3},
    ),
    # Musculoskeletal (osteoporosis mostly in women; gout mostly in men).
    _c(
        "osteoporosis",
        ((50, 0.005), (60, 0.025), (70, 0.06), (80, 0.13), (90, 0.20), (105, 0.21)),
        male_log_or=-1.6,
        loadings={"general": 0.4, "musculoskeletal": 0.5},
    ),
    _c(
        "osteoarthritis",
        ((35, 0.005), (50, 0.05), (60, 0.12), (70, 0.20), (80, 0.30), (90, 0.36), (105, 0.37)),
        male_log_or=-0.35,
        loadings={"general": 0.3, "musculoskeletal": 0.8},
    ),
    _c(
        "rheumatoid_arthritis",
        ((25, 0.001), (40, 0.004), (60, 0.011), (75, 0.016), (95, 0.018), (105, 0.0182)),
        male_log_or=-0.8,
        loadings={"musculoskeletal": 0.6},
    ),
    _c(
        "gout",
        ((30, 0.003), (45, 0.015), (60, 0.035), (75, 0.06), (90, 0.07), (105, 0.071)),
        male_log_or=1.3,
        loadings={"cardiometabolic": 0.5, "musculoskeletal": 0.3},
    ),
    _c(
        "chronic_pain",
        ((20, 0.01), (40, 0.05), (60, 0.11), (75, 0.15), (90, 0.18), (105, 0.182)),
        male_log_or=-0.2,
        deprivation_log_or=0.12,
        loadings={"general": 0.4, "musculoskeletal": 0.7, "mental": 0.3},
    ),
    # Mental health (QOF: depression 13% of 18+, SMI 1.0%).
    _c(
        "depression",
        ((15, 0.01), (25, 0.09), (40, 0.14), (60, 0.16), (105, 0.17)),
        male_log_or=-0.6,
        deprivation_log_or=0.12,
        loadings={"general": 0.3, "mental": 0.8},
    ),
    _c(
        "anxiety",
        ((15, 0.01), (25, 0.07), (45, 0.10), (105, 0.12)),
        male_log_or=-0.6,
        deprivation_log_or=0.08,
        loadings={"mental": 0.8},
    ),
    _c(
        "schizophrenia",
        ((18, 0.001), (30, 0.004), (50, 0.006), (105, 0.0065)),
        male_log_or=0.4,
        deprivation_log_or=0.2,
        ethnicity_log_or={"Black": 0.6},
        loadings={"mental": 0.7},
    ),
    _c(
        "bipolar_disorder",
        ((18, 0.001), (35, 0.003), (55, 0.004), (105, 0.0045)),
        deprivation_log_or=0.1,
        loadings={"mental": 0.7},
    ),
    _c(
        "insomnia",
        ((20, 0.01), (50, 0.03), (70, 0.05), (90, 0.07), (105, 0.071)),
        male_log_or=-0.4,
        loadings={"general": 0.3, "mental": 0.5},
    ),
    _c(
        "alcohol_misuse",
        ((20, 0.005), (40, 0.02), (60, 0.03), (105, 0.031)),
        male_log_or=0.8,
        deprivation_log_or=0.2,
        loadings={"mental": 0.5},
    ),
    # Other (QOF cancer register 3.5%).
    _c(
        "cancer",
        ((30, 0.002), (50, 0.02), (65, 0.06), (75, 0.10), (85, 0.14), (95, 0.16), (105, 0.162)),
        loadings={"general": 0.3},
    ),
    _c(
        "anaemia",
        ((20, 0.01), (50, 0.015), (70, 0.04), (85, 0.09), (95, 0.12), (105, 0.121)),
        male_log_or=-0.3,
        loadings={"general": 0.5},
    ),
    # Histories recorded from events during the window (prevalence at the start only).
    _c(
        "falls_history",
        ((50, 0.005), (65, 0.02), (75, 0.06), (85, 0.14), (95, 0.22), (105, 0.23)),
        male_log_or=-0.3,
        loadings={"general": 0.5, "neurological": 0.3},
        from_events=True,
    ),
    _c(
        "gi_bleed_history",
        ((40, 0.001), (60, 0.006), (75, 0.015), (90, 0.025), (105, 0.026)),
        male_log_or=0.3,
        loadings={"general": 0.3},
        from_events=True,
    ),
    _c(
        "fragility_fracture",
        ((50, 0.005), (65, 0.02), (75, 0.05), (85, 0.10), (95, 0.15), (105, 0.155)),
        male_log_or=-0.8,
        loadings={"general": 0.3, "musculoskeletal": 0.4},
        from_events=True,
    ),
)
DERIVED_CONDITIONS = ("ckd", "myocardial_infarction")
"""Condition keys not drawn from a prevalence curve: CKD follows eGFR, MI is a subset of IHD."""

MI_SHARE_OF_IHD = 0.35
"""Share of people with ischaemic heart disease who also carry a myocardial infarction code (QOF CHD register;
roughly a third of CHD patients have had an MI). Coded on the same day as the IHD onset."""


@dataclass
class ConditionModel:
    """Tabulated prevalence curves and fixed liabilities for every condition of ``CONDITIONS``."""

    specs: tuple[ConditionSpec, ...]
    mu: np.ndarray  # (C, AGE_GRID_MONTHS) scaled logit prevalence by age in months
    slope: np.ndarray  # (C, AGE_GRID_MONTHS) d mu / d age (per year)
    liability: np.ndarray  # (n, C) float32
    eligible: np.ndarray  # (n, C) bool: sex restriction
    _monthly_tables: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(s.key for s in self.specs)

    @classmethod
    def build(
        cls,
        specs: tuple[ConditionSpec, ...],
        factors: np.ndarray,
        male: np.ndarray,
        deprivation: np.ndarray,
        ethnicity_names: np.ndarray,
    ) -> ConditionModel:
        n, count = male.size, len(specs)
        ages = np.arange(AGE_GRID_MONTHS) / 12.0
        mu = np.empty((count, ages.size))
        slope = np.empty_like(mu)
        liability = np.empty((n, count), dtype=np.float32)
        eligible = np.ones((n, count), dtype=bool)
        for c, spec in enumerate(specs):
            loadings = np.array([spec.loadings.get(f, 0.0) for f in FACTORS])
            sex_term = 0.0 if spec.sex else spec.male_log_or / 2
            # Variance of the liability terms: factors (unit variance), sex (+-b/2), deprivation (Var(3 - q) = 2).
            variance = float(loadings @ loadings) + sex_term**2 + 2 * spec.deprivation_log_or**2
            scale = np.sqrt(1.0 + np.pi * variance / 8.0)
            mu[c], slope[c] = _curve(spec.anchors, ages, scale)
            x = factors @ loadings
            if not spec.sex:
                x = x + np.where(male, sex_term, -sex_term)
            else:
                eligible[:, c] = male if spec.sex == "M" else ~male
            x = x + spec.deprivation_log_or * (3 - deprivation.astype(np.float64))
            for group, log_or in spec.ethnicity_log_or.items():
                x = x + np.where(ethnicity_names == group, log_or, 0.0)
            liability[:, c] = x
        return cls(specs=specs, mu=mu, slope=slope, liability=liability, eligible=eligible)

    def prevalence_at(self, age_years: np.ndarray, extra_logit: np.ndarray | float = 0.0) -> np.ndarray:
        """(n, C) probability of having had each condition by ``age_years``."""
        idx = _age_index(age_years)
        return _sigmoid(self.mu[:, idx].T + self.liability + extra_logit) * self.eligible

    def onset_ages(
        self, c: int, who: np.ndarray, age_years: np.ndarray, prevalence: np.ndarray, u: np.ndarray
    ) -> np.ndarray:
        """Onset ages of patients ``who`` (indices), known to have condition ``c`` by ``age_years``: the inverse of
        their own prevalence curve at a uniform fraction ``u`` of their prevalence."""
        target = _logit(np.clip(u * prevalence, 1e-9, 1 - 1e-9)) - self.liability[who, c]
        ages = np.arange(AGE_GRID_MONTHS) / 12.0
        onset = np.interp(target, self.mu[c], ages)
        return np.minimum(onset, age_years)

    def monthly_onset_probability(self, age_years: np.ndarray) -> np.ndarray:
        """(n, C) float32 probability of onset within the next month for someone without the condition.

        The hazard per year is P * mu'(a); a month's probability is taken as hazard / 12 (hazards are small, so
        this differs from 1 - exp(-hazard / 12) by well under 1% of the value)."""
        if self._monthly_tables is None:
            allowed = np.array([not s.from_events for s in self.specs], dtype=np.float32)
            self._monthly_tables = (
                np.ascontiguousarray(self.mu.T, dtype=np.float32),
                np.ascontiguousarray(self.slope.T / 12.0 * allowed, dtype=np.float32),
                self.eligible.astype(np.float32),
            )
        mu_t, slope_t, eligible = self._monthly_tables
        idx = _age_index(age_years)
        logit = mu_t[idx]
        logit += self.liability
        np.negative(logit, out=logit)
        np.exp(logit, out=logit)
        logit += 1.0
        probability = slope_t[idx]
        probability /= logit
        probability *= eligible
        return probability


def _curve(
    anchors: tuple[tuple[float, float], ...], ages: np.ndarray, scale: float
) -> tuple[np.ndarray, np.ndarray]:
    anchor_ages = np.array([a for a, _ in anchors], dtype=float)
    anchor_p = np.array([p for _, p in anchors], dtype=float)
    if np.any(np.diff(anchor_ages) <= 0) or np.any(np.diff(anchor_p) < 0):
        raise ValueError("condition anchors must have increasing ages and non-decreasing prevalence")
    # Below the first anchor the prevalence falls towards 1e-5 at birth; the curve must be strictly increasing
    # so that onset ages can be found by inverting it.
    if anchor_ages[0] > 0:
        anchor_ages = np.insert(anchor_ages, 0, 0.0)
        anchor_p = np.insert(anchor_p, 0, min(1e-5, anchor_p[0] / 10))
    logits = _logit(anchor_p) * scale
    logits = logits + np.arange(logits.size) * 1e-6
    mu = np.interp(ages, anchor_ages, logits)
    slope = np.gradient(mu, ages)
    return mu, np.maximum(slope, 0.0)


def _age_index(age_years: np.ndarray) -> np.ndarray:
    return np.clip((np.asarray(age_years) * 12.0).astype(np.int64), 0, AGE_GRID_MONTHS - 1)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _logit(p: np.ndarray) -> np.ndarray:
    return np.log(p / (1.0 - p))
