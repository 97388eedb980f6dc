"""The outcome hazard model: monthly probabilities of falls, fractures, medication harm, admission and death.

For each *component* (fall, fracture, gi_bleed, aki, hypoglycaemia, direct admission, direct death, A&E) the
monthly hazard is log-linear in the patient's state at the start of the month:

    log h = log(base) + age_slope * (age - 65) / 10 + sum_k log(RR_k) * x_k

where each term ``x_k`` is a 0/1 covariate or a product of covariates (an interaction). The monthly probability is
``1 - exp(-h)`` (capped at 0.5). Every main effect is a published rate/odds ratio where one exists, otherwise it is
labelled "assumption" with the reasoning; interaction terms are published combined estimates expressed relative to
the product of the main effects. Because the model is multiplicative, the excess risk of any combination of
harmful exposures exceeds the sum of their excess risks (RERI > 0); for the combinations listed with an interaction
term it also exceeds their product, so models that see only counts of medicines cannot reproduce it.

The four model outcomes combine components (README.md, "Outcomes"):
- fall_fracture = fall or fracture; medication_harm = gi_bleed, aki or hypoglycaemia;
- emergency_admission = a direct admission, or a harm event / fracture / fall that leads to one;
- death = direct death, or death following a harm event or fracture.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

COMPONENTS = ("fall", "fracture", "gi_bleed", "aki", "hypoglycaemia", "admission", "death", "ae")

# Monthly hazard of a 65-year-old woman in the reference state (fit, no listed condition or exposure), and the
# log-hazard change per decade of age. Tuned so that 12-month event rates at 65+ fall in the ranges of the brief
# (admission 10-25%, falls 10-20%, medication harm 3-6%, death 2-5%) and mortality roughly doubles every 8 years of
# age (Gompertz; ONS National Life Tables, England 2020-22).
BASE_MONTHLY: dict[str, float] = {
    "fall": 0.0042,
    "fracture": 0.00025,
    "gi_bleed": 0.00022,
    "aki": 0.00075,
    "hypoglycaemia": 0.000012,
    "admission": 0.0042,
    "death": 0.00042,
    "ae": 0.009,
}
AGE_SLOPE_PER_DECADE: dict[str, float] = {
    "fall": np.log(1.5),
    "fracture": np.log(1.8),
    "gi_bleed": np.log(1.5),
    "aki": np.log(1.6),
    "hypoglycaemia": np.log(1.3),
    "admission": np.log(1.3),
    "death": np.log(2.1),
    "ae": np.log(1.1),
}
MAX_MONTHLY_PROBABILITY = 0.5


@dataclass(frozen=True)
class Effect:
    component: str
    terms: tuple[str, ...]
    """Covariates multiplied together (one term: a main effect; several: an interaction)."""
    rate_ratio: float
    source: str


def _e(component: str, terms: str, rate_ratio: float, source: str) -> Effect:
    return Effect(component, tuple(terms.split("*")), rate_ratio, source)


WOOLCOTT = "Woolcott JC et al. Arch Intern Med 2009;169:1952-60 (meta-analysis, Bayesian OR)"
SEPPALA_III = "Seppala LJ et al. J Am Med Dir Assoc 2018;19:372.e1-8 (FRIDs meta-analysis III, adjusted OR)"
CLEGG = "Clegg A et al. Age Ageing 2016;45:353-60 (eFI, 1-year adjusted HR)"
MASCLEE = "Masclee GMC et al. Gastroenterology 2014;147:784-92 (UGIB, self-controlled IRR)"
LAPI = "Lapi F et al. BMJ 2013;346:e8525 (AKI, rate ratio)"
VAN_DALEM = "van Dalem J et al. BMJ 2016;354:i3625 (hypoglycaemia, sulfonylurea vs metformin)"
PAYNE = "Payne RA et al. Br J Clin Pharmacol 2014;77:1073-82 (unplanned admission OR vs 1-3 medicines)"

EFFECTS: tuple[Effect, ...] = (
    # ---------------------------------------------------------------- falls
    _e("fall", "male", 0.85, "assumption: women report and are recorded with more falls (NICE CG161)"),
    _e("fall", "frailty_mild", 1.5, "assumption: graded by eFI category like " + CLEGG),
    _e("fall", "frailty_moderate", 2.2, "assumption: graded by eFI category like " + CLEGG),
    _e("fall", "frailty_severe", 3.2, "assumption: graded by eFI category like " + CLEGG),
    _e(
        "fall",
        "fall_last_year",
        2.0,
        "assumption: a previous fall is the strongest predictor (NICE CG161, 2013)",
    ),
    _e("fall", "dementia", 1.8, "assumption: cognitive impairment is a NICE CG161 risk factor"),
    _e("fall", "parkinsons", 2.0, "assumption: NICE CG161 risk factor"),
    _e("fall", "stroke_tia", 1.5, "assumption: NICE CG161 risk factor"),
    _e("fall", "visual_impairment", 1.3, "assumption: NICE CG161 risk factor"),
    _e("fall", "urinary_incontinence", 1.3, "assumption: NICE CG161 risk factor"),
    _e("fall", "dizziness", 1.4, "assumption: NICE CG161 risk factor"),
    _e("fall", "care_home", 1.5, "assumption: falls are about three times as common in care homes"),
    _e("fall", "z_drug", 1.47, WOOLCOTT + ", sedatives and hypnotics"),
    _e("fall", "benzodiazepine", 1.57, WOOLCOTT + ", benzodiazepines"),
    _e("fall", "antidepressant", 1.68, WOOLCOTT + ", antidepressants"),
    _e("fall", "antipsychotic", 1.59, WOOLCOTT + ", neuroleptics and antipsychotics"),
    _e("fall", "antihypertensive", 1.24, WOOLCOTT + ", antihypertensive agents"),
    _e("fall", "diuretic", 1.07, WOOLCOTT + ", diuretics"),
    _e("fall", "nsaid", 1.21, WOOLCOTT + ", NSAIDs"),
    _e("fall", "opioid", 1.60, SEPPALA_III + ", opioids"),
    _e("fall", "gabapentinoid", 1.55, SEPPALA_III + ", antiepileptics"),
    _e("fall", "alpha_blocker", 1.3, "assumption: orthostatic hypotension with alpha-blockers (STOPP v3 B)"),
    _e(
        "fall",
        "acb_3plus",
        1.3,
        "assumption: moderate-high anticholinergic burden (Stewart C et al. Ther Adv Drug Saf 2021)",
    ),
    _e(
        "fall",
        "low_sbp_treated",
        1.6,
        "assumption: systolic < 110 mmHg on two or more antihypertensives (overtreatment)",
    ),
    _e(
        "fall",
        "benzodiazepine_or_z_drug*opioid",
        1.4,
        "assumption (interaction): AGS Beers 2019 advises against opioid + benzodiazepine",
    ),
    _e(
        "fall",
        "cns_active_3plus",
        1.5,
        "assumption (interaction): AGS Beers 2019, three or more CNS-active drugs increase falls",
    ),
    # ---------------------------------------------------------------- fracture (not from a fall: vertebral etc.)
    _e("fracture", "osteoporosis", 3.0, "assumption: osteoporosis triples fragility fracture risk"),
    _e(
        "fracture",
        "oral_corticosteroid",
        1.6,
        "van Staa TP et al. J Bone Miner Res 2000;15:993-1000 (oral glucocorticoids, hip RR 1.61)",
    ),
    _e("fracture", "male", 0.6, "assumption: women have about twice the fragility fracture incidence"),
    # ---------------------------------------------------------------- upper GI bleeding
    _e("gi_bleed", "nsaid", 4.3, MASCLEE + ", nsNSAID monotherapy"),
    _e(
        "gi_bleed", "antiplatelet", 3.1, MASCLEE + ", low-dose aspirin monotherapy (applied to antiplatelets)"
    ),
    _e(
        "gi_bleed",
        "anticoagulant",
        2.5,
        "assumption: oral anticoagulants roughly double to triple GI bleeding",
    ),
    _e("gi_bleed", "ssri", 1.55, "Anglin R et al. Am J Gastroenterol 2014;109:811-9 (SSRI, OR 1.55)"),
    _e(
        "gi_bleed",
        "oral_corticosteroid",
        1.43,
        "Narum S et al. BMJ Open 2014;4:e004587 (corticosteroids, OR 1.43)",
    ),
    _e(
        "gi_bleed",
        "ulcer_or_bleed_history",
        2.5,
        "assumption: previous ulcer/bleed (the PINCER GI indicators' rationale)",
    ),
    _e("gi_bleed", "alcohol_misuse", 1.8, "assumption"),
    _e(
        "gi_bleed",
        "ppi_with_bleeding_drug",
        0.5,
        "Lanas A et al. Am J Gastroenterol 2007;102:507-15 (PPIs roughly halve drug-associated ulcer bleeding)",
    ),
    _e(
        "gi_bleed",
        "nsaid*oral_corticosteroid",
        12.8 / (4.3 * 1.43),
        MASCLEE + ": nsNSAID + corticosteroid IRR 12.8 (RERI 5.5)",
    ),
    _e(
        "gi_bleed",
        "nsaid*mra",
        11.0 / 4.3,
        MASCLEE + ": nsNSAID + aldosterone antagonist IRR 11.0 (RERI 4.5)",
    ),
    _e(
        "gi_bleed",
        "nsaid*anticoagulant",
        1.3,
        "assumption (interaction): synergy on top of the product; "
        + MASCLEE
        + " reports RERI 2.4 and Lamberts M et al. "
        "Ann Intern Med 2014;161:690-8 HR 3.54 for NSAIDs in antithrombotic users",
    ),
    # ---------------------------------------------------------------- acute kidney injury
    _e("aki", "egfr_lt_60", 2.0, "assumption: CKD is the main AKI risk factor (KDIGO 2012)"),
    _e("aki", "egfr_lt_45", 1.5, "assumption: graded with CKD stage"),
    _e("aki", "egfr_lt_30", 1.5, "assumption: graded with CKD stage"),
    _e("aki", "heart_failure", 2.0, "assumption"),
    _e("aki", "diabetes", 1.5, "assumption"),
    _e("aki", "renin_angiotensin", 1.2, "assumption: modest alone"),
    _e("aki", "diuretic", 1.3, "assumption: modest alone"),
    _e(
        "aki",
        "nsaid",
        1.3,
        "assumption: Dreischulte T et al. Kidney Int 2015;88:396-403 found NSAID RR 1.6 in RAS/diuretic users",
    ),
    _e(
        "aki",
        "renin_angiotensin*diuretic*nsaid",
        1.31,
        LAPI + ": triple therapy RR 1.31; dual therapy not associated",
    ),
    _e(
        "aki",
        "renin_angiotensin*diuretic*nsaid_new",
        1.82 / 1.31,
        LAPI + ": RR 1.82 in the first 30 days of triple therapy",
    ),
    # ---------------------------------------------------------------- hypoglycaemia
    _e(
        "hypoglycaemia",
        "diabetes",
        25.0,
        "assumption: background rate of treated diabetes (metformin alone) vs none",
    ),
    _e("hypoglycaemia", "sulfonylurea", 2.50, VAN_DALEM + ", HR 2.50"),
    _e(
        "hypoglycaemia",
        "insulin",
        4.0,
        "assumption: insulin carries the highest hypoglycaemia risk (UK Hypoglycaemia Study Group 2007)",
    ),
    _e("hypoglycaemia", "sulfonylurea*egfr_lt_30", 4.96 / 2.50, VAN_DALEM + ": HR 4.96 with eGFR < 30"),
    _e(
        "hypoglycaemia",
        "hypo_risk_drug*tight_control_70plus",
        2.52,
        "Ling S et al. Diabetes Care 2021 (CPRD, age >= 70, HbA1c < 53 mmol/mol on sulfonylurea or insulin: HR 2.52)",
    ),
    _e("hypoglycaemia", "dementia", 1.5, "assumption"),
    _e("hypoglycaemia", "egfr_lt_45", 1.3, "assumption"),
    # ---------------------------------------------------------------- emergency admission (direct)
    _e("admission", "frailty_mild", 1.93, CLEGG + ", hospitalisation"),
    _e("admission", "frailty_moderate", 3.04, CLEGG + ", hospitalisation"),
    _e("admission", "frailty_severe", 4.73, CLEGG + ", hospitalisation"),
    _e("admission", "meds_4_6", 1.25, PAYNE + ", 4-6 medicines (one condition)"),
    _e("admission", "meds_7_9", 1.8, "assumption: between " + PAYNE + " estimates for 4-6 and 10+ medicines"),
    _e("admission", "meds_10plus", 3.42, PAYNE + ", 10+ medicines (one condition)"),
    _e(
        "admission",
        "meds_4_6*ltc_6plus",
        1.00 / 1.25,
        PAYNE + ": with six or more conditions, 4-6 medicines OR 1.00",
    ),
    _e(
        "admission",
        "meds_10plus*ltc_6plus",
        1.50 / 3.42,
        PAYNE + ": with six or more conditions, 10+ medicines OR 1.50",
    ),
    _e("admission", "ltc_6plus", 1.5, "assumption: multimorbidity (Barnett K et al. Lancet 2012)"),
    _e("admission", "heart_failure", 1.8, "assumption: ambulatory care sensitive condition"),
    _e("admission", "copd", 1.8, "assumption: ambulatory care sensitive condition"),
    _e("admission", "egfr_lt_30", 1.6, "assumption"),
    _e("admission", "cancer", 1.5, "assumption"),
    _e("admission", "diabetes", 1.2, "assumption"),
    _e(
        "admission",
        "admission_last_year",
        2.0,
        "assumption: prior admission is the strongest predictor in admission risk scores",
    ),
    _e("admission", "lives_alone", 1.15, "assumption"),
    _e("admission", "acb_3plus", 1.2, "assumption"),
    _e("admission", "opioid", 1.2, "assumption"),
    # ---------------------------------------------------------------- death (direct)
    _e("death", "male", 1.4, "assumption: ONS life tables, male mortality about 1.4x at 65-85"),
    _e("death", "frailty_mild", 1.92, CLEGG + ", mortality"),
    _e("death", "frailty_moderate", 3.10, CLEGG + ", mortality"),
    _e("death", "frailty_severe", 4.52, CLEGG + ", mortality"),
    _e("death", "heart_failure", 1.8, "assumption"),
    _e("death", "copd", 1.6, "assumption"),
    _e("death", "cancer", 2.5, "assumption"),
    _e("death", "dementia", 1.8, "assumption"),
    _e("death", "egfr_lt_30", 1.8, "assumption"),
    _e("death", "care_home", 1.8, "assumption"),
    _e("death", "admission_last_year", 1.6, "assumption"),
    _e(
        "death",
        "antipsychotic*dementia",
        1.54,
        "Schneider LS et al. JAMA 2005;294:1934-43 (atypical antipsychotics in dementia, OR 1.54)",
    ),
    _e(
        "death",
        "opioid*benzodiazepine_or_z_drug",
        1.5,
        "assumption (interaction) informed by Sun EC et al. BMJ 2017;356:j760 (concurrent use about doubles opioid overdose)",
    ),
    _e(
        "death",
        "opioid*gabapentinoid",
        1.3,
        "assumption (interaction) informed by Gomes T et al. PLoS Med 2017;14:e1002396 (OR 1.49)",
    ),
    _e(
        "death",
        "acb_3plus",
        1.3,
        "assumption: conservative relative to Ruxton K et al. Br J Clin Pharmacol 2015;80:209-20",
    ),
    # ---------------------------------------------------------------- A&E attendance without admission
    _e("ae", "frailty_moderate", 1.5, "assumption"),
    _e("ae", "frailty_severe", 2.0, "assumption"),
    _e("ae", "deprivation", 1.1, "assumption: per quintile towards most deprived"),
)

# Consequences of events within the month (probabilities), used both to realise events and in the true risk.
FRACTURE_GIVEN_FALL = 0.05
"""Probability that a recorded fall causes a fracture at age 65 (assumption: 5-10% of falls cause fractures)."""
FRACTURE_GIVEN_FALL_EFFECTS: dict[str, float] = {
    "age_decades": 1.3,
    "male": 0.7,
    "osteoporosis": 2.0,
    "osteoporosis_treated": 0.6,  # Wells GA et al. Cochrane 2008: alendronate, secondary prevention hip RR ~0.6
    "oral_corticosteroid": 1.5,
}
ADMISSION_AFTER: dict[str, float] = {
    "gi_bleed": 0.85,
    "aki": 0.45,
    "hypoglycaemia": 0.5,
    "fracture": 0.5,
    "fall": 0.06,
}
DEATH_AFTER: dict[str, float] = {"gi_bleed": 0.06, "aki": 0.04, "hypoglycaemia": 0.02, "fracture": 0.03}
AE_AFTER: dict[str, float] = {"admission": 0.8, "fall": 0.35}


@dataclass(frozen=True)
class MonthlyRisk:
    """Monthly event probabilities per component and the derived per-outcome monthly probabilities."""

    components: dict[str, np.ndarray]
    fracture_given_fall: np.ndarray

    def outcome_monthly(self) -> dict[str, np.ndarray]:
        c = self.components
        fall, fracture, p_frac = c["fall"], c["fracture"], self.fracture_given_fall
        fall_fracture = 1 - (1 - fall) * (1 - fracture)
        harm = 1 - (1 - c["gi_bleed"]) * (1 - c["aki"]) * (1 - c["hypoglycaemia"])
        fall_admission = fall * (
            p_frac * ADMISSION_AFTER["fracture"] + (1 - p_frac) * ADMISSION_AFTER["fall"]
        )
        admission = 1 - (
            (1 - c["admission"])
            * (1 - c["gi_bleed"] * ADMISSION_AFTER["gi_bleed"])
            * (1 - c["aki"] * ADMISSION_AFTER["aki"])
            * (1 - c["hypoglycaemia"] * ADMISSION_AFTER["hypoglycaemia"])
            * (1 - fracture * ADMISSION_AFTER["fracture"])
            * (1 - fall_admission)
        )
        death = 1 - (
            (1 - c["death"])
            * (1 - c["gi_bleed"] * DEATH_AFTER["gi_bleed"])
            * (1 - c["aki"] * DEATH_AFTER["aki"])
            * (1 - c["hypoglycaemia"] * DEATH_AFTER["hypoglycaemia"])
            * (1 - (fracture + fall * p_frac) * DEATH_AFTER["fracture"])
        )
        return {
            "emergency_admission": admission,
            "fall_fracture": fall_fracture,
            "medication_harm": harm,
            "death": death,
        }


class HazardModel:
    """Evaluates ``EFFECTS`` on a dictionary of covariate arrays."""

    def __init__(self, effects: tuple[Effect, ...] = EFFECTS) -> None:
        unknown = {e.component for e in effects} - set(COMPONENTS)
        if unknown:
            raise ValueError(f"unknown hazard components: {sorted(unknown)}")
        self.effects = effects
        self.terms = sorted(
            {t for e in effects for t in e.terms} | set(FRACTURE_GIVEN_FALL_EFFECTS) - {"age_decades"}
        )

    def monthly(self, x: dict[str, np.ndarray]) -> MonthlyRisk:
        age_decades = x["age_decades"]
        log_h = {c: np.log(BASE_MONTHLY[c]) + AGE_SLOPE_PER_DECADE[c] * age_decades for c in COMPONENTS}
        for effect in self.effects:
            value = x[effect.terms[0]]
            for term in effect.terms[1:]:
                value = value * x[term]
            log_h[effect.component] = log_h[effect.component] + np.log(effect.rate_ratio) * value
        components = {
            c: np.minimum(1.0 - np.exp(-np.exp(np.minimum(v, 5.0))), MAX_MONTHLY_PROBABILITY)
            for c, v in log_h.items()
        }
        log_frac = np.log(FRACTURE_GIVEN_FALL) + np.log(
            FRACTURE_GIVEN_FALL_EFFECTS["age_decades"]
        ) * np.maximum(age_decades, -2.0)
        for term, ratio in FRACTURE_GIVEN_FALL_EFFECTS.items():
            if term != "age_decades":
                log_frac = log_frac + np.log(ratio) * x[term]
        return MonthlyRisk(components=components, fracture_given_fall=np.minimum(np.exp(log_frac), 0.5))


def twelve_month_risk(monthly: np.ndarray) -> np.ndarray:
    """1 - prod(1 - h) over 12 months with the monthly probability held constant."""
    return 1.0 - (1.0 - monthly) ** 12
