"""Benchmark: the prescription sequence symmetry screen of every pair among the 200 commonest drugs.

Makes a population with the project's synthetic generator (``data_access.sources.synthetic.generate_cohort``,
default 100,000 patients, five years of prescribing), then times what the /patterns page does for a fresh scope:
first-ever starts, incident users (365-day run-in), and the screen of all pairs with their crude, null-effect and
adjusted sequence ratios and 95 % intervals. Target (issue): at most 60 s on 2 CPU cores.

The generator prescribes fewer than 200 distinct drugs, so the screen of its drugs covers all of them; a second
timing screens the 200 commonest items among drugs *and* drug classes together, which is the full 200-item size
(19,900 pairs).

    .venv/bin/python bench/bench_sequence_symmetry.py [N] [--seed S] [--cohort DIR]

``--cohort DIR`` reuses (or writes) the generated prescription and patient tables as Parquet in DIR.
"""

from __future__ import annotations

import argparse
import os
import resource
import time
from datetime import date
from pathlib import Path

import polars as pl

from clinical.knowledge import load_knowledge
from clinical.sequence_symmetry import (
    SymmetryParameters,
    commonest_items,
    first_starts,
    incident_starts,
    screen,
)

STUDY_START = date(2021, 1, 1)  # the generator's default window
STUDY_END = date(2025, 12, 31)


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _cohort(patients: int, seed: int, directory: Path | None) -> tuple[pl.DataFrame, pl.DataFrame, float]:
    if directory is not None and (directory / "prescription.parquet").exists():
        return (
            pl.read_parquet(directory / "prescription.parquet"),
            pl.read_parquet(directory / "patient.parquet"),
            0.0,
        )
    from data_access.sources.synthetic import generate_cohort

    began = time.perf_counter()
    frames = generate_cohort(patients, seed=seed, start=STUDY_START, end=STUDY_END)
    generated = time.perf_counter() - began
    if directory is not None:
        directory.mkdir(parents=True, exist_ok=True)
        frames["prescription"].write_parquet(directory / "prescription.parquet")
        frames["patient"].write_parquet(directory / "patient.parquet")
    return frames["prescription"], frames["patient"], generated


def _timed(label: str, work):  # noqa: ANN001, ANN202 - a thunk and its result
    cpu = _cpu_seconds()
    began = time.perf_counter()
    result = work()
    wall = time.perf_counter() - began
    print(f"{label}: wall {wall:.2f} s, CPU {_cpu_seconds() - cpu:.2f} s")
    return result, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("patients", nargs="?", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--cohort", type=Path, default=None, help="directory to reuse or keep the generated tables"
    )
    args = parser.parse_args()

    prescriptions, patients, generated = _cohort(args.patients, args.seed, args.cohort)
    starts = (
        prescriptions.filter(pl.col("ingredients") != "")
        .select("patient_id", pl.col("ingredients").str.split(";").alias("drug"), "start")
        .explode("drug")
    )
    observed = patients.select(
        pl.col("id").alias("patient_id"), pl.col("registered_on").alias("observed_from")
    )
    params = SymmetryParameters()
    print(
        f"population: {patients.height:,} patients, {prescriptions.height:,} prescriptions, "
        f"{starts['drug'].n_unique()} distinct drugs"
        + (f" (generated in {generated:.0f} s)" if generated else " (read from --cohort)")
    )

    def drug_screen() -> pl.DataFrame:
        incident = incident_starts(first_starts(starts), params, STUDY_START, STUDY_END, observed)
        return screen(incident, params, top_n=200)

    table, drug_wall = _timed(
        "screen of the 200 commonest drugs (first starts + incident users + all pairs)", drug_screen
    )
    print(
        f"  {table.height:,} pairs with at least {params.min_pairs} ordered pairs, {int(table['signal'].sum())} signals"
    )

    groups = {drug: [drug] for drug in starts["drug"].unique().to_list()}
    groups.update(
        {f"class:{key}": sorted(members) for key, members in load_knowledge().class_members.items()}
    )

    def mixed_screen() -> tuple[pl.DataFrame, int]:
        incident = incident_starts(first_starts(starts, groups), params, STUDY_START, STUDY_END, observed)
        items = commonest_items(incident, 200)
        return screen(incident, params, items=items), len(items)

    (mixed, items), mixed_wall = _timed("screen of the 200 commonest drugs and classes", mixed_screen)
    print(
        f"  {items} items ({items * (items - 1) // 2:,} pairs), {mixed.height:,} with at least {params.min_pairs}"
    )
    worst = max(drug_wall, mixed_wall)
    verdict = "within" if worst <= 60 else "OVER"
    print(
        f"result: {worst:.1f} s for the larger screen, {verdict} the 60 s target "
        f"(load average now {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)"
    )


if __name__ == "__main__":
    main()
