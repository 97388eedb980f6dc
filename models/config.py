"""Outcomes, time conventions and the model configuration (everything that enters the model version hash).

Outcome definitions follow the canonical ``event`` types (DESIGN.md, "Canonical data model"):

- ``emergency_admission``: an ``emergency_admission`` event;
- ``fall_fracture``: a ``fall`` or a ``fracture`` event;
- ``medication_harm``: a ``gi_bleed``, ``aki`` or ``hypoglycaemia`` event (the adverse drug event types named in
  the brief: GI bleeding, acute kidney injury, hypoglycaemia);
- ``death``: a ``death`` event or the patient's ``died_on`` date.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

OUTCOMES: tuple[str, ...] = ("emergency_admission", "fall_fracture", "medication_harm", "death")
OUTCOME_EVENTS: dict[str, tuple[str, ...]] = {
    "emergency_admission": ("emergency_admission",),
    "fall_fracture": ("fall", "fracture"),
    "medication_harm": ("gi_bleed", "aki", "hypoglycaemia"),
    "death": ("death",),
}
HORIZON_MONTHS = 12

# Days in an average Gregorian month; converts day differences into the month units of the time encoding.
DAYS_PER_MONTH = 30.436875


@dataclass(frozen=True)
class ModelConfig:
    """Hyper-parameters and data-window settings of one training run.

    The grid settings say which monthly landmarks the model sees: ``train_months`` labelled landmarks (each with
    12 months of follow-up) ending at the last one that has full follow-up, of which the last ``holdout_months``
    are held out of training for the temporal hold-out report. ``trajectory_months`` is the length of the scored
    trajectory (the months up to the data's end shown on the patient page).
    """

    hidden: int = 48
    layers: int = 2
    dropout: float = 0.1
    lr: float = 3e-3
    weight_decay: float = 1e-4
    batch_size: int = 64
    epochs: int = 12
    patience: int = 3
    train_months: int = 30
    holdout_months: int = 6
    trajectory_months: int = 24
    recent_event_days: int = 365
    lab_valid_days: int = 455
    dose_change_days: int = 90
    mc_samples: int = 20
    interval_level: float = 0.9
    bootstrap_replicates: int = 200
    seed: int = 0
    hpo_trials: int = 0
    split: tuple[float, float, float] = (0.6, 0.2, 0.2)
    extra: dict[str, Any] = field(default_factory=dict)

    def replace(self, **changes: Any) -> ModelConfig:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["split"] = list(self.split)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        if "split" in values:
            values["split"] = tuple(values["split"])
        return cls(**values)

    def canonical_json(self) -> str:
        """A stable serialisation, hashed into the model version."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
