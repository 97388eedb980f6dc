"""The synthetic population looks like an English practice list (README.md states the expectations checked here).

One cohort of 3,000 patients; tolerances are wide enough for that size and tight enough to catch a broken model.
"""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest

from clinical.vocabulary import DrugVocabulary
from data_access.sources.synthetic import generate_cohort

REF = date(2023, 1, 1)
YEAR_END = date(2023, 12, 31)
BANDS = (
    (0, 18, "0-17"),
    (18, 40, "18-39"),
    (40, 65, "40-64"),
    (65, 75, "65-74"),
    (75, 85, "75-84"),
    (85, 130, "85+"),
)


@pytest.fixture(scope="module")
def frames() -> dict[str, pl.DataFrame]:
    return generate_cohort(3000, 31)


@pytest.fixture(scope="module")
def present(frames: dict[str, pl.DataFrame]) -> pl.DataFrame:
    """Patients registered and alive on REF, with age and age band on that day."""
    band = pl.lit(None, dtype=pl.String)
    age = pl.lit(REF.year) - pl.col("birth_year") - (pl.col("birth_month") > REF.month).cast(pl.Int32)
    for low, high, name in reversed(BANDS):
        band = pl.when((pl.col("age") >= low) & (pl.col("age") < high)).then(pl.lit(name)).otherwise(band)
    return (
        frames["patient"]
        .filter(
            (pl.col("registered_on") <= REF)
            & (pl.col("died_on").is_null() | (pl.col("died_on") > YEAR_END))
            & (pl.col("deregistered_on").is_null() | (pl.col("deregistered_on") > YEAR_END))
        )
        .with_columns(age=age)
        .with_columns(band=band)
    )


def _classes(*names: str) -> list[str]:
    drugs = DrugVocabulary.load()
    return sorted({k for name in names for k in drugs.members(name)})


def _active(frames: dict[str, pl.DataFrame], day: date) -> pl.DataFrame:
    rx = frames["prescription"].filter(
        (pl.col("start") <= day) & (pl.col("stop").is_null() | (pl.col("stop") >= day))
    )
    return rx.with_columns(pl.col("ingredients").str.split(";")).explode("ingredients")


def _users(active: pl.DataFrame, *classes: str) -> set[str]:
    return set(active.filter(pl.col("ingredients").is_in(_classes(*classes)))["patient_id"])


def _share(patients: pl.DataFrame, ids: set[str]) -> float:
    return float(patients["id"].is_in(pl.Series(sorted(ids), dtype=pl.String).implode()).mean())


def _with_condition(frames: dict[str, pl.DataFrame], key: str, by: date) -> set[str]:
    condition = frames["condition"]
    return set(condition.filter((pl.col("condition_key") == key) & (pl.col("onset") <= by))["patient_id"])


# ---------------------------------------------------------------------- population structure
def test_age_sex_ethnicity_and_deprivation_resemble_england(
    frames: dict[str, pl.DataFrame], present: pl.DataFrame
) -> None:
    assert 0.15 <= (present["age"] >= 65).mean() <= 0.24  # Census 2021: 18.4% aged 65+
    assert 0.47 <= (present["sex"] == "F").mean() <= 0.55
    assert (present.filter(pl.col("age") >= 85)["sex"] == "F").mean() > 0.5
    assert 0.76 <= (present["ethnicity_group"] == "White").mean() <= 0.86  # Census 2021: 81%
    quintiles = present["deprivation_quintile"].value_counts(normalize=True)
    assert quintiles["proportion"].is_between(0.10, 0.30).all()


def test_long_term_condition_prevalence(frames: dict[str, pl.DataFrame], present: pl.DataFrame) -> None:
    older, adults = present.filter(pl.col("age") >= 65), present.filter(pl.col("age") >= 18)
    assert 0.45 <= _share(older, _with_condition(frames, "hypertension", REF)) <= 0.62
    assert 0.06 <= _share(adults, _with_condition(frames, "type2_diabetes", REF)) <= 0.10
    assert 0.04 <= _share(older, _with_condition(frames, "atrial_fibrillation", REF)) <= 0.12
    assert 0.05 <= _share(adults, _with_condition(frames, "asthma", REF)) <= 0.11
    oldest = present.filter(pl.col("age") >= 75)
    assert 0.18 <= _share(oldest, _with_condition(frames, "ckd", REF)) <= 0.45
    assert _share(oldest, _with_condition(frames, "dementia", REF)) > _share(
        present.filter(pl.col("age").is_between(65, 74)), _with_condition(frames, "dementia", REF)
    )


def test_conditions_cluster(frames: dict[str, pl.DataFrame], present: pl.DataFrame) -> None:
    """Shared latent factors: diabetes is commoner with hypertension than without, at the same ages."""
    older = present.filter(pl.col("age").is_between(55, 80))
    hypertension = _with_condition(frames, "hypertension", REF)
    diabetes = _with_condition(frames, "type2_diabetes", REF)
    with_htn = older.filter(pl.col("id").is_in(sorted(hypertension)))
    without = older.filter(~pl.col("id").is_in(sorted(hypertension)))
    assert _share(with_htn, diabetes) > 1.5 * _share(without, diabetes)


def test_ckd_codes_agree_with_egfr(frames: dict[str, pl.DataFrame]) -> None:
    egfr = frames["observation"].filter(pl.col("type") == "egfr")
    ckd = frames["condition"].filter(pl.col("condition_key") == "ckd").select("patient_id", "onset")
    after = egfr.join(ckd, on="patient_id").filter(pl.col("date") >= pl.col("onset"))
    assert after.group_by("patient_id").agg(pl.col("value").median())["value"].median() < 60
    low_twice = egfr.filter(pl.col("value") < 45).group_by("patient_id").len().filter(pl.col("len") >= 2)
    coded = set(ckd["patient_id"])
    assert sum(p in coded for p in low_twice["patient_id"]) >= 0.95 * low_twice.height
    stage_codes = {"700378005", "700379002", "431857002", "433146000"}
    assert set(frames["condition"].filter(pl.col("condition_key") == "ckd")["code"]) <= stage_codes


# ---------------------------------------------------------------------- prescribing
def test_medicines_per_patient_rise_with_age(frames: dict[str, pl.DataFrame], present: pl.DataFrame) -> None:
    counts = (
        _active(frames, REF).group_by("patient_id").agg(pl.col("ingredients").n_unique().alias("medicines"))
    )
    with_counts = present.join(counts, left_on="id", right_on="patient_id", how="left").with_columns(
        pl.col("medicines").fill_null(0)
    )
    means = [
        with_counts.filter(pl.col("age").is_between(low, high - 1))["medicines"].mean()
        for low, high in ((18, 40), (40, 65), (65, 75), (75, 130))
    ]
    assert means == sorted(means)
    medians = [
        with_counts.filter(pl.col("age").is_between(low, high - 1))["medicines"].median()
        for low, high in ((40, 65), (65, 75), (75, 130))
    ]
    assert medians == sorted(medians)
    assert 4 <= medians[-1] <= 9
    older = with_counts.filter(pl.col("age") >= 65)
    assert 0.03 <= (older["medicines"] >= 10).mean() <= 0.25


def test_treatment_follows_pathways(frames: dict[str, pl.DataFrame], present: pl.DataFrame) -> None:
    active = _active(frames, REF)
    af = present.filter(
        pl.col("id").is_in(sorted(_with_condition(frames, "atrial_fibrillation", REF)))
        & (pl.col("age") >= 75)
    )
    assert _share(af, _users(active, "anticoagulant")) > 0.6  # CHA2DS2-VASc >= 2 at 75+
    assert _share(af, _users(active, "doac")) > _share(af, _users(active, "vitamin_k_antagonist"))
    hf = present.filter(pl.col("id").is_in(sorted(_with_condition(frames, "heart_failure", REF))))
    assert _share(hf, _users(active, "loop_diuretic")) > 0.5
    diabetic = present.filter(pl.col("id").is_in(sorted(_with_condition(frames, "type2_diabetes", REF))))
    assert _share(diabetic, _users(active, "metformin_class")) > 0.5
    hypo = present.filter(pl.col("id").is_in(sorted(_with_condition(frames, "hypothyroidism", REF))))
    assert _share(hypo, _users(active, "thyroid_hormone")) > 0.8
    older_htn = present.filter(
        pl.col("id").is_in(sorted(_with_condition(frames, "hypertension", REF))) & (pl.col("age") >= 60)
    )
    assert _share(older_htn, _users(active, "ccb_dihydropyridine")) > _share(
        older_htn, _users(active, "thiazide_diuretic")
    )


def test_periods_include_dose_changes_switches_stops_and_acute_courses(
    frames: dict[str, pl.DataFrame],
) -> None:
    rx = frames["prescription"].sort("patient_id", "drug_key", "start")
    repeats = rx.filter(pl.col("repeat"))
    consecutive = repeats.with_columns(
        previous_text=pl.col("dose_text").shift(1).over("patient_id", "drug_key"),
        previous_stop=pl.col("stop").shift(1).over("patient_id", "drug_key"),
    )
    dose_changes = consecutive.filter(
        (pl.col("previous_stop") == pl.col("start") - pl.duration(days=1))
        & (pl.col("previous_text") != pl.col("dose_text"))
    )
    assert dose_changes.height > 20
    stopped = repeats.filter(pl.col("stop").is_not_null() & (pl.col("stop") < date(2025, 6, 1)))
    assert stopped.height > 100
    antidepressants = repeats.filter(pl.col("drug_key").is_in(_classes("antidepressant")))
    switched = (
        antidepressants.group_by("patient_id")
        .agg(pl.col("drug_key").n_unique())
        .filter(pl.col("drug_key") > 1)
    )
    assert switched.height > 3
    acute = rx.filter(~pl.col("repeat"))
    assert {"amoxicillin", "ibuprofen", "prednisolone"} <= set(acute["drug_key"])


def test_potentially_inappropriate_prescribing_occurs_at_plausible_rates(
    frames: dict[str, pl.DataFrame], present: pl.DataFrame
) -> None:
    active = _active(frames, REF)
    older = present.filter(pl.col("age") >= 65)
    ppi = _users(active, "ppi")
    # PINCER GI_P3A: an oral NSAID in the last three months at 65+ without gastroprotection.
    recent = frames["prescription"].filter(
        pl.col("drug_key").is_in(_classes("nsaid"))
        & (pl.col("start") <= REF)
        & (pl.col("stop").is_null() | (pl.col("stop") >= REF - pl.duration(days=90)))
    )
    assert 0.005 <= _share(older, set(recent["patient_id"]) - ppi) <= 0.06
    assert 0.15 <= _share(older, ppi) <= 0.45  # long-term PPI common in older people
    assert 0.01 <= _share(older, _users(active, "benzodiazepine", "z_drug")) <= 0.10
    acb = (
        active.join(
            pl.DataFrame(
                {
                    "ingredients": sorted(DrugVocabulary.load().keys),
                    "acb": [DrugVocabulary.load().acb(k) for k in sorted(DrugVocabulary.load().keys)],
                }
            ),
            on="ingredients",
        )
        .group_by("patient_id")
        .agg(pl.col("acb").sum())
    )
    assert 0.02 <= _share(older, set(acb.filter(pl.col("acb") >= 3)["patient_id"])) <= 0.25
    # Over the whole window: anticoagulated patients who had an NSAID at the same time at least once.
    rx = frames["prescription"].with_columns(stop=pl.col("stop").fill_null(date(2025, 12, 31)))
    anticoagulant = rx.filter(pl.col("drug_key").is_in(_classes("anticoagulant")))
    nsaids = rx.filter(pl.col("drug_key").is_in(_classes("nsaid")))
    both = anticoagulant.join(nsaids, on="patient_id", suffix="_n").filter(
        (pl.col("start_n") <= pl.col("stop")) & (pl.col("stop_n") >= pl.col("start"))
    )
    share = both["patient_id"].n_unique() / anticoagulant["patient_id"].n_unique()
    assert 0.01 <= share <= 0.25  # over five years, acute courses included


def test_medication_reviews_are_roughly_annual(
    frames: dict[str, pl.DataFrame], present: pl.DataFrame
) -> None:
    on_repeat = set(_active(frames, REF).filter(pl.col("repeat"))["patient_id"])
    older = present.filter((pl.col("age") >= 65) & pl.col("id").is_in(sorted(on_repeat)))
    reviewed = frames["event"].filter(
        (pl.col("type") == "medication_review") & pl.col("date").is_between(REF, YEAR_END)
    )
    assert 0.5 <= _share(older, set(reviewed["patient_id"])) <= 0.95


def test_drug_monitoring_happens_with_some_patients_overdue(frames: dict[str, pl.DataFrame]) -> None:
    rx, obs = frames["prescription"], frames["observation"]
    start, end = date(2023, 1, 1), date(2024, 6, 30)
    steady = rx.filter(
        pl.col("repeat")
        & pl.col("drug_key").is_in(_classes("renin_angiotensin"))
        & (pl.col("start") <= start - pl.duration(days=90))
        & (pl.col("stop").is_null() | (pl.col("stop") >= end))
    )["patient_id"].unique()
    tested = obs.filter((pl.col("type") == "egfr") & pl.col("date").is_between(start, end))[
        "patient_id"
    ].unique()
    untested = 1 - steady.is_in(tested.implode()).mean()
    assert 0.02 <= untested <= 0.4
    for classes, test in (
        (("vitamin_k_antagonist",), "inr"),
        (("thyroid_hormone",), "tsh"),
        (("statin",), "alt"),
    ):
        users = rx.filter(pl.col("drug_key").is_in(_classes(*classes)))["patient_id"].unique()
        with_test = obs.filter(pl.col("type") == test)["patient_id"].unique()
        assert users.is_in(with_test.implode()).mean() > 0.5, test


def test_labs_are_in_physiological_ranges(frames: dict[str, pl.DataFrame]) -> None:
    obs = frames["observation"]
    medians = dict(obs.group_by("type").agg(pl.col("value").median()).iter_rows())
    assert 75 <= medians["egfr"] <= 100 and 60 <= medians["creatinine"] <= 100
    assert 4.0 <= medians["potassium"] <= 4.7 and 136 <= medians["sodium"] <= 142
    assert 120 <= medians["systolic_bp"] <= 145 and 36 <= medians["hba1c"] <= 60
    assert 2.0 <= medians["inr"] <= 3.0 and 0.4 <= medians["lithium"] <= 1.0
    diabetic = _with_condition(frames, "type2_diabetes", date(2025, 12, 31))
    hba1c = obs.filter(pl.col("type") == "hba1c")
    assert (
        hba1c.filter(pl.col("patient_id").is_in(sorted(diabetic)))["value"].median()
        > hba1c.filter(~pl.col("patient_id").is_in(sorted(diabetic)))["value"].median()
    )


# ---------------------------------------------------------------------- outcomes and social care
def _event_share(frames: dict[str, pl.DataFrame], patients: pl.DataFrame, types: tuple[str, ...]) -> float:
    events = frames["event"].filter(pl.col("type").is_in(types) & pl.col("date").is_between(REF, YEAR_END))
    return _share(patients, set(events["patient_id"]))


@pytest.mark.parametrize(
    ("types", "low", "high"),
    [
        (("emergency_admission",), 0.10, 0.30),
        (("fall", "fracture"), 0.08, 0.25),
        (("gi_bleed", "aki", "hypoglycaemia"), 0.015, 0.08),
        (("death",), 0.015, 0.07),
    ],
)
def test_twelve_month_event_rates_at_65_plus(
    frames: dict[str, pl.DataFrame], present: pl.DataFrame, types: tuple[str, ...], low: float, high: float
) -> None:
    older = frames["patient"].filter(
        (pl.col("registered_on") <= REF)
        & (pl.col("died_on").is_null() | (pl.col("died_on") >= REF))
        & (pl.col("deregistered_on").is_null() | (pl.col("deregistered_on") > YEAR_END))
        & (pl.lit(REF.year) - pl.col("birth_year") >= 65)
    )
    assert low <= _event_share(frames, older, types) <= high
    younger = present.filter(pl.col("age").is_between(18, 64))
    assert _event_share(frames, younger, types) < _event_share(frames, older, types)


def test_social_care_rises_with_age(frames: dict[str, pl.DataFrame], present: pl.DataFrame) -> None:
    social = frames["social_care"].filter(
        (pl.col("start") <= REF) & (pl.col("end").is_null() | (pl.col("end") >= REF))
    )
    for kind in ("lives_alone", "home_care", "unpaid_carer"):
        ids = set(social.filter(pl.col("kind") == kind)["patient_id"])
        assert _share(present.filter(pl.col("age") >= 75), ids) > _share(
            present.filter(pl.col("age").is_between(40, 64)), ids
        ), kind
    care_home = set(social.filter(pl.col("kind") == "care_home")["patient_id"])
    assert 0.01 <= _share(present.filter(pl.col("age") >= 75), care_home) <= 0.12
