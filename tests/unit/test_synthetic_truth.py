"""The hazard model and the true 12-month risk (``synthetic_truth``) behave as README.md documents."""

from __future__ import annotations

from datetime import date

import numpy as np
import polars as pl
import pytest

from clinical.vocabulary import DrugVocabulary
from data_access.sources.synthetic import generate_cohort
from data_access.sources.synthetic.engine import World
from data_access.sources.synthetic.hazards import (
    COMPONENTS,
    EFFECTS,
    HazardModel,
    MonthlyRisk,
    twelve_month_risk,
)

LANDMARKS = [date(2021 + i // 2, 1 + 6 * (i % 2), 1) for i in range(9)]


# ---------------------------------------------------------------------- the hazard model itself
def _state(**on: float) -> dict[str, np.ndarray]:
    model = HazardModel()
    x = {term: np.zeros(1, dtype=np.float32) for term in model.terms}
    x["age_decades"] = np.array([1.5], dtype=np.float32)  # age 80
    for term, value in on.items():
        x[term] = np.array([value], dtype=np.float32)
    return x


def _hazard(component: str, *terms: str) -> float:
    risk = HazardModel().monthly(_state(**dict.fromkeys(terms, 1.0)))
    return float(risk.components[component][0])


@pytest.mark.parametrize(
    ("component", "a", "b"),
    [
        ("gi_bleed", ("nsaid",), ("anticoagulant",)),
        ("gi_bleed", ("nsaid",), ("oral_corticosteroid",)),
        ("aki", ("nsaid", "nsaid_new"), ("renin_angiotensin", "diuretic")),
        (
            "hypoglycaemia",
            ("sulfonylurea", "diabetes", "hypo_risk_drug"),
            ("egfr_lt_30", "egfr_lt_45", "egfr_lt_60"),
        ),
        ("fall", ("opioid",), ("benzodiazepine", "benzodiazepine_or_z_drug")),
    ],
)
def test_a_harmful_combination_exceeds_the_sum_of_its_parts(
    component: str, a: tuple[str, ...], b: tuple[str, ...]
) -> None:
    """Relative excess risk due to interaction > 0: the joint excess is more than the two excesses added."""
    base = _hazard(component)
    joint = _hazard(component, *a, *b) - base
    assert joint > (_hazard(component, *a) - base) + (_hazard(component, *b) - base)


@pytest.mark.parametrize(
    ("component", "a", "b"),
    [
        ("aki", ("nsaid",), ("renin_angiotensin", "diuretic")),  # Lapi 2013: only the triple raises AKI
        ("gi_bleed", ("nsaid",), ("mra",)),  # Masclee 2014
        ("hypoglycaemia", ("sulfonylurea", "hypo_risk_drug"), ("egfr_lt_30",)),  # van Dalem 2016
        ("death", ("opioid",), ("benzodiazepine_or_z_drug",)),
    ],
)
def test_planted_interactions_exceed_the_product_of_main_effects(
    component: str, a: tuple[str, ...], b: tuple[str, ...]
) -> None:
    base = _hazard(component, "diabetes") if component == "hypoglycaemia" else _hazard(component)
    extra = ("diabetes",) if component == "hypoglycaemia" else ()
    ratio_a = _hazard(component, *extra, *a) / base
    ratio_b = _hazard(component, *extra, *b) / base
    assert _hazard(component, *extra, *a, *b) / base > 1.05 * ratio_a * ratio_b


def test_every_effect_is_sourced_and_uses_known_terms() -> None:
    world = World(60, 5, date(2021, 1, 1), date(2021, 6, 30), None, False)
    world.initialise()
    covariates = world.covariates()
    for effect in EFFECTS:
        assert effect.component in COMPONENTS and effect.rate_ratio > 0
        assert effect.source.strip(), effect
        assert "assumption" in effect.source or any(str(y) in effect.source for y in range(1990, 2026)), (
            effect
        )
        assert set(effect.terms) <= set(covariates), effect
    for term in HazardModel().terms:
        assert term in covariates, term


def test_outcome_probabilities_combine_components() -> None:
    risk = HazardModel().monthly(_state(nsaid=1.0, anticoagulant=1.0, fall_last_year=1.0))
    monthly = risk.outcome_monthly()
    c = risk.components
    assert monthly["medication_harm"][0] >= max(c["gi_bleed"][0], c["aki"][0], c["hypoglycaemia"][0])
    assert monthly["fall_fracture"][0] >= c["fall"][0]
    assert monthly["emergency_admission"][0] > c["admission"][0]  # harm and falls add admissions
    assert monthly["death"][0] > c["death"][0]
    assert twelve_month_risk(np.array([0.01]))[0] == pytest.approx(1 - 0.99**12)
    assert isinstance(risk, MonthlyRisk)


# ---------------------------------------------------------------------- the truth table of a generated cohort
@pytest.fixture(scope="module")
def frames() -> dict[str, pl.DataFrame]:
    return generate_cohort(3000, 41, enrich_smr=True)


@pytest.fixture(scope="module")
def landmark_states(frames: dict[str, pl.DataFrame]) -> pl.DataFrame:
    """Truth at the landmarks joined with each patient's repeat-medicine classes and age on that day."""
    drugs = DrugVocabulary.load()
    classes = (
        "nsaid",
        "anticoagulant",
        "renin_angiotensin",
        "diuretic",
        "opioid",
        "benzodiazepine",
        "z_drug",
    )
    repeats = (
        frames["prescription"]
        .filter(pl.col("repeat"))
        .with_columns(pl.col("ingredients").str.split(";"))
        .explode("ingredients")
    )
    landmarks = pl.DataFrame({"month": LANDMARKS})
    active = repeats.join(landmarks, how="cross").filter(
        (pl.col("start") < pl.col("month")) & (pl.col("stop").is_null() | (pl.col("stop") >= pl.col("month")))
    )
    flags = active.group_by("patient_id", "month").agg(
        [pl.col("ingredients").is_in(sorted(drugs.members(c))).any().alias(c) for c in classes]
    )
    truth = (
        frames["synthetic_truth"]
        .filter(pl.col("month").is_in(LANDMARKS))
        .pivot(on="outcome", index=["patient_id", "month"], values="risk")
    )
    patients = frames["patient"].select("id", "birth_year")
    return (
        truth.join(flags, on=["patient_id", "month"], how="left")
        .with_columns([pl.col(c).fill_null(False) for c in classes])
        .join(patients, left_on="patient_id", right_on="id")
        .with_columns(age=pl.col("month").dt.year() - pl.col("birth_year"))
    )


def _mean_ratio(states: pl.DataFrame, outcome: str, exposed: pl.Expr, reference: pl.Expr) -> float:
    return states.filter(exposed)[outcome].mean() / states.filter(reference)[outcome].mean()


def test_true_risk_is_higher_with_planted_harmful_combinations(landmark_states: pl.DataFrame) -> None:
    s = landmark_states.filter(pl.col("age") >= 65)
    nsaid, anticoagulant = pl.col("nsaid"), pl.col("anticoagulant")
    assert _mean_ratio(s, "medication_harm", nsaid & anticoagulant, ~nsaid & anticoagulant) > 1.3
    triple = pl.col("renin_angiotensin") & pl.col("diuretic")
    assert _mean_ratio(s, "medication_harm", triple & nsaid, triple & ~nsaid) > 1.3
    sedative = pl.col("benzodiazepine") | pl.col("z_drug")
    assert _mean_ratio(s, "fall_fracture", pl.col("opioid") & sedative, ~pl.col("opioid") & ~sedative) > 1.5


def test_true_risk_rises_with_age(landmark_states: pl.DataFrame) -> None:
    bands = ((40, 64), (65, 74), (75, 84), (85, 120))
    for outcome in ("emergency_admission", "fall_fracture", "medication_harm", "death"):
        means = [landmark_states.filter(pl.col("age").is_between(lo, hi))[outcome].mean() for lo, hi in bands]
        assert means == sorted(means), outcome


def _auroc(score: np.ndarray, label: np.ndarray) -> float:
    ranks = np.empty(score.size)
    ranks[np.argsort(score, kind="stable")] = np.arange(1, score.size + 1)
    positives = label.sum()
    return float(
        (ranks[label].sum() - positives * (positives + 1) / 2) / (positives * (label.size - positives))
    )


@pytest.mark.parametrize(
    ("outcome", "types", "low", "high"),
    [
        ("emergency_admission", ("emergency_admission",), 0.75, 1.35),
        ("fall_fracture", ("fall", "fracture"), 0.75, 1.35),
        ("medication_harm", ("gi_bleed", "aki", "hypoglycaemia"), 0.6, 1.6),
        ("death", ("death",), 0.6, 1.5),
    ],
)
def test_true_risk_matches_what_happens_next(
    frames: dict[str, pl.DataFrame], outcome: str, types: tuple[str, ...], low: float, high: float
) -> None:
    landmark = date(2022, 1, 1)
    truth = frames["synthetic_truth"].filter((pl.col("month") == landmark) & (pl.col("outcome") == outcome))
    events = frames["event"].filter(
        pl.col("type").is_in(types) & pl.col("date").is_between(landmark, date(2022, 12, 31))
    )
    label = truth["patient_id"].is_in(events["patient_id"].unique().implode()).to_numpy()
    risk = truth["risk"].to_numpy()
    assert low <= label.mean() / risk.mean() <= high
    assert _auroc(risk, label) > 0.68
