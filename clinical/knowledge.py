"""The slice of the vocabularies that the engine and the scores need, as plain frozen lookups.

The vocabularies (``clinical.vocabulary``) own drug classes, ingredients, ACB scores, condition keys, groups,
eFI deficits and CMS weights. The engine reads them through this small adapter so that (a) rule evaluation never
touches YAML or CSV parsing on its hot path, (b) the population path can send one picklable object to worker
processes, and (c) unit tests can build a tiny knowledge base by hand without the full vocabularies.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any


@dataclass(frozen=True)
class Knowledge:
    """Lookups keyed by canonical keys.

    - ``class_members``: drug class key -> drug keys (from ``drug_classes.yaml``)
    - ``drug_keys``: every known drug (ingredient) key
    - ``acb``: drug key -> Anticholinergic Cognitive Burden score (Boustani 2008, 2012 update); absent = 0
    - ``condition_groups``: group -> condition keys (``ltc``, ``cms``, ...)
    - ``efi_deficits``: condition key -> the eFI deficit it evidences (Clegg 2016)
    - ``cms_weights``: condition key -> Cambridge Multimorbidity Score general-outcome weight (Payne 2020)
    """

    class_members: Mapping[str, frozenset[str]]
    drug_keys: frozenset[str]
    condition_keys: frozenset[str]
    acb: Mapping[str, int] = field(default_factory=dict)
    condition_groups: Mapping[str, frozenset[str]] = field(default_factory=dict)
    efi_deficits: Mapping[str, str] = field(default_factory=dict)
    cms_weights: Mapping[str, float] = field(default_factory=dict)

    def expand_ref(self, ref: str) -> frozenset[str]:
        """The drug keys named by a ref (``class:nsaid`` or ``drug:aspirin``)."""
        kind, _, key = ref.partition(":")
        if kind == "class":
            return self.class_members.get(key, frozenset())
        return frozenset((key,))

    def expand_conditions(self, refs: tuple[str, ...]) -> frozenset[str]:
        """Condition keys named by condition refs (keys or ``group:<group>``)."""
        out: set[str] = set()
        for ref in refs:
            if ref.startswith("group:"):
                out |= self.condition_groups.get(ref.removeprefix("group:"), frozenset())
            else:
                out.add(ref)
        return frozenset(out)

    @property
    def long_term_conditions(self) -> frozenset[str]:
        """Condition keys counted as long-term conditions (the ``ltc`` group)."""
        return self.condition_groups.get("ltc", frozenset())


@lru_cache(maxsize=1)
def load_knowledge() -> Knowledge:
    """Build the knowledge base from the project vocabularies (cached: the files are read once per process)."""
    from clinical.vocabulary import ConditionVocabulary, DrugVocabulary

    drugs = DrugVocabulary.load()
    conditions = ConditionVocabulary.load()
    return knowledge_from_vocabularies(drugs, conditions)


def knowledge_from_vocabularies(drugs: Any, conditions: Any) -> Knowledge:
    """Adapt loaded vocabulary objects to ``Knowledge``."""
    class_members = {key: frozenset(drugs.members(key)) for key in drugs.class_keys()}
    drug_keys = frozenset(drugs.drug_keys())
    acb = {key: int(drugs.acb(key)) for key in drug_keys if drugs.acb(key)}
    condition_keys = frozenset(conditions.keys())
    groups: dict[str, set[str]] = {}
    efi: dict[str, str] = {}
    cms: dict[str, float] = {}
    for key in condition_keys:
        condition = conditions.get(key)
        for group in condition.groups:
            groups.setdefault(group, set()).add(key)
        deficit = getattr(condition, "efi_deficit", None)
        if deficit:
            efi[key] = deficit
        weight = getattr(condition, "cms_weight", None)
        if weight:
            cms[key] = float(weight)
    return Knowledge(
        class_members=class_members,
        drug_keys=drug_keys,
        condition_keys=condition_keys,
        acb=acb,
        condition_groups={group: frozenset(keys) for group, keys in groups.items()},
        efi_deficits=efi,
        cms_weights=cms,
    )
