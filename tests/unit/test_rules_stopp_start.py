"""STOPP/START version 3 rules (clinical/rules/stopp_v3.yaml, start_v3.yaml), checked through Patient JSON.

Every encoded criterion has a positive case and at least one near miss that differs in one clinical detail
(the wrong drug, a missing condition, an exception that applies, a result outside the window). Duration criteria
are checked on both sides of their boundary (FORMAT.md: "more than 8 weeks" holds from the 57th consecutive day).
Cases are written as Patient JSON (DESIGN.md) and run through ``clinical.patient_json.flags_report``, the function
behind ``dynairx flags``, so names are resolved by the real vocabularies.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache
from pathlib import Path

import pytest
import yaml

from clinical.patient_json import flags_report

RULES_DIR = Path(__file__).resolve().parents[2] / "clinical" / "rules"
AS_OF = "2025-06-30"
LONG_AGO = "2024-01-01"  # start of courses that are well past any duration threshold
ONSET = "2015-01-01"
RECENT = "2025-06-01"  # date of "current" laboratory results
TWO_FALLS = (("fall", "2025-02-01"), ("fall", "2025-05-01"))
# Ten electronic Frailty Index deficits with myocardial infarction (eFI 0.28, "moderate"; Clegg 2016).
MODERATELY_FRAIL = (
    "hypertension",
    "dizziness",
    "dyspnoea",
    "hearing loss",
    "visual impairment",
    "housebound",
    "insomnia",
    "urinary incontinence",
    "pressure ulcer",
)


def pj(
    *,
    age: int = 75,
    sex: str = "F",
    drugs: tuple = (),
    conditions: tuple = (),
    labs: tuple = (),
    events: tuple = (),
    as_of: str = AS_OF,
) -> dict:
    """A Patient JSON document.

    drugs: a name (ongoing since LONG_AGO) or (name, start[, stop]); conditions: a name (onset ONSET) or
    (name, onset[, resolved]); labs: (name, value, date); events: (type, date).
    """
    medications = []
    for item in drugs:
        if isinstance(item, str):
            medications.append({"drug": item, "start": LONG_AGO})
        else:
            name, start, *stop = item
            medications.append({"drug": name, "start": start, "stop": stop[0] if stop else None})
    problems = []
    for item in conditions:
        if isinstance(item, str):
            problems.append({"name": item, "onset": ONSET})
        else:
            name, onset, *resolved = item
            problems.append({"name": name, "onset": onset, **({"resolved": resolved[0]} if resolved else {})})
    return {
        "as_of": as_of,
        "age": age,
        "sex": sex,
        "conditions": problems,
        "medications": medications,
        "labs": [{"name": name, "value": value, "date": when} for name, value, when in labs],
        "events": [{"type": kind, "date": when} for kind, when in events],
    }


def report(data: dict) -> dict:
    result = flags_report(data)
    assert not result["unknown"], f"every name in a test case must resolve: {result['unknown']}"
    return result


def flag_ids(data: dict) -> set[str]:
    return {flag["rule_id"] for flag in report(data)["flags"]}


@dataclass(frozen=True)
class Case:
    """A criterion, a patient it must flag, and near misses it must not flag."""

    rule_id: str
    positive: dict
    near_misses: tuple[dict, ...]


def case(rule_id: str, positive: dict, *near_misses: dict) -> Case:
    return Case(rule_id, positive, near_misses)


# fmt: off
STOPP_CASES = [
    case("STOPP-v3-A3", pj(drugs=("ibuprofen", "naproxen")), pj(drugs=("ibuprofen", "paracetamol")),
         pj(drugs=("warfarin", "enoxaparin"))),
    case("STOPP-v3-B1", pj(drugs=("digoxin",), conditions=("heart failure with preserved ejection fraction",)),
         pj(drugs=("digoxin",), conditions=("heart failure with preserved ejection fraction", "atrial fibrillation"))),
    case("STOPP-v3-B2", pj(drugs=("verapamil",), conditions=("heart failure",)),
         pj(drugs=("amlodipine",), conditions=("heart failure",))),
    case("STOPP-v3-B3", pj(drugs=("bisoprolol", "diltiazem")), pj(drugs=("bisoprolol", "amlodipine")),
         pj(drugs=("timolol eye drops", "verapamil"))),
    case("STOPP-v3-B4", pj(drugs=("bisoprolol",), conditions=("bradycardia",)),
         pj(drugs=("bisoprolol",), conditions=("hypertension",))),
    case("STOPP-v3-B5", pj(drugs=("atenolol",), conditions=("hypertension",)),
         pj(drugs=("atenolol",), conditions=("hypertension", "angina")),
         pj(drugs=("atenolol", "amlodipine"), conditions=("hypertension",))),
    case("STOPP-v3-B6", pj(drugs=("amiodarone",), conditions=("atrial fibrillation",)),
         pj(drugs=("amiodarone", "bisoprolol"), conditions=("atrial fibrillation",))),
    case("STOPP-v3-B7", pj(drugs=("furosemide",), conditions=("hypertension",)),
         pj(drugs=("furosemide",), conditions=("hypertension", "heart failure"))),
    case("STOPP-v3-B8", pj(drugs=("furosemide",), conditions=("ankle oedema",)),
         pj(drugs=("furosemide",), conditions=("ankle oedema", "heart failure")),
         pj(drugs=("furosemide",), conditions=("ankle oedema", "nephrotic syndrome"))),
    case("STOPP-v3-B9", pj(drugs=("bendroflumethiazide",), labs=(("potassium", 2.8, RECENT),)),
         pj(drugs=("bendroflumethiazide",), labs=(("potassium", 3.4, RECENT),)),
         pj(drugs=("bendroflumethiazide",), labs=(("potassium", 2.8, "2025-03-01"),))),
    case("STOPP-v3-B9", pj(drugs=("indapamide",), conditions=(("gout", "2010-05-01", "2011-01-01"),)),
         pj(drugs=("indapamide",), labs=(("sodium", 131, RECENT),))),
    case("STOPP-v3-B10", pj(drugs=("furosemide",), conditions=("hypertension", "urinary incontinence")),
         pj(drugs=("furosemide",), conditions=("hypertension",))),
    case("STOPP-v3-B11", pj(drugs=("moxonidine",)), pj(drugs=("amlodipine",))),
    case("STOPP-v3-B12", pj(drugs=("ramipril",), labs=(("potassium", 5.8, RECENT),)),
         pj(drugs=("ramipril",), labs=(("potassium", 5.4, RECENT),))),
    case("STOPP-v3-B13", pj(drugs=("spironolactone", "ramipril")),
         pj(drugs=("spironolactone", "ramipril"), labs=(("potassium", 4.5, "2025-03-01"),))),
    case("STOPP-v3-B14", pj(drugs=("sildenafil", "isosorbide mononitrate")),
         pj(drugs=("sildenafil",), conditions=("hypertension",))),
    case("STOPP-v3-B14", pj(drugs=("tadalafil",), conditions=("heart failure",), labs=(("systolic_bp", 85, RECENT),)),
         pj(drugs=("tadalafil",), conditions=("heart failure",), labs=(("systolic_bp", 105, RECENT),))),
    case("STOPP-v3-B15", pj(drugs=("clarithromycin",), conditions=("long QT syndrome",)),
         pj(drugs=("clarithromycin",)), pj(drugs=("citalopram",), conditions=("long QT syndrome",))),
    case("STOPP-v3-B16", pj(age=88, drugs=("atorvastatin",), conditions=("frailty",)),
         pj(age=88, drugs=("atorvastatin",), conditions=("frailty", "myocardial infarction")),
         pj(age=84, drugs=("atorvastatin",), conditions=("frailty",))),
    case("STOPP-v3-B17", pj(drugs=("ibuprofen",), conditions=("ischaemic heart disease",)),
         pj(drugs=(("ibuprofen", "2025-06-01"),), conditions=("ischaemic heart disease",))),
    case("STOPP-v3-B18", pj(drugs=("risperidone",), conditions=("stroke",)),
         pj(drugs=(("risperidone", "2025-05-15"),), conditions=("stroke",))),
    case("STOPP-v3-B19", pj(drugs=("furosemide", "naproxen"), conditions=("heart failure",)),
         pj(drugs=("furosemide", "paracetamol"), conditions=("heart failure",))),
    case("STOPP-v3-B21", pj(drugs=("digoxin",), conditions=("atrial fibrillation",)),
         pj(drugs=("digoxin", "bisoprolol"), conditions=("atrial fibrillation",))),
    case("STOPP-v3-C2", pj(drugs=("warfarin",), events=(("gi_bleed", "2025-05-20"),)),
         pj(drugs=("warfarin",), events=(("gi_bleed", "2024-06-01"),))),
    case("STOPP-v3-C3", pj(drugs=("aspirin", "clopidogrel"), conditions=("stroke",)),
         pj(drugs=("aspirin", "clopidogrel"), conditions=("stroke", "myocardial infarction")),
         pj(drugs=(("aspirin", "2025-06-15"), ("clopidogrel", "2025-06-15")), conditions=("stroke",))),
    case("STOPP-v3-C4", pj(drugs=("warfarin", "aspirin"), conditions=("atrial fibrillation",)),
         pj(drugs=("warfarin",), conditions=("atrial fibrillation",)),
         pj(drugs=("warfarin", "aspirin"), conditions=("atrial fibrillation", "ischaemic heart disease"))),
    case("STOPP-v3-C5", pj(drugs=("apixaban", "clopidogrel"), conditions=("peripheral arterial disease",)),
         pj(drugs=("apixaban", "clopidogrel"), conditions=("peripheral arterial disease", "deep vein thrombosis"))),
    case("STOPP-v3-C7", pj(drugs=("aspirin",), conditions=("atrial fibrillation",)),
         pj(drugs=("aspirin",), conditions=("atrial fibrillation", "ischaemic heart disease"))),
    case("STOPP-v3-C10", pj(drugs=("ibuprofen", "apixaban")), pj(drugs=("paracetamol", "apixaban"))),
    case("STOPP-v3-C11", pj(drugs=("warfarin",), conditions=("atrial fibrillation",), labs=(("egfr", 45, RECENT),)),
         pj(drugs=("warfarin",), conditions=("atrial fibrillation", "aortic stenosis")),
         pj(drugs=("warfarin",), conditions=("atrial fibrillation",), labs=(("egfr", 12, RECENT),)),
         pj(drugs=("warfarin",), conditions=("atrial fibrillation", "mitral stenosis"))),
    case("STOPP-v3-C12", pj(drugs=("sertraline", "warfarin"), conditions=("gastrointestinal haemorrhage",)),
         pj(drugs=("sertraline", "warfarin"))),
    case("STOPP-v3-C13", pj(drugs=("dabigatran", "verapamil")), pj(drugs=("dabigatran", "amlodipine"))),
    case("STOPP-v3-C14", pj(drugs=("rivaroxaban", "clarithromycin")), pj(drugs=("rivaroxaban", "amoxicillin"))),
    case("STOPP-v3-C15", pj(drugs=("estradiol",), conditions=("deep vein thrombosis",)), pj(drugs=("estradiol",))),
    case("STOPP-v3-C16", pj(drugs=("aspirin",)), pj(drugs=("aspirin",), conditions=("stroke",))),
    case("STOPP-v3-D1", pj(drugs=("amitriptyline",), conditions=("dementia",)),
         pj(drugs=("amitriptyline",), conditions=("open angle glaucoma",))),
    case("STOPP-v3-D1", pj(drugs=("amitriptyline",), events=(("fall", "2025-04-01"),)),
         pj(drugs=("amitriptyline",), events=(("fall", "2024-06-01"),))),
    case("STOPP-v3-D1", pj(drugs=("amitriptyline",), conditions=("orthostatic hypotension",)),
         pj(drugs=("sertraline",), conditions=("orthostatic hypotension",))),
    case("STOPP-v3-D3", pj(drugs=("venlafaxine",), labs=(("systolic_bp", 190, RECENT),)),
         pj(drugs=("venlafaxine",), labs=(("systolic_bp", 160, RECENT),))),
    case("STOPP-v3-D4", pj(sex="M", drugs=("olanzapine",), conditions=("benign prostatic hyperplasia",)),
         pj(sex="M", drugs=("risperidone",), conditions=("benign prostatic hyperplasia",))),
    case("STOPP-v3-D5", pj(drugs=("risperidone",), conditions=("dementia",)),
         pj(drugs=("risperidone",), conditions=("dementia",), events=(("medication_review", "2025-05-01"),))),
    case("STOPP-v3-D6", pj(drugs=("sertraline",), labs=(("sodium", 127, RECENT),)),
         pj(drugs=("sertraline",), labs=(("sodium", 133, RECENT),))),
    case("STOPP-v3-D7", pj(drugs=("citalopram",), events=(("gi_bleed", "2025-06-10"),)),
         pj(drugs=("citalopram",), events=(("gi_bleed", "2024-12-01"),))),
    case("STOPP-v3-D8", pj(drugs=("diazepam",)), pj(drugs=("diazepam",), conditions=("epilepsy",)),
         pj(drugs=(("diazepam", "2025-06-20"),))),
    case("STOPP-v3-D9", pj(drugs=("lorazepam",), conditions=("dementia",)), pj(drugs=("lorazepam",))),
    case("STOPP-v3-D10", pj(drugs=("temazepam",), conditions=("insomnia",)),
         pj(drugs=(("temazepam", "2025-06-25"),), conditions=("insomnia",))),
    case("STOPP-v3-D11", pj(drugs=("zopiclone",)), pj(drugs=(("zopiclone", "2025-06-25"),))),
    case("STOPP-v3-D12", pj(drugs=("haloperidol",), conditions=("Parkinson's disease",)),
         pj(drugs=("quetiapine",), conditions=("Parkinson's disease",))),
    case("STOPP-v3-D12", pj(drugs=("risperidone",), conditions=("Lewy body dementia",)),
         pj(drugs=("risperidone",), conditions=("essential tremor",))),
    case("STOPP-v3-D13", pj(drugs=("haloperidol", "procyclidine")), pj(drugs=("procyclidine",))),
    case("STOPP-v3-D14", pj(drugs=("oxybutynin",), conditions=("dementia",)),
         pj(drugs=("mirabegron",), conditions=("dementia",))),
    case("STOPP-v3-D15", pj(drugs=("quetiapine",), conditions=("dementia",)),
         pj(drugs=("quetiapine",), conditions=("dementia", "schizophrenia"))),
    case("STOPP-v3-D16", pj(drugs=("quetiapine",), conditions=("insomnia",)),
         pj(drugs=("quetiapine",), conditions=("insomnia", "schizophrenia"))),
    case("STOPP-v3-D17", pj(drugs=("donepezil",), conditions=("bradycardia",)), pj(drugs=("donepezil",))),
    case("STOPP-v3-D18", pj(drugs=("donepezil", "bisoprolol")), pj(drugs=("donepezil", "amlodipine"))),
    case("STOPP-v3-D19", pj(drugs=("memantine",), conditions=("epilepsy",)),
         pj(drugs=("memantine",), conditions=("dementia",))),
    case("STOPP-v3-D21", pj(drugs=("chlorpromazine",), conditions=("schizophrenia",)), pj(drugs=("chlorpromazine",))),
    case("STOPP-v3-D22", pj(drugs=("ropinirole",), conditions=("essential tremor",)),
         pj(drugs=("ropinirole",), conditions=("essential tremor", "Parkinson's disease"))),
    case("STOPP-v3-D23", pj(drugs=("haloperidol", "levodopa")),
         pj(drugs=("quetiapine", "levodopa"), conditions=("Parkinson's disease",))),
    case("STOPP-v3-D25", pj(drugs=("promethazine",), conditions=("insomnia",)),
         pj(drugs=("cyclizine",), conditions=("insomnia",))),
    case("STOPP-v3-E2", pj(drugs=("dabigatran",), labs=(("egfr", 25, RECENT),)),
         pj(drugs=("dabigatran",), labs=(("egfr", 35, RECENT),))),
    case("STOPP-v3-E3", pj(drugs=("apixaban",), labs=(("egfr", 12, RECENT),)),
         pj(drugs=("apixaban",), labs=(("egfr", 20, RECENT),))),
    case("STOPP-v3-E4", pj(drugs=("naproxen",), labs=(("egfr", 45, RECENT),)),
         pj(drugs=("naproxen",), labs=(("egfr", 55, RECENT),))),
    case("STOPP-v3-E5", pj(drugs=("colchicine",), labs=(("egfr", 8, RECENT),)),
         pj(drugs=("colchicine",), labs=(("egfr", 12, RECENT),))),
    case("STOPP-v3-E6", pj(drugs=("metformin",), labs=(("egfr", 25, RECENT),)),
         pj(drugs=("metformin",), labs=(("egfr", 35, RECENT),)),
         pj(drugs=("metformin",), labs=(("egfr", 25, "2024-05-01"),))),
    case("STOPP-v3-E7", pj(drugs=("spironolactone",), labs=(("egfr", 25, RECENT),)),
         pj(drugs=("spironolactone",), labs=(("egfr", 32, RECENT),))),
    case("STOPP-v3-E8", pj(drugs=("nitrofurantoin",), labs=(("egfr", 40, RECENT),)),
         pj(drugs=("nitrofurantoin",), labs=(("egfr", 50, RECENT),))),
    case("STOPP-v3-E9", pj(drugs=("alendronic acid",), labs=(("egfr", 25, RECENT),)),
         pj(drugs=("alendronic acid",), labs=(("egfr", 35, RECENT),))),
    case("STOPP-v3-E10", pj(drugs=("methotrexate",), labs=(("egfr", 25, RECENT),)),
         pj(drugs=("methotrexate",), labs=(("egfr", 35, RECENT),))),
    case("STOPP-v3-F1", pj(drugs=("metoclopramide",), conditions=("Parkinson's disease",)),
         pj(drugs=("domperidone",), conditions=("Parkinson's disease",))),
    case("STOPP-v3-F2", pj(drugs=("omeprazole",)), pj(drugs=(("omeprazole", "2025-06-01"),))),
    case("STOPP-v3-F3", pj(drugs=("morphine",), conditions=("chronic constipation",)),
         pj(drugs=("paracetamol",), conditions=("chronic constipation",))),
    case("STOPP-v3-F5", pj(drugs=("prednisolone",), conditions=("peptic ulcer",)),
         pj(drugs=("prednisolone", "omeprazole"), conditions=("peptic ulcer",))),
    case("STOPP-v3-F7", pj(drugs=("haloperidol",), conditions=("dysphagia",)), pj(drugs=("haloperidol",))),
    case("STOPP-v3-G1", pj(drugs=("theophylline",), conditions=("COPD",)),
         pj(drugs=("theophylline", "tiotropium"), conditions=("COPD",))),
    case("STOPP-v3-G2", pj(drugs=("prednisolone",), conditions=("COPD",)),
         pj(drugs=("prednisolone", "beclometasone"), conditions=("COPD",))),
    case("STOPP-v3-G3", pj(sex="M", drugs=("tiotropium",), conditions=("benign prostatic hyperplasia",)),
         pj(sex="M", drugs=("tiotropium",), conditions=("COPD",))),
    case("STOPP-v3-G4", pj(drugs=("diazepam",), conditions=("respiratory failure",)),
         pj(drugs=("diazepam",), conditions=("COPD",))),
    case("STOPP-v3-H1", pj(drugs=("naproxen",), conditions=("peptic ulcer",)),
         pj(drugs=("celecoxib",), conditions=("peptic ulcer",)),
         pj(drugs=("naproxen", "omeprazole"), conditions=("peptic ulcer",))),
    case("STOPP-v3-H2", pj(drugs=("ibuprofen",), labs=(("systolic_bp", 175, RECENT),)),
         pj(drugs=("ibuprofen",), labs=(("systolic_bp", 165, RECENT),))),
    case("STOPP-v3-H3", pj(drugs=("naproxen",), conditions=("osteoarthritis",)),
         pj(drugs=("naproxen", "paracetamol"), conditions=("osteoarthritis",))),
    case("STOPP-v3-H4", pj(drugs=("prednisolone",), conditions=("rheumatoid arthritis",)),
         pj(drugs=("prednisolone", "methotrexate"), conditions=("rheumatoid arthritis",))),
    case("STOPP-v3-H5", pj(drugs=("prednisolone",), conditions=("osteoarthritis",)),
         pj(drugs=("prednisolone",), conditions=("osteoarthritis", "polymyalgia rheumatica"))),
    case("STOPP-v3-H6", pj(drugs=("colchicine",), conditions=("gout",)),
         pj(drugs=("colchicine", "allopurinol"), conditions=("gout",))),
    case("STOPP-v3-H7", pj(drugs=("naproxen", "prednisolone"), conditions=("rheumatoid arthritis",)),
         pj(drugs=("naproxen", "prednisolone"))),
    case("STOPP-v3-H8", pj(drugs=("alendronic acid",), conditions=("dysphagia",)),
         pj(drugs=("zoledronic acid",), conditions=("dysphagia",))),
    case("STOPP-v3-H9", pj(drugs=("tramadol",), conditions=("osteoarthritis",)),
         pj(drugs=("tramadol",), conditions=("osteoarthritis", "cancer"))),
    case("STOPP-v3-I1", pj(drugs=("oxybutynin",), conditions=("dementia",)),
         pj(drugs=("oxybutynin",), conditions=("hypertension",))),
    case("STOPP-v3-I4", pj(drugs=("tolterodine",), conditions=("chronic constipation",)),
         pj(drugs=("mirabegron",), conditions=("chronic constipation",))),
    case("STOPP-v3-I5", pj(drugs=("doxazosin",), conditions=("orthostatic hypotension",)),
         pj(drugs=("doxazosin",), conditions=("hypertension",))),
    case("STOPP-v3-I6", pj(drugs=("mirabegron",), labs=(("systolic_bp", 185, RECENT),)),
         pj(drugs=("mirabegron",), labs=(("systolic_bp", 150, RECENT),))),
    case("STOPP-v3-J1", pj(drugs=("glibenclamide",), conditions=("type 2 diabetes",)),
         pj(drugs=("gliclazide",), conditions=("type 2 diabetes",))),
    case("STOPP-v3-J2", pj(drugs=("pioglitazone",), conditions=("heart failure",)),
         pj(drugs=("pioglitazone",), conditions=("type 2 diabetes",))),
    case("STOPP-v3-J3", pj(drugs=("propranolol",), conditions=("type 2 diabetes",),
                           events=(("hypoglycaemia", "2025-02-01"), ("hypoglycaemia", "2025-05-01"))),
         pj(drugs=("bisoprolol",), conditions=("type 2 diabetes",),
            events=(("hypoglycaemia", "2025-02-01"), ("hypoglycaemia", "2025-05-01")))),
    case("STOPP-v3-J4", pj(drugs=("dapagliflozin",), conditions=("hypotension",)),
         pj(drugs=("dapagliflozin",), conditions=("type 2 diabetes",))),
    case("STOPP-v3-J6", pj(drugs=("estradiol",), conditions=("pulmonary embolism",)), pj(drugs=("estradiol",))),
    case("STOPP-v3-J7", pj(drugs=("estradiol",), conditions=("myocardial infarction",)), pj(drugs=("estradiol",))),
    case("STOPP-v3-J10", pj(drugs=("desmopressin",), conditions=("urinary incontinence",)),
         pj(drugs=("desmopressin",))),
    case("STOPP-v3-K1", pj(drugs=("diazepam",), events=TWO_FALLS),
         pj(drugs=("diazepam",), events=(("fall", "2025-05-01"),))),
    case("STOPP-v3-K2", pj(drugs=("risperidone",), conditions=("recurrent falls",)),
         pj(drugs=("risperidone",), events=(("fall", "2025-05-01"),))),
    case("STOPP-v3-K3", pj(drugs=("amlodipine",), conditions=("orthostatic hypotension",), events=TWO_FALLS),
         pj(drugs=("amlodipine",), events=TWO_FALLS)),
    case("STOPP-v3-K4", pj(drugs=("zopiclone",), events=TWO_FALLS),
         pj(drugs=("zopiclone",), events=(("fall", "2023-02-01"), ("fall", "2023-05-01")))),
    case("STOPP-v3-K5", pj(drugs=("levetiracetam",), events=TWO_FALLS), pj(drugs=("levetiracetam",))),
    case("STOPP-v3-K6", pj(drugs=("chlorphenamine",), events=TWO_FALLS), pj(drugs=("cetirizine",), events=TWO_FALLS)),
    case("STOPP-v3-K7", pj(drugs=("codeine",), events=TWO_FALLS), pj(drugs=("paracetamol",), events=TWO_FALLS)),
    case("STOPP-v3-K8", pj(drugs=("mirtazapine",), events=TWO_FALLS), pj(drugs=("mirtazapine",))),
    case("STOPP-v3-K9", pj(drugs=("doxazosin",), conditions=("hypertension",), events=TWO_FALLS),
         pj(sex="M", drugs=("doxazosin",), conditions=("hypertension", "benign prostatic hyperplasia"),
            events=TWO_FALLS)),
    case("STOPP-v3-K10", pj(sex="M", drugs=("tamsulosin",), conditions=("benign prostatic hyperplasia",),
                            events=TWO_FALLS),
         pj(sex="M", drugs=("tamsulosin",), conditions=("benign prostatic hyperplasia",))),
    case("STOPP-v3-K11", pj(drugs=("moxonidine",), events=TWO_FALLS), pj(drugs=("moxonidine",))),
    case("STOPP-v3-K12", pj(drugs=("solifenacin",), events=TWO_FALLS), pj(drugs=("solifenacin",))),
    case("STOPP-v3-L2", pj(drugs=("morphine",)), pj(drugs=("morphine", "senna"))),
    case("STOPP-v3-L4", pj(drugs=("lidocaine",), conditions=("osteoarthritis",)), pj(drugs=("lidocaine",))),
    case("STOPP-v3-L5", pj(drugs=("pregabalin",), conditions=("osteoarthritis",)),
         pj(drugs=("pregabalin",), conditions=("osteoarthritis", "epilepsy")),
         pj(drugs=("pregabalin",), conditions=("osteoarthritis", "type 2 diabetes"))),
    case("STOPP-v3-M1", pj(drugs=("amitriptyline", "oxybutynin")), pj(drugs=("amitriptyline", "paracetamol"))),
]

START_CASES = [
    case("START-v3-B1", pj(conditions=("hypertension",), labs=(("systolic_bp", 165, RECENT),)),
         pj(drugs=("amlodipine",), conditions=("hypertension",), labs=(("systolic_bp", 165, RECENT),)),
         pj(conditions=("hypertension",), labs=(("systolic_bp", 138, RECENT),))),
    case("START-v3-B2", pj(conditions=("myocardial infarction",)),
         pj(drugs=("atorvastatin",), conditions=("myocardial infarction",)),
         pj(drugs=("ezetimibe",), conditions=("myocardial infarction",)),
         pj(conditions=("myocardial infarction", *MODERATELY_FRAIL))),
    case("START-v3-B3", pj(conditions=("ischaemic heart disease",)),
         pj(drugs=("ramipril",), conditions=("ischaemic heart disease",))),
    case("START-v3-B4", pj(conditions=("ischaemic heart disease",)),
         pj(drugs=("bisoprolol",), conditions=("ischaemic heart disease",)),
         pj(conditions=("ischaemic heart disease", "asthma"))),
    case("START-v3-B5", pj(conditions=("HFrEF",)), pj(drugs=("ramipril",), conditions=("HFrEF",))),
    case("START-v3-B6", pj(conditions=("HFrEF",)), pj(drugs=("bisoprolol",), conditions=("HFrEF",))),
    case("START-v3-B7", pj(conditions=("HFrEF",), labs=(("egfr", 55, RECENT),)),
         pj(conditions=("HFrEF",), labs=(("egfr", 25, RECENT),)),
         pj(drugs=("spironolactone",), conditions=("HFrEF",))),
    case("START-v3-B8", pj(conditions=("heart failure",)), pj(drugs=("dapagliflozin",), conditions=("heart failure",))),
    case("START-v3-B9", pj(drugs=("ramipril",), conditions=("HFrEF",)),
         pj(drugs=("sacubitril/valsartan",), conditions=("HFrEF",))),
    case("START-v3-C1", pj(conditions=("atrial fibrillation",)),
         pj(drugs=("apixaban",), conditions=("atrial fibrillation",))),
    case("START-v3-C2", pj(conditions=("peripheral arterial disease",)),
         pj(drugs=("clopidogrel",), conditions=("peripheral arterial disease",))),
    case("START-v3-D1", pj(conditions=("Parkinson's disease",)),
         pj(drugs=("levodopa",), conditions=("Parkinson's disease",))),
    case("START-v3-D2", pj(conditions=("depression",)), pj(drugs=("sertraline",), conditions=("depression",))),
    case("START-v3-D2", pj(drugs=("amitriptyline",), conditions=("depression",)),
         pj(drugs=("mirtazapine",), conditions=("depression",))),
    case("START-v3-D4", pj(conditions=("Parkinson's disease", "dementia")),
         pj(drugs=("rivastigmine",), conditions=("Parkinson's disease", "dementia")),
         pj(conditions=("Parkinson's disease",))),
    case("START-v3-D4", pj(conditions=("Lewy body dementia",)),
         pj(drugs=("donepezil",), conditions=("Lewy body dementia",))),
    case("START-v3-D5", pj(conditions=("generalised anxiety disorder",)),
         pj(drugs=("sertraline",), conditions=("generalised anxiety disorder",))),
    case("START-v3-D6", pj(conditions=("restless legs syndrome",)),
         pj(drugs=("ropinirole",), conditions=("restless legs syndrome",)),
         pj(conditions=("restless legs syndrome",), labs=(("egfr", 25, RECENT),))),
    case("START-v3-D7", pj(conditions=("essential tremor",)),
         pj(drugs=("propranolol",), conditions=("essential tremor",))),
    case("START-v3-E4", pj(conditions=("chronic kidney disease", "proteinuria")),
         pj(drugs=("ramipril",), conditions=("chronic kidney disease", "proteinuria"))),
    case("START-v3-F2", pj(drugs=("aspirin",), conditions=("peptic ulcer",)),
         pj(drugs=("aspirin", "omeprazole"), conditions=("peptic ulcer",))),
    case("START-v3-F3", pj(drugs=("naproxen",)), pj(drugs=("naproxen", "omeprazole"))),
    case("START-v3-F4", pj(conditions=("diverticular disease", "chronic constipation")),
         pj(drugs=("ispaghula husk",), conditions=("diverticular disease", "chronic constipation"))),
    case("START-v3-F5", pj(conditions=("chronic constipation",)),
         pj(drugs=("senna",), conditions=("chronic constipation",))),
    case("START-v3-G1", pj(conditions=("COPD",)), pj(drugs=("tiotropium",), conditions=("COPD",))),
    case("START-v3-G2", pj(conditions=("asthma",)), pj(drugs=("beclometasone",), conditions=("asthma",))),
    case("START-v3-H1", pj(conditions=("rheumatoid arthritis",)),
         pj(drugs=("methotrexate",), conditions=("rheumatoid arthritis",))),
    case("START-v3-H2", pj(drugs=("prednisolone",)), pj(drugs=("prednisolone", "alendronic acid")),
         pj(drugs=(("prednisolone", "2025-06-01"),))),
    case("START-v3-H3", pj(conditions=("osteoporosis",)), pj(drugs=("colecalciferol",), conditions=("osteoporosis",))),
    case("START-v3-H3", pj(drugs=("calcium carbonate",), conditions=("fragility fracture",)),
         pj(drugs=("calcium carbonate", "colecalciferol"), conditions=("fragility fracture",))),
    case("START-v3-H4", pj(conditions=("osteoporosis",)),
         pj(drugs=("alendronic acid",), conditions=("osteoporosis",))),
    case("START-v3-H5", pj(conditions=("vitamin D deficiency", "housebound")), pj(conditions=("vitamin D deficiency",))),
    case("START-v3-H8", pj(conditions=("gout",)), pj(drugs=("allopurinol",), conditions=("gout",))),
    case("START-v3-H9", pj(drugs=("methotrexate",)), pj(drugs=("methotrexate", "folic acid"))),
    case("START-v3-I1", pj(sex="M", conditions=("benign prostatic hyperplasia",)),
         pj(sex="M", drugs=("tamsulosin",), conditions=("benign prostatic hyperplasia",))),
    case("START-v3-I2", pj(sex="M", conditions=("benign prostatic hyperplasia",)),
         pj(sex="M", drugs=("finasteride",), conditions=("benign prostatic hyperplasia",))),
    case("START-v3-I4", pj(sex="F", conditions=("recurrent UTI",)), pj(sex="M", conditions=("recurrent UTI",))),
    case("START-v3-I5", pj(sex="M", conditions=("erectile dysfunction",)),
         pj(sex="M", drugs=("isosorbide mononitrate",), conditions=("erectile dysfunction",))),
    case("START-v3-J1", pj(conditions=("type 2 diabetes", "proteinuria")),
         pj(drugs=("ramipril",), conditions=("type 2 diabetes", "proteinuria")),
         pj(conditions=("type 2 diabetes", "proteinuria"), labs=(("egfr", 24, RECENT),))),
    case("START-v3-J1", pj(conditions=("type 2 diabetes", "proteinuria"), labs=(("egfr", 48, RECENT),)),
         pj(drugs=("losartan",), conditions=("type 2 diabetes", "proteinuria"), labs=(("egfr", 48, RECENT),))),
    case("START-v3-K2", pj(drugs=("morphine",)), pj(drugs=("morphine", "senna"))),
]
# fmt: on

ALL_CASES = STOPP_CASES + START_CASES
NEAR_MISSES = [(c.rule_id, miss) for c in ALL_CASES for miss in c.near_misses]


@lru_cache(maxsize=1)
def encoded_rule_ids() -> frozenset[str]:
    ids = set()
    for name in ("stopp_v3.yaml", "start_v3.yaml"):
        doc = yaml.safe_load((RULES_DIR / name).read_text(encoding="utf-8"))
        ids |= {rule["id"] for rule in doc["rules"]}
    return frozenset(ids)


def test_every_encoded_criterion_has_cases():
    covered = {c.rule_id for c in ALL_CASES}
    assert sorted(encoded_rule_ids() - covered) == []
    assert sorted(covered - encoded_rule_ids()) == []
    assert all(c.near_misses for c in ALL_CASES)


# Published section sizes (O'Mahony 2023, supplementary appendix; docs/stopp_start_v3_reference.md):
# STOPP v3 sections A-M (133 criteria), START v3 sections A-L (57 criteria).
STOPP_SIZES = dict(A=3, B=21, C=16, D=25, E=10, F=8, G=4, H=9, I=8, J=10, K=12, L=6, M=1)
START_SIZES = dict(A=1, B=11, C=2, D=7, E=4, F=7, G=3, H=9, I=5, J=1, K=3, L=4)


def published_ids(prefix: str, sizes: dict[str, int]) -> set[str]:
    return {f"{prefix}{section}{number}" for section, size in sizes.items() for number in range(1, size + 1)}


def test_counts_and_published_ids():
    ids = encoded_rule_ids()
    stopp = [i for i in ids if i.startswith("STOPP-v3-")]
    start = [i for i in ids if i.startswith("START-v3-")]
    assert len(stopp) >= 60 and len(start) >= 20
    assert sum(STOPP_SIZES.values()) == 133 and sum(START_SIZES.values()) == 57
    published = published_ids("STOPP-v3-", STOPP_SIZES) | published_ids("START-v3-", START_SIZES)
    assert sorted(ids - published) == []


def test_every_published_criterion_is_encoded_or_omitted_once():
    for name, prefix, sizes in (
        ("stopp_v3.yaml", "STOPP-v3-", STOPP_SIZES),
        ("start_v3.yaml", "START-v3-", START_SIZES),
    ):
        doc = yaml.safe_load((RULES_DIR / name).read_text(encoding="utf-8"))
        encoded = {rule["id"] for rule in doc["rules"]}
        omitted = [item["criterion"] for item in doc["omitted"]]
        assert len(omitted) == len(set(omitted)), name
        assert encoded.isdisjoint(omitted), name
        assert encoded | set(omitted) == published_ids(prefix, sizes), name


@pytest.mark.parametrize("c", ALL_CASES, ids=[c.rule_id for c in ALL_CASES])
def test_positive_case_flags(c: Case):
    flags = [f for f in report(c.positive)["flags"] if f["rule_id"] == c.rule_id]
    assert flags, f"{c.rule_id} did not fire"
    assert flags[-1]["end"] is None, "the positive case holds on as_of"
    assert flags[-1]["source"] and flags[-1]["evidence"] and flags[-1]["recommendation"]


@pytest.mark.parametrize(("rule_id", "data"), NEAR_MISSES, ids=[rule_id for rule_id, _ in NEAR_MISSES])
def test_near_miss_does_not_flag(rule_id: str, data: dict):
    # Not active on as_of. (A near miss by time, e.g. a low potassium 4 months ago, may leave an ended period.)
    assert [f for f in report(data)["flags"] if f["rule_id"] == rule_id and f["end"] is None] == []


def test_criteria_apply_from_age_65():
    young = pj(age=64, drugs=("ibuprofen", "naproxen"), conditions=("atrial fibrillation",))
    assert not {i for i in flag_ids(young) if i.startswith(("STOPP-v3", "START-v3"))}
    assert {"STOPP-v3-A3", "START-v3-C1"} <= flag_ids({**young, "age": 65})


def test_start_flag_names_the_class_to_start():
    (flag,) = [
        f for f in report(pj(conditions=("atrial fibrillation",)))["flags"] if f["rule_id"] == "START-v3-C1"
    ]
    assert flag["drugs"] == ["doac"]


def test_stopp_flag_names_the_drugs_involved():
    (flag,) = [
        f for f in report(pj(drugs=("ibuprofen", "apixaban")))["flags"] if f["rule_id"] == "STOPP-v3-C10"
    ]
    assert flag["drugs"] == ["apixaban", "ibuprofen"]


# -- timing: duration thresholds, laboratory windows and stop dates ----------------------------------------------

START_DAY = date(2025, 1, 1)


def _on(days_after_start: int) -> str:
    return (START_DAY + timedelta(days=days_after_start)).isoformat()


# rule, drugs started on START_DAY, other conditions, threshold in days (held from day START_DAY + threshold - 1)
DURATIONS = [
    ("STOPP-v3-F2", ("omeprazole",), (), 57),  # > 8 weeks
    ("STOPP-v3-D8", ("diazepam",), (), 28),  # >= 4 weeks
    ("STOPP-v3-D10", ("temazepam",), ("insomnia",), 14),  # >= 2 weeks
    ("STOPP-v3-D11", ("zopiclone",), (), 14),  # >= 2 weeks
    ("STOPP-v3-C3", ("aspirin", "clopidogrel"), ("stroke",), 29),  # > 4 weeks
    ("STOPP-v3-D15", ("quetiapine",), ("dementia",), 85),  # > 12 weeks
    ("STOPP-v3-B17", ("ibuprofen",), ("ischaemic heart disease",), 91),  # long-term, > 3 months
    ("START-v3-H2", ("prednisolone",), (), 91),  # long-term corticosteroid
]


@pytest.mark.parametrize(
    ("rule_id", "drugs", "conditions", "threshold"), DURATIONS, ids=[d[0] for d in DURATIONS]
)
def test_duration_boundary(rule_id: str, drugs: tuple, conditions: tuple, threshold: int):
    courses = tuple((name, START_DAY.isoformat()) for name in drugs)
    before = pj(drugs=courses, conditions=conditions, as_of=_on(threshold - 2))
    on_the_day = pj(drugs=courses, conditions=conditions, as_of=_on(threshold - 1))
    assert rule_id not in flag_ids(before)
    (flag,) = [f for f in report(on_the_day)["flags"] if f["rule_id"] == rule_id]
    assert flag["start"] == _on(threshold - 1) and flag["end"] is None


def test_ppi_switch_without_a_gap_keeps_counting():
    switched = pj(
        drugs=(("omeprazole", "2025-01-01", "2025-01-31"), ("lansoprazole", "2025-02-01")), as_of=_on(56)
    )
    assert "STOPP-v3-F2" in flag_ids(switched)


def test_ppi_gap_restarts_the_count():
    gap = pj(drugs=(("omeprazole", "2025-01-01", "2025-01-31"), ("omeprazole", "2025-02-02")), as_of=_on(60))
    assert "STOPP-v3-F2" not in flag_ids(gap)


def _ends(rule_id: str, data: dict) -> list[str | None]:
    return [f["end"] for f in report(data)["flags"] if f["rule_id"] == rule_id]


def test_flag_ends_on_the_stop_date():
    stopped = pj(drugs=(("ibuprofen", "2025-01-01", "2025-06-29"), ("apixaban", "2025-01-01")))
    (flag,) = [f for f in report(stopped)["flags"] if f["rule_id"] == "STOPP-v3-C10"]
    assert (flag["start"], flag["end"]) == ("2025-01-01", "2025-06-29")


def test_current_potassium_is_valid_for_90_days():
    # B9: a potassium of 2.8 counts from its date to 90 days after it.
    data = pj(drugs=("bendroflumethiazide",), labs=(("potassium", 2.8, "2025-01-01"),))
    assert _ends("STOPP-v3-B9", {**data, "as_of": "2025-04-01"}) == [None]
    assert _ends("STOPP-v3-B9", {**data, "as_of": "2025-04-02"}) == ["2025-04-01"]


def test_normal_result_ends_the_flag():
    labs = (("potassium", 2.8, "2025-03-01"), ("potassium", 4.1, "2025-03-15"))
    (flag,) = [
        f
        for f in report(pj(drugs=("bendroflumethiazide",), labs=labs))["flags"]
        if f["rule_id"] == "STOPP-v3-B9"
    ]
    assert (flag["start"], flag["end"]) == ("2025-03-01", "2025-03-14")


def test_egfr_is_valid_for_a_year():
    data = pj(drugs=("metformin",), labs=(("egfr", 25, "2024-06-30"),))
    assert _ends("STOPP-v3-E6", data) == [None]
    assert _ends("STOPP-v3-E6", {**data, "as_of": "2025-07-01"}) == ["2025-06-30"]


def test_potassium_monitoring_lapses_after_six_months():
    # B13: a potassium check covers the next 183 days; the flag starts on the 184th day without one.
    data = pj(drugs=("spironolactone", "ramipril"), labs=(("potassium", 4.5, "2024-12-01"),))
    periods = [(f["start"], f["end"]) for f in report(data)["flags"] if f["rule_id"] == "STOPP-v3-B13"]
    assert periods == [
        (LONG_AGO, "2024-11-30"),
        ((date(2024, 12, 1) + timedelta(days=184)).isoformat(), None),
    ]
