"""Train / validation / test split by practice.

Splitting by practice (not by patient) tests what deployment needs: a model trained on some practices scoring
patients of practices it has never seen, whose coding habits differ. Practices are shuffled with the seed and
assigned in turn until each split holds its share of patients.

With fewer than ``MIN_PRACTICES`` (3) practices (e.g. a Synthea import, where every patient may belong to one
organisation) a practice split is impossible; patients are then split at random and the report says so.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

MIN_PRACTICES = 3
SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class Split:
    rows: dict[str, np.ndarray]  # split -> patient rows (positions in the id-sorted patient list)
    practices: dict[str, list[str]]
    method: str  # "practice" or "patient"


def split_patients(patients: pl.DataFrame, fractions: tuple[float, float, float], seed: int) -> Split:
    """Split the id-sorted ``patients`` (columns id, practice_id)."""
    patients = patients.sort("id")
    practice = patients["practice_id"].fill_null("").to_numpy().astype(str)
    rng = np.random.default_rng(seed)
    names = np.unique(practice)
    cumulative = np.cumsum(fractions) / np.sum(fractions)
    if names.size >= MIN_PRACTICES:
        order = rng.permutation(names)
        sizes = np.array([np.count_nonzero(practice == name) for name in order], dtype=np.float64)
        # Assign each practice to the split in which the middle of its block of patients falls.
        middle = (np.cumsum(sizes) - sizes / 2) / sizes.sum()
        assigned = np.searchsorted(cumulative, middle, side="right").clip(0, 2)
        # Every split needs at least one practice.
        for k in range(3):
            if not np.any(assigned == k):
                donor = int(np.argmax(np.bincount(assigned, minlength=3)))
                candidates = np.nonzero(assigned == donor)[0]
                assigned[candidates[-1] if k > donor else candidates[0]] = k
        by_practice = dict(zip(order.tolist(), assigned.tolist(), strict=True))
        label = np.array([by_practice[p] for p in practice], dtype=np.int64)
        return Split(
            rows={s: np.nonzero(label == k)[0] for k, s in enumerate(SPLITS)},
            practices={
                s: sorted(p for p, k2 in by_practice.items() if k2 == k) for k, s in enumerate(SPLITS)
            },
            method="practice",
        )
    position = rng.permutation(patients.height) / max(patients.height, 1)
    label = np.searchsorted(cumulative, position, side="right").clip(0, 2)
    return Split(
        rows={s: np.nonzero(label == k)[0] for k, s in enumerate(SPLITS)},
        practices={s: [] for s in SPLITS},
        method="patient",
    )
