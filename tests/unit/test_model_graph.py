"""The graph builder, mini-batching and landmark labels on a hand-made knowledge base and patients."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from clinical.knowledge import CmsCondition, EfiDeficit, Knowledge
from clinical.rules import DrugRequirement, Rule, When
from models.cohort import TimeGrid, cohort_from_frames, last_followed_landmark
from models.config import OUTCOMES
from models.graph import PATIENT_FEATURES, build_population_graph, make_batch, population_key_index
from models.labels import landmark_labels
from models.scenario import apply_scenario
from models.vocabulary import GraphVocabulary

D = dt.date


def _rule(rule_id: str, family: str, when: When) -> Rule:
    return Rule(
        id=rule_id,
        family=family,
        source="test",
        title="test",
        severity="high",
        rationale="test",
        recommendation="test",
        evidence="test",
        when=when,
    )


def tiny_vocabulary() -> GraphVocabulary:
    knowledge = Knowledge(
        class_members={
            "nsaid": frozenset({"ibuprofen", "naproxen"}),
            "anticoagulant": frozenset({"warfarin", "apixaban"}),
            "ppi": frozenset({"omeprazole"}),
        },
        drug_keys=frozenset(
            {"ibuprofen", "naproxen", "warfarin", "apixaban", "omeprazole", "paracetamol", "codeine"}
        ),
        condition_keys=frozenset({"heart_failure", "ckd", "hypertension"}),
        acb={"codeine": 1},
        condition_groups={"ltc": frozenset({"heart_failure", "ckd", "hypertension"})},
        efi_deficits=(EfiDeficit("heart_failure", frozenset({"heart_failure"})),),
        cms_conditions=(CmsCondition("heart_failure", 0.6, frozenset({"heart_failure"})),),
    )
    rules = [
        _rule(
            "DDI-NSAID-ANTICOAG",
            "DDI",
            When(drugs=(DrugRequirement(("class:nsaid",)), DrugRequirement(("class:anticoagulant",)))),
        ),
        _rule(
            "STOPP-X",
            "STOPP",
            When(drugs=(DrugRequirement(("class:nsaid",)),), conditions=("heart_failure",)),
        ),
        # START criteria are omissions (a drug absent): they make no knowledge edge.
        _rule("START-Y", "START", When(drugs=(DrugRequirement(("class:ppi",)),), conditions=("ckd",))),
    ]
    return GraphVocabulary.from_knowledge(knowledge, rules)


def hand_made_frames() -> dict[str, pl.DataFrame]:
    """Two patients: p1 (NSAID + warfarin in Feb 2024, heart failure from Feb 2024, falls, eGFR) and p2 (dies)."""
    return {
        "patient": pl.DataFrame(
            {
                "id": ["p1", "p2"],
                "practice_id": ["A", "B"],
                "birth_year": [1940, 1950],
                "birth_month": [6, 1],
                "sex": ["F", "M"],
                "deprivation_quintile": [2, None],
                "ethnicity_group": ["White", None],
                "registered_on": [D(2000, 1, 1), D(2000, 1, 1)],
                "deregistered_on": [None, None],
                "died_on": [None, D(2024, 3, 15)],
                "source": ["test", "test"],
            },
            schema_overrides={
                "deprivation_quintile": pl.Int64,
                "deregistered_on": pl.Date,
                "died_on": pl.Date,
            },
        ),
        "prescription": pl.DataFrame(
            {
                "patient_id": ["p1", "p1", "p1", "p1", "p2"],
                "code_system": ["text"] * 5,
                "code": [None] * 5,
                "name": ["x"] * 5,
                "drug_key": ["ibuprofen", "warfarin", "codeine", "ibuprofen", "codeine"],
                "ingredients": ["ibuprofen", "warfarin", "codeine;paracetamol", "ibuprofen", "codeine"],
                "bnf_section": [""] * 5,
                "atc": [""] * 5,
                # ibuprofen: two overlapping courses (one course from 10 Jan), the second at a new dose
                "start": [D(2024, 1, 10), D(2023, 6, 1), D(2023, 1, 1), D(2024, 2, 5), D(2023, 1, 1)],
                "stop": [D(2024, 2, 10), None, D(2024, 2, 29), D(2024, 3, 31), None],
                "dose_text": ["200mg", "", "", "400mg", ""],
                "repeat": [True] * 5,
            },
            schema_overrides={"code": pl.Utf8},
        ),
        "condition": pl.DataFrame(
            {
                "patient_id": ["p1", "p1"],
                "code_system": ["snomed", "snomed"],
                "code": ["1", "2"],
                "term": ["Heart failure", "Hypertension"],
                "condition_key": ["heart_failure", "hypertension"],
                "onset": [D(2024, 2, 1), D(2010, 1, 1)],
                "resolved": [None, D(2024, 1, 15)],
            }
        ),
        "observation": pl.DataFrame(
            {
                "patient_id": ["p1", "p1"],
                "type": ["egfr", "egfr"],
                "value": [55.0, 40.0],
                "unit": ["", ""],
                "date": [D(2023, 12, 1), D(2024, 2, 20)],
            }
        ),
        "event": pl.DataFrame(
            {
                "patient_id": ["p1", "p1", "p2"],
                "type": ["fall", "fall", "death"],
                "date": [D(2023, 3, 1), D(2024, 1, 2), D(2024, 3, 15)],
            }
        ),
        "social_care": pl.DataFrame(
            {"patient_id": ["p1"], "kind": ["lives_alone"], "start": [D(2020, 1, 1)], "end": [None]},
            schema_overrides={"end": pl.Date},
        ),
    }


GRID = TimeGrid.ending_at(D(2024, 4, 1), 4)  # landmarks 1 Jan, 1 Feb, 1 Mar, 1 Apr 2024


@pytest.fixture(scope="module")
def graph():
    return build_population_graph(cohort_from_frames(hand_made_frames()), GRID, tiny_vocabulary())


def _nodes(graph, node_type: str) -> list[tuple]:
    table = graph.nodes[node_type]
    return [
        (int(p), int(m), table.names[n], [round(float(v), 3) for v in x], round(float(t), 2))
        for p, m, n, x, t in zip(table.patient, table.month, table.name, table.x, table.time, strict=True)
    ]


def test_knowledge_edges_come_from_rules_with_two_drugs_or_a_drug_and_condition():
    vocabulary = tiny_vocabulary()
    assert ("ibuprofen", "warfarin", "DDI-NSAID-ANTICOAG") in vocabulary.drug_pairs
    assert ("warfarin", "ibuprofen", "DDI-NSAID-ANTICOAG") in vocabulary.drug_pairs
    assert set(vocabulary.drug_conditions) == {
        ("ibuprofen", "heart_failure", "STOPP-X"),
        ("naproxen", "heart_failure", "STOPP-X"),
    }
    assert vocabulary.rules == ("<unknown>", "DDI-NSAID-ANTICOAG", "STOPP-X")


def test_drug_nodes_follow_inclusive_dates_courses_and_dose_changes(graph):
    # p1: codeine+paracetamol (a combination product: one node per ingredient) stops 29 Feb, so not on 1 Mar;
    # ibuprofen courses 10 Jan-10 Feb and 5 Feb-31 Mar merge into one course (time counted from 10 Jan), with a
    # dose change on 5 Feb (visible for 90 days); warfarin runs throughout. p2: codeine until death.
    assert _nodes(graph, "drug") == [
        (0, 0, "codeine", [0.0], 11.99),
        (0, 0, "paracetamol", [0.0], 11.99),
        (0, 0, "warfarin", [0.0], 7.03),
        (0, 1, "codeine", [0.0], 13.01),
        (0, 1, "ibuprofen", [0.0], 0.72),
        (0, 1, "paracetamol", [0.0], 13.01),
        (0, 1, "warfarin", [0.0], 8.05),
        (0, 2, "ibuprofen", [1.0], 1.68),
        (0, 2, "warfarin", [0.0], 9.0),
        (0, 3, "warfarin", [0.0], 10.02),
        (1, 0, "codeine", [0.0], 11.99),
        (1, 1, "codeine", [0.0], 13.01),
        (1, 2, "codeine", [0.0], 13.96),
        (1, 3, "codeine", [0.0], 14.98),
    ]
    assert graph.nodes["drug"].ptr.tolist() == [0, 10, 14]


def test_condition_event_and_lab_nodes(graph):
    # Hypertension resolved 15 Jan: active on 1 Jan, history afterwards; heart failure from its onset day.
    assert _nodes(graph, "condition") == [
        (0, 0, "hypertension", [1.0], 167.99),
        (0, 1, "heart_failure", [1.0], 0.0),
        (0, 1, "hypertension", [0.0], 169.01),
        (0, 2, "heart_failure", [1.0], 0.95),
        (0, 2, "hypertension", [0.0], 169.96),
        (0, 3, "heart_failure", [1.0], 1.97),
        (0, 3, "hypertension", [0.0], 170.98),
    ]
    # Each event type ever recorded: counts in the last 365 days and ever (log1p), months since the latest. The
    # March 2023 fall leaves the 12-month window after 28 Feb 2024. Death is an outcome, never an input node.
    one, two = round(float(np.log1p(1)), 3), round(float(np.log1p(2)), 3)
    assert _nodes(graph, "event") == [
        (0, 0, "fall", [one, one], 10.05),
        (0, 1, "fall", [two, two], 0.99),
        (0, 2, "fall", [one, two], 1.94),
        (0, 3, "fall", [one, two], 2.96),
    ]
    # The latest result on or before the landmark.
    assert _nodes(graph, "lab") == [
        (0, 0, "egfr", [55.0], 1.02),
        (0, 1, "egfr", [55.0], 2.04),
        (0, 2, "egfr", [40.0], 0.33),
        (0, 3, "egfr", [40.0], 1.35),
    ]


def test_knowledge_edges_link_nodes_of_the_same_snapshot(graph):
    rules = graph.vocabulary.rules
    interacts = graph.edges["interacts"]
    drug_names = graph.nodes["drug"].names
    drug = graph.nodes["drug"]
    pairs = sorted(
        (int(drug.month[s]), drug_names[drug.name[s]], drug_names[drug.name[d]], rules[r])
        for s, d, r in zip(interacts.src, interacts.dst, interacts.rule, strict=True)
    )
    assert pairs == [
        (1, "ibuprofen", "warfarin", "DDI-NSAID-ANTICOAG"),
        (1, "warfarin", "ibuprofen", "DDI-NSAID-ANTICOAG"),
        (2, "ibuprofen", "warfarin", "DDI-NSAID-ANTICOAG"),
        (2, "warfarin", "ibuprofen", "DDI-NSAID-ANTICOAG"),
    ]
    cautions = graph.edges["cautions"]
    condition = graph.nodes["condition"]
    linked = sorted(
        (int(drug.month[s]), drug_names[drug.name[s]], condition.names[condition.name[d]], rules[r])
        for s, d, r in zip(cautions.src, cautions.dst, cautions.rule, strict=True)
    )
    assert linked == [
        (1, "ibuprofen", "heart_failure", "STOPP-X"),
        (2, "ibuprofen", "heart_failure", "STOPP-X"),
    ]


def test_patient_snapshot_features_and_record_window(graph):
    column = {name: i for i, name in enumerate(PATIENT_FEATURES)}
    x = graph.patient_x
    assert x[0, 0, column["age"]] == pytest.approx(
        (D(2024, 1, 1) - D(1940, 6, 1)).days / 365.25 / 100, abs=1e-5
    )
    assert x[0, 0, column["female"]] == 1.0 and x[1, 0, column["female"]] == 0.0
    assert x[0, 0, column["deprivation_2"]] == 1.0 and x[1, 0, column["deprivation_unknown"]] == 1.0
    assert x[0, :, column["lives_alone"]].tolist() == [1.0, 1.0, 1.0, 1.0]
    assert x[0, :, column["log_active_drugs"]] == pytest.approx(np.log1p([3, 4, 2, 1]))
    # p2 died on 15 Mar 2024: out of the record from the 1 Apr landmark.
    assert graph.in_record.tolist() == [[True, True, True, True], [True, True, True, False]]


def test_a_batch_is_the_patients_graphs_concatenated_in_batch_order(graph):
    keys = population_key_index(graph)
    batch = make_batch(graph, [1, 0], keys)
    T = GRID.months
    # p2 comes first: its 4 codeine nodes, then p1's 10 drug nodes on snapshots T..2T-1.
    assert batch.node_snapshot["drug"].tolist() == [0, 1, 2, 3, 4, 4, 4, 5, 5, 5, 5, 6, 6, 7]
    single = make_batch(graph, [0], keys)
    offset = 4  # p2's drug nodes before p1's
    assert (batch.edge_src["interacts"] - offset).tolist() == single.edge_src["interacts"].tolist()
    assert (batch.edge_dst["interacts"] - offset).tolist() == single.edge_dst["interacts"].tolist()
    # p2 has no condition nodes, so p1's condition ids are unchanged.
    assert batch.edge_dst["cautions"].tolist() == single.edge_dst["cautions"].tolist()
    assert batch.patient_x.shape == (2 * T, len(PATIENT_FEATURES))
    assert np.array_equal(batch.patient_x[T:], single.patient_x)


def test_landmark_labels_window_death_and_follow_up():
    frames = hand_made_frames()
    frames["event"] = pl.DataFrame(
        {
            "patient_id": ["p1", "p1", "p2"],
            "type": ["fall", "emergency_admission", "death"],
            # A fall on the landmark day itself belongs to the previous window; an admission exactly 12 months
            # after the 1 Jan 2023 landmark is inside that landmark's window.
            "date": [D(2023, 2, 1), D(2024, 1, 1), D(2023, 6, 15)],
        }
    )
    frames["patient"] = frames["patient"].with_columns(
        pl.Series("died_on", [None, D(2023, 6, 15)], dtype=pl.Date)
    )
    cohort = cohort_from_frames(frames, extract_date=D(2024, 6, 30))
    grid = TimeGrid.ending_at(D(2023, 7, 1), 7)  # Jan-Jul 2023
    labels = landmark_labels(cohort, grid)
    fall, admission, death = (OUTCOMES.index(o) for o in ("fall_fracture", "emergency_admission", "death"))
    assert labels.y[0, :, fall].tolist() == [1, 0, 0, 0, 0, 0, 0]  # 1 Feb fall: in (1 Jan, 1 Jan 2024] only
    assert labels.y[0, :, admission].tolist() == [1, 1, 1, 1, 1, 1, 0]  # the last landmark is unlabelled
    # Landmarks up to 1 Jun 2023 have 12 months of follow-up; 1 Jul 2023 does not (data end 30 Jun 2024).
    assert labels.labelled[0].tolist() == [True] * 6 + [False]
    # p2 dies 15 Jun 2023: labelled (death = 1) before it, out of the record after it.
    assert labels.labelled[1].tolist() == [True] * 6 + [False]
    assert labels.y[1, :6, death].tolist() == [1] * 6
    assert last_followed_landmark(D(2024, 6, 30)) == D(2023, 6, 1)


def test_deregistration_within_the_window_censors_the_landmark():
    frames = hand_made_frames()
    frames["patient"] = frames["patient"].with_columns(
        pl.Series("deregistered_on", [D(2023, 9, 30), None], dtype=pl.Date)
    )
    cohort = cohort_from_frames(frames, extract_date=D(2024, 6, 30))
    labels = landmark_labels(cohort, TimeGrid.ending_at(D(2023, 3, 1), 3))
    assert labels.labelled[0].tolist() == [False, False, False]


def test_what_if_scenario_stops_a_drug_the_day_before_and_starts_one_that_day():
    cohort = cohort_from_frames(hand_made_frames()).subset(["p1"])
    day = D(2024, 3, 1)
    changed, notes = apply_scenario(cohort, day, stops={"ibuprofen", "naproxen"}, starts={"omeprazole"})
    rx = changed.prescription
    ibuprofen = rx.filter(pl.col("drug_key") == "ibuprofen")
    assert ibuprofen["stop"].max() == D(2024, 2, 29)
    started = rx.filter(pl.col("drug_key") == "omeprazole")
    assert started["start"].to_list() == [day] and started["stop"].to_list() == [None]
    # The combination product is split, so paracetamol keeps its own row.
    assert set(rx["drug_key"].to_list()) >= {"codeine", "paracetamol", "warfarin"}
    assert notes == ["naproxen is not active on 2024-03-01; stopping it changes nothing"]
