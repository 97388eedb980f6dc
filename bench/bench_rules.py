"""Benchmark: safety rules and clinical scores over a population's full histories.

Generates N random-but-clinically-shaped patients with five years of history (``clinical.benchmark_population``),
then times ``clinical.population.evaluate_population`` (every rule file, scores on as_of). Target (DESIGN.md):
100,000 patients in at most 60 s on 2 CPU cores.

    .venv/bin/python bench/bench_rules.py [N] [--workers W] [--seed S]
"""

from __future__ import annotations

import argparse
import resource
import time
from datetime import date

from clinical.benchmark_population import random_population
from clinical.engine import default_engine
from clinical.population import evaluate_population

AS_OF = date(2025, 6, 30)


def _peak_rss_mb() -> tuple[float, float]:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return own, children


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("patients", nargs="?", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=None, help="worker processes (default: min(2, CPUs))")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    started = time.perf_counter()
    frames = random_population(args.patients, AS_OF, seed=args.seed)
    generated = time.perf_counter() - started
    rows = {name: frame.height for name, frame in frames.items()}
    engine = default_engine()  # loading and compiling the rules is a one-off cost, timed separately
    compiled = time.perf_counter() - started - generated

    began = time.perf_counter()
    flags, scores = evaluate_population(frames, AS_OF, engine=engine, workers=args.workers)
    wall = time.perf_counter() - began
    own, children = _peak_rss_mb()
    print(f"population: {args.patients} patients, rows {rows} (generated in {generated:.1f} s)")
    print(f"rules: {len(engine.rules)} compiled in {compiled:.2f} s")
    print(
        f"flags: {flags.height} periods, {flags['rule_id'].n_unique() if flags.height else 0} rules fired; "
        f"scores: {scores.height} values"
    )
    print(f"wall time: {wall:.1f} s  ->  {args.patients / wall:,.0f} patients/s")
    print(f"peak RSS: {own:.0f} MB (parent), {children:.0f} MB (largest worker)")


if __name__ == "__main__":
    main()
