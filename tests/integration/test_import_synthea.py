"""Synthea CSV import on both back ends: exact counts against what the files contain.

Expected counts are computed here from the CSV files with the csv module and from the clinical vocabulary, never
by calling the importer, so a miscount in the importer cannot hide behind the same miscount in the test.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from clinical.vocabulary import ConditionVocabulary, DrugVocabulary
from data_access.settings import MissingSettingError
from data_access.sources.importing import LAB_LOINC, run_import

REPO_ROOT = Path(__file__).resolve().parents[2]
SAMPLE = REPO_ROOT / "tests" / "fixtures" / "synthea_csv_sample"
# The older Synthea export lives only in ../shared (its source states no licence, so it is never copied here).
OLDER = REPO_ROOT.parent / "shared" / "data" / "synthea_older_59"

EMERGENCY_ADMISSION_CODES = {"183452005", "183460006", "183478001"}
CONDITION_EVENTS = {
    "fragility_fracture": "fracture",
    "fracture_history": "fracture",
    "falls_history": "fall",
    "gi_bleed_history": "gi_bleed",
}
TABLES = ("practice", "patient", "condition", "prescription", "observation", "event")


@pytest.fixture(autouse=True)
def _pseudonym_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DYNAIRX_PSEUDONYM_KEY", "test-site-secret")


def rows(folder: Path, name: str) -> list[dict[str, str]]:
    with (folder / name).open(newline="", encoding="utf-8-sig") as handle:
        return list(csv.DictReader(handle))


# A duplicate is a row that repeats every column the importer reads and the encounter it belongs to.
DUPLICATE_KEYS = {
    "conditions.csv": ("START", "STOP", "PATIENT", "ENCOUNTER", "CODE", "DESCRIPTION", "SYSTEM"),
    "medications.csv": ("START", "STOP", "PATIENT", "ENCOUNTER", "CODE", "DESCRIPTION", "DISPENSES"),
    "observations.csv": ("DATE", "PATIENT", "ENCOUNTER", "CODE", "VALUE", "UNITS"),
}


def distinct_rows(folder: Path, name: str) -> list[dict[str, str]]:
    seen: set[tuple[str | None, ...]] = set()
    out = []
    for row in rows(folder, name):
        key = tuple(row.get(c) for c in DUPLICATE_KEYS[name])
        if key not in seen:
            seen.add(key)
            out.append(row)
    return out


def verhoeff_ok(code: str) -> bool:
    """An independent Verhoeff check (the SNOMED CT check digit), written from the published tables."""
    d = [
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
        [1, 2, 3, 4, 0, 6, 7, 8, 9, 5],
        [2, 3, 4, 0, 1, 7, 8, 9, 5, 6],
        [3, 4, 0, 1, 2, 8, 9, 5, 6, 7],
        [4, 0, 1, 2, 3, 9, 5, 6, 7, 8],
        [5, 9, 8, 7, 6, 0, 4, 3, 2, 1],
        [6, 5, 9, 8, 7, 1, 0, 4, 3, 2],
        [7, 6, 5, 9, 8, 2, 1, 0, 4, 3],
        [8, 7, 6, 5, 9, 3, 2, 1, 0, 4],
        [9, 8, 7, 6, 5, 4, 3, 2, 1, 0],
    ]
    p = [[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]]
    for _ in range(7):
        p.append([p[-1][[1, 5, 7, 6, 2, 8, 3, 0, 9, 4][i]] for i in range(10)])
    check = 0
    for i, char in enumerate(reversed(code)):
        check = d[check][p[i % 8][int(char)]]
    return code.isdigit() and check == 0


def counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {t: conn.execute(text(f'SELECT COUNT(*) FROM "{t}"')).scalar_one() for t in TABLES}  # noqa: S608


def day(value: str) -> dt.date:
    return dt.date.fromisoformat(value[:10])


def expected_synthea(folder: Path) -> dict[str, object]:
    """What an import of ``folder`` must load, from the files and the vocabulary alone."""
    conditions_vocab = ConditionVocabulary.load()
    drugs_vocab = DrugVocabulary.load()
    patients = rows(folder, "patients.csv")
    conditions = [r for r in distinct_rows(folder, "conditions.csv") if verhoeff_ok(r["CODE"])]
    invalid_codes = len(rows(folder, "conditions.csv")) - len(
        [r for r in rows(folder, "conditions.csv") if verhoeff_ok(r["CODE"])]
    )
    medications = distinct_rows(folder, "medications.csv")
    duplicates = sum(
        len(rows(folder, name)) - len(distinct_rows(folder, name))
        for name in ("medications.csv", "observations.csv")
        if (folder / name).exists()
    )

    def condition_key(row: dict[str, str]) -> str | None:
        match = conditions_vocab.match(row["CODE"]) or conditions_vocab.match(row["DESCRIPTION"])
        return match.key if match else None

    def drug_mapped(row: dict[str, str]) -> bool:
        coded = drugs_vocab.match_code("rxnorm", row["CODE"])
        if coded is not None and coded.ingredients:
            return True
        return bool(drugs_vocab.match_text(row["DESCRIPTION"]).ingredients)

    observations = 0
    if (folder / "observations.csv").exists():
        observations = sum(1 for r in distinct_rows(folder, "observations.csv") if r["CODE"] in LAB_LOINC)

    encounters = rows(folder, "encounters.csv")
    ae = {
        (e["PATIENT"], day(e["START"]))
        for e in encounters
        if e["ENCOUNTERCLASS"] in {"emergency", "urgentcare"}
    }
    admissions = {
        (e["PATIENT"], day(e["START"]))
        for e in encounters
        if e["ENCOUNTERCLASS"] in {"emergency", "urgentcare", "inpatient"}
        and e["CODE"] in EMERGENCY_ADMISSION_CODES
    }
    for e in encounters:
        if e["ENCOUNTERCLASS"] == "inpatient":
            start = day(e["START"])
            earlier = [d for p, d in ae if p == e["PATIENT"] and d <= start]
            if earlier and (start - max(earlier)).days <= 1:
                admissions.add((e["PATIENT"], start))
    events = {(p, "ae_attendance", d) for p, d in ae} | {(p, "emergency_admission", d) for p, d in admissions}
    events |= {(p["Id"], "death", day(p["DEATHDATE"])) for p in patients if p["DEATHDATE"]}
    for row in conditions:
        key = condition_key(row)
        if key in CONDITION_EVENTS:
            events.add((row["PATIENT"], CONDITION_EVENTS[key], day(row["START"])))

    # Practice: most wellness/ambulatory visits, then most visits of any kind, then the most recent, then the id.
    practices = set()
    for patient in patients:
        visits = [e for e in encounters if e["PATIENT"] == patient["Id"] and e["ORGANIZATION"]]
        primary = Counter(
            e["ORGANIZATION"] for e in visits if e["ENCOUNTERCLASS"] in {"wellness", "ambulatory"}
        )
        every = Counter(e["ORGANIZATION"] for e in visits)
        last = {o: max(day(e["START"]) for e in visits if e["ORGANIZATION"] == o) for o in every}
        practices.add(min(every, key=lambda o: (-primary[o], -every[o], -last[o].toordinal(), o)))

    return {
        "counts": {
            "practice": len(practices),
            "patient": len(patients),
            "condition": len(conditions),
            "prescription": len(medications),
            "observation": observations,
            "event": len(events),
        },
        "conditions_unmapped": sum(1 for r in conditions if condition_key(r) is None),
        "prescriptions_unmapped": sum(1 for r in medications if not drug_mapped(r)),
        "invalid_codes": invalid_codes,
        "duplicates": duplicates,
        "source_ids": {p["Id"] for p in patients},
    }


def test_sample_import_loads_exactly_what_the_files_contain(db_engine: Engine, tmp_path: Path) -> None:
    expected = expected_synthea(SAMPLE)
    summary = run_import("synthea", SAMPLE, db_engine, rejects_path=tmp_path / "rejects.csv", derive=False)

    assert counts(db_engine) == expected["counts"]
    assert {t: summary.loaded[t] for t in TABLES} == expected["counts"]
    assert summary.unmapped["condition without condition key"] == expected["conditions_unmapped"]
    assert summary.unmapped["prescription without drug key"] == expected["prescriptions_unmapped"]
    assert summary.rejects == {}
    assert summary.rejects_path is None
    assert "patient" in summary.as_text() and "13 loaded" in summary.as_text()


def test_sample_prescriptions_mapped_and_unmapped_split(db_engine: Engine) -> None:
    expected = expected_synthea(SAMPLE)
    run_import("synthea", SAMPLE, db_engine, derive=False)
    with db_engine.connect() as conn:
        mapped = conn.execute(
            text("SELECT COUNT(*) FROM prescription WHERE drug_key IS NOT NULL")
        ).scalar_one()
        unmapped = conn.execute(text("SELECT COUNT(*) FROM prescription WHERE drug_key IS NULL")).scalar_one()
        keyed = conn.execute(
            text("SELECT COUNT(*) FROM condition WHERE condition_key IS NOT NULL")
        ).scalar_one()
    assert unmapped == expected["prescriptions_unmapped"]
    assert mapped == expected["counts"]["prescription"] - expected["prescriptions_unmapped"]
    assert keyed == expected["counts"]["condition"] - expected["conditions_unmapped"]


def test_reimport_updates_and_never_duplicates(db_engine: Engine) -> None:
    first = run_import("synthea", SAMPLE, db_engine, derive=False)
    after_first = counts(db_engine)
    second = run_import("synthea", SAMPLE, db_engine, derive=False)
    assert counts(db_engine) == after_first
    assert sorted(second.patient_ids) == sorted(first.patient_ids)


def test_identifiers_are_pseudonymised_and_direct_identifiers_never_stored(db_engine: Engine) -> None:
    run_import("synthea", SAMPLE, db_engine, derive=False)
    patients = rows(SAMPLE, "patients.csv")
    forbidden = set()
    for p in patients:
        forbidden |= {p["Id"], p["SSN"], p["FIRST"], p["LAST"], p["ADDRESS"]}
        forbidden |= {p[c] for c in ("DRIVERS", "PASSPORT", "MIDDLE") if p.get(c)}
    forbidden |= {e["ORGANIZATION"] for e in rows(SAMPLE, "encounters.csv")}
    forbidden.discard("")
    with db_engine.connect() as conn:
        stored = [
            str(value)
            for table in TABLES
            for row in conn.execute(text(f'SELECT * FROM "{table}"'))  # noqa: S608
            for value in row
            if value is not None
        ]
        ids = [r[0] for r in conn.execute(text("SELECT id FROM patient"))]
    leaked = {value for value in stored for secret in forbidden if secret in value}
    assert not leaked
    assert all(i.startswith("syn-") and len(i) == len("syn-") + 24 for i in ids)
    # Birth year and month are kept, the day is not: no patient attribute holds a birth date (clinical records
    # dated on the day of birth, such as a newborn check, stay as recorded).
    with db_engine.connect() as conn:
        kept = {tuple(r) for r in conn.execute(text("SELECT birth_year, birth_month FROM patient"))}
        attributes = {str(v) for r in conn.execute(text("SELECT * FROM patient")) for v in r if v is not None}
    assert kept == {(int(p["BIRTHDATE"][:4]), int(p["BIRTHDATE"][5:7])) for p in patients}
    assert not {p["BIRTHDATE"] for p in patients} & attributes


def test_a_different_key_gives_different_ids(sqlite_engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    first = run_import("synthea", SAMPLE, sqlite_engine, derive=False)
    monkeypatch.setenv("DYNAIRX_PSEUDONYM_KEY", "another-site")
    second = run_import("synthea", SAMPLE, sqlite_engine, derive=False)
    assert not set(first.patient_ids) & set(second.patient_ids)


def test_missing_pseudonym_key_is_refused_before_anything_is_written(
    sqlite_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DYNAIRX_PSEUDONYM_KEY")
    with pytest.raises(MissingSettingError, match="DYNAIRX_PSEUDONYM_KEY"):
        run_import("synthea", SAMPLE, sqlite_engine)
    assert counts(sqlite_engine)["patient"] == 0


def test_a_failure_while_loading_leaves_the_database_as_it_was(
    sqlite_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_import("synthea", SAMPLE, sqlite_engine, derive=False)
    before = counts(sqlite_engine)

    import data_access.loading as loading

    real_insert = loading.bulk_insert

    def failing_insert(connection, table, frame):  # noqa: ANN001, ANN202 - same signature as bulk_insert
        if table == "observation":
            raise RuntimeError("disk full")
        return real_insert(connection, table, frame)

    monkeypatch.setattr(loading, "bulk_insert", failing_insert)
    with pytest.raises(RuntimeError, match="disk full"):
        run_import("synthea", SAMPLE, sqlite_engine, derive=False)
    assert counts(sqlite_engine) == before


def test_older_export_from_shared_data(db_engine: Engine, tmp_path: Path) -> None:
    if not (OLDER / "patients.csv").exists():
        pytest.skip("../shared/data/synthea_older_59 is not beside this checkout")
    expected = expected_synthea(OLDER)
    summary = run_import("synthea", OLDER, db_engine, rejects_path=tmp_path / "rejects.csv", derive=False)
    assert counts(db_engine) == expected["counts"]
    assert expected["counts"]["patient"] == 59
    # The older export has no observations.csv and conditions.csv without SYSTEM: both accepted.
    assert summary.loaded["observation"] == 0
    assert "observations.csv absent" in summary.notes
    # Its conditions include a SNOMED CT id with a wrong check digit (10939881000119104): rejected, reported.
    # It also repeats two medication rows within one encounter (only their cost differs): one prescription each.
    assert expected["duplicates"] == 2
    assert summary.rejects == {
        "invalid_code": expected["invalid_codes"],
        "duplicate_row": expected["duplicates"],
    }
    with (tmp_path / "rejects.csv").open(newline="") as handle:
        report = [r for r in csv.DictReader(handle) if r["reason"] == "invalid_code"]
    assert {r["value"] for r in report} == {"10939881000119104"}
    assert all(r["file"] == "conditions.csv" and r["field"] == "code" for r in report)
    assert summary.unmapped["condition without condition key"] == expected["conditions_unmapped"]
    assert summary.unmapped["prescription without drug key"] == expected["prescriptions_unmapped"]


def test_import_calls_the_derive_step_with_the_imported_patients(
    sqlite_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    import data_access.derive as derive

    calls: list[list[str]] = []
    monkeypatch.setattr(derive, "refresh_derived", lambda engine, ids, **_: calls.append(list(ids)))
    summary = run_import("synthea", SAMPLE, sqlite_engine)
    assert summary.derived_refreshed
    assert calls == [summary.patient_ids]


def test_import_then_real_flags_and_scores(sqlite_engine: Engine) -> None:
    pytest.importorskip("clinical.population")
    summary = run_import("synthea", SAMPLE, sqlite_engine)
    assert summary.derived_refreshed
    with sqlite_engine.connect() as conn:
        scored = conn.execute(text("SELECT COUNT(DISTINCT patient_id) FROM score")).scalar_one()
    assert scored == summary.loaded["patient"]


def test_progress_bar_and_default_rejects_report_beside_the_database(
    sqlite_engine: Engine, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "export"
    folder.mkdir()
    for name in ("patients.csv", "conditions.csv", "medications.csv", "encounters.csv"):
        (folder / name).write_bytes((SAMPLE / name).read_bytes())
    with (folder / "conditions.csv").open("a") as handle:
        handle.write(
            "2020-02-30,,838e3532-0deb-eb80-3c5e-f5b4c243efaa,,http://snomed.info/sct,44054006,Diabetes\n"
        )
    summary = run_import("synthea", folder, sqlite_engine, derive=False, progress=True)
    assert "synthea" in capsys.readouterr().err
    database = Path(sqlite_engine.url.database)
    assert summary.rejects_path is not None and summary.rejects_path.parent == database.parent
    assert summary.rejects_path.name.startswith(f"{database.stem}-import-rejects-synthea-")
    assert summary.rejects == {"bad_date": 1}
