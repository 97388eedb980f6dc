"""Small builders for safety-engine tests: readable patients in a line or two, and their flag periods.

Dates are ISO strings for readability; ``AS_OF`` is the default evaluation day. The engine built here runs the
rule files of the engine helper (PINCER, interactions, ACB, AKI) against the real vocabularies.
"""

from __future__ import annotations

from datetime import date
from functools import lru_cache

from clinical.engine import FlagPeriod, SafetyEngine
from clinical.knowledge import load_knowledge
from clinical.record import (
    ConditionEpisode,
    Event,
    LabResult,
    PatientRecord,
    Prescription,
    SocialCare,
    add_years,
)
from clinical.rules import RULES_DIR, RuleBook, parse_rule_file

AS_OF = date(2025, 6, 30)
ENGINE_RULE_FILES = ("pincer.yaml", "interactions.yaml", "acb.yaml", "aki.yaml")


def day(text: str | None) -> date | None:
    return None if text is None else date.fromisoformat(text)


@lru_cache(maxsize=1)
def engine() -> SafetyEngine:
    rules, sources, omitted = [], [], []
    for name in ENGINE_RULE_FILES:
        source, file_rules, file_omitted = parse_rule_file(RULES_DIR / name)
        sources.append(source)
        rules.extend(file_rules)
        omitted.extend(file_omitted)
    return SafetyEngine(RuleBook(tuple(rules), tuple(sources), tuple(omitted)), load_knowledge())


def patient(
    age: int = 70,
    sex: str = "F",
    drugs: tuple = (),
    conditions: tuple = (),
    labs: tuple = (),
    events: tuple = (),
    social: tuple = (),
    as_of: date = AS_OF,
) -> PatientRecord:
    """A patient aged ``age`` on ``as_of`` (birthday a year before ``as_of`` minus ``age`` years, plus a day).

    drugs: (drug or tuple of ingredients, start, stop); conditions: (key, onset[, resolved]);
    labs: (name, date, value); events: (type, date); social: (kind, start[, end]).
    """
    birth = add_years(date.fromordinal(as_of.toordinal() - 364), -age)
    return PatientRecord(
        patient_id="test",
        birth_date=birth,
        sex=sex,
        prescriptions=tuple(
            Prescription(ingredients=(d,) if isinstance(d, str) else tuple(d), start=day(s), stop=day(e))
            for d, s, e in drugs
        ),
        conditions=tuple(
            ConditionEpisode(c[0], day(c[1]), day(c[2]) if len(c) > 2 else None) for c in conditions
        ),
        labs=tuple(LabResult(name, day(when), value) for name, when, value in labs),
        events=tuple(Event(kind, day(when)) for kind, when in events),
        social_care=tuple(SocialCare(s[0], day(s[1]), day(s[2]) if len(s) > 2 else None) for s in social),
    )


def flags(record: PatientRecord, as_of: date = AS_OF) -> list[FlagPeriod]:
    return engine().evaluate(record, as_of)


def periods(record: PatientRecord, rule_id: str, as_of: date = AS_OF) -> list[tuple[str, str | None, tuple]]:
    """The periods of one rule as (start, end or None, drugs)."""
    return [
        (f.start.isoformat(), None if f.end is None else f.end.isoformat(), f.drugs)
        for f in flags(record, as_of)
        if f.rule_id == rule_id
    ]


def active_now(record: PatientRecord, rule_id: str, as_of: date = AS_OF) -> bool:
    return any(end is None for _, end, _ in periods(record, rule_id, as_of))
