"""Benchmark: scoring throughput (patients per second) of the trained model on CPU, and on CUDA when present.

For each device it times ``models.scoring.score_population`` without writing (reading the canonical rows, building
the snapshot graphs, the network's trajectories with bounds and the counterfactual drivers of the latest month),
then once with writing the prediction cache (CPU), and extrapolates to 100,000 and 1,000,000 patients. Targets
(DESIGN.md): 100,000 patients in minutes on CPU; 1,000,000 in minutes, not hours, on a GPU.

    .venv/bin/python bench/bench_scoring.py [--patients 20000] [--db PATH] [--model-dir DIR] [--batch-size 512]
        [--devices cpu,cuda] [--no-explain] [--threads N]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
from sqlalchemy import func, select

from data_access.db import make_engine
from data_access.migrate import upgrade_database
from data_access.schema import ModelRun, Patient


def _database(args: argparse.Namespace, directory: Path):  # noqa: ANN202 - Engine
    from data_access.loading import load_frames
    from data_access.sources.synthetic import generate_cohort

    path = Path(args.db) if args.db else directory / "bench_scoring.sqlite"
    engine = make_engine(f"sqlite:///{path}")
    upgrade_database(engine)
    with engine.connect() as connection:
        present = connection.execute(select(func.count()).select_from(Patient)).scalar_one()
    if not present:
        started = time.perf_counter()
        frames = generate_cohort(args.patients, args.seed, practices=max(3, args.patients // 1000))
        load_frames(engine, frames)
        print(f"generated and loaded {args.patients:,} patients in {time.perf_counter() - started:.0f} s")
    return engine


def _model(engine, model_dir: Path) -> str:  # noqa: ANN001 - Engine
    """The active model, or a quickly trained one (the weights do not change the cost of scoring)."""
    from models.registry import ModelNotFoundError, resolve_version
    from models.training import train_model

    try:
        return resolve_version(engine, model_dir, None)
    except ModelNotFoundError:
        started = time.perf_counter()
        version = train_model(engine, model_dir=model_dir, epochs=1, progress=False)
        print(f"trained a 1-epoch model for timing in {time.perf_counter() - started:.0f} s")
        return version


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--db", default=None)
    parser.add_argument("--model-dir", default=None)
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument(
        "--devices", default=None, help="comma-separated; default cpu, plus cuda when available"
    )
    parser.add_argument("--no-explain", action="store_true", help="time trajectories without the drivers")
    parser.add_argument(
        "--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)"
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    from models.scoring import score_population

    devices = (
        args.devices.split(",") if args.devices else ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    )
    with tempfile.TemporaryDirectory() as scratch:
        directory = Path(scratch)
        engine = _database(args, directory)
        model_dir = Path(args.model_dir) if args.model_dir else directory / "models"
        version = _model(engine, model_dir)
        with engine.connect() as connection:
            patients = connection.execute(select(func.count()).select_from(Patient)).scalar_one()
            assert connection.execute(select(ModelRun.version).where(ModelRun.version == version)).first()
        print(f"model {version}; {patients:,} patients; torch threads {torch.get_num_threads()}")
        for device in devices:
            stats = score_population(
                engine,
                model_dir=model_dir,
                version=version,
                batch_size=args.batch_size,
                device=device,
                explain=not args.no_explain,
                write=False,
            )
            rate, model_rate = stats["patients_per_second"], stats["model_patients_per_second"]
            print(
                f"{device}: {rate:,.0f} patients/s end to end without DB writes ({stats['seconds']:.1f} s), "
                f"network and drivers alone {model_rate:,.0f} patients/s; "
                f"100,000 patients ~ {100_000 / rate / 60:.1f} min, 1,000,000 ~ {1_000_000 / rate / 60:.0f} min"
            )
        stats = score_population(
            engine,
            model_dir=model_dir,
            version=version,
            batch_size=args.batch_size,
            device="cpu",
            explain=not args.no_explain,
        )
        print(
            f"cpu with writing the cache: {stats['patients_per_second']:,.0f} patients/s ({stats['seconds']:.1f} s; "
            f"{stats['predictions']:,} prediction rows, {stats['explanations']:,} explanation rows)"
        )
        engine.dispose()


if __name__ == "__main__":
    main()
