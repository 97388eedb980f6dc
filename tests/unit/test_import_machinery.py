"""Pure logic of the importers' shared machinery: pseudonyms, code checks, dates, units, events, practices, CSV
checks and the summary. No database."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest
from sqlalchemy import create_engine

from data_access.sources.importing import (
    ImportSummary,
    Pseudonymiser,
    RejectLog,
    SourceFormatError,
    StagedSource,
    VocabularyMapper,
    assign_practices,
    build_canonical,
    conform_staged,
    date_expr,
    default_rejects_path,
    empty_staged,
    hospital_events,
    is_rxnorm_code,
    is_snomed_concept_id,
    open_csv,
    parse_dates,
)


class _NoConditions:
    keys = frozenset({"fragility_fracture"})

    def match(self, value: object) -> None:
        return None


class _NoDrugs:
    def match_code(self, system: str, code: str) -> None:
        return None

    def match_text(self, text: str | None) -> None:
        return None


VOCABULARY = VocabularyMapper(_NoConditions(), _NoDrugs())


# ---------------------------------------------------------------------------------------------------- pseudonyms


def test_pseudonyms_are_stable_keyed_and_prefixed() -> None:
    one = Pseudonymiser(b"site-a", "synthea")
    assert one.patient_id("abc") == Pseudonymiser(b"site-a", "synthea").patient_id("abc")
    assert one.patient_id("abc") != Pseudonymiser(b"site-b", "synthea").patient_id("abc")
    assert one.patient_id("abc") != one.practice_id("abc")
    assert Pseudonymiser(b"site-a", "omop").patient_id("1").startswith("omop-")
    pid = one.patient_id("838e3532-0deb-eb80-3c5e-f5b4c243efaa")
    assert pid.startswith("syn-") and len(pid) == 4 + 24 and "838e3532" not in pid
    assert one.practice_id("x").startswith("syn-org-")


def test_pseudonym_mapping_frame_hashes_each_id_once() -> None:
    mapping = Pseudonymiser(b"k", "fhir").mapping(["b", "a", "b", None], "patient")
    assert mapping["source_id"].to_list() == ["a", "b"]
    assert mapping["id"].n_unique() == 2


def test_empty_key_is_refused() -> None:
    with pytest.raises(ValueError, match="empty"):
        Pseudonymiser(b"", "synthea")


# ---------------------------------------------------------------------------------------------------- codes


@pytest.mark.parametrize("code", ["44054006", "38341003", "359817006", "10939881000119105", "318956006"])
def test_valid_snomed_ids(code: str) -> None:
    assert is_snomed_concept_id(code)


@pytest.mark.parametrize(
    "code",
    ["44054007", "10939881000119104", "NOTACODE", "", None, "012345", "12345", "44054016", "4405400"],
)
def test_invalid_snomed_ids(code: str | None) -> None:
    # check digit, letters, empty, leading zero, too short, description partition ("01"), truncated
    assert not is_snomed_concept_id(code)


def test_rxnorm_codes() -> None:
    assert is_rxnorm_code("197361") and is_rxnorm_code("1")
    assert not any(is_rxnorm_code(c) for c in ("RX-12", "", None, "0", "123456789"))


# ---------------------------------------------------------------------------------------------------- dates


def test_date_parsing() -> None:
    frame = pl.DataFrame(
        {
            "d": [
                "2020-02-06",
                "2020-02-06T08:45:50Z",
                "2019-12-31T23:30:00-05:00",
                "20200101",
                "2020-02-30",
                "31/12/2019",
                "",
                None,
                "2020-13-01",
                " 2021-05-05 ",
            ]
        }
    )
    parsed = frame.select(date_expr("d")).to_series().to_list()
    assert parsed == [
        dt.date(2020, 2, 6),
        dt.date(2020, 2, 6),
        dt.date(2019, 12, 31),  # the calendar day as recorded, not moved by the offset
        dt.date(2020, 1, 1),
        None,
        None,
        None,
        None,
        None,
        dt.date(2021, 5, 5),
    ]


# ---------------------------------------------------------------------------------------------------- build_canonical


def _staged(**frames: pl.DataFrame) -> StagedSource:
    patients = pl.DataFrame(
        {
            "source_id": ["p1", "p2"],
            "birth_year": [1940, 1950],
            "birth_month": [3, 11],
            "sex": ["F", "M"],
            "practice_source_id": ["org1", None],
            "practice_name": ["Canal Street Surgery", None],
            "registered_on": [dt.date(1990, 1, 1), dt.date(1950, 11, 20)],
            "_file": ["patients.csv"] * 2,
            "_row": [2, 3],
        }
    )
    return StagedSource(
        kind="synthea",
        patients=conform_staged("patient", frames.get("patients", patients)),
        conditions=conform_staged("condition", frames.get("conditions", empty_staged("condition"))),
        prescriptions=conform_staged(
            "prescription", frames.get("prescriptions", empty_staged("prescription"))
        ),
        observations=conform_staged("observation", frames.get("observations", empty_staged("observation"))),
        events=conform_staged("event", frames.get("events", empty_staged("event"))),
    )


def _build(staged: StagedSource) -> tuple[dict[str, pl.DataFrame], RejectLog]:
    rejects = RejectLog()
    batch = build_canonical(
        staged, pseudonymiser=Pseudonymiser(b"k", "synthea"), vocabulary=VOCABULARY, rejects=rejects
    )
    return batch.frames, rejects


def _labs(rows: list[tuple[str, str | None, str | None]]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "patient_source_id": ["p1"] * len(rows),
            "loinc": [r[0] for r in rows],
            "value_raw": [r[1] for r in rows],
            "unit": [r[2] for r in rows],
            "date": [dt.date(2022, 1, 1)] * len(rows),
            "_file": ["observations.csv"] * len(rows),
            "_row": list(range(2, 2 + len(rows))),
            "_dupkey": list(range(len(rows))),
        }
    )


def test_lab_units_are_converted_to_canonical_units() -> None:
    frames, rejects = _build(
        _staged(
            observations=_labs(
                [
                    ("38483-4", "1.0", "mg/dL"),  # creatinine -> x 88.42 µmol/L
                    ("14682-9", "0.09", "mmol/L"),  # creatinine mmol/L -> µmol/L
                    ("4548-4", "6.5", "%"),  # HbA1c DCCT % -> IFCC mmol/mol
                    ("718-7", "13.2", "g/dL"),  # haemoglobin -> g/L
                    ("33914-3", "52", "mL/min/{1.73_m2}"),
                    ("8480-6", "141", "mm[Hg]"),
                    ("6301-6", "2.4", ""),  # INR has no unit
                    ("2823-3", None, "mmol/L"),  # a test with no value keeps its date
                ]
            )
        )
    )
    got = frames["observation"].select("type", "value", "unit").rows()
    assert got == [
        ("creatinine", 88.42, "µmol/L"),
        ("creatinine", 90.0, "µmol/L"),
        ("hba1c", 47.541, "mmol/mol"),
        ("haemoglobin", 132.0, "g/L"),
        ("egfr", 52.0, "mL/min/1.73m²"),
        ("systolic_bp", 141.0, "mmHg"),
        ("inr", 2.4, "ratio"),
        ("potassium", None, "mmol/L"),
    ]
    assert rejects.total == 0


def test_unknown_units_and_non_numeric_values_are_rejected() -> None:
    frames, rejects = _build(
        _staged(
            observations=_labs(
                [("2160-0", "1.1", "furlongs"), ("2160-0", "high", "mg/dL"), ("2160-0", "1", "")]
            )
        )
    )
    assert frames["observation"].height == 0
    assert rejects.counts() == {"bad_value": 1, "unknown_unit": 2}


def test_patients_duplicates_bad_sex_and_children_of_rejected_patients() -> None:
    patients = pl.DataFrame(
        {
            "source_id": ["p1", "p1", "p3"],
            "birth_year": [1940, 1941, 1960],
            "birth_month": [3, 3, 1],
            "sex": ["F", "F", "U"],
            "_file": ["patients.csv"] * 3,
            "_row": [2, 3, 4],
        }
    )
    events = pl.DataFrame(
        {
            "patient_source_id": ["p1", "p3"],
            "type": ["fall", "fall"],
            "date": [dt.date(2020, 1, 1)] * 2,
            "_file": ["x"] * 2,
            "_row": [2, 3],
        }
    )
    frames, rejects = _build(_staged(patients=patients, events=events))
    assert frames["patient"].height == 1
    assert frames["event"].height == 1
    assert rejects.counts() == {"duplicate_patient": 1, "unknown_patient": 1, "unknown_sex": 1}


def test_registration_in_the_birth_month_is_moved_and_deaths_become_events() -> None:
    frames, _ = _build(_staged())
    registered = dict(zip(frames["patient"]["birth_year"], frames["patient"]["registered_on"], strict=True))
    assert registered[1950] == dt.date(1950, 12, 1)  # not the day of birth
    assert registered[1940] == dt.date(1990, 1, 1)
    practices = frames["practice"]
    assert set(practices["name"]) == {
        "Canal Street Surgery",
        "Unassigned (synthea: no practice in the source)",
    }


def test_condition_key_events_and_no_source_ids_in_output() -> None:
    class Fractures(_NoConditions):
        def match(self, value: object) -> object:
            return type("C", (), {"key": "fragility_fracture"})() if value == "359817006" else None

    conditions = pl.DataFrame(
        {
            "patient_source_id": ["p1", "p1"],
            "code": ["359817006", "NOTACODE"],
            "term": ["Closed fracture of hip", "x"],
            "onset": [dt.date(2022, 11, 2)] * 2,
            "_file": ["conditions.csv"] * 2,
            "_row": [2, 3],
            "_dupkey": [1, 2],
        }
    )
    rejects = RejectLog()
    batch = build_canonical(
        _staged(conditions=conditions),
        pseudonymiser=Pseudonymiser(b"k", "synthea"),
        vocabulary=VocabularyMapper(Fractures(), _NoDrugs()),
        rejects=rejects,
        condition_events={"fragility_fracture": "fracture"},
    )
    assert batch.frames["event"].select("type", "date").rows() == [("fracture", dt.date(2022, 11, 2))]
    assert rejects.counts() == {"invalid_code": 1}
    assert not any("p1" == v for f in batch.frames.values() for c in f.columns for v in f[c].to_list())


# ---------------------------------------------------------------------------------------------------- events


def test_hospital_events_mapping() -> None:
    visits = pl.DataFrame(
        {
            "patient_source_id": ["a", "a", "a", "b", "b", "c"],
            "date": [
                dt.date(2020, 1, 1),
                dt.date(2020, 1, 2),
                dt.date(2020, 3, 1),
                dt.date(2021, 1, 1),
                dt.date(2021, 5, 1),
                dt.date(2022, 1, 1),
            ],
            "setting": ["ae", "inpatient", "inpatient", "ae", "inpatient", "inpatient"],
            "emergency": [False, False, False, True, False, True],
            "_file": ["e"] * 6,
            "_row": list(range(6)),
        }
    )
    got = sorted(hospital_events(visits).select("patient_source_id", "type", "date").rows())
    assert got == [
        ("a", "ae_attendance", dt.date(2020, 1, 1)),
        ("a", "emergency_admission", dt.date(2020, 1, 2)),  # admitted the day after A&E
        ("b", "ae_attendance", dt.date(2021, 1, 1)),
        ("b", "emergency_admission", dt.date(2021, 1, 1)),  # A&E visit coded as an emergency admission
        ("c", "emergency_admission", dt.date(2022, 1, 1)),  # inpatient stay coded as emergency
    ]  # a's stay on 2020-03-01 and b's on 2021-05-01 are elective: no event


def test_practice_is_the_organisation_of_most_primary_care_visits() -> None:
    visits = pl.DataFrame(
        {
            "patient_source_id": ["a", "a", "a", "a", "b", "b", "c"],
            "org_source_id": ["gp1", "gp2", "gp2", "hospital", "gp1", "gp2", "hospital"],
            "org_name": ["GP one", None, "GP two", "Hospital", None, None, "Hospital"],
            "date": [dt.date(2020, 1, d) for d in (1, 2, 3, 4, 5, 6, 7)],
            "primary_care": [True, True, True, False, True, True, False],
        }
    )
    got = sorted(assign_practices(visits).rows())
    assert got == [
        ("a", "gp2", "GP two"),
        ("b", "gp2", None),  # tie: the most recently seen
        ("c", "hospital", "Hospital"),  # no primary care at all: most visits of any kind
    ]


# ---------------------------------------------------------------------------------------------------- CSV checks


def test_open_csv_errors(tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    with pytest.raises(SourceFormatError, match=r"^empty\.csv, row 1: the file is empty"):
        open_csv(empty, required=["A"])
    missing = tmp_path / "missing.csv"
    missing.write_text("A,C\n1,2\n")
    with pytest.raises(SourceFormatError, match=r"^missing\.csv, row 1, field B: required column B missing"):
        open_csv(missing, required=["A", "B"])
    ragged = tmp_path / "ragged.csv"
    ragged.write_text('A,B,C\n1,"x,y",3\n4,5\n6,7,8\n')
    with pytest.raises(SourceFormatError, match=r"^ragged\.csv, row 3: malformed row: it has 2 fields"):
        open_csv(ragged, required=["A"])


def test_open_csv_accepts_bom_crlf_tabs_and_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "ok.csv"
    path.write_bytes(b'\xef\xbb\xbfid,name\r\n1,"a, b"\r\n\r\n2,c\r\n')
    table = open_csv(path, required=["ID", "Name"])
    assert table.data_rows == 2
    assert table.collect(["id", "name"])["name"].to_list() == ["a, b", "c"]
    tabs = tmp_path / "tabs.tsv"
    tabs.write_text("id\tname\n1\tx\n")
    assert open_csv(tabs, required=["id"]).separator == "\t"


# ---------------------------------------------------------------------------------------------------- summary


def test_summary_text_has_one_line_per_table() -> None:
    summary = ImportSummary(
        kind="synthea",
        source="/data/export",
        loaded={
            "practice": 2,
            "patient": 13,
            "condition": 521,
            "prescription": 1484,
            "observation": 78,
            "event": 9,
        },
        rejects={"bad_date": 2},
        unmapped={"prescription without drug key": 3},
        skipped={},
        notes=["observations.csv absent"],
        elapsed_s=1.25,
        rejects_path=Path("/var/rejects.csv"),
        derived_refreshed=False,
    )
    lines = summary.as_text().splitlines()
    assert lines[1].split() == ["practice", "2", "loaded"]
    assert lines[4].split() == ["prescription", "1,484", "loaded"]
    assert "rejected" in lines[7] and "bad_date" in lines[7]
    assert lines[-1].startswith("Done in 1.2 s: 13 patients, 2 rows rejected")


def test_default_rejects_path() -> None:
    when = dt.datetime(2026, 1, 2, 3, 4, 5)
    sqlite = create_engine("sqlite:////srv/dynairx/db.sqlite")
    assert default_rejects_path(sqlite, "omop", when) == Path(
        "/srv/dynairx/db-import-rejects-omop-20260102-030405.csv"
    )
    postgres = create_engine("postgresql+psycopg://user@localhost/dynairx")
    assert default_rejects_path(postgres, "fhir", when) == Path("var/import-rejects-fhir-20260102-030405.csv")


def test_partial_dates_are_reported_as_imprecise() -> None:
    frame = pl.DataFrame(
        {"d": ["2015", "2015-03", "2015-03-04", "soon"], "_file": ["f"] * 4, "_row": [2, 3, 4, 5]}
    )
    rejects = RejectLog()
    kept = parse_dates(frame, "d", target="date", field_name="onset", required=True, rejects=rejects)
    assert kept["date"].to_list() == [dt.date(2015, 3, 4)]
    assert rejects.counts() == {"bad_date": 1, "imprecise_date": 2}
