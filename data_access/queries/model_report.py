"""The trained model's metrics report and model card, as the model page reads them.

Where they come from (written by ``models/``, never typed in here): the ``model_run`` row of the active model
(``metrics_json`` and ``card_json``, by ``models.registry.record_model_run``), else the newest ``model_run`` row, and
for either, the files ``metrics.json`` / ``model_card.json`` beside the checkpoint when the row lacks them (the
layout of ``models.registry``). The report's shape is documented in ``models/evaluation.py``.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, func, select

from data_access.queries.connection import connected
from data_access.schema import ModelRun, Prediction

log = logging.getLogger(__name__)

METRICS_FILE = "metrics.json"
CARD_JSON = "model_card.json"


@dataclass(frozen=True)
class ModelReport:
    version: str
    trained_at: dt.datetime | None
    active: bool
    metrics: dict[str, Any] = field(default_factory=dict)
    card: dict[str, Any] = field(default_factory=dict)
    predictions_as_of: dt.date | None = None

    @property
    def outcomes(self) -> list[str]:
        return list(self.metrics.get("outcomes", {}))

    @property
    def training_extract(self) -> dt.date | None:
        """The date the training data ran up to (``data.extract_date`` of the report)."""
        value = self.metrics.get("data", {}).get("extract_date") or self.card.get("data", {}).get(
            "extract_date"
        )
        try:
            return dt.date.fromisoformat(str(value)[:10]) if value else None
        except ValueError:
            return None


def _json(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        log.error("model report JSON could not be parsed")
        return {}
    return value if isinstance(value, dict) else {}


def _file_json(directory: Path | None, name: str) -> dict[str, Any]:
    if directory is None:
        return {}
    path = directory / name
    if not path.is_file():
        return {}
    return _json(path.read_text(encoding="utf-8"))


def load_model_report(conn: Connection | Engine, model_dir: Path | None = None) -> ModelReport | None:
    """The active model's report (else the newest model's), or None when no model has been trained."""
    query = (
        select(
            ModelRun.version,
            ModelRun.created_at,
            ModelRun.active,
            ModelRun.checkpoint_path,
            ModelRun.metrics_json,
            ModelRun.card_json,
        )
        .order_by(ModelRun.active.desc(), ModelRun.created_at.desc())
        .limit(1)
    )
    with connected(conn) as connection:
        row = connection.execute(query).first()
        if row is None:
            return None
        version, created_at, active, checkpoint, metrics_text, card_text = row
        as_of = connection.execute(
            select(func.max(Prediction.as_of)).where(
                Prediction.model_version == version, Prediction.scenario == "current"
            )
        ).scalar_one_or_none()
    directory = Path(checkpoint).parent if checkpoint else (model_dir / version if model_dir else None)
    metrics = _json(metrics_text) or _file_json(directory, METRICS_FILE)
    card = _json(card_text) or _file_json(directory, CARD_JSON)
    return ModelReport(
        version=version,
        trained_at=created_at,
        active=bool(active),
        metrics=metrics,
        card=card,
        predictions_as_of=as_of,
    )


def format_interval(values: Any, digits: int = 3) -> str:
    """'0.786 (0.670 to 0.896)' from a report's [lo, point, hi]; 'n/a' when there is no point estimate."""
    if not isinstance(values, list | tuple) or len(values) != 3 or values[1] is None:
        return "n/a"
    lo, point, hi = values
    if lo is None or hi is None:
        return f"{point:.{digits}f}"
    return f"{point:.{digits}f} ({lo:.{digits}f} to {hi:.{digits}f})"


def format_value(value: Any, digits: int = 4) -> str:
    return "n/a" if not isinstance(value, int | float) else f"{value:.{digits}f}"
