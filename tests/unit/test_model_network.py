"""The network on the hand-made patients: causal in time, deterministic bounds, and exact counterfactual drivers."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest
import torch
from test_model_graph import GRID, hand_made_frames, tiny_vocabulary

from models.cohort import cohort_from_frames
from models.config import OUTCOMES, ModelConfig
from models.explain import explain_batch
from models.graph import build_population_graph, make_batch, population_key_index
from models.network import TemporalGraphRiskModel, to_hetero_data, to_tensors
from models.predict import iter_population_risks

CPU = torch.device("cpu")
CALIBRATION = {o: (1.0, 0.0) for o in OUTCOMES}
CONFIG = ModelConfig(hidden=16, layers=2, dropout=0.2, mc_samples=10, seed=3)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny tensors: a second torch thread only adds synchronisation on the suite's shared cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    vocabulary = tiny_vocabulary()
    network = TemporalGraphRiskModel(vocabulary, CONFIG, {"egfr": (60.0, 15.0)})
    return network.eval()


def _population(frames: dict[str, pl.DataFrame]):
    return build_population_graph(cohort_from_frames(frames), GRID, tiny_vocabulary(), CONFIG)


def _risks(model, population, rows):
    return next(iter_population_risks(model, population, np.asarray(rows), CPU, CALIBRATION, 0.9))


def test_outputs_at_a_month_do_not_depend_on_later_months(model):
    population = _population(hand_made_frames())
    batch = make_batch(population, [0, 1], population_key_index(population))
    with torch.inference_mode():
        before = model(to_tensors(batch, CPU))
        batch.patient_x[GRID.months - 1] += 5.0  # change patient 0's last snapshot only
        after = model(to_tensors(batch, CPU))
    assert before.shape == (2, GRID.months, len(OUTCOMES))
    assert torch.equal(before[0, :-1], after[0, :-1])
    assert not torch.equal(before[0, -1], after[0, -1])
    assert torch.equal(before[1], after[1])


def test_bounds_are_deterministic_ordered_and_independent_of_the_batch(model):
    population = _population(hand_made_frames())
    _, risk, lower, upper, _ = _risks(model, population, [0, 1])
    _, again, lower_again, upper_again, _ = _risks(model, population, [0, 1])
    _, alone, lower_alone, upper_alone, _ = _risks(model, population, [1])
    assert (
        np.array_equal(risk, again)
        and np.array_equal(lower, lower_again)
        and np.array_equal(upper, upper_again)
    )
    assert np.allclose(risk[1], alone[0], atol=1e-6) and np.allclose(upper[1], upper_alone[0], atol=1e-6)
    assert np.all(lower <= risk) and np.all(risk <= upper) and np.any(upper > lower)


def _drivers_at(model, population, month: int):
    rows = np.arange(population.num_patients)
    batch = make_batch(population, rows, population_key_index(population))
    _, risk, _, _, states = _risks(model, population, rows)
    months = np.full(rows.shape[0], month)
    return risk, explain_batch(model, population, batch, months, states, CALIBRATION, CPU)


def test_unedited_variant_reproduces_the_trajectory(model):
    population = _population(hand_made_frames())
    risk, drivers = _drivers_at(model, population, 2)
    assert np.allclose(drivers.risk, risk[:, 2], atol=1e-5)
    factors = {drivers.factor[i] for i in np.nonzero(drivers.patient == 0)[0]}
    assert factors == {
        "drug:ibuprofen",
        "drug:warfarin",
        "condition:heart_failure",
        "condition:hypertension",
        "event:fall",
        "lab:egfr",
        "interaction:DDI-NSAID-ANTICOAG",
        "interaction:STOPP-X",
    }


@pytest.mark.parametrize("drug", ["warfarin", "ibuprofen"])
def test_a_drug_contribution_equals_the_risk_change_when_it_stops_the_day_before(model, drug):
    """Counterfactual deletion at the landmark is exactly the record with the drug stopped the day before."""
    month = 2  # 1 Mar 2024
    population = _population(hand_made_frames())
    risk, drivers = _drivers_at(model, population, month)
    chosen = [i for i in np.nonzero(drivers.patient == 0)[0] if drivers.factor[i] == f"drug:{drug}"]
    contribution = drivers.contribution[chosen[0]]

    frames = hand_made_frames()
    day_before = GRID.dates[month] - dt.timedelta(days=1)
    frames["prescription"] = frames["prescription"].with_columns(
        pl.when(
            (pl.col("drug_key") == drug) & (pl.col("stop").is_null() | (pl.col("stop") >= GRID.dates[month]))
        )
        .then(pl.lit(day_before))
        .otherwise(pl.col("stop"))
        .alias("stop")
    )
    stopped = _risks(model, _population(frames), [0, 1])[1]
    # Earlier months are untouched; the landmark's risk moves by exactly the contribution.
    assert np.allclose(stopped[0, :month], risk[0, :month], atol=1e-6)
    assert np.allclose(risk[0, month] - stopped[0, month], contribution, atol=1e-5)


def test_a_batch_converts_to_pyg_hetero_data():
    population = _population(hand_made_frames())
    batch = make_batch(population, [0, 1], population_key_index(population))
    data = to_hetero_data(batch)
    assert data["patient"].num_nodes == 2 * GRID.months
    assert data["drug"].num_nodes == 14 and data["condition"].num_nodes == 7
    assert data["drug", "interacts", "drug"].edge_index.shape == (2, 4)
    assert data["drug", "cautions", "condition"].edge_index.shape == (2, 2)
    assert data["drug", "in_snapshot_of", "patient"].edge_index[1].max() < data["patient"].num_nodes
    data.validate(raise_on_error=True)
