"""OMOP CDM v5.4 import of the hand-written fixture (tests/fixtures/omop_cdm54_csv, see its README for what each
row exercises): exact counts on both back ends, Parquet and upper-case table names, and the fall-back to source
values when the extract has no concept table."""

from __future__ import annotations

import csv
import datetime as dt
import shutil
from pathlib import Path

import polars as pl
import pytest
from sqlalchemy import Engine, text

from data_access.sources.importing import SourceFormatError, run_import

FIXTURE = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "omop_cdm54_csv"
TABLES = ("practice", "patient", "condition", "prescription", "observation", "event")

# Worked out row by row from the fixture files (the README lists why each row is kept or rejected).
EXPECTED_COUNTS = {
    "practice": 3,
    "patient": 3,
    "condition": 5,
    "prescription": 7,
    "observation": 6,
    "event": 6,
}
EXPECTED_REJECTS = {
    "bad_date": 4,  # visit 10 (2018-02-30), condition 8, drug 6 (2019/01/01), measurement 9 (2023-13-01)
    "duplicate_row": 2,  # person 1 and condition 1 appear twice
    "end_before_start": 1,  # condition 10 ends before it starts
    "invalid_code": 1,  # drug 8: an RxNorm concept whose code "X1" is not an RXCUI
    "no_drug_code": 1,  # drug 7: no concept, no source value
    "no_snomed_code": 1,  # condition 3: ICD-10 "I10" only
    "unknown_patient": 2,  # person 4 (rejected) has a visit and a condition
    "unknown_sex": 1,  # person 4: gender concept 0, source value "U"
    "unknown_unit": 1,  # measurement 7 in "furlongs"
}


@pytest.fixture(autouse=True)
def _pseudonym_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DYNAIRX_PSEUDONYM_KEY", "test-site-secret")


def counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {t: conn.execute(text(f'SELECT COUNT(*) FROM "{t}"')).scalar_one() for t in TABLES}  # noqa: S608


def query(engine: Engine, sql: str) -> list[tuple]:
    """Rows with dates as ISO text (SQLite returns text, Postgres dates)."""
    with engine.connect() as conn:
        return [
            tuple(v.isoformat() if isinstance(v, dt.date) else v for v in r) for r in conn.execute(text(sql))
        ]


def test_fixture_rows_are_what_the_expectations_say() -> None:
    """Guard the hand-worked expectations against an edit of the fixture."""
    with (FIXTURE / "drug_exposure.csv").open(newline="") as handle:
        assert sum(1 for _ in csv.DictReader(handle)) == 10
    with (FIXTURE / "person.csv").open(newline="") as handle:
        assert sum(1 for _ in csv.DictReader(handle)) == 5


def test_omop_csv_import_exact_counts(db_engine: Engine, tmp_path: Path) -> None:
    summary = run_import("omop", FIXTURE, db_engine, rejects_path=tmp_path / "rejects.csv", derive=False)
    assert counts(db_engine) == EXPECTED_COUNTS
    assert summary.rejects == EXPECTED_REJECTS
    assert summary.unmapped["prescription without drug key"] == 1  # "Herbal tonic oral liquid"
    assert summary.skipped["measurements with codes outside the lab list"] == 1  # body weight
    assert any("month of birth" in note for note in summary.notes)


def test_omop_mapping_details(sqlite_engine: Engine) -> None:
    run_import("omop", FIXTURE, sqlite_engine, derive=False)
    patients = query(
        sqlite_engine,
        "SELECT p.birth_year, p.birth_month, p.sex, p.ethnicity_group, p.registered_on, p.deregistered_on, "
        "p.died_on, pr.name FROM patient p JOIN practice pr ON pr.id = p.practice_id ORDER BY p.birth_year",
    )
    assert patients == [
        (1938, 4, "F", "White", "2005-01-01", None, None, "Riverside Medical Practice"),
        (1947, 11, "M", "Black", "2008-03-15", "2019-08-31", None, "Hilltop Surgery"),
        # no month of birth -> 7; no care_site_id -> most office visits (Northgate); died, so not deregistered
        (1950, 7, "M", "Asian", "2010-06-01", None, "2024-03-02", "Northgate Health Centre"),
    ]
    conditions = set(query(sqlite_engine, "SELECT code, onset, resolved FROM condition"))
    assert ("84114007", "2020-04-04", None) in conditions  # ICD-10 source concept "Maps to" SNOMED
    assert ("195967001", "2016-10-10", None) in conditions  # SNOMED source value, no concept
    assert ("49436004", "2019-01-01", "2019-06-01") in conditions
    drugs = set(
        query(sqlite_engine, "SELECT code_system, code, drug_key, start, stop, dose_text FROM prescription")
    )
    assert ("dmd", "319283006", "amlodipine", "2016-02-02", "2016-08-01", None) in drugs
    # no end date: start + days_supply - 1
    assert (
        "rxnorm",
        "861007",
        "metformin",
        "2020-01-01",
        "2020-01-28",
        "one tablet twice daily",
    ) in drugs
    # verbatim_end_date (the stop the source recorded) wins over drug_exposure_end_date
    assert ("text", None, "apixaban", "2022-07-05", "2023-01-01", None) in drugs
    observations = set(query(sqlite_engine, "SELECT type, value, unit FROM observation"))
    assert ("creatinine", 97.262, "µmol/L") in observations  # 1.1 mg/dL x 88.42
    assert ("hba1c", 53.006, "mmol/mol") in observations  # 7.0 % -> 10.929 x (7.0 - 2.15)
    assert ("egfr", 52.0, "mL/min/1.73m²") in observations
    assert ("potassium", None, "mmol/L") in observations  # a test with no value keeps its date
    events = sorted(query(sqlite_engine, "SELECT type, date FROM event"))
    assert events == [
        ("ae_attendance", "2018-01-05"),
        ("ae_attendance", "2022-07-01"),
        ("ae_attendance", "2023-02-10"),
        ("death", "2024-03-02"),
        ("emergency_admission", "2022-07-01"),  # 262 Emergency Room and Inpatient Visit
        ("emergency_admission", "2023-02-10"),  # 9201 admitted from 8870 Emergency Room
    ]


def test_parquet_and_upper_case_table_names(sqlite_engine: Engine, tmp_path: Path) -> None:
    folder = tmp_path / "parquet"
    folder.mkdir()
    for path in FIXTURE.glob("*.csv"):
        frame = pl.read_csv(path, infer_schema=False)
        # Ids as integers, as a database export writes them (the dates stay text so that the bad ones survive).
        ids = [c for c in frame.columns if c.endswith("concept_id") or c == "person_id"]
        typed = frame.with_columns([pl.col(c).cast(pl.Int64, strict=False) for c in ids])
        typed.write_parquet(folder / f"{path.stem.upper()}.parquet")
    summary = run_import("omop", folder, sqlite_engine, derive=False)
    assert counts(sqlite_engine) == EXPECTED_COUNTS
    assert summary.rejects == EXPECTED_REJECTS


def test_without_concept_tables_codes_come_from_source_values(sqlite_engine: Engine, tmp_path: Path) -> None:
    folder = tmp_path / "no_concepts"
    shutil.copytree(FIXTURE, folder)
    (folder / "concept.csv").unlink()
    (folder / "concept_relationship.csv").unlink()
    summary = run_import("omop", folder, sqlite_engine, derive=False)
    got = counts(sqlite_engine)
    # Conditions 1, 2, 4 and 6 carry SNOMED ids as source values; 5 ("I50.0") now has no SNOMED code.
    assert got["condition"] == 4
    # Drugs: 1, 2, 5 (RxNorm ids), 9 (dm+d id), 3, 4, 10 (text) kept; 7 and 8 have nothing to go on.
    assert got["prescription"] == 7
    assert got["observation"] == 6
    assert summary.rejects["no_snomed_code"] == 2
    assert summary.rejects["no_drug_code"] == 2
    assert "no concept table: codes taken from the *_source_value columns" in summary.notes
    kinds = set(query(sqlite_engine, "SELECT code_system, code FROM prescription WHERE code IS NOT NULL"))
    assert kinds == {("rxnorm", "197361"), ("rxnorm", "861007"), ("dmd", "319283006")}


def test_reimport_omop_does_not_duplicate(db_engine: Engine) -> None:
    run_import("omop", FIXTURE, db_engine, derive=False)
    run_import("omop", FIXTURE, db_engine, derive=False)
    assert counts(db_engine) == EXPECTED_COUNTS


def test_missing_person_column_and_missing_person_table(sqlite_engine: Engine, tmp_path: Path) -> None:
    folder = tmp_path / "broken"
    shutil.copytree(FIXTURE, folder)
    frame = pl.read_csv(folder / "person.csv", infer_schema=False).drop("year_of_birth")
    frame.write_csv(folder / "person.csv")
    with pytest.raises(SourceFormatError, match=r"^person\.csv, row 1, field year_of_birth: required column"):
        run_import("omop", folder, sqlite_engine, derive=False)
    (folder / "person.csv").unlink()
    with pytest.raises(SourceFormatError, match="required table missing"):
        run_import("omop", folder, sqlite_engine, derive=False)
    assert counts(sqlite_engine)["patient"] == 0


def test_tab_separated_extract(sqlite_engine: Engine, tmp_path: Path) -> None:
    folder = tmp_path / "tsv"
    folder.mkdir()
    for path in FIXTURE.glob("*.csv"):
        pl.read_csv(path, infer_schema=False).write_csv(folder / path.name, separator="\t")
    run_import("omop", folder, sqlite_engine, derive=False)
    assert counts(sqlite_engine) == EXPECTED_COUNTS
