"""Capacity-aware SMR list: given the review slots a practice has this month, which patients to offer them to,
and whether that choice is fair across age, sex, deprivation and ethnicity.

Who is eligible (an approximation, from coded data, of NHS England's SMR priority groups: people with complex and
problematic polypharmacy, on medicines commonly associated with harm, with severe frailty, and the DynAIRx
multimorbidity groups; NHS England, Network Contract DES: Structured medication reviews and medicines
optimisation, 2020, updated 2023; Walker LE et al. The DynAIRx Project Protocol. J Multimorb Comorb 2022):
patients on the practice's worklist who are in a DynAIRx cohort (mental and physical health conditions; 4 or more
long-term conditions with 10 or more medicines; moderate or severe frailty), or take 10 or more medicines, or have
an active high-severity safety flag.

Who is left out (so nobody is reviewed twice): a completed SMR not yet due again (recorded through the workflow,
or a medication review in the record within the 12 months before the data cut), a snooze that has not ended, and
a review already booked. A decline does not exclude.

The order (a transparent product rule, shown on the page):
1. the highest 12-month risk of any outcome, in 5-percentage-point bands, highest band first;
2. within a band, the most actionable first: more active high-severity flags, then more moderate flags (a flag
   names a specific medicine to reconsider);
3. then the exact highest risk, then the patient id (so the order is stable).
Banding the risk first keeps "highest risk" the main criterion while letting actionable flags decide between
patients whose risks differ by less than the model's typical uncertainty.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import polars as pl
from sqlalchemy import Connection, Engine, and_, or_, select

from data_access.queries.connection import connected
from data_access.queries.population import AGE_BANDS, age_band
from data_access.queries.reviews import NEXT_DUE_MONTHS, add_months, workflow_excluded_select
from data_access.queries.scope import Scope
from data_access.queries.worklist import COHORTS, OUTCOMES, WorklistFilters, filter_conditions
from data_access.schema import Patient, WorklistEntry

RISK_BAND_WIDTH = 0.05
COMPLEX_POLYPHARMACY = 10
MAX_SLOTS = 500
EQUITY_DIMENSIONS = {
    "age_band": "Age band",
    "sex": "Sex",
    "deprivation": "Deprivation quintile",
    "ethnicity": "Ethnicity group",
}

_WL = WorklistEntry


def eligibility_condition():  # noqa: ANN201 - SQL expression
    """Who is eligible for an SMR (module docstring), as a WHERE condition on ``worklist_entry``."""
    cohorts = [
        and_(*filter_conditions(WorklistFilters(cohorts=(cohort,), show_reviewed=True))) for cohort in COHORTS
    ]
    return or_(*cohorts, _WL.medicines_count >= COMPLEX_POLYPHARMACY, _WL.flags_high > 0)


def eligible_patients(
    conn: Connection | Engine, scope: Scope, practice_id: str, cut: dt.date, today: dt.date
) -> pl.DataFrame:
    """The practice's SMR-eligible patients with what ordering and equity need, and ``excluded``: why a patient is
    left out of this month's proposal ("workflow", "reviewed_in_record") or null when they are still to review."""
    recent_cutoff = add_months(cut, -NEXT_DUE_MONTHS)
    columns = (
        _WL.patient_id,
        _WL.age,
        _WL.sex,
        Patient.deprivation_quintile,
        Patient.ethnicity_group,
        *(getattr(_WL, f"risk_{o}") for o in OUTCOMES),
        _WL.flags_high,
        _WL.flags_moderate,
        _WL.medicines_count,
        _WL.last_review,
        _WL.why,
    )
    query = (
        select(*columns)
        .join(Patient, Patient.id == _WL.patient_id)
        .where(scope.clause(_WL.practice_id), _WL.practice_id == practice_id, eligibility_condition())
    )
    with connected(conn) as connection:
        rows = connection.execute(query).all()
        by_workflow = set(connection.execute(workflow_excluded_select(today)).scalars())
    frame = pl.DataFrame(
        [tuple(r) for r in rows],
        schema={
            "patient_id": pl.String,
            "age": pl.Int64,
            "sex": pl.String,
            "deprivation_quintile": pl.Int64,
            "ethnicity_group": pl.String,
            **{f"risk_{o}": pl.Float64 for o in OUTCOMES},
            "flags_high": pl.Int64,
            "flags_moderate": pl.Int64,
            "medicines_count": pl.Int64,
            "last_review": pl.Date,
            "why": pl.String,
        },
        orient="row",
    )
    return frame.with_columns(
        pl.when(pl.col("patient_id").is_in(list(by_workflow)))
        .then(pl.lit("workflow"))
        .when(pl.col("last_review").is_not_null() & (pl.col("last_review") > recent_cutoff))
        .then(pl.lit("reviewed_in_record"))
        .otherwise(pl.lit(None, dtype=pl.String))
        .alias("excluded")
    )


def priority_order(frame: pl.DataFrame) -> pl.DataFrame:
    """The candidates in proposal order (module docstring), with ``max_risk``, ``max_outcome`` and ``risk_band``."""
    risk_columns = [f"risk_{o}" for o in OUTCOMES]
    if frame.height == 0:
        return frame.with_columns(
            pl.lit(None, dtype=pl.Float64).alias("max_risk"),
            pl.lit(None, dtype=pl.String).alias("max_outcome"),
            pl.lit(None, dtype=pl.Int64).alias("risk_band"),
        )
    max_risk = pl.max_horizontal(*risk_columns)
    ranked = frame.with_columns(max_risk.alias("max_risk"))
    outcome = pl.lit(None, dtype=pl.String)
    for o in reversed(OUTCOMES):
        outcome = pl.when(pl.col(f"risk_{o}") == pl.col("max_risk")).then(pl.lit(o)).otherwise(outcome)
    ranked = ranked.with_columns(
        outcome.alias("max_outcome"),
        (pl.col("max_risk").fill_null(-1.0) / RISK_BAND_WIDTH + 1e-9)
        .floor()
        .cast(pl.Int64)
        .alias("risk_band"),
    )
    return ranked.sort(
        ["risk_band", "flags_high", "flags_moderate", "max_risk", "patient_id"],
        descending=[True, True, True, True, False],
        nulls_last=True,
    )


@dataclass(frozen=True)
class EquityRow:
    dimension: str
    group: str
    eligible: int
    eligible_percent: float
    proposed: int
    proposed_percent: float

    @property
    def difference_points(self) -> float:
        return round(self.proposed_percent - self.eligible_percent, 1)


def _groups(frame: pl.DataFrame, dimension: str) -> pl.Series:
    if dimension == "age_band":
        return pl.Series(
            [age_band(a) if a is not None else "Unknown" for a in frame["age"].to_list()], dtype=pl.String
        )
    if dimension == "sex":
        return frame["sex"].replace_strict({"F": "Female", "M": "Male"}, default="Other or unknown")
    if dimension == "deprivation":
        labels = {1: "1 (most deprived)", 2: "2", 3: "3", 4: "4", 5: "5 (least deprived)"}
        return pl.Series(
            [labels.get(q, "Unknown") for q in frame["deprivation_quintile"].to_list()], dtype=pl.String
        )
    return frame["ethnicity_group"].fill_null("Unknown")


def equity_table(eligible: pl.DataFrame, proposed: pl.DataFrame) -> list[EquityRow]:
    """How the proposal spreads across groups compared with the practice's eligible population (every eligible
    patient, including those reviewed recently: a fair proposal mirrors the population it serves)."""
    rows: list[EquityRow] = []
    age_order = {label: i for i, (_lo, _hi, label) in enumerate(AGE_BANDS)}
    for dimension, title in EQUITY_DIMENSIONS.items():
        base = _groups(eligible, dimension).value_counts(name="n") if eligible.height else None
        chosen = _groups(proposed, dimension).value_counts(name="n") if proposed.height else None
        base_counts = dict(base.iter_rows()) if base is not None else {}
        chosen_counts = dict(chosen.iter_rows()) if chosen is not None else {}
        groups = sorted(
            set(base_counts) | set(chosen_counts),
            key=lambda g: (
                age_order.get(g, 99) if dimension == "age_band" else 0,
                g.startswith("Unknown"),
                g,
            ),
        )
        for group in groups:
            e, p = int(base_counts.get(group, 0)), int(chosen_counts.get(group, 0))
            rows.append(
                EquityRow(
                    dimension=title,
                    group=group,
                    eligible=e,
                    eligible_percent=round(100.0 * e / eligible.height, 1) if eligible.height else 0.0,
                    proposed=p,
                    proposed_percent=round(100.0 * p / proposed.height, 1) if proposed.height else 0.0,
                )
            )
    return rows


@dataclass(frozen=True)
class CapacityPlan:
    practice_id: str
    slots: int
    proposed: list[dict]
    eligible: int  # the practice's SMR-eligible patients
    to_review: int  # of whom still to review this month (the pool the proposal is drawn from)
    excluded: dict[str, int]  # left out, by reason ("workflow", "reviewed_in_record")
    equity: list[EquityRow]


def plan_reviews(
    conn: Connection | Engine,
    scope: Scope,
    practice_id: str,
    slots: int,
    *,
    cut: dt.date,
    today: dt.date,
) -> CapacityPlan:
    """Propose ``slots`` patients of ``practice_id`` for this month's SMRs (module docstring for who and in what
    order), with the equity comparison against the practice's eligible population."""
    slots = max(0, min(int(slots), MAX_SLOTS))
    eligible = eligible_patients(conn, scope, practice_id, cut, today)
    pool = eligible.filter(pl.col("excluded").is_null())
    ordered = priority_order(pool)
    chosen = ordered.head(slots)
    proposed = [
        {
            "rank": i + 1,
            "patient_id": row["patient_id"],
            "age": row["age"],
            "sex": row["sex"],
            "max_risk": None if row["max_risk"] is None else round(row["max_risk"] * 100.0, 1),
            "max_outcome": row["max_outcome"],
            "flags_high": row["flags_high"],
            "flags_moderate": row["flags_moderate"],
            "medicines_count": row["medicines_count"],
            "last_review": row["last_review"].strftime("%d %b %Y") if row["last_review"] else "None recorded",
            "why": row["why"] or "",
        }
        for i, row in enumerate(chosen.iter_rows(named=True))
    ]
    return CapacityPlan(
        practice_id=practice_id,
        slots=slots,
        proposed=proposed,
        eligible=eligible.height,
        to_review=pool.height,
        excluded={
            reason: int((eligible["excluded"] == reason).sum())
            for reason in ("workflow", "reviewed_in_record")
        },
        equity=equity_table(eligible, chosen),
    )


def largest_gaps(rows: Sequence[EquityRow], top: int = 3) -> list[EquityRow]:
    """The groups whose share of the proposal differs most from their share of the eligible pool."""
    return sorted(rows, key=lambda r: (-abs(r.difference_points), r.dimension, r.group))[:top]
