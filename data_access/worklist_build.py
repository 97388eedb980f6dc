"""Materialise ``worklist_entry``: one summary row per registered patient, rebuilt after derivation and scoring.

Why a materialised table: the worklist must filter and sort 100,000 patients in milliseconds (DESIGN.md targets),
which a query joining patient, condition, prescription, flag, score, prediction, explanation, event and review
cannot do on every scroll. The build is set-based: one aggregate query per source table (each returns at most one
row per patient, or one per patient and kind), joined and finished in polars, then written in one transaction.

The "why now" score orders the list by what has *changed* since the patient's last medication review, not only by
how high the risk is, because a GP's question is "who needs me now". It is a transparent product heuristic (the
weights below), not a validated clinical score, and the Help page says so:

- each high-severity safety flag that started after the last review (or in the last 12 months if never
  reviewed): +3; each such moderate flag: +1 (a new potentially harmful combination matters most);
- a rise in 12-month risk over the last 6 months: +20 per unit of risk (5 percentage points = +1);
- an emergency admission in the last 90 days and after the last review (a recent discharge): +2;
- no medication review recorded in the last 12 months: +1 (SMRs are at least annual for these groups);
- the current level of the highest 12-month risk: +2 per unit (so level still breaks ties).
A patient whose review is snoozed past the as-of date scores 0 and says so.
"""

from __future__ import annotations

import calendar
import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl
from sqlalchemy import Connection, Engine, and_, delete, func, or_, select, true

from data_access.loading import bulk_insert
from data_access.schema import (
    Condition,
    Event,
    Explanation,
    Flag,
    ModelRun,
    Observation,
    Patient,
    Prediction,
    Prescription,
    Review,
    Score,
    WorklistEntry,
)

log = logging.getLogger(__name__)

OUTCOMES = ("emergency_admission", "fall_fracture", "medication_harm", "death")
OUTCOME_WORDS = {
    "emergency_admission": "emergency admission",
    "fall_fracture": "fall or fracture",
    "medication_harm": "medication harm",
    "death": "death",
}
SEVERITY_RANK = {"high": 0, "moderate": 1, "low": 2}
CHUNK_PATIENTS = 20_000
RISK_LOOKBACK_MONTHS = 6
RECENT_DISCHARGE_DAYS = 90
REVIEW_DUE_DAYS = 365

# Why-now weights (see the module docstring: a product heuristic, shown on the Help page).
WHY_NOW_NEW_HIGH_FLAG = 3.0
WHY_NOW_NEW_MODERATE_FLAG = 1.0
WHY_NOW_PER_RISK_RISE = 20.0
WHY_NOW_RECENT_DISCHARGE = 2.0
WHY_NOW_REVIEW_OVERDUE = 1.0
WHY_NOW_PER_RISK_LEVEL = 2.0


@dataclass(frozen=True)
class ConditionGroups:
    """The condition keys that count as long-term, mental-health and physical-health conditions."""

    ltc: frozenset[str]
    mental_health: frozenset[str]
    physical_health: frozenset[str]

    @classmethod
    def from_knowledge(cls) -> ConditionGroups:
        """From the clinical vocabularies (``clinical/data/conditions.yaml`` groups)."""
        from clinical.knowledge import load_knowledge

        groups = load_knowledge().condition_groups
        return cls(
            ltc=groups.get("ltc", frozenset()),
            mental_health=groups.get("mental_health", frozenset()),
            physical_health=groups.get("physical_health", frozenset()),
        )


def refresh_worklist(
    engine: Engine,
    patient_ids: Sequence[str] | None = None,
    as_of: dt.date | None = None,
    *,
    groups: ConditionGroups | None = None,
    rule_titles: dict[str, str] | None = None,
) -> int:
    """Rebuild ``worklist_entry`` for every registered patient (or only ``patient_ids``); returns rows written.

    ``as_of`` defaults to the date of the latest cached prediction, else the latest date in the record (the
    synthetic world need not end today). Patients who died or left the practice by ``as_of`` are removed.
    """
    groups = groups or ConditionGroups.from_knowledge()
    rule_titles = rule_titles if rule_titles is not None else _rule_titles()
    with engine.begin() as connection:
        as_of = as_of or default_as_of(connection)
        model_version = current_model_version(connection)
        if patient_ids is None:
            connection.execute(delete(WorklistEntry))
            frames = [_build(connection, None, as_of, model_version, groups, rule_titles)]
        else:
            ids = list(dict.fromkeys(patient_ids))
            frames = []
            for start in range(0, len(ids), CHUNK_PATIENTS):
                chunk = ids[start : start + CHUNK_PATIENTS]
                connection.execute(delete(WorklistEntry).where(WorklistEntry.patient_id.in_(chunk)))
                frames.append(_build(connection, chunk, as_of, model_version, groups, rule_titles))
        written = sum(bulk_insert(connection, "worklist_entry", frame) for frame in frames)
    log.info("worklist rebuilt: %d patients as of %s", written, as_of.isoformat())
    return written


def default_as_of(connection: Connection) -> dt.date:
    """The date the derived data describe: the later of the latest score and the latest cached prediction (the
    pipeline scores at the extract date and predicts at monthly landmarks), else the latest dated record, else
    today."""
    derived = [
        connection.execute(select(func.max(Score.as_of))).scalar_one_or_none(),
        connection.execute(
            select(func.max(Prediction.as_of)).where(Prediction.scenario == "current")
        ).scalar_one_or_none(),
    ]
    dates = [d for d in derived if d is not None]
    if dates:
        return max(dates)
    candidates = [
        connection.execute(select(func.max(column))).scalar_one_or_none()
        for column in (Prescription.start, Observation.date, Event.date)
    ]
    dates = [d for d in candidates if d is not None and d <= dt.date.today()]
    return max(dates) if dates else dt.date.today()


def current_model_version(connection: Connection) -> str | None:
    """The active model run's version, else the version of the most recently written prediction."""
    active = connection.execute(
        select(ModelRun.version)
        .where(ModelRun.active.is_(True))
        .order_by(ModelRun.created_at.desc())
        .limit(1)
    ).scalar_one_or_none()
    if active:
        return active
    return connection.execute(
        select(Prediction.model_version)
        .where(Prediction.scenario == "current")
        .order_by(Prediction.id.desc())
        .limit(1)
    ).scalar_one_or_none()


def _rule_titles() -> dict[str, str]:
    from clinical.rules import load_rules

    return {rule.id: rule.title for rule in load_rules().rules}


def _in(column: Any, ids: Sequence[str] | None) -> Any:
    return column.in_(list(ids)) if ids is not None else true()


def _frame(connection: Connection, query: Any, schema: dict[str, Any]) -> pl.DataFrame:
    rows = connection.execute(query).all()
    return pl.DataFrame([tuple(r) for r in rows], schema=schema, orient="row")


def _build(
    connection: Connection,
    ids: Sequence[str] | None,
    as_of: dt.date,
    model_version: str | None,
    groups: ConditionGroups,
    rule_titles: dict[str, str],
) -> pl.DataFrame:
    patients = _patients(connection, ids, as_of)
    if patients.height == 0:
        return pl.DataFrame()
    frame = (
        patients.join(_scores(connection, ids, as_of), on="patient_id", how="left")
        .join(_conditions(connection, ids, as_of, groups), on="patient_id", how="left")
        .join(_medicines(connection, ids, as_of), on="patient_id", how="left")
        .join(_events(connection, ids, as_of), on="patient_id", how="left")
        .join(_reviews(connection, ids, as_of), on="patient_id", how="left")
        .join(_risks(connection, ids, as_of, model_version), on="patient_id", how="left")
        .join(_drivers(connection, ids, model_version), on="patient_id", how="left")
    )
    frame = frame.with_columns(
        pl.max_horizontal(pl.col("review_event"), pl.col("review_done")).alias("last_review"),
    )
    flags = _flags(connection, ids, as_of)
    frame = frame.join(
        _flag_summary(flags, frame.select("patient_id", "last_review"), as_of), on="patient_id", how="left"
    )
    return _finish(frame, flags, as_of, model_version, rule_titles)


def _patients(connection: Connection, ids: Sequence[str] | None, as_of: dt.date) -> pl.DataFrame:
    query = select(
        Patient.id, Patient.practice_id, Patient.birth_year, Patient.birth_month, Patient.sex
    ).where(
        _in(Patient.id, ids),
        or_(Patient.died_on.is_(None), Patient.died_on > as_of),
        or_(Patient.deregistered_on.is_(None), Patient.deregistered_on > as_of),
        or_(Patient.registered_on.is_(None), Patient.registered_on <= as_of),
    )
    frame = _frame(
        connection,
        query,
        {
            "patient_id": pl.String,
            "practice_id": pl.String,
            "birth_year": pl.Int32,
            "birth_month": pl.Int32,
            "sex": pl.String,
        },
    )
    # Birth date is the 1st of the birth month (TPP/OpenSAFELY convention, clinical/rules/FORMAT.md).
    return frame.with_columns(
        (pl.lit(as_of.year) - pl.col("birth_year") - (pl.col("birth_month") > as_of.month).cast(pl.Int32))
        .cast(pl.Int32)
        .alias("age")
    ).drop("birth_year", "birth_month")


SCORE_KINDS = ("efi", "acb", "cms", "medicines", "long_term_conditions")


def _scores(connection: Connection, ids: Sequence[str] | None, as_of: dt.date) -> pl.DataFrame:
    latest = (
        select(Score.patient_id, Score.kind, func.max(Score.as_of).label("as_of"))
        .where(_in(Score.patient_id, ids), Score.kind.in_(SCORE_KINDS), Score.as_of <= as_of)
        .group_by(Score.patient_id, Score.kind)
        .subquery()
    )
    query = select(Score.patient_id, Score.kind, Score.value).join(
        latest,
        and_(
            Score.patient_id == latest.c.patient_id,
            Score.kind == latest.c.kind,
            Score.as_of == latest.c.as_of,
        ),
    )
    long = _frame(connection, query, {"patient_id": pl.String, "kind": pl.String, "value": pl.Float64})
    wide = long.unique(["patient_id", "kind"], keep="last").pivot(
        on="kind", index="patient_id", values="value"
    )
    for kind in SCORE_KINDS:
        if kind not in wide.columns:
            wide = wide.with_columns(pl.lit(None, dtype=pl.Float64).alias(kind))
    return wide.select(
        "patient_id",
        *(pl.col(k).cast(pl.Float64).alias(f"score_{k}") for k in SCORE_KINDS),
    )


def _conditions(
    connection: Connection, ids: Sequence[str] | None, as_of: dt.date, groups: ConditionGroups
) -> pl.DataFrame:
    query = (
        select(Condition.patient_id, func.aggregate_strings(Condition.condition_key, ";"))
        .where(
            _in(Condition.patient_id, ids),
            Condition.condition_key.is_not(None),
            Condition.onset <= as_of,
            or_(Condition.resolved.is_(None), Condition.resolved >= as_of),
        )
        .group_by(Condition.patient_id)
    )
    frame = _frame(connection, query, {"patient_id": pl.String, "joined": pl.String})
    keys = pl.col("joined").str.split(";").list.unique().list.sort()
    return frame.select(
        "patient_id",
        keys.list.join(";").alias("condition_keys"),
        keys.list.eval(pl.element().is_in(list(groups.ltc)))
        .list.sum()
        .cast(pl.Int32)
        .alias("ltc_from_conditions"),
        (
            keys.list.eval(pl.element().is_in(list(groups.mental_health))).list.any()
            & keys.list.eval(pl.element().is_in(list(groups.physical_health))).list.any()
        ).alias("mental_and_physical"),
    )


def _medicines(connection: Connection, ids: Sequence[str] | None, as_of: dt.date) -> pl.DataFrame:
    ingredients = func.coalesce(func.nullif(Prescription.ingredients, ""), Prescription.drug_key)
    query = (
        select(Prescription.patient_id, func.aggregate_strings(ingredients, ";"))
        .where(
            _in(Prescription.patient_id, ids),
            ingredients.is_not(None),
            Prescription.start <= as_of,
            or_(Prescription.stop.is_(None), Prescription.stop >= as_of),
        )
        .group_by(Prescription.patient_id)
    )
    frame = _frame(connection, query, {"patient_id": pl.String, "joined": pl.String})
    keys = (
        pl.col("joined")
        .str.split(";")
        .list.eval(pl.element().filter(pl.element() != ""))
        .list.unique()
        .list.sort()
    )
    return frame.select(
        "patient_id",
        keys.list.join(";").alias("active_drugs"),
        keys.list.len().cast(pl.Int32).alias("medicines_from_prescriptions"),
    )


def _events(connection: Connection, ids: Sequence[str] | None, as_of: dt.date) -> pl.DataFrame:
    query = (
        select(Event.patient_id, Event.type, func.max(Event.date))
        .where(
            _in(Event.patient_id, ids),
            Event.type.in_(("emergency_admission", "medication_review")),
            Event.date <= as_of,
        )
        .group_by(Event.patient_id, Event.type)
    )
    long = _frame(connection, query, {"patient_id": pl.String, "type": pl.String, "date": pl.Date})
    out = long.pivot(on="type", index="patient_id", values="date")
    for kind in ("emergency_admission", "medication_review"):
        if kind not in out.columns:
            out = out.with_columns(pl.lit(None, dtype=pl.Date).alias(kind))
    return out.select(
        "patient_id",
        pl.col("emergency_admission").cast(pl.Date).alias("last_discharge"),
        pl.col("medication_review").cast(pl.Date).alias("review_event"),
    )


def _reviews(connection: Connection, ids: Sequence[str] | None, as_of: dt.date) -> pl.DataFrame:
    end_of_day = dt.datetime.combine(as_of, dt.time.max)
    done = (
        select(Review.patient_id, func.max(Review.at))
        .where(_in(Review.patient_id, ids), Review.status == "reviewed", Review.at <= end_of_day)
        .group_by(Review.patient_id)
    )
    snoozed = (
        select(Review.patient_id, func.max(Review.snooze_until))
        .where(_in(Review.patient_id, ids), Review.status == "snoozed", Review.snooze_until > as_of)
        .group_by(Review.patient_id)
    )
    done_frame = _frame(connection, done, {"patient_id": pl.String, "at": pl.Datetime}).select(
        "patient_id", pl.col("at").dt.date().alias("review_done")
    )
    snooze_frame = _frame(connection, snoozed, {"patient_id": pl.String, "snooze_until": pl.Date})
    return done_frame.join(snooze_frame, on="patient_id", how="full", coalesce=True)


def _risks(
    connection: Connection, ids: Sequence[str] | None, as_of: dt.date, model_version: str | None
) -> pl.DataFrame:
    schema = {
        "patient_id": pl.String,
        **{f"risk_{o}": pl.Float64 for o in OUTCOMES},
        "risk_change_6m": pl.Float64,
        "rising_outcome": pl.String,
    }
    if model_version is None:
        return pl.DataFrame(schema=schema)
    now = _risk_at(connection, ids, as_of, model_version).rename({"risk": "now"})
    before = _risk_at(connection, ids, months_before(as_of, RISK_LOOKBACK_MONTHS), model_version).rename(
        {"risk": "before"}
    )
    long = now.join(before, on=["patient_id", "outcome"], how="left").with_columns(
        (pl.col("now") - pl.col("before")).alias("change")
    )
    wide = long.pivot(on="outcome", index="patient_id", values="now")
    for outcome in OUTCOMES:
        if outcome not in wide.columns:
            wide = wide.with_columns(pl.lit(None, dtype=pl.Float64).alias(outcome))
    rising = (
        long.filter(pl.col("change").is_not_null())
        .sort(["patient_id", "change", "outcome"], descending=[False, True, False])
        .group_by("patient_id", maintain_order=True)
        .first()
        .select(
            "patient_id", pl.col("change").alias("risk_change_6m"), pl.col("outcome").alias("rising_outcome")
        )
    )
    return wide.select("patient_id", *(pl.col(o).alias(f"risk_{o}") for o in OUTCOMES)).join(
        rising, on="patient_id", how="left"
    )


def months_before(day: dt.date, months: int) -> dt.date:
    """The same day ``months`` calendar months earlier (clamped to the month's length: 31 Aug → 28/29 Feb)."""
    year, month = divmod(day.year * 12 + day.month - 1 - months, 12)
    return dt.date(year, month + 1, min(day.day, calendar.monthrange(year, month + 1)[1]))


def _risk_at(
    connection: Connection, ids: Sequence[str] | None, on: dt.date, model_version: str
) -> pl.DataFrame:
    """Each patient's latest current-scenario 12-month risk per outcome dated on or before ``on``."""
    base = and_(
        _in(Prediction.patient_id, ids),
        Prediction.model_version == model_version,
        Prediction.scenario == "current",
        Prediction.horizon_months == 12,
    )
    latest = (
        select(Prediction.patient_id, Prediction.outcome, func.max(Prediction.as_of).label("as_of"))
        .where(base, Prediction.as_of <= on)
        .group_by(Prediction.patient_id, Prediction.outcome)
        .subquery()
    )
    query = (
        select(Prediction.patient_id, Prediction.outcome, Prediction.risk)
        .join(
            latest,
            and_(
                Prediction.patient_id == latest.c.patient_id,
                Prediction.outcome == latest.c.outcome,
                Prediction.as_of == latest.c.as_of,
            ),
        )
        .where(base)
    )
    frame = _frame(connection, query, {"patient_id": pl.String, "outcome": pl.String, "risk": pl.Float64})
    return frame.unique(["patient_id", "outcome"], keep="last")


def _drivers(connection: Connection, ids: Sequence[str] | None, model_version: str | None) -> pl.DataFrame:
    """The top three factors pushing each patient's risk up at their latest explained date (any outcome)."""
    schema = {"patient_id": pl.String, "drivers": pl.String}
    if model_version is None:
        return pl.DataFrame(schema=schema)
    latest = (
        select(Explanation.patient_id, func.max(Explanation.as_of).label("as_of"))
        .where(_in(Explanation.patient_id, ids), Explanation.model_version == model_version)
        .group_by(Explanation.patient_id)
        .subquery()
    )
    ranked = (
        select(
            Explanation.patient_id,
            Explanation.factor,
            func.row_number()
            .over(
                partition_by=Explanation.patient_id,
                order_by=(Explanation.contribution.desc(), Explanation.factor),
            )
            .label("rank"),
        )
        .join(
            latest, and_(Explanation.patient_id == latest.c.patient_id, Explanation.as_of == latest.c.as_of)
        )
        .where(Explanation.model_version == model_version, Explanation.contribution > 0)
        .subquery()
    )
    query = select(ranked.c.patient_id, ranked.c.factor, ranked.c.rank).where(ranked.c.rank <= 12)
    frame = _frame(connection, query, {"patient_id": pl.String, "factor": pl.String, "rank": pl.Int64})
    drivers: dict[str, list[str]] = {}
    for patient_id, factor, _rank in frame.sort(["patient_id", "rank"]).iter_rows():
        labels = drivers.setdefault(patient_id, [])
        label = factor_label(factor)
        if len(labels) < 3 and label not in labels:
            labels.append(label)
    return pl.DataFrame(
        {"patient_id": list(drivers), "drivers": [", ".join(v) for v in drivers.values()]}, schema=schema
    )


FACTOR_LAB_LABELS = {"egfr": "eGFR", "hba1c": "HbA1c", "alt": "ALT", "inr": "INR", "tsh": "TSH", "bmi": "BMI"}


def factor_label(factor: str, rule_titles: dict[str, str] | None = None) -> str:
    """A model factor (``kind:key``, as ``models.explain`` names them) in plain words: 'drug:ibuprofen' →
    'ibuprofen', 'condition:heart_failure' → 'heart failure', 'event:fall' → 'recent fall', 'lab:egfr' →
    'eGFR result', 'interaction:STOPP-v3-B11' → 'flagged combination STOPP-v3-B11'."""
    kind, sep, key = factor.partition(":")
    if not sep:
        return factor.replace("_", " ")
    if kind == "event":
        return f"recent {key.replace('_', ' ')}"
    if kind == "lab":
        return f"{FACTOR_LAB_LABELS.get(key, key.replace('_', ' '))} result"
    if kind == "interaction":
        title = (rule_titles or {}).get(key)
        return f"flagged combination {key}" + (f" ({title})" if title else "")
    return key.replace("_", " ")


def _efi_categories(values: pl.Series) -> pl.Series:
    """eFI categories with the published cut-offs (Clegg 2016), from the one implementation in ``clinical``."""
    from clinical.timeline import efi_category

    return pl.Series(
        "efi_category", [None if v is None else efi_category(v) for v in values.to_list()], dtype=pl.String
    )


def _flags(connection: Connection, ids: Sequence[str] | None, as_of: dt.date) -> pl.DataFrame:
    query = select(Flag.patient_id, Flag.rule_id, Flag.severity, Flag.start).where(
        _in(Flag.patient_id, ids), Flag.start <= as_of, or_(Flag.end.is_(None), Flag.end >= as_of)
    )
    frame = _frame(
        connection,
        query,
        {"patient_id": pl.String, "rule_id": pl.String, "severity": pl.String, "start": pl.Date},
    )
    # One rule can hold in two overlapping periods only through data error; keep its latest start.
    return frame.sort("start").unique(["patient_id", "rule_id"], keep="last")


def _flag_summary(flags: pl.DataFrame, reviews: pl.DataFrame, as_of: dt.date) -> pl.DataFrame:
    since_default = as_of - dt.timedelta(days=REVIEW_DUE_DAYS)
    with_review = flags.join(reviews, on="patient_id", how="left").with_columns(
        (pl.col("start") > pl.coalesce(pl.col("last_review"), pl.lit(since_default))).alias("new")
    )
    return with_review.group_by("patient_id").agg(
        (pl.col("severity") == "high").sum().cast(pl.Int32).alias("flags_high"),
        (pl.col("severity") == "moderate").sum().cast(pl.Int32).alias("flags_moderate"),
        (pl.col("severity") == "low").sum().cast(pl.Int32).alias("flags_low"),
        ((pl.col("severity") == "high") & pl.col("new")).sum().cast(pl.Int32).alias("new_high"),
        ((pl.col("severity") == "moderate") & pl.col("new")).sum().cast(pl.Int32).alias("new_moderate"),
        pl.col("rule_id").sort().str.join(";").alias("active_rules"),
    )


def _finish(
    frame: pl.DataFrame,
    flags: pl.DataFrame,
    as_of: dt.date,
    model_version: str | None,
    rule_titles: dict[str, str],
) -> pl.DataFrame:
    zero_ints = ["flags_high", "flags_moderate", "flags_low", "new_high", "new_moderate"]
    frame = frame.with_columns(
        *(pl.col(c).fill_null(0) for c in zero_ints),
        pl.col("active_rules").fill_null(""),
        pl.col("active_drugs").fill_null(""),
        pl.col("condition_keys").fill_null(""),
        pl.col("mental_and_physical").fill_null(False),
        pl.coalesce(
            pl.col("score_long_term_conditions").round(0).cast(pl.Int32),
            pl.col("ltc_from_conditions"),
            pl.lit(0),
        )
        .cast(pl.Int32)
        .alias("ltc_count"),
        pl.coalesce(
            pl.col("score_medicines").round(0).cast(pl.Int32),
            pl.col("medicines_from_prescriptions"),
            pl.lit(0),
        )
        .cast(pl.Int32)
        .alias("medicines_count"),
    )
    frame = frame.with_columns(_efi_categories(frame["score_efi"]))
    headline = _headline_flags(flags, frame.select("patient_id", "last_review"), as_of, rule_titles)
    frame = frame.join(headline, on="patient_id", how="left")
    rows = [_why(row, as_of) for row in frame.iter_rows(named=True)]
    why = pl.DataFrame(
        rows, schema={"patient_id": pl.String, "why": pl.String, "why_now_score": pl.Float64}, orient="row"
    )
    frame = frame.join(why, on="patient_id", how="left")
    return frame.select(
        "patient_id",
        "practice_id",
        "age",
        "sex",
        "ltc_count",
        "medicines_count",
        "mental_and_physical",
        pl.col("score_efi").alias("efi"),
        "efi_category",
        pl.col("score_acb").alias("acb"),
        pl.col("score_cms").alias("cms"),
        *(f"risk_{o}" for o in OUTCOMES),
        "risk_change_6m",
        "flags_high",
        "flags_moderate",
        "flags_low",
        "active_rules",
        "active_drugs",
        "condition_keys",
        "last_review",
        "last_discharge",
        "why",
        "why_now_score",
        pl.lit(model_version, dtype=pl.String).alias("model_version"),
    )


def _headline_flags(
    flags: pl.DataFrame, reviews: pl.DataFrame, as_of: dt.date, rule_titles: dict[str, str]
) -> pl.DataFrame:
    """Per patient, the two most important active flags (new first, then by severity) as short text."""
    since_default = as_of - dt.timedelta(days=REVIEW_DUE_DAYS)
    ranked = (
        flags.join(reviews, on="patient_id", how="left")
        .with_columns(
            (pl.col("start") > pl.coalesce(pl.col("last_review"), pl.lit(since_default))).alias("new"),
            pl.col("severity").replace_strict(SEVERITY_RANK, default=3, return_dtype=pl.Int32).alias("rank"),
            pl.col("rule_id")
            .replace_strict(rule_titles, default=None, return_dtype=pl.String)
            .alias("title"),
        )
        .sort(["patient_id", "new", "rank", "start", "rule_id"], descending=[False, True, False, True, False])
    )
    text = pl.concat_str(
        pl.when(pl.col("new")).then(pl.lit("New: ")).otherwise(pl.lit("")),
        pl.col("rule_id"),
        pl.when(pl.col("title").is_not_null()).then(pl.lit(" ") + pl.col("title")).otherwise(pl.lit("")),
        pl.lit(" ("),
        pl.col("severity"),
        pl.lit(")"),
    )
    return (
        ranked.with_columns(text.alias("text"))
        .group_by("patient_id", maintain_order=True)
        .agg(pl.col("text").head(2).str.join("; ").alias("flag_text"), pl.len().alias("flag_total"))
    )


def _why(row: dict[str, Any], as_of: dt.date) -> tuple[str, str, float]:
    """The 'why on the list' sentence and the why-now score of one patient (weights: module docstring)."""
    parts: list[str] = []
    score = 0.0
    if row.get("flag_text"):
        parts.append(row["flag_text"])
        more = int(row.get("flag_total") or 0) - 2
        if more > 0:
            parts.append(f"+{more} more flag{'s' if more > 1 else ''}")
    score += WHY_NOW_NEW_HIGH_FLAG * row["new_high"] + WHY_NOW_NEW_MODERATE_FLAG * row["new_moderate"]
    change = row.get("risk_change_6m")
    if change is not None and change > 0:
        score += WHY_NOW_PER_RISK_RISE * change
        if change >= 0.05:
            parts.append(
                f"Risk of {OUTCOME_WORDS.get(row.get('rising_outcome') or '', 'harm')} up {change * 100:.0f} "
                "points in 6 months"
            )
    last_review = row.get("last_review")
    discharge = row.get("last_discharge")
    if (
        discharge
        and (as_of - discharge).days <= RECENT_DISCHARGE_DAYS
        and (last_review is None or discharge > last_review)
    ):
        score += WHY_NOW_RECENT_DISCHARGE
        parts.append(f"Emergency admission {discharge.strftime('%d %b %Y')}")
    if last_review is None or (as_of - last_review).days > REVIEW_DUE_DAYS:
        score += WHY_NOW_REVIEW_OVERDUE
    risks = [row.get(f"risk_{o}") for o in OUTCOMES]
    level = max((r for r in risks if r is not None), default=0.0)
    score += WHY_NOW_PER_RISK_LEVEL * level
    if row.get("drivers"):
        parts.append(f"Model risk driven by {row['drivers']}")
    if not parts:
        parts.extend(_cohort_reasons(row))
    snooze = row.get("snooze_until")
    if snooze is not None:
        parts.insert(0, f"Review snoozed until {snooze.strftime('%d %b %Y')}")
        score = 0.0
    return row["patient_id"], "; ".join(parts), round(score, 4)


def _cohort_reasons(row: dict[str, Any]) -> list[str]:
    reasons = []
    if row.get("mental_and_physical"):
        reasons.append("Mental and physical health conditions")
    if (row.get("ltc_count") or 0) >= 4 and (row.get("medicines_count") or 0) >= 10:
        reasons.append(f"{row['ltc_count']} long-term conditions and {row['medicines_count']} medicines")
    if row.get("efi_category") in ("moderate", "severe"):
        reasons.append(f"{row['efi_category'].capitalize()} frailty (eFI)")
    return reasons
