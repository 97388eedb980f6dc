"""Patterns of care across the population (researchers, ``/patterns``): prescription sequence symmetry analysis.

The statistics live in ``clinical.sequence_symmetry`` (pure polars); this module reads what they need from the
canonical tables, once per scope, and shapes the answers for the page:

- ``pattern_inputs`` reads every prescription start (one row per ingredient, so a combination product counts for
  each of its drugs) and each patient's registration date, restricted to the user's practices (``Scope``);
- the study period runs from the first day prescribing was captured to the data cut (``data_cut_date``). A GP
  record carries repeat medicines forward with their original start dates, so the earliest start in the table is
  not where complete capture begins; acute (non-repeat) issues are recorded only as they happen, so the first
  acute issue marks it. Either end can be given explicitly instead;
- ``signal_table`` screens every pair among the commonest drugs (or drug classes) and marks the published
  cascades of ``clinical/rules/cascades.yaml``; ``pair_detail`` gives one pair's ratios and the histogram of the
  time from A's start to B's start.

Only aggregate counts leave this module; no patient identifier is returned.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from functools import lru_cache

import polars as pl
from sqlalchemy import Connection, Engine, func, select

from clinical.knowledge import load_knowledge
from clinical.rules import load_rules
from clinical.sequence_symmetry import (
    SequenceRatio,
    SymmetryParameters,
    first_starts,
    histogram,
    incident_starts,
    known_cascade_pairs,
    mark_known,
    screen,
    sequence_ratio,
    time_to_marker,
)
from data_access.derive import data_cut_date
from data_access.queries.connection import connected
from data_access.queries.scope import Scope
from data_access.schema import Patient, Prescription

LEVELS = {"drug": "Drugs", "class": "Drug classes"}
DEFAULT_TOP_N = 200
HISTOGRAM_BIN_DAYS = 30


@dataclass(frozen=True)
class PatternInputs:
    """What the sequence symmetry analysis reads, for the patients of one scope."""

    starts: pl.DataFrame
    """``patient_id, drug, start``: one row per ingredient of every prescription."""
    observed_from: pl.DataFrame
    """``patient_id, observed_from``: the registration date (observation of a person starts there at the latest)."""
    study_start: date
    study_end: date
    patients: int


@dataclass(frozen=True)
class PairDetail:
    """One pair's sequence symmetry analysis and the histogram of days from A's start to B's start."""

    ratio: SequenceRatio
    histogram: pl.DataFrame
    """``bin_start, bin_end, count`` (negative days: B started first)."""


def pattern_inputs(
    conn: Connection | Engine,
    scope: Scope,
    study_start: date | None = None,
    study_end: date | None = None,
) -> PatternInputs:
    """Prescription starts and registration dates of the patients in ``scope``, with the study period."""
    in_scope = scope.clause(Patient.practice_id)
    rx_query = (
        select(Prescription.patient_id, Prescription.ingredients, Prescription.start)
        .join(Patient, Patient.id == Prescription.patient_id)
        .where(in_scope, Prescription.ingredients != "")
    )
    patient_query = select(Patient.id, Patient.registered_on).where(in_scope)
    with connected(conn) as connection:
        rx_rows = connection.execute(rx_query).all()
        patient_rows = connection.execute(patient_query).all()
        if study_start is None:
            study_start = _first_acute_issue(connection, scope)
        if study_end is None:
            study_end = data_cut_date(connection.engine)
    starts = (
        pl.DataFrame(
            rx_rows, schema={"patient_id": pl.Utf8, "ingredients": pl.Utf8, "start": pl.Date}, orient="row"
        )
        .select("patient_id", pl.col("ingredients").str.split(";").alias("drug"), "start")
        .explode("drug")
        .filter(pl.col("drug") != "")
    )
    observed_from = pl.DataFrame(
        patient_rows, schema={"patient_id": pl.Utf8, "observed_from": pl.Date}, orient="row"
    )
    today = date.today()
    return PatternInputs(
        starts=starts,
        observed_from=observed_from,
        study_start=study_start or today,
        study_end=study_end or today,
        patients=observed_from.height,
    )


def _first_acute_issue(connection: Connection, scope: Scope) -> date | None:
    query = (
        select(func.min(Prescription.start))
        .join(Patient, Patient.id == Prescription.patient_id)
        .where(scope.clause(Patient.practice_id), Prescription.repeat.is_(False))
    )
    first = connection.execute(query).scalar()
    if first is None:  # no acute issues recorded: fall back to the earliest start of any kind
        first = connection.execute(select(func.min(Prescription.start))).scalar()
    return _as_date(first)


def _as_date(value: object) -> date | None:
    if value is None or isinstance(value, date):
        return value  # type: ignore[return-value]
    return date.fromisoformat(str(value)[:10])


@lru_cache(maxsize=1)
def _class_groups() -> Mapping[str, frozenset[str]]:
    return dict(load_knowledge().class_members)


@lru_cache(maxsize=1)
def known_cascades() -> pl.DataFrame:
    """``index, marker, rule_id`` of the published cascades (drug and class keys), from the rule files."""
    return known_cascade_pairs(load_rules(), load_knowledge())


def incident_users(inputs: PatternInputs, params: SymmetryParameters, level: str) -> pl.DataFrame:
    """Incident starts (``patient_id, item, start``) of every drug, or of every drug class when ``level='class'``."""
    if level not in LEVELS:
        raise ValueError(f"level must be one of {', '.join(LEVELS)}")
    groups = _class_groups() if level == "class" else None
    first = first_starts(inputs.starts, groups)
    return incident_starts(first, params, inputs.study_start, inputs.study_end, inputs.observed_from)


def item_choices(incident: pl.DataFrame) -> list[tuple[str, int]]:
    """Every item with its number of incident users, commonest first (for the pair pickers)."""
    counts = incident.group_by("item").len().sort(["len", "item"], descending=[True, False])
    return list(counts.iter_rows())


def signal_table(
    incident: pl.DataFrame, params: SymmetryParameters, level: str, top_n: int = DEFAULT_TOP_N
) -> pl.DataFrame:
    """The screen of every pair among the ``top_n`` commonest items, with ``known_cascade`` (a rule id or null).

    For drug classes, pairs of classes that share a member (``diuretic`` and ``loop_diuretic``) are left out:
    one prescription starts both, so their order means nothing.
    """
    table = screen(incident, params, top_n=top_n)
    if level == "class" and not table.is_empty():
        groups = _class_groups()
        overlapping = [
            not groups.get(a, frozenset()).isdisjoint(groups.get(b, frozenset()))
            for a, b in table.select("index", "marker").iter_rows()
        ]
        table = table.filter(~pl.Series(overlapping, dtype=pl.Boolean))
    return mark_known(table, known_cascades())


def pair_detail(
    incident: pl.DataFrame,
    params: SymmetryParameters,
    index: str,
    marker: str,
    bin_days: int = HISTOGRAM_BIN_DAYS,
) -> PairDetail:
    """The analysis of drug (or class) ``index`` (A) followed by ``marker`` (B)."""
    ratio = sequence_ratio(incident, index, marker, params)
    days = time_to_marker(incident, index, marker, params)
    return PairDetail(ratio=ratio, histogram=histogram(days, params, bin_days=bin_days))


def known_cascade_for(index: str, marker: str) -> list[str]:
    """Rule ids of the published cascades with drug (or class) A = ``index`` and B = ``marker``."""
    known = known_cascades()
    hits = known.filter((pl.col("index") == index) & (pl.col("marker") == marker))
    return sorted(hits["rule_id"].unique().to_list())
