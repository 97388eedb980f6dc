"""Random but clinically shaped canonical frames, for benchmarking and testing the population path.

This is NOT the project's synthetic cohort (``data_access/sources``; ``dynairx synth``), which models risk and
outcomes. It only needs to exercise the engine the way real primary-care histories do: older patients with
several long-term conditions, repeat prescriptions that start, stop and switch over five years, acute courses
(antibiotics, NSAIDs), periodic blood tests, falls and admissions. Nothing here is presented as real data.
"""

from __future__ import annotations

import random
from datetime import date, timedelta

import polars as pl

# Condition -> medicines typically prescribed for it (repeat courses), by drug key.
_TREATMENTS: dict[str, list[str]] = {
    "hypertension": ["ramipril", "amlodipine", "bendroflumethiazide", "losartan", "indapamide", "doxazosin"],
    "atrial_fibrillation": ["apixaban", "warfarin", "bisoprolol", "digoxin", "rivaroxaban", "diltiazem"],
    "heart_failure": ["furosemide", "ramipril", "bisoprolol", "spironolactone", "sacubitril"],
    "ischaemic_heart_disease": [
        "aspirin",
        "atorvastatin",
        "clopidogrel",
        "glyceryl trinitrate",
        "simvastatin",
    ],
    "type2_diabetes": ["metformin", "gliclazide", "dapagliflozin", "sitagliptin", "insulin glargine"],
    "depression": ["sertraline", "citalopram", "mirtazapine", "amitriptyline", "venlafaxine"],
    "chronic_pain": ["ibuprofen", "naproxen", "codeine", "tramadol", "gabapentin", "pregabalin", "morphine"],
    "osteoarthritis": ["paracetamol", "ibuprofen", "diclofenac", "codeine"],
    "asthma": ["salbutamol", "beclometasone", "montelukast"],
    "copd": ["tiotropium", "salbutamol", "fluticasone", "carbocisteine"],
    "dementia": ["donepezil", "memantine", "quetiapine"],
    "insomnia": ["zopiclone", "temazepam", "promethazine"],
    "gord": ["omeprazole", "lansoprazole", "ranitidine"],
    "rheumatoid_arthritis": ["methotrexate", "folic acid", "hydroxychloroquine", "prednisolone"],
    "bipolar_disorder": ["lithium", "olanzapine"],
    "hypothyroidism": ["levothyroxine"],
    "osteoporosis": ["alendronic acid", "colecalciferol"],
    "urinary_incontinence": ["oxybutynin", "solifenacin", "mirabegron"],
    "ckd": ["furosemide", "ramipril"],
    "epilepsy": ["lamotrigine", "levetiracetam", "carbamazepine"],
    "anxiety": ["sertraline", "diazepam", "propranolol"],
    "gout": ["allopurinol", "colchicine"],
}
_ACUTE = [
    "amoxicillin",
    "clarithromycin",
    "trimethoprim",
    "nitrofurantoin",
    "doxycycline",
    "ibuprofen",
    "naproxen",
    "prednisolone",
    "codeine",
    "fluconazole",
    "ciprofloxacin",
    "metoclopramide",
]
_LAB_RANGES = {
    "egfr": (25.0, 95.0),
    "creatinine": (60.0, 180.0),
    "potassium": (3.4, 5.8),
    "sodium": (130.0, 145.0),
    "hba1c": (38.0, 80.0),
    "systolic_bp": (110.0, 170.0),
    "haemoglobin": (100.0, 160.0),
    "alt": (10.0, 60.0),
}


def random_population(n: int, as_of: date, seed: int = 1, years: int = 5) -> dict[str, pl.DataFrame]:
    """Canonical frames (patient, condition, prescription, observation, event, social_care) for ``n`` patients."""
    rng = random.Random(seed)
    window_start = as_of - timedelta(days=365 * years)
    span = (as_of - window_start).days
    tables: dict[str, list[dict]] = {
        k: [] for k in ("patient", "condition", "prescription", "observation", "event", "social_care")
    }
    conditions = list(_TREATMENTS)
    for i in range(n):
        pid = f"P{i:07d}"
        age = min(100, max(18, int(rng.triangular(18, 100, 78))))
        birth_year = as_of.year - age
        tables["patient"].append(
            {
                "id": pid,
                "birth_year": birth_year,
                "birth_month": rng.randint(1, 12),
                "sex": rng.choice("FM"),
                "died_on": None,
                "deregistered_on": None,
            }
        )
        n_conditions = min(len(conditions), max(0, int(rng.gauss(age / 20, 1.5))))
        for key in rng.sample(conditions, n_conditions):
            onset = window_start + timedelta(days=rng.randint(-3650, span))
            resolved = None if rng.random() > 0.05 else onset + timedelta(days=rng.randint(30, 900))
            tables["condition"].append(
                {"patient_id": pid, "condition_key": key, "onset": onset, "resolved": resolved}
            )
            for drug in rng.sample(_TREATMENTS[key], min(len(_TREATMENTS[key]), rng.randint(1, 3))):
                _add_courses(tables["prescription"], rng, pid, drug, max(onset, window_start), as_of)
        for _ in range(rng.randint(0, 4)):
            start = window_start + timedelta(days=rng.randint(0, span))
            drug = rng.choice(_ACUTE)
            tables["prescription"].append(
                _rx(pid, drug, start, start + timedelta(days=rng.choice((3, 5, 7, 14))))
            )
        for name, (low, high) in _LAB_RANGES.items():
            if rng.random() < (0.8 if name in ("egfr", "creatinine", "potassium", "sodium") else 0.35):
                day = window_start + timedelta(days=rng.randint(0, 200))
                while day <= as_of:
                    value = None if rng.random() < 0.05 else round(rng.uniform(low, high), 1)
                    tables["observation"].append(
                        {"patient_id": pid, "type": name, "value": value, "date": day}
                    )
                    day += timedelta(days=rng.randint(90, 400))
        for event_type, rate in (
            ("fall", age / 400),
            ("emergency_admission", age / 300),
            ("fracture", age / 2000),
            ("gi_bleed", 0.005),
            ("aki", 0.01),
        ):
            for _ in range(_poisson(rng, rate * years)):
                day = window_start + timedelta(days=rng.randint(0, span))
                tables["event"].append({"patient_id": pid, "type": event_type, "date": day})
        if age >= 80 and rng.random() < 0.12:
            start = window_start + timedelta(days=rng.randint(0, span))
            tables["social_care"].append(
                {
                    "patient_id": pid,
                    "kind": rng.choice(("care_home", "home_care", "lives_alone")),
                    "start": start,
                    "end": None,
                }
            )
    return _frames(tables)


def _add_courses(
    rows: list[dict], rng: random.Random, pid: str, drug: str, earliest: date, as_of: date
) -> None:
    """A repeat medicine as one to three courses with gaps, the last one often ongoing."""
    start = earliest + timedelta(days=rng.randint(0, 120))
    for _ in range(rng.randint(1, 3)):
        if start > as_of:
            return
        length = rng.randint(28, 900)
        stop = start + timedelta(days=length)
        if stop >= as_of or rng.random() < 0.3:
            rows.append(_rx(pid, drug, start, None))
            return
        rows.append(_rx(pid, drug, start, stop))
        start = stop + timedelta(days=rng.randint(1, 365))


def _rx(pid: str, drug: str, start: date, stop: date | None) -> dict:
    return {
        "patient_id": pid,
        "drug_key": drug,
        "ingredients": drug,
        "name": drug,
        "start": start,
        "stop": stop,
    }


def _poisson(rng: random.Random, mean: float) -> int:
    count, threshold, product = 0, pow(2.718281828459045, -mean), rng.random()
    while product > threshold:
        count += 1
        product *= rng.random()
    return count


def _frames(tables: dict[str, list[dict]]) -> dict[str, pl.DataFrame]:
    schemas = {
        "patient": {
            "id": pl.Utf8,
            "birth_year": pl.Int64,
            "birth_month": pl.Int64,
            "sex": pl.Utf8,
            "died_on": pl.Date,
            "deregistered_on": pl.Date,
        },
        "condition": {"patient_id": pl.Utf8, "condition_key": pl.Utf8, "onset": pl.Date, "resolved": pl.Date},
        "prescription": {
            "patient_id": pl.Utf8,
            "drug_key": pl.Utf8,
            "ingredients": pl.Utf8,
            "name": pl.Utf8,
            "start": pl.Date,
            "stop": pl.Date,
        },
        "observation": {"patient_id": pl.Utf8, "type": pl.Utf8, "value": pl.Float64, "date": pl.Date},
        "event": {"patient_id": pl.Utf8, "type": pl.Utf8, "date": pl.Date},
        "social_care": {"patient_id": pl.Utf8, "kind": pl.Utf8, "start": pl.Date, "end": pl.Date},
    }
    return {
        name: pl.DataFrame(rows, schema=schemas[name]) if rows else pl.DataFrame(schema=schemas[name])
        for name, rows in tables.items()
    }
