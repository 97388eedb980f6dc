"""The slice of the vocabularies that the engine and the scores need, as plain frozen lookups.

The vocabularies (``clinical.vocabulary``) own drug classes, ingredients, ACB scores, condition keys, groups,
eFI deficits and CMS weights. The engine reads them through this small adapter so that (a) rule evaluation never
touches YAML or CSV parsing on its hot path, (b) the population path can send one picklable object to worker
processes, and (c) unit tests can build a tiny knowledge base by hand without the full vocabularies.
A group that is also a condition key includes that key, as ``ConditionVocabulary.in_group`` does.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property, lru_cache

from clinical.vocabulary import CmsCondition, ConditionVocabulary, DrugVocabulary, EfiDeficit


@dataclass(frozen=True)
class Knowledge:
    """Lookups keyed by canonical keys.

    - ``class_members``: drug class key -> drug keys (from ``drug_classes.yaml``)
    - ``drug_keys``: every known drug (ingredient) key
    - ``acb``: drug key -> Anticholinergic Cognitive Burden score (Boustani 2008, 2012 update); absent = 0
    - ``condition_groups``: group -> condition keys (``ltc``, ``diabetes``, ...), including a key naming itself
      when a group is also a condition key (as ``ConditionVocabulary.in_group`` does)
    - ``efi_deficits``: the 36 eFI deficits (Clegg 2016) and their evidence; ``efi_cutoffs`` the category bounds
    - ``cms_conditions``: the 20 Cambridge Multimorbidity Score conditions and weights (Payne 2020)
    """

    class_members: Mapping[str, frozenset[str]]
    drug_keys: frozenset[str]
    condition_keys: frozenset[str]
    acb: Mapping[str, int] = field(default_factory=dict)
    condition_groups: Mapping[str, frozenset[str]] = field(default_factory=dict)
    efi_deficits: tuple[EfiDeficit, ...] = ()
    efi_cutoffs: tuple[tuple[str, float], ...] = (("fit", 0.12), ("mild", 0.24), ("moderate", 0.36))
    cms_conditions: tuple[CmsCondition, ...] = ()

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

    @cached_property
    def efi_deficits_of_condition(self) -> dict[str, tuple[str, ...]]:
        """Condition key -> names of the eFI deficits it evidences (precomputed for the per-patient loop)."""
        out: dict[str, list[str]] = {}
        for deficit in self.efi_deficits:
            for key in deficit.condition_keys:
                out.setdefault(key, []).append(deficit.name)
        return {key: tuple(names) for key, names in out.items()}

    @cached_property
    def efi_other_inputs(self) -> tuple[tuple[str, str], ...]:
        """(deficit name, other input reference) pairs, e.g. ("falls", "event.fall")."""
        return tuple((deficit.name, ref) for deficit in self.efi_deficits for ref in deficit.other_inputs)

    @cached_property
    def cms_of_condition(self) -> dict[str, tuple[int, ...]]:
        """Condition key -> indexes into ``cms_conditions`` of the CMS conditions it evidences."""
        out: dict[str, list[int]] = {}
        for index, item in enumerate(self.cms_conditions):
            for key in item.condition_keys:
                out.setdefault(key, []).append(index)
        return {key: tuple(indexes) for key, indexes in out.items()}

    @property
    def efi_denominator(self) -> int:
        """Number of eFI deficits (36 in Clegg 2016; the default when no deficits are configured)."""
        return len(self.efi_deficits) or 36


@lru_cache(maxsize=1)
def load_knowledge() -> Knowledge:
    """The knowledge base of the project vocabularies (``clinical.vocabulary``), built once per process."""
    return knowledge_from_vocabularies(DrugVocabulary.load(), ConditionVocabulary.load())


def knowledge_from_vocabularies(drugs: DrugVocabulary, conditions: ConditionVocabulary) -> Knowledge:
    """Flatten loaded vocabularies into the lookups the engine needs."""
    drug_keys = frozenset(drugs.keys)
    return Knowledge(
        class_members={key: frozenset(drugs.members(key)) for key in drugs.class_keys},
        drug_keys=drug_keys,
        condition_keys=frozenset(conditions.keys),
        acb={key: drugs.acb(key) for key in drug_keys if drugs.acb(key)},
        condition_groups={group: conditions.in_group(group) for group in conditions.group_keys},
        efi_deficits=tuple(conditions.efi_deficits),
        efi_cutoffs=tuple(conditions.efi_categories) or Knowledge.__dataclass_fields__["efi_cutoffs"].default,
        cms_conditions=tuple(conditions.cms_conditions),
    )
