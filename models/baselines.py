"""Baselines on the same landmarks, features and split as the graph model.

- ``logistic_regression``: L2 logistic regression on the standardised count/flag features (missing labs imputed
  with the training median plus a missing indicator);
- ``gradient_boosting``: LightGBM on the same features (missing labs left as missing, which trees handle natively),
  early-stopped on the validation split;
- ``efi`` and ``cms``: the electronic Frailty Index (Clegg 2016) and the Cambridge Multimorbidity Score (Payne
  2020) alone, each mapped to a risk by a one-variable logistic fit on the training split (the map is monotone, so
  their AUROC is that of the raw score).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from models.calibration import apply_platt, fit_platt
from models.config import OUTCOMES

BASELINES = ("logistic_regression", "gradient_boosting", "efi", "cms")
GBM_PARAMS = {
    "n_estimators": 600,
    "learning_rate": 0.05,
    "num_leaves": 31,
    "min_child_samples": 50,
    "subsample": 0.8,
    "subsample_freq": 1,
    "colsample_bytree": 0.8,
    "reg_lambda": 1.0,
}
GBM_EARLY_STOPPING_ROUNDS = 40


@dataclass
class _Standardiser:
    median: np.ndarray
    mean: np.ndarray
    scale: np.ndarray
    missing_columns: np.ndarray

    @classmethod
    def fit(cls, X: np.ndarray) -> _Standardiser:
        missing = np.isnan(X).any(axis=0)
        with warnings.catch_warnings():
            # All-missing columns (a lab never measured in training) give NaN medians; they are zeroed below.
            warnings.simplefilter("ignore", RuntimeWarning)
            median = np.nan_to_num(np.nanmedian(X, axis=0))
        filled = np.where(np.isnan(X), median, X)
        scale = filled.std(axis=0)
        return cls(median, filled.mean(axis=0), np.where(scale > 1e-9, scale, 1.0), np.nonzero(missing)[0])

    def transform(self, X: np.ndarray) -> np.ndarray:
        indicators = np.isnan(X[:, self.missing_columns]).astype(np.float32)
        filled = np.where(np.isnan(X), self.median, X)
        return np.concatenate([(filled - self.mean) / self.scale, indicators], axis=1).astype(np.float32)


def fit_logistic(X: np.ndarray, y: np.ndarray, seed: int) -> tuple[_Standardiser, list]:
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    standardiser = _Standardiser.fit(X)
    Z = standardiser.transform(X)
    fitted = []
    for o in range(len(OUTCOMES)):
        if np.unique(y[:, o]).size < 2:
            fitted.append(float(y[:, o].mean()))
            continue
        model = LogisticRegression(C=0.1, max_iter=300, random_state=seed)
        with warnings.catch_warnings():
            # lbfgs stopping at max_iter on hundreds of thousands of rows still gives a usable baseline; the
            # report shows its metrics as they are.
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(Z, y[:, o])
        fitted.append(model)
    return standardiser, fitted


def predict_logistic(fitted: tuple[_Standardiser, list], X: np.ndarray) -> np.ndarray:
    standardiser, models = fitted
    Z = standardiser.transform(X)
    return np.stack(
        [m.predict_proba(Z)[:, 1] if not isinstance(m, float) else np.full(Z.shape[0], m) for m in models],
        axis=1,
    )


def fit_gbm(
    X: np.ndarray, y: np.ndarray, X_val: np.ndarray, y_val: np.ndarray, seed: int, threads: int
) -> list:
    import lightgbm as lgb

    # LightGBM copies (and warns about) strided views; give it contiguous arrays.
    X, X_val = np.ascontiguousarray(X), np.ascontiguousarray(X_val)
    fitted = []
    for o in range(len(OUTCOMES)):
        target, val_target = np.ascontiguousarray(y[:, o]), np.ascontiguousarray(y_val[:, o])
        if np.unique(target).size < 2:
            fitted.append(float(target.mean()))
            continue
        model = lgb.LGBMClassifier(**GBM_PARAMS, random_state=seed, n_jobs=threads, verbose=-1)
        callbacks = [lgb.early_stopping(GBM_EARLY_STOPPING_ROUNDS, verbose=False)]
        has_val = X_val.shape[0] > 0 and np.unique(val_target).size > 1
        if has_val:
            model.fit(X, target, eval_X=(X_val,), eval_y=(val_target,), callbacks=callbacks)
        else:
            model.fit(X, target)
        fitted.append(model)
    return fitted


def predict_gbm(fitted: list, X: np.ndarray) -> np.ndarray:
    X = np.ascontiguousarray(X)
    return np.stack(
        [m.predict_proba(X)[:, 1] if not isinstance(m, float) else np.full(X.shape[0], m) for m in fitted],
        axis=1,
    )


def fit_score(score: np.ndarray, y: np.ndarray) -> list[tuple[float, float]]:
    """One-variable logistic map per outcome (a single clinical score as a risk)."""
    return [fit_platt(score, y[:, o], increasing_only=False) for o in range(len(OUTCOMES))]


def predict_score(params: list[tuple[float, float]], score: np.ndarray) -> np.ndarray:
    return np.stack([apply_platt(score, p) for p in params], axis=1)
