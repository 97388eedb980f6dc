"""The model's frozen copy of the clinical knowledge it was trained with.

A trained network's embeddings are indexed by drug, condition, event, lab and rule ids, and its knowledge edges
come from the safety rules. If those meanings moved under a saved checkpoint (a drug added to a class, a rule
edited), scores from the same model version would silently change. So the vocabulary and the knowledge edges are
taken from ``clinical/`` once, at training time, stored in the checkpoint, and used unchanged by scoring.

Knowledge edges (what lets the network reason over combinations rather than counts):
- drug-drug: every pair of drugs that together satisfy the drug requirements of a safety rule (an interaction in
  the DDI family, or a STOPP/PINCER/STOPPFrail/AKI criterion naming two or more drugs, e.g. NSAID + anticoagulant);
- drug-condition: every drug named by a rule together with a condition it requires (a drug-disease caution, e.g.
  NSAID with heart failure, STOPP v3).
START criteria (omissions: a drug *absent*) and ACB totals make no pair and are not edges.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import product
from typing import Any

import polars as pl

from clinical.knowledge import Knowledge
from clinical.rules import EVENT_TYPES, LAB_NAMES, Rule, iter_when_blocks

UNKNOWN = "<unknown>"
# Death ends the record, so it is an outcome and never an input node.
INPUT_EVENT_TYPES: tuple[str, ...] = tuple(t for t in EVENT_TYPES if t != "death")
LAB_TYPES: tuple[str, ...] = tuple(LAB_NAMES)
SEVERITIES = ("high", "moderate", "low")
EDGE_FAMILIES_SKIPPED = ("START", "ACB")
# A condition ref naming a whole group (group:ltc) is a population filter, not a specific caution: past this many
# members it makes no drug-condition edge.
MAX_CONDITIONS_PER_CAUTION = 25


@dataclass(frozen=True)
class GraphVocabulary:
    """Index tables for embeddings plus the knowledge the graph builder needs (JSON-serialisable)."""

    drugs: tuple[str, ...]
    conditions: tuple[str, ...]
    classes: tuple[str, ...]
    condition_groups: tuple[str, ...]
    rules: tuple[str, ...]
    drug_classes: dict[str, tuple[str, ...]]
    drug_acb: dict[str, float]
    condition_group_members: dict[str, tuple[str, ...]]
    cms_weights: dict[str, float]
    efi_conditions: tuple[str, ...]
    rule_severity: dict[str, str]
    drug_pairs: tuple[tuple[str, str, str], ...]
    drug_conditions: tuple[tuple[str, str, str], ...]
    events: tuple[str, ...] = INPUT_EVENT_TYPES
    labs: tuple[str, ...] = LAB_TYPES
    _index_cache: dict[str, dict[str, int]] = field(default_factory=dict, compare=False, repr=False)

    # -- building -----------------------------------------------------------------------------------------------

    @classmethod
    def from_clinical(
        cls, extra_drugs: Iterable[str] = (), extra_conditions: Iterable[str] = ()
    ) -> GraphVocabulary:
        """From the project's vocabularies and rules (``clinical.knowledge``, ``clinical.rules``)."""
        from clinical.knowledge import load_knowledge
        from clinical.rules import load_rules

        return cls.from_knowledge(load_knowledge(), load_rules().rules, extra_drugs, extra_conditions)

    @classmethod
    def from_knowledge(
        cls,
        knowledge: Knowledge,
        rules: Iterable[Rule],
        extra_drugs: Iterable[str] = (),
        extra_conditions: Iterable[str] = (),
    ) -> GraphVocabulary:
        rules = [r for r in rules if r.family not in EDGE_FAMILIES_SKIPPED]
        pairs, cautions = knowledge_pairs(knowledge, rules)
        used_rules = sorted({r for *_, r in pairs} | {r for *_, r in cautions})
        severity = {r.id: r.severity for r in rules if r.id in set(used_rules)}
        drugs = sorted(set(knowledge.drug_keys) | {d for d in extra_drugs if d})
        conditions = sorted(set(knowledge.condition_keys) | {c for c in extra_conditions if c})
        classes = sorted(knowledge.class_members)
        drug_classes: dict[str, list[str]] = {}
        for class_key in classes:
            for drug in knowledge.class_members[class_key]:
                drug_classes.setdefault(drug, []).append(class_key)
        groups = sorted(knowledge.condition_groups)
        return cls(
            drugs=(UNKNOWN, *drugs),
            conditions=(UNKNOWN, *conditions),
            classes=tuple(classes),
            condition_groups=tuple(groups),
            rules=(UNKNOWN, *used_rules),
            drug_classes={d: tuple(sorted(c)) for d, c in sorted(drug_classes.items())},
            drug_acb={d: float(v) for d, v in sorted(knowledge.acb.items()) if v},
            condition_group_members={g: tuple(sorted(knowledge.condition_groups[g])) for g in groups},
            cms_weights=dict(sorted(cms_weights(knowledge).items())),
            efi_conditions=tuple(sorted(efi_condition_keys(knowledge))),
            rule_severity=dict(sorted(severity.items())),
            drug_pairs=tuple(sorted(pairs)),
            drug_conditions=tuple(sorted(cautions)),
        )

    # -- serialisation ------------------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "drugs": list(self.drugs),
            "conditions": list(self.conditions),
            "classes": list(self.classes),
            "condition_groups": list(self.condition_groups),
            "rules": list(self.rules),
            "drug_classes": {k: list(v) for k, v in self.drug_classes.items()},
            "drug_acb": self.drug_acb,
            "condition_group_members": {k: list(v) for k, v in self.condition_group_members.items()},
            "cms_weights": self.cms_weights,
            "efi_conditions": list(self.efi_conditions),
            "rule_severity": self.rule_severity,
            "drug_pairs": [list(p) for p in self.drug_pairs],
            "drug_conditions": [list(p) for p in self.drug_conditions],
            "events": list(self.events),
            "labs": list(self.labs),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GraphVocabulary:
        return cls(
            drugs=tuple(data["drugs"]),
            conditions=tuple(data["conditions"]),
            classes=tuple(data["classes"]),
            condition_groups=tuple(data["condition_groups"]),
            rules=tuple(data["rules"]),
            drug_classes={k: tuple(v) for k, v in data["drug_classes"].items()},
            drug_acb={k: float(v) for k, v in data["drug_acb"].items()},
            condition_group_members={k: tuple(v) for k, v in data["condition_group_members"].items()},
            cms_weights={k: float(v) for k, v in data["cms_weights"].items()},
            efi_conditions=tuple(data["efi_conditions"]),
            rule_severity=dict(data["rule_severity"]),
            drug_pairs=tuple(tuple(p) for p in data["drug_pairs"]),
            drug_conditions=tuple(tuple(p) for p in data["drug_conditions"]),
            events=tuple(data["events"]),
            labs=tuple(data["labs"]),
        )

    # -- lookups ------------------------------------------------------------------------------------------------

    def index(self, kind: str) -> dict[str, int]:
        """Name -> embedding index for ``kind`` (drugs, conditions, events, labs, rules); 0 = unknown."""
        cached = self._index_cache.get(kind)
        if cached is None:
            names = getattr(self, kind)
            if kind in ("events", "labs"):
                cached = {name: i + 1 for i, name in enumerate(names)}
            else:
                cached = {name: i for i, name in enumerate(names)}
            self._index_cache[kind] = cached
        return cached

    def size(self, kind: str) -> int:
        """Embedding table size for ``kind`` (unknown included)."""
        names = getattr(self, kind)
        return len(names) + 1 if kind in ("events", "labs") else len(names)

    def pair_frame(self) -> pl.DataFrame:
        """Drug-drug knowledge pairs (both orders) as a frame: drug, drug_b, rule (the rule's index)."""
        rules = self.index("rules")
        rows = self.drug_pairs
        return pl.DataFrame(
            {
                "drug": [a for a, _, _ in rows],
                "drug_b": [b for _, b, _ in rows],
                "rule": [rules.get(r, 0) for *_, r in rows],
            },
            schema={"drug": pl.Utf8, "drug_b": pl.Utf8, "rule": pl.Int64},
        )

    def caution_frame(self) -> pl.DataFrame:
        """Drug-condition knowledge pairs as a frame: drug, condition, rule (the rule's index)."""
        rules = self.index("rules")
        rows = self.drug_conditions
        return pl.DataFrame(
            {
                "drug": [a for a, _, _ in rows],
                "condition": [c for _, c, _ in rows],
                "rule": [rules.get(r, 0) for *_, r in rows],
            },
            schema={"drug": pl.Utf8, "condition": pl.Utf8, "rule": pl.Int64},
        )


def cms_weights(knowledge: Knowledge) -> dict[str, float]:
    """Condition key -> Cambridge Multimorbidity Score general-outcome weight (Payne 2020, via ``clinical``)."""
    weights: dict[str, float] = {}
    for condition in knowledge.cms_conditions:
        for key in condition.condition_keys:
            weights[key] = max(weights.get(key, float("-inf")), float(condition.weight))
    return weights


def efi_condition_keys(knowledge: Knowledge) -> set[str]:
    """Condition keys that evidence an electronic Frailty Index deficit (Clegg 2016, via ``clinical``)."""
    return {key for deficit in knowledge.efi_deficits for key in deficit.condition_keys}


def knowledge_pairs(
    knowledge: Knowledge, rules: Iterable[Rule]
) -> tuple[set[tuple[str, str, str]], set[tuple[str, str, str]]]:
    """Drug-drug pairs (both orders) and drug-condition cautions implied by the rules' ``when`` blocks."""
    pairs: set[tuple[str, str, str]] = set()
    cautions: set[tuple[str, str, str]] = set()
    for rule in rules:
        requirement_sets: list[frozenset[str]] = []
        condition_refs: list[str] = []
        for block in iter_when_blocks(rule.when):
            for requirement in block.drugs:
                members = frozenset().union(*(knowledge.expand_ref(r) for r in requirement.refs))
                excluded = frozenset().union(*(knowledge.expand_ref(r) for r in requirement.exclude))
                members = members - excluded
                if not members:
                    continue
                requirement_sets.append(members)
                if requirement.min_count >= 2:
                    pairs.update((a, b, rule.id) for a, b in product(members, members) if a != b)
            condition_refs.extend((*block.conditions, *block.conditions_ever))
        for i, first in enumerate(requirement_sets):
            for second in requirement_sets[i + 1 :]:
                for a, b in product(first, second):
                    if a != b:
                        pairs.add((a, b, rule.id))
                        pairs.add((b, a, rule.id))
        conditions = knowledge.expand_conditions(tuple(condition_refs))
        if requirement_sets and conditions and len(conditions) <= MAX_CONDITIONS_PER_CAUTION:
            drugs = frozenset().union(*requirement_sets)
            cautions.update((d, c, rule.id) for d in drugs for c in conditions)
    return pairs, cautions
