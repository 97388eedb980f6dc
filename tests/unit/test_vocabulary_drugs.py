"""Drug vocabulary: data integrity, classes, ACB scores and the text/code matcher."""

from __future__ import annotations

import csv
import re
import shutil
import time
from pathlib import Path

import pytest
import yaml

from clinical.vocabulary import DATA_DIR, DrugMatch, DrugVocabulary, infer_route


@pytest.fixture(scope="module")
def vocab() -> DrugVocabulary:
    return DrugVocabulary.load()


# ------------------------------------------------------------------------------------------------ data integrity


def test_at_least_250_drugs(vocab: DrugVocabulary) -> None:
    assert len(vocab.keys) >= 250


def test_every_drug_has_bnf_section_and_atc(vocab: DrugVocabulary) -> None:
    for key in vocab.keys:
        drug = vocab.drug(key)
        assert re.fullmatch(r"\d{1,2}(\.\d{1,2}){0,3}", drug.bnf_section), key
        assert 1 <= drug.bnf_chapter <= 15, key
        assert re.fullmatch(r"[A-Z]\d\d([A-Z]([A-Z](\d\d)?)?)?", drug.atc), key
        assert drug.acb in {0, 1, 2, 3}, key
        assert drug.rxnorm is None or drug.rxnorm.isdigit(), key


def test_drug_keys_are_lowercase_generic_names(vocab: DrugVocabulary) -> None:
    for key in vocab.keys:
        assert key == key.strip().lower(), key
        assert not key.startswith("co-"), f"{key}: combination products are not drugs"


def test_every_class_member_is_a_known_drug(vocab: DrugVocabulary) -> None:
    document = yaml.safe_load((DATA_DIR / "drug_classes.yaml").read_text(encoding="utf-8"))
    for class_key, entry in document.items():
        assert re.fullmatch(r"[a-z0-9_]+", class_key)
        assert entry["description"] and entry["source"], class_key
        for member in entry["members"]:
            assert member in vocab.keys, f"{class_key}: {member}"


REQUIRED_CLASSES = """
nsaid cox2_inhibitor antiplatelet p2y12_inhibitor anticoagulant doac vitamin_k_antagonist heparin ppi h2_antagonist
gastroprotection ace_inhibitor arb renin_angiotensin thiazide_diuretic loop_diuretic potassium_sparing_diuretic mra
diuretic beta_blocker non_selective_beta_blocker ccb_dihydropyridine ccb_rate_limiting alpha_blocker
centrally_acting_antihypertensive nitrate cardiac_glycoside antiarrhythmic class_i_antiarrhythmic
class_iii_antiarrhythmic statin biguanide metformin_class sulfonylurea insulin sglt2_inhibitor dpp4_inhibitor
glp1_agonist thiazolidinedione opioid strong_opioid weak_opioid benzodiazepine z_drug gabapentinoid ssri snri tca
maoi antidepressant antipsychotic first_generation_antipsychotic lithium antiepileptic cholinesterase_inhibitor
antimuscarinic_bladder sedating_antihistamine antihistamine oral_corticosteroid inhaled_corticosteroid laba lama saba
theophylline bisphosphonate calcium_vitamin_d thyroid_hormone antithyroid methotrexate dmard
xanthine_oxidase_inhibitor colchicine macrolide fluoroquinolone trimethoprim nitrofurantoin antibacterial
azole_antifungal potassium_supplement dopaminergic_antiparkinson levodopa antidopaminergic_antiemetic antispasmodic
systemic_oestrogen hrt combined_hormonal_contraceptive five_alpha_reductase_inhibitor phosphodiesterase5_inhibitor
vasodilator_antihypertensive triptan stimulant_laxative laxative iron vitamin_b12 folic_acid sacubitril_valsartan
sick_day_drug serotonergic qt_prolonging cns_depressant potassium_raising nephrotoxic anticholinergic
strong_anticholinergic hypoglycaemia_risk bleeding_risk drug_needs_monitoring sedative
""".split()


@pytest.mark.parametrize("class_key", REQUIRED_CLASSES)
def test_required_class_exists_and_is_not_empty(vocab: DrugVocabulary, class_key: str) -> None:
    assert vocab.members(class_key)


@pytest.mark.parametrize(
    ("class_key", "expected"),
    [
        ("potassium_sparing_diuretic", {"amiloride", "triamterene"}),
        ("mra", {"spironolactone", "eplerenone"}),
        ("ccb_rate_limiting", {"verapamil", "diltiazem"}),
        ("antidopaminergic_antiemetic", {"metoclopramide", "prochlorperazine", "domperidone"}),
        ("biguanide", {"metformin"}),
        ("metformin_class", {"metformin"}),
        ("cox2_inhibitor", {"celecoxib", "etoricoxib"}),
        ("doac", {"apixaban", "rivaroxaban", "edoxaban", "dabigatran"}),
        ("p2y12_inhibitor", {"clopidogrel", "prasugrel", "ticagrelor"}),
        ("five_alpha_reductase_inhibitor", {"finasteride", "dutasteride"}),
        ("sacubitril_valsartan", {"sacubitril"}),
        ("lithium", {"lithium"}),
    ],
)
def test_class_has_exactly_these_members(vocab: DrugVocabulary, class_key: str, expected: set[str]) -> None:
    assert vocab.members(class_key) == expected


@pytest.mark.parametrize(
    ("class_key", "members"),
    [
        ("thiazide_diuretic", {"bendroflumethiazide", "indapamide", "chlortalidone", "hydrochlorothiazide"}),
        ("loop_diuretic", {"furosemide", "bumetanide"}),
        ("ace_inhibitor", {"ramipril", "lisinopril", "perindopril", "enalapril"}),
        ("arb", {"losartan", "candesartan", "valsartan"}),
        ("antiplatelet", {"aspirin", "clopidogrel"}),
        ("weak_opioid", {"codeine", "tramadol"}),
        ("strong_opioid", {"morphine", "oxycodone", "fentanyl"}),
        ("sulfonylurea", {"gliclazide", "glimepiride"}),
        ("tca", {"amitriptyline", "nortriptyline", "dosulepin"}),
        ("z_drug", {"zopiclone", "zolpidem"}),
        ("gabapentinoid", {"gabapentin", "pregabalin"}),
        ("qt_prolonging", {"citalopram", "amiodarone", "clarithromycin", "methadone", "ondansetron"}),
        ("potassium_raising", {"trimethoprim", "spironolactone", "ramipril", "potassium chloride"}),
        ("nephrotoxic", {"ibuprofen", "gentamicin", "lithium"}),
        ("drug_needs_monitoring", {"methotrexate", "lithium", "amiodarone"}),
        ("sedating_antihistamine", {"chlorphenamine", "promethazine", "hydroxyzine"}),
        ("antimuscarinic_bladder", {"oxybutynin", "tolterodine", "solifenacin"}),
    ],
)
def test_class_contains(vocab: DrugVocabulary, class_key: str, members: set[str]) -> None:
    assert members <= vocab.members(class_key)


def _union(vocab: DrugVocabulary, *class_keys: str) -> frozenset[str]:
    return frozenset().union(*(vocab.members(key) for key in class_keys))


def test_umbrella_classes_contain_their_parts(vocab: DrugVocabulary) -> None:
    members = vocab.members
    assert members("gastroprotection") == _union(vocab, "ppi", "h2_antagonist") | {"misoprostol"}
    assert members("diuretic") == _union(
        vocab, "thiazide_diuretic", "loop_diuretic", "potassium_sparing_diuretic", "mra"
    )
    assert members("renin_angiotensin") == _union(vocab, "ace_inhibitor", "arb") | {"sacubitril", "aliskiren"}
    assert members("antipsychotic") == _union(
        vocab, "first_generation_antipsychotic", "second_generation_antipsychotic"
    )
    assert _union(vocab, "cox2_inhibitor") <= members("nsaid")
    assert _union(vocab, "doac", "vitamin_k_antagonist", "heparin") <= members("anticoagulant")
    assert _union(vocab, "strong_opioid", "weak_opioid") <= members("opioid")
    assert _union(vocab, "ssri", "snri", "tca", "maoi") <= members("antidepressant")
    assert _union(vocab, "ssri", "snri", "tca", "maoi", "triptan") <= members("serotonergic")
    assert _union(vocab, "sulfonylurea", "insulin") <= members("hypoglycaemia_risk")
    assert _union(vocab, "opioid", "benzodiazepine", "z_drug", "gabapentinoid") <= members("cns_depressant")
    assert _union(vocab, "anticoagulant", "antiplatelet", "nsaid", "ssri") <= members("bleeding_risk")
    assert _union(vocab, "benzodiazepine", "z_drug", "sedating_antihistamine") <= members("sedative")
    assert _union(vocab, "sglt2_inhibitor", "ace_inhibitor", "arb", "biguanide") <= members("sick_day_drug")
    assert _union(vocab, "sulfonylurea", "diuretic", "nsaid") <= members("sick_day_drug")
    assert members("laxative") >= members("stimulant_laxative")
    assert members("antibacterial") >= _union(vocab, "macrolide", "fluoroquinolone", "trimethoprim")


def test_aspirin_is_an_antiplatelet_not_an_nsaid(vocab: DrugVocabulary) -> None:
    assert "aspirin" in vocab.members("antiplatelet")
    assert "aspirin" not in vocab.members("nsaid")


def test_anticholinergic_classes_mirror_acb_scores(vocab: DrugVocabulary) -> None:
    scored = {key for key in vocab.keys if vocab.acb(key) >= 1}
    strong = {key for key in vocab.keys if vocab.acb(key) == 3}
    assert vocab.members("anticholinergic") == scored
    assert vocab.members("strong_anticholinergic") == strong


@pytest.mark.parametrize(
    ("drug_key", "score"),
    [
        ("amitriptyline", 3),
        ("oxybutynin", 3),
        ("chlorphenamine", 3),
        ("paroxetine", 3),
        ("quetiapine", 3),
        ("carbamazepine", 2),
        ("pethidine", 2),
        ("furosemide", 1),
        ("warfarin", 1),
        ("codeine", 1),
        ("paracetamol", 0),
        ("amlodipine", 0),
    ],
)
def test_acb_scores(vocab: DrugVocabulary, drug_key: str, score: int) -> None:
    assert vocab.acb(drug_key) == score


# ------------------------------------------------------------------------------------------------ lookup API


def test_drug_record_fields(vocab: DrugVocabulary) -> None:
    drug = vocab.drug("lisinopril")
    assert drug.name == "Lisinopril"
    assert drug.bnf_section == "2.5.5.1"
    assert drug.bnf_chapter == 2
    assert drug.atc == "C09AA03"
    assert drug.rxnorm == "29046"
    assert "Zestril" in drug.brands
    assert {"ace_inhibitor", "renin_angiotensin", "sick_day_drug", "potassium_raising"} <= drug.classes
    assert vocab.classes_of("lisinopril") == drug.classes
    assert vocab.in_class("lisinopril", "ace_inhibitor")


def test_unknown_keys_fail_loudly(vocab: DrugVocabulary) -> None:
    with pytest.raises(KeyError):
        vocab.drug("co-codamol")
    with pytest.raises(KeyError):
        vocab.members("nsaids")
    with pytest.raises(KeyError):
        vocab.acb("unicornium")
    assert vocab.get("unicornium") is None


def test_class_definition_carries_its_source(vocab: DrugVocabulary) -> None:
    qt = vocab.drug_class("qt_prolonging")
    assert "CredibleMeds" in qt.source
    assert "ACB" in vocab.drug_class("anticholinergic").source


def test_load_is_cached_and_fast() -> None:
    assert DrugVocabulary.load() is DrugVocabulary.load()
    timings = []
    for _ in range(3):  # best of three: the budget is for the parse, not for a busy shared CI machine
        started = time.perf_counter()
        DrugVocabulary.from_files(DATA_DIR)
        timings.append(time.perf_counter() - started)
    assert min(timings) < 0.3


# ------------------------------------------------------------------------------------------------ text matching

# Straight from the DESCRIPTION columns of the Synthea extracts (shared/data/synthea_*/medications.csv).
SYNTHEA_DESCRIPTIONS = [
    ("0.3 ML Enoxaparin sodium 100 MG/ML Prefilled Syringe", ("enoxaparin",), "injection"),
    ("1 ML Epinephrine 1 MG/ML Injection", ("adrenaline",), "injection"),
    ("1 ML medroxyprogesterone acetate 150 MG/ML Injection", ("medroxyprogesterone",), "injection"),
    ("1 ML Vasopressin (USP) 20 UNT/ML Injection", ("vasopressin",), "injection"),
    ("10 ML Furosemide 10 MG/ML Injection", ("furosemide",), "injection"),
    ("12 HR Hydrocodone Bitartrate 10 MG Extended Release Oral Capsule", ("hydrocodone",), "oral"),
    ("120 ACTUAT Fluticasone propionate 0.044 MG/ACTUAT Metered Dose Inhaler", ("fluticasone",), "inhaled"),
    (
        "168 HR Ethinyl Estradiol 0.00146 MG/HR / norelgestromin 0.00625 MG/HR Transdermal System",
        ("ethinylestradiol", "norelgestromin"),
        "transdermal",
    ),
    ("24 HR Metformin hydrochloride 500 MG Extended Release Oral Tablet", ("metformin",), "oral"),
    ("24 HR metoprolol succinate 100 MG Extended Release Oral Tablet", ("metoprolol",), "oral"),
    ("3 ML Amiodarone hydrocholoride 50 MG/ML Prefilled Syringe", ("amiodarone",), "injection"),
    ("4 ML Norepinephrine 1 MG/ML Injection", ("noradrenaline",), "injection"),
    (
        "60 ACTUAT Fluticasone propionate 0.25 MG/ACTUAT / salmeterol 0.05 MG/ACTUAT Dry Powder Inhaler",
        ("fluticasone", "salmeterol"),
        "inhaled",
    ),
    (
        "Abuse-Deterrent 12 HR Oxycodone Hydrochloride 10 MG Extended Release Oral Tablet [Oxycontin]",
        ("oxycodone",),
        "oral",
    ),
    ("Acetaminophen 160 MG Chewable Tablet", ("paracetamol",), "oral"),
    (
        "Acetaminophen 21.7 MG/ML / Dextromethorphan Hydrobromide 1 MG/ML / doxylamine succinate 0.417 MG/ML "
        "Oral Solution",
        ("dextromethorphan", "doxylamine", "paracetamol"),
        "oral",
    ),
    (
        "Acetaminophen 325 MG / HYDROcodone Bitartrate 7.5 MG Oral Tablet",
        ("hydrocodone", "paracetamol"),
        "oral",
    ),
    (
        "Acetaminophen 325 MG / Oxycodone Hydrochloride 10 MG Oral Tablet [Percocet]",
        ("oxycodone", "paracetamol"),
        "oral",
    ),
    ("Acetaminophen 325 MG / Oxycodone Hydrochloride 5 MG Oral Tablet", ("oxycodone", "paracetamol"), "oral"),
    ("albuterol 5 MG/ML Inhalation Solution", ("salbutamol",), "inhaled"),
    ("Alendronic acid 10 MG Oral Tablet", ("alendronic acid",), "oral"),
    ("amLODIPine 2.5 MG Oral Tablet", ("amlodipine",), "oral"),
    ("Amoxicillin 250 MG / Clavulanate 125 MG Oral Tablet", ("amoxicillin", "clavulanic acid"), "oral"),
    ("Aspirin 81 MG Oral Tablet", ("aspirin",), "oral"),
    ("Atropine Sulfate 1 MG/ML Injectable Solution", ("atropine",), "injection"),
    ("Camila 28 Day Pack", ("norethisterone",), "oral"),
    ("Carbamazepine[Tegretol]", ("carbamazepine",), None),
    ("Chlorpheniramine Maleate 2 MG/ML Oral Solution", ("chlorphenamine",), "oral"),
    ("clonazePAM 0.25 MG Oral Tablet", ("clonazepam",), "oral"),
    ("diphenhydrAMINE Hydrochloride 25 MG Oral Tablet", ("diphenhydramine",), "oral"),
    ("Etonogestrel 68 MG Drug Implant", ("etonogestrel",), "implant"),
    ("ferrous sulfate 325 MG Oral Tablet", ("ferrous sulfate",), "oral"),
    ("Hydrocortisone 10 MG/ML Topical Cream", ("hydrocortisone",), "topical"),
    ("Hydroxychloroquine Sulfate 200 MG Oral Tablet", ("hydroxychloroquine",), "oral"),
    ("Ibuprofen 400 MG Oral Tablet [Ibu]", ("ibuprofen",), "oral"),
    (
        "insulin isophane  human 70 UNT/ML / insulin  regular  human 30 UNT/ML Injectable Suspension [Humulin]",
        ("isophane insulin", "soluble insulin"),
        "injection",
    ),
    ("Kyleena 19.5 MG Intrauterine System", ("levonorgestrel",), "intrauterine"),
    ("Levora 0.15/30 28 Day Pack", ("ethinylestradiol", "levonorgestrel"), "oral"),
    ("losartan potassium 25 MG Oral Tablet", ("losartan",), "oral"),
    ("Memantine hydrochloride 2 MG/ML Oral Solution", ("memantine",), "oral"),
    ("Meperidine Hydrochloride 50 MG Oral Tablet", ("pethidine",), "oral"),
    ("Naproxen sodium 220 MG Oral Tablet", ("naproxen",), "oral"),
    ("Natazia 28 Day Pack", ("dienogest", "estradiol"), "oral"),
    (
        "NDA020983 200 ACTUAT albuterol 0.09 MG/ACTUAT Metered Dose Inhaler [Ventolin]",
        ("salbutamol",),
        "inhaled",
    ),
    ("Nitroglycerin 0.4 MG/ACTUAT Mucosal Spray", ("glyceryl trinitrate",), "oromucosal"),
    ("Norinyl 1+50 28 Day Pack", ("mestranol", "norethisterone"), "oral"),
    ("NuvaRing 0.12/0.015 MG per 24HR 21 Day Vaginal Ring", ("ethinylestradiol", "etonogestrel"), "vaginal"),
    ("Ortho Tri-Cyclen 28 Day Pack", ("ethinylestradiol", "norgestimate"), "oral"),
    ("Penicillin V Potassium 250 MG Oral Tablet", ("phenoxymethylpenicillin",), "oral"),
    ("piperacillin 4000 MG / tazobactam 500 MG Injection", ("piperacillin", "tazobactam"), "injection"),
    ("sacubitril 97 MG / valsartan 103 MG Oral Tablet", ("sacubitril", "valsartan"), "oral"),
    ("sodium fluoride 0.0272 MG/MG Oral Gel", ("sodium fluoride",), "oral"),
    ("tramadol hydrochloride 50 MG Oral Tablet", ("tramadol",), "oral"),
    ("Vitamin B 12 5 MG/ML Injectable Solution", ("cyanocobalamin",), "injection"),
    ("Yaz 28 Day Pack", ("drospirenone", "ethinylestradiol"), "oral"),
]


@pytest.mark.parametrize(("text", "ingredients", "route"), SYNTHEA_DESCRIPTIONS)
def test_synthea_descriptions(
    vocab: DrugVocabulary, text: str, ingredients: tuple[str, ...], route: str
) -> None:
    match = vocab.match_text(text)
    assert match.matched, match
    assert match.ingredients == ingredients
    assert match.unmatched == ()
    assert match.route == route
    assert match.input == text


UK_AND_OTHER_NAMES = [
    ("Co-codamol 30mg/500mg tablets", ("codeine", "paracetamol")),
    ("CO-CODAMOL 8MG/500MG EFFERVESCENT TABLETS", ("codeine", "paracetamol")),
    ("Co-amoxiclav 500mg/125mg tablets", ("amoxicillin", "clavulanic acid")),
    ("Co-trimoxazole 80mg/400mg tablets", ("sulfamethoxazole", "trimethoprim")),
    ("Co-careldopa 25mg/100mg tablets", ("carbidopa", "levodopa")),
    ("Madopar 125 capsules", ("benserazide", "levodopa")),
    ("Zestril 10mg tablets", ("lisinopril",)),
    ("Norvasc", ("amlodipine",)),
    ("Eliquis 5mg tablets", ("apixaban",)),
    ("Xarelto 20mg film-coated tablets", ("rivaroxaban",)),
    ("frusemide 40mg", ("furosemide",)),
    ("Furosemide 40mg tablets", ("furosemide",)),
    ("acetaminophen", ("paracetamol",)),
    ("Albuterol sulfate HFA", ("salbutamol",)),
    ("Amlodipine besylate 5 MG", ("amlodipine",)),
    ("Metoprolol succinate", ("metoprolol",)),
    ("Oxycodone Hydrochloride", ("oxycodone",)),
    ("Seretide 250 Accuhaler", ("fluticasone", "salmeterol")),
    ("Adcal-D3 chewable tablets", ("calcium carbonate", "colecalciferol")),
    ("Paracetamol 500mg / codeine 8mg", ("codeine", "paracetamol")),
    ("paracetamol + codeine", ("codeine", "paracetamol")),
    ("Tylenol with Codeine", ("codeine", "paracetamol")),
    ("Sacubitril/valsartan 49mg/51mg tablets", ("sacubitril", "valsartan")),
    ("Entresto 24mg/26mg tablets", ("sacubitril", "valsartan")),
    ("Hyoscine butylbromide 10mg tablets", ("hyoscine butylbromide",)),
    ("Kwells 300microgram tablets", ("hyoscine hydrobromide",)),
    ("Sodium valproate 200mg gastro-resistant tablets", ("valproate",)),
    ("Lithium carbonate 400mg modified-release tablets (Priadel)", ("lithium",)),
    ("MICROGYNON 30 tablets", ("ethinylestradiol", "levonorgestrel")),
    ("Humulin M3 KwikPen", ("isophane insulin", "soluble insulin")),
    ("Glyburide 5 MG Oral Tablet", ("glibenclamide",)),
    ("Cyclosporine 100 MG Oral Capsule", ("ciclosporin",)),
]


@pytest.mark.parametrize(("text", "ingredients"), UK_AND_OTHER_NAMES)
def test_uk_compound_brand_and_synonym_names(
    vocab: DrugVocabulary, text: str, ingredients: tuple[str, ...]
) -> None:
    match = vocab.match_text(text)
    assert match.matched, match
    assert match.ingredients == ingredients


def test_every_name_of_a_drug_matches_that_drug(vocab: DrugVocabulary) -> None:
    for key in vocab.keys:
        drug = vocab.drug(key)
        for name in (drug.key, drug.name, *drug.synonyms, *drug.brands):
            assert vocab.match_text(name).ingredients == (key,), name


def test_combination_ingredients_are_in_every_ingredient_class(vocab: DrugVocabulary) -> None:
    match = vocab.match_text("Co-codamol 30mg/500mg tablets")
    classes = set().union(*(vocab.classes_of(key) for key in match.ingredients))
    assert {"weak_opioid", "non_opioid_analgesic", "anticholinergic"} <= classes


def test_primary_ingredient_is_the_first_named(vocab: DrugVocabulary) -> None:
    assert vocab.match_text("Acetaminophen 325 MG / Oxycodone Hydrochloride 5 MG").drug_key == "paracetamol"
    assert vocab.match_text("Madopar 62.5 dispersible tablets").drug_key == "levodopa"
    assert vocab.match_text("").drug_key is None


def test_unknown_drug_is_reported_not_dropped(vocab: DrugVocabulary) -> None:
    match = vocab.match_text("Unicornium 5mg tablets")
    assert not match.matched
    assert match.ingredients == ()
    assert match.unmatched == ("unicornium 5mg tablets",)


def test_unknown_component_of_a_combination_is_reported(vocab: DrugVocabulary) -> None:
    match = vocab.match_text("Acetaminophen 325 MG / Foobarin 5 MG Oral Tablet")
    assert not match.matched
    assert match.ingredients == ("paracetamol",)
    assert match.unmatched == ("foobarin 5 mg oral tablet",)


@pytest.mark.parametrize("text", ["", "   ", None])
def test_empty_input_matches_nothing(vocab: DrugVocabulary, text: str | None) -> None:
    match = vocab.match_text(text)
    assert match == DrugMatch(input=text or "", ingredients=(), matched=False)


def test_salt_and_form_words_do_not_split_or_confuse(vocab: DrugVocabulary) -> None:
    # "sodium" and "potassium" are salts here, not potassium chloride or sodium fluoride.
    assert vocab.match_text("Atorvastatin calcium 20 MG Oral Tablet").ingredients == ("atorvastatin",)
    assert vocab.match_text("Penicillin V Potassium 500 MG").ingredients == ("phenoxymethylpenicillin",)
    assert vocab.match_text("Docusate sodium 100mg capsules").ingredients == ("docusate sodium",)


@pytest.mark.parametrize(
    ("text", "route"),
    [
        ("Budesonide 200micrograms/dose inhaler", "inhaled"),
        ("Budesonide 3mg gastro-resistant capsules", "oral"),
        ("Timolol 0.25% eye drops", "eye"),
        ("Hydrocortisone 1% cream", "topical"),
        ("Fentanyl 25micrograms/hour transdermal patches", "transdermal"),
        ("Glyceryl trinitrate 400micrograms/dose pump sublingual spray", "oromucosal"),
        ("Amlodipine", None),
    ],
)
def test_route_inference(text: str, route: str | None) -> None:
    assert infer_route(text) == route


# ------------------------------------------------------------------------------------------------ code matching


@pytest.mark.parametrize(
    ("system", "code", "ingredients"),
    [
        ("rxnorm", "17767", ("amlodipine",)),
        ("rxnorm", "161", ("paracetamol",)),
        ("rxnorm", "1049221", ("oxycodone", "paracetamol")),
        ("rxnorm", "748879", ("ethinylestradiol", "levonorgestrel")),
        ("rxnorm", 308136, ("amlodipine",)),
        ("dmd", "318859000", ("lisinopril",)),
        ("dmd", "319283006", ("amlodipine",)),
        ("bnf", "0205051L0AAACAC", ("lisinopril",)),
        ("bnf", "0206020A0", ("amlodipine",)),
        ("bnf", "0205052P0", ("hydrochlorothiazide", "losartan")),
        ("atc", "C08CA01", ("amlodipine",)),
        ("RxNorm", " 17767 ", ("amlodipine",)),
    ],
)
def test_match_code(vocab: DrugVocabulary, system: str, code: str, ingredients: tuple[str, ...]) -> None:
    match = vocab.match_code(system, code)
    assert match is not None
    assert match.matched
    assert match.ingredients == ingredients


def test_unknown_code_returns_none(vocab: DrugVocabulary) -> None:
    assert vocab.match_code("rxnorm", "999999999") is None
    assert vocab.match_code("dmd", "1") is None
    assert vocab.match_code("atc", "J01CR05") is None  # shared by piperacillin and tazobactam: not one drug


def test_unsupported_code_system_raises(vocab: DrugVocabulary) -> None:
    with pytest.raises(ValueError, match="unsupported"):
        vocab.match_code("icd10", "I10")


def test_match_prefers_code_then_text(vocab: DrugVocabulary) -> None:
    assert vocab.match("17767", system="rxnorm").ingredients == ("amlodipine",)
    assert vocab.match("Amlodipine 5mg tablets", system="text").ingredients == ("amlodipine",)


def test_rxnorm_product_table_agrees_with_its_descriptions(vocab: DrugVocabulary) -> None:
    with (DATA_DIR / "rxnorm_products.csv").open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) >= 100
    for row in rows:
        by_code = vocab.match_code("rxnorm", row["code"])
        assert by_code is not None
        assert by_code.ingredients == vocab.match_text(row["description"]).ingredients, row


def test_dmd_and_bnf_tables_agree_with_their_names(vocab: DrugVocabulary) -> None:
    for file_name, system in (("dmd_products.csv", "dmd"), ("bnf_chemicals.csv", "bnf")):
        with (DATA_DIR / file_name).open(encoding="utf-8", newline="") as handle:
            for row in csv.DictReader(handle):
                by_code = vocab.match_code(system, row["code"])
                assert by_code is not None
                assert set(by_code.ingredients) == set(row["ingredients"].split(";")), row
                by_name = vocab.match_text(row["name"])
                assert set(by_code.ingredients) <= set(by_name.ingredients) | {"hydrochlorothiazide"}, row


# ------------------------------------------------------------------------------------------------ data validation


def _copy_data(tmp_path: Path) -> Path:
    target = tmp_path / "data"
    shutil.copytree(DATA_DIR, target)
    return target


def test_class_naming_an_unknown_drug_is_rejected(tmp_path: Path) -> None:
    data = _copy_data(tmp_path)
    path = data / "drug_classes.yaml"
    path.write_text(
        path.read_text(encoding="utf-8") + "\nbroken:\n  description: x\n  source: y\n  members: [nope]\n"
    )
    with pytest.raises(ValueError, match="unknown drug keys"):
        DrugVocabulary.from_files(data)


def test_name_shared_by_two_drugs_is_rejected(tmp_path: Path) -> None:
    data = _copy_data(tmp_path)
    path = data / "drugs.csv"
    path.write_text(
        path.read_text(encoding="utf-8") + "zzdrug,Zzdrug,amlodipine,,2.6.2,C08CA99,,0\n", encoding="utf-8"
    )
    with pytest.raises(ValueError, match="belongs to both"):
        DrugVocabulary.from_files(data)
