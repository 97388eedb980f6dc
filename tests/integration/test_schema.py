"""The canonical schema migrates, round-trips rows and bulk-loads identically on SQLite and Postgres."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest
from sqlalchemy import Engine, inspect, select, text

from data_access.db import transaction
from data_access.loading import LoadError, load_frames
from data_access.migrate import downgrade_database, upgrade_database
from data_access.schema import Base, Patient, Prescription


def _frames() -> dict[str, pl.DataFrame]:
    practice = pl.DataFrame({"id": ["P001"], "name": ["Riverside Surgery"], "icb": ["Test ICB"]})
    patient = pl.DataFrame(
        {
            "id": ["S1", "S2"],
            "practice_id": ["P001", "P001"],
            "birth_year": [1940, 1975],
            "birth_month": [3, 11],
            "sex": ["F", "M"],
            "deprivation_quintile": [1, 5],
            "ethnicity_group": ["White", "Asian"],
            "registered_on": [dt.date(2000, 1, 1), dt.date(2010, 5, 1)],
            "deregistered_on": [None, None],
            "died_on": [None, dt.date(2024, 2, 29)],
            "source": ["synthetic", "synthetic"],
        },
        schema_overrides={"deregistered_on": pl.Date, "died_on": pl.Date},
    )
    prescription = pl.DataFrame(
        {
            "patient_id": ["S1", "S1", "S2"],
            "code_system": ["text", "text", "text"],
            "code": [None, None, None],
            "name": ["Ibuprofen 400mg tablets", "Ramipril 5mg capsules", 'Odd "quoted", name'],
            "drug_key": ["ibuprofen", "ramipril", None],
            "ingredients": ["ibuprofen", "ramipril", ""],
            "bnf_section": ["10.1.1", "2.5.5.1", None],
            "atc": ["M01AE01", "C09AA05", None],
            "start": [dt.date(2024, 1, 1), dt.date(2018, 1, 1), dt.date(2023, 6, 1)],
            "stop": [dt.date(2024, 2, 1), None, None],
            "dose_text": ["1 tablet three times a day", "1 daily", None],
            "repeat": [False, True, True],
        },
        schema_overrides={"code": pl.Utf8, "stop": pl.Date, "dose_text": pl.Utf8},
    )
    return {"practice": practice, "patient": patient, "prescription": prescription}


def test_migration_creates_every_table(db_engine: Engine) -> None:
    tables = set(inspect(db_engine).get_table_names())
    assert set(Base.metadata.tables) <= tables


def test_downgrade_and_upgrade_round_trip(db_engine: Engine) -> None:
    downgrade_database(db_engine)
    assert "patient" not in inspect(db_engine).get_table_names()
    upgrade_database(db_engine)
    assert "patient" in inspect(db_engine).get_table_names()


def test_bulk_load_round_trips_values(db_engine: Engine) -> None:
    counts = load_frames(db_engine, _frames())
    assert counts == {"practice": 1, "patient": 2, "prescription": 3}
    with transaction(db_engine) as session:
        s2 = session.get(Patient, "S2")
        assert s2 is not None and s2.died_on == dt.date(2024, 2, 29) and s2.deregistered_on is None
        rows = session.scalars(select(Prescription).order_by(Prescription.start)).all()
        assert [r.stop for r in rows] == [None, None, dt.date(2024, 2, 1)]
        assert rows[1].name == 'Odd "quoted", name' and rows[1].ingredients == ""
        assert [r.repeat for r in rows] == [True, True, False]


def test_reload_replaces_rather_than_duplicates(db_engine: Engine) -> None:
    load_frames(db_engine, _frames())
    load_frames(db_engine, _frames())
    with db_engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM patient")).scalar_one() == 2
        assert conn.execute(text("SELECT COUNT(*) FROM prescription")).scalar_one() == 3


def test_failed_load_leaves_database_unchanged(db_engine: Engine) -> None:
    frames = _frames()
    frames["prescription"] = frames["prescription"].with_columns(pl.lit("NO_SUCH_PATIENT").alias("patient_id"))
    with pytest.raises(Exception):  # noqa: B017 - the back ends raise different integrity errors
        load_frames(db_engine, frames)
    with db_engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM patient")).scalar_one() == 0


def test_missing_required_column_is_named(db_engine: Engine) -> None:
    frames = _frames()
    frames["patient"] = frames["patient"].drop("sex")
    with pytest.raises(LoadError, match="patient: required column\\(s\\) missing: sex"):
        load_frames(db_engine, frames)


def test_audit_log_is_append_only(db_engine: Engine) -> None:
    import datetime as _dt

    from sqlalchemy.exc import DBAPIError

    with db_engine.begin() as conn:
        conn.execute(
            text("INSERT INTO audit_log (at, username, action, outcome) VALUES (:at, 'u', 'view_patient', 'allowed')"),
            {"at": _dt.datetime(2025, 1, 1, 9, 0)},
        )
    for statement in ("UPDATE audit_log SET username = 'someone else'", "DELETE FROM audit_log"):
        with pytest.raises(DBAPIError, match="append-only"), db_engine.begin() as conn:
            conn.execute(text(statement))
    with db_engine.connect() as conn:
        assert conn.execute(text("SELECT username FROM audit_log")).scalar_one() == "u"
