"""The Patient JSON front end of ``dynairx flags``: parse one patient, evaluate every rule, report.

Input and output are specified in DESIGN.md ("Patient JSON"). Parsing maps names and codes to vocabulary keys
(conditions by name, synonym or SNOMED CT id; medicines by generic or US name, brand, product description, dm+d,
RxNorm or BNF code). Anything that cannot be matched is listed in ``unknown`` as it was given, never dropped
silently; anything malformed (not JSON, a bad date, a value of the wrong type) raises ``PatientJsonError`` naming
the field, e.g. ``medications[1].start``.

Topical (skin) products are recorded but left out of rule evaluation: class membership is by ingredient, and
criteria such as PINCER's "oral NSAID" or the drug-interaction rules concern systemic exposure.

Defaults for missing optional values: ``as_of`` today; a condition without ``onset`` has been present since birth
(it is known to exist, not when it began); a medicine without ``start`` was taken on ``as_of`` only (or on its
``stop`` date), so it counts now but never satisfies a duration; ``sex`` unknown satisfies no sex-specific rule.
The birth date comes from ``birth_date``, or ``birth_year``/``birth_month``, or ``age`` at ``as_of`` (see
``clinical.record.birth_date_from_age``).
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from clinical.engine import SafetyEngine, default_engine
from clinical.record import (
    ConditionEpisode,
    Event,
    LabResult,
    PatientRecord,
    Prescription,
    SocialCare,
    birth_date_from_age,
    birth_date_from_year_month,
)
from clinical.rules import EVENT_TYPES, LAB_NAMES, SOCIAL_CARE_KINDS
from clinical.scores import scores_on
from clinical.timeline import PatientTimeline
from clinical.vocabulary import ConditionVocabulary, DrugVocabulary

# Routes whose exposure is local, so the product does not count for systemic-drug rules.
LOCAL_ROUTES = frozenset({"topical"})
_TOP_LEVEL_KEYS = {
    "as_of",
    "age",
    "birth_date",
    "birth_year",
    "birth_month",
    "sex",
    "conditions",
    "medications",
    "labs",
    "events",
    "social_care",
    "id",
}
_TEXT_FIELDS = ("drug", "name", "description", "product")
_CODE_FIELDS = ("dmd", "rxnorm", "bnf")


class PatientJsonError(ValueError):
    """The Patient JSON is malformed; the message names the offending field."""


@dataclass
class ParsedPatient:
    """A parsed Patient JSON: the record, the day to evaluate, and the inputs that matched nothing."""

    record: PatientRecord
    as_of: date
    unknown: list[str] = field(default_factory=list)
    local_products: list[str] = field(default_factory=list)


def parse_patient_json(data: dict[str, Any] | str, today: date | None = None) -> ParsedPatient:
    """Parse a Patient JSON document (a dict, or its text) into a ``PatientRecord``."""
    if isinstance(data, str):
        try:
            data = json.loads(data)
        except json.JSONDecodeError as exc:
            raise PatientJsonError(
                f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
            ) from exc
    if not isinstance(data, dict):
        raise PatientJsonError("the patient must be a JSON object")
    unknown_keys = sorted(set(data) - _TOP_LEVEL_KEYS)
    if unknown_keys:
        raise PatientJsonError(f"unknown field(s): {', '.join(unknown_keys)}")
    as_of = _date(data.get("as_of"), "as_of", required=False) or today or date.today()
    birth = _birth_date(data, as_of)
    sex = _sex(data.get("sex"))
    unknown: list[str] = []
    local: list[str] = []
    drugs = DrugVocabulary.load()
    conditions = ConditionVocabulary.load()
    record = PatientRecord(
        patient_id=str(data.get("id") or "patient"),
        birth_date=birth,
        sex=sex,
        conditions=tuple(_conditions(data.get("conditions"), conditions, birth, unknown)),
        prescriptions=tuple(_medications(data.get("medications"), drugs, as_of, unknown, local)),
        labs=tuple(_labs(data.get("labs"), unknown)),
        events=tuple(_events(data.get("events"), unknown)),
        social_care=tuple(_social_care(data.get("social_care"), unknown)),
    )
    return ParsedPatient(record=record, as_of=as_of, unknown=unknown, local_products=local)


def flags_report(data: dict[str, Any] | str, engine: SafetyEngine | None = None) -> dict[str, Any]:
    """The output of ``dynairx flags``: ``{"flags": [...], "scores": {...}, "unknown": [...]}`` (DESIGN.md)."""
    parsed = parse_patient_json(data)
    engine = engine or default_engine()
    timeline = PatientTimeline(parsed.record, parsed.as_of, engine.knowledge)
    flags = engine.evaluate_timeline(timeline)
    return {
        "flags": [flag.as_dict() for flag in flags],
        "scores": scores_on(timeline, parsed.as_of) if timeline.lo <= timeline.hi else {},
        "unknown": parsed.unknown,
    }


def main_flags(path: str | Path) -> int:
    """Print the flags report of the Patient JSON file at ``path`` (``-`` reads stdin); 0 on success, 2 on error."""
    try:
        text = sys.stdin.read() if str(path) == "-" else Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        print(f"error: cannot read {path}: {exc.strerror}", file=sys.stderr)
        return 2
    try:
        report = flags_report(text)
    except PatientJsonError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    json.dump(report, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


# -- fields -----------------------------------------------------------------------------------------------------


def _date(value: Any, where: str, required: bool = True) -> date | None:
    if value is None:
        if required:
            raise PatientJsonError(f"{where}: a date (YYYY-MM-DD) is required")
        return None
    if not isinstance(value, str):
        raise PatientJsonError(f"{where}: expected a date string YYYY-MM-DD, got {value!r}")
    text = value.strip()
    try:
        if len(text) > 10 and text[10] in "T ":  # an ISO timestamp: the date part counts
            return datetime.fromisoformat(text).date()
        return date.fromisoformat(text)
    except ValueError as exc:
        raise PatientJsonError(f"{where}: {value!r} is not a valid date (YYYY-MM-DD)") from exc


def _birth_date(data: dict[str, Any], as_of: date) -> date:
    if data.get("birth_date") is not None:
        return _date(data["birth_date"], "birth_date")  # type: ignore[return-value]
    if data.get("birth_year") is not None:
        year = _int(data["birth_year"], "birth_year", 1880, as_of.year)
        month = _int(data.get("birth_month", 1), "birth_month", 1, 12)
        return birth_date_from_year_month(year, month)
    if data.get("age") is None:
        raise PatientJsonError("age: the age at as_of (or birth_date, or birth_year) is required")
    return birth_date_from_age(_int(data["age"], "age", 0, 130), as_of)


def _int(value: Any, where: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or int(value) != value:
        raise PatientJsonError(f"{where}: expected a whole number, got {value!r}")
    if not low <= int(value) <= high:
        raise PatientJsonError(f"{where}: {value!r} is outside {low}-{high}")
    return int(value)


def _sex(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise PatientJsonError(f"sex: expected 'F' or 'M', got {value!r}")
    normalised = {"f": "F", "female": "F", "m": "M", "male": "M"}.get(value.strip().lower())
    if normalised is None:
        raise PatientJsonError(f"sex: expected 'F' or 'M', got {value!r}")
    return normalised


def _items(value: Any, where: str) -> list[tuple[str, dict[str, Any]]]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise PatientJsonError(f"{where}: expected a list")
    out = []
    for i, item in enumerate(value):
        if not isinstance(item, dict):
            raise PatientJsonError(f"{where}[{i}]: expected an object")
        out.append((f"{where}[{i}]", item))
    return out


def _conditions(
    value: Any, vocabulary: ConditionVocabulary, birth: date, unknown: list[str]
) -> list[ConditionEpisode]:
    out = []
    for where, item in _items(value, "conditions"):
        given = item.get("snomed", item.get("code", item.get("name")))
        if given is None or (isinstance(given, str) and not given.strip()):
            raise PatientJsonError(f"{where}: needs 'name' or 'snomed'")
        if not isinstance(given, str | int) or isinstance(given, bool):
            raise PatientJsonError(f"{where}: 'name'/'snomed' must be text, got {given!r}")
        onset = _date(item.get("onset"), f"{where}.onset", required=False) or birth
        resolved = _date(item.get("resolved"), f"{where}.resolved", required=False)
        if resolved is not None and resolved < onset:
            raise PatientJsonError(f"{where}.resolved: {resolved} is before the onset {onset}")
        condition = vocabulary.match(given)
        if condition is None and "name" in item and item.get("name") != given:
            condition = vocabulary.match(item["name"])
        if condition is None:
            unknown.append(str(given))
            continue
        out.append(ConditionEpisode(key=condition.key, onset=onset, resolved=resolved))
    return out


def _medications(
    value: Any, vocabulary: DrugVocabulary, as_of: date, unknown: list[str], local: list[str]
) -> list[Prescription]:
    out = []
    for where, item in _items(value, "medications"):
        text = next((item[k] for k in _TEXT_FIELDS if isinstance(item.get(k), str) and item[k].strip()), None)
        match = _match_code(item, vocabulary, where)
        if match is None and text is not None:
            match = vocabulary.match_text(text)
        shown = text if text is not None else _code_text(item)
        if shown is None:
            raise PatientJsonError(f"{where}: needs 'drug' (a name or product description) or a code")
        stop = _date(item.get("stop"), f"{where}.stop", required=False)
        # Without a start date we only know the medicine was taken on its stop date or, if ongoing, on as_of.
        start = _date(item.get("start"), f"{where}.start", required=False) or min(stop or as_of, as_of)
        if stop is not None and stop < start:
            raise PatientJsonError(f"{where}.stop: {stop} is before the start {start}")
        if match is None or not match.matched:
            # Reported as unknown; a partly matched product still contributes the ingredients it named.
            unknown.append(str(shown))
            if match is None or not match.ingredients:
                continue
        if match.route in LOCAL_ROUTES:
            local.append(str(shown))
            continue
        out.append(Prescription(ingredients=match.ingredients, start=start, stop=stop, name=str(shown)))
    return out


def _match_code(item: dict[str, Any], vocabulary: DrugVocabulary, where: str):  # noqa: ANN202 - DrugMatch | None
    pairs = [(system, item[system]) for system in _CODE_FIELDS if item.get(system) not in (None, "")]
    if item.get("code") not in (None, ""):
        system = item.get("system")
        if not isinstance(system, str) or system.strip().lower() not in _CODE_FIELDS:
            raise PatientJsonError(f"{where}.system: expected one of {', '.join(_CODE_FIELDS)} with 'code'")
        pairs.append((system.strip().lower(), item["code"]))
    for system, code in pairs:
        if not isinstance(code, str | int) or isinstance(code, bool):
            raise PatientJsonError(f"{where}.{system}: expected a code, got {code!r}")
        match = vocabulary.match_code(system, code)
        if match is not None:
            return match
    return None


def _code_text(item: dict[str, Any]) -> str | None:
    for system in _CODE_FIELDS:
        if item.get(system) not in (None, ""):
            return f"{system}:{item[system]}"
    if item.get("code") not in (None, ""):
        return f"{item.get('system')}:{item['code']}"
    return None


def _labs(value: Any, unknown: list[str]) -> list[LabResult]:
    out = []
    for where, item in _items(value, "labs"):
        name = item.get("name")
        if not isinstance(name, str) or not name.strip():
            raise PatientJsonError(f"{where}.name: a lab name is required")
        when = _date(item.get("date"), f"{where}.date")
        raw = item.get("value")
        if raw is not None and (isinstance(raw, bool) or not isinstance(raw, int | float)):
            raise PatientJsonError(f"{where}.value: expected a number or null, got {raw!r}")
        key = name.strip().lower()
        if key not in LAB_NAMES:
            unknown.append(name)
            continue
        out.append(LabResult(name=key, date=when, value=None if raw is None else float(raw)))  # type: ignore[arg-type]
    return out


def _events(value: Any, unknown: list[str]) -> list[Event]:
    out = []
    for where, item in _items(value, "events"):
        kind = item.get("type")
        if not isinstance(kind, str) or not kind.strip():
            raise PatientJsonError(f"{where}.type: an event type is required")
        when = _date(item.get("date"), f"{where}.date")
        key = kind.strip().lower()
        if key not in EVENT_TYPES:
            unknown.append(kind)
            continue
        out.append(Event(type=key, date=when))  # type: ignore[arg-type]
    return out


def _social_care(value: Any, unknown: list[str]) -> list[SocialCare]:
    out = []
    for where, item in _items(value, "social_care"):
        kind = item.get("kind")
        if not isinstance(kind, str) or not kind.strip():
            raise PatientJsonError(f"{where}.kind: a social care kind is required")
        start = _date(item.get("start"), f"{where}.start")
        end = _date(item.get("end"), f"{where}.end", required=False)
        if kind.strip().lower() not in SOCIAL_CARE_KINDS:
            unknown.append(kind)
            continue
        out.append(SocialCare(kind=kind.strip().lower(), start=start, end=end))  # type: ignore[arg-type]
    return out
