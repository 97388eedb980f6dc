"""STOPPFrail version 2 rules (clinical/rules/stoppfrail_v2.yaml), checked through Patient JSON.

STOPPFrail applies only to frail older people approaching end of life; the rule file uses a documented proxy
(severe electronic Frailty Index, or care-home residence). The frail patient here carries 15 of the 36 eFI
deficits (eFI 0.42, "severe", Clegg 2016), the non-frail one two. Each criterion has a positive case, the same
patient without severe frailty, and a near miss specific to the criterion; duration criteria are checked on both
sides of their boundary.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import pytest
import yaml

from clinical.patient_json import flags_report

RULES_FILE = Path(__file__).resolve().parents[2] / "clinical" / "rules" / "stoppfrail_v2.yaml"
AS_OF = "2025-06-30"
LONG_AGO = "2024-01-01"
ONSET = "2015-01-01"
RECENT = "2025-06-01"
# 15 eFI deficits (Clegg A et al. Age Ageing 2016;45:353-60) that no STOPPFrail criterion looks at itself.
SEVERELY_FRAIL = (
    "hypertension",
    "dizziness",
    "dyspnoea",
    "hearing loss",
    "visual impairment",
    "housebound",
    "insomnia",
    "urinary incontinence",
    "pressure ulcer",
    "weight loss",
    "social isolation",
    "anaemia",
    "hypothyroidism",
    "osteoarthritis",
    "memory impairment",
)
NOT_FRAIL = ("hypertension", "osteoarthritis")


def pj(
    *, frail: bool = True, drugs: tuple = (), conditions: tuple = (), labs: tuple = (), as_of: str = AS_OF
) -> dict:
    """Patient JSON aged 84; drugs: a name (ongoing since LONG_AGO) or (name, start[, stop])."""
    background = SEVERELY_FRAIL if frail else NOT_FRAIL
    medications = [
        {"drug": d, "start": LONG_AGO} if isinstance(d, str) else {"drug": d[0], "start": d[1], "stop": None}
        for d in drugs
    ]
    return {
        "as_of": as_of,
        "age": 84,
        "sex": "F",
        "conditions": [{"name": name, "onset": ONSET} for name in (*background, *conditions)],
        "medications": medications,
        "labs": [{"name": name, "value": value, "date": when} for name, value, when in labs],
        "events": [],
    }


def report(data: dict) -> dict:
    result = flags_report(data)
    assert not result["unknown"], f"every name in a test case must resolve: {result['unknown']}"
    return result


def active(rule_id: str, data: dict) -> bool:
    return any(f["rule_id"] == rule_id and f["end"] is None for f in report(data)["flags"])


@dataclass(frozen=True)
class Case:
    rule_id: str
    drugs: tuple
    conditions: tuple = ()
    labs: tuple = ()
    near_miss: dict | None = None  # a frail patient the criterion must not flag


# fmt: off
CASES = [
    Case("STOPPFrail-v2-B1", ("atorvastatin",), near_miss=pj(drugs=("aspirin",), conditions=("stroke",))),
    Case("STOPPFrail-v2-B2", ("amlodipine",), labs=(("systolic_bp", 120, RECENT),),
         near_miss=pj(drugs=("amlodipine",), labs=(("systolic_bp", 135, RECENT),))),
    Case("STOPPFrail-v2-B3", ("isosorbide mononitrate",),
         near_miss=pj(drugs=("isosorbide mononitrate",), conditions=("angina",))),
    Case("STOPPFrail-v2-C1", ("aspirin",), near_miss=pj(drugs=("aspirin",), conditions=("stroke",))),
    Case("STOPPFrail-v2-D1", ("risperidone",), conditions=("dementia",),
         near_miss=pj(drugs=(("risperidone", "2025-06-01"),), conditions=("dementia",))),
    Case("STOPPFrail-v2-D2", ("memantine",), conditions=("dementia",), near_miss=pj(drugs=("donepezil",),
                                                                               conditions=("dementia",))),
    Case("STOPPFrail-v2-E1", ("omeprazole",), near_miss=pj(drugs=(("omeprazole", "2025-06-01"),))),
    Case("STOPPFrail-v2-E2", ("famotidine",), near_miss=pj(drugs=(("famotidine", "2025-06-01"),))),
    Case("STOPPFrail-v2-E3", ("hyoscine butylbromide",), near_miss=pj(drugs=(("hyoscine butylbromide", "2025-06-20"),))),
    Case("STOPPFrail-v2-F1", ("theophylline",), near_miss=pj(drugs=("salbutamol",))),
    Case("STOPPFrail-v2-F2", ("montelukast",), conditions=("COPD",),
         near_miss=pj(drugs=("montelukast",), conditions=("asthma",))),
    Case("STOPPFrail-v2-G1", ("calcium carbonate",), near_miss=pj(drugs=("colecalciferol",))),
    Case("STOPPFrail-v2-G3", ("alendronic acid",), near_miss=pj(drugs=("raloxifene",))),
    Case("STOPPFrail-v2-G4", ("raloxifene",), near_miss=pj(drugs=("alendronic acid",))),
    Case("STOPPFrail-v2-G5", ("naproxen",), near_miss=pj(drugs=(("naproxen", "2025-06-01"),))),
    Case("STOPPFrail-v2-G6", ("prednisolone",), near_miss=pj(drugs=("hydrocortisone",))),
    Case("STOPPFrail-v2-I1", ("metformin", "gliclazide"), near_miss=pj(drugs=("metformin",))),
    Case("STOPPFrail-v2-I2", ("estradiol",), near_miss=pj(drugs=("raloxifene",))),
    Case("STOPPFrail-v2-J3", ("nitrofurantoin",), near_miss=pj(drugs=(("nitrofurantoin", "2025-06-01"),))),
]
# fmt: on
IDS = [c.rule_id for c in CASES]


def test_every_encoded_criterion_has_cases():
    doc = yaml.safe_load(RULES_FILE.read_text(encoding="utf-8"))
    encoded = {rule["id"] for rule in doc["rules"]}
    assert encoded == set(IDS)
    # FORMAT.md: family prefix, version, published section letter and number (STOPPFrail-v2-B1).
    assert all(re.fullmatch(r"STOPPFrail-v2-[A-J][1-9]", rule_id) for rule_id in encoded)


def test_the_frailty_proxy_is_documented_and_required_by_every_rule():
    doc = yaml.safe_load(RULES_FILE.read_text(encoding="utf-8"))
    assert "PROXY" in RULES_FILE.read_text(encoding="utf-8")
    for rule in doc["rules"]:
        proxy = rule["when"]["any_of"]
        assert {"efi_category": ["severe"]} in proxy and {"social_care": ["care_home"]} in proxy, rule["id"]


def test_the_frail_patient_is_severely_frail():
    assert report(pj())["scores"]["efi_category"] == "severe"
    assert report(pj(frail=False))["scores"]["efi_category"] == "fit"


@pytest.mark.parametrize("c", CASES, ids=IDS)
def test_flags_in_severe_frailty(c: Case):
    assert active(c.rule_id, pj(drugs=c.drugs, conditions=c.conditions, labs=c.labs))


@pytest.mark.parametrize("c", CASES, ids=IDS)
def test_does_not_flag_without_severe_frailty(c: Case):
    data = pj(frail=False, drugs=c.drugs, conditions=c.conditions, labs=c.labs)
    assert not any(f["rule_id"] == c.rule_id for f in report(data)["flags"])


@pytest.mark.parametrize("c", CASES, ids=IDS)
def test_near_miss(c: Case):
    assert c.near_miss is not None
    assert not active(c.rule_id, c.near_miss)


DAY0 = date(2025, 1, 1)


@pytest.mark.parametrize(
    ("rule_id", "drug", "threshold"),
    [
        ("STOPPFrail-v2-E1", "omeprazole", 56),
        ("STOPPFrail-v2-E2", "famotidine", 56),
        ("STOPPFrail-v2-G5", "naproxen", 60),
        ("STOPPFrail-v2-G6", "prednisolone", 60),
        ("STOPPFrail-v2-D1", "risperidone", 85),
    ],
)
def test_duration_boundary(rule_id: str, drug: str, threshold: int):
    extra = ("dementia",) if rule_id == "STOPPFrail-v2-D1" else ()
    course = ((drug, DAY0.isoformat()),)
    before = (DAY0 + timedelta(days=threshold - 2)).isoformat()
    first = (DAY0 + timedelta(days=threshold - 1)).isoformat()
    assert not active(rule_id, pj(drugs=course, conditions=extra, as_of=before))
    (flag,) = [
        f for f in report(pj(drugs=course, conditions=extra, as_of=first))["flags"] if f["rule_id"] == rule_id
    ]
    assert flag["start"] == first


def test_care_home_residence_is_the_other_proxy():
    resident = {
        **pj(frail=False, drugs=("atorvastatin",)),
        "social_care": [{"kind": "care_home", "start": "2025-03-01"}],
    }
    (flag,) = [f for f in report(resident)["flags"] if f["rule_id"] == "STOPPFrail-v2-B1"]
    assert (flag["start"], flag["end"]) == ("2025-03-01", None)
    moved_out = {
        **resident,
        "social_care": [{"kind": "care_home", "start": "2025-03-01", "end": "2025-04-30"}],
    }
    assert not active("STOPPFrail-v2-B1", moved_out)


def test_flag_reports_the_drug_to_review():
    (flag,) = [
        f
        for f in report(pj(drugs=("atorvastatin", "paracetamol")))["flags"]
        if f["rule_id"] == "STOPPFrail-v2-B1"
    ]
    assert flag["drugs"] == ["atorvastatin"] and flag["source"] == "STOPPFrail v2"
