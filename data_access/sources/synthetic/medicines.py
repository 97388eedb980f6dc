"""What the synthetic practices prescribe: therapy slots, the medicines that can fill them, products and doses.

A *slot* is one line of therapy that holds at most one medicine at a time (e.g. the renin-angiotensin blocker of
a hypertensive patient); starts, stops, switches within the slot and dose changes are what the prescription table
records. When and for whom a slot starts is decided in ``prescribing.py`` (indications follow NICE pathways);
this module only lists the medicines, their products (dm+d-style names) and dose steps, and the per-slot
monthly rates. Drug keys are those of clinical/data/drugs.csv; names, BNF sections and ATC codes come from the
drug vocabulary when the frames are built.

Rates are monthly probabilities: ``stop`` (discontinuation), ``switch`` (to another medicine of the slot) and
``titrate`` (one dose step, up with probability ``titrate_up``). When a slot starts, and the share of indicated
patients already treated at the start of the window, are set by the indication rules of ``prescribing.py``
(treated shares approximate NHS Business Services Authority prescribing data and QOF 2022-23 treatment
indicators, e.g. anticoagulation of AF with CHA2DS2-VASc >= 2 about 85-90%, statins in CVD about 80%; rounded
approximations, not estimates for any population).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Dose:
    product: str
    """Product description as a GP system shows it (dm+d virtual product style)."""
    text: str
    """Dosage instruction (the canonical ``dose_text``)."""


@dataclass(frozen=True)
class Medicine:
    ingredients: tuple[str, ...]
    """Drug keys; the first is the primary ingredient (``drug_key``)."""
    doses: tuple[Dose, ...]
    """Dose steps from lowest to highest; a dose change moves one step."""
    weight: float = 1.0
    """Relative choice weight within the slot (before patient-specific adjustments)."""
    start_dose: int = 0
    tag: str = ""
    """Group tag used to avoid two medicines of the same group in different slots (e.g. two SGLT2 inhibitors)."""

    @property
    def drug(self) -> str:
        return self.ingredients[0]


@dataclass(frozen=True)
class Slot:
    key: str
    medicines: tuple[Medicine, ...]
    stop: float
    switch: float = 0.0
    titrate: float = 0.0
    titrate_up: float = 0.75
    companions: tuple[tuple[str, float], ...] = field(default_factory=tuple)
    """(slot, probability): co-prescribed on the same day when this slot starts (e.g. PPI with an NSAID)."""
    replaces: tuple[str, ...] = ()
    """Slots whose medicine this one replaces when it starts (e.g. an ICS/LABA inhaler replaces the ICS)."""


def _d(product: str, text: str) -> Dose:
    return Dose(product, text)


def _m(
    ingredients: str | tuple[str, ...], *doses: Dose, weight: float = 1.0, start_dose: int = 0, tag: str = ""
) -> Medicine:
    keys = (ingredients,) if isinstance(ingredients, str) else ingredients
    return Medicine(ingredients=keys, doses=doses, weight=weight, start_dose=start_dose, tag=tag)


def _once(product: str, what: str = "tablet") -> Dose:
    return _d(product, f"One {what} once daily")


SLOTS: tuple[Slot, ...] = (
    # ------------------------------------------------------------------ cardiovascular (NICE NG136, NG106, NG196)
    Slot(
        "renin_angiotensin",
        (
            _m(
                "ramipril",
                _once("Ramipril 2.5mg capsules", "capsule"),
                _once("Ramipril 5mg capsules", "capsule"),
                _once("Ramipril 10mg capsules", "capsule"),
                weight=0.42,
                tag="ace_inhibitor",
            ),
            _m(
                "lisinopril",
                _once("Lisinopril 5mg tablets"),
                _once("Lisinopril 10mg tablets"),
                _once("Lisinopril 20mg tablets"),
                weight=0.15,
                tag="ace_inhibitor",
            ),
            _m(
                "perindopril",
                _once("Perindopril erbumine 2mg tablets"),
                _once("Perindopril erbumine 4mg tablets"),
                _once("Perindopril erbumine 8mg tablets"),
                weight=0.05,
                tag="ace_inhibitor",
            ),
            _m(
                "losartan",
                _once("Losartan 25mg tablets"),
                _once("Losartan 50mg tablets"),
                _once("Losartan 100mg tablets"),
                weight=0.22,
                start_dose=1,
                tag="arb",
            ),
            _m(
                "candesartan",
                _once("Candesartan 4mg tablets"),
                _once("Candesartan 8mg tablets"),
                _once("Candesartan 16mg tablets"),
                weight=0.16,
                start_dose=1,
                tag="arb",
            ),
        ),
        stop=0.004,
        switch=0.006,
        titrate=0.02,
    ),
    Slot(
        "dihydropyridine",
        (
            _m("amlodipine", _once("Amlodipine 5mg tablets"), _once("Amlodipine 10mg tablets"), weight=0.85),
            _m(
                "felodipine",
                _once("Felodipine 5mg modified-release tablets"),
                _once("Felodipine 10mg modified-release tablets"),
                weight=0.06,
            ),
            _m(
                "lercanidipine",
                _once("Lercanidipine 10mg tablets"),
                _once("Lercanidipine 20mg tablets"),
                weight=0.09,
            ),
        ),
        stop=0.005,
        switch=0.002,
        titrate=0.02,
    ),
    Slot(
        "thiazide",
        (
            _m("indapamide", _d("Indapamide 2.5mg tablets", "One tablet each morning"), weight=0.7),
            _m(
                "bendroflumethiazide",
                _d("Bendroflumethiazide 2.5mg tablets", "One tablet each morning"),
                weight=0.3,
            ),
        ),
        stop=0.005,
        switch=0.001,
    ),
    Slot(
        "mineralocorticoid_antagonist",
        (
            _m(
                "spironolactone",
                _once("Spironolactone 25mg tablets"),
                _once("Spironolactone 50mg tablets"),
                weight=0.92,
            ),
            _m("eplerenone", _once("Eplerenone 25mg tablets"), _once("Eplerenone 50mg tablets"), weight=0.08),
        ),
        stop=0.006,
        titrate=0.01,
    ),
    Slot(
        "alpha_blocker_antihypertensive",
        (
            _m(
                "doxazosin",
                _once("Doxazosin 1mg tablets"),
                _once("Doxazosin 2mg tablets"),
                _once("Doxazosin 4mg tablets"),
            ),
        ),
        stop=0.006,
        titrate=0.02,
    ),
    Slot(
        "beta_blocker",
        (
            _m(
                "bisoprolol",
                _once("Bisoprolol 1.25mg tablets"),
                _once("Bisoprolol 2.5mg tablets"),
                _once("Bisoprolol 5mg tablets"),
                _once("Bisoprolol 10mg tablets"),
                weight=0.8,
                start_dose=1,
            ),
            _m("atenolol", _once("Atenolol 25mg tablets"), _once("Atenolol 50mg tablets"), weight=0.15),
            _m("nebivolol", _once("Nebivolol 2.5mg tablets"), _once("Nebivolol 5mg tablets"), weight=0.05),
        ),
        stop=0.003,
        titrate=0.02,
    ),
    Slot(
        "loop_diuretic",
        (
            _m(
                "furosemide",
                _d("Furosemide 20mg tablets", "One tablet each morning"),
                _d("Furosemide 40mg tablets", "One tablet each morning"),
                _d("Furosemide 40mg tablets", "Two tablets each morning"),
                weight=0.85,
                start_dose=1,
            ),
            _m(
                "bumetanide",
                _d("Bumetanide 1mg tablets", "One tablet each morning"),
                _d("Bumetanide 1mg tablets", "Two tablets each morning"),
                weight=0.15,
            ),
        ),
        stop=0.006,
        titrate=0.02,
        titrate_up=0.6,
    ),
    Slot(
        "anticoagulant",
        (
            _m(
                "apixaban",
                _d("Apixaban 2.5mg tablets", "One tablet twice daily"),
                _d("Apixaban 5mg tablets", "One tablet twice daily"),
                weight=0.45,
                start_dose=1,
                tag="anticoagulant",
            ),
            _m(
                "edoxaban",
                _once("Edoxaban 30mg tablets"),
                _once("Edoxaban 60mg tablets"),
                weight=0.2,
                start_dose=1,
                tag="anticoagulant",
            ),
            _m(
                "rivaroxaban",
                _d("Rivaroxaban 15mg tablets", "One tablet once daily with food"),
                _d("Rivaroxaban 20mg tablets", "One tablet once daily with food"),
                weight=0.2,
                start_dose=1,
                tag="anticoagulant",
            ),
            _m(
                "warfarin",
                _d("Warfarin 1mg tablets", "As directed by the anticoagulant clinic (INR target 2.5)"),
                weight=0.15,
                tag="anticoagulant",
            ),
        ),
        stop=0.002,
        switch=0.002,
    ),
    Slot(
        "antiplatelet",
        (
            _m("aspirin", _d("Aspirin 75mg dispersible tablets", "One tablet once daily"), weight=0.5),
            _m("clopidogrel", _once("Clopidogrel 75mg tablets"), weight=0.5),
        ),
        stop=0.003,
        switch=0.001,
    ),
    Slot(
        "statin",
        (
            _m(
                "atorvastatin",
                _d("Atorvastatin 10mg tablets", "One tablet at night"),
                _d("Atorvastatin 20mg tablets", "One tablet at night"),
                _d("Atorvastatin 40mg tablets", "One tablet at night"),
                _d("Atorvastatin 80mg tablets", "One tablet at night"),
                weight=0.8,
                start_dose=1,
            ),
            _m(
                "simvastatin",
                _d("Simvastatin 20mg tablets", "One tablet at night"),
                _d("Simvastatin 40mg tablets", "One tablet at night"),
                weight=0.12,
                start_dose=1,
            ),
            _m(
                "rosuvastatin",
                _once("Rosuvastatin 5mg tablets"),
                _once("Rosuvastatin 10mg tablets"),
                weight=0.08,
            ),
        ),
        stop=0.006,
        switch=0.003,
        titrate=0.01,
    ),
    Slot(
        "nitrate",
        (
            _m(
                "glyceryl trinitrate",
                _d(
                    "Glyceryl trinitrate 400micrograms/dose pump sublingual spray",
                    "One or two sprays under the tongue when required for chest pain",
                ),
            ),
        ),
        stop=0.004,
    ),
    Slot(
        "digoxin",
        (_m("digoxin", _once("Digoxin 62.5microgram tablets"), _once("Digoxin 125microgram tablets")),),
        stop=0.004,
        titrate=0.01,
    ),
    # ------------------------------------------------------------------ diabetes (NICE NG28, NG17)
    Slot(
        "metformin",
        (
            _m(
                "metformin",
                _d("Metformin 500mg tablets", "One tablet twice daily with meals"),
                _d("Metformin 500mg tablets", "Two tablets twice daily with meals"),
            ),
        ),
        stop=0.003,
        titrate=0.02,
    ),
    Slot(
        "diabetes_second_line",
        (
            _m(
                "gliclazide",
                _d("Gliclazide 40mg tablets", "One tablet twice daily with meals"),
                _d("Gliclazide 80mg tablets", "One tablet twice daily with meals"),
                weight=0.30,
                tag="sulfonylurea",
            ),
            _m("sitagliptin", _once("Sitagliptin 100mg tablets"), weight=0.20, tag="dpp4_inhibitor"),
            _m("linagliptin", _once("Linagliptin 5mg tablets"), weight=0.08, tag="dpp4_inhibitor"),
            _m("alogliptin", _once("Alogliptin 25mg tablets"), weight=0.07, tag="dpp4_inhibitor"),
            _m(
                "empagliflozin",
                _once("Empagliflozin 10mg tablets"),
                _once("Empagliflozin 25mg tablets"),
                weight=0.20,
                tag="sglt2_inhibitor",
            ),
            _m("dapagliflozin", _once("Dapagliflozin 10mg tablets"), weight=0.15, tag="sglt2_inhibitor"),
        ),
        stop=0.004,
        switch=0.002,
        titrate=0.01,
    ),
    Slot(
        "diabetes_third_line",
        (
            _m(
                "gliclazide",
                _d("Gliclazide 40mg tablets", "One tablet twice daily with meals"),
                _d("Gliclazide 80mg tablets", "One tablet twice daily with meals"),
                weight=0.35,
                tag="sulfonylurea",
            ),
            _m("sitagliptin", _once("Sitagliptin 100mg tablets"), weight=0.20, tag="dpp4_inhibitor"),
            _m("alogliptin", _once("Alogliptin 25mg tablets"), weight=0.10, tag="dpp4_inhibitor"),
            _m("empagliflozin", _once("Empagliflozin 10mg tablets"), weight=0.20, tag="sglt2_inhibitor"),
            _m("dapagliflozin", _once("Dapagliflozin 10mg tablets"), weight=0.15, tag="sglt2_inhibitor"),
        ),
        stop=0.004,
    ),
    Slot(
        "basal_insulin",
        (
            _m(
                "insulin glargine",
                _d(
                    "Insulin glargine 100units/ml solution for injection 3ml pre-filled pens",
                    "Inject 14 units once daily",
                ),
                _d(
                    "Insulin glargine 100units/ml solution for injection 3ml pre-filled pens",
                    "Inject 20 units once daily",
                ),
                _d(
                    "Insulin glargine 100units/ml solution for injection 3ml pre-filled pens",
                    "Inject 28 units once daily",
                ),
                start_dose=1,
            ),
        ),
        stop=0.001,
        titrate=0.03,
    ),
    Slot(
        "bolus_insulin",
        (
            _m(
                "insulin aspart",
                _d(
                    "Insulin aspart 100units/ml solution for injection 3ml pre-filled pens",
                    "Inject as directed with meals according to carbohydrate intake",
                ),
            ),
        ),
        stop=0.0005,
    ),
    Slot(
        "heart_failure_sglt2",
        (
            _m("dapagliflozin", _once("Dapagliflozin 10mg tablets"), weight=0.6, tag="sglt2_inhibitor"),
            _m("empagliflozin", _once("Empagliflozin 10mg tablets"), weight=0.4, tag="sglt2_inhibitor"),
        ),
        stop=0.003,
    ),
    # ------------------------------------------------------------------ respiratory (BTS/SIGN 158, NICE NG115)
    Slot(
        "reliever_inhaler",
        (
            _m(
                "salbutamol",
                _d(
                    "Salbutamol 100micrograms/dose inhaler CFC free",
                    "Two puffs up to four times a day when required",
                ),
                weight=0.9,
            ),
            _m(
                "terbutaline",
                _d("Terbutaline 500micrograms/dose dry powder inhaler", "One puff when required"),
                weight=0.1,
            ),
        ),
        stop=0.003,
    ),
    Slot(
        "inhaled_corticosteroid",
        (
            _m(
                "beclometasone",
                _d("Beclometasone 100micrograms/dose inhaler CFC free", "Two puffs twice daily"),
                weight=0.6,
            ),
            _m(
                "budesonide",
                _d("Budesonide 200micrograms/dose dry powder inhaler", "One puff twice daily"),
                weight=0.2,
            ),
            _m(
                "fluticasone",
                _d("Fluticasone propionate 125micrograms/dose inhaler CFC free", "One puff twice daily"),
                weight=0.2,
            ),
        ),
        stop=0.004,
    ),
    Slot(
        "ics_laba_inhaler",
        (
            _m(
                ("beclometasone", "formoterol"),
                _d(
                    "Beclometasone 100micrograms/dose / Formoterol 6micrograms/dose inhaler CFC free",
                    "One puff twice daily",
                ),
                _d(
                    "Beclometasone 100micrograms/dose / Formoterol 6micrograms/dose inhaler CFC free",
                    "Two puffs twice daily",
                ),
                weight=0.5,
            ),
            _m(
                ("budesonide", "formoterol"),
                _d(
                    "Budesonide 200micrograms/dose / Formoterol 6micrograms/dose dry powder inhaler",
                    "One puff twice daily",
                ),
                _d(
                    "Budesonide 200micrograms/dose / Formoterol 6micrograms/dose dry powder inhaler",
                    "Two puffs twice daily",
                ),
                weight=0.35,
            ),
            _m(
                ("fluticasone", "vilanterol"),
                _d(
                    "Fluticasone furoate 92micrograms/dose / Vilanterol 22micrograms/dose dry powder inhaler",
                    "One puff once daily",
                ),
                weight=0.15,
            ),
        ),
        stop=0.003,
        titrate=0.01,
        replaces=("inhaled_corticosteroid",),
    ),
    Slot(
        "long_acting_antimuscarinic",
        (
            _m(
                "tiotropium",
                _d(
                    "Tiotropium bromide 2.5micrograms/dose solution for inhalation cartridge with device",
                    "Two puffs once daily",
                ),
                weight=0.55,
            ),
            _m(
                "umeclidinium",
                _d("Umeclidinium bromide 55micrograms/dose dry powder inhaler", "One puff once daily"),
                weight=0.25,
            ),
            _m(
                "glycopyrronium",
                _d(
                    "Glycopyrronium bromide 55microgram inhalation powder capsules with device",
                    "Inhale the contents of one capsule once daily",
                ),
                weight=0.2,
            ),
        ),
        stop=0.003,
    ),
    Slot(
        "montelukast",
        (_m("montelukast", _d("Montelukast 10mg tablets", "One tablet at night")),),
        stop=0.006,
    ),
    Slot(
        "mucolytic",
        (_m("carbocisteine", _d("Carbocisteine 375mg capsules", "Two capsules three times a day")),),
        stop=0.01,
    ),
    # ------------------------------------------------------------------ mental health and neurology
    Slot(
        "antidepressant",
        (
            _m(
                "sertraline", _once("Sertraline 50mg tablets"), _once("Sertraline 100mg tablets"), weight=0.33
            ),
            _m(
                "citalopram",
                _once("Citalopram 10mg tablets"),
                _once("Citalopram 20mg tablets"),
                _once("Citalopram 40mg tablets"),
                weight=0.20,
                start_dose=1,
            ),
            _m("fluoxetine", _d("Fluoxetine 20mg capsules", "One capsule once daily"), weight=0.12),
            _m(
                "mirtazapine",
                _d("Mirtazapine 15mg tablets", "One tablet at night"),
                _d("Mirtazapine 30mg tablets", "One tablet at night"),
                _d("Mirtazapine 45mg tablets", "One tablet at night"),
                weight=0.15,
            ),
            _m(
                "venlafaxine",
                _d("Venlafaxine 75mg modified-release capsules", "One capsule once daily"),
                _d("Venlafaxine 150mg modified-release capsules", "One capsule once daily"),
                weight=0.07,
            ),
            _m(
                "duloxetine",
                _d("Duloxetine 30mg gastro-resistant capsules", "One capsule once daily"),
                _d("Duloxetine 60mg gastro-resistant capsules", "One capsule once daily"),
                weight=0.05,
            ),
            _m("escitalopram", _once("Escitalopram 10mg tablets"), weight=0.05),
        ),
        stop=0.025,
        switch=0.008,
        titrate=0.02,
    ),
    Slot(
        "hypnotic",
        (
            _m(
                "zopiclone",
                _d("Zopiclone 3.75mg tablets", "One tablet at night"),
                _d("Zopiclone 7.5mg tablets", "One tablet at night"),
                weight=0.72,
            ),
            _m(
                "zolpidem",
                _d("Zolpidem 5mg tablets", "One tablet at night"),
                _d("Zolpidem 10mg tablets", "One tablet at night"),
                weight=0.08,
            ),
            _m(
                "temazepam",
                _d("Temazepam 10mg tablets", "One tablet at night"),
                _d("Temazepam 20mg tablets", "One tablet at night"),
                weight=0.15,
            ),
            _m("nitrazepam", _d("Nitrazepam 5mg tablets", "One tablet at night"), weight=0.05),
        ),
        stop=0.04,
        titrate=0.01,
    ),
    Slot(
        "anxiolytic",
        (
            _m(
                "diazepam",
                _d("Diazepam 2mg tablets", "One tablet three times a day when required"),
                _d("Diazepam 5mg tablets", "One tablet three times a day when required"),
                weight=0.8,
            ),
            _m("lorazepam", _d("Lorazepam 1mg tablets", "One tablet twice daily when required"), weight=0.2),
        ),
        stop=0.04,
    ),
    Slot(
        "antipsychotic",
        (
            _m(
                "olanzapine",
                _d("Olanzapine 5mg tablets", "One tablet at night"),
                _d("Olanzapine 10mg tablets", "One tablet at night"),
                weight=0.3,
            ),
            _m(
                "quetiapine",
                _d("Quetiapine 25mg tablets", "One tablet twice daily"),
                _d("Quetiapine 100mg tablets", "One tablet twice daily"),
                _d("Quetiapine 200mg tablets", "One tablet twice daily"),
                weight=0.3,
            ),
            _m(
                "aripiprazole",
                _once("Aripiprazole 10mg tablets"),
                _once("Aripiprazole 15mg tablets"),
                weight=0.2,
            ),
            _m(
                "risperidone",
                _d("Risperidone 500microgram tablets", "One tablet twice daily"),
                _d("Risperidone 1mg tablets", "One tablet twice daily"),
                _d("Risperidone 2mg tablets", "One tablet twice daily"),
                weight=0.2,
            ),
        ),
        stop=0.006,
        switch=0.004,
        titrate=0.01,
    ),
    Slot(
        "lithium",
        (
            _m(
                "lithium",
                _d("Lithium carbonate 400mg modified-release tablets", "One tablet at night"),
                _d("Lithium carbonate 400mg modified-release tablets", "Two tablets at night"),
            ),
        ),
        stop=0.004,
        titrate=0.01,
    ),
    Slot(
        "cholinesterase_inhibitor",
        (
            _m(
                "donepezil",
                _d("Donepezil 5mg tablets", "One tablet at night"),
                _d("Donepezil 10mg tablets", "One tablet at night"),
                weight=0.7,
            ),
            _m(
                "rivastigmine",
                _d("Rivastigmine 4.6mg/24hours transdermal patches", "Apply one patch daily"),
                _d("Rivastigmine 9.5mg/24hours transdermal patches", "Apply one patch daily"),
                weight=0.15,
            ),
            _m(
                "galantamine",
                _d("Galantamine 8mg modified-release capsules", "One capsule each morning"),
                _d("Galantamine 16mg modified-release capsules", "One capsule each morning"),
                weight=0.15,
            ),
        ),
        stop=0.01,
        titrate=0.03,
    ),
    Slot(
        "memantine",
        (_m("memantine", _once("Memantine 10mg tablets"), _once("Memantine 20mg tablets")),),
        stop=0.008,
        titrate=0.02,
    ),
    Slot(
        "antiparkinson",
        (
            _m(
                ("levodopa", "carbidopa"),
                _d("Co-careldopa 25mg/100mg tablets", "One tablet three times a day"),
                _d("Co-careldopa 25mg/100mg tablets", "Two tablets three times a day"),
                weight=0.65,
            ),
            _m(
                ("levodopa", "benserazide"),
                _d("Co-beneldopa 25mg/100mg capsules", "One capsule three times a day"),
                weight=0.25,
            ),
            _m(
                "ropinirole",
                _d("Ropinirole 2mg modified-release tablets", "One tablet once daily"),
                _d("Ropinirole 4mg modified-release tablets", "One tablet once daily"),
                weight=0.10,
            ),
        ),
        stop=0.001,
        titrate=0.02,
    ),
    Slot(
        "antiepileptic",
        (
            _m(
                "levetiracetam",
                _d("Levetiracetam 500mg tablets", "One tablet twice daily"),
                _d("Levetiracetam 750mg tablets", "One tablet twice daily"),
                weight=0.35,
            ),
            _m("lamotrigine", _d("Lamotrigine 100mg tablets", "One tablet twice daily"), weight=0.30),
            _m(
                "valproate",
                _d("Sodium valproate 500mg gastro-resistant tablets", "One tablet twice daily"),
                weight=0.20,
            ),
            _m(
                "carbamazepine",
                _d("Carbamazepine 200mg modified-release tablets", "One tablet twice daily"),
                weight=0.15,
            ),
        ),
        stop=0.002,
        titrate=0.01,
    ),
    Slot(
        "triptan",
        (
            _m(
                "sumatriptan",
                _d("Sumatriptan 50mg tablets", "One tablet at onset of migraine, may repeat after 2 hours"),
            ),
        ),
        stop=0.01,
    ),
    Slot(
        "glaucoma_drops",
        (_m("latanoprost", _d("Latanoprost 50micrograms/ml eye drops", "One drop into both eyes at night")),),
        stop=0.002,
    ),
    # ------------------------------------------------------------------ pain and musculoskeletal (NICE NG193, NG226)
    Slot(
        "paracetamol",
        (
            _m(
                "paracetamol",
                _d("Paracetamol 500mg tablets", "Two tablets up to four times a day when required"),
            ),
        ),
        stop=0.01,
    ),
    Slot(
        "weak_opioid",
        (
            _m(
                ("codeine", "paracetamol"),
                _d("Co-codamol 30mg/500mg tablets", "Two tablets up to four times a day when required"),
                weight=0.55,
            ),
            _m(
                ("codeine", "paracetamol"),
                _d("Co-codamol 8mg/500mg tablets", "Two tablets up to four times a day when required"),
                weight=0.10,
            ),
            _m(
                "tramadol",
                _d("Tramadol 50mg capsules", "One or two capsules up to four times a day when required"),
                weight=0.25,
            ),
            _m(
                "dihydrocodeine",
                _d("Dihydrocodeine 30mg tablets", "One tablet every four to six hours when required"),
                weight=0.10,
            ),
        ),
        stop=0.015,
        switch=0.004,
        replaces=("paracetamol",),
    ),
    Slot(
        "strong_opioid",
        (
            _m(
                "morphine",
                _d("Morphine sulfate 10mg modified-release tablets", "One tablet twice daily"),
                _d("Morphine sulfate 20mg modified-release tablets", "One tablet twice daily"),
                _d("Morphine sulfate 30mg modified-release tablets", "One tablet twice daily"),
                weight=0.30,
            ),
            _m(
                "oxycodone",
                _d("Oxycodone 10mg modified-release tablets", "One tablet twice daily"),
                _d("Oxycodone 20mg modified-release tablets", "One tablet twice daily"),
                weight=0.15,
            ),
            _m(
                "buprenorphine",
                _d("Buprenorphine 5micrograms/hour transdermal patches", "Apply one patch every seven days"),
                _d("Buprenorphine 10micrograms/hour transdermal patches", "Apply one patch every seven days"),
                _d("Buprenorphine 20micrograms/hour transdermal patches", "Apply one patch every seven days"),
                weight=0.35,
            ),
            _m(
                "fentanyl",
                _d("Fentanyl 12micrograms/hour transdermal patches", "Apply one patch every 72 hours"),
                _d("Fentanyl 25micrograms/hour transdermal patches", "Apply one patch every 72 hours"),
                weight=0.20,
            ),
        ),
        stop=0.01,
        titrate=0.03,
        companions=(("laxative", 0.6),),
    ),
    Slot(
        "nsaid",
        (
            _m(
                "naproxen",
                _d("Naproxen 250mg tablets", "One tablet twice daily with food"),
                _d("Naproxen 500mg tablets", "One tablet twice daily with food"),
                weight=0.6,
                start_dose=1,
            ),
            _m(
                "ibuprofen",
                _d("Ibuprofen 400mg tablets", "One tablet three times a day with food"),
                weight=0.25,
            ),
            _m(
                "diclofenac",
                _d(
                    "Diclofenac sodium 50mg gastro-resistant tablets",
                    "One tablet three times a day with food",
                ),
                weight=0.05,
            ),
            _m("etoricoxib", _once("Etoricoxib 60mg tablets"), weight=0.05),
            _m("celecoxib", _d("Celecoxib 100mg capsules", "One capsule twice daily"), weight=0.05),
        ),
        stop=0.03,
        switch=0.003,
    ),
    Slot(
        "gabapentinoid",
        (
            _m(
                "gabapentin",
                _d("Gabapentin 300mg capsules", "One capsule three times a day"),
                _d("Gabapentin 300mg capsules", "Two capsules three times a day"),
                weight=0.5,
            ),
            _m(
                "pregabalin",
                _d("Pregabalin 75mg capsules", "One capsule twice daily"),
                _d("Pregabalin 150mg capsules", "One capsule twice daily"),
                weight=0.5,
            ),
        ),
        stop=0.012,
        titrate=0.03,
    ),
    Slot(
        "low_dose_amitriptyline",
        (
            _m(
                "amitriptyline",
                _d("Amitriptyline 10mg tablets", "One tablet at night"),
                _d("Amitriptyline 10mg tablets", "Two tablets at night"),
            ),
        ),
        stop=0.015,
        titrate=0.02,
    ),
    Slot(
        "proton_pump_inhibitor",
        (
            _m(
                "omeprazole",
                _d("Omeprazole 20mg gastro-resistant capsules", "One capsule once daily"),
                _d("Omeprazole 40mg gastro-resistant capsules", "One capsule once daily"),
                weight=0.45,
            ),
            _m(
                "lansoprazole",
                _d("Lansoprazole 15mg gastro-resistant capsules", "One capsule once daily"),
                _d("Lansoprazole 30mg gastro-resistant capsules", "One capsule once daily"),
                weight=0.45,
                start_dose=1,
            ),
            _m(
                "esomeprazole",
                _d("Esomeprazole 20mg gastro-resistant tablets", "One tablet once daily"),
                weight=0.05,
            ),
            _m(
                "pantoprazole",
                _d("Pantoprazole 20mg gastro-resistant tablets", "One tablet once daily"),
                weight=0.05,
            ),
        ),
        stop=0.006,
        switch=0.002,
        titrate=0.01,
        titrate_up=0.4,
    ),
    Slot(
        "dmard",
        (
            _m(
                "methotrexate",
                _d(
                    "Methotrexate 2.5mg tablets", "Four tablets (10 mg) once a week on the same day each week"
                ),
                _d("Methotrexate 2.5mg tablets", "Six tablets (15 mg) once a week on the same day each week"),
                weight=0.7,
            ),
            _m(
                "hydroxychloroquine",
                _d("Hydroxychloroquine 200mg tablets", "One tablet once daily"),
                weight=0.2,
            ),
            _m(
                "sulfasalazine",
                _d("Sulfasalazine 500mg gastro-resistant tablets", "Two tablets twice daily"),
                weight=0.1,
            ),
        ),
        stop=0.003,
        titrate=0.02,
    ),
    Slot(
        "folic_acid",
        (
            _m(
                "folic acid",
                _d("Folic acid 5mg tablets", "One tablet once a week, not on the methotrexate day"),
            ),
        ),
        stop=0.0,
    ),
    Slot(
        "oral_corticosteroid",
        (_m("prednisolone", _d("Prednisolone 5mg tablets", "One tablet each morning")),),
        stop=0.01,
    ),
    Slot(
        "allopurinol",
        (_m("allopurinol", _once("Allopurinol 100mg tablets"), _once("Allopurinol 300mg tablets")),),
        stop=0.004,
        titrate=0.02,
    ),
    Slot(
        "bisphosphonate",
        (
            _m(
                "alendronic acid",
                _d("Alendronic acid 70mg tablets", "One tablet once a week before breakfast"),
                weight=0.85,
            ),
            _m(
                "risedronic acid",
                _d("Risedronate sodium 35mg tablets", "One tablet once a week before breakfast"),
                weight=0.15,
            ),
        ),
        stop=0.008,
        companions=(("calcium_vitamin_d", 0.8),),
    ),
    Slot(
        "calcium_vitamin_d",
        (
            _m(
                ("calcium carbonate", "colecalciferol"),
                _d(
                    "Calcium carbonate 1.5g / Colecalciferol 400unit chewable tablets",
                    "One tablet twice daily",
                ),
                weight=0.8,
            ),
            _m("colecalciferol", _d("Colecalciferol 800unit capsules", "One capsule once daily"), weight=0.2),
        ),
        stop=0.006,
    ),
    # ------------------------------------------------------------------ endocrine, urology, GI and other
    Slot(
        "levothyroxine",
        (
            _m(
                "levothyroxine",
                _d("Levothyroxine sodium 25microgram tablets", "One tablet (25 micrograms) each morning"),
                _d("Levothyroxine sodium 50microgram tablets", "One tablet (50 micrograms) each morning"),
                _d("Levothyroxine sodium 75microgram tablets", "One tablet (75 micrograms) each morning"),
                _d("Levothyroxine sodium 100microgram tablets", "One tablet (100 micrograms) each morning"),
                _d(
                    "Levothyroxine sodium 100microgram tablets",
                    "One 100 microgram tablet and one 25 microgram tablet (125 micrograms) each morning",
                ),
                _d("Levothyroxine sodium 50microgram tablets", "Three tablets (150 micrograms) each morning"),
                start_dose=1,
            ),
        ),
        stop=0.0005,
    ),
    Slot(
        "bladder_antimuscarinic",
        (
            _m(
                "oxybutynin",
                _d("Oxybutynin 2.5mg tablets", "One tablet twice daily"),
                _d("Oxybutynin 5mg tablets", "One tablet twice daily"),
                weight=0.35,
            ),
            _m(
                "solifenacin",
                _once("Solifenacin 5mg tablets"),
                _once("Solifenacin 10mg tablets"),
                weight=0.45,
            ),
            _m("tolterodine", _d("Tolterodine 2mg tablets", "One tablet twice daily"), weight=0.20),
        ),
        stop=0.02,
        switch=0.004,
        titrate=0.02,
    ),
    Slot(
        "mirabegron",
        (_m("mirabegron", _d("Mirabegron 50mg modified-release tablets", "One tablet once daily")),),
        stop=0.015,
    ),
    Slot(
        "prostate",
        (
            _m(
                "tamsulosin",
                _d("Tamsulosin 400microgram modified-release capsules", "One capsule once daily"),
                weight=0.8,
            ),
            _m("finasteride", _once("Finasteride 5mg tablets"), weight=0.2),
        ),
        stop=0.004,
    ),
    Slot(
        "laxative",
        (
            _m("senna", _d("Senna 7.5mg tablets", "Two tablets at night"), weight=0.4),
            _m(
                "macrogol",
                _d("Macrogol compound oral powder sachets NPF sugar free", "One sachet once or twice daily"),
                weight=0.35,
            ),
            _m("lactulose", _d("Lactulose 3.3g/5ml oral solution", "15ml twice daily"), weight=0.25),
        ),
        stop=0.015,
    ),
    Slot(
        "iron",
        (
            _m(
                "ferrous fumarate", _d("Ferrous fumarate 210mg tablets", "One tablet twice daily"), weight=0.6
            ),
            _m("ferrous sulfate", _d("Ferrous sulfate 200mg tablets", "One tablet twice daily"), weight=0.4),
        ),
        stop=0.06,
    ),
    Slot(
        "antihistamine",
        (
            _m("cetirizine", _once("Cetirizine 10mg tablets"), weight=0.55),
            _m("loratadine", _once("Loratadine 10mg tablets"), weight=0.25),
            _m(
                "chlorphenamine",
                _d("Chlorphenamine 4mg tablets", "One tablet every four to six hours when required"),
                weight=0.20,
            ),
        ),
        stop=0.03,
    ),
    Slot(
        "vitamin_b12",
        (
            _m(
                "hydroxocobalamin",
                _d(
                    "Hydroxocobalamin 1mg/1ml solution for injection ampoules",
                    "1mg by intramuscular injection every three months",
                ),
            ),
        ),
        stop=0.002,
    ),
    Slot(
        "vestibular",
        (
            _m("betahistine", _d("Betahistine 16mg tablets", "One tablet three times a day"), weight=0.6),
            _m(
                "prochlorperazine",
                _d("Prochlorperazine maleate 5mg tablets", "One tablet three times a day when required"),
                weight=0.4,
            ),
        ),
        stop=0.03,
    ),
    Slot(
        "uti_prophylaxis",
        (
            _m("nitrofurantoin", _d("Nitrofurantoin 50mg capsules", "One capsule at night"), weight=0.6),
            _m("trimethoprim", _d("Trimethoprim 100mg tablets", "One tablet at night"), weight=0.4),
        ),
        stop=0.025,
    ),
)

# Planted-cascade marker drugs and the medicine each cascade starts (see cascades.py).
CASCADE_MARKER_MEDICINE: dict[str, str] = {
    "loop_diuretic": "furosemide",
    "bladder_antimuscarinic": "oxybutynin",
    "allopurinol": "allopurinol",
}


@dataclass(frozen=True)
class AcuteCourse:
    """A short course (repeat = False): one product, a fixed duration."""

    key: str
    medicine: Medicine
    days: int


ACUTE_COURSES: tuple[AcuteCourse, ...] = (
    AcuteCourse(
        "amoxicillin",
        _m("amoxicillin", _d("Amoxicillin 500mg capsules", "One capsule three times a day for 5 days")),
        5,
    ),
    AcuteCourse(
        "doxycycline",
        _m(
            "doxycycline",
            _d(
                "Doxycycline 100mg capsules",
                "Two capsules on the first day then one capsule daily for 4 days",
            ),
        ),
        5,
    ),
    AcuteCourse(
        "clarithromycin",
        _m("clarithromycin", _d("Clarithromycin 500mg tablets", "One tablet twice daily for 5 days")),
        5,
    ),
    AcuteCourse(
        "nitrofurantoin",
        _m(
            "nitrofurantoin",
            _d("Nitrofurantoin 100mg modified-release capsules", "One capsule twice daily for 3 days"),
        ),
        3,
    ),
    AcuteCourse(
        "trimethoprim",
        _m("trimethoprim", _d("Trimethoprim 200mg tablets", "One tablet twice daily for 3 days")),
        3,
    ),
    AcuteCourse(
        "flucloxacillin",
        _m("flucloxacillin", _d("Flucloxacillin 500mg capsules", "One capsule four times a day for 7 days")),
        7,
    ),
    AcuteCourse(
        "phenoxymethylpenicillin",
        _m(
            "phenoxymethylpenicillin",
            _d("Phenoxymethylpenicillin 250mg tablets", "Two tablets four times a day for 5 days"),
        ),
        5,
    ),
    AcuteCourse(
        "ibuprofen",
        _m(
            "ibuprofen",
            _d("Ibuprofen 400mg tablets", "One tablet three times a day with food for up to 10 days"),
        ),
        10,
    ),
    AcuteCourse(
        "naproxen",
        _m("naproxen", _d("Naproxen 500mg tablets", "One tablet twice daily with food for up to 10 days")),
        10,
    ),
    AcuteCourse(
        "prednisolone",
        _m("prednisolone", _d("Prednisolone 5mg tablets", "Six tablets (30 mg) once daily for 5 days")),
        5,
    ),
    AcuteCourse(
        "colchicine",
        _m(
            "colchicine",
            _d(
                "Colchicine 500microgram tablets",
                "One tablet two to four times a day until symptoms are relieved",
            ),
        ),
        7,
    ),
    AcuteCourse(
        "co-codamol",
        _m(
            ("codeine", "paracetamol"),
            _d("Co-codamol 30mg/500mg tablets", "Two tablets up to four times a day when required"),
        ),
        7,
    ),
    AcuteCourse(
        "zopiclone", _m("zopiclone", _d("Zopiclone 7.5mg tablets", "One tablet at night when required")), 7
    ),
    AcuteCourse(
        "lansoprazole",
        _m(
            "lansoprazole",
            _d("Lansoprazole 30mg gastro-resistant capsules", "One capsule once daily for 4 weeks"),
        ),
        28,
    ),
    AcuteCourse(
        "pholcodine",
        _m("pholcodine", _d("Pholcodine 5mg/5ml oral solution", "10ml three times a day when required")),
        14,
    ),
)
