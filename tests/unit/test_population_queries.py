"""Pure logic of the population, combinations and capacity views: disclosure control, funnel limits, binning,
clusters, the combination table's filters and the co-prescription matrix, and the SMR proposal order."""

from __future__ import annotations

import math
from types import SimpleNamespace

import polars as pl
import pytest

from data_access.queries.capacity import equity_table, priority_order
from data_access.queries.combinations import (
    CombinationFilters,
    DrillRequest,
    co_prescription,
    combination_rows,
    default_heatmap_classes,
    parse_combination_key,
    patient_classes,
    rule_catalogue_from,
)
from data_access.queries.population import (
    SUPPRESSED,
    Z_95,
    Z_998,
    PracticeRate,
    age_band,
    condition_clusters,
    control_limits,
    funnel_curve,
    funnel_position,
    is_small,
    overall_proportion,
    risk_distribution,
    shown_count,
    shown_percent,
)

# -- disclosure control ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("count", "group", "shown"),
    [
        (0, 100, 0),
        (1, 100, SUPPRESSED),
        (4, 100, SUPPRESSED),
        (5, 100, 5),
        (96, 100, SUPPRESSED),
        (95, 100, 95),
        (100, 100, 100),
        (3, None, SUPPRESSED),
        (12, None, 12),
    ],
)
def test_small_counts_and_their_complements_are_suppressed(
    count: int, group: int | None, shown: object
) -> None:
    assert shown_count(count, group) == shown


def test_percentages_of_suppressed_counts_are_withheld() -> None:
    assert shown_percent(50, 200) == 25.0
    assert shown_percent(3, 200) is None
    assert shown_percent(198, 200) is None  # "all but 2" is as disclosive as "2"
    assert shown_percent(2, 4) is None  # a group of fewer than 5 shows no percentage at all
    assert shown_percent(0, 0) is None
    assert is_small(None) is False


# -- funnel plot (Spiegelhalter 2005) -------------------------------------------------------------------------------


def test_control_limits_follow_the_binomial_normal_approximation() -> None:
    low, high = control_limits(0.2, 400, Z_95)
    spread = 1.959964 * math.sqrt(0.2 * 0.8 / 400)  # = 0.0392
    assert (low, high) == pytest.approx((0.2 - spread, 0.2 + spread))
    low998, high998 = control_limits(0.2, 400, Z_998)
    assert low998 < low and high998 > high
    assert control_limits(0.01, 10, Z_998)[0] == 0.0  # clipped at zero
    assert control_limits(0.5, 0, Z_95) == (0.0, 1.0)


def test_funnel_narrows_with_practice_size() -> None:
    curve = funnel_curve(0.3, 50, 5000, Z_95)
    widths = [hi - lo for _n, lo, hi in curve]
    assert curve[0][0] == 50 and curve[-1][0] == 5000
    assert widths == sorted(widths, reverse=True)


def test_small_practice_with_an_extreme_rate_is_not_labelled_an_outlier() -> None:
    rates = [PracticeRate("big", "Big", 10_000, 2_000), PracticeRate("small", "Small", 20, 8)]
    p0 = overall_proportion(rates)
    assert p0 == pytest.approx(2008 / 10_020)
    # 8/20 = 40% is twice the overall rate, but 20 patients give wide limits: within 99.8%.
    assert funnel_position(rates[1], p0) in {"within", "above 95%"}
    assert funnel_position(PracticeRate("mid", "Mid", 2_000, 600), p0) == "above 99.8%"
    assert funnel_position(PracticeRate("low", "Low", 2_000, 200), p0) == "below 99.8%"
    assert overall_proportion([]) == 0.0


# -- risk distribution, age bands, clusters -------------------------------------------------------------------------


def test_risk_distribution_bins_cover_every_patient() -> None:
    risks = pl.DataFrame({"emergency_admission": [0.0, 0.019, 0.02, 0.25, 0.999, None]})
    dist = risk_distribution(risks, "emergency_admission", width=0.02)
    assert dist.patients == 5
    assert sum(b.count for b in dist.bins) == 5
    assert (
        dist.bins[0].count == 2 and dist.bins[1].count == 1
    )  # [0, 2%) holds 0 and 1.9%; 2% starts the next bin
    assert dist.bins[-1].upper == pytest.approx(1.0) and dist.bins[-1].count == 1
    assert dist.median == pytest.approx(0.02)
    assert (
        risk_distribution(pl.DataFrame({"death": [None]}, schema={"death": pl.Float64}), "death").bins == ()
    )


@pytest.mark.parametrize(
    ("age", "band"), [(0, "0–17"), (17, "0–17"), (18, "18–39"), (79, "70–79"), (90, "90+"), (104, "90+")]
)
def test_age_bands(age: int, band: str) -> None:
    assert age_band(age) == band


def test_condition_clusters_count_long_term_conditions_only() -> None:
    sets = [
        "ckd;hypertension;type2_diabetes",
        "hypertension;ckd",
        "hypertension;cough",
        "ckd;hypertension;asthma",
    ]
    long_term = frozenset({"ckd", "hypertension", "type2_diabetes", "asthma"})
    pairs, with_two = condition_clusters(sets, long_term, 2, top=2)
    assert with_two == 3  # "hypertension;cough" has one long-term condition
    assert pairs[0].conditions == ("ckd", "hypertension") and pairs[0].patients == 3
    triples, with_three = condition_clusters(sets, long_term, 3)
    assert with_three == 2 and {t.conditions for t in triples} == {
        ("ckd", "hypertension", "type2_diabetes"),
        ("asthma", "ckd", "hypertension"),
    }


# -- combinations ---------------------------------------------------------------------------------------------------


def _when(**kwargs: object) -> SimpleNamespace:
    base = {"lab_missing": (), "any_of": (), "all_of": (), "drugs": (), "cascade": None}
    return SimpleNamespace(**{**base, **kwargs})


def _rule(
    rule_id: str, family: str, severity: str = "high", when: SimpleNamespace | None = None
) -> SimpleNamespace:
    return SimpleNamespace(
        id=rule_id,
        family=family,
        source=f"{family} source",
        title=f"{rule_id} title",
        severity=severity,
        evidence="citation",
        recommendation="consider",
        when=when or _when(),
    )


CATALOGUE = rule_catalogue_from(
    [
        _rule("STOPP-v3-B11", "STOPP"),
        _rule("DDI-warfarin-nsaid", "DDI", "high"),
        _rule("PINCER-MO_P13", "PINCER", "moderate", _when(any_of=(_when(lab_missing=("egfr",)),))),
        _rule("ACB-TOTAL_3", "ACB", "low"),
    ]
)
COUNTS = pl.DataFrame(
    {
        "rule_id": [
            "STOPP-v3-B11",
            "DDI-warfarin-nsaid",
            "DDI-warfarin-nsaid",
            "PINCER-MO_P13",
            "ACB-TOTAL_3",
        ],
        "drugs": [
            "ibuprofen",
            "naproxen;warfarin",
            "ibuprofen;warfarin",
            "methotrexate",
            "amitriptyline;oxybutynin",
        ],
        "flag_severity": ["high", "high", "high", "moderate", "low"],
        "ever": [10, 7, 3, 4, 20],
        "active_now": [5, 6, 0, 2, 9],
        "new_30d": [1, 0, 0, 1, 2],
    }
)
MEMBERS = {"nsaid": frozenset({"ibuprofen", "naproxen"}), "anticoagulant": frozenset({"warfarin"})}


def test_monitoring_group_is_found_at_any_depth_of_a_rule() -> None:
    assert CATALOGUE["PINCER-MO_P13"].groups == ("pincer", "monitoring")
    assert CATALOGUE["STOPP-v3-B11"].groups == ("stopp_start",)


@pytest.mark.parametrize(
    ("filters", "rules"),
    [
        (
            CombinationFilters(),
            ["ACB-TOTAL_3", "DDI-warfarin-nsaid", "STOPP-v3-B11", "PINCER-MO_P13", "DDI-warfarin-nsaid"],
        ),
        (CombinationFilters(groups=("monitoring",)), ["PINCER-MO_P13"]),
        (
            CombinationFilters(groups=("ddi", "acb")),
            ["ACB-TOTAL_3", "DDI-warfarin-nsaid", "DDI-warfarin-nsaid"],
        ),
        (CombinationFilters(severities=("low",)), ["ACB-TOTAL_3"]),
        (CombinationFilters(drug="ibuprofen"), ["STOPP-v3-B11", "DDI-warfarin-nsaid"]),
        (
            CombinationFilters(drug_class="nsaid", groups=("ddi",)),
            ["DDI-warfarin-nsaid", "DDI-warfarin-nsaid"],
        ),
        (
            CombinationFilters(groups=("not-a-group",), severities=("urgent",)),
            None,
        ),  # junk is dropped, not applied
    ],
)
def test_combination_filters(filters: CombinationFilters, rules: list[str] | None) -> None:
    rows = combination_rows(COUNTS, filters, CATALOGUE, MEMBERS)
    expected = rules or [
        r["rule_id"] for r in combination_rows(COUNTS, CombinationFilters(), CATALOGUE, MEMBERS)
    ]
    assert [r["rule_id"] for r in rows] == expected


def test_combination_rows_carry_rule_metadata_and_sort_by_patients_now() -> None:
    rows = combination_rows(COUNTS, CombinationFilters(), CATALOGUE, MEMBERS)
    assert [r["active_now"] for r in rows] == sorted((r["active_now"] for r in rows), reverse=True)
    ddi = rows[1]
    assert ddi["title"] == "DDI-warfarin-nsaid title" and ddi["source"] == "DDI source"
    assert ddi["drugs"] == "naproxen, warfarin" and ddi["severity"] == "high"
    assert parse_combination_key(ddi["key"]) == ("DDI-warfarin-nsaid", "naproxen;warfarin")


@pytest.mark.parametrize(
    "key", [None, 3, "", "no-separator", "bad id!|x", "STOPP-v3-B11|Ibuprofen; DROP", "A|" + "x;" * 300]
)
def test_malformed_combination_keys_are_refused(key: object) -> None:
    assert parse_combination_key(key) is None


@pytest.mark.parametrize(
    ("request_", "expected"),
    [
        (None, (0, 100)),
        ({"startRow": 200, "endRow": 300}, (200, 300)),
        ({"startRow": "1; DROP TABLE patient", "endRow": 50}, (0, 50)),
        ({"startRow": {"x": 1}, "endRow": "1e9"}, (0, 100)),
        ({"startRow": -5, "endRow": 10_000}, (0, 500)),
        ("not a dict", (0, 100)),
    ],
)
def test_drill_request_is_coerced_defensively(request_: object, expected: tuple[int, int]) -> None:
    request = DrillRequest.from_ag_grid(request_)  # type: ignore[arg-type]
    assert (request.start_row, request.end_row) == expected


def test_co_prescription_counts_patients_once_per_pair() -> None:
    drugs = pl.DataFrame(
        {
            "patient_id": ["a", "a", "a", "b", "b", "c"],
            "drug": ["ibuprofen", "naproxen", "warfarin", "warfarin", "ibuprofen", "paracetamol"],
        }
    )
    classes = patient_classes(drugs, MEMBERS)
    matrix = co_prescription(classes, ["nsaid", "anticoagulant"])
    assert matrix.counts == ((2, 2), (2, 2))  # a and b are on both; two NSAIDs count once
    assert matrix.on_any == {"nsaid": 2, "anticoagulant": 2}
    assert default_heatmap_classes({"nsaid": 3, "statin": 0}, ["statin", "nsaid", "ppi"]) == ["nsaid"]


# -- capacity plan --------------------------------------------------------------------------------------------------


def _candidates(rows: list[tuple]) -> pl.DataFrame:
    return pl.DataFrame(
        rows,
        schema={
            "patient_id": pl.String,
            "age": pl.Int64,
            "sex": pl.String,
            "deprivation_quintile": pl.Int64,
            "ethnicity_group": pl.String,
            "risk_emergency_admission": pl.Float64,
            "risk_fall_fracture": pl.Float64,
            "risk_medication_harm": pl.Float64,
            "risk_death": pl.Float64,
            "flags_high": pl.Int64,
            "flags_moderate": pl.Int64,
        },
        orient="row",
    )


def test_proposal_order_is_risk_band_then_actionable_flags() -> None:
    frame = _candidates(
        [
            ("high-risk-no-flags", 80, "F", 1, "White", 0.42, 0.10, 0.02, 0.05, 0, 0),
            ("same-band-more-flags", 80, "M", 2, "Asian", 0.41, 0.10, 0.02, 0.05, 2, 0),
            ("lower-band-many-flags", 70, "F", 5, "White", 0.30, 0.10, 0.02, 0.05, 5, 5),
            ("highest-via-falls", 90, "F", 3, "Black", 0.10, 0.52, 0.02, 0.05, 0, 1),
            ("no-risk-yet", 60, "M", 4, None, None, None, None, None, 1, 0),
        ]
    )
    ordered = priority_order(frame)
    assert ordered["patient_id"].to_list() == [
        "highest-via-falls",
        "same-band-more-flags",
        "high-risk-no-flags",
        "lower-band-many-flags",
        "no-risk-yet",
    ]
    assert ordered["max_outcome"].to_list()[0] == "fall_fracture"


def test_equity_table_compares_shares() -> None:
    eligible = _candidates(
        [
            (f"p{i}", 70 + i, "F" if i % 2 else "M", 1 + i % 5, "White", 0.1, 0.1, 0.1, 0.1, 0, 0)
            for i in range(10)
        ]
    )
    proposed = eligible.head(2)
    rows = equity_table(eligible, proposed)
    sex = {r.group: r for r in rows if r.dimension == "Sex"}
    assert sex["Female"].eligible == 5 and sex["Female"].eligible_percent == 50.0
    assert sex["Male"].proposed == 1 and sex["Male"].proposed_percent == 50.0
    assert sex["Male"].difference_points == 0.0
    ethnicity = [r for r in rows if r.dimension == "Ethnicity group"]
    assert [(r.group, r.eligible, r.proposed) for r in ethnicity] == [("White", 10, 2)]
