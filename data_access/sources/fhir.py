"""Reader of FHIR R4 resources (https://hl7.org/fhir/R4/): a folder of Bundles (one JSON file per patient, as
Synthea writes them, plus its hospitalInformation/practitionerInformation bundles) or of bulk-export NDJSON files
(one resource per line, as the FHIR Bulk Data Access IG writes them), or one such file.

Resources read: Patient, Condition, MedicationRequest (with Medication, contained or referenced), Encounter,
Observation, Organization (names of practices). Other resource types are skipped and counted.

Older FHIR versions are refused with the version found, because their shapes differ in ways that would otherwise
import silently wrong data: DSTU2 has ``MedicationOrder`` and ``Condition.patient``/``dateRecorded`` and a string
``Encounter.class``; STU3 has ``Condition.assertedDate``, a string ``Condition.clinicalStatus`` and ``context``
instead of ``encounter``; R5 has a list ``Encounter.class`` and ``MedicationRequest.medication``. A declared
``fhirVersion`` (CapabilityStatement, StructureDefinition) or a ``meta.profile`` under ``/STU3/`` or ``/DSTU2/``
is believed as well.

Mapping:

- Patient: ``id``, year and month of ``birthDate`` (a year-only date gets month 7, counted in the summary),
  ``gender`` male -> M, female -> F, ``deceasedDateTime``; ethnic group from the UK Core EthnicCategory extension
  (NHS Data Dictionary codes A-C White, D-G Mixed, H-L Asian, M-P Black, R-S Other) or the US Core race extension
  (OMB categories). Names, telecom, address and identifiers (NHS number, SSN) are never read. Practice:
  ``generalPractitioner`` or ``managingOrganization`` when they name an Organization, else the organisation
  (``Encounter.serviceProvider``) of most ambulatory encounters.
- Condition: the SNOMED CT coding of ``code``; onset ``onsetDateTime``/``onsetPeriod.start`` (else
  ``recordedDate``); resolved ``abatementDateTime``/``abatementPeriod``; refuted or entered-in-error conditions
  are skipped.
- MedicationRequest: RxNorm, dm+d (``https://dmd.nhs.uk`` or a SNOMED CT coding) or text; start ``authoredOn``;
  stop ``dispenseRequest.validityPeriod.end`` or the dosage's ``boundsPeriod.end``; a stopped or completed request
  without an end date (Synthea writes none) is recorded as ending on its start date, the only date known, and
  counted in the summary. Draft, cancelled and entered-in-error requests, and proposals and plans, are skipped.
- Encounter: class EMER, or AMB typed as an urgent care clinic (SNOMED CT 702927004), -> ae_attendance; IMP,
  ACUTE and NONAC stays -> emergency_admission when typed as one (183452005, 183460006, 183478001), admitted from
  A&E (``hospitalization.admitSource`` = ``emd``) or starting within a day of an A&E attendance.
- Observation: LOINC codes in ``importing.LAB_LOINC``, including components (systolic BP 8480-6 inside the blood
  pressure panel 85354-9), with ``valueQuantity`` (UCUM ``code``, else ``unit``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from data_access.sources.importing import (
    DUPKEY,
    EMERGENCY_ADMISSION_SNOMED,
    LAB_LOINC,
    REPEAT_AFTER_DAYS_DEFAULT,
    RejectLog,
    SourceFormatError,
    StagedSource,
    assign_practices,
    conform_staged,
    date_expr,
    hospital_events,
    parse_dates,
)

SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
DMD_SYSTEMS = ("https://dmd.nhs.uk", "http://dmd.nhs.uk")
URGENT_CARE_SNOMED = "702927004"  # Urgent care clinic (environment)
ADMIT_FROM_AE = "emd"  # HL7 admit-source: "From accident/emergency department"
UK_CORE_ETHNICITY = "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-EthnicCategory"
US_CORE_RACE = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race"
# NHS Data Dictionary "Ethnic Category" (2001 census) -> ONS 5 groups; Z (not stated) stays unknown.
NHS_ETHNIC_CATEGORY = {
    **dict.fromkeys("ABC", "White"),
    **dict.fromkeys("DEFG", "Mixed"),
    **dict.fromkeys("HJKL", "Asian"),
    **dict.fromkeys("MNP", "Black"),
    **dict.fromkeys("RS", "Other"),
}
# OMB race categories (CDC race code system, urn:oid:2.16.840.1.113883.6.238) -> ONS 5 groups.
OMB_RACE = {"2106-3": "White", "2054-5": "Black", "2028-9": "Asian", "1002-5": "Other", "2076-8": "Other"}
SKIPPED_STATUSES = {"entered-in-error", "cancelled", "draft"}
ORDER_INTENTS = {"order", "original-order", "reflex-order", "filler-order", "instance-order"}
ENDED_STATUSES = {"stopped", "completed"}
INPATIENT_CLASSES = {"IMP", "ACUTE", "NONAC"}
MID_YEAR_MONTH = 7
FULL_URL_ID = "__full_url_id"  # carried on a Patient read from a Bundle entry whose fullUrl is not its id
READ_TYPES = {
    "Patient",
    "Condition",
    "MedicationRequest",
    "Medication",
    "Encounter",
    "Observation",
    "Organization",
}


@dataclass
class _Rows:
    """Rows collected from all files before they become frames (one list of dicts per staged table)."""

    patients: list[dict[str, Any]] = field(default_factory=list)
    conditions: list[dict[str, Any]] = field(default_factory=list)
    prescriptions: list[dict[str, Any]] = field(default_factory=list)
    observations: list[dict[str, Any]] = field(default_factory=list)
    visits: list[dict[str, Any]] = field(default_factory=list)
    hospital: list[dict[str, Any]] = field(default_factory=list)
    medications: dict[str, dict[str, Any]] = field(default_factory=dict)
    organisations: dict[str, str] = field(default_factory=dict)  # canonical organisation key -> name
    # Organization id or identifier -> canonical key (the first identifier, e.g. the ODS code), so that
    # "Organization/org-1" and "Organization?identifier=...|Y01234" name the same practice.
    org_keys: dict[str, str] = field(default_factory=dict)
    # fullUrl id -> Patient.id, for Bundles whose references use a fullUrl that differs from the resource id.
    patient_aliases: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)
    year_only_births: int = 0
    stop_unknown: int = 0

    def skip(self, what: str) -> None:
        self.skipped[what] = self.skipped.get(what, 0) + 1


@dataclass(frozen=True)
class _Where:
    file: str
    row: int


def read_fhir(path: Path, rejects: RejectLog, *, progress: bool = False) -> StagedSource:
    files = _input_files(Path(path))
    rows = _Rows()
    iterator = files
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(files, unit="file", desc="fhir")
        iterator = bar
    for file in iterator:
        for where, resource in _resources(file):
            _check_version(resource, where)
            _collect(resource, where, rows)
    if bar is not None:
        bar.close()
    return _stage(rows, rejects)


# ----------------------------------------------------------------------------------------------------------------
# Files and resources


def _input_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise SourceFormatError(path, "no such file or folder")
    files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in {".json", ".ndjson"})
    if not files:
        raise SourceFormatError(path, "no .json or .ndjson files in this folder")
    return files


def _resources(file: Path) -> Iterator[tuple[_Where, dict[str, Any]]]:
    if file.stat().st_size == 0:
        raise SourceFormatError(file.name, "the file is empty", row=1)
    if file.suffix.lower() == ".ndjson":
        yield from _ndjson_resources(file)
        return
    try:
        with file.open("r", encoding="utf-8-sig") as handle:
            document = json.load(handle)
    except json.JSONDecodeError as exc:
        truncated = _unbalanced(exc.doc)
        what = (
            "the file ends before the JSON does (truncated copy?)"
            if truncated
            else f"not valid JSON ({exc.msg})"
        )
        raise SourceFormatError(file.name, what, row=exc.lineno) from exc
    except UnicodeDecodeError as exc:
        raise SourceFormatError(file.name, f"not UTF-8 text ({exc.reason})") from exc
    if not isinstance(document, dict) or "resourceType" not in document:
        raise SourceFormatError(file.name, "not a FHIR resource or Bundle (no resourceType)", row=1)
    if document["resourceType"] != "Bundle":
        yield _Where(file.name, 1), document
        return
    _check_version(document, _Where(file.name, 0))
    for index, entry in enumerate(document.get("entry") or [], start=1):
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(resource, dict) or "resourceType" not in resource:
            raise SourceFormatError(
                file.name, "Bundle entry without a resource", row=index, field="entry.resource"
            )
        full_url_id = _reference_id(entry.get("fullUrl")) if isinstance(entry.get("fullUrl"), str) else None
        if "id" not in resource and full_url_id:
            resource = {**resource, "id": full_url_id}
        if resource["resourceType"] == "Patient" and full_url_id and full_url_id != resource.get("id"):
            resource = {**resource, FULL_URL_ID: full_url_id}
        yield _Where(file.name, index), resource


def _unbalanced(document: str) -> bool:
    """Whether JSON text stops with a string or a bracket still open: the mark of a file cut short, as opposed
    to one that is malformed in the middle. Only run on the error path."""
    depth = 0
    in_string = escaped = False
    for char in document:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
        elif char in "]}":
            depth -= 1
    return in_string or depth > 0


def _ndjson_resources(file: Path) -> Iterator[tuple[_Where, dict[str, Any]]]:
    ends_with_newline = _ends_with_newline(file)
    with file.open("r", encoding="utf-8-sig", newline="") as handle:
        previous: tuple[int, str] | None = None
        for number, line in enumerate(handle, start=1):
            if previous is not None:
                parsed = _parse_line(file, *previous, last=False, ends_with_newline=ends_with_newline)
                if parsed is not None:
                    yield parsed
            previous = (number, line)
        if previous is not None:
            parsed = _parse_line(file, *previous, last=True, ends_with_newline=ends_with_newline)
            if parsed is not None:
                yield parsed


def _parse_line(
    file: Path, number: int, line: str, *, last: bool, ends_with_newline: bool
) -> tuple[_Where, dict[str, Any]] | None:
    text = line.strip()
    if not text:
        return None
    try:
        resource = json.loads(text)
    except json.JSONDecodeError as exc:
        what = (
            "the file ends in the middle of this line (truncated copy?)"
            if last and not ends_with_newline
            else f"not valid JSON ({exc.msg})"
        )
        raise SourceFormatError(file.name, what, row=number) from exc
    if not isinstance(resource, dict) or "resourceType" not in resource:
        raise SourceFormatError(file.name, "not a FHIR resource (no resourceType)", row=number)
    return _Where(file.name, number), resource


def _ends_with_newline(path: Path) -> bool:
    with path.open("rb") as handle:
        handle.seek(-1, 2)
        return handle.read(1) in (b"\n", b"\r")


# ----------------------------------------------------------------------------------------------------------------
# Version


def fhir_version_evidence(resource: dict[str, Any]) -> tuple[str, str] | None:
    """("STU3", "Condition.assertedDate")-style evidence that a resource is not FHIR R4, or None."""
    kind = resource.get("resourceType")
    declared = resource.get("fhirVersion")
    if isinstance(declared, str):
        if declared.startswith(("0.", "1.0")):
            return "DSTU2", f"{kind}.fhirVersion {declared}"
        if declared.startswith(("1.", "3.")):
            return "STU3", f"{kind}.fhirVersion {declared}"
        if declared.startswith("5."):
            return "R5", f"{kind}.fhirVersion {declared}"
    for profile in (resource.get("meta") or {}).get("profile") or []:
        if isinstance(profile, str) and "/STU3/" in profile:
            return "STU3", f"{kind}.meta.profile {profile}"
        if isinstance(profile, str) and "/DSTU2/" in profile:
            return "DSTU2", f"{kind}.meta.profile {profile}"
    if kind == "MedicationOrder":
        return "DSTU2", "MedicationOrder (replaced by MedicationRequest in STU3)"
    if kind == "Condition":
        if "patient" in resource and "subject" not in resource:
            return "DSTU2", "Condition.patient"
        if "dateRecorded" in resource:
            return "DSTU2", "Condition.dateRecorded"
        if "assertedDate" in resource:
            return "STU3", "Condition.assertedDate"
        if isinstance(resource.get("clinicalStatus"), str):
            return "STU3", "Condition.clinicalStatus is a code, not a CodeableConcept"
    if kind == "Encounter":
        klass = resource.get("class")
        if isinstance(klass, str):
            return "DSTU2", "Encounter.class is a code, not a Coding"
        if isinstance(klass, list):
            return "R5", "Encounter.class is a list of CodeableConcepts"
        if "patient" in resource and "subject" not in resource:
            return "DSTU2", "Encounter.patient"
    if kind in {"MedicationRequest", "Observation"} and "context" in resource and "encounter" not in resource:
        return "STU3", f"{kind}.context"
    if kind == "MedicationRequest" and "medication" in resource:
        return "R5", "MedicationRequest.medication (CodeableReference)"
    return None


def _check_version(resource: dict[str, Any], where: _Where) -> None:
    evidence = fhir_version_evidence(resource)
    if evidence is not None:
        version, detail = evidence
        raise SourceFormatError(
            where.file,
            f"found FHIR {version}, not R4 ({detail}); only FHIR R4 is supported: convert the export to R4",
            row=where.row or None,
            field=detail.split(" ")[0],
        )


# ----------------------------------------------------------------------------------------------------------------
# Resources -> rows


def _collect(resource: dict[str, Any], where: _Where, rows: _Rows) -> None:
    kind = resource["resourceType"]
    if kind not in READ_TYPES:
        rows.skip(f"{kind} resources (not used)")
        return
    if kind == "Organization":
        _organisation(resource, rows)
    elif kind == "Medication":
        if resource.get("id"):
            rows.medications[str(resource["id"])] = resource
    elif kind == "Patient":
        _patient(resource, where, rows)
    elif kind == "Condition":
        _condition(resource, where, rows)
    elif kind == "MedicationRequest":
        _medication_request(resource, where, rows)
    elif kind == "Encounter":
        _encounter(resource, where, rows)
    elif kind == "Observation":
        _observation(resource, where, rows)


def _dupkey(resource: dict[str, Any]) -> str:
    if resource.get("id"):
        return f"{resource['resourceType']}/{resource['id']}"
    return hashlib.sha256(json.dumps(resource, sort_keys=True).encode()).hexdigest()[:32]


def _reference_id(reference: str | None) -> str | None:
    """The id a reference points at: "urn:uuid:X", "Patient/X", "https://host/fhir/Patient/X/_history/2" -> X;
    a conditional reference "Organization?identifier=system|X" -> X."""
    if not reference:
        return None
    if "?identifier=" in reference:
        return reference.split("?identifier=", 1)[1].split("|")[-1] or None
    if reference.startswith("urn:uuid:") or reference.startswith("urn:oid:"):
        return reference.split(":", 2)[2]
    parts = [p for p in reference.split("/") if p]
    if "_history" in parts:
        parts = parts[: parts.index("_history")]
    return parts[-1] if parts else None


def _subject(resource: dict[str, Any]) -> str | None:
    subject = resource.get("subject") or {}
    return _reference_id(subject.get("reference")) if isinstance(subject, dict) else None


def _codings(concept: dict[str, Any] | None) -> list[dict[str, Any]]:
    if not isinstance(concept, dict):
        return []
    return [c for c in concept.get("coding") or [] if isinstance(c, dict)]


def _code_in(concept: dict[str, Any] | None, systems: tuple[str, ...]) -> dict[str, Any] | None:
    return next((c for c in _codings(concept) if c.get("system") in systems and c.get("code")), None)


def _status_code(value: Any) -> str | None:
    coding = _codings(value)
    return coding[0].get("code") if coding else None


def _organisation(resource: dict[str, Any], rows: _Rows) -> None:
    identifiers = [
        str(i["value"]) for i in resource.get("identifier") or [] if isinstance(i, dict) and i.get("value")
    ]
    own_id = str(resource["id"]) if resource.get("id") else None
    canonical = identifiers[0] if identifiers else own_id
    if canonical is None:
        return
    for key in [own_id, *identifiers]:
        if key:
            rows.org_keys[key] = canonical
    if isinstance(resource.get("name"), str):
        rows.organisations[canonical] = resource["name"]


def _patient(resource: dict[str, Any], where: _Where, rows: _Rows) -> None:
    if resource.get(FULL_URL_ID) and resource.get("id"):
        rows.patient_aliases[str(resource[FULL_URL_ID])] = str(resource["id"])
    birth = str(resource.get("birthDate") or "")
    year = int(birth[:4]) if len(birth) >= 4 and birth[:4].isdigit() else None
    month = int(birth[5:7]) if len(birth) >= 7 and birth[5:7].isdigit() else None
    if year is not None and month is None:
        month = MID_YEAR_MONTH
        rows.year_only_births += 1
    gender = {"male": "M", "female": "F"}.get(str(resource.get("gender") or "").lower())
    practice_ref = _practice_reference(resource)
    rows.patients.append(
        {
            "source_id": str(resource.get("id") or ""),
            "birth_year": year,
            "birth_month": month,
            "sex": gender or str(resource.get("gender") or ""),
            "ethnicity_group": _ethnic_group(resource),
            "died_raw": resource.get("deceasedDateTime"),
            "practice_source_id": _reference_id(practice_ref.get("reference")) if practice_ref else None,
            "practice_name": practice_ref.get("display") if practice_ref else None,
            "_file": where.file,
            "_row": where.row,
            DUPKEY: _dupkey(resource),
        }
    )


def _practice_reference(resource: dict[str, Any]) -> dict[str, Any] | None:
    candidates = list(resource.get("generalPractitioner") or []) + [resource.get("managingOrganization")]
    for reference in candidates:
        if not isinstance(reference, dict):
            continue
        text = reference.get("reference") or ""
        if (
            reference.get("type") == "Organization"
            or text.startswith("Organization")
            or "/Organization/" in text
        ):
            return reference
    return None


def _ethnic_group(resource: dict[str, Any]) -> str | None:
    for extension in resource.get("extension") or []:
        if not isinstance(extension, dict):
            continue
        if extension.get("url") == UK_CORE_ETHNICITY:
            coding = _codings(extension.get("valueCodeableConcept"))
            if coding:
                return NHS_ETHNIC_CATEGORY.get(str(coding[0].get("code") or "").upper())
        if extension.get("url") == US_CORE_RACE:
            for part in extension.get("extension") or []:
                if isinstance(part, dict) and part.get("url") == "ombCategory":
                    return OMB_RACE.get(str((part.get("valueCoding") or {}).get("code")))
    return None


def _condition(resource: dict[str, Any], where: _Where, rows: _Rows) -> None:
    verification = _status_code(resource.get("verificationStatus"))
    if verification in {"entered-in-error", "refuted"}:
        rows.skip(f"conditions {verification}")
        return
    code = resource.get("code")
    snomed = _code_in(code, (SNOMED,))
    first = (_codings(code) or [{}])[0]
    onset = resource.get("onsetDateTime") or (resource.get("onsetPeriod") or {}).get("start")
    abatement = resource.get("abatementDateTime") or (resource.get("abatementPeriod") or {}).get("end")
    rows.conditions.append(
        {
            "patient_source_id": _subject(resource),
            "code": snomed.get("code") if snomed else None,
            "other_code": f"{first.get('system', '')}|{first.get('code', '')}" if first else "",
            "term": (snomed or {}).get("display") or (code or {}).get("text"),
            "onset_raw": onset or resource.get("recordedDate"),
            "resolved_raw": abatement,
            "_file": where.file,
            "_row": where.row,
            DUPKEY: _dupkey(resource),
        }
    )


def _medication_request(resource: dict[str, Any], where: _Where, rows: _Rows) -> None:
    status = resource.get("status")
    if status in SKIPPED_STATUSES:
        rows.skip(f"medication requests {status}")
        return
    if resource.get("intent") not in ORDER_INTENTS:
        rows.skip(f"medication requests with intent {resource.get('intent')}")
        return
    contained = {str(c.get("id")): c for c in resource.get("contained") or [] if isinstance(c, dict)}
    reference = (resource.get("medicationReference") or {}).get("reference")
    dispense = resource.get("dispenseRequest") or {}
    dosage = (resource.get("dosageInstruction") or [{}])[0] or {}
    bounds = ((dosage.get("timing") or {}).get("repeat") or {}).get("boundsPeriod") or {}
    rows.prescriptions.append(
        {
            "patient_source_id": _subject(resource),
            "concept": resource.get("medicationCodeableConcept"),
            "medication_ref": reference,
            "contained": contained,
            "start_raw": resource.get("authoredOn")
            or (dispense.get("validityPeriod") or {}).get("start")
            or bounds.get("start"),
            "stop_raw": (dispense.get("validityPeriod") or {}).get("end") or bounds.get("end"),
            "ended": status in ENDED_STATUSES,
            "supply_days": _duration_days(dispense.get("expectedSupplyDuration")),
            "repeats": dispense.get("numberOfRepeatsAllowed"),
            "course": _status_code(resource.get("courseOfTherapyType")),
            "dose_text": _dose_text(dosage),
            "_file": where.file,
            "_row": where.row,
            DUPKEY: _dupkey(resource),
        }
    )


def _duration_days(duration: Any) -> float | None:
    if not isinstance(duration, dict) or not isinstance(duration.get("value"), int | float):
        return None
    unit = str(duration.get("code") or duration.get("unit") or "d").lower()
    factor = {
        "d": 1,
        "day": 1,
        "days": 1,
        "wk": 7,
        "week": 7,
        "weeks": 7,
        "mo": 30,
        "month": 30,
        "months": 30,
    }
    return float(duration["value"]) * factor[unit] if unit in factor else None


def _dose_text(dosage: dict[str, Any]) -> str | None:
    if dosage.get("text"):
        return str(dosage["text"])[:200]
    parts = []
    dose = ((dosage.get("doseAndRate") or [{}])[0] or {}).get("doseQuantity") or {}
    if isinstance(dose.get("value"), int | float):
        parts.append(f"{dose['value']:g} {dose.get('unit') or ''}".strip())
    repeat = (dosage.get("timing") or {}).get("repeat") or {}
    if repeat.get("frequency") and repeat.get("period"):
        parts.append(
            f"{repeat['frequency']} time(s) every {repeat['period']:g} {repeat.get('periodUnit', '')}".strip()
        )
    if dosage.get("asNeededBoolean"):
        parts.append("as needed")
    return ", ".join(parts) or None


def _encounter(resource: dict[str, Any], where: _Where, rows: _Rows) -> None:
    if resource.get("status") in {"entered-in-error", "cancelled", "planned"}:
        rows.skip(f"encounters {resource.get('status')}")
        return
    klass = str((resource.get("class") or {}).get("code") or "").upper()
    type_codes = {c.get("code") for t in resource.get("type") or [] for c in _codings(t)}
    provider = resource.get("serviceProvider") or {}
    org_id = _reference_id(provider.get("reference"))
    start = (resource.get("period") or {}).get("start")
    patient = _subject(resource)
    urgent_care = klass == "AMB" and URGENT_CARE_SNOMED in type_codes
    rows.visits.append(
        {
            "patient_source_id": patient,
            "org_source_id": org_id,
            "org_name": provider.get("display"),
            "date_raw": start,
            "primary_care": klass == "AMB" and not urgent_care,
        }
    )
    setting = "ae" if klass == "EMER" or urgent_care else "inpatient" if klass in INPATIENT_CLASSES else None
    if setting is None:
        rows.skip("encounters that are not A&E or inpatient (used for practice only)")
        return
    admit_source = _status_code((resource.get("hospitalization") or {}).get("admitSource"))
    rows.hospital.append(
        {
            "patient_source_id": patient,
            "date_raw": start,
            "setting": setting,
            "emergency": bool(type_codes & EMERGENCY_ADMISSION_SNOMED) or admit_source == ADMIT_FROM_AE,
            "_file": where.file,
            "_row": where.row,
        }
    )


def _observation(resource: dict[str, Any], where: _Where, rows: _Rows) -> None:
    if resource.get("status") in {"entered-in-error", "cancelled"}:
        rows.skip(f"observations {resource.get('status')}")
        return
    effective = (
        resource.get("effectiveDateTime")
        or (resource.get("effectivePeriod") or {}).get("start")
        or resource.get("effectiveInstant")
        or resource.get("issued")
    )
    parts = [(resource.get("code"), resource)] + [
        (c.get("code"), c) for c in resource.get("component") or [] if isinstance(c, dict)
    ]
    kept = 0
    for concept, holder in parts:
        loinc = next(
            (
                c.get("code")
                for c in _codings(concept)
                if c.get("system") == LOINC and c.get("code") in LAB_LOINC
            ),
            None,
        )
        if loinc is None:
            continue
        quantity = holder.get("valueQuantity") or {}
        value = quantity.get("value")
        rows.observations.append(
            {
                "patient_source_id": _subject(resource),
                "loinc": loinc,
                "value_raw": None if value is None else str(value),
                "unit": quantity.get("code") or quantity.get("unit"),
                "date_raw": effective,
                "_file": where.file,
                "_row": where.row,
                DUPKEY: f"{_dupkey(resource)}#{loinc}",
            }
        )
        kept += 1
    if not kept:
        rows.skip("observations with codes outside the lab list")


# ----------------------------------------------------------------------------------------------------------------
# Rows -> staged frames


def _stage(rows: _Rows, rejects: RejectLog) -> StagedSource:
    notes = []
    if rows.year_only_births:
        notes.append(
            f"{rows.year_only_births} patient(s) with a year-only birthDate: month set to {MID_YEAR_MONTH}"
        )
    patients = _patients_frame(rows, rejects)
    visits = _frame(
        rows.visits,
        {
            "patient_source_id": pl.String,
            "org_source_id": pl.String,
            "org_name": pl.String,
            "date_raw": pl.String,
            "primary_care": pl.Boolean,
        },
    )
    visits = _canonical_patients(visits, rows).with_columns(
        date_expr("date_raw").alias("date"), pl.col("org_source_id").replace(rows.org_keys)
    )
    visits = visits.with_columns(
        pl.coalesce(
            pl.col("org_source_id").replace_strict(rows.organisations, default=None, return_dtype=pl.String),
            pl.col("org_name"),
        ).alias("org_name"),
    )
    patients = patients.with_columns(pl.col("practice_source_id").replace(rows.org_keys))
    practices = assign_practices(visits)
    first_seen = visits.group_by("patient_source_id").agg(pl.col("date").min().alias("registered_on"))
    own_names = pl.col("practice_source_id").replace_strict(
        rows.organisations, default=None, return_dtype=pl.String
    )
    patients = (
        patients.with_columns(pl.coalesce(own_names, pl.col("practice_name")).alias("practice_name"))
        .join(
            practices.rename({"practice_source_id": "_p", "practice_name": "_n"}),
            left_on="source_id",
            right_on="patient_source_id",
            how="left",
            maintain_order="left",
        )
        .with_columns(
            pl.coalesce("practice_source_id", "_p").alias("practice_source_id"),
            pl.when(pl.col("practice_source_id").is_not_null())
            .then(pl.col("practice_name"))
            .otherwise(pl.col("_n"))
            .alias("practice_name"),
        )
        .join(
            first_seen, left_on="source_id", right_on="patient_source_id", how="left", maintain_order="left"
        )
    )
    hospital = _frame(
        rows.hospital,
        {
            "patient_source_id": pl.String,
            "date_raw": pl.String,
            "setting": pl.String,
            "emergency": pl.Boolean,
            "_file": pl.String,
            "_row": pl.Int64,
        },
    )
    hospital = _canonical_patients(hospital, rows)
    hospital = parse_dates(
        hospital,
        "date_raw",
        target="date",
        field_name="Encounter.period.start",
        required=True,
        rejects=rejects,
    )
    prescriptions = _prescriptions_frame(rows, rejects)
    if rows.stop_unknown:
        notes.append(
            f"{rows.stop_unknown} stopped or completed medication request(s) without an end date: "
            "recorded as ending on their start date"
        )
    return StagedSource(
        kind="fhir",
        patients=conform_staged("patient", patients),
        conditions=conform_staged("condition", _conditions_frame(rows, rejects)),
        prescriptions=conform_staged("prescription", prescriptions),
        observations=conform_staged("observation", _observations_frame(rows, rejects)),
        events=conform_staged(
            "event",
            hospital_events(
                hospital.select("patient_source_id", "date", "setting", "emergency", "_file", "_row")
            ),
        ),
        skipped=rows.skipped,
        notes=notes,
    )


def _canonical_patients(frame: pl.DataFrame, rows: _Rows) -> pl.DataFrame:
    if not rows.patient_aliases:
        return frame
    return frame.with_columns(pl.col("patient_source_id").replace(rows.patient_aliases))


def _frame(records: list[dict[str, Any]], schema: dict[str, Any]) -> pl.DataFrame:
    """Rows to a frame; the resource-id duplicate key becomes the 64-bit hash the shared machinery expects."""
    if records:
        frame = pl.DataFrame([{k: r.get(k) for k in schema} for r in records], schema=schema, orient="row")
    else:
        frame = pl.DataFrame(schema=schema)
    if DUPKEY in frame.columns:
        frame = frame.with_columns(pl.col(DUPKEY).hash(seed=7))
    return frame


_PROVENANCE = {"_file": pl.String, "_row": pl.Int64, DUPKEY: pl.String}


def _patients_frame(rows: _Rows, rejects: RejectLog) -> pl.DataFrame:
    schema = {
        "source_id": pl.String,
        "birth_year": pl.Int32,
        "birth_month": pl.Int32,
        "sex": pl.String,
        "ethnicity_group": pl.String,
        "died_raw": pl.String,
        "practice_source_id": pl.String,
        "practice_name": pl.String,
        **_PROVENANCE,
    }
    frame = _frame(rows.patients, schema)
    if frame.height == 0:
        raise SourceFormatError("FHIR input", "no Patient resource found")
    return parse_dates(
        frame,
        "died_raw",
        target="died_on",
        field_name="Patient.deceasedDateTime",
        required=False,
        rejects=rejects,
    )


def _conditions_frame(rows: _Rows, rejects: RejectLog) -> pl.DataFrame:
    schema = {
        "patient_source_id": pl.String,
        "code": pl.String,
        "other_code": pl.String,
        "term": pl.String,
        "onset_raw": pl.String,
        "resolved_raw": pl.String,
        **_PROVENANCE,
    }
    frame = _canonical_patients(_frame(rows.conditions, schema), rows)
    no_snomed = pl.col("code").is_null()
    rejects.add_rows(
        frame.filter(no_snomed), field_name="Condition.code", reason="no_snomed_code", value="other_code"
    )
    frame = frame.filter(~no_snomed)
    frame = parse_dates(
        frame,
        "onset_raw",
        target="onset",
        field_name="Condition.onsetDateTime",
        required=True,
        rejects=rejects,
    )
    return parse_dates(
        frame,
        "resolved_raw",
        target="resolved",
        field_name="Condition.abatementDateTime",
        required=False,
        rejects=rejects,
    )


def _medication_coding(
    record: dict[str, Any], medications: dict[str, dict[str, Any]]
) -> tuple[str, str | None, str | None]:
    """(code_system, code, name) of a request's medication: RxNorm, dm+d or text."""
    concept = record["concept"]
    reference = record["medication_ref"]
    if concept is None and reference:
        medication = record["contained"].get(reference.lstrip("#")) if reference.startswith("#") else None
        medication = medication or medications.get(_reference_id(reference) or "")
        concept = (medication or {}).get("code")
    rxnorm = _code_in(concept, (RXNORM,))
    dmd = _code_in(concept, DMD_SYSTEMS + (SNOMED,))
    text = (concept or {}).get("text") if isinstance(concept, dict) else None
    if rxnorm:
        return "rxnorm", str(rxnorm["code"]), text or rxnorm.get("display")
    if dmd:
        return "dmd", str(dmd["code"]), text or dmd.get("display")
    first = (_codings(concept) or [{}])[0]
    return "text", None, text or first.get("display")


def _prescriptions_frame(rows: _Rows, rejects: RejectLog) -> pl.DataFrame:
    records = []
    for record in rows.prescriptions:
        system, code, name = _medication_coding(record, rows.medications)
        records.append({**record, "code_system": system, "code": code, "name": name})
    schema = {
        "patient_source_id": pl.String,
        "code_system": pl.String,
        "code": pl.String,
        "name": pl.String,
        "start_raw": pl.String,
        "stop_raw": pl.String,
        "ended": pl.Boolean,
        "supply_days": pl.Float64,
        "repeats": pl.Float64,
        "course": pl.String,
        "dose_text": pl.String,
        **_PROVENANCE,
    }
    frame = _canonical_patients(_frame(records, schema), rows)
    nothing = pl.col("name").is_null() & pl.col("code").is_null()
    rejects.add_rows(frame.filter(nothing), field_name="MedicationRequest.medication", reason="no_drug_code")
    frame = frame.filter(~nothing)
    frame = parse_dates(
        frame,
        "start_raw",
        target="start",
        field_name="MedicationRequest.authoredOn",
        required=True,
        rejects=rejects,
    )
    frame = parse_dates(
        frame,
        "stop_raw",
        target="_stop",
        field_name="MedicationRequest.dispenseRequest",
        required=False,
        rejects=rejects,
    )
    by_supply = pl.col("start") + pl.duration(days=pl.col("supply_days").round(0).cast(pl.Int64) - 1)
    unknown_stop = pl.col("_stop").is_null() & pl.col("ended") & pl.col("supply_days").is_null()
    rows.stop_unknown = int(frame.select(unknown_stop.sum()).item())
    stop = (
        pl.when(pl.col("_stop").is_not_null())
        .then(pl.col("_stop"))
        .when(pl.col("ended") & pl.col("supply_days").is_not_null())
        .then(by_supply)
        .when(pl.col("ended"))
        .then(pl.col("start"))
    )
    frame = frame.with_columns(stop.alias("stop"))
    lasting = pl.col("stop").is_null() | (
        (pl.col("stop") - pl.col("start")).dt.total_days() > REPEAT_AFTER_DAYS_DEFAULT
    )
    repeat = (
        pl.when(pl.col("course") == "acute")
        .then(False)
        .when(pl.col("course") == "continuous")
        .then(True)
        .otherwise((pl.col("repeats").fill_null(0) > 0) | lasting)
    )
    return frame.with_columns(repeat.alias("repeat"), pl.col("name").fill_null(""))


def _observations_frame(rows: _Rows, rejects: RejectLog) -> pl.DataFrame:
    schema = {
        "patient_source_id": pl.String,
        "loinc": pl.String,
        "value_raw": pl.String,
        "unit": pl.String,
        "date_raw": pl.String,
        **_PROVENANCE,
    }
    frame = _canonical_patients(_frame(rows.observations, schema), rows)
    return parse_dates(
        frame,
        "date_raw",
        target="date",
        field_name="Observation.effectiveDateTime",
        required=True,
        rejects=rejects,
    )
