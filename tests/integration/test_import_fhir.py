"""FHIR R4 import of the hand-written fixtures (tests/fixtures/fhir_r4_bundles: two patient Bundles plus a
hospitalInformation Bundle, as Synthea lays them out; tests/fixtures/fhir_r4_ndjson: a bulk-export set), and the
refusal of older FHIR versions and broken files."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from data_access.sources.fhir import fhir_version_evidence
from data_access.sources.importing import SourceFormatError, run_import

FIXTURES = Path(__file__).resolve().parents[2] / "tests" / "fixtures"
BUNDLES = FIXTURES / "fhir_r4_bundles"
NDJSON = FIXTURES / "fhir_r4_ndjson"
TABLES = ("practice", "patient", "condition", "prescription", "observation", "event")

# Worked out resource by resource from the bundles (see the fixture README).
BUNDLE_COUNTS = {
    "practice": 2,  # Canal Street Surgery (Patient.generalPractitioner), Hillside Health Centre (most AMB visits)
    "patient": 2,
    "condition": 4,  # alpha: hypertension, diabetes, hip fracture; bravo: COPD
    "prescription": 5,  # alpha: amlodipine, metformin (stopped), paracetamol; bravo: apixaban, losartan (dm+d)
    "observation": 4,  # eGFR, creatinine, systolic BP (panel component), potassium
    # alpha: A&E + emergency admission 2022-11-02, fracture 2022-11-02;
    # bravo: urgent care A&E 2023-07-30, admission the next day, death 2023-08-09
    "event": 6,
}
BUNDLE_REJECTS = {"bad_date": 2, "duplicate_row": 1, "no_snomed_code": 1}


@pytest.fixture(autouse=True)
def _pseudonym_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DYNAIRX_PSEUDONYM_KEY", "test-site-secret")


def counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {t: conn.execute(text(f'SELECT COUNT(*) FROM "{t}"')).scalar_one() for t in TABLES}  # noqa: S608


def query(engine: Engine, sql: str) -> list[tuple]:
    with engine.connect() as conn:
        return [
            tuple(v.isoformat() if isinstance(v, dt.date) else v for v in r) for r in conn.execute(text(sql))
        ]


def test_bundles_exact_counts(db_engine: Engine, tmp_path: Path) -> None:
    summary = run_import("fhir", BUNDLES, db_engine, rejects_path=tmp_path / "rejects.csv", derive=False)
    assert counts(db_engine) == BUNDLE_COUNTS
    assert summary.rejects == BUNDLE_REJECTS
    assert summary.skipped == {
        "conditions refuted": 1,
        "encounters that are not A&E or inpatient (used for practice only)": 4,
        "medication requests cancelled": 1,
        "medication requests with intent plan": 1,
        "observations with codes outside the lab list": 1,
    }
    assert summary.unmapped["prescription without drug key"] == 0


def test_bundle_mapping_details(sqlite_engine: Engine) -> None:
    run_import("fhir", BUNDLES, sqlite_engine, derive=False)
    patients = query(
        sqlite_engine,
        "SELECT p.birth_year, p.birth_month, p.sex, p.ethnicity_group, p.died_on, pr.name "
        "FROM patient p JOIN practice pr ON pr.id = p.practice_id ORDER BY p.birth_year",
    )
    assert patients == [
        (1941, 3, "F", "White", None, "Canal Street Surgery"),
        (1950, 7, "M", "Asian", "2023-08-09", "Hillside Health Centre"),
    ]
    drugs = set(
        query(sqlite_engine, "SELECT code_system, code, drug_key, start, stop, repeat FROM prescription")
    )
    assert ("rxnorm", "861007", "metformin", "2015-06-01", "2015-06-01", False) in drugs or (
        "rxnorm",
        "861007",
        "metformin",
        "2015-06-01",
        "2015-06-01",
        0,
    ) in drugs
    assert {(s, c) for s, c, *_ in drugs} == {
        ("rxnorm", "197361"),
        ("rxnorm", "861007"),
        ("text", None),
        ("dmd", "318956006"),
    }
    observations = set(query(sqlite_engine, "SELECT type, value, unit, date FROM observation"))
    assert observations == {
        ("egfr", 48.0, "mL/min/1.73m²", "2022-06-01"),
        ("creatinine", 114.946, "µmol/L", "2022-06-01"),  # 1.3 mg/dL
        ("systolic_bp", 150.0, "mmHg", "2022-06-01"),
        ("potassium", 5.6, "mmol/L", "2023-07-31"),
    }
    events = sorted(query(sqlite_engine, "SELECT type, date FROM event"))
    assert events == [
        ("ae_attendance", "2022-11-02"),
        ("ae_attendance", "2023-07-30"),
        ("death", "2023-08-09"),
        ("emergency_admission", "2022-11-02"),
        ("emergency_admission", "2023-07-31"),
        ("fracture", "2022-11-02"),
    ]


def test_names_identifiers_and_birth_dates_are_not_stored(sqlite_engine: Engine) -> None:
    run_import("fhir", BUNDLES, sqlite_engine, derive=False)
    secrets = {
        "Fixture-Alpha",
        "Fixture-Bravo",
        "Ada",
        "9990000018",
        "999-00-0002",
        "Example Street",
        "ZZ99 1AA",
        "1941-03-12",
        "6b0c2f4e-1d2a-4c1e-9a57-3f1f0c9d0a01",
    }
    with sqlite_engine.connect() as conn:
        stored = {str(v) for t in TABLES for r in conn.execute(text(f'SELECT * FROM "{t}"')) for v in r}  # noqa: S608
    assert not {s for s in stored for secret in secrets if secret in s}


def test_ndjson_bulk_export(db_engine: Engine) -> None:
    summary = run_import("fhir", NDJSON, db_engine, derive=False)
    assert counts(db_engine) == {
        "practice": 1,
        "patient": 1,
        "condition": 2,
        "prescription": 1,  # furosemide, through a Medication/<id> reference in another file
        "observation": 2,
        "event": 2,  # A&E and the emergency admission the same day
    }
    assert summary.rejects == {}
    assert summary.unmapped["prescription without drug key"] == 0


def test_bundles_as_ndjson_give_the_same_records(sqlite_engine: Engine, tmp_path: Path) -> None:
    by_type: dict[str, list[str]] = {}
    for path in sorted(BUNDLES.glob("*.json")):
        for entry in json.loads(path.read_text())["entry"]:
            resource = entry["resource"]
            by_type.setdefault(resource["resourceType"], []).append(json.dumps(resource))
    folder = tmp_path / "ndjson"
    folder.mkdir()
    for kind, lines in by_type.items():
        (folder / f"{kind}.ndjson").write_text("\n".join(lines) + "\n")
    from_bundles = run_import("fhir", BUNDLES, sqlite_engine, derive=False)
    from_ndjson = run_import("fhir", folder, sqlite_engine, derive=False)
    assert counts(sqlite_engine) == BUNDLE_COUNTS
    assert sorted(from_ndjson.patient_ids) == sorted(from_bundles.patient_ids)
    assert from_ndjson.rejects == from_bundles.rejects


def test_single_bundle_file(sqlite_engine: Engine) -> None:
    run_import("fhir", BUNDLES / "Ada_Fixture-Alpha.json", sqlite_engine, derive=False)
    assert counts(sqlite_engine)["patient"] == 1


@pytest.mark.parametrize(
    ("resource", "version", "field"),
    [
        ({"resourceType": "MedicationOrder", "id": "x"}, "DSTU2", "MedicationOrder"),
        ({"resourceType": "Condition", "patient": {"reference": "Patient/1"}}, "DSTU2", "Condition.patient"),
        ({"resourceType": "Encounter", "class": "inpatient", "patient": {}}, "DSTU2", "Encounter.class"),
        (
            {"resourceType": "Condition", "subject": {}, "assertedDate": "2017-01-01"},
            "STU3",
            "Condition.assertedDate",
        ),
        (
            {"resourceType": "Condition", "subject": {}, "clinicalStatus": "active"},
            "STU3",
            "Condition.clinicalStatus",
        ),
        (
            {"resourceType": "MedicationRequest", "subject": {}, "context": {}},
            "STU3",
            "MedicationRequest.context",
        ),
        (
            {"resourceType": "CapabilityStatement", "fhirVersion": "3.0.2"},
            "STU3",
            "CapabilityStatement.fhirVersion",
        ),
        ({"resourceType": "Encounter", "class": [{"coding": []}]}, "R5", "Encounter.class"),
    ],
)
def test_older_fhir_versions_are_recognised(resource: dict, version: str, field: str) -> None:
    found, detail = fhir_version_evidence(resource)
    assert found == version
    assert detail.startswith(field)


def test_r4_resources_are_not_mistaken_for_older_versions() -> None:
    for path in BUNDLES.glob("*.json"):
        for entry in json.loads(path.read_text())["entry"]:
            assert fhir_version_evidence(entry["resource"]) is None


def test_stu3_bundle_is_refused_with_the_version_found(sqlite_engine: Engine, tmp_path: Path) -> None:
    stu3 = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {"resource": {"resourceType": "Patient", "id": "p", "gender": "male", "birthDate": "1950-01-01"}},
            {
                "resource": {
                    "resourceType": "Condition",
                    "id": "c",
                    "clinicalStatus": "active",
                    "verificationStatus": "confirmed",
                    "code": {"coding": [{"system": "http://snomed.info/sct", "code": "44054006"}]},
                    "subject": {"reference": "Patient/p"},
                    "onsetDateTime": "2010-01-01",
                    "assertedDate": "2010-01-02",
                }
            },
        ],
    }
    (tmp_path / "stu3.json").write_text(json.dumps(stu3))
    with pytest.raises(SourceFormatError) as raised:
        run_import("fhir", tmp_path / "stu3.json", sqlite_engine, derive=False)
    assert str(raised.value).startswith(
        "stu3.json, row 2, field Condition.assertedDate: found FHIR STU3, not R4"
    )
    assert counts(sqlite_engine)["patient"] == 0


def test_dstu2_medication_order_is_refused(sqlite_engine: Engine, tmp_path: Path) -> None:
    folder = tmp_path / "dstu2"
    shutil.copytree(NDJSON, folder)
    with (folder / "MedicationOrder.ndjson").open("w") as handle:
        handle.write(
            json.dumps({"resourceType": "MedicationOrder", "id": "mo", "patient": {"reference": "Patient/x"}})
        )
        handle.write("\n")
    with pytest.raises(SourceFormatError, match=r"^MedicationOrder\.ndjson, row 1, .*found FHIR DSTU2"):
        run_import("fhir", folder, sqlite_engine, derive=False)


def test_truncated_ndjson_names_the_line(sqlite_engine: Engine, tmp_path: Path) -> None:
    folder = tmp_path / "truncated"
    shutil.copytree(NDJSON, folder)
    data = (folder / "Observation.ndjson").read_bytes()
    (folder / "Observation.ndjson").write_bytes(data[: len(data) - 30])
    with pytest.raises(
        SourceFormatError, match=r"^Observation\.ndjson, row 2: the file ends in the middle of this line"
    ):
        run_import("fhir", folder, sqlite_engine, derive=False)
    assert counts(sqlite_engine)["patient"] == 0


def test_truncated_bundle_and_empty_file(sqlite_engine: Engine, tmp_path: Path) -> None:
    data = (BUNDLES / "Bert_Fixture-Bravo.json").read_bytes()
    (tmp_path / "cut.json").write_bytes(data[: len(data) // 2])
    with pytest.raises(SourceFormatError, match=r"^cut\.json, row \d+: the file ends before the JSON does"):
        run_import("fhir", tmp_path / "cut.json", sqlite_engine, derive=False)
    (tmp_path / "empty.json").write_bytes(b"")
    with pytest.raises(SourceFormatError, match=r"^empty\.json, row 1: the file is empty"):
        run_import("fhir", tmp_path / "empty.json", sqlite_engine, derive=False)


def test_byte_order_mark_and_windows_line_endings(sqlite_engine: Engine, tmp_path: Path) -> None:
    folder = tmp_path / "bom_crlf"
    folder.mkdir()
    for path in NDJSON.glob("*.ndjson"):
        (folder / path.name).write_bytes(b"\xef\xbb\xbf" + path.read_bytes().replace(b"\n", b"\r\n"))
    summary = run_import("fhir", folder, sqlite_engine, derive=False)
    assert summary.loaded["patient"] == 1 and summary.loaded["observation"] == 2


def test_same_organisation_by_id_or_identifier_is_one_practice(sqlite_engine: Engine) -> None:
    # NDJSON: Patient.managingOrganization = Organization/org-y05678; Bundles: encounters name ODS code Y05678.
    run_import("fhir", BUNDLES, sqlite_engine, derive=False)
    run_import("fhir", NDJSON, sqlite_engine, derive=False)
    names = sorted(r[0] for r in query(sqlite_engine, "SELECT name FROM practice"))
    assert names == ["Canal Street Surgery", "Hillside Health Centre"]


def test_bundle_references_by_full_url_that_differs_from_the_id(
    sqlite_engine: Engine, tmp_path: Path
) -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {
                "fullUrl": "urn:uuid:0f3c1a2b-0000-4000-8000-000000000abc",
                "resource": {
                    "resourceType": "Patient",
                    "id": "local-7",
                    "gender": "female",
                    "birthDate": "1944-02",
                },
            },
            {
                "fullUrl": "urn:uuid:0f3c1a2b-0000-4000-8000-000000000def",
                "resource": {
                    "resourceType": "Condition",
                    "code": {"coding": [{"system": "http://snomed.info/sct", "code": "44054006"}]},
                    "subject": {"reference": "urn:uuid:0f3c1a2b-0000-4000-8000-000000000abc"},
                    "onsetDateTime": "2015-05-05",
                },
            },
        ],
    }
    (tmp_path / "bundle.json").write_text(json.dumps(bundle))
    summary = run_import("fhir", tmp_path / "bundle.json", sqlite_engine, derive=False)
    assert summary.loaded["condition"] == 1
    assert summary.rejects == {}
