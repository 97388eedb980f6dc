"""A seeded, readable factory of test patients for the dashboard's queries, worklist build and pages.

Tests state each patient they rely on explicitly (``CohortBuilder``); ``add_varied_patients`` adds a seeded crowd
around them when a test needs volume (paging, sorting). Everything here is test data: model versions are named
``test-...`` so nothing built from it can be mistaken for a real model's output.
"""

from __future__ import annotations

import calendar
import datetime as dt
import importlib
import importlib.util
import random
import warnings
from collections import defaultdict
from pathlib import Path
from typing import Any

import polars as pl
from sqlalchemy import Engine

from data_access.loading import bulk_insert
from data_access.worklist_build import ConditionGroups

AS_OF = dt.date(2026, 6, 30)
MODEL_VERSION = "test-model-1"

# Small hand-made vocabulary slices so tests do not depend on the full clinical vocabularies.
TEST_GROUPS = ConditionGroups(
    ltc=frozenset(
        {
            "hypertension",
            "heart_failure",
            "atrial_fibrillation",
            "ckd",
            "type2_diabetes",
            "copd",
            "depression",
            "dementia",
            "osteoarthritis",
            "schizophrenia",
        }
    ),
    mental_health=frozenset({"depression", "schizophrenia", "dementia"}),
    physical_health=frozenset(
        {
            "hypertension",
            "heart_failure",
            "atrial_fibrillation",
            "ckd",
            "type2_diabetes",
            "copd",
            "osteoarthritis",
        }
    ),
)
TEST_RULE_TITLES = {
    "STOPP-v3-B11": "NSAID with heart failure",
    "PINCER-GI_P3A": "NSAID aged 65 or over without gastroprotection",
    "DDI-warfarin-nsaid": "Warfarin with an NSAID",
    "STOPP-v3-D5": "Benzodiazepine for 4 weeks or more",
}

DRUGS = {
    # drug key: (product name, BNF section)
    "ibuprofen": ("Ibuprofen 400mg tablets", "10.1.1"),
    "naproxen": ("Naproxen 500mg tablets", "10.1.1"),
    "ramipril": ("Ramipril 5mg capsules", "2.5.5.1"),
    "amlodipine": ("Amlodipine 5mg tablets", "2.6.2"),
    "furosemide": ("Furosemide 40mg tablets", "2.2.2"),
    "bisoprolol": ("Bisoprolol 2.5mg tablets", "2.4"),
    "warfarin": ("Warfarin 1mg tablets", "2.8.2"),
    "atorvastatin": ("Atorvastatin 20mg tablets", "2.12"),
    "metformin": ("Metformin 500mg tablets", "6.1.2.2"),
    "omeprazole": ("Omeprazole 20mg capsules", "1.3.5"),
    "sertraline": ("Sertraline 50mg tablets", "4.3.3"),
    "diazepam": ("Diazepam 2mg tablets", "4.1.2"),
    "paracetamol": ("Paracetamol 500mg tablets", "4.7.1"),
    "codeine": ("Codeine 30mg tablets", "4.7.2"),
    "salbutamol": ("Salbutamol 100micrograms inhaler", "3.1.1.1"),
    "levothyroxine": ("Levothyroxine 50microgram tablets", "6.2.1"),
    "alendronic_acid": ("Alendronic acid 70mg tablets", "6.6.2"),
    "donepezil": ("Donepezil 5mg tablets", "4.11"),
    "olanzapine": ("Olanzapine 5mg tablets", "4.2.1"),
    "gabapentin": ("Gabapentin 300mg capsules", "4.8.1"),
}


class CohortBuilder:
    """Collects rows per table; ``load`` writes them in one transaction."""

    def __init__(self) -> None:
        self.rows: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self._practices: set[str] = set()

    def practice(self, practice_id: str, name: str | None = None) -> CohortBuilder:
        if practice_id not in self._practices:
            self._practices.add(practice_id)
            self.rows["practice"].append(
                {"id": practice_id, "name": name or f"Practice {practice_id}", "icb": "Test ICB"}
            )
        return self

    def patient(
        self,
        patient_id: str,
        *,
        practice_id: str = "P001",
        birth: tuple[int, int] = (1945, 3),
        sex: str = "F",
        registered_on: dt.date = dt.date(2005, 1, 1),
        died_on: dt.date | None = None,
        deregistered_on: dt.date | None = None,
    ) -> CohortBuilder:
        self.practice(practice_id)
        self.rows["patient"].append(
            {
                "id": patient_id,
                "practice_id": practice_id,
                "birth_year": birth[0],
                "birth_month": birth[1],
                "sex": sex,
                "deprivation_quintile": 3,
                "ethnicity_group": "White",
                "registered_on": registered_on,
                "deregistered_on": deregistered_on,
                "died_on": died_on,
                "source": "test",
            }
        )
        return self

    def condition(self, pid: str, key: str, onset: dt.date, resolved: dt.date | None = None) -> CohortBuilder:
        self.rows["condition"].append(
            {
                "patient_id": pid,
                "code_system": "snomed",
                "code": "0",
                "term": key.replace("_", " ").capitalize(),
                "condition_key": key,
                "onset": onset,
                "resolved": resolved,
            }
        )
        return self

    def prescription(
        self, pid: str, drug: str, start: dt.date, stop: dt.date | None = None, *, repeat: bool = True
    ) -> CohortBuilder:
        name, bnf = DRUGS[drug]
        self.rows["prescription"].append(
            {
                "patient_id": pid,
                "code_system": "text",
                "code": None,
                "name": name,
                "drug_key": drug,
                "ingredients": drug,
                "bnf_section": bnf,
                "atc": None,
                "start": start,
                "stop": stop,
                "dose_text": "One a day",
                "repeat": repeat,
            }
        )
        return self

    def observation(
        self, pid: str, kind: str, value: float | None, on: dt.date, unit: str = ""
    ) -> CohortBuilder:
        self.rows["observation"].append(
            {"patient_id": pid, "type": kind, "value": value, "unit": unit, "date": on}
        )
        return self

    def event(self, pid: str, kind: str, on: dt.date) -> CohortBuilder:
        self.rows["event"].append({"patient_id": pid, "type": kind, "date": on})
        return self

    def flag(
        self,
        pid: str,
        rule_id: str,
        start: dt.date,
        end: dt.date | None = None,
        *,
        drugs: str = "",
        severity: str = "high",
    ) -> CohortBuilder:
        self.rows["flag"].append(
            {
                "patient_id": pid,
                "rule_id": rule_id,
                "start": start,
                "end": end,
                "drugs": drugs,
                "severity": severity,
            }
        )
        return self

    def score(self, pid: str, kind: str, value: float, as_of: dt.date = AS_OF) -> CohortBuilder:
        self.rows["score"].append({"patient_id": pid, "kind": kind, "as_of": as_of, "value": value})
        return self

    def trajectory(
        self,
        pid: str,
        outcome: str,
        risks: list[float],
        *,
        end: dt.date = AS_OF,
        model_version: str = MODEL_VERSION,
        scenario: str = "current",
    ) -> CohortBuilder:
        """Monthly 12-month risks ending on ``end`` (the last value is the current risk)."""
        for i, risk in enumerate(risks):
            months_back = len(risks) - 1 - i
            on = _months_before(end, months_back)
            self.rows["prediction"].append(
                {
                    "patient_id": pid,
                    "as_of": on,
                    "outcome": outcome,
                    "horizon_months": 12,
                    "risk": risk,
                    "lower": max(0.0, risk - 0.04),
                    "upper": min(1.0, risk + 0.04),
                    "model_version": model_version,
                    "scenario": scenario,
                }
            )
        return self

    def explanation(
        self,
        pid: str,
        factor: str,
        contribution: float,
        *,
        outcome: str = "emergency_admission",
        as_of: dt.date = AS_OF,
        model_version: str = MODEL_VERSION,
    ) -> CohortBuilder:
        self.rows["explanation"].append(
            {
                "patient_id": pid,
                "as_of": as_of,
                "outcome": outcome,
                "factor": factor,
                "contribution": contribution,
                "model_version": model_version,
            }
        )
        return self

    def review(
        self, pid: str, status: str, at: dt.datetime, *, snooze_until: dt.date | None = None
    ) -> CohortBuilder:
        self.rows["review"].append(
            {
                "patient_id": pid,
                "status": status,
                "reviewer": "test-gp",
                "outcome": None,
                "at": at,
                "snooze_until": snooze_until,
                "next_due": None,
            }
        )
        return self

    def model_run(self, version: str = MODEL_VERSION) -> CohortBuilder:
        self.rows["model_run"].append(
            {
                "version": version,
                "created_at": dt.datetime(2026, 7, 1, 9, 0),
                "checkpoint_path": None,
                "metrics_json": None,
                "card_json": None,
                "active": True,
            }
        )
        return self

    def load(self, engine: Engine) -> None:
        order = (
            "practice",
            "patient",
            "condition",
            "prescription",
            "observation",
            "event",
            "flag",
            "score",
            "prediction",
            "explanation",
            "review",
            "model_run",
        )
        with engine.begin() as connection:
            for table in order:
                if self.rows.get(table):
                    bulk_insert(connection, table, pl.DataFrame(self.rows[table], infer_schema_length=None))


def _months_before(day: dt.date, months: int) -> dt.date:
    year, month = divmod(day.year * 12 + day.month - 1 - months, 12)
    return dt.date(year, month + 1, min(day.day, calendar.monthrange(year, month + 1)[1]))


def add_varied_patients(
    builder: CohortBuilder, count: int, *, seed: int = 1, practices: tuple[str, ...] = ("P001", "P002")
) -> list[str]:
    """Add ``count`` seeded patients with varied medicines, conditions, flags, scores and risk trajectories."""
    rng = random.Random(seed)
    ids = []
    condition_keys = sorted(TEST_GROUPS.ltc)
    drug_keys = sorted(DRUGS)
    for i in range(count):
        pid = f"V{seed:02d}{i:05d}"
        ids.append(pid)
        builder.patient(
            pid,
            practice_id=practices[i % len(practices)],
            birth=(rng.randint(1930, 1990), rng.randint(1, 12)),
            sex=rng.choice("FM"),
            registered_on=dt.date(rng.randint(2000, 2020), rng.randint(1, 12), 1),
        )
        for key in rng.sample(condition_keys, rng.randint(0, 6)):
            builder.condition(pid, key, dt.date(rng.randint(2005, 2024), rng.randint(1, 12), 1))
        for drug in rng.sample(drug_keys, rng.randint(0, 12)):
            start = dt.date(rng.randint(2015, 2026), rng.randint(1, 6), rng.randint(1, 28))
            stop = None if rng.random() < 0.8 else start + dt.timedelta(days=rng.randint(30, 400))
            builder.prescription(pid, drug, start, stop, repeat=rng.random() < 0.85)
        builder.observation(
            pid, "egfr", rng.randint(25, 95), dt.date(2026, rng.randint(1, 6), 10), "mL/min/1.73m2"
        )
        if rng.random() < 0.4:
            rule = rng.choice(sorted(TEST_RULE_TITLES))
            builder.flag(
                pid,
                rule,
                dt.date(2026, rng.randint(1, 6), 1),
                severity=rng.choice(("high", "moderate", "low")),
            )
        if rng.random() < 0.3:
            builder.event(pid, "emergency_admission", dt.date(2026, rng.randint(1, 6), rng.randint(1, 28)))
        if rng.random() < 0.5:
            builder.event(pid, "medication_review", dt.date(rng.randint(2023, 2026), rng.randint(1, 6), 15))
        efi = round(rng.random() * 0.5, 3)
        builder.score(pid, "efi", efi).score(pid, "acb", rng.randint(0, 5)).score(
            pid, "cms", round(rng.random() * 4, 2)
        )
        base = rng.random() * 0.3
        slope = (rng.random() - 0.3) * 0.02
        for outcome in ("emergency_admission", "fall_fracture", "medication_harm", "death"):
            risks = [min(0.95, max(0.01, base + slope * m + rng.random() * 0.01)) for m in range(13)]
            builder.trajectory(pid, outcome, risks)
        builder.explanation(pid, f"drug:{rng.choice(drug_keys)}", round(rng.random() * 0.1, 4))
    return ids


def pipeline_available() -> bool:
    """Whether the demo pipeline and its model steps are installed (they landed in stages)."""
    try:
        synthetic = importlib.import_module("data_access.sources.synthetic")
    except ImportError:
        return False
    return hasattr(synthetic, "generate_cohort") and all(
        importlib.util.find_spec(m) for m in ("models.training", "models.scoring")
    )


def build_demo_cohort(engine: Engine, model_dir: Path, *, patients: int = 300, seed: int = 20261201) -> str:
    """A small demo database built with the real pipeline (synthetic cohort → flags and scores → model, 1 epoch →
    predictions → worklist); returns 'pipeline', or 'factory' where the pipeline is not installed and the seeded
    factory above stands in."""
    if pipeline_available():
        from data_access.demo import build_demo_database

        with warnings.catch_warnings():
            # The fixture only needs the cohort; the pipeline's own warning hygiene (third-party deprecations in
            # torch_geometric, LightGBM notices) is the business of the pipeline's tests.
            warnings.simplefilter("ignore")
            build_demo_database(engine, patients=patients, seed=seed, epochs=1, model_dir=model_dir)
        return "pipeline"
    from data_access.worklist_build import refresh_worklist

    builder = CohortBuilder().model_run()
    add_varied_patients(builder, patients, seed=7, practices=("P001", "P002", "P003"))
    builder.load(engine)
    refresh_worklist(engine, as_of=AS_OF, groups=TEST_GROUPS, rule_titles=TEST_RULE_TITLES)
    return "factory"
