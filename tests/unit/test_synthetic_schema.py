"""The synthetic tables conform to the canonical schema and hang together (keys, codes, dates, life course)."""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest
from sqlalchemy import Boolean, Date, Float, Integer, String, Text

from clinical.vocabulary import ConditionVocabulary, DrugVocabulary
from data_access.loading import table_columns
from data_access.schema import Base
from data_access.sources.synthetic import OUTCOMES, TABLES, generate_cohort

WINDOW_START, WINDOW_END = date(2021, 1, 1), date(2025, 12, 31)
EVENT_TYPES = {
    "emergency_admission",
    "ae_attendance",
    "fall",
    "fracture",
    "gi_bleed",
    "aki",
    "hypoglycaemia",
    "death",
    "medication_review",
}
OBSERVATION_TYPES = {
    "egfr",
    "creatinine",
    "potassium",
    "sodium",
    "hba1c",
    "systolic_bp",
    "alt",
    "haemoglobin",
    "inr",
    "lithium",
    "tsh",
    "bmi",
}
SOCIAL_KINDS = {"care_home", "home_care", "lives_alone", "unpaid_carer"}


@pytest.fixture(scope="module")
def frames() -> dict[str, pl.DataFrame]:
    return generate_cohort(1500, 21)


def _expected_dtype(column) -> tuple[type[pl.DataType], ...]:  # noqa: ANN001 - SQLAlchemy column
    kind = column.type
    if isinstance(kind, Boolean):
        return (pl.Boolean,)
    if isinstance(kind, Date):
        return (pl.Date,)
    if isinstance(kind, Integer):
        return (pl.Int32, pl.Int64)
    if isinstance(kind, Float):
        return (pl.Float64,)
    if isinstance(kind, String | Text):
        return (pl.String,)
    raise AssertionError(f"unexpected column type {kind}")


@pytest.mark.parametrize("table", TABLES)
def test_columns_and_dtypes_match_the_schema(frames: dict[str, pl.DataFrame], table: str) -> None:
    frame = frames[table]
    assert frame.columns == table_columns(table)
    sa_table = Base.metadata.tables[table]
    for name, dtype in frame.schema.items():
        column = sa_table.columns[name]
        assert isinstance(dtype, _expected_dtype(column)), f"{table}.{name}: {dtype}"
        if not column.nullable:
            assert frame[name].null_count() == 0, f"{table}.{name} has nulls"


def test_identifiers_and_practices(frames: dict[str, pl.DataFrame]) -> None:
    patient, practice = frames["patient"], frames["practice"]
    assert patient.height == 1500
    assert patient["id"].str.contains(r"^S\d{7}$").all() and patient["id"].is_unique().all()
    assert practice["id"].to_list() == ["P001", "P002", "P003"]  # at least three practices
    assert practice["name"].is_unique().all() and practice["icb"].null_count() == 0
    assert set(patient["practice_id"].unique()) <= set(practice["id"])
    assert (patient["source"] == "synthetic").all()
    assert set(patient["sex"].unique()) == {"F", "M"}
    assert set(patient["ethnicity_group"].unique()) <= {"White", "Asian", "Black", "Mixed", "Other"}
    assert patient["deprivation_quintile"].is_between(1, 5).all()
    assert patient["birth_month"].is_between(1, 12).all()


def test_every_child_row_belongs_to_a_patient(frames: dict[str, pl.DataFrame]) -> None:
    ids = set(frames["patient"]["id"])
    for table in ("social_care", "condition", "prescription", "observation", "event", "synthetic_truth"):
        assert set(frames[table]["patient_id"].unique()) <= ids, table


def test_conditions_carry_vocabulary_codes_and_terms(frames: dict[str, pl.DataFrame]) -> None:
    vocabulary = ConditionVocabulary.load()
    condition = frames["condition"]
    assert (condition["code_system"] == "snomed").all()
    assert condition["condition_key"].n_unique() >= 30
    for code, term, key in condition.select("code", "term", "condition_key").unique().iter_rows():
        match = vocabulary.match(code)
        assert match is not None and match.key == key, (code, key)
        assert term == vocabulary.condition(key).term
    assert condition.filter(pl.col("onset") > WINDOW_END).is_empty()


def test_prescriptions_carry_vocabulary_drug_data(frames: dict[str, pl.DataFrame]) -> None:
    drugs = DrugVocabulary.load()
    rx = frames["prescription"]
    assert set(rx["code_system"].unique()) <= {"bnf", "text"}
    for row in (
        rx.select("code_system", "code", "drug_key", "ingredients", "bnf_section", "atc")
        .unique()
        .iter_rows(named=True)
    ):
        ingredients = row["ingredients"].split(";")
        assert ingredients == sorted(ingredients) and row["drug_key"] in ingredients
        assert all(drugs.get(k) is not None for k in ingredients), row
        primary = drugs.drug(row["drug_key"])
        assert (row["bnf_section"], row["atc"]) == (primary.bnf_section, primary.atc)
        if row["code_system"] == "bnf":
            assert set(drugs.match_code("bnf", row["code"]).ingredients) == set(ingredients)
        else:
            assert row["code"] is None
    assert rx.filter(pl.col("stop") < pl.col("start")).is_empty()
    acute = rx.filter(~pl.col("repeat"))
    assert acute.height > 0 and acute["stop"].null_count() == 0
    assert ((acute["stop"] - acute["start"]).dt.total_days() < 28).all()


def test_repeat_periods_of_one_drug_never_overlap(frames: dict[str, pl.DataFrame]) -> None:
    repeats = frames["prescription"].filter(pl.col("repeat")).sort("patient_id", "drug_key", "start")
    overlaps = repeats.with_columns(
        previous_stop=pl.col("stop").shift(1).over("patient_id", "drug_key"),
        previous_open=pl.col("stop").shift(1).over("patient_id", "drug_key").is_null()
        & pl.col("start").shift(1).over("patient_id", "drug_key").is_not_null(),
    ).filter((pl.col("start") <= pl.col("previous_stop")) | pl.col("previous_open"))
    assert overlaps.is_empty(), overlaps.head()


def test_observations_events_and_social_care_are_well_formed(frames: dict[str, pl.DataFrame]) -> None:
    obs, events, social = frames["observation"], frames["event"], frames["social_care"]
    assert set(obs["type"].unique()) == OBSERVATION_TYPES
    assert obs["value"].null_count() == 0
    units = obs.group_by("type").agg(pl.col("unit").n_unique())
    assert (units["unit"] == 1).all()
    assert set(events["type"].unique()) == EVENT_TYPES
    assert set(social["kind"].unique()) == SOCIAL_KINDS
    assert social.filter(pl.col("end") < pl.col("start")).is_empty()
    for frame, column in ((obs, "date"), (events, "date")):
        assert frame[column].min() >= WINDOW_START and frame[column].max() <= WINDOW_END


def test_records_stay_within_registration_and_life(frames: dict[str, pl.DataFrame]) -> None:
    patient = frames["patient"].with_columns(
        last_seen=pl.min_horizontal(pl.col("died_on"), pl.col("deregistered_on"), pl.lit(WINDOW_END))
    )
    assert patient.filter(
        pl.col("died_on").is_not_null() & pl.col("deregistered_on").is_not_null()
    ).is_empty()
    assert patient.filter(pl.col("died_on") < pl.col("registered_on")).is_empty()
    for table in ("observation", "event"):
        joined = frames[table].join(patient, left_on="patient_id", right_on="id")
        outside = joined.filter(
            (pl.col("date") < pl.col("registered_on")) | (pl.col("date") > pl.col("last_seen"))
        )
        assert outside.is_empty(), table
    deaths = frames["event"].filter(pl.col("type") == "death")
    died = patient.filter(pl.col("died_on").is_not_null())
    assert deaths["patient_id"].is_unique().all()
    assert (
        deaths.join(died, left_on="patient_id", right_on="id")
        .filter(pl.col("date") == pl.col("died_on"))
        .height
        == died.height
    )
    rx = frames["prescription"].join(patient, left_on="patient_id", right_on="id")
    assert rx.filter(pl.col("start") > pl.col("last_seen")).is_empty()
    ended = rx.filter(pl.col("died_on").is_not_null())
    assert ended.filter(pl.col("stop").is_null() | (pl.col("stop") > pl.col("died_on"))).is_empty()


def test_truth_rows_cover_observed_patient_months(frames: dict[str, pl.DataFrame]) -> None:
    truth = frames["synthetic_truth"]
    assert set(truth["outcome"].unique()) == set(OUTCOMES)
    assert truth["risk"].is_between(0.0, 1.0).all()
    assert (truth["month"].dt.day() == 1).all()
    assert truth.select("patient_id", "month", "outcome").is_unique().all()
    patient = frames["patient"]
    first = (
        truth.group_by("patient_id")
        .agg(pl.col("month").min())
        .join(patient, left_on="patient_id", right_on="id")
    )
    assert first.filter(pl.col("month") < pl.col("registered_on")).is_empty()
    dead = truth.join(patient.filter(pl.col("died_on").is_not_null()), left_on="patient_id", right_on="id")
    assert dead.filter(pl.col("month") > pl.col("died_on")).is_empty()
