"""Count and flag features per landmark, for the baselines (logistic regression, gradient boosting, eFI, CMS).

The baselines see the same records at the same landmarks as the graph model, flattened into one row per
(patient, landmark): demographics and social care, counts of active drugs per class, ACB total, new drugs and dose
changes, each condition (active / history), recent events by type, latest lab values, the number of knowledge
edges (interacting pairs, drug-condition cautions), each safety rule active at the landmark (from the clinical
engine, ``clinical.population``), and the clinical scores eFI (Clegg 2016), CMS (Payne 2020), ACB, medicines and
long-term conditions. What they lack is the graph's structure: which drug interacts with which, and how long each
has been taken, beyond these counts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from models.cohort import Cohort, TimeGrid
from models.graph import NO_END, PATIENT_FEATURES, PopulationGraph, months_between

CLINICAL_SCORES = ("efi", "cms", "acb", "medicines", "long_term_conditions")


@dataclass
class ClinicalAtLandmarks:
    """Scores [P, T] per kind and active safety flags (p, month, rule_id) from the clinical engine."""

    scores: dict[str, np.ndarray]
    flags: pl.DataFrame
    rules: list[str]


def clinical_at_landmarks(cohort: Cohort, grid: TimeGrid) -> ClinicalAtLandmarks:
    """Run the clinical engine once over the cohort with the grid's landmarks as score dates."""
    from clinical.population import evaluate_population

    frames = {
        "patient": cohort.patient,
        "condition": cohort.condition,
        "prescription": cohort.prescription,
        "observation": cohort.observation,
        "event": cohort.event,
        "social_care": cohort.social_care,
    }
    flags, scores = evaluate_population(frames, as_of=cohort.extract_date, score_dates=list(grid.dates))
    ids = cohort.patient.sort("id")["id"].to_list()
    index = pl.DataFrame({"patient_id": ids, "p": np.arange(len(ids), dtype=np.int64)})
    month_of = pl.DataFrame({"as_of": list(grid.dates), "month": np.arange(grid.months, dtype=np.int64)})
    located = scores.join(index, on="patient_id", how="inner").join(month_of, on="as_of", how="inner")
    out: dict[str, np.ndarray] = {}
    for kind in CLINICAL_SCORES:
        values = np.zeros((len(ids), grid.months), dtype=np.float32)
        rows = located.filter(pl.col("kind") == kind)
        values[rows["p"].to_numpy(), rows["month"].to_numpy()] = rows["value"].to_numpy()
        out[kind] = values
    spans = flags.join(index, on="patient_id", how="inner").select(
        "p",
        "rule_id",
        pl.col("start").cast(pl.Int64).alias("s"),
        pl.col("end").cast(pl.Int64).fill_null(NO_END).alias("e"),
    )
    active = months_between(spans, "s", "e", grid.days).select("p", "month", "rule_id").unique()
    return ClinicalAtLandmarks(out, active, sorted(active["rule_id"].unique().to_list()))


@dataclass
class TabularData:
    X: np.ndarray  # float32 [n, F]; NaN = missing lab
    names: list[str]


def tabular_features(
    population: PopulationGraph,
    clinical: ClinicalAtLandmarks,
    snapshots: np.ndarray,
    rule_columns: list[str] | None = None,
) -> TabularData:
    """Features of the (patient, month) snapshots ``snapshots`` (= p * T + m), one row each.

    ``rule_columns`` fixes the flag columns (those of the training rows), so every split has the same columns.
    """
    T = population.months
    S = population.num_patients * T
    vocab = population.vocabulary
    columns: list[np.ndarray] = []
    names: list[str] = []

    def add(name: str, per_snapshot: np.ndarray) -> None:
        names.append(name)
        columns.append(np.asarray(per_snapshot, dtype=np.float32)[snapshots])

    flat_patient = population.patient_x.reshape(S, -1)
    for i, name in enumerate(PATIENT_FEATURES):
        if name != "in_record":
            add(name, flat_patient[:, i])

    drugs = population.nodes["drug"]
    drug_snapshot = drugs.patient * T + drugs.month
    drug_names = np.array(drugs.names, dtype=object)
    node_drug = drug_names[drugs.name] if len(drugs) else np.array([], dtype=object)
    for class_key in vocab.classes:
        members = {d for d, classes in vocab.drug_classes.items() if class_key in classes}
        in_class = np.array([n in members for n in drugs.names], dtype=bool)
        add(f"class_{class_key}", _count(drug_snapshot, in_class[drugs.name] if len(drugs) else None, S))
    add("drugs", _count(drug_snapshot, None, S))
    add("new_drugs_3m", _count(drug_snapshot, drugs.time < 3.0, S))
    add("dose_changes_90d", _count(drug_snapshot, drugs.x[:, 0] > 0, S))
    acb = np.array([vocab.drug_acb.get(d, 0.0) for d in node_drug], dtype=np.float64)
    add("acb_from_drugs", np.bincount(drug_snapshot, weights=acb, minlength=S))

    conditions = population.nodes["condition"]
    condition_snapshot = conditions.patient * T + conditions.month
    for i, key in enumerate(conditions.names):
        chosen = conditions.name == i
        # 2 = active at the landmark, 1 = history only, 0 = never recorded.
        values = np.zeros(S, dtype=np.float32)
        values[condition_snapshot[chosen]] = 1.0 + conditions.x[chosen, 0]
        add(f"condition_{key}", values)

    events = population.nodes["event"]
    event_snapshot = events.patient * T + events.month
    for event_type in vocab.events:
        chosen = (
            np.array([n == event_type for n in events.names], dtype=bool)[events.name]
            if len(events)
            else None
        )
        counts = np.zeros(S, dtype=np.float32)
        ever = np.zeros(S, dtype=np.float32)
        since = np.full(S, np.nan, dtype=np.float32)
        if chosen is not None and chosen.any():
            counts[event_snapshot[chosen]] = np.expm1(events.x[chosen, 0])
            ever[event_snapshot[chosen]] = np.expm1(events.x[chosen, 1])
            since[event_snapshot[chosen]] = events.time[chosen]
        add(f"events_12m_{event_type}", counts)
        add(f"events_ever_{event_type}", ever)
        add(f"months_since_{event_type}", since)

    labs = population.nodes["lab"]
    lab_snapshot = labs.patient * T + labs.month
    for lab in vocab.labs:
        chosen = np.array([n == lab for n in labs.names], dtype=bool)[labs.name] if len(labs) else None
        values = np.full(S, np.nan, dtype=np.float32)
        if chosen is not None and chosen.any():
            values[lab_snapshot[chosen]] = labs.x[chosen, 0]
        add(f"lab_{lab}", values)

    for name, edges in population.edges.items():
        source_snapshot = drug_snapshot[edges.src] if len(edges) else np.zeros(0, dtype=np.int64)
        add(f"knowledge_{name}", np.bincount(source_snapshot, minlength=S))

    for kind in CLINICAL_SCORES:
        add(f"score_{kind}", clinical.scores[kind].reshape(S))

    rules = clinical.rules if rule_columns is None else rule_columns
    flag_snapshot = (clinical.flags["p"].to_numpy() * T + clinical.flags["month"].to_numpy()).astype(np.int64)
    flag_rule = clinical.flags["rule_id"].to_numpy()
    for rule in rules:
        values = np.zeros(S, dtype=np.float32)
        values[flag_snapshot[flag_rule == rule]] = 1.0
        add(f"flag_{rule}", values)
    add("flags_active", np.bincount(flag_snapshot, minlength=S))

    X = np.stack(columns, axis=1) if columns else np.zeros((snapshots.shape[0], 0), dtype=np.float32)
    return TabularData(X=X, names=names)


def _count(snapshot: np.ndarray, mask: np.ndarray | None, size: int) -> np.ndarray:
    if mask is None:
        return np.bincount(snapshot, minlength=size)
    return np.bincount(snapshot[mask], minlength=size)
