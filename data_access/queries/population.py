"""Population views (researchers, ICB): risk distribution, multimorbidity and polypharmacy, condition clusters and
practice flag rates on a funnel plot. Every function returns aggregates only; no patient identifier leaves here.

Definitions (the page and the Help page repeat them):
- The population is the patients on the worklist (``worklist_entry``): alive and registered at the worklist's
  as-of date, in the user's practices. The practice funnel uses the same rule at the data cut.
- Multimorbidity: 2 or more long-term conditions (the ``ltc`` group of ``clinical/data/conditions.yaml``), the
  usual definition (Johnston MC et al. Defining and measuring multimorbidity: a systematic review of systematic
  reviews. Eur J Public Health 2019;29:182-9). Polypharmacy: 5 or more, and 10 or more, active medicines (Masnoon N
  et al. What is polypharmacy? A systematic review of definitions. BMC Geriatr 2017;17:230; 10 or more is the
  "complex polypharmacy" of NHS England's SMR priority groups).
- Condition clusters: the commonest pairs and triples of long-term conditions held together by one patient.
- Funnel plot: each practice's proportion of patients with at least one active safety flag (per 1,000), against
  its size, with 95% and 99.8% control limits around the overall proportion from the normal approximation to the
  binomial, p0 ± z·√(p0(1 − p0)/n) (Spiegelhalter DJ. Funnel plots for comparing institutional performance. Stat
  Med 2005;24:1185-1202). A small practice with an extreme rate can still be within its (wide) limits, so it is
  not labelled an outlier for being small.

Small-number suppression (statistical disclosure control): any count from 1 to 4 is shown as "<5", and so is a
count whose complement in its group (group size minus count) is from 1 to 4, because "all but 3" discloses as much
as "3"; percentages and rates computed from a suppressed count are withheld. This is the standard NHS practice of
not publishing small numbers that could identify people (ISB 1523 Anonymisation Standard for Publishing Health and
Social Care Data; NHS Digital's small-numbers suppression in its statistical releases). Zero is shown as 0.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import polars as pl
from sqlalchemy import Connection, Engine, distinct, func, or_, select

from data_access.queries.combinations import active_flag_condition, registered_on
from data_access.queries.connection import connected
from data_access.queries.scope import Scope
from data_access.schema import Flag, Patient, Practice, WorklistEntry

OUTCOMES = ("emergency_admission", "fall_fracture", "medication_harm", "death")
SMALL_CELL = 5
SUPPRESSED = "<5"
RISK_BIN_WIDTH = 0.02
MULTIMORBIDITY_MIN_LTC = 2
POLYPHARMACY_MIN = 5
COMPLEX_POLYPHARMACY_MIN = 10
AGE_BANDS: tuple[tuple[int, int | None, str], ...] = (
    (0, 17, "0–17"),
    (18, 39, "18–39"),
    (40, 49, "40–49"),
    (50, 59, "50–59"),
    (60, 69, "60–69"),
    (70, 79, "70–79"),
    (80, 89, "80–89"),
    (90, None, "90+"),
)
# Two-sided standard normal quantiles of the funnel plot's limits (Spiegelhalter 2005: 95% and 99.8%).
Z_95 = 1.959964
Z_998 = 3.090232

_WL = WorklistEntry


# -- disclosure control ---------------------------------------------------------------------------------------------


def is_small(count: int | None, group_size: int | None = None) -> bool:
    """Whether ``count`` (or its complement in ``group_size``) is a small number that must not be shown."""
    if count is None:
        return False
    if 0 < count < SMALL_CELL:
        return True
    if group_size is not None:
        rest = group_size - count
        return 0 < rest < SMALL_CELL
    return False


def shown_count(count: int | None, group_size: int | None = None) -> int | str | None:
    """The count as published: the number, or "<5" when it is suppressed."""
    if count is None:
        return None
    return SUPPRESSED if is_small(count, group_size) else int(count)


def shown_percent(count: int | None, group_size: int | None, digits: int = 1) -> float | None:
    """The percentage as published: None (withheld) when the count is suppressed or the group is empty."""
    if count is None or not group_size or is_small(count, group_size) or is_small(group_size):
        return None
    return round(100.0 * count / group_size, digits)


# -- risk distribution ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RiskBin:
    lower: float
    upper: float
    count: int


@dataclass(frozen=True)
class RiskDistribution:
    outcome: str
    patients: int  # patients with a current risk for this outcome
    bins: tuple[RiskBin, ...]
    median: float | None
    mean: float | None


def current_risks(conn: Connection | Engine, scope: Scope) -> pl.DataFrame:
    """Every worklist patient's current 12-month risk per outcome (fractions; null where none is cached)."""
    query = select(*(getattr(_WL, f"risk_{o}") for o in OUTCOMES)).where(scope.clause(_WL.practice_id))
    with connected(conn) as connection:
        rows = connection.execute(query).all()
    return pl.DataFrame([tuple(r) for r in rows], schema={o: pl.Float64 for o in OUTCOMES}, orient="row")


def risk_distribution(risks: pl.DataFrame, outcome: str, width: float = RISK_BIN_WIDTH) -> RiskDistribution:
    """Counts of patients per ``width``-wide bin of current risk (bins from 0 up to the highest risk seen)."""
    values = (
        risks.get_column(outcome).drop_nulls()
        if outcome in risks.columns
        else pl.Series([], dtype=pl.Float64)
    )
    if values.is_empty():
        return RiskDistribution(outcome, 0, (), None, None)
    last = min(int(math.floor(min(float(values.max()), 1.0) / width - 1e-9)) + 1, int(round(1 / width)))
    index = (values / width).floor().cast(pl.Int64).clip(0, last - 1)
    counted = dict(zip(*index.value_counts().to_dict(as_series=False).values(), strict=True))
    bins = tuple(
        RiskBin(lower=round(i * width, 6), upper=round((i + 1) * width, 6), count=int(counted.get(i, 0)))
        for i in range(last)
    )
    return RiskDistribution(
        outcome=outcome,
        patients=values.len(),
        bins=bins,
        median=float(values.median()),
        mean=float(values.mean()),
    )


# -- multimorbidity and polypharmacy --------------------------------------------------------------------------------


@dataclass(frozen=True)
class PrevalenceRow:
    """One group's counts (raw; the page applies ``shown_count``/``shown_percent``)."""

    dimension: str  # "All" | "Age band" | "Sex" | "Deprivation quintile"
    group: str
    patients: int
    multimorbidity: int
    polypharmacy: int
    complex_polypharmacy: int


def age_band(age: int) -> str:
    """The label of the band ``age`` falls in."""
    for _lower, upper, label in AGE_BANDS:
        if upper is None or age <= upper:
            return label
    return AGE_BANDS[-1][2]


_DEPRIVATION_LABELS = {1: "1 (most deprived)", 2: "2", 3: "3", 4: "4", 5: "5 (least deprived)"}
_SEX_LABELS = {"F": "Female", "M": "Male"}


def prevalence_table(conn: Connection | Engine, scope: Scope) -> list[PrevalenceRow]:
    """Multimorbidity and polypharmacy counts overall and by age band, sex and deprivation quintile.

    One read of five small columns, grouped in polars: four grouped SQL queries joining ``patient`` took about a
    second at 100,000 patients on SQLite, this about a tenth of that.
    """
    query = (
        select(_WL.age, _WL.sex, Patient.deprivation_quintile, _WL.ltc_count, _WL.medicines_count)
        .join(Patient, Patient.id == _WL.patient_id)
        .where(scope.clause(_WL.practice_id))
    )
    with connected(conn) as connection:
        rows = connection.execute(query).all()
    frame = pl.DataFrame(
        [tuple(r) for r in rows],
        schema={
            "age": pl.Int64,
            "sex": pl.String,
            "deprivation": pl.Int64,
            "ltc": pl.Int64,
            "medicines": pl.Int64,
        },
        orient="row",
    )
    band = pl.lit(AGE_BANDS[-1][2])
    for _lower, upper, label in reversed(AGE_BANDS[:-1]):
        band = pl.when(pl.col("age") <= upper).then(pl.lit(label)).otherwise(band)
    frame = frame.with_columns(
        band.alias("Age band"),
        pl.col("sex").replace_strict(_SEX_LABELS, default="Other or unknown").alias("Sex"),
        pl.col("deprivation")
        .replace_strict(_DEPRIVATION_LABELS, default="Unknown", return_dtype=pl.String)
        .alias("Deprivation quintile"),
        pl.lit("All patients").alias("All"),
    )
    measures = (
        pl.len().alias("patients"),
        (pl.col("ltc") >= MULTIMORBIDITY_MIN_LTC).sum().alias("multimorbidity"),
        (pl.col("medicines") >= POLYPHARMACY_MIN).sum().alias("polypharmacy"),
        (pl.col("medicines") >= COMPLEX_POLYPHARMACY_MIN).sum().alias("complex_polypharmacy"),
    )
    out: list[PrevalenceRow] = []
    for dimension in ("All", "Age band", "Sex", "Deprivation quintile"):
        if frame.height == 0:
            break
        for record in frame.group_by(dimension).agg(*measures).iter_rows(named=True):
            out.append(
                PrevalenceRow(
                    dimension,
                    record[dimension],
                    int(record["patients"]),
                    int(record["multimorbidity"]),
                    int(record["polypharmacy"]),
                    int(record["complex_polypharmacy"]),
                )
            )
    return sorted(out, key=lambda r: (_DIMENSION_ORDER[r.dimension], _group_order(r)))


_DIMENSION_ORDER = {"All": 0, "Age band": 1, "Sex": 2, "Deprivation quintile": 3}


def _group_order(row: PrevalenceRow) -> tuple[int, str]:
    if row.dimension == "Age band":
        return next((i for i, band in enumerate(AGE_BANDS) if band[2] == row.group), 99), row.group
    return (1 if row.group.startswith(("Unknown", "Other")) else 0), row.group


# -- condition clusters ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cluster:
    conditions: tuple[str, ...]
    patients: int


def condition_sets(conn: Connection | Engine, scope: Scope) -> list[str]:
    """Each worklist patient's active condition keys (';'-joined, as ``worklist_entry`` stores them)."""
    query = select(_WL.condition_keys).where(scope.clause(_WL.practice_id), _WL.condition_keys != "")
    with connected(conn) as connection:
        return [r[0] for r in connection.execute(query)]


def condition_clusters(
    joined_sets: Sequence[str], long_term: frozenset[str], size: int, top: int = 10
) -> tuple[list[Cluster], int]:
    """The ``top`` commonest sets of ``size`` long-term conditions held together, and how many patients have at
    least ``size`` long-term conditions (the denominator a cluster's share is read against)."""
    counts: Counter[tuple[str, ...]] = Counter()
    eligible = 0
    for joined in joined_sets:
        keys = sorted({k for k in joined.split(";") if k in long_term})
        if len(keys) < size:
            continue
        eligible += 1
        counts.update(itertools.combinations(keys, size))
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:top]
    return [Cluster(conditions=keys, patients=n) for keys, n in ranked], eligible


# -- practice flag rates and the funnel plot ------------------------------------------------------------------------


@dataclass(frozen=True)
class PracticeRate:
    practice_id: str
    name: str
    patients: int
    flagged: int

    @property
    def proportion(self) -> float:
        return self.flagged / self.patients if self.patients else 0.0


def practice_flag_rates(
    conn: Connection | Engine,
    scope: Scope,
    cut: dt.date,
    *,
    rule_ids: Sequence[str] | None = None,
    severities: Sequence[str] | None = None,
) -> list[PracticeRate]:
    """Per practice: patients alive and registered at ``cut`` and those with at least one active safety flag then
    (restricted to ``rule_ids`` and ``severities`` when given)."""
    flag_filter = [active_flag_condition(cut)]
    if rule_ids is not None:
        flag_filter.append(Flag.rule_id.in_(list(rule_ids)))
    if severities:
        flag_filter.append(Flag.severity.in_(list(severities)))
    flagged = (
        select(Patient.practice_id, func.count(distinct(Flag.patient_id)).label("flagged"))
        .join(Patient, Patient.id == Flag.patient_id)
        .where(scope.clause(Patient.practice_id), *flag_filter)
        .group_by(Patient.practice_id)
        .subquery()
    )
    registered = (
        select(Patient.practice_id, func.count().label("patients"))
        .where(
            scope.clause(Patient.practice_id),
            registered_on(cut),
            or_(Patient.registered_on.is_(None), Patient.registered_on <= cut),
        )
        .group_by(Patient.practice_id)
        .subquery()
    )
    query = (
        select(Practice.id, Practice.name, registered.c.patients, func.coalesce(flagged.c.flagged, 0))
        .join(registered, registered.c.practice_id == Practice.id)
        .outerjoin(flagged, flagged.c.practice_id == Practice.id)
        .order_by(Practice.id)
    )
    with connected(conn) as connection:
        return [
            PracticeRate(pid, name or pid, int(n), int(x))
            for pid, name, n, x in connection.execute(query)
            if n
        ]


def overall_proportion(rates: Sequence[PracticeRate]) -> float:
    """The pooled proportion Σflagged / Σpatients (the funnel's centre line)."""
    patients = sum(r.patients for r in rates)
    return sum(r.flagged for r in rates) / patients if patients else 0.0


def control_limits(p0: float, n: int, z: float) -> tuple[float, float]:
    """The funnel's limits for a practice of ``n`` patients: p0 ± z·√(p0(1 − p0)/n), clipped to [0, 1]
    (normal approximation to the binomial; Spiegelhalter 2005)."""
    if n <= 0:
        return 0.0, 1.0
    spread = z * math.sqrt(max(p0 * (1.0 - p0), 0.0) / n)
    return max(0.0, p0 - spread), min(1.0, p0 + spread)


def funnel_curve(
    p0: float, n_min: int, n_max: int, z: float, points: int = 80
) -> list[tuple[int, float, float]]:
    """(n, lower, upper) along practice sizes from ``n_min`` to ``n_max`` (log-spaced), for drawing the funnel."""
    n_min = max(1, n_min)
    n_max = max(n_min + 1, n_max)
    ratio = (n_max / n_min) ** (1.0 / (points - 1))
    sizes = sorted({max(1, int(round(n_min * ratio**i))) for i in range(points)} | {n_min, n_max})
    return [(n, *control_limits(p0, n, z)) for n in sizes]


def funnel_position(rate: PracticeRate, p0: float) -> str:
    """Where a practice sits: 'above 99.8%', 'above 95%', 'within', 'below 95%' or 'below 99.8%'."""
    low95, high95 = control_limits(p0, rate.patients, Z_95)
    low998, high998 = control_limits(p0, rate.patients, Z_998)
    p = rate.proportion
    if p > high998:
        return "above 99.8%"
    if p > high95:
        return "above 95%"
    if p < low998:
        return "below 99.8%"
    if p < low95:
        return "below 95%"
    return "within"


FUNNEL_WORDS = {
    "above 99.8%": "Above the 99.8% limit: unlikely to be chance alone; worth a closer look",
    "above 95%": "Above the 95% limit (within 99.8%): possible signal",
    "within": "Within the expected range for its size",
    "below 95%": "Below the 95% limit (within 99.8%)",
    "below 99.8%": "Below the 99.8% limit: unusually low; check data completeness first",
}


def rule_ids_in_groups(catalogue: Mapping[str, object], groups: Sequence[str]) -> list[str]:
    """Rule ids in any of ``groups`` (``RuleInfo.groups`` of ``data_access.queries.combinations``)."""
    chosen = set(groups)
    return sorted(rule_id for rule_id, info in catalogue.items() if chosen & set(info.groups))  # type: ignore[attr-defined]
