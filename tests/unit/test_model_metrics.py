"""Metrics with patient-level bootstrap, and Platt calibration."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from models.calibration import apply_platt, fit_platt
from models.metrics import (
    ece,
    metric_report,
    paired_auroc_difference,
    prepare,
    reliability_curve,
    weighted_auprc,
    weighted_auroc,
)


@pytest.fixture
def scored():
    rng = np.random.default_rng(7)
    y = rng.integers(0, 2, 3000).astype(float)
    # Rounded scores: plenty of ties, which the rank statistics must count as one half.
    p = np.round(np.clip(0.3 * y + rng.random(3000) * 0.7, 0, 1), 2)
    return y, p


def test_auroc_and_auprc_match_scikit_learn_with_ties(scored):
    y, p = scored
    s = prepare(y, p)
    ones = np.ones_like(y)
    assert weighted_auroc(s, ones) == pytest.approx(roc_auc_score(y, p), abs=1e-12)
    assert weighted_auprc(s, ones) == pytest.approx(average_precision_score(y, p), abs=1e-12)


def test_integer_weights_equal_repeating_rows(scored):
    y, p = scored
    w = np.random.default_rng(1).poisson(1.0, y.shape[0]).astype(float)
    s = prepare(y, p)
    repeated = np.repeat(np.arange(y.shape[0]), w.astype(int))
    assert weighted_auroc(s, w[s.order]) == pytest.approx(roc_auc_score(y[repeated], p[repeated]), abs=1e-12)


def test_report_shape_and_bootstrap_interval_brackets_the_point(scored):
    y, p = scored
    report = metric_report(y, p, groups=np.arange(y.shape[0]) // 4, replicates=100, seed=0)
    lo, point, hi = report["auroc"]
    assert lo < point < hi
    assert report["auprc"][0] < report["auprc"][1] < report["auprc"][2]
    assert set(report) >= {"auroc", "auprc", "brier", "ece", "n", "events"}
    assert report["n"] == 3000 and report["events"] == int(y.sum())


def test_single_class_gives_no_auroc():
    report = metric_report(np.zeros(50), np.linspace(0, 1, 50), np.arange(50), replicates=20)
    assert report["auroc"] == [None, None, None]


def test_ece_and_reliability_curve():
    rng = np.random.default_rng(3)
    p = rng.random(200_000)
    y = (rng.random(200_000) < p).astype(float)
    assert ece(y, p) < 0.01
    assert ece(y, np.clip(p + 0.2, 0, 1)) > 0.15
    curve = reliability_curve(y, p)
    assert len(curve) == 10 and sum(b["count"] for b in curve) == 200_000
    assert all(abs(b["observed"] - b["mean_predicted"]) < 0.02 for b in curve)


def test_platt_scaling_recovers_a_known_miscalibration():
    rng = np.random.default_rng(11)
    logits = rng.normal(size=50_000) * 2
    y = (rng.random(50_000) < 1 / (1 + np.exp(-(0.5 * logits - 1.0)))).astype(float)
    a, b = fit_platt(logits, y)
    assert a == pytest.approx(0.5, abs=0.05) and b == pytest.approx(-1.0, abs=0.05)
    calibrated = apply_platt(logits, (a, b))
    assert ece(y, calibrated) < ece(y, 1 / (1 + np.exp(-logits)))


def test_platt_never_reverses_a_ranking_unless_asked():
    logits = np.linspace(-3, 3, 1000)
    y = (logits < 0).astype(float)
    assert fit_platt(logits, y) == (1.0, 0.0)
    assert fit_platt(logits, y, increasing_only=False)[0] < 0


def test_paired_difference_of_auroc(scored):
    y, p = scored
    groups = np.arange(y.shape[0]) // 4
    assert paired_auroc_difference(y, p, p, groups, replicates=50) == [0.0, 0.0, 0.0]
    noisy = p + np.random.default_rng(2).normal(0, 0.3, p.shape[0])
    lo, point, hi = paired_auroc_difference(y, p, noisy, groups, replicates=100)
    assert 0 < lo < point < hi
    assert point == pytest.approx(
        roc_auc_score(y, p) - roc_auc_score(y, noisy), abs=1e-4
    )  # rounded to 4 places


def test_roc_points_run_from_origin_to_corner_and_are_monotone() -> None:
    import numpy as np

    from models.metrics import roc_points

    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 5000)
    p = np.clip(0.3 * y + rng.random(5000) * 0.7, 0, 1)
    points = roc_points(y, p, max_points=50)
    assert 2 <= len(points) <= 50
    assert (points[0]["fpr"], points[0]["tpr"]) == (0.0, 0.0)
    assert (points[-1]["fpr"], points[-1]["tpr"]) == (1.0, 1.0)
    fprs = [pt["fpr"] for pt in points]
    tprs = [pt["tpr"] for pt in points]
    assert fprs == sorted(fprs) and tprs == sorted(tprs)
    # Better than chance: the curve lies above the diagonal in the middle.
    middle = points[len(points) // 2]
    assert middle["tpr"] > middle["fpr"]
    assert roc_points(np.zeros(10), np.linspace(0, 1, 10)) == []
