"""One patient at a time: the cached (or freshly computed) trajectory with drivers, and what-if scenarios.

What-if: the patient's record is copied, the scenario is applied to the copy (``models.scenario``), and both
records are run through the model over the following 12 months, assuming everything else stays as recorded
(ongoing courses continue, recorded stop dates apply, no new events). The difference is what the model associates
with the change in patients like this one; it is not the causal effect of the change.
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sqlalchemy import Engine, select

from data_access.schema import Explanation, Prediction
from models.cohort import Cohort, TimeGrid, add_months, database_extract_date, load_cohort, month_start
from models.config import HORIZON_MONTHS, OUTCOMES
from models.device import select_device
from models.explain import explain_batch
from models.graph import build_population_graph, make_batch, population_key_index
from models.network import to_tensors
from models.predict import autocast, risk_with_bounds
from models.registry import MODEL_FILE, ModelBundle, resolve_version
from models.scenario import (
    apply_scenario,
    cohort_from_patient_json,
    parse_from,
    resolve_scenario,
    two_patients,
)

INTERPRETATION = "associational, not causal"
DRIVERS_SHOWN = 8


@lru_cache(maxsize=4)
def _cached_bundle(path: str, modified: float, device: str) -> ModelBundle:
    return ModelBundle.load(Path(path), torch.device(device))


def load_bundle(
    engine: Engine, model_dir: Path | None, version: str | None, device: torch.device
) -> ModelBundle:
    """The bundle of ``version`` (default: the active model), cached per process until the file changes."""
    from data_access.settings import model_dir as default_model_dir

    directory = Path(model_dir) if model_dir is not None else default_model_dir()
    version = resolve_version(engine, directory, version)
    path = directory / version
    return _cached_bundle(
        str(path), (path / MODEL_FILE).stat().st_mtime if (path / MODEL_FILE).exists() else 0.0, str(device)
    )


# ---------------------------------------------------------------------------------------------------------------
# the trajectory of one patient


def predict_patient(
    engine: Engine,
    patient_id: str,
    *,
    as_of: dt.date | None = None,
    version: str | None = None,
    model_dir: Path | None = None,
    device: str | None = None,
) -> dict[str, Any]:
    """Trajectory (risk, lower, upper per month and outcome) up to ``as_of`` and the drivers of its last point.

    Read from the prediction cache when ``score_population`` has filled it for this model version; computed on the
    fly otherwise (and then not written: reads never change the cache).
    """
    torch_device = select_device(device)
    bundle = load_bundle(engine, model_dir, version, torch_device)
    cached = _cached_prediction(engine, patient_id, bundle.version, as_of)
    if cached is not None:
        return cached
    extract = database_extract_date(engine)
    cohort = load_cohort(engine, [patient_id], extract_date=extract)
    if cohort.patient.height == 0:
        raise KeyError(f"no patient {patient_id}")
    end = month_start(as_of) if as_of is not None else month_start(extract or dt.date.today())
    grid = TimeGrid.ending_at(end, bundle.config.trajectory_months)
    result = _trajectories(bundle, cohort, grid, torch_device, explain=True)[patient_id]
    return {
        "patient_id": patient_id,
        "model_version": bundle.version,
        "horizon_months": HORIZON_MONTHS,
        "source": "computed",
        "interpretation": INTERPRETATION,
        **result,
    }


def _cached_prediction(
    engine: Engine, patient_id: str, version: str, as_of: dt.date | None
) -> dict[str, Any] | None:
    query = select(
        Prediction.as_of, Prediction.outcome, Prediction.risk, Prediction.lower, Prediction.upper
    ).where(
        Prediction.patient_id == patient_id,
        Prediction.model_version == version,
        Prediction.scenario == "current",
    )
    if as_of is not None:
        query = query.where(Prediction.as_of <= as_of)
    with engine.connect() as connection:
        rows = connection.execute(query.order_by(Prediction.as_of)).fetchall()
        if not rows:
            return None
        latest = max(_as_date(r[0]) for r in rows)
        drivers = connection.execute(
            select(Explanation.outcome, Explanation.factor, Explanation.contribution).where(
                Explanation.patient_id == patient_id,
                Explanation.model_version == version,
                Explanation.as_of == latest,
            )
        ).fetchall()
    if not drivers:
        return None
    trajectory: dict[str, list[dict[str, Any]]] = {o: [] for o in OUTCOMES}
    for day, outcome, risk, lower, upper in rows:
        trajectory[outcome].append(
            {"as_of": _as_date(day).isoformat(), "risk": risk, "lower": lower, "upper": upper}
        )
    by_outcome: dict[str, list[dict[str, Any]]] = {o: [] for o in OUTCOMES}
    for outcome, factor, contribution in drivers:
        by_outcome[outcome].append({"factor": factor, "contribution": contribution})
    for items in by_outcome.values():
        items.sort(key=lambda d: (-abs(d["contribution"]), d["factor"]))
    return {
        "patient_id": patient_id,
        "model_version": version,
        "horizon_months": HORIZON_MONTHS,
        "source": "cache",
        "interpretation": INTERPRETATION,
        "as_of": latest.isoformat(),
        "trajectory": trajectory,
        "current": {o: points[-1] for o, points in trajectory.items() if points},
        "drivers": by_outcome,
    }


def _as_date(value: Any) -> dt.date:
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value)[:10])


@torch.inference_mode()
def _trajectories(
    bundle: ModelBundle, cohort: Cohort, grid: TimeGrid, device: torch.device, explain: bool
) -> dict[str, dict[str, Any]]:
    """Per patient of ``cohort``: trajectory over the grid's in-record months, and drivers at the last one."""
    population = build_population_graph(cohort, grid, bundle.vocabulary, bundle.config)
    model = bundle.model
    batch = make_batch(population, np.arange(population.num_patients), population_key_index(population))
    tensors = to_tensors(batch, device)
    with autocast(device):
        z = model.encode(tensors)
        states, head_input = model.sequence(z, tensors.batch_size, tensors.months)
        points, samples = model.heads_with_samples(head_input)
    risk, lower, upper = risk_with_bounds(
        points.float().cpu().numpy(),
        samples.float().cpu().numpy(),
        bundle.calibration,
        bundle.config.interval_level,
    )
    T = grid.months
    latest = np.where(batch.in_record.any(axis=1), T - 1 - np.argmax(batch.in_record[:, ::-1], axis=1), -1)
    drivers = (
        explain_batch(model, population, batch, latest, states.float(), bundle.calibration, device)
        if explain
        else None
    )
    out: dict[str, dict[str, Any]] = {}
    for b, patient_id in enumerate(population.patient_ids):
        months = np.nonzero(batch.in_record[b])[0]
        trajectory = {
            outcome: [
                {
                    "as_of": grid.dates[m].isoformat(),
                    "risk": float(risk[b, m, o]),
                    "lower": float(lower[b, m, o]),
                    "upper": float(upper[b, m, o]),
                }
                for m in months
            ]
            for o, outcome in enumerate(OUTCOMES)
        }
        entry: dict[str, Any] = {
            "as_of": grid.dates[latest[b]].isoformat() if latest[b] >= 0 else None,
            "trajectory": trajectory,
            "current": {o: points[-1] for o, points in trajectory.items() if points},
        }
        if drivers is not None:
            mine = np.nonzero(drivers.patient == b)[0]
            entry["drivers"] = {
                outcome: sorted(
                    (
                        {"factor": drivers.factor[i], "contribution": float(drivers.contribution[i, o])}
                        for i in mine
                    ),
                    key=lambda d: (-abs(d["contribution"]), d["factor"]),
                )[:DRIVERS_SHOWN]
                for o, outcome in enumerate(OUTCOMES)
            }
        out[patient_id] = entry
    return out


# ---------------------------------------------------------------------------------------------------------------
# what-if


def what_if(
    engine: Engine,
    *,
    patient_id: str | None = None,
    patient_json: dict[str, Any] | None = None,
    scenario: dict[str, Any],
    version: str | None = None,
    model_dir: Path | None = None,
    device: str | None = None,
) -> dict[str, Any]:
    """Forward 12-month trajectories of the record as it is (``current``) and with the scenario applied.

    ``scenario`` = ``{"stop": [drug], "start": [drug], "switch": [[from, to]], "from": "YYYY-MM-DD"}``; drugs are
    generic names (or anything the drug vocabulary recognises, e.g. a product description). ``from`` defaults to
    the end of the record. Raises ``ValueError`` for an unknown drug or a malformed scenario.
    """
    if (patient_id is None) == (patient_json is None):
        raise ValueError("give exactly one of patient_id and patient_json")
    torch_device = select_device(device)
    bundle = load_bundle(engine, model_dir, version, torch_device)
    notes: list[str] = []
    if patient_id is not None:
        extract = database_extract_date(engine) or dt.date.today()
        cohort = load_cohort(engine, [patient_id], extract_date=extract)
        if cohort.patient.height == 0:
            raise KeyError(f"no patient {patient_id}")
    else:
        cohort, json_notes = cohort_from_patient_json(patient_json or {})
        notes.extend(json_notes)
        extract = cohort.extract_date
    start_day = parse_from(scenario.get("from"), extract)
    stops, starts = resolve_scenario(scenario)
    changed, change_notes = apply_scenario(cohort, start_day, stops, starts)
    notes.extend(change_notes)

    first = start_day if start_day.day == 1 else add_months(month_start(start_day), 1)
    grid = TimeGrid.ending_at(
        add_months(first, HORIZON_MONTHS - 1), bundle.config.trajectory_months + HORIZON_MONTHS
    )
    both = two_patients(cohort, changed)
    results = _trajectories(bundle, both, grid, torch_device, explain=False)
    forward = {name: _from(results[name]["trajectory"], first) for name in ("current", "scenario")}
    if not any(forward["current"].values()):
        notes.append(f"the patient is not in the record (died or left the practice) from {first.isoformat()}")
    summary = {}
    for outcome in OUTCOMES:
        now, then = forward["current"][outcome], forward["scenario"][outcome]
        if now and then:
            summary[outcome] = {
                "current": now[-1]["risk"],
                "scenario": then[-1]["risk"],
                "change": then[-1]["risk"] - now[-1]["risk"],
                "at": now[-1]["as_of"],
            }
    return {
        "patient_id": patient_id,
        "model_version": bundle.version,
        "from": start_day.isoformat(),
        "horizon_months": HORIZON_MONTHS,
        "current": forward["current"],
        "scenario": forward["scenario"],
        "summary": summary,
        "applied": {"stop": sorted(stops), "start": sorted(starts)},
        "notes": notes,
        "interpretation": INTERPRETATION,
    }


def _from(trajectory: dict[str, list[dict[str, Any]]], first: dt.date) -> dict[str, list[dict[str, Any]]]:
    start = first.isoformat()
    return {o: [p for p in points if p["as_of"] >= start] for o, points in trajectory.items()}
