"""Benchmark: train and evaluate the temporal graph risk model on a synthetic cohort; print the metrics table.

Generates N patients with ``data_access.sources.synthetic.generate_cohort`` (or reuses the SQLite file given with
``--db``), trains with ``models.training.train_model`` (practice split, early stopping, validation calibration,
optional Optuna search) and prints, per outcome, AUROC with 95% CI, AUPRC, Brier and ECE of the graph model, the
baselines (logistic regression, LightGBM, eFI, CMS) and the oracle (the generator's true risk), on the test
practices and on the temporal hold-out. Target (DESIGN.md): within 0.02 AUROC of the oracle and above every
baseline.

    .venv/bin/python bench/bench_model.py --patients 20000 [--seed 1] [--epochs N] [--hpo-trials K]
        [--practices P] [--general-population] [--db PATH] [--model-dir DIR]

The cohort is the generator's SMR-enriched population (older, multimorbid: the patients Structured Medication
Reviews target) unless ``--general-population`` is given.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from sqlalchemy import func, select

from data_access.db import make_engine
from data_access.migrate import upgrade_database
from data_access.schema import Patient


def _prepare_database(args: argparse.Namespace, directory: Path):  # noqa: ANN202 - Engine
    from data_access.loading import load_frames
    from data_access.sources.synthetic import generate_cohort

    path = Path(args.db) if args.db else directory / "bench_model.sqlite"
    engine = make_engine(f"sqlite:///{path}")
    upgrade_database(engine)
    with engine.connect() as connection:
        present = connection.execute(select(func.count()).select_from(Patient)).scalar_one()
    if present:
        print(f"database {path}: reusing {present:,} patients")
        return engine
    started = time.perf_counter()
    practices = args.practices or max(3, args.patients // 1000)
    enrich = not args.general_population
    frames = generate_cohort(args.patients, args.seed, practices=practices, enrich_smr=enrich, progress=True)
    generated = time.perf_counter() - started
    load_frames(engine, frames)
    print(
        f"generated {args.patients:,} patients in {practices} practices (seed {args.seed}"
        f"{', SMR-enriched' if enrich else ', general population'}) in {generated:.0f} s; loaded in "
        f"{time.perf_counter() - started - generated:.0f} s"
    )
    return engine


def _ci(values: list) -> str:
    lo, point, hi = values
    if point is None:
        return "n/a"
    return f"{point:.3f} ({lo:.3f}-{hi:.3f})" if lo is not None else f"{point:.3f}"


def print_table(title: str, outcomes: dict) -> None:
    print(f"\n{title}")
    print(
        f"  {'outcome':<20} {'model':<20} {'AUROC (95% CI)':<22} {'AUPRC':>7} {'Brier':>7} {'ECE':>7} {'events':>7}"
    )
    for outcome, by_model in outcomes.items():
        for name, m in by_model.items():
            auprc = m["auprc"][1]
            print(
                f"  {outcome:<20} {name:<20} {_ci(m['auroc']):<22} "
                f"{(f'{auprc:.3f}' if auprc is not None else 'n/a'):>7} {m['brier']:>7.4f} {m['ece']:>7.4f} "
                f"{m['events']:>7}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--hpo-trials", type=int, default=0)
    parser.add_argument("--practices", type=int, default=None, help="default: one per 1,000 patients")
    parser.add_argument(
        "--general-population",
        action="store_true",
        help="the generator's general practice list (default: its SMR-enriched, older multimorbid population)",
    )
    parser.add_argument("--db", default=None, help="SQLite file to create or reuse")
    parser.add_argument("--model-dir", default=None)
    args = parser.parse_args()

    from models.evaluation import evaluate_model
    from models.training import train_model

    with tempfile.TemporaryDirectory() as scratch:
        directory = Path(scratch)
        engine = _prepare_database(args, directory)
        model_dir = Path(args.model_dir) if args.model_dir else directory / "models"
        started = time.perf_counter()
        version = train_model(
            engine,
            model_dir=model_dir,
            epochs=args.epochs,
            seed=args.seed,
            hpo_trials=args.hpo_trials,
            progress=True,
        )
        seconds = time.perf_counter() - started
        report = evaluate_model(engine, model_dir=model_dir, version=version)
        data = report["data"]
        training = report.get("training", {})
        print(f"\nmodel {version}: trained and evaluated in {seconds:.0f} s")
        print(
            f"  patients {data['patients']:,}; split by {data['split_method']} {data['split_patients']}; "
            f"landmarks {data['landmarks'][0]}..{data['landmarks'][1]}; labelled {data['labelled_landmarks']}"
        )
        if training.get("history"):
            last = training["history"][-1]
            print(
                f"  epochs run {len(training['history'])}, best epoch {training.get('best_epoch')}, "
                f"last epoch {last['seconds']:.0f} s"
            )
        print_table("Test practices (fit months)", report["outcomes"])
        print_table(
            f"Temporal hold-out ({report['temporal_holdout']['landmarks'][0]} onwards)",
            report["temporal_holdout"]["outcomes"],
        )
        print(
            "\nGraph model AUROC minus each other model's (paired patient bootstrap 95% CI), test practices"
        )
        for outcome, entry in report["comparison"].items():
            differences = "; ".join(
                f"{key.removeprefix('graph_minus_')} {value[1]:+.3f} ({value[0]:+.3f} to {value[2]:+.3f})"
                for key, value in entry.items()
                if key.startswith("graph_minus_") and value[1] is not None and value[0] is not None
            )
            print(f"  {outcome:<20} {differences}")
            print(
                f"  {'':<20} ahead of every baseline: {entry.get('beats_every_baseline')}; "
                f"with 95% CI above 0: {entry.get('ahead_95ci')}; within 0.02 of the oracle: "
                f"{entry.get('within_0.02_of_oracle')}"
            )
        engine.dispose()


if __name__ == "__main__":
    main()
