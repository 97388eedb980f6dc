"""Benchmark: safety rules and clinical scores over a population's full histories.

Generates N random-but-clinically-shaped patients with five years of history (``clinical.benchmark_population``),
then times ``clinical.population.evaluate_population`` (every rule file, scores on as_of). Target (DESIGN.md):
100,000 patients in at most 60 s on 2 CPU cores.

    .venv/bin/python bench/bench_rules.py [N] [--workers W] [--seed S]
"""

from __future__ import annotations

import argparse
import os
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


def _cpu_seconds() -> tuple[float, float]:
    """CPU seconds used so far by this process and by its finished worker processes."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime, children.ru_utime + children.ru_stime


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

    cpu_before = _cpu_seconds()
    began = time.perf_counter()
    flags, scores = evaluate_population(frames, AS_OF, engine=engine, workers=args.workers)
    wall = time.perf_counter() - began
    parent_cpu = _cpu_seconds()[0] - cpu_before[0]
    worker_cpu = _cpu_seconds()[1] - cpu_before[1]
    own, children = _peak_rss_mb()
    print(f"population: {args.patients} patients, rows {rows} (generated in {generated:.1f} s)")
    print(f"rules: {len(engine.rules)} compiled in {compiled:.2f} s")
    print(
        f"flags: {flags.height} periods, {flags['rule_id'].n_unique() if flags.height else 0} rules fired; "
        f"scores: {scores.height} values"
    )
    print(f"wall time: {wall:.1f} s  ->  {args.patients / wall:,.0f} patients/s")
    # On a shared machine wall time depends on other load; CPU time does not. With W idle cores the wall time is
    # about the parent's CPU time (preparing rows, building frames) plus the workers' CPU time divided by W.
    workers = max(1, min(args.workers or 2, os.cpu_count() or 1))
    print(
        f"CPU time: parent {parent_cpu:.1f} s, workers {worker_cpu:.1f} s -> about "
        f"{parent_cpu + worker_cpu / workers:.1f} s wall on {workers} idle cores "
        f"(load average now {os.getloadavg()[0]:.1f})"
    )
    print(f"peak RSS: {own:.0f} MB (parent), {children:.0f} MB (largest worker)")


if __name__ == "__main__":
    main()
