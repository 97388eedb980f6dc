"""Clinical scores of a patient on a given day, and their history.

- ``acb``: Anticholinergic Cognitive Burden, the sum of the ACB scores (1-3) of the distinct active ingredients
  (Boustani M et al. Aging Health 2008;4:311-20; 2012 update of the ACB scale). A total of 3 or more is associated
  with cognitive impairment and mortality (Fox C et al. J Am Geriatr Soc 2011;59:1477-83).
- ``efi`` and ``efi_category``: electronic Frailty Index, deficits present / 36, categories fit (≤ 0.12), mild
  (≤ 0.24), moderate (≤ 0.36), severe (> 0.36) (Clegg A et al. Age Ageing 2016;45:353-60).
- ``cms``: Cambridge Multimorbidity Score, the sum of the general-outcome weights of the active conditions
  (Payne RA et al. CMAJ 2020;192:E107-14); weights live in ``clinical/data/conditions.yaml``.
- ``medicines``: number of distinct active ingredients.
- ``long_term_conditions``: number of distinct active conditions in the ``ltc`` group.

All scores come from ``PatientTimeline``, the same day-interval view of the record that the rule engine uses.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from clinical.intervals import contains
from clinical.knowledge import Knowledge, load_knowledge
from clinical.record import PatientRecord
from clinical.timeline import PatientTimeline, Step, efi_category

SCORE_KINDS = ("acb", "efi", "efi_category", "cms", "medicines", "long_term_conditions")
NUMERIC_SCORE_KINDS = ("acb", "efi", "cms", "medicines", "long_term_conditions")


def scores(record: PatientRecord, as_of: date, knowledge: Knowledge | None = None) -> dict[str, object]:
    """The scores of ``record`` on ``as_of``: keys acb, efi, efi_category, cms, medicines, long_term_conditions."""
    timeline = PatientTimeline(record, as_of, knowledge or load_knowledge())
    return scores_on(timeline, as_of)


def scores_on(timeline: PatientTimeline, day: date) -> dict[str, object]:
    """The scores on ``day`` (on or before the timeline's ``as_of``)."""
    ordinal = day.toordinal()
    if ordinal > timeline.hi:
        raise ValueError(f"{day} is after the record's as_of {timeline.as_of}")
    kb = timeline.knowledge
    deficits = _value_on(timeline.efi_count_steps(), ordinal)
    efi = round(deficits / kb.efi_denominator, 4)
    return {
        "acb": int(round(_value_on(timeline.acb_steps(), ordinal))),
        "efi": efi,
        "efi_category": efi_category(efi, kb.efi_cutoffs),
        "cms": round(cms_on(timeline, ordinal), 3),
        "medicines": int(round(_value_on(timeline.medicine_steps(), ordinal))),
        "long_term_conditions": len(
            active_conditions_on(
                timeline, ordinal, timeline.knowledge.long_term_conditions & timeline.condition_active.keys()
            )
        ),
    }


def score_history(timeline: PatientTimeline, days: Iterable[date]) -> list[tuple[date, dict[str, object]]]:
    """Scores on each of ``days`` (e.g. month ends), for trajectories on the patient page."""
    return [(day, scores_on(timeline, day)) for day in days if day.toordinal() <= timeline.hi]


def active_conditions_on(timeline: PatientTimeline, ordinal: int, keys: Iterable[str]) -> set[str]:
    """Which of ``keys`` are active on the day."""
    return {k for k in keys if contains(timeline.condition_active.get(k, ()), ordinal)}


def cms_on(timeline: PatientTimeline, ordinal: int) -> float:
    """Cambridge Multimorbidity Score (general outcome) on the day.

    The sum of the weights of the CMS conditions with at least one active condition key; a CMS condition that
    several keys evidence (anxiety or depression) counts once, as in Payne et al. 2020.
    """
    kb = timeline.knowledge
    present: set[int] = set()
    for key in active_conditions_on(
        timeline, ordinal, kb.cms_of_condition.keys() & timeline.condition_active.keys()
    ):
        present.update(kb.cms_of_condition[key])
    return sum(kb.cms_conditions[index].weight for index in present)


def efi_deficits_on(timeline: PatientTimeline, ordinal: int) -> list[str]:
    """The eFI deficits present on the day (to explain a score)."""
    return sorted(name for name, days in timeline.efi_deficit_sets().items() if contains(days, ordinal))


def _value_on(steps: list[Step], ordinal: int) -> float:
    for step in steps:
        if step.start <= ordinal <= step.end:
            return step.value
        if step.start > ordinal:
            break
    return 0.0
