"""Turn the simulation's array records into the canonical tables (polars frames, columns of data_access.schema).

Codes, terms and drug metadata come from the clinical vocabularies so that each concept has one home:
condition code/term/key from conditions.yaml (CKD with the SNOMED CT concept of its stage); drug key, ingredients,
BNF section and ATC from drugs.csv; the BNF chemical-substance code from bnf_chemicals.csv where the vocabulary has
one (``code_system`` 'bnf'), otherwise the product is recorded as text (``code_system`` 'text', no code).

Only what the practice could see is written: events, tests, acute courses and true risks between registration and
death/deregistration; conditions from before registration (transferred records) are kept.
"""

from __future__ import annotations

import csv

import numpy as np
import polars as pl

from clinical.vocabulary import DATA_DIR, DrugVocabulary
from data_access.sources.synthetic.calendar import NO_DATE
from data_access.sources.synthetic.demography import ETHNIC_GROUPS
from data_access.sources.synthetic.engine import (
    EVENT_TYPES,
    FAR_FUTURE,
    OBSERVATION_TYPES,
    OUTCOMES,
    Simulation,
)
from data_access.sources.synthetic.physiology import CKD_STAGE_SNOMED, UNITS
from data_access.sources.synthetic.social import SOCIAL_KINDS

SOURCE = "synthetic"
TABLES = (
    "practice",
    "patient",
    "social_care",
    "condition",
    "prescription",
    "observation",
    "event",
    "synthetic_truth",
)


def build_frames(sim: Simulation) -> dict[str, pl.DataFrame]:
    d = sim.demography
    n = d.size
    ids = pl.Series("id", [f"S{i + 1:07d}" for i in range(n)], dtype=pl.String)
    died = sim.died_day
    registered = np.where(died != NO_DATE, np.minimum(d.registered_day, died), d.registered_day).astype(
        np.int32
    )
    last_seen = np.minimum.reduce(
        [
            np.where(died == NO_DATE, FAR_FUTURE, died),
            np.where(d.deregistered_day == NO_DATE, FAR_FUTURE, d.deregistered_day),
            np.full(n, sim.grid.last_day),
        ]
    ).astype(np.int32)
    frames = {
        "practice": _practices(sim),
        "patient": _patients(sim, ids, registered),
        "social_care": _social(sim, ids, registered, last_seen),
        "condition": _conditions(sim, ids, last_seen),
        "prescription": _prescriptions(sim, ids, registered, last_seen),
        "observation": _observations(sim, ids, registered, last_seen),
        "event": _events(sim, ids, registered, last_seen),
        "synthetic_truth": _truth(sim, ids),
    }
    return frames


# ---------------------------------------------------------------------- helpers
def _nullable_dates(days: np.ndarray) -> pl.Series:
    values = pl.Series(days.astype(np.int32)).cast(pl.Date)
    mask = pl.Series(days == NO_DATE)
    return pl.select(pl.when(mask).then(None).otherwise(values)).to_series()


def _gather(values: list[str] | list[str | None], index: np.ndarray) -> pl.Series:
    return pl.Series(values, dtype=pl.String).gather(pl.Series(index.astype(np.int64)))


def _concat(chunks: list[np.ndarray], dtype: type) -> np.ndarray:
    return np.concatenate(chunks).astype(dtype) if chunks else np.empty(0, dtype=dtype)


def _order(*keys: np.ndarray) -> np.ndarray:
    """Row order by the given keys, first key most significant (stable)."""
    return np.lexsort(tuple(reversed(keys)))


# ---------------------------------------------------------------------- tables
def _practices(sim: Simulation) -> pl.DataFrame:
    p = sim.practices
    return pl.DataFrame(
        {"id": p.ids, "name": p.names, "icb": [p.icb] * len(p.ids)},
        schema={"id": pl.String, "name": pl.String, "icb": pl.String},
    )


def _patients(sim: Simulation, ids: pl.Series, registered: np.ndarray) -> pl.DataFrame:
    d = sim.demography
    return pl.DataFrame(
        {
            "id": ids,
            "practice_id": _gather(sim.practices.ids, d.practice),
            "birth_year": pl.Series(d.birth_year, dtype=pl.Int32),
            "birth_month": pl.Series(d.birth_month, dtype=pl.Int32),
            "sex": _gather(["F", "M"], d.male.astype(np.int64)),
            "deprivation_quintile": pl.Series(d.deprivation.astype(np.int32), dtype=pl.Int32),
            "ethnicity_group": _gather(list(ETHNIC_GROUPS), d.ethnicity),
            "registered_on": _nullable_dates(registered),
            "deregistered_on": _nullable_dates(
                np.where(sim.died_day != NO_DATE, NO_DATE, d.deregistered_day)
            ),
            "died_on": _nullable_dates(sim.died_day),
            "source": pl.Series([SOURCE] * d.size, dtype=pl.String),
        }
    )


def _social(sim: Simulation, ids: pl.Series, registered: np.ndarray, last_seen: np.ndarray) -> pl.DataFrame:
    chunks = sim.records.social
    who = _concat([c[0] for c in chunks], np.int64)
    kind = (
        np.concatenate([np.full(c[0].size, c[1], dtype=np.int64) for c in chunks])
        if chunks
        else np.empty(0, np.int64)
    )
    start = _concat([c[2] for c in chunks], np.int32)
    end = _concat([c[3] for c in chunks], np.int32)
    visible = (start <= last_seen[who]) & ((end == NO_DATE) | (end >= registered[who]))
    order = _order(who[visible], start[visible], kind[visible])
    who, kind, start, end = (a[visible][order] for a in (who, kind, start, end))
    return pl.DataFrame(
        {
            "patient_id": ids.gather(pl.Series(who)),
            "kind": _gather(list(SOCIAL_KINDS), kind),
            "start": _nullable_dates(start),
            "end": _nullable_dates(end),
        }
    )


def _conditions(sim: Simulation, ids: pl.Series, last_seen: np.ndarray) -> pl.DataFrame:
    chunks = sim.records.condition
    who = _concat([c[0] for c in chunks], np.int64)
    index = _concat([c[1] for c in chunks], np.int64)
    onset = _concat([c[2] for c in chunks], np.int32)
    variant = _concat([c[3] for c in chunks], np.int64)
    vocabulary = sim.conditions
    codes, terms, keys = [], [], []
    for key in sim.condition_keys:
        condition = vocabulary.condition(key)
        variants = CKD_STAGE_SNOMED if key == "ckd" else (condition.snomed_codes[0],)
        for code in (*variants, *([variants[-1]] * (len(CKD_STAGE_SNOMED) - len(variants)))):
            if vocabulary.match(code) is None or vocabulary.match(code).key != key:
                raise ValueError(f"SNOMED CT {code} is not a code of condition {key} in conditions.yaml")
            codes.append(code)
            terms.append(condition.term)
            keys.append(key)
    lookup = index * len(CKD_STAGE_SNOMED) + variant
    visible = onset <= last_seen[who]
    order = _order(who[visible], onset[visible], index[visible])
    who, lookup, onset = (a[visible][order] for a in (who, lookup, onset))
    return pl.DataFrame(
        {
            "patient_id": ids.gather(pl.Series(who)),
            "code_system": pl.Series(["snomed"] * who.size, dtype=pl.String),
            "code": _gather(codes, lookup),
            "term": _gather(terms, lookup),
            "condition_key": _gather(keys, lookup),
            "onset": _nullable_dates(onset),
            "resolved": pl.Series([None] * who.size, dtype=pl.Date),
        }
    )


def _bnf_chemical_codes() -> dict[tuple[str, ...], str]:
    """Ingredient set -> BNF chemical-substance code (first listed), from the vocabulary's bnf_chemicals.csv."""
    out: dict[tuple[str, ...], str] = {}
    with (DATA_DIR / "bnf_chemicals.csv").open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            key = tuple(sorted(row["ingredients"].split(";")))
            out.setdefault(key, row["code"])
    return out


def _product_rows(sim: Simulation) -> tuple[dict[str, list], np.ndarray, int]:
    """Lookup rows for every (medicine, dose) and every acute course; returns rows, dose offsets, acute offset."""
    drugs = DrugVocabulary.load()
    bnf_codes = _bnf_chemical_codes()
    rows: dict[str, list] = {
        k: []
        for k in ("code_system", "code", "name", "drug_key", "ingredients", "bnf_section", "atc", "dose_text")
    }

    def add(ingredients: tuple[str, ...], product: str, text: str) -> None:
        primary = drugs.drug(ingredients[0])
        code = bnf_codes.get(tuple(sorted(ingredients)))
        if code is not None:
            match = drugs.match_code("bnf", code)
            if match is None or set(match.ingredients) != set(ingredients):
                raise ValueError(f"BNF code {code} does not map back to {ingredients}")
        rows["code_system"].append("bnf" if code else "text")
        rows["code"].append(code)
        rows["name"].append(product)
        rows["drug_key"].append(primary.key)
        rows["ingredients"].append(";".join(sorted(ingredients)))
        rows["bnf_section"].append(primary.bnf_section)
        rows["atc"].append(primary.atc)
        rows["dose_text"].append(text)

    offsets = []
    for medicine in sim.table.medicines:
        offsets.append(len(rows["name"]))
        for dose in medicine.doses:
            add(medicine.ingredients, dose.product, dose.text)
    acute_offset = len(rows["name"])
    for course in sim.table.acute:
        dose = course.medicine.doses[0]
        add(course.medicine.ingredients, dose.product, dose.text)
    return rows, np.array(offsets, dtype=np.int64), acute_offset


def _prescriptions(
    sim: Simulation, ids: pl.Series, registered: np.ndarray, last_seen: np.ndarray
) -> pl.DataFrame:
    log = sim.prescriber.log
    rows, offsets, acute_offset = _product_rows(sim)
    who = _concat(log.patient, np.int64)
    lookup = offsets[_concat(log.medicine, np.int64)] + _concat(log.dose, np.int64)
    start = _concat(log.start, np.int32)
    stop = _concat(log.stop, np.int32)
    repeat = np.ones(who.size, dtype=bool)
    acute_who = _concat(log.acute_patient, np.int64)
    acute_course = _concat(log.acute_course, np.int64)
    acute_start = _concat(log.acute_start, np.int32)
    durations = np.array([c.days for c in sim.table.acute], dtype=np.int32)
    acute_stop = acute_start + durations[acute_course] - 1 if acute_course.size else acute_start
    acute_stop = np.minimum(acute_stop, last_seen[acute_who])  # a course ends with death or deregistration
    who = np.concatenate([who, acute_who])
    lookup = np.concatenate([lookup, acute_offset + acute_course])
    start = np.concatenate([start, acute_start])
    stop = np.concatenate([stop, acute_stop.astype(np.int32)])
    repeat = np.concatenate([repeat, np.zeros(acute_who.size, dtype=bool)])
    visible = (
        (start <= last_seen[who])
        & ((stop == NO_DATE) | (stop >= registered[who]))
        & (start <= sim.grid.last_day)
    )
    order = _order(who[visible], start[visible], lookup[visible])
    who, lookup, start, stop, repeat = (a[visible][order] for a in (who, lookup, start, stop, repeat))
    index = pl.Series(lookup)
    return pl.DataFrame(
        {
            "patient_id": ids.gather(pl.Series(who)),
            **{
                k: pl.Series(rows[k], dtype=pl.String).gather(index)
                for k in ("code_system", "code", "name", "drug_key", "ingredients", "bnf_section", "atc")
            },
            "start": _nullable_dates(start),
            "stop": _nullable_dates(stop),
            "dose_text": pl.Series(rows["dose_text"], dtype=pl.String).gather(index),
            "repeat": pl.Series(repeat, dtype=pl.Boolean),
        }
    )


def _observations(
    sim: Simulation, ids: pl.Series, registered: np.ndarray, last_seen: np.ndarray
) -> pl.DataFrame:
    chunks = sim.records.observation
    who = _concat([c[0] for c in chunks], np.int64)
    kind = (
        np.concatenate([np.full(c[0].size, c[1], dtype=np.int64) for c in chunks])
        if chunks
        else np.empty(0, np.int64)
    )
    value = _concat([c[2] for c in chunks], np.float64)
    day = _concat([c[3] for c in chunks], np.int32)
    visible = (day >= registered[who]) & (day <= last_seen[who])
    order = _order(who[visible], kind[visible], day[visible])  # the order of the (patient, type, date) index
    who, kind, value, day = (a[visible][order] for a in (who, kind, value, day))
    return pl.DataFrame(
        {
            "patient_id": ids.gather(pl.Series(who)),
            "type": _gather(list(OBSERVATION_TYPES), kind),
            "value": pl.Series(value, dtype=pl.Float64),
            "unit": _gather([UNITS[t] for t in OBSERVATION_TYPES], kind),
            "date": _nullable_dates(day),
        }
    )


def _events(sim: Simulation, ids: pl.Series, registered: np.ndarray, last_seen: np.ndarray) -> pl.DataFrame:
    chunks = sim.records.event
    who = _concat([c[0] for c in chunks], np.int64)
    kind = (
        np.concatenate([np.full(c[0].size, c[1], dtype=np.int64) for c in chunks])
        if chunks
        else np.empty(0, np.int64)
    )
    day = _concat([c[2] for c in chunks], np.int32)
    visible = (day >= registered[who]) & (day <= last_seen[who])
    order = _order(who[visible], day[visible], kind[visible])
    who, kind, day = (a[visible][order] for a in (who, kind, day))
    return pl.DataFrame(
        {
            "patient_id": ids.gather(pl.Series(who)),
            "type": _gather(list(EVENT_TYPES), kind),
            "date": _nullable_dates(day),
        }
    )


def _truth(sim: Simulation, ids: pl.Series) -> pl.DataFrame:
    """One row per patient, outcome and observed month, ordered by patient, outcome, month.

    A patient's observed months are contiguous (from registration to death or deregistration), so the rows are
    laid out with integer arithmetic instead of searching a dense array: this keeps 100,000 patients x 60 months
    x 4 outcomes (about 21 million rows) within memory."""
    n, months, outcomes = sim.demography.size, sim.grid.count, len(OUTCOMES)
    dense = np.zeros((n, months, outcomes), dtype=np.float32)
    seen = np.zeros((n, months), dtype=bool)
    for who, t, risk in sim.records.truth:
        dense[who, t] = risk
        seen[who, t] = True
    counts = seen.sum(axis=1).astype(np.int64)
    first = np.where(counts > 0, seen.argmax(axis=1), 0).astype(np.int64)
    last = months - 1 - seen[:, ::-1].argmax(axis=1)
    if np.any((counts > 0) & (last - first + 1 != counts)):
        raise AssertionError("observed months of a patient are not contiguous")
    block = np.repeat(counts, outcomes)  # rows per (patient, outcome)
    patient = np.repeat(np.arange(n, dtype=np.int64), counts * outcomes)
    outcome = np.repeat(np.tile(np.arange(outcomes, dtype=np.int64), n), block)
    block_start = np.repeat(np.cumsum(block) - block, block)
    month = (np.arange(patient.size, dtype=np.int64) - block_start + first[patient]).astype(np.int64)
    del block_start, seen
    risk = np.round(dense[patient, month, outcome].astype(np.float64), 6)
    del dense
    return pl.DataFrame(
        {
            "patient_id": ids.gather(pl.Series(patient)),
            "month": pl.Series(sim.grid.month_firsts[month]).cast(pl.Date),
            "outcome": _gather(list(OUTCOMES), outcome),
            "risk": pl.Series(risk, dtype=pl.Float64),
        }
    )
