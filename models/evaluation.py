"""The metrics report: the graph model against the baselines and (on synthetic data) the oracle.

Shape (DESIGN.md, ``dynairx evaluate --json``)::

    {"model_version": ...,
     "outcomes": {"<outcome>": {"graph_model" | "logistic_regression" | "gradient_boosting" | "efi" | "cms" |
                                "oracle": {"auroc": [lo, point, hi], "auprc": [lo, point, hi], "brier": x,
                                           "ece": x, "n": landmarks, "events": positives}}},
     "temporal_holdout": {...same per-outcome shape, later landmarks...},
     "subgroups": {"age_band" | "sex" | "deprivation": {"<group>": {"<outcome>": {"<model>": {...}}}}},
     "calibration_curve": {"<outcome>": {"<model>": [bins]}},
     "roc_curve": {"<outcome>": {"<model>": [{"fpr": x, "tpr": y}, ...]}},
     "comparison": {"<outcome>": {...differences in AUROC, and whether the targets are met...}},
     "data": {...}, "calibration": {...}, "training": {...}, "hpo": {...}}

Main results are on the test practices' labelled landmarks of the fit months; the temporal hold-out is the
training and validation practices' labelled landmarks of the last ``holdout_months`` months, which no fit saw.
The oracle is the generator's true 12-month risk (``synthetic_truth``) at the same landmarks.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import torch
from sqlalchemy import Engine, select

from data_access.schema import ModelRun, SyntheticTruth
from models.baselines import fit_gbm, fit_logistic, fit_score, predict_gbm, predict_logistic, predict_score
from models.config import OUTCOMES
from models.graph import PATIENT_FEATURES
from models.metrics import metric_report, paired_auroc_difference, reliability_curve, roc_points
from models.predict import calibrated, population_logits
from models.registry import METRICS_FILE, ModelBundle, resolve_version
from models.tabular import clinical_at_landmarks, tabular_features

GRAPH_MODEL = "graph_model"
ORACLE = "oracle"
AGE_BANDS = ((0, 65, "<65"), (65, 75, "65-74"), (75, 85, "75-84"), (85, 200, "85+"))
TARGET_ORACLE_GAP = 0.02


def evaluate_model(
    engine: Engine, *, model_dir: Path = Path("var/models"), version: str | None = None
) -> dict:
    """The metrics report of ``version`` (default: the active model), as written when it was trained.

    The report is computed once, at the end of training (the test split is used then and only then), and stored
    beside the checkpoint and in ``model_run``; this reads it back.
    """
    version = resolve_version(engine, Path(model_dir), version)
    path = Path(model_dir) / version / METRICS_FILE
    if path.exists():
        return json.loads(path.read_text())
    with engine.connect() as connection:
        row = connection.execute(select(ModelRun.metrics_json).where(ModelRun.version == version)).first()
    if row is not None and row[0]:
        return json.loads(row[0])
    from models.registry import ModelNotFoundError

    raise ModelNotFoundError(f"no metrics report for model {version} in {model_dir}")


def evaluate_bundle(engine: Engine, bundle: ModelBundle, data: Any, device: torch.device) -> dict[str, Any]:
    """Compute the full report for a freshly trained bundle on its ``TrainingData``."""
    population, labels, split = data.population, data.labels, data.split
    T = population.months
    rows_all = np.arange(population.num_patients)
    logits = population_logits(bundle.model, population, rows_all, device, bundle.config.batch_size * 2)
    graph_probs = calibrated(logits, bundle.calibration)

    def selection(rows: np.ndarray, months: str) -> np.ndarray:
        mask = data.mask(rows, months)
        patient, month = np.nonzero(mask)
        return rows[patient] * T + month

    snapshots = {
        "train": selection(split.rows["train"], "fit"),
        "val": selection(split.rows["val"], "fit"),
        "test": selection(split.rows["test"], "fit"),
        "holdout": selection(np.concatenate([split.rows["train"], split.rows["val"]]), "holdout"),
    }
    y_flat = labels.y.reshape(-1, len(OUTCOMES))
    probs_flat = graph_probs.reshape(-1, len(OUTCOMES))

    clinical = clinical_at_landmarks(data.cohort, data.grid)
    train_features = tabular_features(population, clinical, snapshots["train"])
    features = {
        name: train_features
        if name == "train"
        else tabular_features(population, clinical, s, clinical_rules(train_features))
        for name, s in snapshots.items()
    }
    y = {name: y_flat[s] for name, s in snapshots.items()}
    seed = bundle.config.seed
    replicates = bundle.config.bootstrap_replicates
    logistic = fit_logistic(features["train"].X, y["train"], seed)
    gbm = fit_gbm(features["train"].X, y["train"], features["val"].X, y["val"], seed, threads=_threads())
    efi_column = features["train"].names.index("score_efi")
    cms_column = features["train"].names.index("score_cms")
    efi = fit_score(features["train"].X[:, efi_column], y["train"])
    cms = fit_score(features["train"].X[:, cms_column], y["train"])
    truth = oracle_risks(engine, population, data.grid)

    def predictions(name: str) -> dict[str, np.ndarray]:
        X = features[name].X
        out = {
            GRAPH_MODEL: probs_flat[snapshots[name]],
            "logistic_regression": predict_logistic(logistic, X),
            "gradient_boosting": predict_gbm(gbm, X),
            "efi": predict_score(efi, X[:, efi_column]),
            "cms": predict_score(cms, X[:, cms_column]),
        }
        if truth is not None:
            out[ORACLE] = truth.reshape(-1, len(OUTCOMES))[snapshots[name]]
        return out

    test_predictions = predictions("test")
    holdout_predictions = predictions("holdout")
    groups = {name: s // T for name, s in snapshots.items()}
    report: dict[str, Any] = {
        "model_version": bundle.version,
        "outcomes": _per_outcome(y["test"], test_predictions, groups["test"], seed, replicates),
        "temporal_holdout": {
            "landmarks": [d.isoformat() for d in data.grid.dates[data.fit_months :]],
            "population": "training and validation practices, landmarks after the fit months",
            "outcomes": _per_outcome(y["holdout"], holdout_predictions, groups["holdout"], seed, replicates),
        },
        "subgroups": _subgroups(population, snapshots["test"], y["test"], test_predictions, seed, replicates),
        "calibration_curve": {
            outcome: {
                name: reliability_curve(y["test"][:, o], test_predictions[name][:, o])
                for name in (GRAPH_MODEL, "gradient_boosting")
            }
            for o, outcome in enumerate(OUTCOMES)
        },
        "roc_curve": {
            outcome: {
                name: roc_points(y["test"][:, o], preds[:, o]) for name, preds in test_predictions.items()
            }
            for o, outcome in enumerate(OUTCOMES)
        },
        "calibration": {
            outcome: {"method": "platt", "a": a, "b": b} for outcome, (a, b) in bundle.calibration.items()
        },
        "data": _data_summary(data, snapshots, y),
    }
    report["comparison"] = compare(
        report["outcomes"], y["test"], test_predictions, groups["test"], seed, replicates
    )
    if truth is None:
        report["oracle_note"] = "no synthetic_truth rows for these patients (imported data): no oracle"
    return report


def clinical_rules(train_features: Any) -> list[str]:
    """The safety-rule flag columns of the training features (so every split has the same columns)."""
    return [
        n.removeprefix("flag_") for n in train_features.names if n.startswith("flag_") and n != "flags_active"
    ]


def _threads() -> int:
    """LightGBM threads: as many as torch uses (the caller's choice of parallelism)."""
    return max(1, torch.get_num_threads())


def _per_outcome(
    y: np.ndarray, predictions: dict[str, np.ndarray], groups: np.ndarray, seed: int, replicates: int
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for o, outcome in enumerate(OUTCOMES):
        out[outcome] = {}
        for name, p in predictions.items():
            valid = np.isfinite(p[:, o])
            report = metric_report(y[valid, o], p[valid, o], groups[valid], replicates=replicates, seed=seed)
            if not valid.all():
                report["coverage"] = float(valid.mean())
            out[outcome][name] = report
    return out


def compare(
    outcomes: dict[str, Any],
    y: np.ndarray,
    predictions: dict[str, np.ndarray],
    groups: np.ndarray,
    seed: int,
    replicates: int,
) -> dict[str, Any]:
    """The graph model's AUROC minus each other model's, as [lo, point, hi] (paired patient bootstrap), and
    whether the targets are met: ahead of every baseline (point estimates; ``ahead_95ci`` lists the baselines it
    beats with the whole interval above zero) and within 0.02 of the oracle."""
    out = {}
    for o, outcome in enumerate(OUTCOMES):
        point = {name: m["auroc"][1] for name, m in outcomes[outcome].items()}
        if point.get(GRAPH_MODEL) is None:
            out[outcome] = {"note": "no AUROC: a class is missing among the landmarks"}
            continue
        entry: dict[str, Any] = {}
        ahead = []
        for name, p in predictions.items():
            if name == GRAPH_MODEL or point.get(name) is None:
                continue
            valid = np.isfinite(p[:, o])
            difference = paired_auroc_difference(
                y[valid, o],
                predictions[GRAPH_MODEL][valid, o],
                p[valid, o],
                groups[valid],
                replicates=replicates,
                seed=seed,
            )
            entry[f"graph_minus_{name}"] = difference
            if name != ORACLE and difference[0] is not None and difference[0] > 0:
                ahead.append(name)
        baselines = [n for n in point if n not in (GRAPH_MODEL, ORACLE) and point[n] is not None]
        entry["beats_every_baseline"] = all(point[GRAPH_MODEL] > point[n] for n in baselines)
        entry["ahead_95ci"] = ahead
        if point.get(ORACLE) is not None:
            entry["within_0.02_of_oracle"] = bool(point[ORACLE] - point[GRAPH_MODEL] <= TARGET_ORACLE_GAP)
        out[outcome] = entry
    return out


def oracle_risks(engine: Engine, population: Any, grid: Any) -> np.ndarray | None:
    """``synthetic_truth`` risks as [P, T, O] (NaN where absent), or None when the table has none of them."""
    ids = population.patient_ids
    frames = []
    with engine.connect() as connection:
        for start in range(0, len(ids), 20_000):
            chunk = ids[start : start + 20_000]
            query = select(
                SyntheticTruth.patient_id, SyntheticTruth.month, SyntheticTruth.outcome, SyntheticTruth.risk
            ).where(SyntheticTruth.patient_id.in_(chunk))
            rows = connection.execute(query).fetchall()
            if rows:
                frames.append(
                    pl.DataFrame(
                        rows,
                        schema=["patient_id", "month", "outcome", "risk"],
                        orient="row",
                        infer_schema_length=None,
                    )
                )
    if not frames:
        return None
    truth = pl.concat(frames)
    if truth.schema["month"] == pl.Utf8:
        truth = truth.with_columns(pl.col("month").str.to_date("%Y-%m-%d"))
    index = pl.DataFrame({"patient_id": ids, "p": np.arange(len(ids), dtype=np.int64)})
    months = pl.DataFrame({"month": list(grid.dates), "m": np.arange(grid.months, dtype=np.int64)})
    outcomes = pl.DataFrame({"outcome": list(OUTCOMES), "o": np.arange(len(OUTCOMES), dtype=np.int64)})
    located = truth.join(index, on="patient_id").join(months, on="month").join(outcomes, on="outcome")
    if located.height == 0:
        return None
    out = np.full((len(ids), grid.months, len(OUTCOMES)), np.nan, dtype=np.float32)
    out[located["p"].to_numpy(), located["m"].to_numpy(), located["o"].to_numpy()] = located[
        "risk"
    ].to_numpy()
    return out


def _subgroups(
    population: Any,
    snapshots: np.ndarray,
    y: np.ndarray,
    predictions: dict[str, np.ndarray],
    seed: int,
    replicates: int,
) -> dict[str, Any]:
    flat = population.patient_x.reshape(-1, len(PATIENT_FEATURES))[snapshots]
    column = {name: i for i, name in enumerate(PATIENT_FEATURES)}
    age = flat[:, column["age"]] * 100.0
    groups: dict[str, dict[str, np.ndarray]] = {
        "age_band": {label: (age >= lo) & (age < hi) for lo, hi, label in AGE_BANDS},
        "sex": {"F": flat[:, column["female"]] > 0.5, "M": flat[:, column["female"]] < 0.5},
        "deprivation": {
            **{str(q): flat[:, column[f"deprivation_{q}"]] > 0.5 for q in (1, 2, 3, 4, 5)},
            "unknown": flat[:, column["deprivation_unknown"]] > 0.5,
        },
    }
    shown = [n for n in (GRAPH_MODEL, "gradient_boosting", ORACLE) if n in predictions]
    patient = snapshots // population.months
    out: dict[str, Any] = {}
    for family, members in groups.items():
        out[family] = {}
        for label, chosen in members.items():
            if not chosen.any():
                continue
            entry: dict[str, Any] = {"landmarks": int(chosen.sum())}
            for o, outcome in enumerate(OUTCOMES):
                entry[outcome] = {}
                for name in shown:
                    p = predictions[name][chosen, o]
                    valid = np.isfinite(p)
                    entry[outcome][name] = metric_report(
                        y[chosen, o][valid],
                        p[valid],
                        patient[chosen][valid],
                        replicates=max(replicates // 2, 20),
                        seed=seed,
                    )
            out[family][label] = entry
    return out


def _data_summary(data: Any, snapshots: dict[str, np.ndarray], y: dict[str, np.ndarray]) -> dict[str, Any]:
    sources = data.cohort.patient.group_by("source").len().sort("source")
    return {
        "patients": data.population.num_patients,
        "sources": {r["source"]: r["len"] for r in sources.iter_rows(named=True)},
        "extract_date": data.cohort.extract_date.isoformat(),
        "landmarks": [data.grid.dates[0].isoformat(), data.grid.dates[-1].isoformat()],
        "fit_months": data.fit_months,
        "split_method": data.split.method,
        "split_patients": {k: int(v.shape[0]) for k, v in data.split.rows.items()},
        "split_practices": {k: len(v) for k, v in data.split.practices.items()},
        "labelled_landmarks": {k: int(v.shape[0]) for k, v in snapshots.items()},
        "event_rate": {
            k: {outcome: float(v[:, o].mean()) if v.size else None for o, outcome in enumerate(OUTCOMES)}
            for k, v in y.items()
        },
    }
