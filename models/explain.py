"""Drivers of a prediction by counterfactual deletion at the landmark.

For a patient's prediction at landmark ``m``, each factor of that month's snapshot (a drug, a condition, a recent
event type, a lab result, or an interaction/caution rule linking two of them) is deleted in turn - the node with
its edges, or every knowledge edge of the rule - and the network re-run on the edited snapshot from the same GRU
state (the history before ``m`` is untouched, as it would be if the drug were stopped the day before the
landmark). The contribution is ``risk(as recorded) - risk(without the factor)``: positive means the factor raises
the predicted risk. The patient-level counts (active drugs, conditions, event types) are recomputed for each
edited snapshot, so "risk if this drug were stopped" is exactly what the model would say had the record not
contained it. This is an associational explanation of the model, not a causal effect of the drug.

All variants of all patients of a batch are built with array operations and scored in one pass.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from models.config import OUTCOMES
from models.graph import ENTITY_TYPES, KNOWLEDGE_EDGES, PATIENT_FEATURES, GraphBatch, PopulationGraph
from models.network import TemporalGraphRiskModel, to_tensors
from models.predict import autocast, calibrated

COUNT_FEATURES = {
    "drug": "log_active_drugs",
    "condition": "log_active_conditions",
    "event": "log_recent_events",
}
RULE_KIND = len(ENTITY_TYPES)  # factor kind code for "interaction rule" (0-3 are the entity types)


@dataclass
class Drivers:
    """Signed contributions [F, O] of the factors of each explained patient (``patient`` = batch position)."""

    patient: np.ndarray
    factor: list[str]
    contribution: np.ndarray
    risk: np.ndarray  # [B, O] risk with nothing deleted (equals the trajectory's point at that month)


def _factors(
    batch: GraphBatch, population: PopulationGraph, snapshot_of: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """(patient position, kind, reference, name) of every factor of the chosen snapshots."""
    patients, kinds, refs, names = [], [], [], []
    rule_names = population.vocabulary.rules
    for k, node_type in enumerate(ENTITY_TYPES):
        snap = batch.node_snapshot[node_type]
        chosen = np.nonzero(np.isin(snap, snapshot_of[snapshot_of >= 0]))[0]
        table = population.nodes[node_type]
        patients.append(snap[chosen] // batch.months)
        kinds.append(np.full(chosen.shape[0], k))
        refs.append(chosen)
        labels = [table.names[i] for i in table.name[batch.node_rows[node_type][chosen]]]
        names.extend(f"{node_type}:{label}" for label in labels)
    for name, (src_type, _) in KNOWLEDGE_EDGES.items():
        src = batch.edge_src[name]
        snap = batch.node_snapshot[src_type][src] if src.size else np.zeros(0, dtype=np.int64)
        chosen = np.isin(snap, snapshot_of[snapshot_of >= 0])
        pairs = np.unique(
            np.stack([snap[chosen] // batch.months, batch.edge_rule[name][chosen]], axis=1), axis=0
        )
        patients.append(pairs[:, 0])
        kinds.append(np.full(pairs.shape[0], RULE_KIND))
        refs.append(pairs[:, 1])
        names.extend(f"interaction:{rule_names[r]}" for r in pairs[:, 1])
    patient = np.concatenate(patients).astype(np.int64)
    kind = np.concatenate(kinds).astype(np.int64)
    ref = np.concatenate(refs).astype(np.int64)
    # A rule can link nodes through both knowledge relations: keep one factor per (patient, rule).
    key = np.stack([patient, kind, ref], axis=1)
    _, first = np.unique(key, axis=0, return_index=True)
    first = np.sort(first)
    return patient[first], kind[first], ref[first], [names[i] for i in first]


@torch.inference_mode()
def explain_batch(
    model: TemporalGraphRiskModel,
    population: PopulationGraph,
    batch: GraphBatch,
    months: np.ndarray,
    states: torch.Tensor,
    calibration: dict[str, tuple[float, float]],
    device: torch.device,
) -> Drivers:
    """Contributions of every factor at month ``months[b]`` (-1: skip) of each patient of ``batch``.

    ``states`` [B, T, H] are the GRU states of the batch (from the trajectory pass), so the history is not re-run.
    """
    T = batch.months
    B = batch.patient_rows.shape[0]
    snapshot_of = np.where(months >= 0, np.arange(B) * T + months, -1)
    f_patient, f_kind, f_ref, f_names = _factors(batch, population, snapshot_of)
    explained = np.nonzero(months >= 0)[0]
    if explained.size == 0:
        empty = np.zeros(0, dtype=np.int64)
        return Drivers(
            empty, [], np.zeros((0, len(OUTCOMES))), np.zeros((B, len(OUTCOMES)), dtype=np.float32)
        )
    # Variant 0 of each explained patient deletes nothing; then one variant per factor.
    v_patient = np.concatenate([explained, f_patient])
    v_kind = np.concatenate([np.full(explained.shape[0], -1), f_kind])
    v_ref = np.concatenate([np.full(explained.shape[0], -1), f_ref])
    order = np.argsort(v_patient, kind="stable")
    v_patient, v_kind, v_ref = v_patient[order], v_kind[order], v_ref[order]
    V = v_patient.shape[0]
    variants_of = np.bincount(v_patient, minlength=B)
    first_variant = np.concatenate([[0], np.cumsum(variants_of)[:-1]])

    node_key, node_x, node_time, node_snapshot, new_id = {}, {}, {}, {}, {}
    counts = {}
    for k, node_type in enumerate(ENTITY_TYPES):
        snap = batch.node_snapshot[node_type]
        nodes = np.nonzero(np.isin(snap, snapshot_of[snapshot_of >= 0]))[0]
        node, variant = _copies(nodes, snap[nodes] // T, variants_of, first_variant)
        keep = ~((v_kind[variant] == k) & (v_ref[variant] == node))
        node, variant = node[keep], variant[keep]
        node_key[node_type] = batch.node_key[node_type][node]
        node_x[node_type] = batch.node_x[node_type][node]
        node_time[node_type] = batch.node_time[node_type][node]
        node_snapshot[node_type] = variant
        new_id[node_type] = (variant * batch.node_key[node_type].shape[0] + node, np.arange(node.shape[0]))
        # The same counts as the patient features of ``models.graph``: active conditions, recent event types.
        if node_type == "condition":
            counts[node_type] = np.bincount(variant, weights=node_x[node_type][:, 0], minlength=V)
        elif node_type == "event":
            counts[node_type] = np.bincount(
                variant, weights=(node_x[node_type][:, 0] > 0).astype(float), minlength=V
            )
        else:
            counts[node_type] = np.bincount(variant, minlength=V)

    edge_src, edge_dst, edge_rule = {}, {}, {}
    for name, (src_type, dst_type) in KNOWLEDGE_EDGES.items():
        src, dst, rule = batch.edge_src[name], batch.edge_dst[name], batch.edge_rule[name]
        snap = batch.node_snapshot[src_type][src] if src.size else np.zeros(0, dtype=np.int64)
        edges = np.nonzero(np.isin(snap, snapshot_of[snapshot_of >= 0]))[0]
        edge, variant = _copies(edges, snap[edges] // T, variants_of, first_variant)
        keep = ~((v_kind[variant] == RULE_KIND) & (v_ref[variant] == rule[edge]))
        edge, variant = edge[keep], variant[keep]
        s_new, s_ok = _lookup(new_id[src_type], variant * batch.node_key[src_type].shape[0] + src[edge])
        d_new, d_ok = _lookup(new_id[dst_type], variant * batch.node_key[dst_type].shape[0] + dst[edge])
        ok = s_ok & d_ok  # an edge of a deleted node goes with it
        edge_src[name], edge_dst[name], edge_rule[name] = s_new[ok], d_new[ok], rule[edge][ok]

    column = {name: i for i, name in enumerate(PATIENT_FEATURES)}
    patient_x = batch.patient_x[v_patient * T + months[v_patient]].copy()
    for node_type, feature in COUNT_FEATURES.items():
        patient_x[:, column[feature]] = np.log1p(counts[node_type])
    variant_batch = GraphBatch(
        patient_rows=batch.patient_rows[v_patient],
        months=1,
        patient_x=patient_x,
        in_record=np.ones((V, 1), dtype=bool),
        node_key=node_key,
        node_x=node_x,
        node_time=node_time,
        node_snapshot=node_snapshot,
        node_rows={t: np.zeros(0, dtype=np.int64) for t in ENTITY_TYPES},
        edge_src=edge_src,
        edge_dst=edge_dst,
        edge_rule=edge_rule,
    )
    tensors = to_tensors(variant_batch, device)
    previous_month = torch.as_tensor(np.maximum(months[v_patient] - 1, 0), device=device)
    previous = states[torch.as_tensor(v_patient, device=device), previous_month]
    has_history = torch.as_tensor(months[v_patient] > 0, device=device)[:, None]
    previous = torch.where(has_history, previous, torch.zeros_like(previous))
    with autocast(device):
        z = model.encode(tensors)
        logits = model.heads(model.step(z, previous))
    risk = calibrated(logits.float().cpu().numpy(), calibration)
    base_variant = first_variant[v_patient]
    is_factor = v_kind >= 0
    contribution = risk[base_variant[is_factor]] - risk[is_factor]
    name_of_variant = np.array([""] * explained.shape[0] + f_names, dtype=object)[order]
    full_risk = np.zeros((B, len(OUTCOMES)), dtype=np.float32)
    full_risk[v_patient[~is_factor]] = risk[~is_factor]
    return Drivers(
        patient=v_patient[is_factor],
        factor=list(name_of_variant[is_factor]),
        contribution=contribution,
        risk=full_risk,
    )


def _copies(
    items: np.ndarray, owner: np.ndarray, variants_of: np.ndarray, first_variant: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Each item repeated once per variant of its owner, with the variant id of each copy."""
    copies = variants_of[owner]
    repeated = np.repeat(items, copies)
    offset = np.repeat(first_variant[owner] - np.concatenate([[0], np.cumsum(copies)[:-1]]), copies)
    return repeated, offset + np.arange(int(copies.sum()))


def _lookup(table: tuple[np.ndarray, np.ndarray], keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """New ids of (variant, old node) keys; ``ok`` is False where the node was deleted in that variant."""
    old_keys, new_ids = table
    order = np.argsort(old_keys)
    sorted_keys = old_keys[order]
    position = np.searchsorted(sorted_keys, keys).clip(0, max(sorted_keys.shape[0] - 1, 0))
    ok = sorted_keys[position] == keys if sorted_keys.size else np.zeros(keys.shape[0], dtype=bool)
    return new_ids[order][position] if sorted_keys.size else np.zeros(keys.shape[0], dtype=np.int64), ok
