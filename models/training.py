"""Train the temporal graph risk model: data preparation, (optional) Optuna search, early-stopped training with
per-epoch checkpoints, validation calibration, evaluation against baselines, and the saved bundle and model card.

Leakage guards, in one place:
- hyper-parameters, early stopping and calibration use the validation practices only, never the test practices;
- the last ``holdout_months`` landmarks are excluded from every fit (the temporal hold-out);
- a landmark's snapshot holds only data recorded on or before it (``models.graph``), and its label only events
  after it (``models.labels``).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import torch
from sqlalchemy import Engine

from models.calibration import fit_platt
from models.cohort import Cohort, TimeGrid, load_cohort, training_grid
from models.config import OUTCOMES, ModelConfig
from models.device import select_device
from models.graph import PopulationGraph, build_population_graph, make_batch, population_key_index
from models.labels import Labels, landmark_labels
from models.network import TemporalGraphRiskModel, to_tensors
from models.predict import autocast, batches, population_logits
from models.registry import (
    CARD_JSON,
    CARD_MD,
    METRICS_FILE,
    MODEL_FILE,
    STATE_FILE,
    ModelBundle,
    code_fingerprint,
    data_fingerprint,
    model_version,
    record_model_run,
)
from models.splits import Split, split_patients
from models.vocabulary import GraphVocabulary

log = logging.getLogger(__name__)

HPO_EPOCHS = 3
GRADIENT_CLIP = 1.0
SEARCH_SPACE = {
    "hidden": {"type": "categorical", "choices": [32, 48, 64]},
    "layers": {"type": "int", "low": 2, "high": 3},
    "dropout": {"type": "float", "low": 0.0, "high": 0.3},
    "lr": {"type": "float", "low": 1e-3, "high": 1e-2, "log": True},
    "weight_decay": {"type": "float", "low": 1e-6, "high": 1e-3, "log": True},
}


@dataclass
class TrainingData:
    """Everything a run trains and evaluates on, built once."""

    cohort: Cohort
    vocabulary: GraphVocabulary
    grid: TimeGrid
    population: PopulationGraph  # every month of the grid (for evaluation, the temporal hold-out included)
    fit_population: PopulationGraph  # the fit months only: what training, validation and calibration run on
    labels: Labels
    split: Split
    fit_months: int  # months [0, fit_months) are used for fitting; the rest are the temporal hold-out
    lab_stats: dict[str, tuple[float, float]]

    def fit_targets(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Labels [len(rows), fit_months, O] and the labelled mask [len(rows), fit_months] of the fit months."""
        return self.labels.y[rows, : self.fit_months], self.labels.labelled[rows, : self.fit_months]

    def mask(self, rows: np.ndarray, months: str) -> np.ndarray:
        """Labelled landmarks [len(rows), T] of ``rows`` in the ``fit`` or ``holdout`` months."""
        chosen = np.zeros(self.grid.months, dtype=bool)
        if months == "fit":
            chosen[: self.fit_months] = True
        else:
            chosen[self.fit_months :] = True
        return self.labels.labelled[rows] & chosen[None, :]


def cohort_vocabulary(cohort: Cohort) -> GraphVocabulary:
    """The clinical vocabulary plus the drug and condition keys seen in the data (each gets an embedding)."""
    drugs = (
        cohort.prescription.select(
            pl.col("ingredients").fill_null("").str.split(";").explode().str.strip_chars()
        )
        .to_series()
        .to_list()
    )
    drugs += cohort.prescription["drug_key"].drop_nulls().to_list()
    conditions = cohort.condition["condition_key"].drop_nulls().unique().to_list()
    return GraphVocabulary.from_clinical(sorted({d.lower() for d in drugs if d}), conditions)


def prepare_training_data(cohort: Cohort, config: ModelConfig, vocabulary: GraphVocabulary) -> TrainingData:
    if config.holdout_months >= config.train_months:
        raise ValueError("holdout_months must be smaller than train_months")
    grid = training_grid(cohort.extract_date, config.train_months)
    fit_months = grid.months - config.holdout_months
    population = build_population_graph(cohort, grid, vocabulary, config)
    # The GRU is causal, so the hold-out months never influence the fit months' outputs; training on a graph of
    # the fit months alone saves their cost in every epoch.
    fit_population = build_population_graph(cohort, TimeGrid(grid.dates[:fit_months]), vocabulary, config)
    labels = landmark_labels(cohort, grid)
    split = split_patients(cohort.patient.select("id", "practice_id"), config.split, config.seed)
    lab_stats = _lab_stats(fit_population, split.rows["train"])
    return TrainingData(
        cohort, vocabulary, grid, population, fit_population, labels, split, fit_months, lab_stats
    )


def _lab_stats(population: PopulationGraph, train_rows: np.ndarray) -> dict[str, tuple[float, float]]:
    """Mean and standard deviation of each lab's values in the training split (to standardise lab nodes)."""
    labs = population.nodes["lab"]
    in_train = np.isin(labs.patient, train_rows)
    stats = {}
    for i, name in enumerate(labs.names):
        values = labs.x[in_train & (labs.name == i), 0]
        if values.size >= 2:
            stats[name] = (float(values.mean()), float(values.std()))
    return stats


# ---------------------------------------------------------------------------------------------------------------
# fitting


def _loss(logits: torch.Tensor, y: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    chosen_logits = logits[mask]
    if chosen_logits.numel() == 0:
        return logits.sum() * 0.0
    return torch.nn.functional.binary_cross_entropy_with_logits(chosen_logits.float(), y[mask])


def _batch_targets(
    data: TrainingData, rows: np.ndarray, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    y, mask = data.fit_targets(rows)
    return torch.from_numpy(np.ascontiguousarray(y)).to(device), torch.from_numpy(
        np.ascontiguousarray(mask)
    ).to(device)


@torch.inference_mode()
def validation_loss(
    model: TemporalGraphRiskModel, data: TrainingData, rows: np.ndarray, device: torch.device, batch_size: int
) -> float:
    """Mean binary cross-entropy over the labelled fit-month landmarks of ``rows`` (all outcomes)."""
    model.eval()
    keys = population_key_index(data.fit_population)
    total, count = 0.0, 0
    for chunk in batches(rows, batch_size):
        tensors = to_tensors(make_batch(data.fit_population, chunk, keys), device)
        y, mask = _batch_targets(data, chunk, device)
        with autocast(device):
            logits = model(tensors)
        selected = logits[mask].float()
        if selected.numel():
            total += float(
                torch.nn.functional.binary_cross_entropy_with_logits(selected, y[mask], reduction="sum")
            )
            count += selected.numel()
    return total / max(count, 1)


def new_model(data: TrainingData, config: ModelConfig, device: torch.device) -> TemporalGraphRiskModel:
    torch.manual_seed(config.seed)
    model = TemporalGraphRiskModel(data.vocabulary, config, data.lab_stats)
    y_train, train_mask = data.fit_targets(data.split.rows["train"])
    y = y_train[train_mask]
    model.set_base_rates(y.mean(axis=0) if y.size else np.full(len(OUTCOMES), 0.05))
    return model.to(device)


def fit_network(
    data: TrainingData,
    config: ModelConfig,
    device: torch.device,
    *,
    state_path: Path | None = None,
    extra_state: dict[str, Any] | None = None,
    progress: bool = False,
) -> tuple[TemporalGraphRiskModel, dict[str, Any]]:
    """Train with early stopping on the validation loss; checkpoint after every epoch to ``state_path``.

    The weights validated, kept and returned are an exponential moving average of the training weights (Polyak
    averaging; half-life a quarter of an epoch): on validation splits of a few practices the epoch-to-epoch noise
    of the raw weights otherwise decides which epoch wins.

    If ``state_path`` holds an unfinished run, training continues from its last completed epoch (same data order,
    same random state), so an interrupted run ends where an uninterrupted one would.
    """
    model = new_model(data, config, device)
    averaged = new_model(data, config, device)
    optimiser = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    history: list[dict[str, float]] = []
    best_loss, best_epoch, bad_epochs, start_epoch = float("inf"), -1, 0, 0
    best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    train_rows = data.split.rows["train"]
    steps_per_epoch = max(1, -(-train_rows.shape[0] // config.batch_size))
    decay = 0.5 ** (1.0 / max(1.0, steps_per_epoch / 4))
    if state_path is not None and state_path.exists():
        state = torch.load(state_path, map_location=device, weights_only=False)
        model.load_state_dict(state["model"])
        averaged.load_state_dict(state["averaged"])
        optimiser.load_state_dict(state["optimiser"])
        best_state = state["best_state"]
        best_loss, best_epoch, bad_epochs = state["best_loss"], state["best_epoch"], state["bad_epochs"]
        history = state["history"]
        start_epoch = state["epoch"] + 1
        torch.set_rng_state(state["torch_rng"])
        log.info("resuming training at epoch %d", start_epoch + 1)
    keys = population_key_index(data.fit_population)
    val_rows = data.split.rows["val"]
    for epoch in range(start_epoch, config.epochs):
        if bad_epochs >= config.patience:
            break
        started = time.perf_counter()
        model.train()
        order = np.random.default_rng([config.seed, epoch]).permutation(train_rows)
        bar = _bar(progress, order.shape[0], f"epoch {epoch + 1}/{config.epochs}")
        running, steps = 0.0, 0
        for chunk in batches(order, config.batch_size):
            tensors = to_tensors(make_batch(data.fit_population, chunk, keys), device)
            y, mask = _batch_targets(data, chunk, device)
            with autocast(device):
                logits = model(tensors)
            loss = _loss(logits, y, mask)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), GRADIENT_CLIP)
            optimiser.step()
            _update_average(averaged, model, decay)
            running += loss.item()
            steps += 1
            if bar is not None:
                bar.update(chunk.shape[0])
                bar.set_postfix(loss=f"{running / steps:.4f}")
        if bar is not None:
            bar.close()
        val = validation_loss(averaged, data, val_rows, device, config.batch_size * 2)
        history.append(
            {
                "epoch": epoch + 1,
                "train_loss": running / max(steps, 1),
                "val_loss": val,
                "seconds": time.perf_counter() - started,
            }
        )
        if val < best_loss - 1e-5:
            best_loss, best_epoch, bad_epochs = val, epoch + 1, 0
            best_state = {k: v.detach().clone() for k, v in averaged.state_dict().items()}
        else:
            bad_epochs += 1
            # Halve the step size when the validation loss stalls (down to 1/16 of the start), then stop early.
            for group in optimiser.param_groups:
                group["lr"] = max(group["lr"] / 2, config.lr / 16)
        if state_path is not None:
            _save_state(
                state_path,
                {
                    "epoch": epoch,
                    "model": model.state_dict(),
                    "averaged": averaged.state_dict(),
                    "optimiser": optimiser.state_dict(),
                    "best_state": best_state,
                    "best_loss": best_loss,
                    "best_epoch": best_epoch,
                    "bad_epochs": bad_epochs,
                    "history": history,
                    "torch_rng": torch.get_rng_state(),
                    **(extra_state or {}),
                },
            )
    averaged.load_state_dict(best_state)
    averaged.eval()
    return averaged, {"history": history, "best_epoch": best_epoch, "best_val_loss": best_loss}


@torch.no_grad()
def _update_average(averaged: torch.nn.Module, model: torch.nn.Module, decay: float) -> None:
    for average, current in zip(averaged.parameters(), model.parameters(), strict=True):
        average.lerp_(current, 1.0 - decay)


def _save_state(path: Path, state: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    torch.save(state, temporary)
    temporary.replace(path)


def _bar(enabled: bool, total: int, description: str):  # noqa: ANN202 - tqdm or None
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc=description, unit="patients", leave=False)


def calibrate(
    model: TemporalGraphRiskModel, data: TrainingData, device: torch.device, batch_size: int
) -> dict[str, tuple[float, float]]:
    """Platt scaling per outcome on the validation practices' fit-month landmarks."""
    rows = data.split.rows["val"]
    logits = population_logits(model, data.fit_population, rows, device, batch_size)
    y, mask = data.fit_targets(rows)
    return {outcome: fit_platt(logits[..., o][mask], y[..., o][mask]) for o, outcome in enumerate(OUTCOMES)}


# ---------------------------------------------------------------------------------------------------------------
# hyper-parameter search


def tune(
    data: TrainingData, config: ModelConfig, device: torch.device, trials: int
) -> tuple[ModelConfig, dict[str, Any]]:
    """Optuna TPE search on the validation loss (validation practices, fit months); returns the chosen config."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="minimize", sampler=optuna.samplers.TPESampler(seed=config.seed))
    # The first trial is the configured default (where it lies inside the search space), so a search can only
    # improve on it.
    default = {
        k: getattr(config, k) for k, spec in SEARCH_SPACE.items() if _in_space(getattr(config, k), spec)
    }
    if default:
        study.enqueue_trial(default)

    def objective(trial: optuna.Trial) -> float:
        params = {name: _suggest(trial, name, spec) for name, spec in SEARCH_SPACE.items()}
        trial_config = config.replace(**params, epochs=min(config.epochs, HPO_EPOCHS))
        _, result = fit_network(data, trial_config, device)
        return float(result["best_val_loss"])

    study.optimize(objective, n_trials=trials)
    chosen = {k: study.best_params[k] for k in SEARCH_SPACE}
    record = {
        "objective": "validation binary cross-entropy (mean over outcomes; validation practices, fit months)",
        "sampler": f"TPE (seed {config.seed})",
        "epochs_per_trial": min(config.epochs, HPO_EPOCHS),
        "search_space": SEARCH_SPACE,
        "trials": [
            {"number": t.number, "params": t.params, "value": t.value, "state": t.state.name}
            for t in study.trials
        ],
        "chosen": chosen,
    }
    return config.replace(**chosen), record


def _in_space(value: Any, spec: dict[str, Any]) -> bool:
    if spec["type"] == "categorical":
        return value in spec["choices"]
    return spec["low"] <= value <= spec["high"]


def _suggest(trial: Any, name: str, spec: dict[str, Any]) -> Any:
    if spec["type"] == "categorical":
        return trial.suggest_categorical(name, spec["choices"])
    if spec["type"] == "int":
        return trial.suggest_int(name, spec["low"], spec["high"])
    return trial.suggest_float(name, spec["low"], spec["high"], log=spec.get("log", False))


# ---------------------------------------------------------------------------------------------------------------
# the entry point


def train_model(
    engine: Engine,
    *,
    model_dir: Path = Path("var/models"),
    epochs: int | None = None,
    seed: int = 0,
    hpo_trials: int = 0,
    device: str | None = None,
    progress: bool = False,
    config: ModelConfig | None = None,
) -> str:
    """Train, calibrate, evaluate and register a model on the database's canonical data; returns its version.

    Saves ``model.pt``, ``metrics.json``, ``model_card.json`` and ``model_card.md`` under ``model_dir/<version>/``
    and records the version as the active model in ``model_run``. A finished version is reused as is; an
    unfinished one (a ``training_state.pt`` without ``model.pt``) is resumed.
    """
    from models.card import build_model_card, render_model_card
    from models.evaluation import evaluate_bundle

    started = time.perf_counter()
    torch_device = select_device(device)
    base = config or ModelConfig()
    config = base.replace(seed=seed, hpo_trials=hpo_trials, **({"epochs": epochs} if epochs else {}))
    cohort = load_cohort(engine)
    if cohort.patient.height == 0:
        raise ValueError("the database holds no patients to train on")
    data_hash = data_fingerprint(cohort)
    vocabulary = cohort_vocabulary(cohort)
    code_hash = code_fingerprint(vocabulary)
    version = model_version(config, data_hash, code_hash)
    directory = Path(model_dir) / version
    if (directory / MODEL_FILE).exists() and (directory / METRICS_FILE).exists():
        metrics = json.loads((directory / METRICS_FILE).read_text())
        card = json.loads((directory / CARD_JSON).read_text()) if (directory / CARD_JSON).exists() else {}
        record_model_run(engine, version, directory / MODEL_FILE, metrics, card)
        _say(progress, f"model {version} is already trained; reusing it")
        return version

    _say(progress, f"preparing {cohort.patient.height:,} patients")
    data = prepare_training_data(cohort, config, vocabulary)
    state_path = directory / STATE_FILE
    hpo_record: dict[str, Any] = {
        "trials": [],
        "chosen": {},
        "search_space": SEARCH_SPACE,
        "note": "no search run",
    }
    if state_path.exists():
        saved = torch.load(state_path, map_location="cpu", weights_only=False)
        config = ModelConfig.from_dict(saved["config"])
        hpo_record = saved["hpo"]
    elif hpo_trials > 0:
        _say(progress, f"hyper-parameter search: {hpo_trials} trials")
        config, hpo_record = tune(data, config, torch_device, hpo_trials)
    model, training = fit_network(
        data,
        config,
        torch_device,
        state_path=state_path,
        extra_state={"config": config.to_dict(), "hpo": hpo_record},
        progress=progress,
    )
    calibration = calibrate(model, data, torch_device, config.batch_size * 2)
    bundle = ModelBundle(
        version=version,
        config=config,
        vocabulary=data.vocabulary,
        lab_stats=data.lab_stats,
        calibration=calibration,
        model=model,
        meta={
            "data_hash": data_hash,
            "code_hash": code_hash,
            "extract_date": cohort.extract_date.isoformat(),
            "grid": [data.grid.dates[0].isoformat(), data.grid.dates[-1].isoformat()],
            "fit_months": data.fit_months,
            "split_method": data.split.method,
            "split_practices": data.split.practices,
            "seed": seed,
        },
    )
    _say(progress, "evaluating against baselines")
    metrics = evaluate_bundle(engine, bundle, data, torch_device)
    training["seconds"] = time.perf_counter() - started
    metrics["training"] = training
    metrics["hpo"] = hpo_record
    card = build_model_card(bundle, data, metrics)
    bundle.save(directory)
    (directory / METRICS_FILE).write_text(json.dumps(metrics, indent=2))
    (directory / CARD_JSON).write_text(json.dumps(card, indent=2))
    (directory / CARD_MD).write_text(render_model_card(card))
    record_model_run(engine, version, directory / MODEL_FILE, metrics, card)
    state_path.unlink(missing_ok=True)
    _say(progress, f"trained {version} in {time.perf_counter() - started:.0f} s")
    return version


def _say(progress: bool, message: str) -> None:
    if progress:
        print(message, flush=True)
    log.info(message)
