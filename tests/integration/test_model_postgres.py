"""The model pipeline on a real Postgres: training registers the model, scoring writes the cache through COPY and
replaces (never duplicates) a version's rows, and reads come back from it."""

from __future__ import annotations

import datetime as dt

import pytest
import torch
from sqlalchemy import text

from data_access.loading import load_frames
from data_access.sources.synthetic import generate_cohort
from models.config import ModelConfig
from models.evaluation import evaluate_model
from models.inference import predict_patient
from models.scoring import score_population
from models.training import train_model

pytestmark = pytest.mark.integration

TINY = ModelConfig(
    hidden=8,
    batch_size=32,
    train_months=8,
    holdout_months=2,
    trajectory_months=4,
    mc_samples=4,
    bootstrap_replicates=20,
)


def test_train_score_and_read_back_on_postgres(pg_engine, tmp_path):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny batches: one thread avoids contention on the shared cores
    try:
        load_frames(
            pg_engine, generate_cohort(150, seed=11, start=dt.date(2023, 6, 1), enrich_smr=True, practices=4)
        )
        model_dir = tmp_path / "models"
        version = train_model(pg_engine, model_dir=model_dir, epochs=1, config=TINY, device="cpu")
        assert evaluate_model(pg_engine, model_dir=model_dir)["model_version"] == version
        counts = text(
            "SELECT (SELECT count(*) FROM prediction WHERE model_version = :v), "
            "(SELECT count(*) FROM explanation WHERE model_version = :v)"
        )
        score_population(pg_engine, model_dir=model_dir, device="cpu")
        with pg_engine.connect() as connection:
            first = connection.execute(counts, {"v": version}).one()
        score_population(pg_engine, model_dir=model_dir, device="cpu")
        with pg_engine.connect() as connection:
            second = connection.execute(counts, {"v": version}).one()
            patient_id = connection.execute(text("SELECT patient_id FROM explanation LIMIT 1")).scalar_one()
        assert first == second and first[0] > 0 and first[1] > 0
        answer = predict_patient(pg_engine, patient_id, model_dir=model_dir, device="cpu")
        assert answer["source"] == "cache" and answer["model_version"] == version
    finally:
        torch.set_num_threads(threads)
