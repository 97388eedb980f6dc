"""One patient's coded history, the input of the safety engine and the scores.

These are plain frozen dataclasses so that both front ends (the Patient JSON of ``dynairx flags`` and the
whole-population path over canonical tables) build the same thing and share one implementation of the rule
semantics. Keys are the canonical vocabulary keys (drug ingredients, condition keys, lab and event types);
mapping from source codes happens before a record is built.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date


@dataclass(frozen=True, slots=True)
class Prescription:
    """A course of a medicine: active on every day from ``start`` to ``stop`` inclusive (``None`` = ongoing).

    ``ingredients`` holds every drug key of the product, so a combination product (co-amilofruse) contributes
    each of its ingredients (amiloride, furosemide).
    """

    ingredients: tuple[str, ...]
    start: date
    stop: date | None = None
    name: str = ""


@dataclass(frozen=True, slots=True)
class ConditionEpisode:
    """A coded condition, active from ``onset`` to ``resolved`` inclusive (``None`` = still active)."""

    key: str
    onset: date
    resolved: date | None = None


@dataclass(frozen=True, slots=True)
class LabResult:
    """An observation; ``value`` is ``None`` when only the fact and date of the test are known."""

    name: str
    date: date
    value: float | None = None


@dataclass(frozen=True, slots=True)
class Event:
    """A dated event of the canonical ``event`` table (fall, fracture, emergency_admission, ...)."""

    type: str
    date: date


@dataclass(frozen=True, slots=True)
class SocialCare:
    """A period of social care (care_home, home_care, lives_alone, unpaid_carer), inclusive dates."""

    kind: str
    start: date
    end: date | None = None


@dataclass(frozen=True, slots=True)
class PatientRecord:
    """Everything the engine needs about one patient.

    ``birth_date`` is exact when known; from a year and month of birth it is the 1st of that month (the convention
    of TPP and OpenSAFELY), and from an age at a date it is the middle of the possible range (see
    ``birth_date_from_age``).
    """

    patient_id: str
    birth_date: date
    sex: str | None = None
    conditions: tuple[ConditionEpisode, ...] = ()
    prescriptions: tuple[Prescription, ...] = ()
    labs: tuple[LabResult, ...] = ()
    events: tuple[Event, ...] = ()
    social_care: tuple[SocialCare, ...] = field(default=())


def birth_date_from_year_month(year: int, month: int) -> date:
    """The birth date assumed from a year and month of birth: the 1st of the month (as TPP/OpenSAFELY do)."""
    return date(int(year), int(month), 1)


def birth_date_from_age(age: int, on: date) -> date:
    """The birth date assumed from the age in completed years on ``on``.

    The true birthday lies anywhere in the year before ``on`` minus ``age`` years; we take the middle
    (``on - 182 days - age years``), so a patient reported as 65 is 65 on ``on`` and was already 65 for half a
    year before it, rather than assuming either extreme.
    """
    anchor = date.fromordinal(on.toordinal() - 182)
    return add_years(anchor, -int(age))


def add_years(day: date, years: int) -> date:
    """``day`` moved by whole years; 29 February maps to 28 February in non-leap years."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return day.replace(year=day.year + years, day=28)


def age_on(birth_date: date, day: date) -> int:
    """Age in completed years on ``day`` (a 29 February birthday falls on 28 February, as in ``add_years``)."""
    years = day.year - birth_date.year
    if add_years(birth_date, years) > day:
        years -= 1
    return years
