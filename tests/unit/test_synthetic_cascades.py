"""Planted prescribing cascades show up as "marker after index" asymmetry; unplanned pairs stay symmetric."""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest

from clinical.vocabulary import DrugVocabulary
from data_access.sources.synthetic import PLANTED_CASCADES, generate_cohort
from data_access.sources.synthetic.medicines import ACUTE_COURSES, SLOTS

WASHOUT_END = date(2022, 1, 1)
"""First starts before this are treated as prevalent use (a one-year run-in), as in sequence symmetry analysis."""


@pytest.fixture(scope="module")
def first_starts() -> pl.DataFrame:
    frames = generate_cohort(3000, 51, enrich_smr=True)
    rx = frames["prescription"].with_columns(pl.col("ingredients").str.split(";")).explode("ingredients")
    return rx.group_by("patient_id", "ingredients").agg(pl.col("start").min().alias("first"))


def _order_counts(first_starts: pl.DataFrame, index: str, marker: str, window_days: int) -> tuple[int, int]:
    """(marker after index, marker before index) among incident users of both within the window."""
    drugs = DrugVocabulary.load()

    def starts(item: str) -> pl.DataFrame:
        members = sorted(drugs.members(item)) if item in drugs.class_keys else [item]
        return first_starts.filter(pl.col("ingredients").is_in(members)).group_by("patient_id").agg(pl.col("first").min())

    pairs = starts(index).join(starts(marker), on="patient_id", suffix="_marker").filter(
        (pl.col("first") >= WASHOUT_END) & (pl.col("first_marker") >= WASHOUT_END)
    )
    gap = (pl.col("first_marker") - pl.col("first")).dt.total_days()
    pairs = pairs.with_columns(gap=gap).filter((pl.col("gap") != 0) & (pl.col("gap").abs() <= window_days))
    return int((pairs["gap"] > 0).sum()), int((pairs["gap"] < 0).sum())


def test_planted_cascades_are_well_defined() -> None:
    drugs = DrugVocabulary.load()
    slots = {slot.key: slot for slot in SLOTS}
    acute = {course.key: course for course in ACUTE_COURSES}
    for cascade in PLANTED_CASCADES:
        assert drugs.members(cascade.index_class) and drugs.members(cascade.marker_class)
        assert 0 < cascade.excess_probability < 1 and cascade.window_days > 7 and cascade.evidence
        if cascade.marker.startswith("acute:"):
            medicines = [acute[cascade.marker.removeprefix("acute:")].medicine]
        else:
            medicines = list(slots[cascade.marker].medicines)
        assert any(set(m.ingredients) & drugs.members(cascade.marker_class) for m in medicines)


@pytest.mark.parametrize("cascade", PLANTED_CASCADES, ids=lambda c: f"{c.index_class}->{c.marker_class}")
def test_planted_cascade_marker_follows_index(first_starts: pl.DataFrame, cascade) -> None:  # noqa: ANN001
    after, before = _order_counts(first_starts, cascade.index_class, cascade.marker_class, cascade.window_days)
    assert after >= 4 and after >= 2 * before + 2, (after, before)


@pytest.mark.parametrize(
    ("index", "marker"),
    [
        ("statin", "ppi"),
        ("ccb_dihydropyridine", "ppi"),
        ("ace_inhibitor", "ssri"),
        ("statin", "loop_diuretic"),
        ("ppi", "thiazide_diuretic"),
        ("bisphosphonate", "statin"),
    ],
)
def test_unplanned_pairs_have_no_temporal_asymmetry(first_starts: pl.DataFrame, index: str, marker: str) -> None:
    after, before = _order_counts(first_starts, index, marker, 365)
    total = after + before
    assert total >= 15, (after, before)
    assert abs(after - before) <= max(6, 0.4 * total), (after, before)
