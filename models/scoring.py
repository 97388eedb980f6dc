"""Fill the prediction cache: every patient's monthly risk trajectory with bounds, and the drivers of the latest one.

Patients are scored in chunks (``CHUNK_PATIENTS``): each chunk is read, built into snapshot graphs, scored in
mini-batches and written in one transaction that first deletes that model version's rows for those patients, so
re-running is idempotent and a reader never sees a half-written patient. Memory stays bounded at any population
size; the graph build is vectorised, so the network (not Python) dominates, and a GPU speeds it up directly.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import torch
from sqlalchemy import Engine, delete, select

from data_access.loading import bulk_insert
from data_access.schema import Explanation, Patient, Prediction
from models.cohort import database_extract_date, load_cohort, scoring_grid
from models.config import HORIZON_MONTHS, OUTCOMES
from models.device import select_device
from models.explain import explain_batch
from models.graph import build_population_graph, make_batch, population_key_index
from models.network import to_tensors
from models.predict import autocast, batches, risk_with_bounds
from models.registry import ModelBundle, resolve_version

CHUNK_PATIENTS = 20_000
TOP_FACTORS = 8  # drivers stored per patient and outcome (largest absolute contributions)
CURRENT = "current"


def score_population(
    engine: Engine,
    *,
    model_dir: Path | None = None,
    version: str | None = None,
    batch_size: int = 512,
    device: str | None = None,
    progress: bool = False,
    patient_ids: Sequence[str] | None = None,
    explain: bool = True,
    write: bool = True,
) -> dict[str, Any]:
    """Score ``patient_ids`` (default: everyone) with ``version`` (default: the active model).

    Returns stats: patients, predictions and explanations written, seconds, patients per second (end to end and
    for the network alone), the device and the model version. ``write=False`` scores without touching the cache
    (used by the benchmark to time the model apart from the database).
    """
    from data_access.settings import model_dir as default_model_dir

    started = time.perf_counter()
    model_dir = Path(model_dir) if model_dir is not None else default_model_dir()
    torch_device = select_device(device)
    version = resolve_version(engine, model_dir, version)
    bundle = ModelBundle.load(model_dir / version, torch_device)
    ids = sorted(patient_ids) if patient_ids is not None else _all_patient_ids(engine)
    extract = database_extract_date(engine)
    stats: dict[str, Any] = {"patients": 0, "predictions": 0, "explanations": 0, "model_seconds": 0.0}
    if extract is None or not ids:
        return {
            **stats,
            "seconds": 0.0,
            "patients_per_second": 0.0,
            "model_version": version,
            "device": str(torch_device),
        }
    grid = scoring_grid(extract, bundle.config.trajectory_months)
    bar = _bar(progress, len(ids))
    for start in range(0, len(ids), CHUNK_PATIENTS):
        chunk = ids[start : start + CHUNK_PATIENTS]
        cohort = load_cohort(engine, chunk, extract_date=extract)
        population = build_population_graph(cohort, grid, bundle.vocabulary, bundle.config)
        predictions, explanations, model_seconds = _score_chunk(
            bundle, population, torch_device, batch_size, explain, bar
        )
        stats["model_seconds"] += model_seconds
        if write:
            _replace_rows(engine, chunk, version, predictions, explanations)
        stats["patients"] += len(chunk)
        stats["predictions"] += predictions.height
        stats["explanations"] += explanations.height
    if bar is not None:
        bar.close()
    seconds = time.perf_counter() - started
    stats.update(
        seconds=seconds,
        patients_per_second=stats["patients"] / seconds if seconds > 0 else 0.0,
        model_patients_per_second=stats["patients"] / stats["model_seconds"]
        if stats["model_seconds"] > 0
        else 0.0,
        model_version=version,
        device=str(torch_device),
        landmarks=[grid.dates[0].isoformat(), grid.dates[-1].isoformat()],
    )
    return stats


def _score_chunk(
    bundle: ModelBundle, population: Any, device: torch.device, batch_size: int, explain: bool, bar: Any
) -> tuple[pl.DataFrame, pl.DataFrame, float]:
    model = bundle.model
    model.eval()
    keys = population_key_index(population)
    T = population.months
    dates = np.array(population.grid.dates, dtype="datetime64[D]")
    ids = np.array(population.patient_ids, dtype=object)
    prediction_parts: list[pl.DataFrame] = []
    explanation_parts: list[pl.DataFrame] = []
    model_seconds = 0.0
    rows = np.arange(population.num_patients)
    for chunk in batches(rows, batch_size):
        began = time.perf_counter()
        graph_batch = make_batch(population, chunk, keys)
        tensors = to_tensors(graph_batch, device)
        with torch.inference_mode(), autocast(device):
            z = model.encode(tensors)
            states, head_input = model.sequence(z, tensors.batch_size, tensors.months)
            points, samples = model.heads_with_samples(head_input)
        risk, lower, upper = risk_with_bounds(
            points.float().cpu().numpy(),
            samples.float().cpu().numpy(),
            bundle.calibration,
            bundle.config.interval_level,
        )
        in_record = graph_batch.in_record
        latest = np.where(in_record.any(axis=1), T - 1 - np.argmax(in_record[:, ::-1], axis=1), -1)
        drivers = (
            explain_batch(model, population, graph_batch, latest, states.float(), bundle.calibration, device)
            if explain
            else None
        )
        model_seconds += time.perf_counter() - began
        prediction_parts.append(
            _prediction_frame(ids[chunk], dates, in_record, risk, lower, upper, bundle.version)
        )
        if drivers is not None and len(drivers.factor):
            explanation_parts.append(_explanation_frame(ids[chunk], dates, latest, drivers, bundle.version))
        if bar is not None:
            bar.update(chunk.shape[0])
    predictions = pl.concat(prediction_parts) if prediction_parts else _empty_predictions()
    explanations = pl.concat(explanation_parts) if explanation_parts else _empty_explanations()
    return predictions, explanations, model_seconds


def _prediction_frame(
    ids: np.ndarray,
    dates: np.ndarray,
    in_record: np.ndarray,
    risk: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
    version: str,
) -> pl.DataFrame:
    b, m = np.nonzero(in_record)
    n_outcomes = len(OUTCOMES)
    return pl.DataFrame(
        {
            "patient_id": np.repeat(ids[b], n_outcomes).astype(str),
            "as_of": np.repeat(dates[m], n_outcomes),
            "outcome": np.tile(np.array(OUTCOMES), b.shape[0]),
            "horizon_months": np.full(b.shape[0] * n_outcomes, HORIZON_MONTHS, dtype=np.int64),
            "risk": risk[b, m].reshape(-1).astype(np.float64),
            "lower": lower[b, m].reshape(-1).astype(np.float64),
            "upper": upper[b, m].reshape(-1).astype(np.float64),
            "model_version": np.full(b.shape[0] * n_outcomes, version, dtype=object).astype(str),
            "scenario": np.full(b.shape[0] * n_outcomes, CURRENT, dtype=object).astype(str),
        }
    )


def _explanation_frame(
    ids: np.ndarray, dates: np.ndarray, latest: np.ndarray, drivers: Any, version: str
) -> pl.DataFrame:
    """The top ``TOP_FACTORS`` drivers per patient and outcome (by absolute contribution)."""
    frame = pl.DataFrame(
        {
            "b": np.repeat(drivers.patient, len(OUTCOMES)),
            "outcome": np.tile(np.array(OUTCOMES), drivers.patient.shape[0]),
            "factor": np.repeat(np.array(drivers.factor, dtype=object).astype(str), len(OUTCOMES)),
            "contribution": drivers.contribution.reshape(-1).astype(np.float64),
        }
    )
    top = (
        frame.with_columns(pl.col("contribution").abs().alias("_size"))
        .sort(["b", "outcome", "_size", "factor"], descending=[False, False, True, False])
        .group_by(["b", "outcome"], maintain_order=True)
        .head(TOP_FACTORS)
    )
    b = top["b"].to_numpy()
    return pl.DataFrame(
        {
            "patient_id": ids[b].astype(str),
            "as_of": dates[latest[b]],
            "outcome": top["outcome"],
            "factor": top["factor"],
            "contribution": top["contribution"],
            "model_version": np.full(top.height, version, dtype=object).astype(str),
        }
    )


def _empty_predictions() -> pl.DataFrame:
    return pl.DataFrame(
        schema={
            "patient_id": pl.Utf8,
            "as_of": pl.Date,
            "outcome": pl.Utf8,
            "horizon_months": pl.Int64,
            "risk": pl.Float64,
            "lower": pl.Float64,
            "upper": pl.Float64,
            "model_version": pl.Utf8,
            "scenario": pl.Utf8,
        }
    )


def _empty_explanations() -> pl.DataFrame:
    return pl.DataFrame(
        schema={
            "patient_id": pl.Utf8,
            "as_of": pl.Date,
            "outcome": pl.Utf8,
            "factor": pl.Utf8,
            "contribution": pl.Float64,
            "model_version": pl.Utf8,
        }
    )


def _replace_rows(
    engine: Engine,
    patient_ids: Sequence[str],
    version: str,
    predictions: pl.DataFrame,
    explanations: pl.DataFrame,
) -> None:
    """One transaction per chunk: this version's rows of these patients are replaced, never duplicated."""
    with engine.begin() as connection:
        for start in range(0, len(patient_ids), 5_000):
            part = list(patient_ids[start : start + 5_000])
            connection.execute(
                delete(Prediction).where(
                    Prediction.patient_id.in_(part),
                    Prediction.model_version == version,
                    Prediction.scenario == CURRENT,
                )
            )
            connection.execute(
                delete(Explanation).where(
                    Explanation.patient_id.in_(part), Explanation.model_version == version
                )
            )
        bulk_insert(connection, "prediction", predictions)
        bulk_insert(connection, "explanation", explanations)


def _all_patient_ids(engine: Engine) -> list[str]:
    with engine.connect() as connection:
        return [r[0] for r in connection.execute(select(Patient.id).order_by(Patient.id))]


def _bar(enabled: bool, total: int):  # noqa: ANN202 - tqdm or None
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc="scoring", unit="patients")
