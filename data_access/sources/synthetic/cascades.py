"""Prescribing cascades planted in the synthetic population, so that sequence-symmetry methods can be checked.

A prescribing cascade: a drug's adverse effect is misread as a new condition and treated with a second drug
(Rochon PA, Gurwitz JH. BMJ 1997;315:1096-9). Each planted cascade adds, for every patient who newly starts a
drug of the *index* class (not on that class the day before; switches within the class do not count), an extra
probability ``excess_probability`` of starting a *marker* drug at a uniformly random day 7 to ``window_days``
days later (if not already on it). Marker starts for any other reason (heart failure for loop diuretics,
incontinence for bladder antimuscarinics, gout for allopurinol, background coughs) are independent of the index
start, so for these pairs the excess of "marker after index" over "marker before index" in a sequence symmetry
analysis (Hallas J. Epidemiology 1996;7:478-84) comes from the planted mechanism alone.

The planted rates are deliberately larger than the published excess risks (given for context) so that cascades are
visible in demonstration cohorts of a few thousand patients; they are design parameters, not estimates.

Pairs NOT listed here have no such mechanism: a drug start depends only on conditions, latent physiology, age and
the treatment pathway of the same condition (README.md, "What is and is not planted"), never on another
condition's drug.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PlantedCascade:
    index_class: str
    """Drug class key (clinical/data/drug_classes.yaml) whose new start triggers the cascade."""
    marker_class: str
    """Drug class key of the marker drug."""
    marker: str
    """The medicine started: a slot of medicines.SLOTS, or ``acute:<course>`` for an acute course."""
    window_days: int
    excess_probability: float
    """Extra probability of starting the marker within ``window_days`` after a new index start."""
    evidence: str


PLANTED_CASCADES: tuple[PlantedCascade, ...] = (
    PlantedCascade(
        index_class="ccb_dihydropyridine",
        marker_class="loop_diuretic",
        marker="loop_diuretic",
        window_days=90,
        excess_probability=0.08,
        evidence="Savage RD et al. JAMA Intern Med 2020;180:643-51: loop diuretic within 90 days of a new CCB 1.4% vs "
        "0.7% after other antihypertensives (ankle oedema treated as fluid overload)",
    ),
    PlantedCascade(
        index_class="cholinesterase_inhibitor",
        marker_class="antimuscarinic_bladder",
        marker="bladder_antimuscarinic",
        window_days=180,
        excess_probability=0.15,
        evidence="Gill SS et al. Arch Intern Med 2005;165:808-13: anticholinergic for incontinence after a "
        "cholinesterase inhibitor 4.5% vs 3.1% (adjusted HR 1.55)",
    ),
    PlantedCascade(
        index_class="thiazide_diuretic",
        marker_class="xanthine_oxidase_inhibitor",
        marker="allopurinol",
        window_days=180,
        excess_probability=0.03,
        evidence="Thiazides raise serum urate and precipitate gout (NICE CKS Gout; STOPP v3 criterion on thiazides "
        "with a history of gout); allopurinol started for the resulting gout",
    ),
    PlantedCascade(
        index_class="ace_inhibitor",
        marker_class="cough_preparation",
        marker="acute:pholcodine",
        window_days=90,
        excess_probability=0.05,
        evidence="ACE-inhibitor cough occurs in about 10% of users (NICE CKS Hypertension, adverse effects); a cough "
        "suppressant prescribed for it is a classic cascade (Rochon & Gurwitz, BMJ 1997)",
    ),
)
MIN_DELAY_DAYS = 7
