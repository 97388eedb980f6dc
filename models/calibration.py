"""Per-outcome recalibration on the validation split: Platt scaling of the logit (Platt 1999).

``p = sigmoid(a * logit + b)``: ``a`` is an inverse temperature (Guo et al. ICML 2017) and ``b`` corrects the base
rate. Two parameters cannot overfit a validation split of thousands of landmarks, and, unlike isotonic regression,
the map is smooth and strictly increasing, so it never ties distinct risks (which would blur rankings and the
counterfactual explanations) and never changes the AUROC.
"""

from __future__ import annotations

import numpy as np

NEWTON_STEPS = 50
RIDGE = 1e-6


def fit_platt(logits: np.ndarray, y: np.ndarray, *, increasing_only: bool = True) -> tuple[float, float]:
    """Maximum-likelihood (a, b) by Newton's method; identity (1, 0) when one class is missing.

    With ``increasing_only`` a fit that would reverse the ranking (a <= 0) is refused (identity), since a
    recalibration must never turn a risk model upside down.
    """
    z = np.asarray(logits, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if z.size == 0 or y.min() == y.max():
        return 1.0, 0.0
    design = np.stack([z, np.ones_like(z)], axis=1)
    rate = y.mean()
    params = np.array([0.0, np.log(rate / (1 - rate))])  # the base rate: a safe start for Newton's method
    loss = _log_loss(design, params, y)
    for _ in range(NEWTON_STEPS):
        p = _sigmoid(design @ params)
        gradient = design.T @ (p - y)
        hessian = (design * (p * (1 - p))[:, None]).T @ design + RIDGE * np.eye(2)
        step = np.linalg.solve(hessian, gradient)
        # Halve the step until the log-loss does not increase (damped Newton never diverges).
        for _ in range(30):
            candidate = params - step
            candidate_loss = _log_loss(design, candidate, y)
            if candidate_loss <= loss + 1e-12:
                break
            step /= 2
        params, improvement, loss = candidate, loss - candidate_loss, candidate_loss
        if improvement < 1e-10:
            break
    a, b = float(params[0]), float(params[1])
    if not np.isfinite(a) or not np.isfinite(b) or (increasing_only and a <= 0):
        return 1.0, 0.0
    return a, b


def _log_loss(design: np.ndarray, params: np.ndarray, y: np.ndarray) -> float:
    z = design @ params
    # log(1 + e^z) - y z, computed stably.
    return float(np.mean(np.logaddexp(0.0, z) - y * z))


def apply_platt(logits: np.ndarray, params: tuple[float, float]) -> np.ndarray:
    a, b = params
    return _sigmoid(a * np.asarray(logits, dtype=np.float64) + b)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))
