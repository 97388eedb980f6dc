"""Model versions, saved bundles and the ``model_run`` table.

A version id is ``g-<config>-<data>-<code>``: short hashes of the training configuration, of a fingerprint of the
canonical data it was trained on, and of the model code. The same data, settings and code give the same id, which
is what makes ``train_model`` resumable (an unfinished run of the same id is continued, a finished one is reused)
and scores traceable to exactly what produced them.

Layout of ``<model_dir>/<version>/``: ``model.pt`` (weights and metadata, loadable with ``weights_only=True``),
``training_state.pt`` (per-epoch checkpoint while training), ``metrics.json`` (the metrics report),
``model_card.json`` and ``model_card.md``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl
import torch
from sqlalchemy import Engine, select, update

from data_access.schema import ModelRun
from models.cohort import Cohort
from models.config import ModelConfig
from models.network import TemporalGraphRiskModel
from models.vocabulary import GraphVocabulary

MODEL_FILE = "model.pt"
STATE_FILE = "training_state.pt"
METRICS_FILE = "metrics.json"
CARD_JSON = "model_card.json"
CARD_MD = "model_card.md"
CODE_FILES_EXCLUDED = ("service.py",)


class ModelNotFoundError(LookupError):
    """No trained model (of the requested version) is available."""


def data_fingerprint(cohort: Cohort) -> str:
    """A hash of the canonical rows the model is trained on (row counts and content hashes of every table)."""
    digest = hashlib.sha256()
    for name in ("patient", "social_care", "condition", "prescription", "observation", "event"):
        frame: pl.DataFrame = getattr(cohort, name)
        sort_columns = [c for c in frame.columns if frame.schema[c] != pl.Boolean]
        content = int(frame.sort(sort_columns).hash_rows(seed=0).sum()) if frame.height else 0
        digest.update(f"{name}:{frame.height}:{content}".encode())
    digest.update(cohort.extract_date.isoformat().encode())
    return digest.hexdigest()


def code_fingerprint(vocabulary: GraphVocabulary | None = None) -> str:
    """A hash of the model package's source and of the clinical knowledge frozen into the model's vocabulary.

    The knowledge (drug classes, rules on edges) changes what the network computes as much as the code does, so
    an edited rule file gives a new version rather than silently resuming or reusing an old one.
    """
    digest = hashlib.sha256()
    if vocabulary is not None:
        digest.update(json.dumps(vocabulary.to_dict(), sort_keys=True).encode())
    for path in sorted(Path(__file__).parent.glob("*.py")):
        if path.name not in CODE_FILES_EXCLUDED:
            digest.update(path.name.encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def model_version(config: ModelConfig, data_hash: str, code_hash: str) -> str:
    config_hash = hashlib.sha256(config.canonical_json().encode()).hexdigest()
    return f"g-{config_hash[:6]}-{data_hash[:6]}-{code_hash[:6]}"


@dataclass
class ModelBundle:
    """A trained model with everything needed to score with it."""

    version: str
    config: ModelConfig
    vocabulary: GraphVocabulary
    lab_stats: dict[str, tuple[float, float]]
    calibration: dict[str, tuple[float, float]]
    model: TemporalGraphRiskModel
    meta: dict[str, Any] = field(default_factory=dict)

    def save(self, directory: Path) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / MODEL_FILE
        payload = {
            "state_dict": self.model.state_dict(),
            "meta_json": json.dumps(
                {
                    "version": self.version,
                    "config": self.config.to_dict(),
                    "vocabulary": self.vocabulary.to_dict(),
                    "lab_stats": {k: list(v) for k, v in self.lab_stats.items()},
                    "calibration": {k: list(v) for k, v in self.calibration.items()},
                    "meta": self.meta,
                }
            ),
        }
        temporary = path.with_suffix(".tmp")
        torch.save(payload, temporary)
        temporary.replace(path)
        return path

    @classmethod
    def load(cls, directory: Path, device: torch.device | str = "cpu") -> ModelBundle:
        path = directory / MODEL_FILE
        if not path.exists():
            raise ModelNotFoundError(f"no trained model at {path}")
        payload = torch.load(path, map_location=device, weights_only=True)
        meta = json.loads(payload["meta_json"])
        config = ModelConfig.from_dict(meta["config"])
        vocabulary = GraphVocabulary.from_dict(meta["vocabulary"])
        lab_stats = {k: (float(v[0]), float(v[1])) for k, v in meta["lab_stats"].items()}
        model = TemporalGraphRiskModel(vocabulary, config, lab_stats)
        model.load_state_dict(payload["state_dict"])
        model.to(device)
        model.eval()
        return cls(
            version=meta["version"],
            config=config,
            vocabulary=vocabulary,
            lab_stats=lab_stats,
            calibration={k: (float(v[0]), float(v[1])) for k, v in meta["calibration"].items()},
            model=model,
            meta=meta.get("meta", {}),
        )


def resolve_version(engine: Engine, model_dir: Path, version: str | None) -> str:
    """``version`` if given, else the active model of ``model_run``, else the newest saved model in ``model_dir``."""
    if version:
        return version
    with engine.connect() as connection:
        active = connection.execute(
            select(ModelRun.version).where(ModelRun.active.is_(True)).order_by(ModelRun.created_at.desc())
        ).first()
    if active is not None and (Path(model_dir) / active[0] / MODEL_FILE).exists():
        return active[0]
    saved = sorted(
        (p for p in Path(model_dir).glob(f"*/{MODEL_FILE}")), key=lambda p: p.stat().st_mtime, reverse=True
    )
    if saved:
        return saved[0].parent.name
    raise ModelNotFoundError(f"no trained model in {model_dir}; run 'dynairx train' first")


def record_model_run(engine: Engine, version: str, checkpoint: Path, metrics: dict, card: dict) -> None:
    """Insert or update the ``model_run`` row of ``version`` and make it the only active model."""
    with engine.begin() as connection:
        connection.execute(update(ModelRun).values(active=False))
        exists = connection.execute(select(ModelRun.version).where(ModelRun.version == version)).first()
        values = {
            "checkpoint_path": str(checkpoint),
            "metrics_json": json.dumps(metrics),
            "card_json": json.dumps(card),
            "active": True,
        }
        if exists:
            connection.execute(update(ModelRun).where(ModelRun.version == version).values(**values))
        else:
            connection.execute(
                ModelRun.__table__.insert().values(
                    version=version, created_at=dt.datetime.now(dt.UTC).replace(tzinfo=None), **values
                )
            )
