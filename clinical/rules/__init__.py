"""Load and validate the declarative safety rules in ``clinical/rules/*.yaml``.

The rule format is specified in ``FORMAT.md`` beside this file. Rules are data, not code, so that a pharmacist can
read and review each criterion next to its citation, and so that one engine (``clinical.engine``) gives every rule
the same temporal semantics. This module turns YAML into frozen dataclasses and refuses anything it does not
understand: an unknown key, a missing field or a bad value fails loading with the file and the rule id, because a
silently ignored typo would weaken a safety rule without anyone noticing.

Whether every class, drug and condition key exists in the vocabularies is checked by ``vocabulary_problems``
(used by the engine when it compiles the rules and by a unit test), kept separate so the structure can be
validated without loading the vocabularies.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

# libyaml's safe loader when available: ten times faster than the pure-Python one, same safe semantics.
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

RULES_DIR = Path(__file__).resolve().parent

FAMILIES = ("STOPP", "START", "PINCER", "DDI", "ACB", "STOPPFrail", "AKI", "CASCADE")
SEVERITIES = ("high", "moderate", "low")
LAB_NAMES = (
    "egfr",
    "creatinine",
    "potassium",
    "sodium",
    "hba1c",
    "systolic_bp",
    "alt",
    "haemoglobin",
    "inr",
    "lithium",
    "tsh",
    "bmi",
)
LAB_OPS = ("<", "<=", ">", ">=")
EVENT_TYPES = (
    "emergency_admission",
    "ae_attendance",
    "fall",
    "fracture",
    "gi_bleed",
    "aki",
    "hypoglycaemia",
    "death",
    "medication_review",
)
SOCIAL_CARE_KINDS = ("care_home", "home_care", "lives_alone", "unpaid_carer")
EFI_CATEGORIES = ("fit", "mild", "moderate", "severe")

_RULE_KEYS = {
    "id",
    "family",
    "source",
    "title",
    "severity",
    "rationale",
    "recommendation",
    "evidence",
    "suggest",
    "when",
}
_REQUIRED_RULE_KEYS = (
    "id",
    "family",
    "source",
    "title",
    "severity",
    "rationale",
    "recommendation",
    "evidence",
)
_FILE_KEYS = {"source", "defaults", "rules", "omitted"}
_SOURCE_KEYS = {"key", "name", "citation", "url"}
_OMITTED_KEYS = {"criterion", "text", "reason"}
_WHEN_KEYS = {
    "age_min",
    "age_max",
    "sex",
    "drugs",
    "no_drugs",
    "conditions",
    "conditions_ever",
    "no_conditions",
    "no_conditions_ever",
    "lab",
    "lab_missing",
    "events",
    "no_events",
    "acb_min",
    "medicines_min",
    "efi_min",
    "efi_category",
    "social_care",
    "no_social_care",
    "any_of",
    "all_of",
    "cascade",
}
# Keys that can make a rule true on their own; a block built only of absences ("no NSAID") would flag everyone.
_POSITIVE_KEYS = {
    "drugs",
    "conditions",
    "conditions_ever",
    "lab",
    "lab_missing",
    "events",
    "acb_min",
    "medicines_min",
    "efi_min",
    "efi_category",
    "social_care",
    "any_of",
    "all_of",
    "cascade",
}


class RuleError(ValueError):
    """A rule file does not follow FORMAT.md; the message names the file, the rule id and the problem."""


@dataclass(frozen=True, slots=True)
class DrugRequirement:
    """Some drugs that must be active: ``min_count`` distinct drugs matching ``refs`` but not ``exclude``."""

    refs: tuple[str, ...]
    exclude: tuple[str, ...] = ()
    min_count: int = 1
    duration_min_days: int | None = None


@dataclass(frozen=True, slots=True)
class LabTest:
    """The latest non-null result of ``name``, dated within ``within_days``, compared with ``value``."""

    name: str
    op: str
    value: float
    within_days: int


@dataclass(frozen=True, slots=True)
class LabMissing:
    """No result (null values count as results) of any of ``names`` dated within ``within_days``."""

    names: tuple[str, ...]
    within_days: int


@dataclass(frozen=True, slots=True)
class EventRequirement:
    """At least ``min_count`` events of ``types`` within ``within_days`` (``None``: ever before the day)."""

    types: tuple[str, ...]
    within_days: int | None = None
    min_count: int = 1


@dataclass(frozen=True, slots=True)
class Cascade:
    """A prescribing cascade: a ``marker`` drug (B) started 1 to ``within_days`` days after the start of continuous
    use of an ``index`` drug (A), while A is still taken (see FORMAT.md, "Prescribing cascades")."""

    index: tuple[str, ...]
    marker: tuple[str, ...]
    within_days: int


@dataclass(frozen=True, slots=True)
class When:
    """A conjunction of criteria; every field left at its default does not constrain the day."""

    age_min: int | None = None
    age_max: int | None = None
    sex: str | None = None
    drugs: tuple[DrugRequirement, ...] = ()
    no_drugs: tuple[str, ...] = ()
    conditions: tuple[str, ...] = ()
    conditions_ever: tuple[str, ...] = ()
    no_conditions: tuple[str, ...] = ()
    no_conditions_ever: tuple[str, ...] = ()
    lab: tuple[LabTest, ...] = ()
    lab_missing: tuple[LabMissing, ...] = ()
    events: tuple[EventRequirement, ...] = ()
    no_events: tuple[EventRequirement, ...] = ()
    acb_min: int | None = None
    medicines_min: int | None = None
    efi_min: float | None = None
    efi_category: tuple[str, ...] = ()
    social_care: tuple[str, ...] = ()
    no_social_care: tuple[str, ...] = ()
    any_of: tuple[When, ...] = ()
    all_of: tuple[When, ...] = ()
    cascade: Cascade | None = None


@dataclass(frozen=True, slots=True)
class Rule:
    """One published criterion with its metadata and the ``when`` block that decides, day by day, if it holds."""

    id: str
    family: str
    source: str
    title: str
    severity: str
    rationale: str
    recommendation: str
    evidence: str
    when: When
    suggest: tuple[str, ...] = ()
    file: str = ""


@dataclass(frozen=True, slots=True)
class Omission:
    """A published criterion deliberately not encoded, with the reason (listed in docs/rules.md)."""

    criterion: str
    text: str
    reason: str
    source: str


@dataclass(frozen=True, slots=True)
class RuleSource:
    """The publication a rule file encodes."""

    key: str
    name: str
    citation: str
    url: str
    file: str


@dataclass(frozen=True, slots=True)
class RuleBook:
    """Every rule of every file, with the sources and the published criteria left out."""

    rules: tuple[Rule, ...]
    sources: tuple[RuleSource, ...]
    omitted: tuple[Omission, ...] = field(default=())

    def by_id(self) -> dict[str, Rule]:
        """Rules keyed by id."""
        return {rule.id: rule for rule in self.rules}


def rule_files(directory: Path = RULES_DIR) -> list[Path]:
    """The rule files, in a stable order."""
    return sorted(p for p in directory.glob("*.yaml") if p.is_file())


def load_rules(directory: Path | str | None = None) -> RuleBook:
    """Load and structurally validate every ``*.yaml`` file in ``directory`` (default: this package)."""
    base = Path(directory) if directory is not None else RULES_DIR
    return _load_cached(str(base.resolve()), _directory_signature(base))


def _directory_signature(base: Path) -> tuple[tuple[str, float, int], ...]:
    # Part of the cache key so that a rule file edited during a session (or in a test) is re-read.
    return tuple((p.name, p.stat().st_mtime, p.stat().st_size) for p in rule_files(base))


@lru_cache(maxsize=8)
def _load_cached(base: str, signature: tuple[tuple[str, float, int], ...]) -> RuleBook:
    rules: list[Rule] = []
    sources: list[RuleSource] = []
    omitted: list[Omission] = []
    for path in rule_files(Path(base)):
        source, file_rules, file_omitted = parse_rule_file(path)
        sources.append(source)
        rules.extend(file_rules)
        omitted.extend(file_omitted)
    _check_unique(rules, sources)
    return RuleBook(rules=tuple(rules), sources=tuple(sources), omitted=tuple(omitted))


def parse_rule_file(path: Path) -> tuple[RuleSource, list[Rule], list[Omission]]:
    """Parse one rule file; raises ``RuleError`` naming the file (and rule id) on any problem."""
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_YAML_LOADER)
    except yaml.YAMLError as exc:
        raise RuleError(f"{path.name}: not valid YAML: {exc}") from exc
    return parse_rule_document(data, path.name)


def parse_rule_document(data: Any, filename: str) -> tuple[RuleSource, list[Rule], list[Omission]]:
    """Parse an already-loaded rule document (a mapping with ``source``, ``rules`` ...)."""
    where = filename
    if not isinstance(data, dict):
        raise RuleError(f"{where}: the file must be a mapping with 'source' and 'rules'")
    _no_unknown_keys(data, _FILE_KEYS, where)
    source = _parse_source(data.get("source"), filename)
    defaults = data.get("defaults") or {}
    if not isinstance(defaults, dict):
        raise RuleError(f"{where}: 'defaults' must be a mapping")
    _no_unknown_keys(defaults, _RULE_KEYS - {"id", "when"}, f"{where} defaults")
    raw_rules = data.get("rules")
    if not isinstance(raw_rules, list) or not raw_rules:
        raise RuleError(f"{where}: 'rules' must be a non-empty list")
    rules = [
        _parse_rule({**defaults, **raw}, filename) if isinstance(raw, dict) else _bad_rule(raw, where)
        for raw in raw_rules
    ]
    omitted = [_parse_omission(item, source, where) for item in data.get("omitted") or []]
    return source, rules, omitted


def _bad_rule(raw: Any, where: str) -> Rule:
    raise RuleError(f"{where}: every item of 'rules' must be a mapping, got {raw!r}")


def _parse_source(raw: Any, filename: str) -> RuleSource:
    if not isinstance(raw, dict):
        raise RuleError(f"{filename}: 'source' must be a mapping with key, name and citation")
    _no_unknown_keys(raw, _SOURCE_KEYS, f"{filename} source")
    for key in ("key", "name", "citation"):
        if not isinstance(raw.get(key), str) or not raw[key].strip():
            raise RuleError(f"{filename}: source.{key} is required")
    return RuleSource(
        key=raw["key"],
        name=raw["name"],
        citation=raw["citation"],
        url=str(raw.get("url") or ""),
        file=filename,
    )


def _parse_omission(raw: Any, source: RuleSource, where: str) -> Omission:
    if not isinstance(raw, dict):
        raise RuleError(f"{where}: each 'omitted' item must be a mapping with criterion, text and reason")
    _no_unknown_keys(raw, _OMITTED_KEYS, f"{where} omitted")
    for key in ("criterion", "reason"):
        if not isinstance(raw.get(key), str) or not raw[key].strip():
            raise RuleError(f"{where}: omitted item {raw.get('criterion')!r} needs a '{key}'")
    return Omission(
        criterion=raw["criterion"], text=str(raw.get("text") or ""), reason=raw["reason"], source=source.name
    )


def _parse_rule(raw: dict[str, Any], filename: str) -> Rule:
    rule_id = raw.get("id")
    if not isinstance(rule_id, str) or not rule_id.strip():
        raise RuleError(f"{filename}: a rule has no 'id'")
    where = f"{filename} rule {rule_id}"
    _no_unknown_keys(raw, _RULE_KEYS, where)
    for key in _REQUIRED_RULE_KEYS:
        value = raw.get(key)
        if not isinstance(value, str) or not value.strip():
            raise RuleError(f"{where}: '{key}' is required and must be text")
    if raw["family"] not in FAMILIES:
        raise RuleError(f"{where}: family {raw['family']!r} is not one of {', '.join(FAMILIES)}")
    if not rule_id.startswith(raw["family"] + "-"):
        raise RuleError(f"{where}: the id must start with the family prefix '{raw['family']}-'")
    if raw["severity"] not in SEVERITIES:
        raise RuleError(f"{where}: severity {raw['severity']!r} is not one of {', '.join(SEVERITIES)}")
    if "when" not in raw:
        raise RuleError(f"{where}: 'when' is required")
    when = _parse_when(raw["when"], where)
    if any(block.cascade is not None for block in iter_when_blocks(when) if block is not when):
        raise RuleError(f"{where}: 'cascade' is allowed only in the rule's top-level 'when' block")
    if not _has_positive(when):
        raise RuleError(
            f"{where}: 'when' needs at least one positive criterion (drugs, conditions, lab, ...)"
        )
    suggest = _ref_list(raw.get("suggest"), f"{where} suggest", allow_bare=True)
    return Rule(
        id=rule_id,
        family=raw["family"],
        source=raw["source"],
        title=raw["title"].strip(),
        severity=raw["severity"],
        rationale=raw["rationale"].strip(),
        recommendation=raw["recommendation"].strip(),
        evidence=raw["evidence"].strip(),
        when=when,
        suggest=suggest,
        file=filename,
    )


def _parse_when(raw: Any, where: str) -> When:
    if not isinstance(raw, dict) or not raw:
        raise RuleError(f"{where}: 'when' must be a non-empty mapping")
    _no_unknown_keys(raw, _WHEN_KEYS, f"{where} when")
    values: dict[str, Any] = {}
    for key in ("age_min", "age_max", "acb_min", "medicines_min"):
        if key in raw:
            values[key] = _int(raw[key], f"{where} {key}", minimum=0)
    if "sex" in raw:
        if raw["sex"] not in ("F", "M"):
            raise RuleError(f"{where}: sex must be 'F' or 'M'")
        values["sex"] = raw["sex"]
    if "efi_min" in raw:
        value = raw["efi_min"]
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
            raise RuleError(f"{where}: efi_min must be a number between 0 and 1")
        values["efi_min"] = float(value)
    if "efi_category" in raw:
        values["efi_category"] = _choice_list(raw["efi_category"], EFI_CATEGORIES, f"{where} efi_category")
    for key in ("social_care", "no_social_care"):
        if key in raw:
            values[key] = _choice_list(raw[key], SOCIAL_CARE_KINDS, f"{where} {key}")
    if "drugs" in raw:
        values["drugs"] = _drug_requirements(raw["drugs"], where)
    if "cascade" in raw:
        values["cascade"] = _cascade(raw["cascade"], where)
    if "no_drugs" in raw:
        values["no_drugs"] = _ref_list(raw["no_drugs"], f"{where} no_drugs")
    for key in ("conditions", "conditions_ever", "no_conditions", "no_conditions_ever"):
        if key in raw:
            values[key] = _condition_list(raw[key], f"{where} {key}")
    if "lab" in raw:
        values["lab"] = tuple(_lab_test(item, where) for item in _list(raw["lab"], f"{where} lab"))
    if "lab_missing" in raw:
        values["lab_missing"] = tuple(
            _lab_missing(item, where) for item in _list(raw["lab_missing"], f"{where} lab_missing")
        )
    for key in ("events", "no_events"):
        if key in raw:
            values[key] = tuple(
                _event_requirement(item, f"{where} {key}", allow_count=key == "events")
                for item in _list(raw[key], f"{where} {key}")
            )
    for key in ("any_of", "all_of"):
        if key in raw:
            blocks = _list(raw[key], f"{where} {key}")
            if len(blocks) < 2 and key == "any_of":
                raise RuleError(f"{where}: any_of needs at least two alternatives")
            values[key] = tuple(_parse_when(block, f"{where} {key}[{i}]") for i, block in enumerate(blocks))
    if values.get("age_min") is not None and values.get("age_max") is not None:
        if values["age_min"] > values["age_max"]:
            raise RuleError(f"{where}: age_min is above age_max")
    return When(**values)


def _has_positive(when: When) -> bool:
    return any(getattr(when, key) not in (None, ()) for key in _POSITIVE_KEYS) or (
        when.age_min is not None and when.sex is not None
    )


def _drug_requirements(raw: Any, where: str) -> tuple[DrugRequirement, ...]:
    out = []
    for item in _list(raw, f"{where} drugs"):
        if isinstance(item, str):
            out.append(DrugRequirement(refs=(_ref(item, f"{where} drugs"),)))
            continue
        if not isinstance(item, dict):
            raise RuleError(f"{where}: a drug requirement must be a ref string or a mapping, got {item!r}")
        _no_unknown_keys(item, {"any", "exclude", "min_count", "duration_min_days"}, f"{where} drugs")
        if "any" not in item:
            raise RuleError(f"{where}: a drug requirement mapping needs 'any'")
        duration = item.get("duration_min_days")
        out.append(
            DrugRequirement(
                refs=_ref_list(item["any"], f"{where} drugs.any"),
                exclude=_ref_list(item.get("exclude"), f"{where} drugs.exclude"),
                min_count=_int(item.get("min_count", 1), f"{where} min_count", minimum=1),
                duration_min_days=None
                if duration is None
                else _int(duration, f"{where} duration", minimum=1),
            )
        )
    if not out:
        raise RuleError(f"{where}: 'drugs' must not be empty")
    return tuple(out)


def _cascade(raw: Any, where: str) -> Cascade:
    if not isinstance(raw, dict):
        raise RuleError(f"{where}: 'cascade' must be a mapping with index, marker and within_days")
    _no_unknown_keys(raw, {"index", "marker", "within_days"}, f"{where} cascade")
    for key in ("index", "marker", "within_days"):
        if key not in raw:
            raise RuleError(f"{where}: cascade needs '{key}'")
    index = _ref_list(raw["index"], f"{where} cascade.index")
    marker = _ref_list(raw["marker"], f"{where} cascade.marker")
    if not index or not marker:
        raise RuleError(f"{where}: cascade index and marker must not be empty")
    if set(index) & set(marker):
        raise RuleError(f"{where}: cascade index and marker name the same drugs")
    return Cascade(
        index=index, marker=marker, within_days=_int(raw["within_days"], f"{where} cascade", minimum=1)
    )


def _lab_test(raw: Any, where: str) -> LabTest:
    if not isinstance(raw, dict):
        raise RuleError(f"{where}: a lab test must be a mapping with name, op, value, within_days")
    _no_unknown_keys(raw, {"name", "op", "value", "within_days"}, f"{where} lab")
    name = raw.get("name")
    if name not in LAB_NAMES:
        raise RuleError(f"{where}: lab name {name!r} is not one of {', '.join(LAB_NAMES)}")
    if raw.get("op") not in LAB_OPS:
        raise RuleError(f"{where}: lab op {raw.get('op')!r} is not one of {', '.join(LAB_OPS)}")
    value = raw.get("value")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RuleError(f"{where}: lab value must be a number")
    if "within_days" not in raw:
        raise RuleError(f"{where}: lab test on {name} needs within_days")
    return LabTest(
        name=name, op=raw["op"], value=float(value), within_days=_int(raw["within_days"], where, minimum=0)
    )


def _lab_missing(raw: Any, where: str) -> LabMissing:
    if not isinstance(raw, dict):
        raise RuleError(f"{where}: a lab_missing item must be a mapping with name and within_days")
    _no_unknown_keys(raw, {"name", "within_days"}, f"{where} lab_missing")
    names = raw.get("name")
    names = (names,) if isinstance(names, str) else tuple(names or ())
    if not names or any(name not in LAB_NAMES for name in names):
        raise RuleError(f"{where}: lab_missing name {raw.get('name')!r} must be lab names of {LAB_NAMES}")
    if "within_days" not in raw:
        raise RuleError(f"{where}: lab_missing needs within_days")
    return LabMissing(names=names, within_days=_int(raw["within_days"], where, minimum=0))


def _event_requirement(raw: Any, where: str, allow_count: bool) -> EventRequirement:
    if not isinstance(raw, dict):
        raise RuleError(f"{where}: an event item must be a mapping with type (and within_days)")
    allowed = {"type", "within_days", "min_count"} if allow_count else {"type", "within_days"}
    _no_unknown_keys(raw, allowed, where)
    types = raw.get("type")
    types = (types,) if isinstance(types, str) else tuple(types or ())
    if not types or any(t not in EVENT_TYPES for t in types):
        raise RuleError(f"{where}: event type {raw.get('type')!r} must be among {', '.join(EVENT_TYPES)}")
    within = raw.get("within_days")
    return EventRequirement(
        types=types,
        within_days=None if within is None else _int(within, where, minimum=0),
        min_count=_int(raw.get("min_count", 1), where, minimum=1),
    )


def _ref(value: Any, where: str) -> str:
    if not isinstance(value, str) or ":" not in value:
        raise RuleError(f"{where}: {value!r} is not a ref of the form 'class:<key>' or 'drug:<key>'")
    kind, _, key = value.partition(":")
    if kind not in ("class", "drug") or not key:
        raise RuleError(f"{where}: {value!r} is not a ref of the form 'class:<key>' or 'drug:<key>'")
    return value


def _ref_list(raw: Any, where: str, allow_bare: bool = False) -> tuple[str, ...]:
    if raw is None:
        return ()
    items = [raw] if isinstance(raw, str) else _list(raw, where)
    if allow_bare:
        for item in items:
            if not isinstance(item, str) or not item:
                raise RuleError(f"{where}: {item!r} must be a class or drug key")
        return tuple(items)
    return tuple(_ref(item, where) for item in items)


def _condition_list(raw: Any, where: str) -> tuple[str, ...]:
    items = [raw] if isinstance(raw, str) else _list(raw, where)
    for item in items:
        if not isinstance(item, str) or not item or (item.startswith("group:") and len(item) == 6):
            raise RuleError(f"{where}: {item!r} must be a condition key or 'group:<group>'")
    if not items:
        raise RuleError(f"{where}: must not be empty")
    return tuple(items)


def _choice_list(raw: Any, choices: tuple[str, ...], where: str) -> tuple[str, ...]:
    items = [raw] if isinstance(raw, str) else _list(raw, where)
    bad = [item for item in items if item not in choices]
    if bad or not items:
        raise RuleError(f"{where}: {bad or items!r} must be among {', '.join(choices)}")
    return tuple(items)


def _list(raw: Any, where: str) -> list[Any]:
    if not isinstance(raw, list):
        raise RuleError(f"{where}: expected a list, got {type(raw).__name__}")
    return raw


def _int(raw: Any, where: str, minimum: int) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int) or raw < minimum:
        raise RuleError(f"{where}: expected a whole number ≥ {minimum}, got {raw!r}")
    return raw


def _no_unknown_keys(raw: dict[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise RuleError(f"{where}: unknown key(s) {', '.join(map(str, unknown))}")


def _check_unique(rules: list[Rule], sources: list[RuleSource]) -> None:
    seen: dict[str, str] = {}
    for rule in rules:
        if rule.id in seen:
            raise RuleError(f"rule id {rule.id} is defined twice ({seen[rule.id]} and {rule.file})")
        seen[rule.id] = rule.file
    keys: dict[str, str] = {}
    for source in sources:
        if source.key in keys:
            raise RuleError(f"source key {source.key} is used by {keys[source.key]} and {source.file}")
        keys[source.key] = source.file


def iter_when_blocks(when: When):
    """Yield ``when`` and every nested ``any_of``/``all_of`` block (for checks that walk all criteria)."""
    yield when
    for block in (*when.any_of, *when.all_of):
        yield from iter_when_blocks(block)


def referenced_keys(rule: Rule) -> dict[str, set[str]]:
    """Every vocabulary key a rule names: ``{"class": ..., "drug": ..., "condition": ..., "group": ...}``."""
    found: dict[str, set[str]] = {"class": set(), "drug": set(), "condition": set(), "group": set()}
    refs: list[str] = []
    for block in iter_when_blocks(rule.when):
        for requirement in block.drugs:
            refs.extend(requirement.refs)
            refs.extend(requirement.exclude)
        refs.extend(block.no_drugs)
        if block.cascade is not None:
            refs.extend((*block.cascade.index, *block.cascade.marker))
        for key in (
            *block.conditions,
            *block.conditions_ever,
            *block.no_conditions,
            *block.no_conditions_ever,
        ):
            if key.startswith("group:"):
                found["group"].add(key.removeprefix("group:"))
            else:
                found["condition"].add(key)
    for ref in refs:
        kind, _, key = ref.partition(":")
        found[kind].add(key)
    return found


def vocabulary_problems(
    book: RuleBook, class_keys: set[str], drug_keys: set[str], condition_keys: set[str], group_keys: set[str]
) -> list[str]:
    """Each reference to a key missing from the vocabularies, as 'RULE-ID: unknown <kind> <key>'.

    ``suggest`` entries may be a class or a drug key.
    """
    problems: list[str] = []
    known = {"class": class_keys, "drug": drug_keys, "condition": condition_keys, "group": group_keys}
    for rule in book.rules:
        for kind, keys in referenced_keys(rule).items():
            for key in sorted(keys - known[kind]):
                problems.append(f"{rule.id}: unknown {kind} {key!r}")
        for key in rule.suggest:
            if key not in class_keys and key not in drug_keys:
                problems.append(f"{rule.id}: unknown suggest key {key!r} (neither a class nor a drug)")
    return problems
