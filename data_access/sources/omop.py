"""Reader of OMOP Common Data Model v5.4 extracts (OHDSI, https://ohdsi.github.io/CommonDataModel/cdm54.html).

A folder of CSV (comma- or tab-separated) or Parquet files, one per CDM table, named in either case
(``person.csv``, ``PERSON.csv``, ``person.parquet``); column names follow the published v5.4 field names. Only
``person`` is required; observation_period, condition_occurrence, drug_exposure, visit_occurrence, measurement,
death and care_site are read when present. With ``concept`` (and ``concept_relationship``) the reader resolves
OMOP concept ids to SNOMED CT, RxNorm, dm+d and LOINC codes; without them it falls back to the ``*_source_value``
columns, which UK and Synthea-derived extracts fill with the source code.

Mapping:

- person: ``person_id`` (pseudonymised), ``year_of_birth`` and ``month_of_birth`` (or the month of
  ``birth_datetime``; the day is never read; a person with a year but no month gets month 7, mid-year, which bounds
  the age error at six months, and the summary counts them), ``gender_concept_id`` 8507 -> M and 8532 -> F (else
  ``gender_source_value``), ``race_concept_id`` 8527 White, 8516 Black or African American, 8515 Asian, 8657 and
  8557 -> Other (else ``race_source_value`` text). Practice: ``person.care_site_id`` (the CDM defines it as the
  person's primary care site), else the care site of most outpatient/office visits; names from care_site.
- observation_period: the earliest start is the registration date; an end before the extract's last end date, for a
  person who did not die, is a deregistration (the extract's last end date is its data cut).
- condition_occurrence: the SNOMED CT code of ``condition_concept_id`` (standard conditions are SNOMED), else of
  ``condition_source_concept_id`` or its "Maps to" target, else ``condition_source_value`` when it is a valid SNOMED
  CT id; a condition with no SNOMED code is rejected (``no_snomed_code``) because the canonical condition table is
  SNOMED-coded.
- drug_exposure: dm+d (``drug_source_concept_id`` in vocabulary "dm+d") or RxNorm (``drug_concept_id``), else the
  concept name as text (RxNorm Extension), else ``drug_source_value``. Stop: ``verbatim_end_date`` (the stop the
  source recorded), else ``drug_exposure_end_date``, else start + ``days_supply`` - 1. ``sig`` is the dose text;
  refills > 0 or a course over 28 days is a repeat.
- visit_occurrence: 9203 Emergency Room Visit -> ae_attendance; 262 Emergency Room and Inpatient Visit ->
  ae_attendance and emergency_admission; 9201 Inpatient Visit -> emergency_admission when admitted from the
  emergency room (``admitted_from_concept_id``, or v5.3 ``admitting_source_concept_id``, = 8870) or within a day of
  an A&E visit (``importing.hospital_events``).
- measurement: LOINC code of ``measurement_concept_id`` / ``measurement_source_concept_id`` / source value, kept
  when in ``importing.LAB_LOINC``; ``value_as_number`` with the UCUM unit of ``unit_concept_id`` or
  ``unit_source_value``.
- death: ``death_date``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl

from data_access.sources.importing import (
    DUPKEY,
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
    hospital_events,
    is_snomed_concept_id,
    mark_duplicates,
    open_csv,
    parse_dates,
)

REQUIRED_COLUMNS: dict[str, tuple[str, ...]] = {
    "person": ("person_id", "gender_concept_id", "year_of_birth"),
    "observation_period": ("person_id", "observation_period_start_date", "observation_period_end_date"),
    "condition_occurrence": ("person_id", "condition_concept_id", "condition_start_date"),
    "drug_exposure": ("person_id", "drug_concept_id", "drug_exposure_start_date"),
    "visit_occurrence": ("person_id", "visit_concept_id", "visit_start_date"),
    "measurement": ("person_id", "measurement_concept_id", "measurement_date"),
    "death": ("person_id", "death_date"),
    "care_site": ("care_site_id",),
    "concept": ("concept_id", "vocabulary_id", "concept_code", "concept_name"),
    "concept_relationship": ("concept_id_1", "concept_id_2", "relationship_id"),
}
CLINICAL_TABLES = (
    "observation_period",
    "condition_occurrence",
    "drug_exposure",
    "visit_occurrence",
    "measurement",
    "death",
)

GENDER_CONCEPTS = {"8507": "M", "8532": "F"}  # OMOP Gender vocabulary: MALE, FEMALE
RACE_CONCEPTS = {  # OMOP Race vocabulary (OMB categories) -> ONS 5 groups
    "8527": "White",
    "8516": "Black",
    "8515": "Asian",
    "8657": "Other",  # American Indian or Alaska Native
    "8557": "Other",  # Native Hawaiian or Other Pacific Islander
}
VISIT_ER = "9203"  # Emergency Room Visit
VISIT_ER_AND_INPATIENT = "262"  # Emergency Room and Inpatient Visit
VISIT_INPATIENT = "9201"  # Inpatient Visit
VISIT_PRIMARY_CARE = ("9202", "581477")  # Outpatient Visit, Office Visit
PLACE_EMERGENCY_ROOM = "8870"  # Place of Service "Emergency Room - Hospital"
MID_YEAR_MONTH = 7


# ----------------------------------------------------------------------------------------------------------------
# Files


@dataclass(frozen=True)
class ParquetTable:
    """A Parquet CDM table read like ``importing.CsvTable`` (every column as text, provenance added)."""

    path: Path
    header: tuple[str, ...]
    data_rows: int

    def column(self, name: str) -> str | None:
        wanted = name.lower()
        return next((h for h in self.header if h.lower() == wanted), None)

    def has(self, name: str) -> bool:
        return self.column(name) is not None

    def collect(
        self,
        wanted: list[str],
        *,
        identity: tuple[str, ...] = (),
        dupkey: bool = True,
        where: pl.Expr | None = None,
    ) -> pl.DataFrame:
        frame = pl.scan_parquet(self.path).with_row_index("_idx")
        exprs = [pl.col(self.column(n)).cast(pl.String).alias(n) for n in wanted if self.has(n)]  # type: ignore[arg-type]
        exprs += [pl.lit(None, dtype=pl.String).alias(n) for n in wanted if not self.has(n)]
        exprs += [pl.lit(self.path.name).alias("_file"), (pl.col("_idx").cast(pl.Int64) + 1).alias("_row")]
        if dupkey:
            hashed = [self.column(n) for n in [*wanted, *identity] if self.has(n)]
            exprs.append(pl.struct([pl.col(h).cast(pl.String) for h in hashed]).hash(seed=7).alias(DUPKEY))
        selected = frame.select(exprs)
        if where is not None:
            selected = selected.filter(where)
        try:
            return selected.collect(engine="streaming")
        except pl.exceptions.PolarsError as exc:
            raise SourceFormatError(self.path.name, f"cannot be read as Parquet ({exc})") from exc


Table = CsvTable | ParquetTable


def _open_parquet(path: Path, required: tuple[str, ...]) -> ParquetTable:
    try:
        schema = pl.read_parquet_schema(path)
        rows = pl.scan_parquet(path).select(pl.len()).collect().item()
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise SourceFormatError(path.name, f"not a readable Parquet file ({exc})") from exc
    header = tuple(schema)
    lowered = {h.lower() for h in header}
    missing = [c for c in required if c.lower() not in lowered]
    if missing:
        raise SourceFormatError(
            path.name,
            f"required column{'s' if len(missing) > 1 else ''} {', '.join(missing)} missing "
            f"(the file has: {', '.join(header)})",
            field=missing[0],
        )
    return ParquetTable(path=path, header=header, data_rows=int(rows))


def _find_table_file(folder: Path, table: str) -> Path | None:
    candidates = {f"{table}.csv", f"{table}.tsv", f"{table}.parquet"}
    found = [p for p in sorted(folder.iterdir()) if p.is_file() and p.name.lower() in candidates]
    if len(found) > 1:
        raise SourceFormatError(folder, f"table {table} is given twice ({', '.join(p.name for p in found)})")
    return found[0] if found else None


def _open_tables(folder: Path) -> dict[str, Table]:
    tables: dict[str, Table] = {}
    for name, required in REQUIRED_COLUMNS.items():
        path = _find_table_file(folder, name)
        if path is None:
            if name == "person":
                raise SourceFormatError(
                    folder / "person.csv", "required table missing: an OMOP extract needs person"
                )
            continue
        if path.suffix.lower() == ".parquet":
            tables[name] = _open_parquet(path, required)
        else:
            tables[name] = open_csv(path, required=required)
    return tables


def _concept_id(column: str) -> pl.Expr:
    """Concept ids as text without the ".0" that a float-typed export adds; 0 ("no matching concept") -> null."""
    text = pl.col(column).cast(pl.String).str.strip_chars().str.replace(r"\.0+$", "")
    return pl.when(text.is_in(["", "0"])).then(pl.lit(None, dtype=pl.String)).otherwise(text).alias(column)


# ----------------------------------------------------------------------------------------------------------------
# Concepts


@dataclass(frozen=True)
class Concepts:
    """The slice of the OMOP vocabulary tables that the extract refers to."""

    concepts: pl.DataFrame  # concept_id, vocabulary_id, concept_code, concept_name
    maps_to: pl.DataFrame  # concept_id_1 -> concept_id_2 ("Maps to")

    @property
    def available(self) -> bool:
        return self.concepts.height > 0

    def resolve(self, frame: pl.DataFrame, id_column: str, prefix: str) -> pl.DataFrame:
        """Join vocabulary, code and name of the concept in ``id_column`` as ``<prefix>_vocabulary`` etc."""
        renamed = self.concepts.rename(
            {
                "concept_id": id_column,
                "vocabulary_id": f"{prefix}_vocabulary",
                "concept_code": f"{prefix}_code",
                "concept_name": f"{prefix}_name",
            }
        )
        return frame.join(renamed, on=id_column, how="left", maintain_order="left")

    def mapped(self, frame: pl.DataFrame, id_column: str, target: str) -> pl.DataFrame:
        """Add ``target``: the "Maps to" target of the concept in ``id_column`` (first one when several)."""
        first = self.maps_to.unique(subset="concept_id_1", keep="first").rename(
            {"concept_id_1": id_column, "concept_id_2": target}
        )
        return frame.join(first, on=id_column, how="left", maintain_order="left")


def _load_concepts(tables: dict[str, Table], referenced: set[str]) -> Concepts:
    empty = Concepts(
        concepts=pl.DataFrame(
            schema={
                "concept_id": pl.String,
                "vocabulary_id": pl.String,
                "concept_code": pl.String,
                "concept_name": pl.String,
            }
        ),
        maps_to=pl.DataFrame(schema={"concept_id_1": pl.String, "concept_id_2": pl.String}),
    )
    concept = tables.get("concept")
    if concept is None:
        return empty
    ids = sorted(referenced)
    maps_to = empty.maps_to
    relationship = tables.get("concept_relationship")
    if relationship is not None:
        maps_to = (
            relationship.collect(["concept_id_1", "concept_id_2", "relationship_id"], dupkey=False)
            .with_columns(_concept_id("concept_id_1"), _concept_id("concept_id_2"))
            .filter(
                (pl.col("relationship_id").str.strip_chars() == "Maps to") & pl.col("concept_id_1").is_in(ids)
            )
            .select("concept_id_1", "concept_id_2")
        )
    wanted = set(ids) | set(maps_to["concept_id_2"].drop_nulls().to_list())
    concepts = (
        concept.collect(["concept_id", "vocabulary_id", "concept_code", "concept_name"], dupkey=False)
        .with_columns(
            _concept_id("concept_id"),
            pl.col("vocabulary_id").str.strip_chars(),
            pl.col("concept_code").str.strip_chars(),
        )
        .filter(pl.col("concept_id").is_in(sorted(wanted)))
        .unique(subset="concept_id", keep="first")
        .select("concept_id", "vocabulary_id", "concept_code", "concept_name")
    )
    return Concepts(concepts=concepts, maps_to=maps_to)


# ----------------------------------------------------------------------------------------------------------------
# Reader


def read_omop(path: Path, rejects: RejectLog, *, progress: bool = False) -> StagedSource:
    folder = Path(path)
    if not folder.is_dir():
        raise SourceFormatError(
            folder, "expected a folder of OMOP CDM tables (person.csv or person.parquet, ...)"
        )
    tables = _open_tables(folder)
    notes = [f"{name} absent" for name in CLINICAL_TABLES if name not in tables]
    if "concept" not in tables:
        notes.append("no concept table: codes taken from the *_source_value columns")
    skipped: dict[str, int] = {}
    bar = _bar(progress)

    raw = {name: _collect_raw(name, tables.get(name)) for name in CLINICAL_TABLES + ("person",)}
    bar.update("read")
    concepts = _load_concepts(tables, _referenced_concepts(raw))
    bar.update("concepts")

    deaths = _deaths(raw["death"], rejects)
    visits, hospital = _visits(raw["visit_occurrence"], rejects, skipped)
    patients, imputed = _persons(raw["person"], tables.get("care_site"), visits, deaths, rejects)
    if imputed:
        notes.append(f"{imputed} person(s) without month of birth: month set to {MID_YEAR_MONTH} (mid-year)")
    patients = _with_observation_periods(patients, raw["observation_period"], rejects)
    conditions = _conditions(raw["condition_occurrence"], concepts, rejects)
    prescriptions = _drugs(raw["drug_exposure"], concepts, rejects)
    observations = _measurements(raw["measurement"], concepts, rejects, skipped)
    bar.update("mapped")
    bar.close()
    return StagedSource(
        kind="omop",
        patients=conform_staged("patient", patients),
        conditions=conform_staged("condition", conditions),
        prescriptions=conform_staged("prescription", prescriptions),
        observations=conform_staged("observation", observations),
        events=conform_staged("event", hospital_events(hospital)),
        skipped=skipped,
        notes=notes,
    )


class _Bar:
    def __init__(self, progress: bool) -> None:
        self._bar = None
        if progress:
            from tqdm import tqdm

            self._bar = tqdm(total=3, unit="step", desc="omop")

    def update(self, what: str) -> None:
        if self._bar is not None:
            self._bar.set_postfix_str(what)
            self._bar.update(1)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def _bar(progress: bool) -> _Bar:
    return _Bar(progress)


_COLUMNS: dict[str, list[str]] = {
    "person": [
        "person_id",
        "gender_concept_id",
        "year_of_birth",
        "month_of_birth",
        "birth_datetime",
        "race_concept_id",
        "race_source_value",
        "gender_source_value",
        "care_site_id",
    ],
    "observation_period": ["person_id", "observation_period_start_date", "observation_period_end_date"],
    "condition_occurrence": [
        "person_id",
        "condition_concept_id",
        "condition_start_date",
        "condition_end_date",
        "condition_source_value",
        "condition_source_concept_id",
    ],
    "drug_exposure": [
        "person_id",
        "drug_concept_id",
        "drug_exposure_start_date",
        "drug_exposure_end_date",
        "verbatim_end_date",
        "days_supply",
        "refills",
        "sig",
        "drug_source_value",
        "drug_source_concept_id",
    ],
    "visit_occurrence": [
        "person_id",
        "visit_concept_id",
        "visit_start_date",
        "care_site_id",
        "admitted_from_concept_id",
        "admitting_source_concept_id",
    ],
    "measurement": [
        "person_id",
        "measurement_concept_id",
        "measurement_date",
        "value_as_number",
        "unit_concept_id",
        "unit_source_value",
        "measurement_source_value",
        "measurement_source_concept_id",
    ],
    "death": ["person_id", "death_date"],
}


# The table's own key joins the columns read in the duplicate check: two rows are the same record only when
# their ids agree too (two identical prescriptions under different drug_exposure_ids are two prescriptions).
_IDENTITY = {
    "observation_period": ("observation_period_id",),
    "condition_occurrence": ("condition_occurrence_id",),
    "drug_exposure": ("drug_exposure_id",),
    "visit_occurrence": ("visit_occurrence_id",),
    "measurement": ("measurement_id",),
}


def _collect_raw(name: str, table: Table | None) -> pl.DataFrame:
    columns = _COLUMNS[name]
    if table is None:
        return pl.DataFrame(
            schema={
                **{c: pl.String for c in columns},
                "_file": pl.String,
                "_row": pl.Int64,
                DUPKEY: pl.UInt64,
            }
        )
    frame = table.collect(columns, identity=_IDENTITY.get(name, ()))
    return frame.with_columns(pl.col("person_id").str.strip_chars().str.replace(r"\.0+$", ""))


def _referenced_concepts(raw: dict[str, pl.DataFrame]) -> set[str]:
    columns = {
        "person": ["gender_concept_id", "race_concept_id"],
        "condition_occurrence": ["condition_concept_id", "condition_source_concept_id"],
        "drug_exposure": ["drug_concept_id", "drug_source_concept_id"],
        "measurement": ["measurement_concept_id", "measurement_source_concept_id", "unit_concept_id"],
    }
    ids: set[str] = set()
    for table, names in columns.items():
        frame = raw[table]
        for name in names:
            ids.update(frame.select(_concept_id(name)).to_series().drop_nulls().unique().to_list())
    return ids


def _deaths(death: pl.DataFrame, rejects: RejectLog) -> pl.DataFrame:
    parsed = parse_dates(
        death, "death_date", target="died_on", field_name="death_date", required=True, rejects=rejects
    )
    # One death per person; a person with two dates keeps the earliest (the CDM allows one death row per person).
    return parsed.group_by("person_id").agg(pl.col("died_on").min())


def _visits(
    visits: pl.DataFrame, rejects: RejectLog, skipped: dict[str, int]
) -> tuple[pl.DataFrame, pl.DataFrame]:
    concept = _concept_id("visit_concept_id")
    admitted_from = pl.coalesce(
        _concept_id("admitted_from_concept_id"), _concept_id("admitting_source_concept_id")
    )
    visits = visits.with_columns(concept.alias("_concept"), admitted_from.alias("_from"))
    practice_visits = visits.select(
        pl.col("person_id").alias("patient_source_id"),
        _concept_id("care_site_id").alias("org_source_id"),
        pl.lit(None, dtype=pl.String).alias("org_name"),
        date_expr("visit_start_date").alias("date"),
        pl.col("_concept").is_in(VISIT_PRIMARY_CARE).alias("primary_care"),
    )
    hospital = visits.filter(pl.col("_concept").is_in([VISIT_ER, VISIT_ER_AND_INPATIENT, VISIT_INPATIENT]))
    skipped["visits that are not A&E or inpatient (used for practice only)"] = visits.height - hospital.height
    hospital = parse_dates(
        hospital,
        "visit_start_date",
        target="date",
        field_name="visit_start_date",
        required=True,
        rejects=rejects,
    )
    base = hospital.select(
        pl.col("person_id").alias("patient_source_id"), "date", "_concept", "_from", "_file", "_row"
    )
    ae = base.filter(pl.col("_concept").is_in([VISIT_ER, VISIT_ER_AND_INPATIENT])).with_columns(
        pl.lit("ae").alias("setting"), pl.lit(False).alias("emergency")
    )
    inpatient = base.filter(pl.col("_concept").is_in([VISIT_INPATIENT, VISIT_ER_AND_INPATIENT])).with_columns(
        pl.lit("inpatient").alias("setting"),
        ((pl.col("_concept") == VISIT_ER_AND_INPATIENT) | (pl.col("_from") == PLACE_EMERGENCY_ROOM))
        .fill_null(False)
        .alias("emergency"),
    )
    columns = ["patient_source_id", "date", "setting", "emergency", "_file", "_row"]
    return practice_visits, pl.concat([ae.select(columns), inpatient.select(columns)])


def _persons(
    persons: pl.DataFrame,
    care_site: Table | None,
    visits: pl.DataFrame,
    deaths: pl.DataFrame,
    rejects: RejectLog,
) -> tuple[pl.DataFrame, int]:
    if persons.height == 0:
        raise SourceFormatError("person", "the table has no rows")
    persons = mark_duplicates(persons, [DUPKEY], rejects=rejects, what="person")
    year = pl.col("year_of_birth").str.strip_chars().str.replace(r"\.0+$", "").cast(pl.Int32, strict=False)
    month = pl.coalesce(
        pl.col("month_of_birth").str.strip_chars().str.replace(r"\.0+$", "").cast(pl.Int32, strict=False),
        date_expr("birth_datetime").dt.month().cast(pl.Int32),
    )
    gender_text = pl.col("gender_source_value").str.strip_chars().str.to_uppercase().str.slice(0, 1)
    sex = pl.coalesce(
        _concept_id("gender_concept_id").replace_strict(
            GENDER_CONCEPTS, default=None, return_dtype=pl.String
        ),
        pl.when(gender_text.is_in(["F", "M"])).then(gender_text),
    )
    persons = persons.with_columns(
        year.alias("birth_year"),
        month.alias("_month"),
        sex.alias("sex"),
        _ethnicity().alias("ethnicity_group"),
    )
    imputed = int(persons.filter(pl.col("birth_year").is_not_null() & pl.col("_month").is_null()).height)
    persons = persons.with_columns(pl.col("_month").fill_null(MID_YEAR_MONTH).alias("birth_month"))
    practices = assign_practices(_with_care_site_names(visits, care_site))
    own_site = _concept_id("care_site_id")
    names = _care_site_names(care_site)
    persons = (
        persons.with_columns(own_site.alias("_own_site"))
        .join(practices, left_on="person_id", right_on="patient_source_id", how="left", maintain_order="left")
        .join(names, left_on="_own_site", right_on="org_source_id", how="left", maintain_order="left")
        .with_columns(
            pl.coalesce("_own_site", "practice_source_id").alias("practice_source_id"),
            pl.when(pl.col("_own_site").is_not_null())
            .then(pl.col("_site_name"))
            .otherwise(pl.col("practice_name"))
            .alias("practice_name"),
        )
        .join(deaths, on="person_id", how="left", maintain_order="left")
    )
    return persons.rename({"person_id": "source_id"}), imputed


def _ethnicity() -> pl.Expr:
    text = pl.col("race_source_value").str.strip_chars().str.to_lowercase()
    from_text = (
        pl.when(text.str.contains("white"))
        .then(pl.lit("White"))
        .when(text.str.contains("mixed"))
        .then(pl.lit("Mixed"))
        .when(text.str.contains("asian"))
        .then(pl.lit("Asian"))
        .when(text.str.contains("black"))
        .then(pl.lit("Black"))
        .when(text.str.contains("other"))
        .then(pl.lit("Other"))
    )
    from_concept = _concept_id("race_concept_id").replace_strict(
        RACE_CONCEPTS, default=None, return_dtype=pl.String
    )
    return pl.coalesce(from_concept, from_text)


def _care_site_names(care_site: Table | None) -> pl.DataFrame:
    schema = {"org_source_id": pl.String, "_site_name": pl.String}
    if care_site is None:
        return pl.DataFrame(schema=schema)
    sites = care_site.collect(["care_site_id", "care_site_name"], dupkey=False)
    return sites.select(
        _concept_id("care_site_id").alias("org_source_id"), pl.col("care_site_name").alias("_site_name")
    ).unique(subset="org_source_id", keep="first")


def _with_care_site_names(visits: pl.DataFrame, care_site: Table | None) -> pl.DataFrame:
    names = _care_site_names(care_site)
    return (
        visits.join(names, on="org_source_id", how="left", maintain_order="left")
        .with_columns(pl.col("_site_name").alias("org_name"))
        .drop("_site_name")
    )


def _with_observation_periods(
    patients: pl.DataFrame, periods: pl.DataFrame, rejects: RejectLog
) -> pl.DataFrame:
    if periods.height == 0:
        return patients.with_columns(
            pl.lit(None, dtype=pl.Date).alias("registered_on"),
            pl.lit(None, dtype=pl.Date).alias("deregistered_on"),
        )
    periods = parse_dates(
        periods,
        "observation_period_start_date",
        target="start",
        field_name="observation_period_start_date",
        required=True,
        rejects=rejects,
    )
    periods = parse_dates(
        periods,
        "observation_period_end_date",
        target="end",
        field_name="observation_period_end_date",
        required=False,
        rejects=rejects,
    )
    data_cut = periods["end"].max()
    spans = periods.group_by("person_id").agg(
        pl.col("start").min().alias("registered_on"), pl.col("end").max().alias("_last_end")
    )
    return patients.join(
        spans, left_on="source_id", right_on="person_id", how="left", maintain_order="left"
    ).with_columns(
        pl.when(pl.col("died_on").is_null() & (pl.col("_last_end") < pl.lit(data_cut)))
        .then(pl.col("_last_end"))
        .otherwise(pl.lit(None, dtype=pl.Date))
        .alias("deregistered_on")
    )


def _conditions(conditions: pl.DataFrame, concepts: Concepts, rejects: RejectLog) -> pl.DataFrame:
    if conditions.height == 0:
        return empty_staged("condition")
    frame = conditions.with_columns(
        _concept_id("condition_concept_id").alias("_std"),
        _concept_id("condition_source_concept_id").alias("_src"),
    )
    frame = concepts.resolve(frame, "_std", "std")
    frame = concepts.resolve(frame, "_src", "src")
    frame = concepts.mapped(frame, "_src", "_src_mapped")
    frame = concepts.resolve(frame, "_src_mapped", "map")
    source_value = pl.col("condition_source_value").str.strip_chars()
    source_code = pl.when(source_value.map_batches(_snomed_mask, return_dtype=pl.Boolean)).then(source_value)
    code = pl.coalesce(
        pl.when(pl.col("std_vocabulary") == "SNOMED").then(pl.col("std_code")),
        pl.when(pl.col("src_vocabulary") == "SNOMED").then(pl.col("src_code")),
        pl.when(pl.col("map_vocabulary") == "SNOMED").then(pl.col("map_code")),
        source_code,
    )
    term = pl.coalesce(
        pl.when(pl.col("std_vocabulary") == "SNOMED").then(pl.col("std_name")),
        pl.when(pl.col("src_vocabulary") == "SNOMED").then(pl.col("src_name")),
        pl.when(pl.col("map_vocabulary") == "SNOMED").then(pl.col("map_name")),
        source_value,
    )
    frame = frame.with_columns(code.alias("code"), term.alias("term"))
    no_code = pl.col("code").is_null()
    rejects.add_rows(
        frame.filter(no_code),
        field_name="condition_concept_id",
        reason="no_snomed_code",
        value=pl.coalesce("condition_source_value", "condition_concept_id"),
    )
    frame = frame.filter(~no_code)
    frame = parse_dates(
        frame,
        "condition_start_date",
        target="onset",
        field_name="condition_start_date",
        required=True,
        rejects=rejects,
    )
    frame = parse_dates(
        frame,
        "condition_end_date",
        target="resolved",
        field_name="condition_end_date",
        required=False,
        rejects=rejects,
    )
    return frame.select(
        pl.col("person_id").alias("patient_source_id"),
        "code",
        "term",
        "onset",
        "resolved",
        "_file",
        "_row",
        DUPKEY,
    )


def _snomed_mask(values: pl.Series) -> pl.Series:
    distinct = {v for v in values.drop_nulls().unique().to_list() if is_snomed_concept_id(v)}
    return values.is_in(sorted(distinct)) if distinct else pl.Series([False] * len(values), dtype=pl.Boolean)


def _drugs(drugs: pl.DataFrame, concepts: Concepts, rejects: RejectLog) -> pl.DataFrame:
    if drugs.height == 0:
        return empty_staged("prescription")
    frame = drugs.with_columns(
        _concept_id("drug_concept_id").alias("_std"), _concept_id("drug_source_concept_id").alias("_src")
    )
    frame = concepts.resolve(frame, "_std", "std")
    frame = concepts.resolve(frame, "_src", "src")
    source_value = pl.col("drug_source_value").str.strip_chars()
    is_dmd_text = source_value.map_batches(_snomed_mask, return_dtype=pl.Boolean) & (
        source_value.str.len_chars() >= 8
    )
    is_rxnorm_text = source_value.str.contains(r"^\d{1,8}$")
    system = (
        pl.when(pl.col("src_vocabulary") == "dm+d")
        .then(pl.lit("dmd"))
        .when(pl.col("std_vocabulary") == "RxNorm")
        .then(pl.lit("rxnorm"))
        .when(pl.col("std_name").is_not_null())
        .then(pl.lit("text"))
        .when(is_dmd_text.fill_null(False))
        .then(pl.lit("dmd"))
        .when(is_rxnorm_text.fill_null(False))
        .then(pl.lit("rxnorm"))
        .otherwise(pl.lit("text"))
    )
    frame = frame.with_columns(system.alias("code_system"))
    from_concept = pl.col("src_vocabulary").is_not_null() | pl.col("std_vocabulary").is_not_null()
    code = (
        pl.when(pl.col("code_system") == "text")
        .then(pl.lit(None, dtype=pl.String))
        .when(pl.col("src_vocabulary") == "dm+d")
        .then(pl.col("src_code"))
        .when(pl.col("std_vocabulary") == "RxNorm")
        .then(pl.col("std_code"))
        .otherwise(source_value)
    )
    name = pl.coalesce(
        pl.when(pl.col("src_vocabulary") == "dm+d").then(pl.col("src_name")),
        pl.when(from_concept).then(pl.col("std_name")),
        source_value,
    )
    frame = frame.with_columns(code.alias("code"), name.alias("name"))
    no_drug = pl.col("name").is_null() & pl.col("code").is_null()
    rejects.add_rows(
        frame.filter(no_drug), field_name="drug_concept_id", reason="no_drug_code", value="drug_concept_id"
    )
    frame = frame.filter(~no_drug)
    frame = parse_dates(
        frame,
        "drug_exposure_start_date",
        target="start",
        field_name="drug_exposure_start_date",
        required=True,
        rejects=rejects,
    )
    frame = parse_dates(
        frame,
        "verbatim_end_date",
        target="_verbatim",
        field_name="verbatim_end_date",
        required=False,
        rejects=rejects,
    )
    frame = parse_dates(
        frame,
        "drug_exposure_end_date",
        target="_end",
        field_name="drug_exposure_end_date",
        required=False,
        rejects=rejects,
    )
    days_supply = pl.col("days_supply").cast(pl.Float64, strict=False)
    by_supply = pl.when(days_supply > 0).then(
        pl.col("start") + pl.duration(days=days_supply.cast(pl.Int64) - 1)
    )
    stop = pl.coalesce("_verbatim", "_end", by_supply)
    refills = pl.col("refills").cast(pl.Float64, strict=False).fill_null(0)
    frame = frame.with_columns(stop.alias("stop"))
    lasting = pl.col("stop").is_null() | (
        (pl.col("stop") - pl.col("start")).dt.total_days() > REPEAT_AFTER_DAYS_DEFAULT
    )
    return frame.select(
        pl.col("person_id").alias("patient_source_id"),
        "code_system",
        "code",
        pl.col("name").fill_null(pl.col("code")),
        "start",
        "stop",
        pl.col("sig").alias("dose_text"),
        ((refills > 0) | lasting).alias("repeat"),
        "_file",
        "_row",
        DUPKEY,
    )


def _measurements(
    measurements: pl.DataFrame, concepts: Concepts, rejects: RejectLog, skipped: dict[str, int]
) -> pl.DataFrame:
    if measurements.height == 0:
        return empty_staged("observation")
    frame = measurements.with_columns(
        _concept_id("measurement_concept_id").alias("_std"),
        _concept_id("measurement_source_concept_id").alias("_src"),
        _concept_id("unit_concept_id").alias("_unit"),
    )
    frame = concepts.resolve(frame, "_std", "std")
    frame = concepts.resolve(frame, "_src", "src")
    frame = concepts.resolve(frame, "_unit", "unit")
    loinc = pl.coalesce(
        pl.when(pl.col("std_vocabulary") == "LOINC").then(pl.col("std_code")),
        pl.when(pl.col("src_vocabulary") == "LOINC").then(pl.col("src_code")),
        pl.col("measurement_source_value").str.strip_chars(),
    )
    frame = frame.with_columns(loinc.alias("loinc"))
    relevant = pl.col("loinc").is_in(list(LAB_LOINC)).fill_null(False)
    skipped["measurements with codes outside the lab list"] = frame.filter(~relevant).height
    frame = frame.filter(relevant)
    frame = parse_dates(
        frame,
        "measurement_date",
        target="date",
        field_name="measurement_date",
        required=True,
        rejects=rejects,
    )
    unit = pl.coalesce(
        pl.when(pl.col("unit_vocabulary") == "UCUM").then(pl.col("unit_code")),
        pl.col("unit_source_value").str.strip_chars(),
    )
    return frame.select(
        pl.col("person_id").alias("patient_source_id"),
        "loinc",
        pl.col("value_as_number").alias("value_raw"),
        unit.alias("unit"),
        "date",
        "_file",
        "_row",
        DUPKEY,
    )
