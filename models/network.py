"""The temporal heterogeneous graph network.

Within each monthly snapshot, typed message passing (PyTorch Geometric ``MessagePassing``, one relation-specific
convolution per edge type, summed per destination type as ``HeteroConv`` does) runs over the patient, drug,
condition, event and lab nodes. Entity <-> patient messages carry a time encoding of the edge's time stamp (months
since the course started, since first onset, since the event or test); knowledge edges carry a learned embedding of
the rule that links the two nodes (drug-drug interaction, drug-condition caution), so the network can learn what a
particular combination does rather than only how many drugs there are. The snapshot's embedding is the patient node
after the last layer, next to the patient's own features and a sum-pooled readout of the snapshot's nodes (exact
counts per drug class and condition group, CMS and ACB sums, event counts, lab values) that message passing would
otherwise only see through normalised sums.

Across snapshots a GRU carries state month by month (causal: the output at month m sees only snapshots up to m, so
every output is a landmark prediction that uses only data recorded by then). One head per outcome turns
[GRU state, snapshot embedding] into the logit of the 12-month risk, at every month: the trajectory.

Uncertainty: the heads have dropout; at inference we apply ``mc_samples`` fixed dropout masks drawn once from the
seed (Monte Carlo dropout, Gal & Ghahramani ICML 2016, restricted to the heads so that it costs almost nothing).
Fixed masks make the bounds deterministic and independent of which patients share a batch. This is last-layer
model uncertainty only; it does not cover data shift or label noise (stated in the model card).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

with warnings.catch_warnings():
    # torch_geometric 2.8 calls torch.jit.script while importing, which torch 2.13 deprecates; harmless here, and
    # the project's tests turn warnings into errors.
    warnings.filterwarnings(
        "ignore", message=r"`torch.jit.script` is deprecated", category=DeprecationWarning
    )
    from torch_geometric.data import HeteroData
    from torch_geometric.nn import MessagePassing

from models.config import OUTCOMES, ModelConfig
from models.graph import ENTITY_FEATURES, ENTITY_TYPES, KNOWLEDGE_EDGES, PATIENT_FEATURES, GraphBatch
from models.vocabulary import SEVERITIES, GraphVocabulary

TIME_FREQUENCIES = (1.0, 2.0, 4.0)
TIME_DIM = 5 + 2 * len(TIME_FREQUENCIES)
TIME_SCALE = math.log1p(240.0)  # twenty years, in months, maps to 1.0
RULE_DIM = 8
LAB_CLIP = 5.0

KIND_OF_TYPE = {"drug": "drugs", "condition": "conditions", "event": "events", "lab": "labs"}


def time_encoding(months: Tensor) -> Tensor:
    """Fixed features of an edge's age in months: log scale, recency bands and a few Fourier terms of log time."""
    t = months.clamp(min=0.0)
    scaled = torch.log1p(t) / TIME_SCALE
    bands = [(t < limit).to(t.dtype) for limit in (1.0, 3.0, 6.0, 12.0)]
    waves = []
    for k in TIME_FREQUENCIES:
        waves.append(torch.sin(math.pi * k * scaled))
        waves.append(torch.cos(math.pi * k * scaled))
    return torch.stack([scaled, *bands, *waves], dim=-1)


class RelationConv(MessagePassing):
    """Messages ``relu(W x_src + U e)`` summed at the destination (one per relation, per layer)."""

    def __init__(self, hidden: int, edge_dim: int) -> None:
        super().__init__(aggr="sum", node_dim=0)
        self.source = nn.Linear(hidden, hidden)
        self.edge = nn.Linear(edge_dim, hidden, bias=False)

    def forward(self, x_src: Tensor, num_dst: int, edge_index: Tensor, edge_attr: Tensor) -> Tensor:
        projected = self.source(x_src)
        return self.propagate(
            edge_index, x=(projected, None), edge_attr=edge_attr, size=(x_src.size(0), num_dst)
        )

    def message(self, x_j: Tensor, edge_attr: Tensor) -> Tensor:
        return torch.relu(x_j + self.edge(edge_attr))


@dataclass
class TensorBatch:
    """A ``GraphBatch`` as tensors on a device, with the edge indices the network needs."""

    batch_size: int
    months: int
    patient_x: Tensor
    node_key: dict[str, Tensor]
    node_x: dict[str, Tensor]
    node_time: dict[str, Tensor]
    node_snapshot: dict[str, Tensor]
    knowledge_index: dict[str, Tensor]
    knowledge_rule: dict[str, Tensor]

    @property
    def num_snapshots(self) -> int:
        return int(self.patient_x.shape[0])


def to_tensors(batch: GraphBatch, device: torch.device) -> TensorBatch:
    def t(array: np.ndarray, dtype: torch.dtype) -> Tensor:
        return torch.from_numpy(np.ascontiguousarray(array)).to(device=device, dtype=dtype, non_blocking=True)

    return TensorBatch(
        batch_size=int(batch.patient_rows.shape[0]),
        months=batch.months,
        patient_x=t(batch.patient_x, torch.float32),
        node_key={k: t(v, torch.long) for k, v in batch.node_key.items()},
        node_x={k: t(v, torch.float32) for k, v in batch.node_x.items()},
        node_time={k: t(v, torch.float32) for k, v in batch.node_time.items()},
        node_snapshot={k: t(v, torch.long) for k, v in batch.node_snapshot.items()},
        knowledge_index={
            k: t(np.stack([batch.edge_src[k], batch.edge_dst[k]]), torch.long) for k in batch.edge_src
        },
        knowledge_rule={k: t(v, torch.long) for k, v in batch.edge_rule.items()},
    )


def to_hetero_data(batch: GraphBatch) -> HeteroData:
    """The batch as a PyG ``HeteroData`` (for inspection and interoperability; the network reads ``TensorBatch``).

    Node stores hold ``x`` (dynamic features), ``key`` (vocabulary index), ``time`` (months since the fact) and
    ``snapshot_id`` (b * T + m); the patient store holds one node per snapshot. Edge stores: entity -> patient with
    ``time``, and the knowledge edges with ``rule``.
    """
    data = HeteroData()
    data["patient"].x = torch.from_numpy(batch.patient_x)
    for t in ENTITY_TYPES:
        data[t].x = torch.from_numpy(batch.node_x[t])
        data[t].key = torch.from_numpy(batch.node_key[t])
        data[t].time = torch.from_numpy(batch.node_time[t])
        snapshot = torch.from_numpy(batch.node_snapshot[t])
        data[t].snapshot_id = snapshot
        nodes = torch.arange(batch.node_key[t].shape[0])
        data[t, "in_snapshot_of", "patient"].edge_index = torch.stack([nodes, snapshot])
        data[t, "in_snapshot_of", "patient"].time = data[t].time
    for name, (src, dst) in KNOWLEDGE_EDGES.items():
        index = torch.from_numpy(np.stack([batch.edge_src[name], batch.edge_dst[name]]))
        data[src, name, dst].edge_index = index
        data[src, name, dst].rule = torch.from_numpy(batch.edge_rule[name])
    return data


def _relations(final: bool) -> list[tuple[str, str, str]]:
    """(name, source type, destination type) of the relations of one layer; the last layer only feeds patients."""
    into_patient = [(f"{t}_to_patient", t, "patient") for t in ENTITY_TYPES]
    if final:
        return into_patient
    return [
        *into_patient,
        *[(f"patient_to_{t}", "patient", t) for t in ENTITY_TYPES],
        ("interacts", "drug", "drug"),
        ("cautions", "drug", "condition"),
        ("cautioned_by", "condition", "drug"),
    ]


class TemporalGraphRiskModel(nn.Module):
    def __init__(
        self, vocabulary: GraphVocabulary, config: ModelConfig, lab_stats: dict[str, tuple[float, float]]
    ):
        super().__init__()
        H = config.hidden
        self.hidden = H
        self.outcomes = OUTCOMES
        self.patient_in = nn.Sequential(nn.Linear(len(PATIENT_FEATURES), H), nn.ReLU(), nn.Linear(H, H))
        self.embed = nn.ModuleDict(
            {t: nn.Embedding(vocabulary.size(KIND_OF_TYPE[t]), H) for t in ENTITY_TYPES}
        )
        statics = _static_features(vocabulary)
        for t in ENTITY_TYPES:
            self.register_buffer(f"static_{t}", statics[t], persistent=True)
        self.entity_in = nn.ModuleDict(
            {t: nn.Linear(statics[t].shape[1] + len(ENTITY_FEATURES[t]), H) for t in ENTITY_TYPES}
        )
        lab_mean = torch.zeros(vocabulary.size("labs"))
        lab_std = torch.ones(vocabulary.size("labs"))
        for name, i in vocabulary.index("labs").items():
            if name in lab_stats:
                lab_mean[i], lab_std[i] = lab_stats[name][0], max(lab_stats[name][1], 1e-3)
        self.register_buffer("lab_mean", lab_mean)
        self.register_buffer("lab_std", lab_std)
        self.rule_embed = nn.Embedding(vocabulary.size("rules"), RULE_DIM)
        severity = torch.zeros(vocabulary.size("rules"), len(SEVERITIES))
        for rule, i in vocabulary.index("rules").items():
            level = vocabulary.rule_severity.get(rule)
            if level in SEVERITIES:
                severity[i, SEVERITIES.index(level)] = 1.0
        self.register_buffer("rule_severity", severity)
        self.pool_sizes = {
            "drug": statics["drug"].shape[1],
            "condition": 2 * statics["condition"].shape[1],
            "event": 2 * vocabulary.size("events"),
            "lab": 2 * vocabulary.size("labs"),
        }
        self.pool_in = nn.Linear(sum(self.pool_sizes.values()), H)
        self.layer_relations = [
            _relations(final=(layer == config.layers - 1)) for layer in range(config.layers)
        ]
        self.convs = nn.ModuleList()
        self.updates = nn.ModuleList()
        self.norms = nn.ModuleList()
        for relations in self.layer_relations:
            self.convs.append(
                nn.ModuleDict(
                    {
                        name: RelationConv(H, RULE_DIM + len(SEVERITIES) if name in _KNOWLEDGE else TIME_DIM)
                        for name, _, _ in relations
                    }
                )
            )
            destinations = sorted({dst for _, _, dst in relations})
            self.updates.append(nn.ModuleDict({t: nn.Linear(H, H) for t in destinations}))
            self.norms.append(nn.ModuleDict({t: nn.LayerNorm(H) for t in destinations}))
        self.dropout = nn.Dropout(config.dropout)
        self.gru = nn.GRU(2 * H, H, batch_first=True)
        self.head_hidden = nn.ModuleDict({o: nn.Linear(3 * H, H) for o in OUTCOMES})
        self.head_out = nn.ModuleDict({o: nn.Linear(H, 1) for o in OUTCOMES})
        self.head_dropout = config.dropout
        generator = torch.Generator().manual_seed(config.seed + 7919)
        keep = 1.0 - config.dropout
        masks = (torch.rand(config.mc_samples, len(OUTCOMES), H, generator=generator) < keep).float() / keep
        self.register_buffer("mc_masks", masks)

    # -- snapshot encoder ---------------------------------------------------------------------------------------

    def encode(self, batch: TensorBatch) -> Tensor:
        """Snapshot embeddings [S, 2H] (S = batch_size * months): the patient node after message passing within
        the snapshot, and the patient's own encoded features."""
        x: dict[str, Tensor] = {}
        entity_features: dict[str, Tensor] = {}
        for t in ENTITY_TYPES:
            features = batch.node_x[t]
            if t == "lab":
                key = batch.node_key[t]
                features = ((features[:, 0] - self.lab_mean[key]) / self.lab_std[key]).clamp(
                    -LAB_CLIP, LAB_CLIP
                )
                features = features[:, None]
            entity_features[t] = features
            static = getattr(self, f"static_{t}")[batch.node_key[t]]
            x[t] = self.embed[t](batch.node_key[t]) + self.entity_in[t](torch.cat([static, features], dim=1))
        patient = self.patient_in(batch.patient_x) + self.pool_in(self._pooled(batch, entity_features))
        x["patient"] = patient
        time_attr = {t: time_encoding(batch.node_time[t]) for t in ENTITY_TYPES}
        rule_attr = {
            name: torch.cat([self.rule_embed(rules), self.rule_severity[rules]], dim=1)
            for name, rules in batch.knowledge_rule.items()
        }
        sizes = {"patient": batch.num_snapshots, **{t: batch.node_key[t].shape[0] for t in ENTITY_TYPES}}
        for convs, updates, norms, relations in zip(
            self.convs, self.updates, self.norms, self.layer_relations, strict=True
        ):
            messages: dict[str, Tensor] = {}
            for name, src, dst in relations:
                index, attr = self._edges(batch, name, src, dst, time_attr, rule_attr)
                out = convs[name](x[src], sizes[dst], index, attr)
                messages[dst] = messages[dst] + out if dst in messages else out
            x = {
                t: norms[t](v + self.dropout(updates[t](messages[t]))) if t in messages else v
                for t, v in x.items()
            }
        # The patient's own features skip the message passing as well, so that strong per-patient signals (age)
        # reach the heads directly instead of only through normalised sums of messages.
        return torch.cat([x["patient"], patient], dim=-1)

    def _pooled(self, batch: TensorBatch, features: dict[str, Tensor]) -> Tensor:
        """Sum-pooled readout of each snapshot's nodes [S, P]: counts of active drugs per class and the ACB total;
        of conditions per group (ever and active) with the CMS and eFI-deficit sums; of event types (recent and
        ever); and each lab's standardised latest value with its presence.

        Message passing ends in normalised sums, which keep the direction of the evidence but blur its size; these
        exact counts (how many drugs, how many deficits) reach the patient node unnormalised. They come from the
        snapshot's nodes, so deleting a node in an explanation changes them too.
        """
        S = batch.num_snapshots
        parts = []
        drug = self.static_drug[batch.node_key["drug"]]
        parts.append(_scatter_sum(drug, batch.node_snapshot["drug"], S))
        condition = self.static_condition[batch.node_key["condition"]]
        active = features["condition"][:, :1]
        parts.append(
            _scatter_sum(
                torch.cat([condition, condition * active], dim=1), batch.node_snapshot["condition"], S
            )
        )
        for t in ("event", "lab"):
            width = self.pool_sizes[t] // 2
            key, snapshot = batch.node_key[t], batch.node_snapshot[t]
            values = features[t][:, 0] if t == "lab" else features[t][:, 1]  # lab value / log count ever
            first = (
                features[t][:, 0] if t == "event" else torch.ones_like(values)
            )  # log count recent / presence
            grid = torch.zeros(S, 2 * width, device=values.device, dtype=values.dtype)
            grid.index_put_((snapshot, key), first, accumulate=True)
            grid.index_put_((snapshot, key + width), values, accumulate=True)
            parts.append(grid)
        pooled = torch.cat(parts, dim=1)
        return torch.sign(pooled) * torch.log1p(pooled.abs())

    @staticmethod
    def _edges(
        batch: TensorBatch,
        name: str,
        src: str,
        dst: str,
        time_attr: dict[str, Tensor],
        rule_attr: dict[str, Tensor],
    ) -> tuple[Tensor, Tensor]:
        if name in ("interacts", "cautions"):
            return batch.knowledge_index[name], rule_attr[name]
        if name == "cautioned_by":
            return batch.knowledge_index["cautions"].flip(0), rule_attr["cautions"]
        entity = src if dst == "patient" else dst
        nodes = torch.arange(batch.node_key[entity].shape[0], device=batch.patient_x.device)
        snapshots = batch.node_snapshot[entity]
        index = torch.stack([nodes, snapshots]) if dst == "patient" else torch.stack([snapshots, nodes])
        return index, time_attr[entity]

    # -- across snapshots and heads -----------------------------------------------------------------------------

    def sequence(self, z: Tensor, batch_size: int, months: int) -> tuple[Tensor, Tensor]:
        """GRU over months: states [B, T, H] and the head input [B, T, 3H]."""
        z = z.view(batch_size, months, 2 * self.hidden)
        states = self._gru(z, None)
        return states, torch.cat([states.to(z.dtype), z], dim=-1)

    def step(self, z: Tensor, previous_state: Tensor | None) -> Tensor:
        """One GRU step for snapshot embeddings [N, 2H] from states [N, H] (None: the first month); head input."""
        state = self._gru(z[:, None, :], previous_state)
        return torch.cat([state[:, 0, :].to(z.dtype), z], dim=-1)

    def _gru(self, z: Tensor, previous_state: Tensor | None) -> Tensor:
        """The recurrence in float32 even under mixed precision: it is cheap, and reduced-precision state carried
        over many months drifts."""
        with torch.autocast(device_type=z.device.type, enabled=False):
            initial = None if previous_state is None else previous_state.float()[None].contiguous()
            states, _ = self.gru(z.float(), initial)
        return states

    def heads(self, head_input: Tensor) -> Tensor:
        """Logits [..., O] of every outcome (dropout active in training only)."""
        outs = []
        for o in self.outcomes:
            hidden = torch.relu(self.head_hidden[o](head_input))
            hidden = nn.functional.dropout(hidden, self.head_dropout, self.training)
            outs.append(self.head_out[o](hidden).squeeze(-1))
        return torch.stack(outs, dim=-1)

    def heads_with_samples(self, head_input: Tensor) -> tuple[Tensor, Tensor]:
        """Point logits [..., O] and Monte Carlo dropout logits [K, ..., O] from the fixed masks."""
        points, samples = [], []
        for i, o in enumerate(self.outcomes):
            hidden = torch.relu(self.head_hidden[o](head_input))
            layer = self.head_out[o]
            points.append(layer(hidden).squeeze(-1))
            # The output layer is linear, so w . (h * mask_k) = (w * mask_k) . h: one [.., H] x [H, K] product
            # instead of K masked copies of the hidden layer.
            masked_weights = self.mc_masks[:, i] * layer.weight  # [K, H]
            per_sample = hidden @ masked_weights.T.to(hidden.dtype) + layer.bias.to(hidden.dtype)  # [..., K]
            samples.append(per_sample.movedim(-1, 0))
        return torch.stack(points, dim=-1), torch.stack(samples, dim=-1)

    def forward(self, batch: TensorBatch) -> Tensor:
        """Logits [B, T, O] at every month of every patient of the batch."""
        z = self.encode(batch)
        _, head_input = self.sequence(z, batch.batch_size, batch.months)
        return self.heads(head_input)

    def set_base_rates(self, rates: np.ndarray) -> None:
        """Start each head at the logit of its outcome's base rate, so early epochs learn signal, not prevalence."""
        with torch.no_grad():
            for o, rate in zip(self.outcomes, rates, strict=True):
                rate = float(np.clip(rate, 1e-4, 1 - 1e-4))
                self.head_out[o].bias.fill_(math.log(rate / (1 - rate)))


# Relations whose edges carry a rule (not a time stamp): the knowledge stores plus the reversed caution edges.
_KNOWLEDGE = {*KNOWLEDGE_EDGES, "cautioned_by"}


def _scatter_sum(values: Tensor, index: Tensor, size: int) -> Tensor:
    out = torch.zeros(size, values.shape[1], device=values.device, dtype=values.dtype)
    return out.index_add_(0, index, values)


def _static_features(vocabulary: GraphVocabulary) -> dict[str, Tensor]:
    """Per-name features that come from the knowledge base rather than the record (frozen with the model)."""
    drugs = vocabulary.index("drugs")
    classes = {c: i for i, c in enumerate(vocabulary.classes)}
    drug = torch.zeros(vocabulary.size("drugs"), len(classes) + 1)
    for name, i in drugs.items():
        for class_key in vocabulary.drug_classes.get(name, ()):
            if class_key in classes:
                drug[i, classes[class_key]] = 1.0
        drug[i, -1] = vocabulary.drug_acb.get(name, 0.0) / 3.0  # ACB scores run 1-3 (Boustani 2008)
    conditions = vocabulary.index("conditions")
    groups = {g: i for i, g in enumerate(vocabulary.condition_groups)}
    efi = set(vocabulary.efi_conditions)
    condition = torch.zeros(vocabulary.size("conditions"), len(groups) + 2)
    for group, members in vocabulary.condition_group_members.items():
        for name in members:
            if name in conditions:
                condition[conditions[name], groups[group]] = 1.0
    for name, i in conditions.items():
        condition[i, -2] = vocabulary.cms_weights.get(name, 0.0)
        condition[i, -1] = 1.0 if name in efi else 0.0
    return {
        "drug": drug,
        "condition": condition,
        "event": torch.zeros(vocabulary.size("events"), 0),
        "lab": torch.zeros(vocabulary.size("labs"), 0),
    }
