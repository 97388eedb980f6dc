"""Prescription sequence symmetry analysis (clinical.sequence_symmetry) against a worked example, plus the incident-
user rules, the screen's orientation, the histogram bins and the calibration of its intervals under no effect."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest

from clinical.knowledge import load_knowledge
from clinical.rules import load_rules
from clinical.sequence_symmetry import (
    SymmetryParameters,
    first_starts,
    histogram,
    incident_starts,
    known_cascade_pairs,
    mark_known,
    screen,
    sequence_ratio,
    time_to_marker,
)

DAY0 = date(2024, 1, 1)


def on(day: int) -> date:
    return DAY0 + timedelta(days=day)


def starts(rows: list[tuple[str, str, int]]) -> pl.DataFrame:
    return pl.DataFrame(
        {"patient_id": [r[0] for r in rows], "drug": [r[1] for r in rows], "start": [on(r[2]) for r in rows]}
    )


# The worked example: window d = 10 days, no run-in, study from day 0 to day 40.
#   A (index) first starts: p1 day 2, p2 day 5, p3 day 8, p5 day 12, p4 day 20
#   B (marker) first starts: p7 day 1, p2 day 3, p1 day 6, p5 day 12, p3 day 15, p8 day 25, p6 day 30
# People with both: p1 +4 days (A first), p2 -2 (B first), p3 +7 (A first), p5 0 (same day, not counted).
#   crude SR = 2 / 1 = 2
# Null-effect SR (Tsiropoulos 2009) = sum over A starts on day m of B starts in (m, m+10], over the same of B
# starts in [m-10, m):
#   m=2:  B in days 3..12 -> 3, 6, 12 = 3   | B in days -8..1  -> 1        = 1
#   m=5:  B in days 6..15 -> 6, 12, 15 = 3  | B in days -5..4  -> 1, 3     = 2
#   m=8:  B in days 9..18 -> 12, 15 = 2     | B in days -2..7  -> 1, 3, 6  = 3
#   m=12: B in days 13..22 -> 15 = 1        | B in days 2..11  -> 3, 6     = 2
#   m=20: B in days 21..30 -> 25, 30 = 2    | B in days 10..19 -> 12, 15   = 2
#   NSR = (3 + 3 + 2 + 1 + 2) / (1 + 2 + 3 + 2 + 2) = 11 / 10 = 1.1;  adjusted SR = 2 / 1.1 = 1.8182
# 95% CI (Wilson, z = 1.959964) of p = 2/3 with n = 3:
#   denominator = 1 + z^2/n = 1 + 3.841459/3 = 2.280486
#   centre = (2/3 + 3.841459/6) / 2.280486 = 0.573084
#   half   = z * sqrt((2/3)(1/3)/3 + 3.841459/36) / 2.280486 = 1.959964 * 0.425184 / 2.280486 = 0.365424
#   p in [0.207660, 0.938508] -> SR in [0.207660/0.792340, 0.938508/0.061492] = [0.262084, 15.262293]
#   adjusted: divide by 1.1 -> [0.238258, 13.874811]
EXAMPLE = [
    ("p1", "a", 2),
    ("p2", "a", 5),
    ("p3", "a", 8),
    ("p5", "a", 12),
    ("p4", "a", 20),
    ("p7", "b", 1),
    ("p2", "b", 3),
    ("p1", "b", 6),
    ("p5", "b", 12),
    ("p3", "b", 15),
    ("p8", "b", 25),
    ("p6", "b", 30),
]
EXAMPLE_PARAMS = SymmetryParameters(window_days=10, washout_days=0, min_pairs=1)


def example_incident() -> pl.DataFrame:
    return incident_starts(first_starts(starts(EXAMPLE)), EXAMPLE_PARAMS, DAY0, on(40))


def test_worked_example_matches_the_hand_computation():
    result = sequence_ratio(example_incident(), "a", "b", EXAMPLE_PARAMS)
    assert (result.n_index_first, result.n_marker_first, result.n_same_day) == (2, 1, 1)
    assert result.crude_sr == pytest.approx(2.0)
    assert result.null_sr == pytest.approx(1.1)
    assert result.adjusted_sr == pytest.approx(2 / 1.1)
    assert result.ci_lower == pytest.approx(0.238258, abs=1e-6)
    assert result.ci_upper == pytest.approx(13.874811, abs=1e-6)
    assert not result.signal


def test_reading_the_pair_the_other_way_inverts_everything():
    forward = sequence_ratio(example_incident(), "a", "b", EXAMPLE_PARAMS)
    backward = sequence_ratio(example_incident(), "b", "a", EXAMPLE_PARAMS)
    assert (backward.n_index_first, backward.n_marker_first) == (1, 2)
    assert backward.null_sr == pytest.approx(1 / 1.1)
    assert backward.adjusted_sr == pytest.approx(1 / forward.adjusted_sr)
    assert backward.ci_lower == pytest.approx(1 / forward.ci_upper)
    assert backward.ci_upper == pytest.approx(1 / forward.ci_lower)


def test_window_counts_gaps_up_to_and_including_d_days():
    rows = [("p1", "a", 0), ("p1", "b", 10), ("p2", "a", 0), ("p2", "b", 11), ("p3", "b", 0), ("p3", "a", 10)]
    incident = incident_starts(first_starts(starts(rows)), EXAMPLE_PARAMS, DAY0, on(40))
    result = sequence_ratio(incident, "a", "b", EXAMPLE_PARAMS)
    assert (result.n_index_first, result.n_marker_first) == (1, 1)  # p2's 11 days is outside the window


def test_only_first_ever_starts_after_the_run_in_are_incident():
    params = SymmetryParameters(window_days=30, washout_days=100)
    rows = [
        ("p1", "a", 150),  # incident: observed from day 0, first start after 100 days
        ("p1", "a", 300),  # not a first start
        ("p2", "a", 50),  # within the run-in: a prevalent user, left out for A ...
        ("p2", "a", 200),  # ... even though A starts again later
        ("p3", "a", -400),  # a repeat carried forward from before the data began: prevalent
        ("p4", "a", 150),  # registered on day 100: only 50 days observed, within the run-in
        ("p5", "a", 500),  # after the study end
    ]
    observed = pl.DataFrame({"patient_id": ["p4"], "observed_from": [on(100)]})
    incident = incident_starts(first_starts(starts(rows)), params, DAY0, on(400), observed)
    assert incident.sort("patient_id").rows() == [("p1", "a", on(150))]


def test_a_class_starts_at_the_first_start_of_any_member():
    rows = [("p1", "amlodipine", 10), ("p1", "felodipine", 5), ("p1", "furosemide", 20)]
    groups = {"ccb": ["amlodipine", "felodipine"], "loop": ["furosemide"], "antihypertensive": ["amlodipine"]}
    first = first_starts(starts(rows), groups).sort("item")
    assert first.rows() == [
        ("p1", "antihypertensive", on(10)),
        ("p1", "ccb", on(5)),
        ("p1", "loop", on(20)),
    ]


def test_histogram_bins_never_straddle_day_zero():
    days = pl.Series([-61, -31, -30, -1, 0, 1, 30, 31, 365])
    bins = histogram(days, SymmetryParameters(), bin_days=30)
    assert bins.rows() == [
        (-90, -61, 1),
        (-60, -31, 1),
        (-30, -1, 2),
        (0, 0, 1),
        (1, 30, 2),
        (31, 60, 1),
        (361, 390, 1),
    ]


def test_time_to_marker_lists_the_gaps_within_the_window():
    gaps = time_to_marker(example_incident(), "a", "b", EXAMPLE_PARAMS)
    assert gaps.to_list() == [-2, 0, 4, 7]


def _random_population(n: int, seed: int, drugs: int = 12, planted: float = 0.0) -> pl.DataFrame:
    """People starting random drugs on uniform random days over 6 years; with ``planted``, a start of d00 is
    followed within 60 days by a start of d01 with that probability (a cascade)."""
    rng = np.random.default_rng(seed)
    per_person = rng.integers(1, 6, size=n)
    patient = np.repeat(np.arange(n), per_person)
    drug = rng.integers(0, drugs, size=patient.size)
    day = rng.integers(0, 6 * 365, size=patient.size)
    frame = pl.DataFrame({"patient_id": patient.astype(str), "drug": [f"d{d:02d}" for d in drug], "day": day})
    if planted:
        index = frame.filter(pl.col("drug") == "d00")
        fire = rng.random(index.height) < planted
        extra = index.filter(pl.Series(fire)).with_columns(
            pl.lit("d01").alias("drug"),
            (pl.col("day") + pl.Series(rng.integers(1, 61, int(fire.sum())))).alias("day"),
        )
        frame = pl.concat([frame, extra])
    return frame.select("patient_id", "drug", (pl.lit(DAY0) + pl.duration(days=pl.col("day"))).alias("start"))


def test_with_no_effect_about_five_percent_of_pairs_signal():
    params = SymmetryParameters(window_days=365, washout_days=365, min_pairs=20)
    incident = incident_starts(first_starts(_random_population(30_000, seed=3)), params, DAY0, on(6 * 365))
    table = screen(incident, params)
    assert table.height == 66  # every pair of 12 drugs, once
    assert (table["adjusted_sr"] >= 1).all()  # each read in the direction it leans
    assert 0.0 <= table["signal"].mean() <= 0.12  # nominal 5 % (two-sided 95 % intervals), small-sample slack


def test_a_planted_cascade_is_found_and_marked():
    params = SymmetryParameters(window_days=365, washout_days=365, min_pairs=20)
    population = _random_population(20_000, seed=5, planted=0.3)
    incident = incident_starts(first_starts(population), params, DAY0, on(6 * 365))
    table = screen(incident, params)
    row = table.filter((pl.col("index") == "d00") & (pl.col("marker") == "d01")).row(0, named=True)
    assert row["signal"] and row["ci_lower"] > 1.5
    known = pl.DataFrame({"index": ["d00"], "marker": ["d01"], "rule_id": ["CASCADE-TEST"]})
    marked = mark_known(table, known)
    assert marked.filter(pl.col("known_cascade") == "CASCADE-TEST").select("index", "marker").rows() == [
        ("d00", "d01")
    ]


def test_no_pairs_gives_no_ratio():
    # Nobody starts both; the trends still give a null-effect ratio: one B start after day 5, one before -> 1.
    rows = [("p1", "a", 5), ("p2", "b", 9), ("p3", "b", 2)]
    incident = incident_starts(first_starts(starts(rows)), EXAMPLE_PARAMS, DAY0, on(40))
    result = sequence_ratio(incident, "a", "b", EXAMPLE_PARAMS)
    assert (result.n_index_first, result.n_marker_first, result.adjusted_sr, result.signal) == (
        0,
        0,
        None,
        False,
    )
    assert result.null_sr == pytest.approx(1.0)


def test_known_cascades_cover_drug_and_class_keys():
    known = known_cascade_pairs(load_rules(), load_knowledge())
    pairs = set(known.select("index", "marker", "rule_id").iter_rows())
    assert ("amlodipine", "furosemide", "CASCADE-TC-5") in pairs
    assert ("ccb_dihydropyridine", "loop_diuretic", "CASCADE-TC-5") in pairs
    assert ("donepezil", "oxybutynin", "CASCADE-TC-6") in pairs
    assert ("furosemide", "amlodipine", "CASCADE-TC-5") not in pairs


def test_parameters_are_validated():
    with pytest.raises(ValueError):
        SymmetryParameters(window_days=0)
    with pytest.raises(ValueError):
        SymmetryParameters(confidence=1.0)
    assert SymmetryParameters().z == pytest.approx(1.959964, abs=1e-6)
