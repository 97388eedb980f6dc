"""Sequence symmetry against the truth of the synthetic generator: it plants known prescribing cascades
(``PLANTED_CASCADES``: a new start of the index class is followed, with an excess probability, by the marker drug
within a window); every other pair of drugs has no such mechanism.

One seeded, SMR-enriched cohort of 20,000 patients (older and more multimorbid, so that the rarer index drugs such
as cholinesterase inhibitors have enough users) goes through the real path: generator -> canonical tables in
SQLite -> ``data_access.queries.patterns`` -> ``clinical.sequence_symmetry``. The checks:

1. every planted cascade is found: the class-level adjusted sequence ratio (index class -> marker class) has its
   95 % interval above 1, and the drug-level screen lists at least one signal from a drug of the index class to a
   drug of the marker class, marked as a published cascade when it is one;
2. pairs with no mechanism signal no more often than the intervals imply. "No mechanism" must exclude what the
   generator makes sequential on purpose: the steps of one treatment pathway (NICE NG136: an ACE inhibitor, then a
   calcium-channel blocker, then a thiazide) and chains through a planted cascade (amlodipine -> ramipril ->
   pholcodine). So each medicine slot and acute course of the generator is assigned to a clinical area below, and
   the null pairs are those whose two drugs share no area. Among them, with at least 20 ordered pairs, at most
   5 % + 3 percentage points may show a signal: the 3 points allow for pairs sharing a drug being correlated and
   for what sequence symmetry cannot adjust, a within-person rise of one drug's rate with age and accumulating
   illness (Hallas 1996; Lai ECC et al. Eur J Epidemiol 2017;32:567-82).
"""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest

from clinical.knowledge import load_knowledge
from clinical.sequence_symmetry import SymmetryParameters, sequence_ratio
from data_access.db import make_engine
from data_access.loading import load_frames
from data_access.migrate import upgrade_database
from data_access.queries.patterns import incident_users, pattern_inputs, signal_table
from data_access.queries.scope import Scope
from data_access.sources.synthetic import PLANTED_CASCADES, generate_cohort
from data_access.sources.synthetic.medicines import ACUTE_COURSES, SLOTS

pytestmark = pytest.mark.slow

PATIENTS = 20_000
SEED = 20260401
NOMINAL_FALSE_POSITIVE = 0.05
TOLERANCE = 0.03
# The screen lists pairs with at least 10 ordered pairs (the rarest planted pair, donepezil -> oxybutynin, has
# about 20 in this cohort); the false-positive rate is judged on pairs with at least 20 ("enough incident pairs").
PARAMS = SymmetryParameters(window_days=365, washout_days=365, min_pairs=10)
ENOUGH_PAIRS = 20

# Clinical areas of the generator's medicine slots and acute courses (data_access/sources/synthetic/medicines.py).
# Treatment pathways, co-prescriptions (a PPI with an NSAID, a laxative with an opioid) and the planted cascades
# (with their markers: allopurinol and pholcodine after antihypertensives, bladder drugs after dementia drugs)
# stay within one area.
AREAS = {
    "cardiometabolic": (
        "renin_angiotensin dihydropyridine thiazide mineralocorticoid_antagonist alpha_blocker_antihypertensive "
        "beta_blocker loop_diuretic anticoagulant antiplatelet statin nitrate digoxin metformin diabetes_second_line "
        "diabetes_third_line basal_insulin bolus_insulin heart_failure_sglt2 allopurinol colchicine pholcodine"
    ),
    "respiratory": (
        "reliever_inhaler inhaled_corticosteroid ics_laba_inhaler long_acting_antimuscarinic montelukast mucolytic "
        "oral_corticosteroid prednisolone"
    ),
    "mental_health_neurology": (
        "antidepressant hypnotic anxiolytic antipsychotic lithium cholinesterase_inhibitor memantine antiparkinson "
        "antiepileptic triptan bladder_antimuscarinic mirabegron zopiclone"
    ),
    "pain_musculoskeletal_gi": (
        "paracetamol weak_opioid strong_opioid nsaid gabapentinoid low_dose_amitriptyline dmard folic_acid "
        "bisphosphonate calcium_vitamin_d laxative proton_pump_inhibitor ibuprofen naproxen co-codamol lansoprazole"
    ),
    "infection": (
        "amoxicillin doxycycline clarithromycin nitrofurantoin trimethoprim flucloxacillin phenoxymethylpenicillin "
        "uti_prophylaxis"
    ),
    "other": "glaucoma_drops levothyroxine prostate iron antihistamine vestibular vitamin_b12",
}


def drug_areas() -> dict[str, set[str]]:
    area_of = {key: area for area, keys in AREAS.items() for key in keys.split()}
    sources = [(slot.key, m.ingredients) for slot in SLOTS for m in slot.medicines]
    sources += [(course.key, course.medicine.ingredients) for course in ACUTE_COURSES]
    unassigned = sorted({key for key, _ in sources} - set(area_of))
    assert not unassigned, (
        f"assign the generator's new slots or courses to an area in this test: {unassigned}"
    )
    areas: dict[str, set[str]] = {}
    for key, ingredients in sources:
        for drug in ingredients:
            areas.setdefault(drug, set()).add(area_of[key])
    return areas


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201 - PatternInputs
    frames = generate_cohort(PATIENTS, seed=SEED, enrich_smr=True)
    engine = make_engine(f"sqlite:///{tmp_path_factory.mktemp('planted') / 'planted.sqlite'}")
    upgrade_database(engine)
    load_frames(engine, {table: frames[table] for table in ("practice", "patient", "prescription")})
    try:
        loaded = pattern_inputs(engine, Scope.everything())
    finally:
        engine.dispose()
    assert loaded.study_start == date(
        2021, 1, 1
    )  # the first acute issue: the generator's window starts there
    return loaded


@pytest.fixture(scope="module")
def drug_screen(inputs) -> pl.DataFrame:  # noqa: ANN001
    return signal_table(incident_users(inputs, PARAMS, "drug"), PARAMS, "drug")


@pytest.fixture(scope="module")
def class_incident(inputs) -> pl.DataFrame:  # noqa: ANN001
    return incident_users(inputs, PARAMS, "class")


@pytest.mark.parametrize(
    "cascade", PLANTED_CASCADES, ids=[f"{c.index_class}->{c.marker_class}" for c in PLANTED_CASCADES]
)
def test_every_planted_cascade_is_found(cascade, class_incident, drug_screen) -> None:  # noqa: ANN001
    by_class = sequence_ratio(class_incident, cascade.index_class, cascade.marker_class, PARAMS)
    assert by_class.ci_lower is not None and by_class.ci_lower > 1, by_class
    members = load_knowledge().class_members
    found = drug_screen.filter(
        pl.col("index").is_in(sorted(members[cascade.index_class]))
        & pl.col("marker").is_in(sorted(members[cascade.marker_class]))
        & pl.col("signal")
    )
    assert not found.is_empty(), f"no drug-level signal for {cascade.index_class} -> {cascade.marker_class}"
    assert (
        found["known_cascade"].is_not_null().all()
    )  # each planted pair is a published cascade of cascades.yaml


def test_pairs_without_a_mechanism_signal_at_the_nominal_rate(drug_screen) -> None:  # noqa: ANN001
    areas = drug_areas()
    unrelated = [
        not (areas.get(a, {a}) & areas.get(b, {b}))
        for a, b in drug_screen.select("index", "marker").iter_rows()
    ]
    enough = (drug_screen["n_index_first"] + drug_screen["n_marker_first"] >= ENOUGH_PAIRS).to_list()
    null = drug_screen.filter(
        pl.Series([u and e for u, e in zip(unrelated, enough, strict=True)], dtype=pl.Boolean)
    )
    assert null.height >= 150, "too few unrelated pairs to judge the false-positive rate"
    rate = float(null["signal"].mean())
    assert rate <= NOMINAL_FALSE_POSITIVE + TOLERANCE, (
        f"{rate:.1%} of {null.height} unrelated pairs signal: "
        f"{null.filter(pl.col('signal')).select('index', 'marker', 'n_index_first', 'n_marker_first').rows()}"
    )
