"""Social care: living alone, home care, unpaid carers and care homes - rising with age, frailty and dementia.

The same prevalence-curve machinery as the conditions (conditions.ConditionModel) gives age/sex-specific levels and
a start date for those already receiving care at the start of the window; on top of it, dementia and the eFI
deficit count raise both the starting prevalence and the monthly incidence, and moving into a care home ends
living alone, home care and unpaid care.

Levels (approximations): living alone - ONS Families and Households 2022 (about 30% of 65-74 living alone rising to
about half of women 85+); care homes - ONS Census 2021 (about 3% of 65+ and 13-15% of 85+ live in care homes);
home care and unpaid care - Health Survey for England 2018, social care for older adults (help with activities of
daily living from paid carers about 5-10% of 75+, from unpaid carers about 10-20%).
``unpaid_carer`` means the patient *receives* care from an unpaid carer (the eFI "requirement for care" input).
"""

from __future__ import annotations

import numpy as np

from data_access.sources.synthetic.conditions import ConditionSpec

SOCIAL_KINDS = ("lives_alone", "home_care", "unpaid_carer", "care_home")

SOCIAL_SPECS: tuple[ConditionSpec, ...] = (
    ConditionSpec(
        "lives_alone",
        ((18, 0.02), (40, 0.10), (65, 0.22), (75, 0.33), (85, 0.50), (105, 0.60)),
        male_log_or=-0.5,
        loadings={"general": 0.2},
    ),
    ConditionSpec(
        "home_care",
        ((60, 0.003), (70, 0.015), (80, 0.05), (90, 0.14), (105, 0.25)),
        loadings={"general": 0.6, "neurological": 0.3},
    ),
    ConditionSpec(
        "unpaid_carer",
        ((55, 0.005), (70, 0.04), (80, 0.09), (90, 0.18), (105, 0.25)),
        loadings={"general": 0.5, "neurological": 0.3},
    ),
    ConditionSpec(
        "care_home",
        ((65, 0.002), (75, 0.012), (85, 0.06), (95, 0.18), (105, 0.25)),
        male_log_or=-0.3,
        loadings={"general": 0.5, "neurological": 0.7},
    ),
)

# Log-odds (baseline) / log-hazard (incidence) added for dementia, per kind.
DEMENTIA_EFFECT = {"lives_alone": -0.5, "home_care": 0.8, "unpaid_carer": 1.0, "care_home": 1.6}
# Per eFI deficit above 4 (the "fit" boundary), per kind.
FRAILTY_EFFECT = {"lives_alone": 0.0, "home_care": 0.15, "unpaid_carer": 0.12, "care_home": 0.12}
# Monthly probability that a period ends for reasons other than a care-home move or death.
MONTHLY_END = {"lives_alone": 0.002, "home_care": 0.01, "unpaid_carer": 0.005, "care_home": 0.0}
ENDED_BY_CARE_HOME = ("lives_alone", "home_care", "unpaid_carer")


def modifiers(kind: str, dementia: np.ndarray, deficits: np.ndarray) -> np.ndarray:
    """Log-scale modifier of prevalence odds and incidence for dementia and frailty."""
    return DEMENTIA_EFFECT[kind] * dementia + FRAILTY_EFFECT[kind] * np.maximum(deficits - 4, 0)
