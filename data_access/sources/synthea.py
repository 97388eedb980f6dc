"""Reader of Synthea CSV exports (https://github.com/synthetichealth/synthea, ``exporter.csv``).

Synthea's column set has changed between versions: newer exports add ``SYSTEM`` to conditions.csv and
``MIDDLE``/``FIPS``/``INCOME`` to patients.csv, older ones have no observations.csv at all, some leave ``STOP``
empty. The reader therefore asks only for the columns it needs (matched case-insensitively) and names the one that
is missing otherwise. Only patients.csv is required; each other file, when absent, is reported in the summary.

Mapping (``StagedSource`` rows; codes are mapped to canonical keys in ``importing.build_canonical``):

- patients.csv: ``Id`` (pseudonymised), year and month of ``BIRTHDATE`` (the day is dropped), ``GENDER``,
  ``DEATHDATE``, ``RACE`` -> ONS ethnic group (white -> White, black -> Black, asian -> Asian, native, hawaiian
  and other -> Other; Synthea's ``ETHNICITY`` hispanic/nonhispanic has no ONS counterpart and is not used). Names,
  addresses, SSN, driver's licence and passport numbers and the exact birth date are never read. Synthea has no
  deprivation index, so ``deprivation_quintile`` stays empty.
- practice: the organisation of most of the patient's wellness and ambulatory encounters (names from
  organizations.csv when present); registration date: the first encounter.
- conditions.csv: SNOMED CT ``CODE``/``DESCRIPTION``, ``START`` -> onset, ``STOP`` -> resolved.
- medications.csv: RxNorm ``CODE``/``DESCRIPTION``; ``START``/``STOP`` (empty STOP = ongoing). Synthea has no
  acute/repeat flag: a medicine dispensed more than once, ongoing, or lasting more than 28 days (one NHS repeat
  cycle) is a repeat.
- encounters.csv -> events: ``emergency`` and ``urgentcare`` -> ae_attendance (NHS England counts urgent
  treatment centres as type 3/4 A&E); emergency-admission SNOMED codes (183452005, 183460006, 183478001) and
  ``inpatient`` stays starting within a day of an A&E attendance -> emergency_admission (see
  ``importing.hospital_events``). Other encounters give no event.
- observations.csv: rows with a LOINC code of ``importing.LAB_LOINC`` (eGFR, creatinine, potassium, sodium,
  HbA1c, systolic BP, ALT, haemoglobin, INR, lithium, TSH, BMI), converted to canonical units.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from data_access.sources.importing import (
    EMERGENCY_ADMISSION_SNOMED,
    LAB_LOINC,
    REPEAT_AFTER_DAYS_DEFAULT,
    CsvTable,
    RejectLog,
    SourceFormatError,
    StagedSource,
    assign_practices,
    conform_staged,
    date_expr,
    empty_staged,
    find_file,
    hospital_events,
    mark_duplicates,
    open_csv,
    parse_dates,
)

REQUIRED_COLUMNS: dict[str, tuple[str, ...]] = {
    "patients.csv": ("Id", "BIRTHDATE", "GENDER"),
    "conditions.csv": ("START", "PATIENT", "CODE", "DESCRIPTION"),
    "medications.csv": ("START", "PATIENT", "CODE", "DESCRIPTION"),
    "encounters.csv": ("START", "PATIENT", "ENCOUNTERCLASS"),
    "observations.csv": ("DATE", "PATIENT", "CODE", "VALUE"),
    "organizations.csv": ("Id", "NAME"),
}
OPTIONAL_FILES = (
    "conditions.csv",
    "medications.csv",
    "encounters.csv",
    "observations.csv",
    "organizations.csv",
)

RACE_TO_ONS = {
    "white": "White",
    "black": "Black",
    "asian": "Asian",
    "native": "Other",
    "hawaiian": "Other",
    "other": "Other",
}
SNOMED_SYSTEMS = {"", "http://snomed.info/sct", "snomed-ct", "snomed ct", "snomed", "sct"}
PRIMARY_CARE_CLASSES = ("wellness", "ambulatory")
# A duplicate row is one that repeats every column the importer reads and the encounter it belongs to: Synthea
# writes the same medicine twice in one encounter when it is ordered twice, which is one prescription.
ENCOUNTER_ID = ("ENCOUNTER",)
AE_CLASSES = ("emergency", "urgentcare")
INPATIENT_CLASSES = ("inpatient",)


def read_synthea(path: Path, rejects: RejectLog, *, progress: bool = False) -> StagedSource:
    """Read a Synthea CSV folder (or its parent, when the CSVs are in ``csv/`` as Synthea writes them)."""
    folder = _csv_folder(Path(path))
    tables = _open_tables(folder)
    notes = [
        f"{name} absent" for name in OPTIONAL_FILES if name not in tables and name != "organizations.csv"
    ]
    skipped: dict[str, int] = {}
    steps = _steps(progress)

    patients = _patients(tables["patients.csv"], rejects)
    steps.update("patients")
    visits, hospital = _encounters(tables.get("encounters.csv"), rejects, skipped)
    steps.update("encounters")
    practices = assign_practices(_with_org_names(visits, tables.get("organizations.csv")))
    first_seen = visits.group_by("patient_source_id").agg(pl.col("date").min().alias("registered_on"))
    patients = patients.join(
        practices, left_on="source_id", right_on="patient_source_id", how="left", maintain_order="left"
    ).join(first_seen, left_on="source_id", right_on="patient_source_id", how="left", maintain_order="left")
    conditions = _conditions(tables.get("conditions.csv"), rejects)
    steps.update("conditions")
    prescriptions = _medications(tables.get("medications.csv"), rejects)
    steps.update("medications")
    observations = _observations(tables.get("observations.csv"), rejects, skipped)
    steps.update("observations")
    steps.close()
    return StagedSource(
        kind="synthea",
        patients=conform_staged("patient", patients),
        conditions=conform_staged("condition", conditions),
        prescriptions=conform_staged("prescription", prescriptions),
        observations=conform_staged("observation", observations),
        events=conform_staged("event", hospital_events(hospital)),
        skipped=skipped,
        notes=notes,
    )


class _NoProgress:
    def update(self, _: str) -> None:
        return None

    def close(self) -> None:
        return None


class _FileProgress:
    def __init__(self) -> None:
        from tqdm import tqdm

        self._bar = tqdm(total=5, unit="file", desc="synthea")

    def update(self, what: str) -> None:
        self._bar.set_postfix_str(what)
        self._bar.update(1)

    def close(self) -> None:
        self._bar.close()


def _steps(progress: bool) -> _NoProgress | _FileProgress:
    return _FileProgress() if progress else _NoProgress()


def _csv_folder(path: Path) -> Path:
    if not path.is_dir():
        raise SourceFormatError(
            path, "expected a folder of Synthea CSV files (patients.csv, conditions.csv, ...)"
        )
    if find_file(path, "patients.csv") is None and (path / "csv").is_dir():
        return path / "csv"
    return path


def _open_tables(folder: Path) -> dict[str, CsvTable]:
    tables: dict[str, CsvTable] = {}
    for name, required in REQUIRED_COLUMNS.items():
        found = find_file(folder, name)
        if found is None:
            if name in OPTIONAL_FILES:
                continue
            raise SourceFormatError(
                folder / name, "required file missing: a Synthea export always has patients.csv"
            )
        tables[name] = open_csv(found, required=required)
    return tables


def _patients(table: CsvTable, rejects: RejectLog) -> pl.DataFrame:
    raw = table.collect(["Id", "BIRTHDATE", "GENDER", "DEATHDATE", "RACE"])
    if raw.height == 0:
        raise SourceFormatError(table.path.name, "the file has a header but no patient rows", row=2)
    raw = mark_duplicates(raw, ["_dupkey"], rejects=rejects, what="patient")
    raw = parse_dates(
        raw, "BIRTHDATE", target="birth", field_name="BIRTHDATE", required=True, rejects=rejects
    )
    raw = parse_dates(
        raw, "DEATHDATE", target="died_on", field_name="DEATHDATE", required=False, rejects=rejects
    )
    return raw.select(
        pl.col("Id").str.strip_chars().alias("source_id"),
        pl.col("birth").dt.year().alias("birth_year"),
        pl.col("birth").dt.month().alias("birth_month"),
        pl.col("GENDER").str.strip_chars().str.to_uppercase().alias("sex"),
        pl.col("RACE")
        .str.strip_chars()
        .str.to_lowercase()
        .replace_strict(RACE_TO_ONS, default=None)
        .alias("ethnicity_group"),
        "died_on",
        "_file",
        "_row",
        "_dupkey",
    )


def _encounters(
    table: CsvTable | None, rejects: RejectLog, skipped: dict[str, int]
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Visits for practice assignment and registration, and the hospital encounters that become events."""
    visit_schema = {
        "patient_source_id": pl.String,
        "org_source_id": pl.String,
        "org_name": pl.String,
        "date": pl.Date,
        "primary_care": pl.Boolean,
    }
    hospital_schema = {
        "patient_source_id": pl.String,
        "date": pl.Date,
        "setting": pl.String,
        "emergency": pl.Boolean,
        "_file": pl.String,
        "_row": pl.Int64,
    }
    if table is None:
        return pl.DataFrame(schema=visit_schema), pl.DataFrame(schema=hospital_schema)
    raw = table.collect(["START", "PATIENT", "ORGANIZATION", "ENCOUNTERCLASS", "CODE"], dupkey=False)
    raw = raw.with_columns(
        pl.col("ENCOUNTERCLASS").str.strip_chars().str.to_lowercase().alias("class"),
        pl.col("PATIENT").str.strip_chars().alias("patient_source_id"),
    )
    visits = raw.select(
        "patient_source_id",
        pl.col("ORGANIZATION").str.strip_chars().alias("org_source_id"),
        pl.lit(None, dtype=pl.String).alias("org_name"),
        date_expr("START").alias("date"),
        pl.col("class").is_in(PRIMARY_CARE_CLASSES).alias("primary_care"),
    )
    hospital = raw.filter(pl.col("class").is_in(AE_CLASSES + INPATIENT_CLASSES))
    skipped["encounters that are not A&E or inpatient (used for practice and registration only)"] = (
        raw.height - hospital.height
    )
    hospital = parse_dates(
        hospital, "START", target="date", field_name="START", required=True, rejects=rejects
    )
    hospital = hospital.select(
        "patient_source_id",
        "date",
        pl.when(pl.col("class").is_in(AE_CLASSES))
        .then(pl.lit("ae"))
        .otherwise(pl.lit("inpatient"))
        .alias("setting"),
        pl.col("CODE")
        .str.strip_chars()
        .is_in(list(EMERGENCY_ADMISSION_SNOMED))
        .fill_null(False)
        .alias("emergency"),
        "_file",
        "_row",
    )
    return visits.cast(visit_schema), hospital.cast(hospital_schema)


def _with_org_names(visits: pl.DataFrame, organizations: CsvTable | None) -> pl.DataFrame:
    if organizations is None or visits.height == 0:
        return visits
    names = (
        organizations.collect(["Id", "NAME"], dupkey=False)
        .select(pl.col("Id").str.strip_chars().alias("org_source_id"), pl.col("NAME").alias("_name"))
        .unique(subset="org_source_id", keep="first")
    )
    return (
        visits.join(names, on="org_source_id", how="left", maintain_order="left")
        .with_columns(pl.col("_name").alias("org_name"))
        .drop("_name")
    )


def _conditions(table: CsvTable | None, rejects: RejectLog) -> pl.DataFrame:
    if table is None:
        return empty_staged("condition")
    raw = table.collect(["START", "STOP", "PATIENT", "CODE", "DESCRIPTION", "SYSTEM"], identity=ENCOUNTER_ID)
    system = pl.col("SYSTEM").fill_null("").str.strip_chars().str.to_lowercase()
    foreign = ~system.is_in(list(SNOMED_SYSTEMS))
    rejects.add_rows(
        raw.filter(foreign), field_name="SYSTEM", reason="unsupported_code_system", value="SYSTEM"
    )
    raw = raw.filter(~foreign)
    raw = parse_dates(raw, "START", target="onset", field_name="START", required=True, rejects=rejects)
    raw = parse_dates(raw, "STOP", target="resolved", field_name="STOP", required=False, rejects=rejects)
    return raw.select(
        pl.col("PATIENT").str.strip_chars().alias("patient_source_id"),
        pl.col("CODE").alias("code"),
        pl.col("DESCRIPTION").alias("term"),
        "onset",
        "resolved",
        "_file",
        "_row",
        "_dupkey",
    )


def _medications(table: CsvTable | None, rejects: RejectLog) -> pl.DataFrame:
    if table is None:
        return empty_staged("prescription")
    raw = table.collect(
        ["START", "STOP", "PATIENT", "CODE", "DESCRIPTION", "DISPENSES"], identity=ENCOUNTER_ID
    )
    raw = parse_dates(raw, "START", target="start", field_name="START", required=True, rejects=rejects)
    raw = parse_dates(raw, "STOP", target="stop", field_name="STOP", required=False, rejects=rejects)
    dispenses = pl.col("DISPENSES").cast(pl.Float64, strict=False)
    lasting = pl.col("stop").is_null() | (
        (pl.col("stop") - pl.col("start")).dt.total_days() > REPEAT_AFTER_DAYS_DEFAULT
    )
    return raw.select(
        pl.col("PATIENT").str.strip_chars().alias("patient_source_id"),
        pl.lit("rxnorm").alias("code_system"),
        pl.col("CODE").alias("code"),
        pl.col("DESCRIPTION").alias("name"),
        "start",
        "stop",
        pl.lit(None, dtype=pl.String).alias("dose_text"),
        ((dispenses.fill_null(0) > 1) | lasting).alias("repeat"),
        "_file",
        "_row",
        "_dupkey",
    )


def _observations(table: CsvTable | None, rejects: RejectLog, skipped: dict[str, int]) -> pl.DataFrame:
    if table is None:
        return empty_staged("observation")
    wanted = pl.col("CODE").str.strip_chars().is_in(list(LAB_LOINC))
    raw = table.collect(["DATE", "PATIENT", "CODE", "VALUE", "UNITS"], identity=ENCOUNTER_ID, where=wanted)
    skipped["observations with codes outside the lab list"] = table.data_rows - raw.height
    raw = parse_dates(raw, "DATE", target="date", field_name="DATE", required=True, rejects=rejects)
    return raw.select(
        pl.col("PATIENT").str.strip_chars().alias("patient_source_id"),
        pl.col("CODE").alias("loinc"),
        pl.col("VALUE").alias("value_raw"),
        pl.col("UNITS").alias("unit"),
        "date",
        "_file",
        "_row",
        "_dupkey",
    )
