"""Broken Synthea exports, built from the genuine sample in tmp_path: each problem is either a clear error naming
file, row and field (and nothing is written) or a rejected row with its reason in the report and the summary."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from data_access.sources.importing import SourceFormatError, run_import

SAMPLE = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "synthea_csv_sample"
FILES = ("patients.csv", "conditions.csv", "medications.csv", "encounters.csv", "observations.csv")
TABLES = ("practice", "patient", "condition", "prescription", "observation", "event")


@pytest.fixture(autouse=True)
def _pseudonym_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DYNAIRX_PSEUDONYM_KEY", "test-site-secret")


@pytest.fixture
def export(tmp_path: Path) -> Path:
    folder = tmp_path / "synthea"
    folder.mkdir()
    for name in FILES:
        shutil.copyfile(SAMPLE / name, folder / name)
    return folder


def counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {t: conn.execute(text(f'SELECT COUNT(*) FROM "{t}"')).scalar_one() for t in TABLES}  # noqa: S608


def read_rows(path: Path) -> tuple[list[str], list[list[str]]]:
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        return header, list(reader)


def write_rows(path: Path, header: list[str], rows: list[list[str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def report(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture
def baseline(sqlite_engine: Engine, export: Path) -> dict[str, int]:
    """Counts of the untouched export, then an empty database again for the broken variant."""
    run_import("synthea", export, sqlite_engine, derive=False)
    loaded = counts(sqlite_engine)
    with sqlite_engine.begin() as conn:
        for table in ("event", "observation", "prescription", "condition", "patient", "practice"):
            conn.execute(text(f'DELETE FROM "{table}"'))  # noqa: S608
    return loaded


def test_missing_required_column_names_file_and_column(sqlite_engine: Engine, export: Path) -> None:
    header, rows = read_rows(export / "patients.csv")
    drop = header.index("GENDER")
    write_rows(
        export / "patients.csv", header[:drop] + header[drop + 1 :], [r[:drop] + r[drop + 1 :] for r in rows]
    )
    with pytest.raises(SourceFormatError) as raised:
        run_import("synthea", export, sqlite_engine, derive=False)
    message = str(raised.value)
    assert message.startswith("patients.csv, row 1, field GENDER:")
    assert "required column GENDER missing" in message
    assert counts(sqlite_engine)["patient"] == 0


def test_missing_column_in_an_optional_file_is_still_an_error(sqlite_engine: Engine, export: Path) -> None:
    header, rows = read_rows(export / "conditions.csv")
    drop = header.index("CODE")
    write_rows(
        export / "conditions.csv",
        header[:drop] + header[drop + 1 :],
        [r[:drop] + r[drop + 1 :] for r in rows],
    )
    with pytest.raises(SourceFormatError, match=r"^conditions\.csv, row 1, field CODE: required column CODE"):
        run_import("synthea", export, sqlite_engine, derive=False)
    assert counts(sqlite_engine)["patient"] == 0


def test_export_without_optional_cost_and_payer_columns_is_accepted(
    sqlite_engine: Engine, export: Path, baseline: dict[str, int]
) -> None:
    for name, dropped in {
        "medications.csv": ("PAYER", "BASE_COST", "PAYER_COVERAGE", "TOTALCOST", "DISPENSES"),
        "encounters.csv": ("PAYER", "BASE_ENCOUNTER_COST", "TOTAL_CLAIM_COST", "PAYER_COVERAGE"),
        "conditions.csv": ("SYSTEM",),
    }.items():
        header, rows = read_rows(export / name)
        keep = [i for i, h in enumerate(header) if h not in dropped]
        write_rows(export / name, [header[i] for i in keep], [[r[i] for i in keep] for r in rows])
    run_import("synthea", export, sqlite_engine, derive=False)
    assert counts(sqlite_engine) == baseline


def test_bad_dates_are_rejected_row_by_row(
    sqlite_engine: Engine, export: Path, tmp_path: Path, baseline: dict[str, int]
) -> None:
    header, rows = read_rows(export / "conditions.csv")
    rows[4][header.index("START")] = "2020-02-30"
    rows[7][header.index("STOP")] = "not a date"
    write_rows(export / "conditions.csv", header, rows)
    header, rows = read_rows(export / "medications.csv")
    rows[0][header.index("START")] = "31/12/2019"
    write_rows(export / "medications.csv", header, rows)

    summary = run_import(
        "synthea", export, sqlite_engine, rejects_path=tmp_path / "rejects.csv", derive=False
    )
    after = counts(sqlite_engine)
    assert after["condition"] == baseline["condition"] - 2
    assert after["prescription"] == baseline["prescription"] - 1
    assert summary.rejects == {"bad_date": 3}
    rejected = {(r["file"], r["row"], r["field"], r["value"]) for r in report(tmp_path / "rejects.csv")}
    assert rejected == {
        ("conditions.csv", "6", "START", "2020-02-30"),
        ("conditions.csv", "9", "STOP", "not a date"),
        ("medications.csv", "2", "START", "31/12/2019"),
    }


def test_unknown_codes_are_rejected_and_unlisted_valid_codes_kept_unmapped(
    sqlite_engine: Engine, export: Path, tmp_path: Path, baseline: dict[str, int]
) -> None:
    header, rows = read_rows(export / "conditions.csv")
    code, term = header.index("CODE"), header.index("DESCRIPTION")
    rows[0][code] = "NOTACODE"
    rows[1][code] = "44054007"  # type 2 diabetes 44054006 with its check digit broken
    rows[2][code], rows[2][term] = "224299000", "Received higher education (finding)"
    write_rows(export / "conditions.csv", header, rows)
    header, rows = read_rows(export / "medications.csv")
    rows[3][header.index("CODE")] = "RX-12"
    write_rows(export / "medications.csv", header, rows)

    summary = run_import(
        "synthea", export, sqlite_engine, rejects_path=tmp_path / "rejects.csv", derive=False
    )
    assert summary.rejects == {"invalid_code": 3}
    assert summary.loaded["condition"] == baseline["condition"] - 2
    assert summary.loaded["prescription"] == baseline["prescription"] - 1
    values = {(r["file"], r["value"]) for r in report(tmp_path / "rejects.csv")}
    assert values == {
        ("conditions.csv", "NOTACODE"),
        ("conditions.csv", "44054007"),
        ("medications.csv", "RX-12"),
    }
    # The well-formed but unlisted code is imported with no condition key and counted as unmapped.
    with sqlite_engine.connect() as conn:
        kept = conn.execute(text("SELECT condition_key FROM condition WHERE code = '224299000'")).all()
    assert kept and all(key is None for (key,) in kept)
    assert summary.unmapped["condition without condition key"] >= 1


def test_duplicate_rows_are_dropped_and_reported(
    sqlite_engine: Engine, export: Path, tmp_path: Path, baseline: dict[str, int]
) -> None:
    for name in ("patients.csv", "conditions.csv", "medications.csv", "observations.csv"):
        header, rows = read_rows(export / name)
        # observations: copy a systolic blood pressure row (rows outside the lab list are not imported at all)
        copied = next(r for r in rows if name != "observations.csv" or r[header.index("CODE")] == "8480-6")
        write_rows(export / name, header, rows + [copied])
    summary = run_import(
        "synthea", export, sqlite_engine, rejects_path=tmp_path / "rejects.csv", derive=False
    )
    assert counts(sqlite_engine) == baseline
    assert summary.rejects == {"duplicate_row": 4}
    assert {r["file"] for r in report(tmp_path / "rejects.csv")} == {
        "patients.csv",
        "conditions.csv",
        "medications.csv",
        "observations.csv",
    }


def test_same_patient_id_twice_with_different_details_keeps_the_first(
    sqlite_engine: Engine, export: Path, baseline: dict[str, int]
) -> None:
    header, rows = read_rows(export / "patients.csv")
    twin = list(rows[0])
    twin[header.index("BIRTHDATE")] = "1999-09-09"
    write_rows(export / "patients.csv", header, rows + [twin])
    summary = run_import("synthea", export, sqlite_engine, derive=False)
    assert counts(sqlite_engine) == baseline
    assert summary.rejects == {"duplicate_patient": 1}


def test_empty_patients_file_is_an_error(sqlite_engine: Engine, export: Path) -> None:
    (export / "patients.csv").write_bytes(b"")
    with pytest.raises(SourceFormatError, match=r"^patients\.csv, row 1: the file is empty"):
        run_import("synthea", export, sqlite_engine, derive=False)


def test_empty_optional_file_is_an_error_but_header_only_is_fine(
    sqlite_engine: Engine, export: Path, baseline: dict[str, int]
) -> None:
    (export / "medications.csv").write_bytes(b"")
    with pytest.raises(SourceFormatError, match=r"^medications\.csv, row 1: the file is empty"):
        run_import("synthea", export, sqlite_engine, derive=False)
    header, _ = read_rows(SAMPLE / "medications.csv")
    write_rows(export / "medications.csv", header, [])
    run_import("synthea", export, sqlite_engine, derive=False)
    assert counts(sqlite_engine) == {**baseline, "prescription": 0}


def test_patients_file_with_only_a_header_is_an_error(sqlite_engine: Engine, export: Path) -> None:
    header, _ = read_rows(export / "patients.csv")
    write_rows(export / "patients.csv", header, [])
    with pytest.raises(SourceFormatError, match="no patient rows"):
        run_import("synthea", export, sqlite_engine, derive=False)


def test_byte_order_mark_is_accepted(sqlite_engine: Engine, export: Path, baseline: dict[str, int]) -> None:
    for name in FILES:
        (export / name).write_bytes(b"\xef\xbb\xbf" + (export / name).read_bytes())
    run_import("synthea", export, sqlite_engine, derive=False)
    assert counts(sqlite_engine) == baseline


def test_windows_line_endings_are_accepted(
    sqlite_engine: Engine, export: Path, baseline: dict[str, int]
) -> None:
    for name in FILES:
        data = (export / name).read_bytes()
        assert b"\r\n" not in data
        (export / name).write_bytes(data.replace(b"\n", b"\r\n"))
    summary = run_import("synthea", export, sqlite_engine, derive=False)
    assert counts(sqlite_engine) == baseline
    assert summary.rejects == {}


def test_file_truncated_mid_row_is_an_error_naming_the_row(sqlite_engine: Engine, export: Path) -> None:
    data = (export / "medications.csv").read_bytes()
    lines = data.count(b"\n")
    cut = data.rstrip(b"\n").rfind(b"\n") + 40  # 40 bytes into the last row
    (export / "medications.csv").write_bytes(data[:cut])
    with pytest.raises(SourceFormatError) as raised:
        run_import("synthea", export, sqlite_engine, derive=False)
    assert str(raised.value).startswith(
        f"medications.csv, row {lines}: the file ends in the middle of this row"
    )
    assert counts(sqlite_engine)["patient"] == 0


def test_file_truncated_inside_a_quoted_field_is_an_error(sqlite_engine: Engine, export: Path) -> None:
    header, rows = read_rows(export / "conditions.csv")
    write_rows(export / "conditions.csv", header, rows)
    with (export / "conditions.csv").open("a") as handle:
        handle.write(
            '2001-01-01,,838e3532-0deb-eb80-3c5e-f5b4c243efaa,,http://snomed.info/sct,44054006,"Diabetes m'
        )
    with pytest.raises(
        SourceFormatError, match=r"^conditions\.csv, row \d+: the file ends inside a quoted field"
    ):
        run_import("synthea", export, sqlite_engine, derive=False)


def test_short_row_in_the_middle_is_an_error(sqlite_engine: Engine, export: Path) -> None:
    lines = (export / "encounters.csv").read_text().splitlines(keepends=True)
    lines[10] = ",".join(lines[10].split(",")[:5]) + "\n"
    (export / "encounters.csv").write_text("".join(lines))
    with pytest.raises(
        SourceFormatError,
        match=r"^encounters\.csv, row 11: malformed row: it has 5 fields, the header has 15",
    ):
        run_import("synthea", export, sqlite_engine, derive=False)


def test_rows_of_unknown_patients_are_rejected(
    sqlite_engine: Engine, export: Path, baseline: dict[str, int]
) -> None:
    header, rows = read_rows(export / "conditions.csv")
    ghost = list(rows[0])
    ghost[header.index("PATIENT")] = "00000000-0000-0000-0000-000000000000"
    write_rows(export / "conditions.csv", header, rows + [ghost])
    summary = run_import("synthea", export, sqlite_engine, derive=False)
    assert counts(sqlite_engine) == baseline
    assert summary.rejects == {"unknown_patient": 1}


def test_not_a_folder_and_missing_patients_file(sqlite_engine: Engine, export: Path) -> None:
    with pytest.raises(SourceFormatError, match="expected a folder"):
        run_import("synthea", export / "patients.csv", sqlite_engine, derive=False)
    (export / "patients.csv").unlink()
    with pytest.raises(SourceFormatError, match=r"patients\.csv: required file missing"):
        run_import("synthea", export, sqlite_engine, derive=False)
