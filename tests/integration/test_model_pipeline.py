"""Train, evaluate, score, explain and what-if on a small synthetic cohort in SQLite (one training run, shared)."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import replace

import numpy as np
import pytest
import torch
from sqlalchemy import select, text

from data_access.db import make_engine
from data_access.loading import load_frames
from data_access.migrate import upgrade_database
from data_access.schema import ModelRun
from data_access.sources.synthetic import generate_cohort
from models.cohort import TimeGrid, load_cohort
from models.config import OUTCOMES, ModelConfig
from models.evaluation import evaluate_model
from models.inference import _trajectories, load_bundle, predict_patient, what_if
from models.metrics import prepare, weighted_auroc
from models.predict import population_logits
from models.registry import CARD_JSON, CARD_MD, METRICS_FILE, MODEL_FILE
from models.scenario import apply_scenario
from models.scoring import score_population
from models.training import cohort_vocabulary, fit_network, prepare_training_data, train_model, tune

SMALL = ModelConfig(
    hidden=16,
    batch_size=32,
    train_months=12,
    holdout_months=3,
    trajectory_months=6,
    mc_samples=8,
    bootstrap_replicates=40,
)
CPU = torch.device("cpu")
PATIENTS = 400


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Run this module single-threaded: on the suite's two shared cores, spinning thread pools (torch, OpenBLAS,
    LightGBM's OpenMP) fighting each other and other processes cost far more than they give on tiny batches."""
    from threadpoolctl import threadpool_limits

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with threadpool_limits(1):
        yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, one_thread):
    directory = tmp_path_factory.mktemp("model-pipeline")
    engine = make_engine(f"sqlite:///{directory / 'db.sqlite'}")
    upgrade_database(engine)
    frames = generate_cohort(PATIENTS, seed=5, start=dt.date(2023, 1, 1), enrich_smr=True, practices=6)
    load_frames(engine, frames)
    model_dir = directory / "models"
    version = train_model(engine, model_dir=model_dir, epochs=3, seed=0, config=SMALL, device="cpu")
    yield engine, model_dir, version
    engine.dispose()


def _mean_auroc(y: np.ndarray, p: np.ndarray, mask: np.ndarray) -> float:
    values = []
    for o in range(len(OUTCOMES)):
        yo, po = y[..., o][mask], p[..., o][mask]
        if yo.sum() >= 10:
            values.append(weighted_auroc(prepare(yo, po), np.ones_like(yo)))
    return float(np.mean(values))


def test_training_saves_the_bundle_and_registers_the_active_version(trained):
    engine, model_dir, version = trained
    for name in (MODEL_FILE, METRICS_FILE, CARD_JSON, CARD_MD):
        assert (model_dir / version / name).exists()
    with engine.connect() as connection:
        active = connection.execute(select(ModelRun.version).where(ModelRun.active.is_(True))).scalars().all()
    assert active == [version]
    card = json.loads((model_dir / version / CARD_JSON).read_text())
    assert {
        "intended_use",
        "data",
        "performance",
        "calibration",
        "limitations",
        "hyperparameter_search",
    } <= set(card)
    # Re-running with the same data, settings and code reuses the version instead of training again.
    assert train_model(engine, model_dir=model_dir, epochs=3, seed=0, config=SMALL, device="cpu") == version


def test_evaluate_report_has_the_design_shape(trained):
    engine, model_dir, version = trained
    report = evaluate_model(engine, model_dir=model_dir)
    assert report["model_version"] == version
    assert set(report["outcomes"]) == set(OUTCOMES)
    for by_model in report["outcomes"].values():
        assert {"graph_model", "logistic_regression", "gradient_boosting", "efi", "cms", "oracle"} <= set(
            by_model
        )
        for metrics in by_model.values():
            assert len(metrics["auroc"]) == 3 and len(metrics["auprc"]) == 3
            assert isinstance(metrics["brier"], float) and isinstance(metrics["ece"], float)
    assert {"temporal_holdout", "subgroups", "calibration_curve", "comparison"} <= set(report)
    assert set(report["subgroups"]) == {"age_band", "sex", "deprivation"}
    json.dumps(report)  # plain JSON all the way down


@pytest.fixture(scope="module")
def training_data(trained):
    engine, _, _ = trained
    cohort = load_cohort(engine)
    return prepare_training_data(cohort, SMALL.replace(epochs=3), cohort_vocabulary(cohort))


def test_training_beats_a_shuffled_label_control(trained, training_data):
    engine, model_dir, version = trained
    bundle = load_bundle(engine, model_dir, version, CPU)
    data = training_data
    test_rows = data.split.rows["test"]
    mask = data.mask(test_rows, "fit")
    y = data.labels.y[test_rows]
    real = _mean_auroc(y, population_logits(bundle.model, data.population, test_rows, CPU), mask)

    shuffled = np.random.default_rng(0).permutation(data.split.rows["train"])
    labels = replace(
        data.labels,
        y=data.labels.y.copy(),
        labelled=data.labels.labelled.copy(),
    )
    labels.y[data.split.rows["train"]] = data.labels.y[shuffled]
    labels.labelled[data.split.rows["train"]] = data.labels.labelled[shuffled]
    control, _ = fit_network(replace(data, labels=labels), SMALL.replace(epochs=3), CPU)
    chance = _mean_auroc(y, population_logits(control, data.population, test_rows, CPU), mask)
    print(f"mean test AUROC: trained {real:.3f}, shuffled-label control {chance:.3f}")
    assert real > chance + 0.05, (real, chance)


def test_hyperparameter_search_records_its_trials(training_data):
    config, record = tune(training_data, SMALL.replace(epochs=1), CPU, trials=2)
    # The default is tried first wherever it lies in the search space (hidden 16 does not; layers 2 does).
    assert len(record["trials"]) == 2 and record["trials"][0]["params"]["layers"] == SMALL.layers
    assert (
        set(record["chosen"]) == set(record["search_space"]) and config.hidden == record["chosen"]["hidden"]
    )
    assert all(t["value"] is not None for t in record["trials"])


def test_scoring_is_deterministic_and_idempotent(trained):
    engine, model_dir, version = trained
    query = text(
        "SELECT patient_id, as_of, outcome, risk, lower, upper FROM prediction "
        "WHERE model_version = :v ORDER BY patient_id, as_of, outcome"
    )
    explanations = text(
        "SELECT patient_id, outcome, factor, contribution FROM explanation "
        "WHERE model_version = :v ORDER BY patient_id, outcome, factor"
    )
    stats = score_population(engine, model_dir=model_dir, batch_size=64, device="cpu")
    with engine.connect() as connection:
        first = connection.execute(query, {"v": version}).fetchall()
        first_explanations = connection.execute(explanations, {"v": version}).fetchall()
    score_population(engine, model_dir=model_dir, batch_size=64, device="cpu")
    with engine.connect() as connection:
        second = connection.execute(query, {"v": version}).fetchall()
        second_explanations = connection.execute(explanations, {"v": version}).fetchall()
    assert stats["patients"] == PATIENTS and stats["predictions"] == len(first) > 0
    assert first == second and first_explanations == second_explanations
    assert all(lower <= risk <= upper for *_, risk, lower, upper in first)
    assert all(
        factor.split(":")[0] in {"drug", "condition", "event", "lab", "interaction"}
        for *_, factor, _ in first_explanations
    )


def test_removing_the_top_drug_moves_the_risk_as_its_contribution_said(trained):
    engine, model_dir, version = trained
    with engine.connect() as connection:
        row = connection.execute(
            text(
                "SELECT patient_id, as_of, outcome, factor, contribution FROM explanation "
                "WHERE model_version = :v AND factor LIKE 'drug:%' ORDER BY abs(contribution) DESC, patient_id LIMIT 1"
            ),
            {"v": version},
        ).one()
    patient_id, as_of, outcome, factor, contribution = row
    landmark = dt.date.fromisoformat(str(as_of))
    drug = factor.removeprefix("drug:")
    bundle = load_bundle(engine, model_dir, version, CPU)
    cohort = load_cohort(engine, [patient_id])
    grid = TimeGrid.ending_at(landmark, bundle.config.trajectory_months)
    as_recorded = _trajectories(bundle, cohort, grid, CPU, explain=False)[patient_id]["current"][outcome][
        "risk"
    ]
    # The drug stopped the day before the landmark (every other ingredient and record kept).
    stopped, _ = apply_scenario(cohort, landmark, stops={drug}, starts=set())
    without = _trajectories(bundle, stopped, grid, CPU, explain=False)[patient_id]["current"][outcome]["risk"]
    assert np.sign(as_recorded - without) == np.sign(contribution)
    assert as_recorded - without == pytest.approx(contribution, abs=1e-4)


def test_predict_patient_reads_the_cache_and_agrees_with_a_fresh_computation(trained):
    engine, model_dir, version = trained
    with engine.connect() as connection:
        patient_id = connection.execute(text("SELECT patient_id FROM explanation LIMIT 1")).scalar_one()
    cached = predict_patient(engine, patient_id, model_dir=model_dir, device="cpu")
    assert cached["source"] == "cache" and cached["model_version"] == version
    assert set(cached["trajectory"]) == set(OUTCOMES) and cached["drivers"]["death"]
    with engine.begin() as connection:
        connection.execute(text("DELETE FROM explanation WHERE patient_id = :p"), {"p": patient_id})
    fresh = predict_patient(engine, patient_id, model_dir=model_dir, device="cpu")
    assert fresh["source"] == "computed"
    for outcome in OUTCOMES:
        assert fresh["current"][outcome]["risk"] == pytest.approx(
            cached["current"][outcome]["risk"], abs=1e-5
        )


def test_what_if_stopping_a_drug_gives_current_and_scenario_trajectories(trained):
    engine, model_dir, version = trained
    with engine.connect() as connection:
        patient_id, drug = connection.execute(
            text(
                "SELECT patient_id, drug_key FROM prescription WHERE stop IS NULL AND drug_key IS NOT NULL "
                "ORDER BY patient_id LIMIT 1"
            )
        ).one()
    result = what_if(
        engine, patient_id=patient_id, scenario={"stop": [drug]}, model_dir=model_dir, device="cpu"
    )
    assert result["interpretation"] == "associational, not causal"
    assert result["model_version"] == version and result["applied"]["stop"] == [drug]
    for outcome in OUTCOMES:
        assert len(result["current"][outcome]) == 12 == len(result["scenario"][outcome])
    assert any(
        abs(a["risk"] - b["risk"]) > 0
        for outcome in OUTCOMES
        for a, b in zip(result["current"][outcome], result["scenario"][outcome], strict=True)
    )
    with pytest.raises(ValueError, match="unknown drug"):
        what_if(
            engine, patient_id=patient_id, scenario={"stop": ["notadrug"]}, model_dir=model_dir, device="cpu"
        )


def test_what_if_on_a_patient_json(trained):
    engine, model_dir, version = trained
    patient = {
        "as_of": "2025-06-30",
        "age": 81,
        "sex": "F",
        "conditions": [{"name": "heart failure", "onset": "2019-03-01"}],
        "medications": [
            {"drug": "ibuprofen", "start": "2025-05-01", "stop": None},
            {"drug": "warfarin", "start": "2018-01-01"},
        ],
        "labs": [{"name": "egfr", "value": 38, "date": "2025-04-02"}],
        "events": [{"type": "fall", "date": "2025-01-10"}],
    }
    result = what_if(
        engine,
        patient_json=patient,
        scenario={"switch": [["ibuprofen", "paracetamol"]], "from": "2025-07-01"},
        model_dir=model_dir,
        device="cpu",
    )
    assert result["from"] == "2025-07-01" and result["applied"] == {
        "stop": ["ibuprofen"],
        "start": ["paracetamol"],
    }
    assert [p["as_of"] for p in result["current"]["medication_harm"]][0] == "2025-07-01"
    assert set(result["summary"]) == set(OUTCOMES)
