"""Flags and scores for a whole population held in polars frames of the canonical layout.

``evaluate_population`` is what ``data_access.derive`` runs over the database (100,000 patients' full histories in
well under a minute on two cores). It does not re-implement any rule: polars does the column work (date → day
ordinals, grouping rows by patient, splitting ingredient lists), then each patient's rows become a
``PatientTimeline`` and go through the same ``SafetyEngine`` as the single-patient Patient JSON path. The Python
part is split across worker processes (fork, copy-on-write: the prepared rows are inherited, not pickled).

Frames (DB tables of DESIGN.md; extra columns are ignored, missing optional tables are treated as empty):
``patient`` (id, birth_year, birth_month, sex, died_on?, deregistered_on?), ``condition`` (patient_id,
condition_key, onset, resolved), ``prescription`` (patient_id, ingredients, drug_key?, start, stop),
``observation`` (patient_id, type, value, date), ``event`` (patient_id, type, date), ``social_care``
(patient_id, kind, start, end).
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import polars as pl

from clinical.engine import SafetyEngine, default_engine
from clinical.record import birth_date_from_year_month
from clinical.scores import NUMERIC_SCORE_KINDS, scores_on
from clinical.timeline import PatientTimeline

EPOCH_ORDINAL = date(1970, 1, 1).toordinal()  # polars Date is days since 1970-01-01
FLAG_SCHEMA = {
    "patient_id": pl.Utf8,
    "rule_id": pl.Utf8,
    "start": pl.Date,
    "end": pl.Date,
    "drugs": pl.Utf8,
    "severity": pl.Utf8,
}
SCORE_SCHEMA = {"patient_id": pl.Utf8, "kind": pl.Utf8, "as_of": pl.Date, "value": pl.Float64}
# Below this many patients the cost of starting workers outweighs the gain.
MIN_PATIENTS_PER_WORKER = 2_000


@dataclass
class _PreparedPopulation:
    """Per-patient rows as Python lists, indexed by patient position (what each worker reads)."""

    ids: list[str]
    as_of: int
    birth: list[date]
    sex: list[str | None]
    hi: list[int]
    prescriptions: list[list]
    conditions: list[list]
    labs: list[list]
    events: list[list]
    social_care: list[list]


_SHARED: dict[str, object] = {}  # set in the parent just before forking workers


def evaluate_population(
    frames: dict[str, pl.DataFrame],
    as_of: date,
    engine: SafetyEngine | None = None,
    workers: int | None = None,
    score_dates: Sequence[date] = (),
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Flag periods and scores of every patient in ``frames`` over their history up to ``as_of``.

    Returns ``(flags, scores)``: flags ``[patient_id, rule_id, start, end, drugs, severity]`` (``drugs``
    ';'-joined, ``end`` null while the flag still holds on the patient's last day) and scores
    ``[patient_id, kind, as_of, value]`` for the kinds in ``NUMERIC_SCORE_KINDS`` on ``as_of`` and on each of
    ``score_dates`` (e.g. month ends, for trajectories). A patient's last day is ``as_of``, or the day of death or
    deregistration if earlier; scores are taken on that day when ``as_of`` is later.
    """
    engine = engine or default_engine()
    prepared = prepare_population(frames, as_of)
    n = len(prepared.ids)
    if workers is None:
        workers = min(2, os.cpu_count() or 1)
    workers = max(1, min(workers, n // MIN_PATIENTS_PER_WORKER or 1))
    days = sorted({as_of, *score_dates})
    if workers == 1:
        flag_rows, score_rows = _evaluate_range(engine, prepared, days, 0, n)
    else:
        flag_rows, score_rows = _evaluate_in_workers(engine, prepared, days, n, workers)
    return _flag_frame(flag_rows), _score_frame(score_rows)


def prepare_population(frames: dict[str, pl.DataFrame], as_of: date) -> _PreparedPopulation:
    """Group the canonical frames into per-patient rows of day ordinals."""
    patients = frames["patient"]
    ids = patients["id"].cast(pl.Utf8).to_list()
    position = pl.DataFrame(
        {"patient_id": ids, "_pos": list(range(len(ids)))}, schema={"patient_id": pl.Utf8, "_pos": pl.Int64}
    )
    as_of_ordinal = as_of.toordinal()
    hi = [as_of_ordinal] * len(ids)
    for column in ("died_on", "deregistered_on"):
        if column in patients.columns:
            for i, value in enumerate(_ordinals(patients, column)):
                if value is not None and value < hi[i]:
                    hi[i] = value
    birth = [
        birth_date_from_year_month(year, month or 1)
        for year, month in zip(
            patients["birth_year"].to_list(), patients["birth_month"].to_list(), strict=True
        )
    ]
    sex = patients["sex"].to_list() if "sex" in patients.columns else [None] * len(ids)
    n = len(ids)
    return _PreparedPopulation(
        ids=ids,
        as_of=as_of_ordinal,
        birth=birth,
        sex=sex,
        hi=hi,
        prescriptions=_prescription_rows(frames.get("prescription"), position, n),
        conditions=_grouped(
            frames.get("condition"),
            position,
            n,
            ["condition_key", "onset", "resolved"],
            dates=("onset", "resolved"),
            require="condition_key",
        ),
        labs=_grouped(frames.get("observation"), position, n, ["type", "date", "value"], dates=("date",)),
        events=_grouped(frames.get("event"), position, n, ["type", "date"], dates=("date",)),
        social_care=_grouped(
            frames.get("social_care"), position, n, ["kind", "start", "end"], dates=("start", "end")
        ),
    )


def _ordinals(frame: pl.DataFrame, column: str) -> list[int | None]:
    return (frame[column].cast(pl.Date).cast(pl.Int64) + EPOCH_ORDINAL).to_list()


def _with_positions(
    frame: pl.DataFrame | None, position: pl.DataFrame, columns: list[str]
) -> pl.DataFrame | None:
    if frame is None or frame.height == 0 or any(c not in frame.columns for c in columns):
        return None
    return (
        frame.select(["patient_id", *columns])
        .with_columns(pl.col("patient_id").cast(pl.Utf8))
        .join(position, on="patient_id", how="inner")
        .sort("_pos")
    )


def _grouped(
    frame: pl.DataFrame | None,
    position: pl.DataFrame,
    n: int,
    columns: list[str],
    dates: tuple[str, ...],
    require: str | None = None,
) -> list[list]:
    out: list[list] = [[] for _ in range(n)]
    joined = _with_positions(frame, position, columns)
    if joined is None:
        return out
    if require is not None:
        joined = joined.filter(pl.col(require).is_not_null() & (pl.col(require) != ""))
    # The first date column (onset, date, start) places a row in time; a row without it cannot be evaluated.
    joined = joined.filter(pl.col(dates[0]).is_not_null() & pl.col(columns[0]).is_not_null())
    joined = joined.with_columns(
        [(pl.col(c).cast(pl.Date).cast(pl.Int64) + EPOCH_ORDINAL).alias(c) for c in dates]
    )
    values = [joined[c].to_list() for c in columns]
    for pos, row in zip(joined["_pos"].to_list(), zip(*values, strict=True), strict=True):
        out[pos].append(row)
    return out


def _prescription_rows(frame: pl.DataFrame | None, position: pl.DataFrame, n: int) -> list[list]:
    out: list[list] = [[] for _ in range(n)]
    if frame is None or frame.height == 0:
        return out
    columns = ["ingredients", "start", "stop"]
    if "drug_key" in frame.columns:
        columns.append("drug_key")
    joined = _with_positions(frame, position, columns)
    if joined is None:
        return out
    joined = joined.with_columns(
        [(pl.col(c).cast(pl.Date).cast(pl.Int64) + EPOCH_ORDINAL).alias(c) for c in ("start", "stop")]
    )
    drug_keys = joined["drug_key"].to_list() if "drug_key" in joined.columns else [None] * joined.height
    split_cache: dict[tuple[str | None, str | None], tuple[str, ...]] = {}
    for pos, ingredients, start, stop, drug_key in zip(
        joined["_pos"].to_list(),
        joined["ingredients"].to_list(),
        joined["start"].to_list(),
        joined["stop"].to_list(),
        drug_keys,
        strict=True,
    ):
        key = (ingredients, drug_key)
        parsed = split_cache.get(key)
        if parsed is None:
            parsed = tuple(p for p in (ingredients or "").split(";") if p) or (
                (drug_key,) if drug_key else ()
            )
            split_cache[key] = parsed
        if parsed and start is not None:
            out[pos].append((parsed, start, stop))
    return out


def _timeline(engine: SafetyEngine, prepared: _PreparedPopulation, i: int) -> PatientTimeline:
    return PatientTimeline.from_rows(
        patient_id=prepared.ids[i],
        birth=prepared.birth[i],
        sex=prepared.sex[i],
        hi=prepared.hi[i],
        knowledge=engine.knowledge,
        prescriptions=prepared.prescriptions[i],
        conditions=prepared.conditions[i],
        labs=prepared.labs[i],
        events=prepared.events[i],
        social_care=prepared.social_care[i],
        open_from=prepared.as_of,
    )


def _evaluate_range(
    engine: SafetyEngine, prepared: _PreparedPopulation, days: list[date], start: int, stop: int
) -> tuple[list[tuple], list[tuple]]:
    flag_rows: list[tuple] = []
    score_rows: list[tuple] = []
    for i in range(start, stop):
        timeline = _timeline(engine, prepared, i)
        patient_id = prepared.ids[i]
        for flag in engine.evaluate_timeline(timeline):
            flag_rows.append(
                (
                    patient_id,
                    flag.rule_id,
                    flag.start.toordinal(),
                    None if flag.end is None else flag.end.toordinal(),
                    ";".join(flag.drugs),
                    flag.severity,
                )
            )
        for day in days:
            on = day if day.toordinal() <= timeline.hi else timeline.as_of
            if on.toordinal() < timeline.lo:
                continue
            values = scores_on(timeline, on)
            for kind in NUMERIC_SCORE_KINDS:
                score_rows.append((patient_id, kind, day.toordinal(), float(values[kind])))
    return flag_rows, score_rows


def _worker(bounds: tuple[int, int]) -> tuple[list[tuple], list[tuple]]:
    engine = _SHARED["engine"]
    prepared = _SHARED["prepared"]
    days = _SHARED["days"]
    return _evaluate_range(engine, prepared, days, *bounds)  # type: ignore[arg-type]


def _evaluate_in_workers(
    engine: SafetyEngine, prepared: _PreparedPopulation, days: list[date], n: int, workers: int
) -> tuple[list[tuple], list[tuple]]:
    # Several chunks per worker even out the load; fork shares the prepared rows copy-on-write.
    chunks = workers * 4
    size = -(-n // chunks)
    bounds = [(a, min(a + size, n)) for a in range(0, n, size)]
    _SHARED.update(engine=engine, prepared=prepared, days=days)
    try:
        context = multiprocessing.get_context("fork")
        with context.Pool(workers) as pool:
            results = pool.map(_worker, bounds)
    finally:
        _SHARED.clear()
    flag_rows: list[tuple] = []
    score_rows: list[tuple] = []
    for flags, scores in results:
        flag_rows.extend(flags)
        score_rows.extend(scores)
    return flag_rows, score_rows


def _flag_frame(rows: list[tuple]) -> pl.DataFrame:
    if not rows:
        return pl.DataFrame(schema=FLAG_SCHEMA)
    frame = pl.DataFrame(
        rows,
        schema={
            "patient_id": pl.Utf8,
            "rule_id": pl.Utf8,
            "start": pl.Int64,
            "end": pl.Int64,
            "drugs": pl.Utf8,
            "severity": pl.Utf8,
        },
        orient="row",
    )
    return frame.with_columns(
        (pl.col("start") - EPOCH_ORDINAL).cast(pl.Int32).cast(pl.Date),
        (pl.col("end") - EPOCH_ORDINAL).cast(pl.Int32).cast(pl.Date),
    )


def _score_frame(rows: list[tuple]) -> pl.DataFrame:
    if not rows:
        return pl.DataFrame(schema=SCORE_SCHEMA)
    frame = pl.DataFrame(
        rows,
        schema={"patient_id": pl.Utf8, "kind": pl.Utf8, "as_of": pl.Int64, "value": pl.Float64},
        orient="row",
    )
    return frame.with_columns((pl.col("as_of") - EPOCH_ORDINAL).cast(pl.Int32).cast(pl.Date))
