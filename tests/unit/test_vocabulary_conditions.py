"""Condition vocabulary: SNOMED CT ids, names, groups, Cambridge Multimorbidity Score and eFI deficits."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from clinical.codes import verhoeff_valid
from clinical.vocabulary import DATA_DIR, ConditionVocabulary


@pytest.fixture(scope="module")
def vocab() -> ConditionVocabulary:
    return ConditionVocabulary.load()


def test_verhoeff_helper() -> None:
    assert verhoeff_valid("38341003")  # hypertensive disorder
    assert not verhoeff_valid("38341004")
    # Synthea emits this id for "Unhealthy alcohol drinking behavior"; it is not a valid SCTID.
    assert not verhoeff_valid("10939881000119104")


# ------------------------------------------------------------------------------------------------ data integrity


def test_counts(vocab: ConditionVocabulary) -> None:
    assert len(vocab.keys) >= 50
    assert len(vocab.long_term_conditions) >= 40


def test_every_snomed_id_is_well_formed_and_unique(vocab: ConditionVocabulary) -> None:
    seen: dict[str, str] = {}
    for key in vocab.keys:
        condition = vocab.condition(key)
        assert condition.snomed_codes, key
        for code in condition.snomed_codes:
            assert 6 <= len(code) <= 18 and code.isdigit(), (key, code)
            assert code[-3] in "01", (key, code)  # partition identifier: concept
            assert verhoeff_valid(code), (key, code)
            assert seen.setdefault(code, key) == key, (key, code, seen[code])


def test_every_condition_is_mental_or_physical_or_social(vocab: ConditionVocabulary) -> None:
    for key in vocab.keys:
        groups = vocab.condition(key).groups
        assert groups & {"mental_health", "physical_health", "social"}, key
        assert not {"mental_health", "physical_health"} <= groups, key


REQUIRED_CONDITIONS = """
hypertension atrial_fibrillation heart_failure ischaemic_heart_disease myocardial_infarction stroke_tia
peripheral_arterial_disease venous_thromboembolism bradycardia heart_block long_qt orthostatic_hypotension
hyperlipidaemia diabetes type1_diabetes type2_diabetes prediabetes obesity hypothyroidism hyperthyroidism
hyperkalaemia hyponatraemia ckd prostatic_hyperplasia urinary_retention urinary_incontinence copd asthma peptic_ulcer
gi_bleed_history gord chronic_constipation inflammatory_bowel_disease chronic_liver_disease dementia delirium
parkinsons epilepsy multiple_sclerosis migraine glaucoma visual_impairment hearing_impairment osteoporosis
fracture_history falls_history osteoarthritis rheumatoid_arthritis gout chronic_pain depression anxiety schizophrenia
bipolar_disorder alcohol_misuse learning_disability insomnia cancer anaemia
""".split()


@pytest.mark.parametrize("key", REQUIRED_CONDITIONS)
def test_required_condition_exists(vocab: ConditionVocabulary, key: str) -> None:
    assert vocab.condition(key).key == key


@pytest.mark.parametrize(
    ("code", "key"),
    [
        ("38341003", "hypertension"),
        ("59621000", "hypertension"),
        ("44054006", "type2_diabetes"),
        ("49436004", "atrial_fibrillation"),
        ("88805009", "heart_failure"),
        ("84114007", "heart_failure"),
        ("431855005", "ckd_stage_1_2"),
        ("431856006", "ckd_stage_1_2"),
        ("433144002", "ckd"),
        ("431857002", "ckd"),
        ("46177005", "ckd"),
        ("185086009", "copd"),
        ("195967001", "asthma"),
        ("35489007", "depression"),
        ("370143000", "depression"),
        ("26929004", "dementia"),
        ("230265002", "dementia"),
        ("69896004", "rheumatoid_arthritis"),
        ("239873007", "osteoarthritis"),
        ("64859006", "osteoporosis"),
        ("90560007", "gout"),
        ("55822004", "hyperlipidaemia"),
        ("714628002", "prediabetes"),
        ("15777000", "prediabetes"),
        ("162864005", "obesity"),
        ("399211009", "myocardial_infarction"),
        ("22298006", "myocardial_infarction"),
        ("53741008", "ischaemic_heart_disease"),
        ("230690007", "stroke_tia"),
        ("197480006", "anxiety"),
        ("84757009", "epilepsy"),
        ("443165006", "fragility_fracture"),
        (38341003, "hypertension"),
    ],
)
def test_match_snomed(vocab: ConditionVocabulary, code: str, key: str) -> None:
    condition = vocab.match(code)
    assert condition is not None
    assert condition.key == key


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("CKD", "ckd"),
        ("chronic kidney disease", "ckd"),
        ("high blood pressure", "hypertension"),
        ("AF", "atrial_fibrillation"),
        ("COPD", "copd"),
        ("T2DM", "type2_diabetes"),
        ("Type 2 diabetes mellitus", "type2_diabetes"),
        ("heart_failure", "heart_failure"),
        ("Alzheimer's disease", "dementia"),
        ("BPH", "prostatic_hyperplasia"),
        ("Ischaemic heart disease", "ischaemic_heart_disease"),
        ("Ischemic heart disease (disorder)", "ischaemic_heart_disease"),
        ("Chronic congestive heart failure (disorder)", "heart_failure"),
        ("Body mass index 30+ - obesity (finding)", "obesity"),
        ("Localized  primary osteoarthritis of the hand", "osteoarthritis"),
        ("Severe anxiety (panic) (finding", "anxiety"),
        ("History of myocardial infarction (situation)", "myocardial_infarction"),
        ("Unhealthy alcohol drinking behavior (finding)", "alcohol_misuse"),
    ],
)
def test_match_name(vocab: ConditionVocabulary, name: str, key: str) -> None:
    condition = vocab.match(name)
    assert condition is not None
    assert condition.key == key


@pytest.mark.parametrize(
    "value", ["Acute viral pharyngitis (disorder)", "195662009", "", None, "Unicornitis"]
)
def test_unknown_condition_is_none(vocab: ConditionVocabulary, value: str | None) -> None:
    assert vocab.match(value) is None


def test_condition_record(vocab: ConditionVocabulary) -> None:
    condition = vocab.condition("heart_failure")
    assert condition.term == "Heart failure"
    assert "84114007" in condition.snomed_codes
    assert condition.is_ltc
    assert not condition.is_mental_health
    assert vocab.condition("depression").is_mental_health
    assert not vocab.condition("prediabetes").is_ltc
    assert not vocab.condition("obesity").is_ltc
    assert not vocab.condition("ckd_stage_1_2").is_ltc
    assert vocab.get("unicornitis") is None
    with pytest.raises(KeyError):
        vocab.condition("unicornitis")


def test_groups(vocab: ConditionVocabulary) -> None:
    assert {"type1_diabetes", "type2_diabetes", "diabetes"} <= vocab.in_group("diabetes")
    assert {"schizophrenia", "bipolar_disorder"} <= vocab.in_group("serious_mental_illness")
    assert {"ischaemic_heart_disease", "myocardial_infarction"} <= vocab.in_group("ischaemic_heart_disease")
    assert vocab.in_group("prostatic_hyperplasia") == vocab.in_group("bph")
    assert {"depression", "anxiety", "dementia"} <= vocab.in_group("mental_health")
    assert "hypertension" in vocab.in_group("physical_health")
    assert vocab.in_group("ltc") == vocab.long_term_conditions
    assert vocab.in_group("gout") == {"gout"}
    with pytest.raises(KeyError):
        vocab.in_group("no_such_group")


def test_load_is_cached_and_fast() -> None:
    assert ConditionVocabulary.load() is ConditionVocabulary.load()
    timings = []
    for _ in range(3):
        started = time.perf_counter()
        ConditionVocabulary.from_file(DATA_DIR / "conditions.yaml")
        timings.append(time.perf_counter() - started)
    assert min(timings) < 0.3


# ------------------------------------------------------------------------------------------------ scores


def test_cambridge_multimorbidity_score_general_weights(vocab: ConditionVocabulary) -> None:
    # Payne et al. CMAJ 2020;192:E107-14, 20-condition general-outcome score.
    weights = {item.name: item.weight for item in vocab.cms_conditions}
    assert weights == {
        "alcohol_problems": 0.65,
        "anxiety_depression": 0.50,
        "atrial_fibrillation": 1.34,
        "cancer": 1.53,
        "chronic_kidney_disease": 0.53,
        "connective_tissue_disorder": 0.43,
        "copd": 1.46,
        "coronary_heart_disease": 0.49,
        "dementia": 2.50,
        "diabetes": 0.75,
        "epilepsy": 0.92,
        "hearing_loss": 0.09,
        "heart_failure": 1.18,
        "irritable_bowel_syndrome": 0.21,
        "schizophrenia_bipolar": 0.64,
        "stroke_tia": 0.80,
        "asthma": 0.19,
        "hypertension": 0.08,
        "constipation": 1.12,
        "painful_condition": 0.92,
    }
    assert "Payne" in vocab.cms_source
    for item in vocab.cms_conditions:
        assert item.condition_keys <= vocab.keys
        assert item.condition_keys <= vocab.long_term_conditions, item.name


def test_efi_has_the_36_clegg_deficits(vocab: ConditionVocabulary) -> None:
    names = {deficit.name for deficit in vocab.efi_deficits}
    assert len(vocab.efi_deficits) == 36
    assert {
        "activity_limitation",
        "anaemia_haematinic_deficiency",
        "falls",
        "fragility_fracture",
        "polypharmacy",
        "requirement_for_care",
        "social_vulnerability",
        "weight_loss_anorexia",
    } <= names
    for deficit in vocab.efi_deficits:
        assert deficit.condition_keys <= vocab.keys
    assert [name for name, _ in vocab.efi_categories] == ["fit", "mild", "moderate"]
    assert [bound for _, bound in vocab.efi_categories] == [0.12, 0.24, 0.36]
    assert "Clegg" in vocab.efi_source


# ------------------------------------------------------------------------------------------------ data validation


def test_duplicate_snomed_id_is_rejected(tmp_path: Path) -> None:
    target = tmp_path / "conditions.yaml"
    shutil.copyfile(DATA_DIR / "conditions.yaml", target)
    text = target.read_text(encoding="utf-8").replace(
        'snomed: ["195967001", "233678006"]', 'snomed: ["195967001", "233678006", "38341003"]'
    )
    target.write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match="38341003"):
        ConditionVocabulary.from_file(target)
