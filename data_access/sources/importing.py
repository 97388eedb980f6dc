"""Shared machinery of the source importers: one entry point, one transaction, one report.

``run_import(kind, path, engine)`` reads a Synthea CSV export, an OMOP CDM v5.4 extract or a folder of FHIR R4
resources, maps it onto the canonical tables and loads it with ``data_access.loading.load_frames`` (one
transaction that replaces patients already present, so a failed import leaves the database as it was and a
re-import updates instead of duplicating).

Each reader (``synthea.py``, ``omop.py``, ``fhir.py``) only knows its format: it parses files into *staged* frames
(``StagedSource``) that still carry the source ids and, per row, the file and row they came from. Everything that
must be identical whatever the source happens here, once:

- pseudonymisation: source ids become keyed hashes (HMAC-SHA256 with the site secret ``DYNAIRX_PSEUDONYM_KEY``),
  so the same patient gets the same id on every re-import, and no id can be reversed without the key; direct
  identifiers (names, addresses, SSN/NHS number, exact birth date) are never read past the reader, which keeps
  only the year and month of birth;
- code checks and vocabulary mapping (SNOMED CT conditions to condition keys, RxNorm/dm+d/text medicines to drug
  keys, LOINC lab codes to observation types with unit conversion);
- the rejects report: a row problem that the import can survive (an unparseable date, a malformed code, a duplicate
  row, a unit it cannot convert) drops that row and records file, row, field, reason and the offending value;
  a problem that makes the whole input untrustworthy (a missing required column, an empty or truncated file, an
  unsupported FHIR version) raises ``SourceFormatError`` naming the file, row and field, before anything is written.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import hmac
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import polars as pl
from sqlalchemy import Engine

from clinical.codes import is_snomed_concept_id
from data_access import settings
from data_access.loading import load_frames

log = logging.getLogger(__name__)

SourceKind = Literal["synthea", "omop", "fhir"]
SOURCE_KINDS: tuple[str, ...] = ("synthea", "omop", "fhir")

# Prefix of every pseudonymous id, so that ids from different sources can never collide (an OMOP person_id "1"
# and a FHIR Patient "1" are different people) and a reader of the database can tell where a record came from.
SOURCE_PREFIX = {"synthea": "syn", "omop": "omop", "fhir": "fhir"}
PSEUDONYM_HEX_CHARS = 24  # 96 bits: collision-free for any realistic population, short enough to read aloud

DUPKEY = "_dupkey"

# Canonical unit for each observation type (DESIGN.md "Patient JSON": creatinine in µmol/L, HbA1c in mmol/mol...).
CANONICAL_UNITS: dict[str, str] = {
    "egfr": "mL/min/1.73m²",
    "creatinine": "µmol/L",
    "potassium": "mmol/L",
    "sodium": "mmol/L",
    "hba1c": "mmol/mol",
    "systolic_bp": "mmHg",
    "alt": "U/L",
    "haemoglobin": "g/L",
    "inr": "ratio",
    "lithium": "mmol/L",
    "tsh": "mU/L",
    "bmi": "kg/m²",
}

# LOINC codes of the tests the clinical rules use. Codes verified against published LOINC value sets (HL7 CPG
# "eGFR Lab Results" and "Creatinine Lab Results", HL7 PDDI renal value set, LOINC Top 2000 SI list).
LAB_LOINC: dict[str, str] = {
    # eGFR: MDRD (33914-3, 76633-7, 77147-7, 69405-9, 48642-3, 48643-1, 50044-7, 70969-1), CKD-EPI (62238-1),
    # CKD-EPI 2021 (98979-8)
    "33914-3": "egfr",
    "76633-7": "egfr",
    "77147-7": "egfr",
    "69405-9": "egfr",
    "48642-3": "egfr",
    "48643-1": "egfr",
    "50044-7": "egfr",
    "70969-1": "egfr",
    "62238-1": "egfr",
    "98979-8": "egfr",
    # creatinine: mass/volume in serum or plasma (2160-0) and blood (38483-4); moles/volume (14682-9, 77140-2)
    "2160-0": "creatinine",
    "38483-4": "creatinine",
    "14682-9": "creatinine",
    "77140-2": "creatinine",
    "6298-4": "potassium",  # Potassium [Moles/volume] in Blood
    "2823-3": "potassium",  # Potassium [Moles/volume] in Serum or Plasma
    "2947-0": "sodium",  # Sodium [Moles/volume] in Blood
    "2951-2": "sodium",  # Sodium [Moles/volume] in Serum or Plasma
    "4548-4": "hba1c",  # Hemoglobin A1c/Hemoglobin.total in Blood (%)
    "17856-6": "hba1c",  # Hemoglobin A1c/Hemoglobin.total in Blood by HPLC (%)
    "59261-8": "hba1c",  # Hemoglobin A1c/Hemoglobin.total in Blood by IFCC protocol (mmol/mol)
    "8480-6": "systolic_bp",  # Systolic blood pressure
    "1742-6": "alt",  # Alanine aminotransferase [Enzymatic activity/volume] in Serum or Plasma
    "718-7": "haemoglobin",  # Hemoglobin [Mass/volume] in Blood
    "6301-6": "inr",  # INR in Platelet poor plasma by Coagulation assay
    "34714-6": "inr",  # INR in Blood by Coagulation assay
    "14334-7": "lithium",  # Lithium [Moles/volume] in Serum or Plasma
    "3016-3": "tsh",  # Thyrotropin [Units/volume] in Serum or Plasma
    "39156-5": "bmi",  # Body mass index (BMI) [Ratio]
}


# (observation type, normalised source unit) -> (scale, offset) so that canonical = value * scale + offset. A unit
# missing here is a row problem (the value cannot be trusted), never a silent pass-through: creatinine in mg/dL and
# in µmol/L differ 88-fold.
UNIT_CONVERSIONS: dict[tuple[str, str], tuple[float, float]] = {
    ("egfr", "ml/min/{1.73_m2}"): (1.0, 0.0),
    ("egfr", "ml/min/1.73m2"): (1.0, 0.0),
    ("egfr", "ml/min/{1.73m2}"): (1.0, 0.0),
    ("egfr", "ml/min/1.73_m2"): (1.0, 0.0),
    ("egfr", "ml/min"): (1.0, 0.0),
    # creatinine: molar mass 113.12 g/mol, so 1 mg/dL = 88.42 µmol/L
    ("creatinine", "umol/l"): (1.0, 0.0),
    ("creatinine", "mmol/l"): (1000.0, 0.0),
    ("creatinine", "mg/dl"): (88.42, 0.0),
    ("creatinine", "mg/l"): (8.842, 0.0),
    ("potassium", "mmol/l"): (1.0, 0.0),
    ("potassium", "meq/l"): (1.0, 0.0),  # monovalent ion: 1 mEq = 1 mmol
    ("sodium", "mmol/l"): (1.0, 0.0),
    ("sodium", "meq/l"): (1.0, 0.0),
    ("lithium", "mmol/l"): (1.0, 0.0),
    ("lithium", "meq/l"): (1.0, 0.0),
    ("hba1c", "mmol/mol"): (1.0, 0.0),
    # IFCC-NGSP master equation: IFCC (mmol/mol) = 10.929 x (NGSP % - 2.15) (Hoelzel W et al., Clin Chem
    # 2004;50:166-74), the conversion used for UK HbA1c reporting since 2009.
    ("hba1c", "%"): (10.929, -10.929 * 2.15),
    ("systolic_bp", "mm[hg]"): (1.0, 0.0),
    ("systolic_bp", "mmhg"): (1.0, 0.0),
    ("alt", "u/l"): (1.0, 0.0),
    ("alt", "iu/l"): (1.0, 0.0),
    ("alt", "[iu]/l"): (1.0, 0.0),
    ("alt", "ukat/l"): (60.0, 0.0),  # 1 µkat/L = 60 U/L (1 U = 1 µmol/min)
    ("haemoglobin", "g/l"): (1.0, 0.0),
    ("haemoglobin", "g/dl"): (10.0, 0.0),
    ("inr", "{inr}"): (1.0, 0.0),
    ("inr", "{ratio}"): (1.0, 0.0),
    ("inr", "ratio"): (1.0, 0.0),
    ("inr", "1"): (1.0, 0.0),
    ("inr", ""): (1.0, 0.0),  # INR is dimensionless: an empty unit is its correct unit
    ("tsh", "mu/l"): (1.0, 0.0),
    ("tsh", "m[iu]/l"): (1.0, 0.0),
    ("tsh", "miu/l"): (1.0, 0.0),
    ("tsh", "uiu/ml"): (1.0, 0.0),  # µIU/mL = mIU/L
    ("tsh", "u[iu]/ml"): (1.0, 0.0),
    ("bmi", "kg/m2"): (1.0, 0.0),
}

# Events the canonical model knows (schema.Event.type).
EVENT_TYPES = frozenset(
    {
        "emergency_admission",
        "ae_attendance",
        "fall",
        "fracture",
        "gi_bleed",
        "aki",
        "hypoglycaemia",
        "death",
        "medication_review",
    }
)

# SNOMED CT codes of encounters that are emergency admissions by definition (Synthea uses them both for its
# "emergency" and "inpatient" encounter classes).
EMERGENCY_ADMISSION_SNOMED = frozenset(
    {
        "183452005",  # Emergency hospital admission (procedure)
        "183460006",  # Obstetric emergency hospital admission (procedure)
        "183478001",  # Emergency hospital admission for asthma (procedure)
    }
)
# An inpatient stay that starts on the day of an A&E attendance or the day after is an admission through A&E,
# i.e. an emergency admission in the NHS "admission method 21" sense.
ADMITTED_FROM_AE_WITHIN_DAYS = 1

# A course longer than one NHS repeat cycle (28 days) is a repeat prescription when the source has no acute/repeat
# flag of its own (Synthea, OMOP, FHIR without courseOfTherapyType).
REPEAT_AFTER_DAYS_DEFAULT = 28


class SourceFormatError(ValueError):
    """Input the import cannot trust at all; names the file and, where known, the row and field."""

    def __init__(
        self, file: str | Path, message: str, *, row: int | None = None, field: str | None = None
    ) -> None:
        self.file = str(file)
        self.row = row
        self.field = field
        where = self.file
        if row is not None:
            where += f", row {row}"
        if field is not None:
            where += f", field {field}"
        super().__init__(f"{where}: {message}")


# ----------------------------------------------------------------------------------------------------------------
# Rejects report


REJECT_SCHEMA = {
    "file": pl.String,
    "row": pl.Int64,
    "field": pl.String,
    "reason": pl.String,
    "value": pl.String,
}


class RejectLog:
    """Rows dropped for a recoverable problem. Values recorded are the offending field only (a date, a code, a
    unit), never names or other identifying text, because the report is written beside the database."""

    def __init__(self) -> None:
        self._parts: list[pl.DataFrame] = []

    def add_rows(
        self, rows: pl.DataFrame, *, field_name: str, reason: str, value: str | pl.Expr | None = None
    ) -> None:
        """Record every row of ``rows`` (which carries ``_file`` and ``_row``) as rejected."""
        if rows.height == 0:
            return
        if value is None:
            value_expr = pl.lit("")
        elif isinstance(value, str):
            value_expr = pl.col(value).cast(pl.String).fill_null("")
        else:
            value_expr = value.cast(pl.String).fill_null("")
        self._parts.append(
            rows.select(
                pl.col("_file").cast(pl.String).alias("file"),
                pl.col("_row").cast(pl.Int64).alias("row"),
                pl.lit(field_name).alias("field"),
                pl.lit(reason).alias("reason"),
                value_expr.str.slice(0, 200).alias("value"),
            )
        )

    def frame(self) -> pl.DataFrame:
        if not self._parts:
            return pl.DataFrame(schema=REJECT_SCHEMA)
        return pl.concat(self._parts, how="vertical").sort(["file", "row"], nulls_last=True)

    def counts(self) -> dict[str, int]:
        frame = self.frame()
        if frame.height == 0:
            return {}
        grouped = frame.group_by("reason").len().sort("reason")
        return dict(zip(grouped["reason"].to_list(), grouped["len"].to_list(), strict=True))

    @property
    def total(self) -> int:
        return sum(part.height for part in self._parts)

    def write_csv(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.frame().write_csv(path)


# ----------------------------------------------------------------------------------------------------------------
# Pseudonymisation


class Pseudonymiser:
    """Keyed, irreversible, stable ids: HMAC-SHA256(key, "<source>/<kind>/<source id>"), truncated.

    Without the key nobody can recompute the id of a known source id (unlike a plain hash of an NHS number, which a
    dictionary attack reverses in seconds); with the same key a re-import maps each patient to the same id.
    """

    def __init__(self, key: bytes, source: str) -> None:
        if not key:
            raise ValueError("the pseudonymisation key is empty")
        self._base = hmac.new(key, digestmod=hashlib.sha256)
        self.source = source
        self.prefix = SOURCE_PREFIX[source]

    def _digest(self, kind: str, source_id: str) -> str:
        mac = self._base.copy()
        mac.update(f"{self.source}/{kind}/{source_id}".encode())
        return mac.hexdigest()[:PSEUDONYM_HEX_CHARS]

    def patient_id(self, source_id: str) -> str:
        return f"{self.prefix}-{self._digest('patient', source_id)}"

    def practice_id(self, source_id: str) -> str:
        return f"{self.prefix}-org-{self._digest('organisation', source_id)}"

    def mapping(self, source_ids: Iterable[str], kind: Literal["patient", "practice"]) -> pl.DataFrame:
        """A two-column frame ``source_id -> id`` for joining (hashing each distinct id once)."""
        make = self.patient_id if kind == "patient" else self.practice_id
        unique = sorted({s for s in source_ids if s is not None})
        return pl.DataFrame(
            {"source_id": unique, "id": [make(s) for s in unique]},
            schema={"source_id": pl.String, "id": pl.String},
        )


UNASSIGNED_PRACTICE_SOURCE_ID = "__unassigned__"


# ----------------------------------------------------------------------------------------------------------------
# Staged data: what a reader hands over


STAGED_SCHEMAS: dict[str, dict[str, Any]] = {
    "patient": {
        "source_id": pl.String,
        "birth_year": pl.Int32,
        "birth_month": pl.Int32,
        "sex": pl.String,
        "ethnicity_group": pl.String,
        "died_on": pl.Date,
        "registered_on": pl.Date,
        "deregistered_on": pl.Date,
        "practice_source_id": pl.String,
        "practice_name": pl.String,
    },
    "condition": {
        "patient_source_id": pl.String,
        "code": pl.String,
        "term": pl.String,
        "onset": pl.Date,
        "resolved": pl.Date,
    },
    "prescription": {
        "patient_source_id": pl.String,
        "code_system": pl.String,
        "code": pl.String,
        "name": pl.String,
        "start": pl.Date,
        "stop": pl.Date,
        "dose_text": pl.String,
        "repeat": pl.Boolean,
    },
    "observation": {
        "patient_source_id": pl.String,
        "loinc": pl.String,
        "value_raw": pl.String,
        "unit": pl.String,
        "date": pl.Date,
    },
    "event": {"patient_source_id": pl.String, "type": pl.String, "date": pl.Date},
}
_PROVENANCE_SCHEMA = {"_file": pl.String, "_row": pl.Int64, DUPKEY: pl.UInt64}


def empty_staged(table: str) -> pl.DataFrame:
    return pl.DataFrame(schema={**STAGED_SCHEMAS[table], **_PROVENANCE_SCHEMA})


def conform_staged(table: str, frame: pl.DataFrame) -> pl.DataFrame:
    """Select and cast a reader's frame to the staged schema (provenance columns filled when absent)."""
    schema = {**STAGED_SCHEMAS[table], **_PROVENANCE_SCHEMA}
    exprs = []
    for name, dtype in schema.items():
        if name in frame.columns:
            exprs.append(pl.col(name).cast(dtype))
        else:
            exprs.append(pl.lit(None, dtype=dtype).alias(name))
    return frame.select(exprs)


@dataclass
class StagedSource:
    """Everything a reader extracted, still keyed by source ids, with per-row provenance."""

    kind: str
    patients: pl.DataFrame
    conditions: pl.DataFrame
    prescriptions: pl.DataFrame
    observations: pl.DataFrame
    events: pl.DataFrame
    # Rows read but deliberately not imported (not rejects): e.g. observations whose LOINC code is outside the lab
    # list, encounters that are not hospital events. Reported so that nothing disappears silently.
    skipped: dict[str, int] = field(default_factory=dict)
    # Facts about the input worth reporting (e.g. "observations.csv absent").
    notes: list[str] = field(default_factory=list)


# ----------------------------------------------------------------------------------------------------------------
# Parsing helpers used by the readers


def date_expr(column: str) -> pl.Expr:
    """Parse ISO dates and date-times ("2020-02-06", "2020-02-06T08:45:50Z") and OMOP/Athena compact dates
    ("20200206") to a Date; anything else (including impossible dates such as 2020-02-30) becomes null.

    The date part is taken as written: a time-zone offset does not move the calendar day, because the source
    recorded the event on that day in its own local time. Written without regular expressions: it runs over
    every row of files with millions of rows."""
    text = pl.col(column).cast(pl.String).str.strip_chars()
    tail = text.str.slice(10, 1)
    iso = (
        pl.when((text.str.len_bytes() == 10) | tail.is_in(["T", " "]))
        .then(text.str.slice(0, 10).str.to_date("%Y-%m-%d", strict=False))
        .otherwise(pl.lit(None, dtype=pl.Date))
    )
    compact = (
        pl.when(text.str.len_bytes() == 8)
        .then(text.str.to_date("%Y%m%d", strict=False))
        .otherwise(pl.lit(None, dtype=pl.Date))
    )
    return pl.coalesce(iso, compact)


def parse_dates(
    frame: pl.DataFrame,
    column: str,
    *,
    target: str,
    field_name: str,
    required: bool,
    rejects: RejectLog,
) -> pl.DataFrame:
    """Add ``target`` (a Date parsed from the text ``column``) and drop the rows whose date is unusable.

    An empty optional date stays null (e.g. a condition with no resolution); an empty required date is
    "missing_date"; text that is not a date is "bad_date"; a year or year-month alone (valid in FHIR) is
    "imprecise_date", since inventing the day would present a guess as a record. All are reported with the text."""
    parsed = frame.with_columns(date_expr(column).alias(target))
    text = pl.col(column).cast(pl.String).str.strip_chars()
    present = text.is_not_null() & (text != "")
    bad = present & pl.col(target).is_null()
    rejected = parsed.filter(bad)
    if rejected.height:
        imprecise = rejected.select(text.str.contains(r"^\d{4}(-\d{2})?$")).to_series()
        rejects.add_rows(rejected.filter(~imprecise), field_name=field_name, reason="bad_date", value=column)
        rejects.add_rows(
            rejected.filter(imprecise), field_name=field_name, reason="imprecise_date", value=column
        )
    keep = ~bad
    if required:
        missing = ~present
        rejects.add_rows(parsed.filter(missing), field_name=field_name, reason="missing_date")
        keep = keep & present
    return parsed.filter(keep)


def mark_duplicates(
    frame: pl.DataFrame, key: Sequence[str], *, rejects: RejectLog, what: str
) -> pl.DataFrame:
    """Keep the first row of each ``key``; later copies are rejected as ``duplicate_row``."""
    if frame.height == 0:
        return frame
    first = frame.select(
        pl.col(key[0]).is_first_distinct() if len(key) == 1 else pl.struct(list(key)).is_first_distinct()
    ).to_series()
    rejects.add_rows(frame.filter(~first), field_name=what, reason="duplicate_row")
    return frame.filter(first)


# ----------------------------------------------------------------------------------------------------------------
# CSV files (Synthea and OMOP)


@dataclass(frozen=True)
class CsvTable:
    """A checked CSV file: header read, required columns present, every row with the header's field count."""

    path: Path
    header: tuple[str, ...]
    separator: str
    data_rows: int

    def column(self, name: str) -> str | None:
        """The header's spelling of ``name`` (matched case-insensitively: exports differ in case)."""
        wanted = name.lower()
        return next((h for h in self.header if h.lower() == wanted), None)

    def has(self, name: str) -> bool:
        return self.column(name) is not None

    def scan(
        self, wanted: Sequence[str], *, identity: Sequence[str] = (), dupkey: bool = True
    ) -> pl.LazyFrame:
        """Lazily read ``wanted`` columns (as text, renamed to the names asked for) plus provenance.

        ``_row`` is the row number a spreadsheet shows (the header is row 1). ``_dupkey`` is a hash of the
        columns read plus the ``identity`` columns (e.g. the encounter id): two rows with the same hash are the
        same record given twice. Hashing only what is read keeps a 3 GB file from being parsed in full just to
        find duplicates. Blank lines are dropped."""
        header = list(self.header)
        frame = pl.scan_csv(
            self.path,
            separator=self.separator,
            infer_schema=False,
            has_header=True,
            with_column_names=lambda _: header,
            row_index_name="_idx",
            encoding="utf8",
        )
        present = [name for name in wanted if self.has(name)]
        exprs: list[pl.Expr] = [pl.col(self.column(name)).alias(name) for name in present]  # type: ignore[arg-type]
        exprs += [pl.lit(None, dtype=pl.String).alias(name) for name in wanted if not self.has(name)]
        exprs += [pl.lit(self.path.name).alias("_file"), (pl.col("_idx").cast(pl.Int64) + 2).alias("_row")]
        if dupkey:
            hashed = [self.column(n) for n in [*present, *identity] if self.has(n)]
            exprs.append(pl.struct(hashed).hash(seed=7).alias(DUPKEY))
        not_blank = pl.any_horizontal([pl.col(self.column(n)).is_not_null() for n in present])  # type: ignore[arg-type]
        return frame.filter(not_blank).select(exprs)

    def collect(
        self,
        wanted: Sequence[str],
        *,
        identity: Sequence[str] = (),
        dupkey: bool = True,
        where: pl.Expr | None = None,
    ) -> pl.DataFrame:
        frame = self.scan(wanted, identity=identity, dupkey=dupkey)
        if where is not None:
            frame = frame.filter(where)
        try:
            return frame.collect(engine="streaming")
        except pl.exceptions.PolarsError as exc:
            raise SourceFormatError(
                self.path, f"cannot be read as a UTF-8 CSV file ({_first_line(exc)})"
            ) from exc


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def open_csv(path: Path, *, required: Sequence[str], label: str | None = None) -> CsvTable:
    """Check a CSV file before anything is imported from it; raise ``SourceFormatError`` naming file, row and
    field for an empty file, a missing required column, a row with the wrong number of fields or a file that
    ends in the middle of a row (a truncated copy)."""
    path = Path(path)
    shown = label or path.name
    if path.stat().st_size == 0:
        raise SourceFormatError(shown, "the file is empty (no header row)", row=1)
    header_line = _first_physical_line(path, shown)
    separator = "\t" if "\t" in header_line and "," not in header_line else ","
    header = tuple(h.strip() for h in next(csv.reader([header_line], delimiter=separator)))
    if not any(header):
        raise SourceFormatError(shown, "the first row is blank: expected a header row", row=1)
    lowered = {h.lower() for h in header}
    missing = [name for name in required if name.lower() not in lowered]
    if missing:
        raise SourceFormatError(
            shown,
            f"required column{'s' if len(missing) > 1 else ''} {', '.join(missing)} missing "
            f"(the header has: {', '.join(header)})",
            row=1,
            field=missing[0],
        )
    data_rows = _check_field_counts(path, shown, len(header), separator)
    return CsvTable(path=path, header=header, separator=separator, data_rows=data_rows)


def _first_physical_line(path: Path, shown: str) -> str:
    try:
        with path.open("r", encoding="utf-8-sig", newline="") as handle:
            return handle.readline().rstrip("\r\n")
    except UnicodeDecodeError as exc:
        raise SourceFormatError(shown, f"the header is not UTF-8 text ({exc.reason})", row=1) from exc


def _check_field_counts(path: Path, shown: str, columns: int, separator: str) -> int:
    """Find the first row whose field count differs from the header's (polars would silently pad a short row
    with nulls). Separators inside quotes are not counted; a line with an odd number of quotes belongs to a field
    that spans lines and is not checked. Returns the number of non-blank data rows.

    Built for speed (it reads every line of files of gigabytes): lines without a quote, the vast majority, are
    checked by counting separators; only lines with quotes pay for the regular expression."""
    lines = pl.scan_csv(
        path,
        has_header=False,
        separator="\x1f",
        quote_char=None,
        new_columns=["line"],
        infer_schema=False,
        encoding="utf8-lossy",
        row_index_name="_idx",
    )
    line = pl.col("line")
    index = pl.col("_idx")
    blank = line.is_null() | (line == "\r")
    has_quote = line.str.contains('"', literal=True)
    plain_bad = ~blank & ~has_quote & (line.str.count_matches(separator, literal=True) + 1 != columns)
    quoted = ~blank & has_quote
    quoted_lines = line.filter(quoted)
    quoted_fields = (
        quoted_lines.str.replace_all(r'"[^"]*"', "").str.count_matches(separator, literal=True) + 1
    )
    quoted_odd = (quoted_lines.str.count_matches('"', literal=True) % 2) == 1
    quoted_bad = ~quoted_odd & (quoted_fields != columns)
    summary = (
        lines.select(
            (~blank).sum().alias("non_blank"),
            index.filter(plain_bad).first().alias("plain_idx"),
            (line.filter(plain_bad).first().str.count_matches(separator, literal=True) + 1).alias(
                "plain_fields"
            ),
            index.filter(quoted).filter(quoted_bad).first().alias("quoted_idx"),
            quoted_fields.filter(quoted_bad).first().alias("quoted_fields"),
            index.filter(~blank).last().alias("last_idx"),
            (line.filter(~blank).last().str.count_matches('"', literal=True) % 2 == 1).alias("last_odd"),
        )
        .collect()
        .row(0, named=True)
    )
    bad = [
        (summary["plain_idx"], summary["plain_fields"]),
        (summary["quoted_idx"], summary["quoted_fields"]),
    ]
    bad = [(int(i), int(f)) for i, f in bad if i is not None]
    ends_with_newline = _ends_with_newline(path)
    if bad:
        first_idx, fields = min(bad)
        row = first_idx + 1
        truncated = first_idx == int(summary["last_idx"]) and not ends_with_newline
        what = "the file ends in the middle of this row (truncated copy?)" if truncated else "malformed row"
        raise SourceFormatError(shown, f"{what}: it has {fields} fields, the header has {columns}", row=row)
    if summary["last_odd"] and not ends_with_newline:
        raise SourceFormatError(
            shown,
            "the file ends inside a quoted field (truncated copy?)",
            row=int(summary["last_idx"]) + 1,
        )
    return max(int(summary["non_blank"] or 0) - 1, 0)


def _ends_with_newline(path: Path) -> bool:
    with path.open("rb") as handle:
        handle.seek(-1, 2)
        return handle.read(1) in (b"\n", b"\r")


def find_file(folder: Path, name: str) -> Path | None:
    """``name`` inside ``folder``, matched case-insensitively (PERSON.csv, person.csv)."""
    exact = folder / name
    if exact.is_file():
        return exact
    wanted = name.lower()
    return next((p for p in sorted(folder.iterdir()) if p.is_file() and p.name.lower() == wanted), None)


# ----------------------------------------------------------------------------------------------------------------
# Code checks


def is_rxnorm_code(code: str | None) -> bool:
    """RxNorm concept unique identifiers (RXCUI) are positive integers of at most 8 digits."""
    return bool(code) and code.isdigit() and len(code) <= 8 and int(code) > 0


CODE_CHECKS: dict[str, Callable[[str | None], bool]] = {
    "snomed": is_snomed_concept_id,
    "dmd": is_snomed_concept_id,
    "rxnorm": is_rxnorm_code,
}


def attach_per_distinct(
    frame: pl.DataFrame,
    columns: Sequence[str],
    compute: Callable[..., tuple[Any, ...]],
    schema: dict[str, Any],
) -> pl.DataFrame:
    """Add ``schema``'s columns, computed by ``compute(*values)`` once per distinct combination of ``columns``.

    Millions of rows share a few thousand distinct codes: the Python work (check digits, vocabulary look-ups) is
    done per distinct value and joined back on a 64-bit hash of the combination, which is much cheaper to
    de-duplicate and join than several string columns."""
    keyed = frame.with_columns(pl.struct(list(columns)).hash(seed=11).alias("_lookup"))
    distinct = keyed.select("_lookup", *columns).unique(subset="_lookup", keep="first")
    results = [compute(*values) for values in distinct.select(columns).iter_rows()]
    table = pl.DataFrame(results, schema=schema, orient="row") if results else pl.DataFrame(schema=schema)
    table = table.with_columns(distinct["_lookup"])
    return keyed.join(table, on="_lookup", how="left", maintain_order="left").drop("_lookup")


def _code_is_valid(system: str | None, code: str | None) -> bool:
    if system == "text":
        return True
    check = CODE_CHECKS.get(system or "")
    return bool(check and check(code))


# ----------------------------------------------------------------------------------------------------------------
# Vocabulary mapping


@dataclass(frozen=True)
class DrugMapping:
    """What a prescription's code or name maps to in the drug vocabulary."""

    drug_key: str | None
    ingredients: str
    bnf_section: str | None
    atc: str | None
    complete: bool  # every component of the description was recognised


_NO_DRUG = DrugMapping(None, "", None, None, False)


class VocabularyMapper:
    """The one place where importers talk to ``clinical.vocabulary``; each distinct code is looked up once.

    Conditions: by SNOMED CT id, then by term (the vocabulary drops a trailing semantic tag such as "(disorder)").
    Medicines: by code (RxNorm, dm+d, BNF), then by the product description, which also splits combination
    products into their ingredients ("Co-codamol", "sacubitril 97 MG / valsartan 103 MG Oral Tablet")."""

    def __init__(self, conditions: Any = None, drugs: Any = None) -> None:
        if conditions is None or drugs is None:
            from clinical.vocabulary import ConditionVocabulary, DrugVocabulary

            conditions = conditions if conditions is not None else ConditionVocabulary.load()
            drugs = drugs if drugs is not None else DrugVocabulary.load()
        self.conditions = conditions
        self.drugs = drugs

    def condition_key(self, code: str, term: str | None) -> str | None:
        match = self.conditions.match(code)
        if match is None and term:
            match = self.conditions.match(term)
        return match.key if match is not None else None

    def condition_keys(self) -> frozenset[str]:
        keys = self.conditions.keys
        return frozenset(keys() if callable(keys) else keys)

    def drug(self, code_system: str, code: str | None, name: str | None) -> DrugMapping:
        match = None
        if code and code_system in {"rxnorm", "dmd", "bnf"}:
            match = self.drugs.match_code(code_system, code)
        if (match is None or not match.ingredients) and name:
            match = self.drugs.match_text(name)
        if match is None or not match.ingredients:
            return _NO_DRUG
        drug = self.drugs.get(match.drug_key)
        return DrugMapping(
            drug_key=match.drug_key,
            ingredients=";".join(match.ingredients),
            bnf_section=drug.bnf_section if drug is not None else None,
            atc=drug.atc if drug is not None else None,
            complete=bool(match.matched),
        )


# ----------------------------------------------------------------------------------------------------------------
# Shared derivations used by several readers


def assign_practices(visits: pl.DataFrame) -> pl.DataFrame:
    """Each patient's practice: the organisation of most of their primary-care visits.

    ``visits`` has ``patient_source_id, org_source_id, org_name, date, primary_care`` (bool). Primary care means
    the visits a GP practice provides (Synthea's wellness and ambulatory classes, FHIR AMB, OMOP office visits).
    Ties go to the organisation with more visits of any kind, then to the one seen most recently, then to the
    smaller id (deterministic across re-imports); so a patient with no primary-care visit gets the organisation of
    most visits of any kind.
    Returns ``patient_source_id, practice_source_id, practice_name``.
    """
    schema = {"patient_source_id": pl.String, "practice_source_id": pl.String, "practice_name": pl.String}
    usable = visits.filter(pl.col("org_source_id").is_not_null() & (pl.col("org_source_id") != ""))
    if usable.height == 0:
        return pl.DataFrame(schema=schema)
    ranked = (
        usable.group_by("patient_source_id", "org_source_id")
        .agg(
            pl.col("primary_care").sum().alias("primary"),
            pl.len().alias("visits"),
            pl.col("date").max().alias("last"),
            pl.col("org_name").drop_nulls().first().alias("org_name"),
        )
        .sort(
            ["patient_source_id", "primary", "visits", "last", "org_source_id"],
            descending=[False, True, True, True, False],
            nulls_last=True,
        )
        .group_by("patient_source_id", maintain_order=True)
        .first()
    )
    return ranked.select(
        "patient_source_id",
        pl.col("org_source_id").alias("practice_source_id"),
        pl.col("org_name").alias("practice_name"),
    )


def hospital_events(visits: pl.DataFrame) -> pl.DataFrame:
    """A&E attendances and emergency admissions from hospital visits.

    ``visits`` has ``patient_source_id, date, setting`` ("ae" | "inpatient") and ``emergency`` (bool: the visit is
    coded as an emergency admission, or the source says it came through A&E) plus provenance columns.
    Mapping (the NHS England A&E / emergency-admission definitions):
    - every A&E attendance (emergency department and urgent care / minor injury, A&E types 1-4) -> ae_attendance;
    - an inpatient stay coded as an emergency admission, or starting within a day of an A&E attendance
      (admitted through A&E) -> emergency_admission; an elective stay is not an event;
    - an A&E visit coded as an emergency admission (Synthea codes some emergency-class encounters so) gives both.
    """
    out_schema = {
        "patient_source_id": pl.String,
        "type": pl.String,
        "date": pl.Date,
        "_file": pl.String,
        "_row": pl.Int64,
    }
    if visits.height == 0:
        return pl.DataFrame(schema=out_schema)
    ae = visits.filter(pl.col("setting") == "ae")
    inpatient = visits.filter(pl.col("setting") == "inpatient").sort("date")
    ae_dates = ae.select("patient_source_id", pl.col("date").alias("ae_date")).unique().sort("ae_date")
    linked = inpatient.join_asof(
        ae_dates,
        left_on="date",
        right_on="ae_date",
        by="patient_source_id",
        strategy="backward",
        check_sortedness=False,
    ).with_columns(
        (
            pl.col("emergency")
            | (
                pl.col("ae_date").is_not_null()
                & ((pl.col("date") - pl.col("ae_date")).dt.total_days() <= ADMITTED_FROM_AE_WITHIN_DAYS)
            )
        ).alias("emergency")
    )
    parts = [
        ae.select("patient_source_id", pl.lit("ae_attendance").alias("type"), "date", "_file", "_row"),
        ae.filter(pl.col("emergency")).select(
            "patient_source_id", pl.lit("emergency_admission").alias("type"), "date", "_file", "_row"
        ),
        linked.filter(pl.col("emergency")).select(
            "patient_source_id", pl.lit("emergency_admission").alias("type"), "date", "_file", "_row"
        ),
    ]
    return pl.concat([p.cast(out_schema) for p in parts], how="vertical")


# ----------------------------------------------------------------------------------------------------------------
# From staged to canonical


@dataclass
class CanonicalBatch:
    frames: dict[str, pl.DataFrame]
    unmapped: dict[str, int]
    patient_ids: list[str]


def build_canonical(
    staged: StagedSource,
    *,
    pseudonymiser: Pseudonymiser,
    vocabulary: VocabularyMapper,
    rejects: RejectLog,
    condition_events: dict[str, str] | None = None,
) -> CanonicalBatch:
    """Validate, map and pseudonymise staged frames into canonical ones (no database access)."""
    patients = _valid_patients(staged.patients, rejects)
    if patients.height == 0:
        raise SourceFormatError(
            staged.kind,
            "no patient could be imported (the source has no patient rows, or every one was rejected)",
        )
    known = patients.select(pl.col("source_id").alias("patient_source_id"))
    conditions = _keep_known_patients(staged.conditions, known, rejects)
    prescriptions = _keep_known_patients(staged.prescriptions, known, rejects)
    observations = _keep_known_patients(staged.observations, known, rejects)
    events = _keep_known_patients(staged.events, known, rejects)

    unmapped: dict[str, int] = {}
    conditions = _map_conditions(conditions, vocabulary, rejects, unmapped)
    prescriptions = _map_prescriptions(prescriptions, vocabulary, rejects, unmapped)
    observations = _map_observations(observations, rejects)
    events = _all_events(events, conditions, patients, condition_events or {})

    patient_ids = pseudonymiser.mapping(patients["source_id"].to_list(), "patient")
    practices, patients = _practices(patients, pseudonymiser)
    frames = {
        "practice": practices,
        "patient": _pseudonymise_patients(patients, patient_ids, staged.kind),
        "condition": _pseudonymise_children(conditions, patient_ids, _CANONICAL_COLUMNS["condition"]),
        "prescription": _pseudonymise_children(
            prescriptions, patient_ids, _CANONICAL_COLUMNS["prescription"]
        ),
        "observation": _pseudonymise_children(observations, patient_ids, _CANONICAL_COLUMNS["observation"]),
        "event": _pseudonymise_children(events, patient_ids, _CANONICAL_COLUMNS["event"]),
    }
    return CanonicalBatch(frames=frames, unmapped=unmapped, patient_ids=patient_ids["id"].to_list())


_CANONICAL_COLUMNS = {
    "condition": ("code_system", "code", "term", "condition_key", "onset", "resolved"),
    "prescription": (
        "code_system",
        "code",
        "name",
        "drug_key",
        "ingredients",
        "bnf_section",
        "atc",
        "start",
        "stop",
        "dose_text",
        "repeat",
    ),
    "observation": ("type", "value", "unit", "date"),
    "event": ("type", "date"),
}


def _valid_patients(patients: pl.DataFrame, rejects: RejectLog) -> pl.DataFrame:
    patients = patients.filter(pl.col("source_id").is_not_null() & (pl.col("source_id") != ""))
    first = patients.select(pl.col("source_id").is_first_distinct()).to_series()
    rejects.add_rows(patients.filter(~first), field_name="id", reason="duplicate_patient")
    patients = patients.filter(first)
    bad_sex = ~pl.col("sex").is_in(["F", "M"]) | pl.col("sex").is_null()
    rejects.add_rows(patients.filter(bad_sex), field_name="sex", reason="unknown_sex", value="sex")
    patients = patients.filter(~bad_sex)
    bad_birth = (
        pl.col("birth_year").is_null()
        | pl.col("birth_month").is_null()
        | ~pl.col("birth_month").is_between(1, 12)
        | (pl.col("birth_year") < 1850)
    )
    rejects.add_rows(patients.filter(bad_birth), field_name="birth", reason="missing_date")
    patients = patients.filter(~bad_birth)
    died_before_birth = pl.col("died_on").is_not_null() & (
        pl.col("died_on").dt.year() * 12 + pl.col("died_on").dt.month()
        < pl.col("birth_year") * 12 + pl.col("birth_month")
    )
    rejects.add_rows(
        patients.filter(died_before_birth),
        field_name="death",
        reason="end_before_start",
        value=pl.col("died_on"),
    )
    return patients.filter(~died_before_birth)


def _keep_known_patients(frame: pl.DataFrame, known: pl.DataFrame, rejects: RejectLog) -> pl.DataFrame:
    if frame.height == 0:
        return frame
    kept = frame.join(known, on="patient_source_id", how="semi", maintain_order="left")
    if kept.height != frame.height:
        orphans = frame.join(known, on="patient_source_id", how="anti", maintain_order="left")
        rejects.add_rows(orphans, field_name="patient", reason="unknown_patient")
    return kept


def _drop_end_before_start(
    frame: pl.DataFrame, start: str, end: str, rejects: RejectLog, field_name: str
) -> pl.DataFrame:
    bad = pl.col(end).is_not_null() & (pl.col(end) < pl.col(start))
    rejects.add_rows(frame.filter(bad), field_name=field_name, reason="end_before_start", value=pl.col(end))
    return frame.filter(~bad)


def _map_conditions(
    conditions: pl.DataFrame, vocabulary: VocabularyMapper, rejects: RejectLog, unmapped: dict[str, int]
) -> pl.DataFrame:
    if conditions.height == 0:
        return conditions.with_columns(
            pl.lit("snomed").alias("code_system"), pl.lit(None, dtype=pl.String).alias("condition_key")
        )
    conditions = conditions.with_columns(pl.col("code").str.strip_chars())
    conditions = attach_per_distinct(
        conditions,
        ["code", "term"],
        lambda code, term: (
            is_snomed_concept_id(code),
            vocabulary.condition_key(code, term) if is_snomed_concept_id(code) else None,
        ),
        {"_valid": pl.Boolean, "condition_key": pl.String},
    )
    invalid = ~pl.col("_valid")
    rejects.add_rows(conditions.filter(invalid), field_name="code", reason="invalid_code", value="code")
    conditions = conditions.filter(~invalid)
    conditions = _drop_end_before_start(conditions, "onset", "resolved", rejects, "resolved")
    # The duplicate key already hashes every column read (CSV) or names the resource (FHIR).
    conditions = mark_duplicates(conditions, [DUPKEY, "patient_source_id"], rejects=rejects, what="condition")
    unmapped["condition without condition key"] = int(conditions["condition_key"].is_null().sum())
    return conditions.with_columns(pl.lit("snomed").alias("code_system"), pl.col("term").fill_null(""))


def _map_prescriptions(
    prescriptions: pl.DataFrame, vocabulary: VocabularyMapper, rejects: RejectLog, unmapped: dict[str, int]
) -> pl.DataFrame:
    mapped_schema = {
        "_valid": pl.Boolean,
        "drug_key": pl.String,
        "ingredients": pl.String,
        "bnf_section": pl.String,
        "atc": pl.String,
        "_complete": pl.Boolean,
    }
    if prescriptions.height == 0:
        return prescriptions.with_columns([pl.lit(None, dtype=t).alias(n) for n, t in mapped_schema.items()])
    prescriptions = prescriptions.with_columns(
        pl.col("code").str.strip_chars(), pl.col("name").str.strip_chars().fill_null("")
    )

    def mapping(system: str, code: str | None, name: str) -> tuple[Any, ...]:
        if not _code_is_valid(system, code):
            return (False, None, "", None, None, False)
        match = vocabulary.drug(system, code, name)
        return (True, match.drug_key, match.ingredients, match.bnf_section, match.atc, match.complete)

    prescriptions = attach_per_distinct(
        prescriptions, ["code_system", "code", "name"], mapping, mapped_schema
    )
    invalid = ~pl.col("_valid")
    rejects.add_rows(prescriptions.filter(invalid), field_name="code", reason="invalid_code", value="code")
    prescriptions = prescriptions.filter(~invalid)
    prescriptions = _drop_end_before_start(prescriptions, "start", "stop", rejects, "stop")
    prescriptions = mark_duplicates(
        prescriptions, [DUPKEY, "patient_source_id"], rejects=rejects, what="prescription"
    )
    unmapped["prescription without drug key"] = int(prescriptions["drug_key"].is_null().sum())
    unmapped["prescription with a component not recognised (kept with the ingredients found)"] = int(
        (prescriptions["drug_key"].is_not_null() & ~prescriptions["_complete"]).sum()
    )
    return prescriptions


def normalise_unit(unit: str | None) -> str:
    """Lower-case, no spaces, ASCII micro and superscripts: "µmol/L", "umol/L" and "μmol/l" are the same unit."""
    return (unit or "").strip().lower().replace(" ", "").replace("μ", "u").replace("µ", "u").replace("²", "2")


def _unit_lookup(pairs: Iterable[tuple[str, str]]) -> pl.DataFrame:
    rows = []
    for kind, unit in pairs:
        conversion = UNIT_CONVERSIONS.get((kind, normalise_unit(unit)))
        if conversion is not None:
            rows.append((kind, unit, conversion[0], conversion[1]))
    return pl.DataFrame(
        rows,
        schema={"type": pl.String, "_unit_text": pl.String, "_scale": pl.Float64, "_offset": pl.Float64},
        orient="row",
    )


def _map_observations(observations: pl.DataFrame, rejects: RejectLog) -> pl.DataFrame:
    if observations.height == 0:
        return observations.with_columns(
            pl.lit(None, dtype=pl.String).alias("type"),
            pl.lit(None, dtype=pl.Float64).alias("value"),
            pl.lit(None, dtype=pl.String).alias("unit"),
        )
    observations = observations.with_columns(
        pl.col("loinc")
        .str.strip_chars()
        .replace_strict(LAB_LOINC, default=None, return_dtype=pl.String)
        .alias("type"),
        pl.col("value_raw").str.strip_chars(),
        pl.col("unit").fill_null("").str.strip_chars().alias("_unit_text"),
    )
    # Readers keep only lab codes, but an OMOP or FHIR row may carry another one: not imported, not a reject.
    observations = observations.filter(pl.col("type").is_not_null())
    observations = observations.with_columns(
        pl.col("value_raw").cast(pl.Float64, strict=False).alias("_number")
    )
    bad_value = pl.col("value_raw").is_not_null() & (pl.col("value_raw") != "") & pl.col("_number").is_null()
    rejects.add_rows(
        observations.filter(bad_value), field_name="value", reason="bad_value", value="value_raw"
    )
    observations = observations.filter(~bad_value)

    lookup = _unit_lookup(observations.select("type", "_unit_text").unique().rows())
    observations = observations.join(lookup, on=["type", "_unit_text"], how="left", maintain_order="left")
    unknown = pl.col("_scale").is_null()
    rejects.add_rows(
        observations.filter(unknown), field_name="unit", reason="unknown_unit", value="_unit_text"
    )
    observations = observations.filter(~unknown)
    observations = mark_duplicates(
        observations, [DUPKEY, "patient_source_id", "type"], rejects=rejects, what="observation"
    )
    return observations.with_columns(
        # Three decimals: more precision than any of these tests is reported with, and no float noise from the
        # unit conversion (1.1 mg/dL x 88.42 = 97.262 µmol/L).
        (pl.col("_number") * pl.col("_scale") + pl.col("_offset")).round(3).alias("value"),
        pl.col("type").replace_strict(CANONICAL_UNITS, return_dtype=pl.String).alias("unit"),
    )


def _all_events(
    events: pl.DataFrame, conditions: pl.DataFrame, patients: pl.DataFrame, condition_events: dict[str, str]
) -> pl.DataFrame:
    """Source events, events implied by coded conditions (e.g. a fracture diagnosis), and deaths; one per day."""
    columns = ["patient_source_id", "type", "date"]
    parts = [events.select(columns)]
    if condition_events and conditions.height:
        parts.append(
            conditions.filter(pl.col("condition_key").is_in(list(condition_events))).select(
                "patient_source_id",
                pl.col("condition_key")
                .replace_strict(condition_events, return_dtype=pl.String)
                .alias("type"),
                pl.col("onset").alias("date"),
            )
        )
    parts.append(
        patients.filter(pl.col("died_on").is_not_null()).select(
            pl.col("source_id").alias("patient_source_id"),
            pl.lit("death").alias("type"),
            pl.col("died_on").alias("date"),
        )
    )
    combined = pl.concat(
        [p.cast({"patient_source_id": pl.String, "type": pl.String, "date": pl.Date}) for p in parts]
    )
    return combined.filter(pl.col("type").is_in(list(EVENT_TYPES)) & pl.col("date").is_not_null()).unique(
        subset=columns, maintain_order=True
    )


def _practices(patients: pl.DataFrame, pseudonymiser: Pseudonymiser) -> tuple[pl.DataFrame, pl.DataFrame]:
    patients = patients.with_columns(
        pl.col("practice_source_id").fill_null(UNASSIGNED_PRACTICE_SOURCE_ID),
    )
    mapping = pseudonymiser.mapping(patients["practice_source_id"].to_list(), "practice")
    names = (
        patients.group_by("practice_source_id")
        .agg(pl.col("practice_name").drop_nulls().first())
        .rename({"practice_source_id": "source_id"})
    )
    practices = mapping.join(names, on="source_id", how="left").with_columns(
        pl.when(pl.col("source_id") == UNASSIGNED_PRACTICE_SOURCE_ID)
        .then(pl.lit(f"Unassigned ({pseudonymiser.source}: no practice in the source)"))
        .when(pl.col("practice_name").is_null() | (pl.col("practice_name").str.strip_chars() == ""))
        .then(pl.lit(f"{pseudonymiser.source} organisation ") + pl.col("id").str.slice(-6))
        .otherwise(pl.col("practice_name").str.slice(0, 200))
        .alias("name"),
        pl.lit(None, dtype=pl.String).alias("icb"),
    )
    patients = patients.join(
        mapping.rename({"source_id": "practice_source_id", "id": "practice_id"}),
        on="practice_source_id",
        how="left",
        maintain_order="left",
    )
    return practices.select("id", "name", "icb").sort("id"), patients


def _registration_outside_birth_month() -> pl.Expr:
    """Registration date, moved to the 1st of the next month when it falls in the month of birth.

    A newborn's first record is often on the day of birth; kept as the registration date it would store the exact
    birth date that pseudonymisation drops. Clinical dates (a condition coded at birth) stay as recorded."""
    registered = pl.col("registered_on")
    in_birth_month = (registered.dt.year() == pl.col("birth_year")) & (
        registered.dt.month() == pl.col("birth_month")
    )
    return pl.when(in_birth_month).then(registered.dt.month_start().dt.offset_by("1mo")).otherwise(registered)


def _pseudonymise_patients(patients: pl.DataFrame, patient_ids: pl.DataFrame, source: str) -> pl.DataFrame:
    return patients.join(patient_ids, on="source_id", how="left", maintain_order="left").select(
        "id",
        "practice_id",
        pl.col("birth_year").cast(pl.Int64),
        pl.col("birth_month").cast(pl.Int64),
        "sex",
        pl.lit(None, dtype=pl.Int64).alias("deprivation_quintile"),
        "ethnicity_group",
        _registration_outside_birth_month().alias("registered_on"),
        "deregistered_on",
        "died_on",
        pl.lit(source).alias("source"),
    )


def _pseudonymise_children(
    frame: pl.DataFrame, patient_ids: pl.DataFrame, columns: Sequence[str]
) -> pl.DataFrame:
    ids = patient_ids.rename({"source_id": "patient_source_id", "id": "patient_id"})
    return frame.join(ids, on="patient_source_id", how="inner", maintain_order="left").select(
        "patient_id", *columns
    )


# ----------------------------------------------------------------------------------------------------------------
# Summary and entry point


@dataclass
class ImportSummary:
    """What an import did: rows loaded per table, rows rejected by reason, rows read but left unmapped or unused."""

    kind: str
    source: str
    loaded: dict[str, int]
    rejects: dict[str, int]
    unmapped: dict[str, int]
    skipped: dict[str, int]
    notes: list[str]
    elapsed_s: float
    rejects_path: Path | None
    derived_refreshed: bool
    patient_ids: list[str] = field(repr=False, default_factory=list)

    @property
    def rejected(self) -> int:
        return sum(self.rejects.values())

    def as_text(self) -> str:
        """One line per table, then rejects, unmapped and skipped counts, then the closing line."""
        lines = [f"Imported {self.kind} from {self.source}"]
        for table in ("practice", "patient", "condition", "prescription", "observation", "event"):
            lines.append(f"  {table:<13}{self.loaded.get(table, 0):>10,} loaded")
        for reason, count in sorted(self.rejects.items()):
            lines.append(f"  rejected     {count:>10,} {reason}")
        for what, count in sorted(self.unmapped.items()):
            lines.append(f"  unmapped     {count:>10,} {what}")
        for what, count in sorted(self.skipped.items()):
            lines.append(f"  not imported {count:>10,} {what}")
        for note in self.notes:
            lines.append(f"  note: {note}")
        if self.rejects_path is not None:
            lines.append(f"  rejects report: {self.rejects_path}")
        derived = "flags and scores refreshed" if self.derived_refreshed else "flags and scores not refreshed"
        lines.append(
            f"Done in {self.elapsed_s:.1f} s: {self.loaded.get('patient', 0):,} patients, "
            f"{self.rejected:,} rows rejected, {derived}."
        )
        return "\n".join(lines)


class _Progress:
    """A tqdm bar over the import stages when asked for, a no-op otherwise."""

    def __init__(self, enabled: bool, total: int) -> None:
        self._bar = None
        if enabled:
            from tqdm import tqdm

            self._bar = tqdm(total=total, unit="step", desc="import")

    def step(self, description: str) -> None:
        if self._bar is not None:
            self._bar.set_description(description)
            self._bar.update(1)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


@contextmanager
def _progress(enabled: bool, total: int) -> Iterator[_Progress]:
    bar = _Progress(enabled, total)
    try:
        yield bar
    finally:
        bar.close()


def default_rejects_path(engine: Engine, kind: str, now: dt.datetime | None = None) -> Path:
    """Beside the SQLite file, or under ./var/ for a server database."""
    stamp = (now or dt.datetime.now()).strftime("%Y%m%d-%H%M%S")
    name = f"import-rejects-{kind}-{stamp}.csv"
    database = engine.url.database if engine.url.get_backend_name() == "sqlite" else None
    if database and database != ":memory:":
        db_path = Path(database)
        return db_path.parent / f"{db_path.stem}-{name}"
    return settings.DEFAULT_VAR_DIR / name


def read_source(kind: str, path: Path, rejects: RejectLog, *, progress: bool = False) -> StagedSource:
    """Dispatch to the reader of ``kind`` (imported lazily so that one reader's dependencies never burden another)."""
    if kind == "synthea":
        from data_access.sources.synthea import read_synthea

        return read_synthea(path, rejects, progress=progress)
    if kind == "omop":
        from data_access.sources.omop import read_omop

        return read_omop(path, rejects, progress=progress)
    if kind == "fhir":
        from data_access.sources.fhir import read_fhir

        return read_fhir(path, rejects, progress=progress)
    raise ValueError(f"unknown source kind {kind!r}: expected one of {', '.join(SOURCE_KINDS)}")


# Conditions whose diagnosis records an event on its onset date (a fracture, a fall, a GI bleed coded when it
# happened), which the risk model's outcomes and the rules count as events. Keys from clinical/data/conditions.yaml;
# only keys the vocabulary defines are applied.
CONDITION_EVENT_CANDIDATES: dict[str, str] = {
    "fragility_fracture": "fracture",
    "fracture_history": "fracture",
    "falls_history": "fall",
    "gi_bleed_history": "gi_bleed",
    "aki": "aki",
    "acute_kidney_injury": "aki",
    "hypoglycaemia": "hypoglycaemia",
}


def _condition_events(vocabulary: VocabularyMapper) -> dict[str, str]:
    defined = vocabulary.condition_keys()
    return {key: event for key, event in CONDITION_EVENT_CANDIDATES.items() if key in defined}


def run_import(
    kind: SourceKind,
    path: Path,
    engine: Engine,
    *,
    rejects_path: Path | None = None,
    progress: bool = False,
    derive: bool = True,
    vocabulary: VocabularyMapper | None = None,
) -> ImportSummary:
    """Import one source into the canonical tables, all or nothing, and report what happened.

    Raises ``MissingSettingError`` when ``DYNAIRX_PSEUDONYM_KEY`` is unset (checked before any file is read) and
    ``SourceFormatError`` for input that cannot be trusted; in both cases nothing is written.
    ``derive=False`` skips recomputing flags and scores (benchmarks of the import alone); ``vocabulary`` lets a
    test supply a small vocabulary instead of the project's.
    """
    started = time.perf_counter()
    if kind not in SOURCE_KINDS:
        raise ValueError(f"unknown source kind {kind!r}: expected one of {', '.join(SOURCE_KINDS)}")
    key = settings.pseudonym_key()
    path = Path(path)
    if not path.exists():
        raise SourceFormatError(path, "no such file or directory")
    rejects = RejectLog()
    with _progress(progress, total=4) as bar:
        staged = read_source(kind, path, rejects, progress=progress)
        bar.step("mapping codes")
        vocabulary = vocabulary or VocabularyMapper()
        batch = build_canonical(
            staged,
            pseudonymiser=Pseudonymiser(key, kind),
            vocabulary=vocabulary,
            rejects=rejects,
            condition_events=_condition_events(vocabulary),
        )
        bar.step("loading")
        loaded = load_frames(engine, batch.frames)
        bar.step("deriving flags and scores")
        derived = _refresh_derived(engine, batch.patient_ids, progress) if derive else False
        bar.step("done")
    written: Path | None = None
    if rejects.total:
        written = rejects_path or default_rejects_path(engine, kind)
        rejects.write_csv(written)
    # load_frames reports new practices only; the summary counts the practices this source's patients belong to.
    loaded["practice"] = batch.frames["practice"].height
    return ImportSummary(
        kind=kind,
        source=str(path),
        loaded=loaded,
        rejects=rejects.counts(),
        unmapped=batch.unmapped,
        skipped=staged.skipped,
        notes=staged.notes,
        elapsed_s=time.perf_counter() - started,
        rejects_path=written,
        derived_refreshed=derived,
        patient_ids=batch.patient_ids,
    )


def _refresh_derived(engine: Engine, patient_ids: list[str], progress: bool) -> bool:
    """Recompute flags and scores for the imported patients, when the derive step exists in this build.

    This runs after the import's transaction has committed: a failure here leaves the imported source data in
    place (it is valid) and is raised to the caller, who can re-run the derive step alone."""
    try:
        from data_access.derive import refresh_derived
    except ModuleNotFoundError as exc:
        if exc.name != "data_access.derive":
            raise
        log.info("data_access.derive is not available: flags and scores not refreshed")
        return False
    refresh_derived(engine, patient_ids, progress=progress)
    return True
