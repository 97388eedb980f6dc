"""Prescription sequence symmetry analysis (PSSA): does starting drug A make starting drug B more likely?

Among people who start both A and B for the first time within ``window_days`` of each other, the order of the two
starts should be random if A has no effect on B. When B treats an adverse effect of A (a prescribing cascade), "A
then B" outnumbers "B then A". The design is self-controlled, so anything about a person that does not change
over the window (frailty, sex, the prescriber's habits) cancels out.

Method (Hallas J. Evidence of depression provoked by cardiovascular medication: a prescription sequence symmetry
analysis. Epidemiology 1996;7:478-84; with the time-window form of the null-effect ratio of Tsiropoulos N, Andersen
M, Hallas J. Adverse events with use of antiepileptic drugs: a prescription and event symmetry analysis.
Pharmacoepidemiol Drug Saf 2009;18:483-91; reviewed by Lai ECC et al. Eur J Epidemiol 2017;32:567-82):

- **Incident users only.** A person's *first-ever* start of an item (a drug, or any member of a drug class) counts
  only if it falls at least ``washout_days`` after the start of that person's observation (the run-in: anyone
  already on the item then is a prevalent user and is left out for that item) and on or before the study end.
- **Crude sequence ratio** ``cSR = n(A first) / n(B first)`` over people whose two incident starts are
  1..``window_days`` days apart. Starts on the same day carry no order and are counted apart (``n_same_day``).
- **Null-effect sequence ratio** (the order expected from prescribing trends alone, e.g. B becoming more popular
  over the years makes "A then B" commoner with no causal link). With ``a_m`` and ``b_n`` the numbers of incident
  users of A on day m and of B on day n *in the whole population* and ``d`` the window::

      NSR = sum_m a_m * (b_{m+1} + ... + b_{m+d})  /  sum_m a_m * (b_{m-d} + ... + b_{m-1})

  (days outside the study period contribute nothing, so the edges of the data are handled too). We use all
  incident users, not only those who start both, so that a real cascade (which adds B starts after A) does not
  move its own null.
- **Adjusted sequence ratio** ``aSR = cSR / NSR``.
- **95 % confidence interval**: the Wilson score interval of the proportion ``p = n(A first) / (n(A first) + n(B
  first))`` (Wilson EB. J Am Stat Assoc 1927;22:209-12), mapped to the ratio scale by ``p / (1 - p)`` and divided
  by the NSR, which is treated as a known constant as Hallas and Tsiropoulos do (it comes from far more people
  than the pairs). With no "B first" pairs the upper limit is infinite.

The whole computation is vectorised: a self-join of the incident starts on the person gives the pair counts of
every pair at once (polars), and the null-effect ratios of every pair come from two matrix products of the daily
incidence counts against their windowed cumulative sums (numpy). ``bench/bench_sequence_symmetry.py`` times the
screen of all pairs among the 200 commonest drugs over 100,000 patients.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from statistics import NormalDist

import numpy as np
import polars as pl

from clinical.knowledge import Knowledge
from clinical.rules import RuleBook

PATIENT = "patient_id"
ITEM = "item"
START = "start"

RESULT_SCHEMA: dict[str, pl.DataType] = {
    "index": pl.Utf8,
    "marker": pl.Utf8,
    "n_index_first": pl.Int64,
    "n_marker_first": pl.Int64,
    "n_same_day": pl.Int64,
    "crude_sr": pl.Float64,
    "null_sr": pl.Float64,
    "adjusted_sr": pl.Float64,
    "ci_lower": pl.Float64,
    "ci_upper": pl.Float64,
    "signal": pl.Boolean,
}


@dataclass(frozen=True, slots=True)
class SymmetryParameters:
    """The choices of one analysis; every result states them (docs/patterns-of-care.md explains the defaults).

    - ``window_days``: the most days between the two first starts for the pair to count (365, as in Doherty AS et
      al., Ann Fam Med 2025, who applied PSSA to the ThinkCascades list).
    - ``washout_days``: the run-in; a first start within this many days of the start of a person's observation
      may continue earlier treatment, so it is not counted as incident (365).
    - ``confidence``: the two-sided level of the intervals (0.95).
    - ``min_pairs``: a screen lists only pairs with at least this many ordered pairs (A first + B first); with
      fewer, the interval is too wide to say anything (20).
    """

    window_days: int = 365
    washout_days: int = 365
    confidence: float = 0.95
    min_pairs: int = 20

    def __post_init__(self) -> None:
        if self.window_days < 1 or self.washout_days < 0 or self.min_pairs < 1:
            raise ValueError("window_days and min_pairs must be at least 1 and washout_days at least 0")
        if not 0 < self.confidence < 1:
            raise ValueError("confidence must be between 0 and 1")

    @property
    def z(self) -> float:
        """The standard normal quantile of the two-sided interval (1.96 for 95 %)."""
        return NormalDist().inv_cdf(0.5 + self.confidence / 2)


@dataclass(frozen=True, slots=True)
class SequenceRatio:
    """The sequence symmetry analysis of one ordered pair: ``index`` (A) and ``marker`` (B)."""

    index: str
    marker: str
    n_index_first: int
    n_marker_first: int
    n_same_day: int
    crude_sr: float | None
    null_sr: float | None
    adjusted_sr: float | None
    ci_lower: float | None
    ci_upper: float | None

    @property
    def signal(self) -> bool:
        """The interval lies wholly above 1: A is followed by B more often than trends explain."""
        return self.ci_lower is not None and self.ci_lower > 1


# -- incident users ---------------------------------------------------------------------------------------------


def first_starts(
    prescriptions: pl.DataFrame | pl.LazyFrame, groups: Mapping[str, Iterable[str]] | None = None
):
    """The first-ever start of each item per person: ``patient_id, item, start``.

    ``prescriptions`` has ``patient_id``, ``drug`` (an ingredient key; a combination product gives one row per
    ingredient) and ``start`` (a date). Without ``groups`` every drug is its own item; with ``groups`` (item name
    -> drug keys, e.g. a drug class and its members) an item starts at the first start of any of its drugs, and a
    drug may belong to several items.
    """
    frame = prescriptions.lazy().select(PATIENT, pl.col("drug").alias(ITEM), pl.col(START).cast(pl.Date))
    if groups is not None:
        mapping = pl.DataFrame(
            [(drug, name) for name, drugs in groups.items() for drug in drugs],
            schema={"drug": pl.Utf8, "group": pl.Utf8},
            orient="row",
        ).lazy()
        frame = frame.join(mapping, left_on=ITEM, right_on="drug").select(
            PATIENT, pl.col("group").alias(ITEM), START
        )
    return frame.group_by(PATIENT, ITEM).agg(pl.col(START).min()).collect()


def incident_starts(
    first: pl.DataFrame,
    params: SymmetryParameters,
    study_start: date,
    study_end: date,
    observed_from: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """The first starts that are incident: at least ``washout_days`` after observation began, not after the end.

    Observation begins at ``study_start`` (the first day the data cover) or, when ``observed_from`` gives a later
    date for a person (``patient_id, observed_from``, e.g. the registration date), on that date.
    """
    frame = first.lazy()
    if observed_from is not None:
        frame = frame.join(
            observed_from.lazy().select(PATIENT, pl.col("observed_from").cast(pl.Date)),
            on=PATIENT,
            how="left",
        )
        begins = pl.max_horizontal(pl.col("observed_from"), pl.lit(study_start))
    else:
        begins = pl.lit(study_start)
    eligible = pl.col(START) >= begins + pl.duration(days=params.washout_days)
    return (
        frame.filter(eligible & (pl.col(START) <= pl.lit(study_end))).select(PATIENT, ITEM, START).collect()
    )


def commonest_items(incident: pl.DataFrame, top_n: int) -> list[str]:
    """The ``top_n`` items with the most incident users (ties broken by name, so the choice is reproducible)."""
    counts = incident.group_by(ITEM).len().sort(["len", ITEM], descending=[True, False])
    return counts.head(top_n)[ITEM].to_list()


# -- counts and ratios ------------------------------------------------------------------------------------------


def _pair_counts(incident: pl.DataFrame, params: SymmetryParameters) -> pl.DataFrame:
    """Ordered-pair counts for every pair ``a < b`` of items started by the same person within the window."""
    left = incident.lazy().select(PATIENT, pl.col(ITEM).alias("a"), pl.col(START).alias("start_a"))
    right = incident.lazy().select(PATIENT, pl.col(ITEM).alias("b"), pl.col(START).alias("start_b"))
    gap = (pl.col("start_b") - pl.col("start_a")).dt.total_days()
    return (
        left.join(right, on=PATIENT)
        .filter(pl.col("a") < pl.col("b"))
        .with_columns(gap.alias("gap"))
        .filter(pl.col("gap").abs() <= params.window_days)
        .group_by("a", "b")
        .agg(
            (pl.col("gap") > 0).sum().cast(pl.Int64).alias("n_a_first"),
            (pl.col("gap") < 0).sum().cast(pl.Int64).alias("n_b_first"),
            (pl.col("gap") == 0).sum().cast(pl.Int64).alias("n_same_day"),
        )
        .collect()
    )


def _null_effect_ratios(incident: pl.DataFrame, items: list[str], params: SymmetryParameters) -> np.ndarray:
    """``K x K`` matrix of NSR(A = items[i], B = items[j]) from the daily incidence of every item (NaN: undefined).

    ``fwd[j, m]`` is the number of incident B users on days m+1..m+d, ``bwd[j, m]`` on days m-d..m-1; with the
    daily counts ``a[i, m]``, the numerator and denominator of every pair are the matrix products ``a @ fwd.T`` and
    ``a @ bwd.T``.
    """
    k = len(items)
    if k == 0 or incident.is_empty():
        return np.full((k, k), np.nan)
    position = {item: i for i, item in enumerate(items)}
    daily = (
        incident.filter(pl.col(ITEM).is_in(items))
        .with_columns(pl.col(START).cast(pl.Int32).alias("day"))
        .group_by(ITEM, "day")
        .len()
    )
    first_day = int(daily["day"].min())
    span = int(daily["day"].max()) - first_day + 1
    counts = np.zeros((k, span), dtype=np.float64)
    rows = np.array([position[item] for item in daily[ITEM].to_list()], dtype=np.int64)
    cols = daily["day"].to_numpy().astype(np.int64) - first_day
    np.add.at(counts, (rows, cols), daily["len"].to_numpy())
    cumulative = np.concatenate(
        [np.zeros((k, 1)), np.cumsum(counts, axis=1)], axis=1
    )  # cumulative[:, m] = sum < m
    days = np.arange(span)
    d = params.window_days
    forward = cumulative[:, np.minimum(days + d, span - 1) + 1] - cumulative[:, days + 1]
    backward = cumulative[:, days] - cumulative[:, np.maximum(days - d, 0)]
    numerator = counts @ forward.T
    denominator = counts @ backward.T
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = numerator / denominator
    ratio[denominator == 0] = np.nan
    return ratio


def _with_ratios(pairs: pl.DataFrame, params: SymmetryParameters) -> pl.DataFrame:
    """Add crude, adjusted ratios and the Wilson interval to ``index, marker, n_index_first, n_marker_first, null_sr``."""
    z = params.z
    x = pl.col("n_index_first").cast(pl.Float64)
    n = (pl.col("n_index_first") + pl.col("n_marker_first")).cast(pl.Float64)
    p = x / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * (p * (1 - p) / n + z * z / (4 * n * n)).sqrt() / denominator
    # At x = 0 or x = n the Wilson limits are exactly 0 or 1; set them so rounding cannot turn 1 into 0.9999...
    lower_p = pl.when(pl.col("n_index_first") == 0).then(0.0).otherwise((centre - half).clip(0.0, 1.0))
    upper_p = pl.when(pl.col("n_marker_first") == 0).then(1.0).otherwise((centre + half).clip(0.0, 1.0))

    def odds(q: pl.Expr) -> pl.Expr:
        return pl.when(q >= 1.0).then(float("inf")).otherwise(q / (1 - q))

    nsr = pl.col("null_sr")
    usable = (n > 0) & nsr.is_not_null() & nsr.is_not_nan() & (nsr > 0)
    crude = (
        pl.when(pl.col("n_marker_first") > 0)
        .then(x / pl.col("n_marker_first"))
        .when(pl.col("n_index_first") > 0)
        .then(float("inf"))
        .otherwise(None)
    )
    return (
        pairs.with_columns(
            crude.alias("crude_sr"),
            pl.when(nsr.is_nan()).then(None).otherwise(nsr).alias("null_sr"),
        )
        .with_columns(
            pl.when(usable).then(pl.col("crude_sr") / nsr).otherwise(None).alias("adjusted_sr"),
            pl.when(usable).then(odds(lower_p) / nsr).otherwise(None).alias("ci_lower"),
            pl.when(usable).then(odds(upper_p) / nsr).otherwise(None).alias("ci_upper"),
        )
        .with_columns((pl.col("ci_lower").fill_null(0.0) > 1.0).alias("signal"))
    )


def _ratio_table(incident: pl.DataFrame, items: list[str], params: SymmetryParameters) -> pl.DataFrame:
    """Every pair ``a < b`` of ``items`` with counts and ratios, oriented as written (index a, marker b)."""
    chosen = incident.filter(pl.col(ITEM).is_in(items))
    counts = _pair_counts(chosen, params)
    nsr = _null_effect_ratios(chosen, items, params)
    position = {item: i for i, item in enumerate(items)}
    ia = np.array([position[a] for a in counts["a"].to_list()], dtype=np.int64)
    ib = np.array([position[b] for b in counts["b"].to_list()], dtype=np.int64)
    null_sr = nsr[ia, ib] if len(ia) else np.array([], dtype=np.float64)
    pairs = counts.select(
        pl.col("a").alias("index"),
        pl.col("b").alias("marker"),
        pl.col("n_a_first").alias("n_index_first"),
        pl.col("n_b_first").alias("n_marker_first"),
        "n_same_day",
    ).with_columns(pl.Series("null_sr", null_sr, dtype=pl.Float64))
    return _with_ratios(pairs, params).select(list(RESULT_SCHEMA))


def _reversed(table: pl.DataFrame) -> pl.DataFrame:
    """The same pairs read the other way round (B as index): ratios invert, the interval swaps its ends."""

    def inverse(column: str) -> pl.Expr:
        value = pl.col(column)
        return pl.when(value == 0).then(float("inf")).when(value.is_infinite()).then(0.0).otherwise(1 / value)

    return table.select(
        pl.col("marker").alias("index"),
        pl.col("index").alias("marker"),
        pl.col("n_marker_first").alias("n_index_first"),
        pl.col("n_index_first").alias("n_marker_first"),
        "n_same_day",
        inverse("crude_sr").alias("crude_sr"),
        inverse("null_sr").alias("null_sr"),
        inverse("adjusted_sr").alias("adjusted_sr"),
        inverse("ci_upper").alias("ci_lower"),
        inverse("ci_lower").alias("ci_upper"),
    ).with_columns((pl.col("ci_lower").fill_null(0.0) > 1.0).alias("signal"))


def sequence_ratio(
    incident: pl.DataFrame, index: str, marker: str, params: SymmetryParameters
) -> SequenceRatio:
    """The sequence symmetry analysis of one pair: ``index`` (A, the suspected cause) and ``marker`` (B)."""
    if index == marker:
        raise ValueError("the index and the marker must differ")
    low, high = sorted((index, marker))
    table = _ratio_table(incident, [low, high], params)
    if table.is_empty():
        null = _null_effect_ratios(
            incident.filter(pl.col(ITEM).is_in([index, marker])), [index, marker], params
        )
        nsr = None if np.isnan(null[0, 1]) else float(null[0, 1])
        return SequenceRatio(index, marker, 0, 0, 0, None, nsr, None, None, None)
    if low != index:
        table = _reversed(table)
    row = table.row(0, named=True)
    return SequenceRatio(
        index=index,
        marker=marker,
        n_index_first=row["n_index_first"],
        n_marker_first=row["n_marker_first"],
        n_same_day=row["n_same_day"],
        crude_sr=row["crude_sr"],
        null_sr=row["null_sr"],
        adjusted_sr=row["adjusted_sr"],
        ci_lower=row["ci_lower"],
        ci_upper=row["ci_upper"],
    )


def screen(
    incident: pl.DataFrame,
    params: SymmetryParameters,
    top_n: int = 200,
    items: list[str] | None = None,
) -> pl.DataFrame:
    """Every pair among the ``top_n`` commonest items (or ``items``) with at least ``min_pairs`` ordered pairs.

    Each pair appears once, read in the direction in which it is commoner than trends explain (adjusted ratio at
    least 1), so ``index`` is the drug that tends to come first. Sorted by signal, then lower confidence limit.
    Under no association about ``1 - confidence`` of the pairs still show a signal by chance (5 % at 95 %); the
    screen is for generating hypotheses, each to be checked against clinical knowledge.
    """
    chosen = sorted(items if items is not None else commonest_items(incident, top_n))
    table = _ratio_table(incident, chosen, params).filter(
        pl.col("n_index_first") + pl.col("n_marker_first") >= params.min_pairs
    )
    forward = table.filter(pl.col("adjusted_sr").is_null() | (pl.col("adjusted_sr") >= 1))
    backward = _reversed(table.filter(pl.col("adjusted_sr") < 1))
    return (
        pl.concat([forward, backward])
        .sort(
            ["signal", "ci_lower", "index", "marker"], descending=[True, True, False, False], nulls_last=True
        )
        .select(list(RESULT_SCHEMA))
    )


def time_to_marker(incident: pl.DataFrame, index: str, marker: str, params: SymmetryParameters) -> pl.Series:
    """Days from the index start to the marker start for each person with both within the window (negative: the
    marker came first; same-day pairs included as 0)."""
    a = incident.filter(pl.col(ITEM) == index).select(PATIENT, pl.col(START).alias("a"))
    b = incident.filter(pl.col(ITEM) == marker).select(PATIENT, pl.col(START).alias("b"))
    gap = a.join(b, on=PATIENT).select(((pl.col("b") - pl.col("a")).dt.total_days()).alias("days"))["days"]
    return gap.filter(gap.abs() <= params.window_days).sort()


def histogram(days: pl.Series, params: SymmetryParameters, bin_days: int = 30) -> pl.DataFrame:
    """Counts of ``time_to_marker`` in bins of ``bin_days`` (``bin_start`` inclusive), symmetric about day 0.

    Bins never straddle 0: ``[-30, -1]``, ``[0, 0]`` (same day), ``[1, 30]``, ..., so the two sides compare.
    """
    if bin_days < 1:
        raise ValueError("bin_days must be at least 1")
    frame = pl.DataFrame({"days": days.cast(pl.Int64)})
    before = (-pl.col("days") - 1) // bin_days  # -1..-30 -> 0, -31..-60 -> 1
    after = (pl.col("days") - 1) // bin_days  # 1..30 -> 0, 31..60 -> 1
    start = (
        pl.when(pl.col("days") < 0)
        .then(-(before + 1) * bin_days)
        .when(pl.col("days") > 0)
        .then(after * bin_days + 1)
    ).otherwise(0)
    end = (
        pl.when(pl.col("days") < 0)
        .then(-before * bin_days - 1)
        .when(pl.col("days") > 0)
        .then((after + 1) * bin_days)
    ).otherwise(0)
    return (
        frame.with_columns(start.alias("bin_start"), end.alias("bin_end"))
        .group_by("bin_start", "bin_end")
        .len("count")
        .with_columns(pl.col("count").cast(pl.Int64))
        .sort("bin_start")
    )


def known_cascade_pairs(book: RuleBook, knowledge: Knowledge) -> pl.DataFrame:
    """``index, marker, rule_id`` for every published cascade of the rule book (``CASCADE-...`` rules).

    One row per pair of drug keys (every member of the index refs with every member of the marker refs), plus one
    per pair of the class keys the rule names, so both a drug screen and a class screen can be marked.
    """
    rows: list[tuple[str, str, str]] = []
    for rule in book.rules:
        cascade = rule.when.cascade
        if cascade is None:
            continue
        index_drugs = frozenset().union(*(knowledge.expand_ref(ref) for ref in cascade.index))
        marker_drugs = frozenset().union(*(knowledge.expand_ref(ref) for ref in cascade.marker))
        rows.extend((a, b, rule.id) for a in sorted(index_drugs) for b in sorted(marker_drugs))
        index_classes = [ref.partition(":")[2] for ref in cascade.index if ref.startswith("class:")]
        marker_classes = [ref.partition(":")[2] for ref in cascade.marker if ref.startswith("class:")]
        rows.extend((a, b, rule.id) for a in index_classes for b in marker_classes)
    return pl.DataFrame(
        rows, schema={"index": pl.Utf8, "marker": pl.Utf8, "rule_id": pl.Utf8}, orient="row"
    ).unique()


def mark_known(screen_table: pl.DataFrame, known: pl.DataFrame) -> pl.DataFrame:
    """Add ``known_cascade``: the id of a published cascade whose drug A is the index and drug B the marker.

    ``known`` has ``index, marker, rule_id`` (one row per drug or class pair; see ``clinical.cascades``).
    Several ids are joined with ';'.
    """
    ids = known.group_by("index", "marker").agg(
        pl.col("rule_id").unique().sort().str.join(";").alias("known_cascade")
    )
    return screen_table.join(ids, on=["index", "marker"], how="left")
