"""Batched inference over a population: logits, calibrated risks and Monte Carlo dropout bounds."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import nullcontext

import numpy as np
import torch

from models.calibration import apply_platt
from models.config import OUTCOMES
from models.device import uses_mixed_precision
from models.graph import PopulationGraph, make_batch, population_key_index
from models.network import TemporalGraphRiskModel, to_tensors


def autocast(device: torch.device):  # noqa: ANN201 - context manager
    """bfloat16 autocast on CUDA (mixed precision), nothing on CPU."""
    if uses_mixed_precision(device):
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return nullcontext()


def batches(rows: np.ndarray, batch_size: int) -> Iterator[np.ndarray]:
    for start in range(0, rows.shape[0], batch_size):
        yield rows[start : start + batch_size]


@torch.inference_mode()
def population_logits(
    model: TemporalGraphRiskModel,
    population: PopulationGraph,
    rows: np.ndarray,
    device: torch.device,
    batch_size: int = 512,
) -> np.ndarray:
    """Point logits [len(rows), T, O] (no dropout)."""
    model.eval()
    keys = population_key_index(population)
    out = np.zeros((rows.shape[0], population.months, len(OUTCOMES)), dtype=np.float32)
    position = 0
    for chunk in batches(np.asarray(rows, dtype=np.int64), batch_size):
        tensors = to_tensors(make_batch(population, chunk, keys), device)
        with autocast(device):
            logits = model(tensors)
        out[position : position + chunk.shape[0]] = logits.float().cpu().numpy()
        position += chunk.shape[0]
    return out


def calibrated(logits: np.ndarray, calibration: dict[str, tuple[float, float]]) -> np.ndarray:
    """Apply each outcome's Platt map along the last axis."""
    out = np.empty(logits.shape, dtype=np.float32)
    for o, outcome in enumerate(OUTCOMES):
        out[..., o] = apply_platt(logits[..., o], calibration.get(outcome, (1.0, 0.0)))
    return out


def risk_with_bounds(
    point_logits: np.ndarray,
    sample_logits: np.ndarray,
    calibration: dict[str, tuple[float, float]],
    level: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Calibrated risk and the central ``level`` interval of the calibrated Monte Carlo samples (axis 0)."""
    risk = calibrated(point_logits, calibration)
    samples = calibrated(sample_logits, calibration)
    lower, upper = np.quantile(samples, [(1 - level) / 2, (1 + level) / 2], axis=0)
    return risk, np.minimum(lower, risk).astype(np.float32), np.maximum(upper, risk).astype(np.float32)


@torch.inference_mode()
def iter_population_risks(
    model: TemporalGraphRiskModel,
    population: PopulationGraph,
    rows: np.ndarray,
    device: torch.device,
    calibration: dict[str, tuple[float, float]],
    level: float,
    batch_size: int = 512,
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, torch.Tensor]]:
    """Per batch: (rows, risk, lower, upper) each [b, T, O], and the GRU states [b, T, H] (for explanations)."""
    model.eval()
    keys = population_key_index(population)
    for chunk in batches(np.asarray(rows, dtype=np.int64), batch_size):
        tensors = to_tensors(make_batch(population, chunk, keys), device)
        with autocast(device):
            z = model.encode(tensors)
            states, head_input = model.sequence(z, tensors.batch_size, tensors.months)
            points, samples = model.heads_with_samples(head_input)
        risk, lower, upper = risk_with_bounds(
            points.float().cpu().numpy(), samples.float().cpu().numpy(), calibration, level
        )
        yield chunk, risk, lower, upper, states.float()
