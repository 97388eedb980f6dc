"""What-if scenarios on a patient's record, and Patient JSON as a one-patient cohort (no torch here).

A scenario changes the copy's prescriptions from its start date: ``stop`` ends every course of the drug the day
before (a drug stopped yesterday is not active today), ``start`` begins a new ongoing course that day, ``switch``
does both. Combination products are split into one row per ingredient first, so stopping one ingredient leaves the
others. Everything else stays as recorded.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import polars as pl

from models.cohort import Cohort, cohort_from_frames


def parse_from(value: Any, default: dt.date) -> dt.date:
    if value in (None, ""):
        return default
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError as exc:
        raise ValueError(f"scenario 'from' must be a date (YYYY-MM-DD), not {value!r}") from exc


def resolve_scenario(scenario: dict[str, Any]) -> tuple[set[str], set[str]]:
    """Drug keys to stop and to start; ``switch`` pairs contribute to both."""
    unknown_keys = set(scenario) - {"stop", "start", "switch", "from"}
    if unknown_keys:
        raise ValueError(f"unknown scenario field(s): {', '.join(sorted(unknown_keys))}")
    stops = {d for name in scenario.get("stop") or [] for d in resolve_drug(name)}
    starts = {d for name in scenario.get("start") or [] for d in resolve_drug(name)}
    for pair in scenario.get("switch") or []:
        if not isinstance(pair, list | tuple) or len(pair) != 2:
            raise ValueError(f"a switch is a pair [from, to], not {pair!r}")
        stops |= set(resolve_drug(pair[0]))
        starts |= set(resolve_drug(pair[1]))
    if not stops and not starts:
        raise ValueError("the scenario changes nothing: give stop, start or switch")
    return stops, starts


def resolve_drug(name: Any) -> tuple[str, ...]:
    """Drug keys named by ``name`` (a generic name, US synonym, brand or product description)."""
    from clinical.vocabulary import DrugVocabulary

    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"a drug must be a non-empty name, not {name!r}")
    vocabulary = DrugVocabulary.load()
    if vocabulary.get(name.strip().lower()) is not None:
        return (name.strip().lower(),)
    match = vocabulary.match_text(name)
    if not match.matched:
        raise ValueError(f"unknown drug {name!r}")
    return match.ingredients


def apply_scenario(
    cohort: Cohort, start_day: dt.date, stops: set[str], starts: set[str]
) -> tuple[Cohort, list[str]]:
    """A copy of the (one-patient) cohort with its prescriptions changed from ``start_day``."""
    notes: list[str] = []
    rx = _single_ingredient_rows(cohort.prescription)
    before = start_day - dt.timedelta(days=1)
    stopping = pl.col("drug_key").is_in(list(stops))
    active_then = pl.col("stop").is_null() | (pl.col("stop") >= start_day)
    for drug in sorted(stops):
        taking = rx.filter((pl.col("drug_key") == drug) & active_then & (pl.col("start") <= start_day)).height
        if not taking:
            notes.append(f"{drug} is not active on {start_day.isoformat()}; stopping it changes nothing")
    rx = rx.filter(~(stopping & (pl.col("start") >= start_day))).with_columns(
        pl.when(stopping & active_then).then(pl.lit(before)).otherwise(pl.col("stop")).alias("stop")
    )
    patient_id = cohort.patient["id"][0]
    new_rows = pl.DataFrame(
        {
            "patient_id": [patient_id] * len(starts),
            "code_system": ["text"] * len(starts),
            "code": [None] * len(starts),
            "name": sorted(starts),
            "drug_key": sorted(starts),
            "ingredients": sorted(starts),
            "bnf_section": [""] * len(starts),
            "atc": [""] * len(starts),
            "start": [start_day] * len(starts),
            "stop": [None] * len(starts),
            "dose_text": [""] * len(starts),
            "repeat": [True] * len(starts),
        },
        schema=rx.schema,
    )
    changed = Cohort(
        patient=cohort.patient,
        social_care=cohort.social_care,
        condition=cohort.condition,
        prescription=pl.concat([rx, new_rows]),
        observation=cohort.observation,
        event=cohort.event,
        extract_date=cohort.extract_date,
    )
    return changed, notes


def _single_ingredient_rows(prescription: pl.DataFrame) -> pl.DataFrame:
    """One row per ingredient, so stopping one ingredient of a combination product leaves the others."""
    ingredients = (
        pl.when(pl.col("ingredients").fill_null("").str.strip_chars() != "")
        .then(pl.col("ingredients"))
        .otherwise(pl.col("drug_key").fill_null(""))
    )
    return (
        prescription.with_columns(ingredients.str.split(";").alias("_ingredient"))
        .explode("_ingredient")
        .with_columns(pl.col("_ingredient").str.strip_chars().str.to_lowercase())
        .filter(pl.col("_ingredient") != "")
        .with_columns(pl.col("_ingredient").alias("drug_key"), pl.col("_ingredient").alias("ingredients"))
        .drop("_ingredient")
    )


def two_patients(current: Cohort, changed: Cohort) -> Cohort:
    """The current and changed records as patients ``current`` and ``scenario`` of one cohort."""

    def renamed(cohort: Cohort, new_id: str) -> dict[str, pl.DataFrame]:
        frames = {
            "patient": cohort.patient.with_columns(pl.lit(new_id).alias("id")),
            "social_care": cohort.social_care,
            "condition": cohort.condition,
            "prescription": cohort.prescription,
            "observation": cohort.observation,
            "event": cohort.event,
        }
        return {
            name: frame if name == "patient" else frame.with_columns(pl.lit(new_id).alias("patient_id"))
            for name, frame in frames.items()
        }

    a, b = renamed(current, "current"), renamed(changed, "scenario")
    # The same row layout on both sides, so that the scenario is the only difference.
    a["prescription"] = _single_ingredient_rows(a["prescription"])
    merged = {name: pl.concat([a[name], b[name]], how="vertical_relaxed") for name in a}
    return cohort_from_frames(merged, current.extract_date)


def cohort_from_patient_json(data: dict[str, Any]) -> tuple[Cohort, list[str]]:
    """A one-patient cohort from a Patient JSON document (DESIGN.md), parsed by ``clinical.patient_json``."""
    from clinical.patient_json import parse_patient_json

    parsed = parse_patient_json(data)
    record = parsed.record
    pid = "patient"
    frames = {
        "patient": pl.DataFrame(
            {
                "id": [pid],
                "practice_id": [None],
                "birth_year": [record.birth_date.year],
                "birth_month": [record.birth_date.month],
                "sex": [record.sex],
                "deprivation_quintile": [None],
                "ethnicity_group": [None],
                "registered_on": [None],
                "deregistered_on": [None],
                "died_on": [None],
                "source": ["patient_json"],
            },
            schema={
                "id": pl.Utf8,
                "practice_id": pl.Utf8,
                "birth_year": pl.Int64,
                "birth_month": pl.Int64,
                "sex": pl.Utf8,
                "deprivation_quintile": pl.Int64,
                "ethnicity_group": pl.Utf8,
                "registered_on": pl.Date,
                "deregistered_on": pl.Date,
                "died_on": pl.Date,
                "source": pl.Utf8,
            },
        ),
        "condition": pl.DataFrame(
            {
                "patient_id": [pid] * len(record.conditions),
                "code_system": ["snomed"] * len(record.conditions),
                "code": [""] * len(record.conditions),
                "term": [c.key for c in record.conditions],
                "condition_key": [c.key for c in record.conditions],
                "onset": [c.onset for c in record.conditions],
                "resolved": [c.resolved for c in record.conditions],
            },
            schema={
                "patient_id": pl.Utf8,
                "code_system": pl.Utf8,
                "code": pl.Utf8,
                "term": pl.Utf8,
                "condition_key": pl.Utf8,
                "onset": pl.Date,
                "resolved": pl.Date,
            },
        ),
        "prescription": pl.DataFrame(
            {
                "patient_id": [pid] * len(record.prescriptions),
                "code_system": ["text"] * len(record.prescriptions),
                "code": [None] * len(record.prescriptions),
                "name": [rx.name or ";".join(rx.ingredients) for rx in record.prescriptions],
                "drug_key": [rx.ingredients[0] if rx.ingredients else None for rx in record.prescriptions],
                "ingredients": [";".join(rx.ingredients) for rx in record.prescriptions],
                "bnf_section": [""] * len(record.prescriptions),
                "atc": [""] * len(record.prescriptions),
                "start": [rx.start for rx in record.prescriptions],
                "stop": [rx.stop for rx in record.prescriptions],
                "dose_text": [""] * len(record.prescriptions),
                "repeat": [True] * len(record.prescriptions),
            },
            schema={
                "patient_id": pl.Utf8,
                "code_system": pl.Utf8,
                "code": pl.Utf8,
                "name": pl.Utf8,
                "drug_key": pl.Utf8,
                "ingredients": pl.Utf8,
                "bnf_section": pl.Utf8,
                "atc": pl.Utf8,
                "start": pl.Date,
                "stop": pl.Date,
                "dose_text": pl.Utf8,
                "repeat": pl.Boolean,
            },
        ),
        "observation": pl.DataFrame(
            {
                "patient_id": [pid] * len(record.labs),
                "type": [lab.name for lab in record.labs],
                "value": [lab.value for lab in record.labs],
                "unit": [""] * len(record.labs),
                "date": [lab.date for lab in record.labs],
            },
            schema={
                "patient_id": pl.Utf8,
                "type": pl.Utf8,
                "value": pl.Float64,
                "unit": pl.Utf8,
                "date": pl.Date,
            },
        ),
        "event": pl.DataFrame(
            {
                "patient_id": [pid] * len(record.events),
                "type": [e.type for e in record.events],
                "date": [e.date for e in record.events],
            },
            schema={"patient_id": pl.Utf8, "type": pl.Utf8, "date": pl.Date},
        ),
        "social_care": pl.DataFrame(
            {
                "patient_id": [pid] * len(record.social_care),
                "kind": [s.kind for s in record.social_care],
                "start": [s.start for s in record.social_care],
                "end": [s.end for s in record.social_care],
            },
            schema={"patient_id": pl.Utf8, "kind": pl.Utf8, "start": pl.Date, "end": pl.Date},
        ),
    }
    notes = [f"not recognised, left out: {item}" for item in parsed.unknown]
    return cohort_from_frames(frames, parsed.as_of), notes
