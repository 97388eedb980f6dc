"""The population path agrees with the single-patient engine, and writes the documented frame layouts."""

from __future__ import annotations

from collections import defaultdict
from datetime import date

import polars as pl
import pytest

from clinical import population
from clinical.benchmark_population import random_population
from clinical.engine import default_engine
from clinical.knowledge import load_knowledge
from clinical.population import FLAG_SCHEMA, SCORE_SCHEMA, evaluate_population
from clinical.record import (
    ConditionEpisode,
    Event,
    LabResult,
    PatientRecord,
    Prescription,
    SocialCare,
    birth_date_from_year_month,
)
from clinical.scores import NUMERIC_SCORE_KINDS, scores

AS_OF = date(2025, 6, 30)


@pytest.fixture(scope="module")
def frames() -> dict[str, pl.DataFrame]:
    return random_population(400, AS_OF, seed=7)


def records_from_frames(frames: dict[str, pl.DataFrame]) -> dict[str, PatientRecord]:
    """An independent, row-by-row conversion of the canonical frames into records."""
    parts: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    for row in frames["prescription"].iter_rows(named=True):
        parts[row["patient_id"]]["rx"].append(
            Prescription(tuple(row["ingredients"].split(";")), row["start"], row["stop"])
        )
    for row in frames["condition"].iter_rows(named=True):
        parts[row["patient_id"]]["cond"].append(
            ConditionEpisode(row["condition_key"], row["onset"], row["resolved"])
        )
    for row in frames["observation"].iter_rows(named=True):
        parts[row["patient_id"]]["lab"].append(LabResult(row["type"], row["date"], row["value"]))
    for row in frames["event"].iter_rows(named=True):
        parts[row["patient_id"]]["event"].append(Event(row["type"], row["date"]))
    for row in frames["social_care"].iter_rows(named=True):
        parts[row["patient_id"]]["social"].append(SocialCare(row["kind"], row["start"], row["end"]))
    out = {}
    for row in frames["patient"].iter_rows(named=True):
        p = parts[row["id"]]
        out[row["id"]] = PatientRecord(
            patient_id=row["id"],
            birth_date=birth_date_from_year_month(row["birth_year"], row["birth_month"]),
            sex=row["sex"],
            prescriptions=tuple(p["rx"]),
            conditions=tuple(p["cond"]),
            labs=tuple(p["lab"]),
            events=tuple(p["event"]),
            social_care=tuple(p["social"]),
        )
    return out


def test_population_flags_and_scores_match_the_single_patient_engine(frames):
    flags, score_frame = evaluate_population(frames, AS_OF, workers=1)
    engine = default_engine()
    expected_flags = set()
    expected_scores = set()
    for pid, record in records_from_frames(frames).items():
        for flag in engine.evaluate(record, AS_OF):
            expected_flags.add((pid, flag.rule_id, flag.start, flag.end, ";".join(flag.drugs), flag.severity))
        values = scores(record, AS_OF, load_knowledge())
        for kind in NUMERIC_SCORE_KINDS:
            expected_scores.add((pid, kind, AS_OF, round(float(values[kind]), 6)))
    got_flags = set(flags.iter_rows())
    got_scores = {(p, k, a, round(v, 6)) for p, k, a, v in score_frame.iter_rows()}
    assert len(expected_flags) > 100
    assert got_flags == expected_flags
    assert got_scores == expected_scores


def test_worker_processes_give_the_same_result(frames, monkeypatch):
    monkeypatch.setattr(population, "MIN_PATIENTS_PER_WORKER", 50)
    one = evaluate_population(frames, AS_OF, workers=1)
    two = evaluate_population(frames, AS_OF, workers=2)
    for a, b in zip(one, two, strict=True):
        assert a.sort(a.columns).equals(b.sort(b.columns))


def test_frames_have_the_documented_schema(frames):
    flags, score_frame = evaluate_population(frames, AS_OF, workers=1, score_dates=[date(2024, 12, 31)])
    assert flags.schema == pl.Schema(FLAG_SCHEMA)
    assert score_frame.schema == pl.Schema(SCORE_SCHEMA)
    assert set(score_frame["as_of"].unique().to_list()) == {date(2024, 12, 31), AS_OF}


def test_flags_stop_at_death_and_empty_tables_are_handled():
    frames = {
        "patient": pl.DataFrame(
            {
                "id": ["a", "b"],
                "birth_year": [1940, 1990],
                "birth_month": [5, 1],
                "sex": ["F", "M"],
                "died_on": [date(2025, 3, 1), None],
            },
            schema_overrides={"died_on": pl.Date},
        ),
        "prescription": pl.DataFrame(
            {
                "patient_id": ["a"],
                "ingredients": ["ibuprofen"],
                "drug_key": ["ibuprofen"],
                "start": [date(2025, 1, 1)],
                "stop": [None],
            },
            schema_overrides={"stop": pl.Date},
        ),
        "condition": pl.DataFrame(
            schema={"patient_id": pl.Utf8, "condition_key": pl.Utf8, "onset": pl.Date, "resolved": pl.Date}
        ),
    }
    flags, score_frame = evaluate_population(frames, AS_OF, workers=1)
    assert flags.filter(pl.col("rule_id") == "PINCER-GI_P3A").rows() == [
        ("a", "PINCER-GI_P3A", date(2025, 1, 1), date(2025, 3, 1), "ibuprofen", "high")
    ]
    assert score_frame.filter((pl.col("patient_id") == "b") & (pl.col("kind") == "medicines"))[
        "value"
    ].to_list() == [0.0]
