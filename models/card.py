"""The model card (Mitchell et al., "Model Cards for Model Reporting", FAT* 2019): JSON and Markdown.

Sections: model details, intended use, data, outcomes and labelling, performance (with baselines and, on
synthetic data, the oracle), calibration, hyper-parameter search, subgroups, limitations.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from models.config import OUTCOME_EVENTS, OUTCOMES
from models.registry import ModelBundle

INTENDED_USE = (
    "Decision support for Structured Medication Reviews in UK primary care: ranking patients for review and showing "
    "which medicines, conditions and combinations are associated with their predicted 12-month risk of emergency "
    "admission, fall or fracture, medication harm (GI bleed, acute kidney injury, hypoglycaemia) and death. "
    "It supports, and never replaces, the clinician's judgement."
)
OUT_OF_SCOPE = [
    "Diagnosis, or any automated decision without clinical review.",
    "Causal claims: drivers and what-if scenarios are associational (what the model predicts when a factor is "
    "removed from the input), not the effect of stopping or starting a medicine.",
    "Populations unlike the training data (e.g. children, secondary care) without local re-validation.",
]
LIMITATIONS = [
    "Trained on the data in this database; if that is the synthetic cohort, performance says how well the model "
    "recovers the generator's risk function, not how it would perform on real patients.",
    "Uncertainty bounds are Monte Carlo dropout over the outcome heads only (fixed masks): they reflect part of the "
    "model's uncertainty, not data shift, coding differences or label noise.",
    "Patients who leave the practice within a landmark's 12-month window are not labelled (censored); deaths end "
    "follow-up and count as the absence of the other outcomes (competing risk).",
    "Inputs are coded primary care records: what is not coded (over-the-counter medicines, indications, doses "
    "beyond the dose text) is invisible to the model.",
    "Knowledge edges come from the safety rules encoded in clinical/; interactions not encoded there are learned, "
    "if at all, only from co-occurrence.",
]


def build_model_card(bundle: ModelBundle, data: Any, metrics: dict[str, Any]) -> dict[str, Any]:
    parameters = sum(p.numel() for p in bundle.model.parameters())
    return {
        "model_version": bundle.version,
        "created": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
        "model_details": {
            "architecture": (
                "Heterogeneous temporal graph network: monthly snapshot graphs (patient, drug, condition, event, "
                "lab nodes; time-encoded patient-entity edges; drug-drug and drug-condition knowledge edges "
                f"labelled by safety rule), {bundle.config.layers} layers of relation-specific message passing "
                f"(PyTorch Geometric) plus a sum-pooled readout of each snapshot's nodes, a GRU across months and one "
                f"head per outcome; hidden size {bundle.config.hidden}."
            ),
            "parameters": int(parameters),
            "config": bundle.config.to_dict(),
            "data_hash": bundle.meta.get("data_hash"),
            "code_hash": bundle.meta.get("code_hash"),
            "vocabulary": {
                "drugs": len(bundle.vocabulary.drugs) - 1,
                "conditions": len(bundle.vocabulary.conditions) - 1,
                "rules_on_edges": len(bundle.vocabulary.rules) - 1,
                "drug_pairs": len(bundle.vocabulary.drug_pairs),
                "drug_condition_cautions": len(bundle.vocabulary.drug_conditions),
            },
        },
        "intended_use": {"primary": INTENDED_USE, "out_of_scope": OUT_OF_SCOPE},
        "data": metrics.get("data", {}),
        "outcomes": {
            o: {
                "definition": f"any {' or '.join(OUTCOME_EVENTS[o])} event in the 12 months after the landmark"
            }
            for o in OUTCOMES
        },
        "labelling": (
            "Landmarks are the first day of each month; inputs are data recorded on or before the landmark; labels are "
            "events in (landmark, landmark + 12 months]. Landmarks without 12 months of follow-up are unlabelled, "
            "except when the patient died within the window. Deregistration within the window censors the landmark."
        ),
        "performance": metrics.get("outcomes", {}),
        "comparison": metrics.get("comparison", {}),
        "temporal_holdout": metrics.get("temporal_holdout", {}),
        "calibration": {
            "method": "Platt scaling of each outcome's logit, fitted on the validation practices",
            "parameters": metrics.get("calibration", {}),
            "ece": {
                o: metrics.get("outcomes", {}).get(o, {}).get("graph_model", {}).get("ece") for o in OUTCOMES
            },
            "reliability_curves": "see metrics.json: calibration_curve",
        },
        "hyperparameter_search": metrics.get("hpo", {}),
        "subgroups": "AUROC by age band, sex and deprivation quintile: see metrics.json: subgroups",
        "limitations": LIMITATIONS,
    }


def render_model_card(card: dict[str, Any]) -> str:
    """The card as Markdown (for people; the JSON is for machines)."""
    lines = [f"# Model card: {card['model_version']}", "", f"Created {card['created']}.", ""]
    details = card["model_details"]
    lines += [
        "## Model details",
        "",
        details["architecture"],
        "",
        f"Parameters: {details['parameters']:,}.",
        "",
    ]
    lines += [f"Data hash `{details['data_hash']}`, code hash `{details['code_hash']}`.", ""]
    lines += ["## Intended use", "", card["intended_use"]["primary"], "", "Out of scope:", ""]
    lines += [f"- {item}" for item in card["intended_use"]["out_of_scope"]] + [""]
    data = card.get("data", {})
    lines += ["## Data", ""]
    for key in (
        "patients",
        "sources",
        "extract_date",
        "landmarks",
        "split_method",
        "split_patients",
        "split_practices",
        "labelled_landmarks",
    ):
        if key in data:
            lines.append(f"- {key.replace('_', ' ')}: {data[key]}")
    lines += ["", "## Outcomes and labelling", ""]
    lines += [f"- **{o}**: {v['definition']}" for o, v in card["outcomes"].items()]
    lines += ["", card["labelling"], "", "## Performance (test practices)", ""]
    lines += _metrics_table(card.get("performance", {}))
    holdout = card.get("temporal_holdout", {})
    if holdout.get("outcomes"):
        lines += ["", f"### Temporal hold-out ({', '.join(holdout.get('landmarks', [])[:1])} onwards)", ""]
        lines += _metrics_table(holdout["outcomes"])
    lines += ["", "## Calibration", "", card["calibration"]["method"] + ".", ""]
    for outcome, value in card["calibration"]["ece"].items():
        lines.append(f"- {outcome}: ECE {value:.4f}" if value is not None else f"- {outcome}: ECE n/a")
    hpo = card.get("hyperparameter_search", {})
    lines += ["", "## Hyper-parameter search", ""]
    if hpo.get("trials"):
        lines.append(
            f"{len(hpo['trials'])} trials, {hpo.get('sampler', '')}; objective: {hpo.get('objective', '')}."
        )
        lines.append(f"Chosen: {hpo.get('chosen')}.")
    else:
        lines.append("No search was run; the default configuration was used.")
    lines.append(f"Search space: {hpo.get('search_space')}.")
    lines += ["", "## Limitations", ""] + [f"- {item}" for item in card["limitations"]] + [""]
    return "\n".join(lines)


def _metrics_table(outcomes: dict[str, Any]) -> list[str]:
    lines = ["| outcome | model | AUROC (95% CI) | AUPRC | Brier | ECE |", "|---|---|---|---|---|---|"]
    for outcome, by_model in outcomes.items():
        for name, m in by_model.items():
            lines.append(
                f"| {outcome} | {name} | {_ci(m['auroc'])} | {_fmt(m['auprc'][1])} | {_fmt(m['brier'])} | {_fmt(m['ece'])} |"
            )
    return lines


def _ci(values: list[float | None]) -> str:
    lo, point, hi = values
    if point is None:
        return "n/a"
    if lo is None or hi is None:
        return f"{point:.3f}"
    return f"{point:.3f} ({lo:.3f}-{hi:.3f})"


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"
