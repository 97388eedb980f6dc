"""Each drug-drug interaction, ACB and AKI rule: one positive and near-miss negatives."""

from __future__ import annotations

import pytest
from engine_cases import active_now, patient, periods


def on(*drugs: str) -> tuple:
    """Each drug on an ongoing course started on 2025-01-01."""
    return tuple((drug, "2025-01-01", None) for drug in drugs)


CASES = [
    (
        "DDI-TRIPLE_WHAMMY",
        on("ramipril", "furosemide", "ibuprofen"),
        [
            on("ramipril", "furosemide"),
            on("ramipril", "amlodipine", "ibuprofen"),
            on("furosemide", "ibuprofen"),
        ],
    ),
    (
        "DDI-TRIPLE_WHAMMY",
        on("candesartan", "bendroflumethiazide", "naproxen"),
        [on("candesartan", "naproxen")],
    ),
    (
        "DDI-ACEI_ARB",
        on("lisinopril", "losartan"),
        [on("lisinopril", "amlodipine"), on("losartan", "candesartan")],
    ),
    ("DDI-HYPERK_ACEI_ARB_KSPARING", on("ramipril", "spironolactone"), [on("ramipril", "furosemide")]),
    ("DDI-HYPERK_ACEI_ARB_KSPARING", on("losartan", "amiloride"), [on("amlodipine", "amiloride")]),
    (
        "DDI-HYPERK_ACEI_ARB_POTASSIUM",
        on("ramipril", "potassium chloride"),
        [on("amlodipine", "potassium chloride")],
    ),
    (
        "DDI-HYPERK_ACEI_ARB_TRIMETHOPRIM",
        on("lisinopril", "trimethoprim"),
        [on("lisinopril", "nitrofurantoin")],
    ),
    (
        "DDI-HYPERK_KSPARING_POTASSIUM",
        on("spironolactone", "potassium chloride"),
        [on("furosemide", "potassium chloride")],
    ),
    (
        "DDI-ANTICOAG_ANTIPLATELET",
        on("apixaban", "clopidogrel"),
        [on("apixaban", "atorvastatin"), on("aspirin", "clopidogrel")],
    ),
    (
        "DDI-WARFARIN_NSAID",
        on("warfarin", "diclofenac"),
        [on("apixaban", "paracetamol"), on("warfarin", "paracetamol")],
    ),
    (
        "DDI-WARFARIN_ANTIBIOTIC",
        on("warfarin", "clarithromycin"),
        [on("warfarin", "amoxicillin"), on("apixaban", "nitrofurantoin")],
    ),
    ("DDI-WARFARIN_ANTIBIOTIC", on("warfarin", "ciprofloxacin"), [on("warfarin", "cefalexin")]),
    ("DDI-WARFARIN_AZOLE", on("warfarin", "fluconazole"), [on("warfarin", "terbinafine")]),
    ("DDI-SSRI_ANTICOAG", on("sertraline", "rivaroxaban"), [on("mirtazapine", "rivaroxaban")]),
    ("DDI-CLOPIDOGREL_PPI", on("clopidogrel", "omeprazole"), [on("clopidogrel", "lansoprazole")]),
    (
        "DDI-SEROTONIN_MAOI",
        on("phenelzine", "sertraline"),
        [on("phenelzine"), on("sertraline", "mirtazapine")],
    ),
    ("DDI-STIMULANT_MAOI", on("methylphenidate", "tranylcypromine"), [on("methylphenidate", "sertraline")]),
    ("DDI-SEROTONIN_LINEZOLID", on("linezolid", "citalopram"), [on("linezolid", "amoxicillin")]),
    (
        "DDI-SEROTONIN_TRAMADOL",
        on("tramadol", "sertraline"),
        [on("codeine", "sertraline"), on("tramadol", "mirtazapine")],
    ),
    (
        "DDI-QT_TWO_KNOWN_RISK",
        on("citalopram", "clarithromycin"),
        [on("citalopram"), on("sertraline", "clarithromycin")],
    ),
    (
        "DDI-OPIOID_BENZODIAZEPINE",
        on("oxycodone", "diazepam"),
        [on("oxycodone", "paracetamol"), on("diazepam")],
    ),
    ("DDI-OPIOID_BENZODIAZEPINE", on("codeine", "zopiclone"), [on("ibuprofen", "zopiclone")]),
    ("DDI-OPIOID_GABAPENTINOID", on("morphine", "pregabalin"), [on("pregabalin", "amitriptyline")]),
    ("DDI-LITHIUM_ACEI_ARB", on("lithium", "ramipril"), [on("lithium", "amlodipine")]),
    ("DDI-LITHIUM_DIURETIC", on("lithium", "bendroflumethiazide"), [on("lithium", "spironolactone")]),
    ("DDI-LITHIUM_NSAID", on("lithium", "naproxen"), [on("lithium", "paracetamol")]),
    (
        "DDI-METHOTREXATE_TRIMETHOPRIM",
        on("methotrexate", "trimethoprim"),
        [on("methotrexate", "nitrofurantoin")],
    ),
    (
        "DDI-AZATHIOPRINE_XANTHINE_OXIDASE",
        on("azathioprine", "allopurinol"),
        [on("azathioprine", "colchicine")],
    ),
    ("DDI-COLCHICINE_CLARITHROMYCIN", on("colchicine", "clarithromycin"), [on("colchicine", "azithromycin")]),
    (
        "DDI-SIMVASTATIN_CYP3A4",
        on("simvastatin", "clarithromycin"),
        [on("pravastatin", "clarithromycin"), on("simvastatin", "azithromycin")],
    ),
    ("DDI-ATORVASTATIN_CYP3A4", on("atorvastatin", "itraconazole"), [on("rosuvastatin", "itraconazole")]),
    ("DDI-VERAPAMIL_BETA_BLOCKER", on("verapamil", "atenolol"), [on("amlodipine", "atenolol")]),
    ("DDI-DILTIAZEM_BETA_BLOCKER", on("diltiazem", "bisoprolol"), [on("diltiazem", "ramipril")]),
    ("DDI-DIGOXIN_AMIODARONE", on("digoxin", "amiodarone"), [on("digoxin", "bisoprolol")]),
    ("DDI-PDE5_NITRATE", on("sildenafil", "isosorbide mononitrate"), [on("sildenafil", "amlodipine")]),
    ("DDI-PDE5_NITRATE", on("tadalafil", "nicorandil"), [on("tadalafil")]),
    ("DDI-TIZANIDINE_CYP1A2", on("tizanidine", "ciprofloxacin"), [on("tizanidine", "sertraline")]),
    ("ACB-TOTAL_3", on("amitriptyline"), [on("codeine", "furosemide"), on("paracetamol")]),
    ("ACB-TOTAL_3", on("codeine", "furosemide", "warfarin"), [on("codeine", "furosemide")]),
]


@pytest.mark.parametrize(("rule_id", "positive", "negatives"), CASES, ids=[c[0] for c in CASES])
def test_interaction_rule(rule_id, positive, negatives):
    assert active_now(patient(drugs=positive), rule_id)
    for negative in negatives:
        assert not active_now(patient(drugs=negative), rule_id), negative


def test_flag_names_the_drugs_that_make_the_combination():
    record = patient(drugs=on("warfarin", "clarithromycin", "amlodipine"))
    assert periods(record, "DDI-WARFARIN_ANTIBIOTIC") == [
        ("2025-01-01", None, ("clarithromycin", "warfarin"))
    ]


def test_acb_flag_names_the_anticholinergic_drugs_only():
    record = patient(drugs=on("oxybutynin", "amlodipine"))
    assert periods(record, "ACB-TOTAL_3") == [("2025-01-01", None, ("oxybutynin",))]


def test_acb_dementia_needs_the_condition():
    drugs = on("oxybutynin")
    assert active_now(patient(drugs=drugs, conditions=(("dementia", "2020-01-01"),)), "ACB-TOTAL_3_DEMENTIA")
    assert not active_now(patient(drugs=drugs), "ACB-TOTAL_3_DEMENTIA")
    assert not active_now(
        patient(drugs=on("codeine"), conditions=(("dementia", "2020-01-01"),)), "ACB-TOTAL_3_DEMENTIA"
    )


def test_acb_total_adds_up_across_overlapping_courses_only():
    record = patient(
        drugs=(
            ("codeine", "2025-01-01", "2025-02-28"),
            ("furosemide", "2025-02-01", None),
            ("warfarin", "2025-02-15", "2025-03-31"),
        )
    )
    assert periods(record, "ACB-TOTAL_3") == [
        ("2025-02-15", "2025-02-28", ("codeine", "furosemide", "warfarin"))
    ]


def test_aki_sick_day_rule_needs_two_drugs_and_reduced_egfr():
    labs = (("egfr", "2025-03-01", 48.0),)
    assert active_now(patient(drugs=on("ramipril", "metformin"), labs=labs), "AKI-SICK_DAY_CKD")
    assert not active_now(patient(drugs=on("ramipril"), labs=labs), "AKI-SICK_DAY_CKD")
    assert not active_now(
        patient(drugs=on("ramipril", "metformin"), labs=(("egfr", "2025-03-01", 75.0),)), "AKI-SICK_DAY_CKD"
    )
    assert not active_now(patient(drugs=on("ramipril", "metformin")), "AKI-SICK_DAY_CKD")


def test_aki_nsaid_within_three_months_of_aki():
    assert active_now(patient(drugs=on("naproxen"), events=(("aki", "2025-05-01"),)), "AKI-NSAID_AFTER_AKI")
    assert not active_now(
        patient(drugs=on("naproxen"), events=(("aki", "2024-05-01"),)), "AKI-NSAID_AFTER_AKI"
    )
    assert not active_now(
        patient(drugs=on("paracetamol"), events=(("aki", "2025-05-01"),)), "AKI-NSAID_AFTER_AKI"
    )
