"""Planted prescribing cascades show up as "marker after index" asymmetry; unplanned pairs stay symmetric."""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest

from clinical.sequence_symmetry import SymmetryParameters, first_starts, incident_starts, sequence_ratio
from clinical.vocabulary import DrugVocabulary
from data_access.sources.synthetic import PLANTED_CASCADES, generate_cohort
from data_access.sources.synthetic.medicines import ACUTE_COURSES, SLOTS

WASHOUT_END = date(2022, 1, 1)
"""First starts before this are treated as prevalent use (a one-year run-in), as in sequence symmetry analysis."""


@pytest.fixture(scope="module")
def cohort_frames() -> dict[str, pl.DataFrame]:
    frames = generate_cohort(3000, 51, enrich_smr=True)
    frames["patient"] = frames["patient"].rename({"id": "patient_id"})
    return frames


@pytest.fixture(scope="module")
def starts(cohort_frames: dict[str, pl.DataFrame]) -> pl.DataFrame:
    rx = (
        cohort_frames["prescription"]
        .with_columns(pl.col("ingredients").str.split(";"))
        .explode("ingredients")
    )
    return rx.group_by("patient_id", "ingredients").agg(pl.col("start").min().alias("first"))


def _order_counts(starts: pl.DataFrame, index: str, marker: str, window_days: int) -> tuple[int, int]:
    """(marker after index, marker before index) among incident users of both within the window."""
    drugs = DrugVocabulary.load()

    def first_of(item: str) -> pl.DataFrame:
        members = sorted(drugs.members(item)) if item in drugs.class_keys else [item]
        return (
            starts.filter(pl.col("ingredients").is_in(members))
            .group_by("patient_id")
            .agg(pl.col("first").min())
        )

    pairs = (
        first_of(index)
        .join(first_of(marker), on="patient_id", suffix="_marker")
        .filter((pl.col("first") >= WASHOUT_END) & (pl.col("first_marker") >= WASHOUT_END))
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
def test_planted_cascade_marker_follows_index(starts: pl.DataFrame, cascade) -> None:  # noqa: ANN001
    after, before = _order_counts(starts, cascade.index_class, cascade.marker_class, cascade.window_days)
    assert after >= 4 and after >= 2 * before + 2, (after, before)


# Common drug pairs from unrelated clinical areas (no shared indication, no pathway, no co-prescription). Pairs that
# share an indication can be ordered without any drug-drug mechanism (after a new CVD diagnosis the antiplatelet
# usually comes before the statin), so they are not controls.
CONTROL_PAIRS = (
    ("penicillin", "statin"),
    ("penicillin", "ppi"),
    ("macrolide", "statin"),
    ("laxative", "statin"),
    ("non_opioid_analgesic", "ccb_dihydropyridine"),
)


def test_unplanned_pairs_show_no_signal_in_sequence_symmetry_analysis(
    cohort_frames: dict[str, pl.DataFrame],
) -> None:
    """The project's PSSA (trend-adjusted, clinical.sequence_symmetry) finds no signal for unplanned pairs."""
    drugs = DrugVocabulary.load()
    groups = {c: sorted(drugs.members(c)) for pair in CONTROL_PAIRS for c in pair}
    incident, params = _incident(cohort_frames, groups)
    tested = 0
    for index, marker in CONTROL_PAIRS:
        result = sequence_ratio(incident, index, marker, params)
        if result.n_index_first + result.n_marker_first < 15:
            continue
        tested += 1
        assert not result.signal and result.ci_upper > 1, result
    assert tested >= 3


def test_planted_cascades_are_strong_in_sequence_symmetry_analysis(
    cohort_frames: dict[str, pl.DataFrame],
) -> None:
    drugs = DrugVocabulary.load()
    groups = {
        c: sorted(drugs.members(c))
        for cascade in PLANTED_CASCADES
        for c in (cascade.index_class, cascade.marker_class)
    }
    incident, params = _incident(cohort_frames, groups)
    results = [sequence_ratio(incident, c.index_class, c.marker_class, params) for c in PLANTED_CASCADES]
    for result in results:
        assert result.n_index_first >= 5, result
        assert result.adjusted_sr is None or result.adjusted_sr > 2, (
            result
        )  # None: no "marker first" pair at all
    assert sum(r.signal for r in results) >= 2, results


def _incident(
    frames: dict[str, pl.DataFrame], groups: dict[str, list[str]]
) -> tuple[pl.DataFrame, SymmetryParameters]:
    params = SymmetryParameters(window_days=365, washout_days=365, min_pairs=10)
    rx = (
        frames["prescription"]
        .with_columns(pl.col("ingredients").str.split(";"))
        .explode("ingredients")
        .select("patient_id", pl.col("ingredients").alias("drug"), "start")
    )
    observed = frames["patient"].select("patient_id", pl.col("registered_on").alias("observed_from"))
    first = first_starts(rx, groups)
    return incident_starts(first, params, date(2021, 1, 1), date(2025, 12, 31), observed), params
