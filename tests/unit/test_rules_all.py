"""Checks every rule of every rule file (STOPP/START, STOPPFrail, PINCER, DDI, ACB, AKI).

- the files load, ids are unique, and every class/drug/condition key exists in the vocabularies;
- each rule fires on the minimal patient built from its own ``when`` block, and stops firing when any one of the
  drugs its requirements need is taken away (a malformed rule, e.g. a class that is also excluded, fails here);
- docs/rules.md is up to date.
"""

from __future__ import annotations

from functools import lru_cache

import pytest

from clinical import intervals as iv
from clinical.engine import SafetyEngine
from clinical.knowledge import load_knowledge
from clinical.rule_examples import minimal_example
from clinical.rules import (
    RuleBook,
    RuleError,
    load_rules,
    parse_rule_document,
    vocabulary_problems,
)
from clinical.rules_doc import DOC_PATH, render_rules_markdown
from clinical.timeline import PatientTimeline

BOOK = load_rules()


@lru_cache(maxsize=1)
def all_rules_engine() -> SafetyEngine:
    return SafetyEngine(BOOK, load_knowledge(), strict=False)


def test_every_referenced_vocabulary_key_exists():
    kb = load_knowledge()
    problems = vocabulary_problems(
        BOOK, set(kb.class_members), set(kb.drug_keys), set(kb.condition_keys), set(kb.condition_groups)
    )
    assert problems == [], "\n".join(problems)


def test_rule_ids_are_unique_and_prefixed_by_family():
    ids = [rule.id for rule in BOOK.rules]
    assert len(ids) == len(set(ids))
    assert all(rule.id.startswith(rule.family + "-") for rule in BOOK.rules)


@pytest.mark.parametrize("rule", BOOK.rules, ids=[rule.id for rule in BOOK.rules])
def test_rule_fires_on_its_minimal_example_and_needs_each_drug(rule):
    engine = all_rules_engine()
    kb = engine.knowledge
    example = minimal_example(rule, kb)
    timeline = PatientTimeline(example.record, example.as_of, kb)
    assert iv.contains(engine.holds(rule.id, timeline), example.as_of.toordinal()), f"{rule.id} did not fire"
    for index in example.required_prescriptions:
        reduced = PatientTimeline(example.without_prescription(index), example.as_of, kb)
        drug = example.record.prescriptions[index].ingredients
        assert not iv.contains(engine.holds(rule.id, reduced), example.as_of.toordinal()), (
            f"{rule.id} still fires without {drug}"
        )


def _rule_doc(**changes) -> dict:
    rule = {
        "id": "DDI-X",
        "family": "DDI",
        "source": "s",
        "title": "t",
        "severity": "high",
        "rationale": "r",
        "recommendation": "r",
        "evidence": "e",
        "when": {"drugs": ["class:nsaid"]},
    }
    rule.update(changes)
    return {"source": {"key": "x", "name": "x", "citation": "c"}, "rules": [rule]}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"severity": "urgent"}, "severity"),
        ({"family": "BEERS"}, "family"),
        ({"id": "PINCER-X"}, "family prefix"),
        ({"when": {"drugs": ["nsaid"]}}, "ref"),
        ({"when": {"drug": ["class:nsaid"]}}, "unknown key"),
        ({"when": {"no_drugs": ["class:ppi"]}}, "positive criterion"),
        ({"when": {"lab": [{"name": "egfr", "op": "<", "value": 30}]}}, "within_days"),
        ({"when": {"lab": [{"name": "gfr", "op": "<", "value": 30, "within_days": 1}]}}, "lab name"),
        ({"evidence": ""}, "evidence"),
        ({"colour": "red"}, "unknown key"),
    ],
)
def test_malformed_rules_are_rejected_with_the_rule_id(changes, message):
    with pytest.raises(RuleError, match=message) as error:
        parse_rule_document(_rule_doc(**changes), "bad.yaml")
    assert "bad.yaml" in str(error.value)


def test_unknown_vocabulary_key_is_reported_with_the_rule_id():
    source, rules, _ = parse_rule_document(_rule_doc(when={"drugs": ["class:nsaidz"]}), "bad.yaml")
    kb = load_knowledge()
    problems = vocabulary_problems(
        RuleBook(tuple(rules), (source,)),
        set(kb.class_members),
        set(kb.drug_keys),
        set(kb.condition_keys),
        set(),
    )
    assert problems == ["DDI-X: unknown class 'nsaidz'"]
    with pytest.raises(ValueError, match="DDI-X: unknown class 'nsaidz'"):
        SafetyEngine(RuleBook(tuple(rules), (source,)), kb)


def test_docs_rules_md_is_up_to_date():
    assert DOC_PATH.exists(), "run: python -m clinical.rules_doc"
    assert DOC_PATH.read_text(encoding="utf-8") == render_rules_markdown(BOOK), (
        "run: python -m clinical.rules_doc"
    )
