"""The synthetic generator is deterministic: same seed, same frames and byte-identical Parquet, in any process."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import polars as pl
import pytest

from data_access.sources.synthetic import TABLES, generate_cohort, write_cohort

REPO_ROOT = Path(__file__).resolve().parents[2]
N = 300


@pytest.fixture(scope="module")
def cohort() -> dict[str, pl.DataFrame]:
    return generate_cohort(N, 11)


def _digests(directory: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(directory.iterdir())}


def test_same_seed_gives_identical_frames(cohort: dict[str, pl.DataFrame]) -> None:
    again = generate_cohort(N, 11)
    assert list(again) == list(cohort) == list(TABLES)
    for table in TABLES:
        assert again[table].equals(cohort[table]), table


def test_different_seed_gives_a_different_population(cohort: dict[str, pl.DataFrame]) -> None:
    other = generate_cohort(N, 12)
    for table in ("patient", "condition", "prescription", "observation", "synthetic_truth"):
        assert not other[table].equals(cohort[table]), table


def test_parquet_files_are_byte_identical_and_round_trip(
    cohort: dict[str, pl.DataFrame], tmp_path: Path
) -> None:
    write_cohort(cohort, tmp_path / "a")
    write_cohort(generate_cohort(N, 11), tmp_path / "b")
    assert sorted(_digests(tmp_path / "a")) == sorted(f"{t}.parquet" for t in TABLES)
    assert _digests(tmp_path / "a") == _digests(tmp_path / "b")
    for table in TABLES:
        assert pl.read_parquet(tmp_path / "a" / f"{table}.parquet").equals(cohort[table]), table


def test_parquet_is_identical_across_processes_and_hash_seeds(
    cohort: dict[str, pl.DataFrame], tmp_path: Path
) -> None:
    """Set iteration order depends on PYTHONHASHSEED; the output must not."""
    write_cohort(cohort, tmp_path / "here")
    script = (
        "import sys; from pathlib import Path; "
        "from data_access.sources.synthetic import generate_cohort, write_cohort; "
        f"write_cohort(generate_cohort({N}, 11), Path(sys.argv[1]))"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345", "PYTHONPATH": str(REPO_ROOT)}
    subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "there")], check=True, env=env, cwd=REPO_ROOT
    )
    assert _digests(tmp_path / "here") == _digests(tmp_path / "there")


def test_options_practices_window_and_enrichment() -> None:
    frames = generate_cohort(200, 3, start=date(2022, 1, 1), end=date(2022, 12, 31), practices=5)
    assert frames["practice"]["id"].to_list() == ["P001", "P002", "P003", "P004", "P005"]
    events = frames["event"]["date"]
    assert events.min() >= date(2022, 1, 1) and events.max() <= date(2022, 12, 31)
    assert frames["synthetic_truth"]["month"].n_unique() == 12
    enriched = generate_cohort(400, 3, enrich_smr=True)["patient"]
    older = (enriched["birth_year"] <= 1955).mean()
    assert older > 0.5


def test_invalid_arguments_fail_clearly() -> None:
    with pytest.raises(ValueError, match="n_patients"):
        generate_cohort(0, 1)
    with pytest.raises(ValueError, match="end"):
        generate_cohort(10, 1, start=date(2023, 1, 1), end=date(2022, 1, 1))
    with pytest.raises(ValueError, match="practices"):
        generate_cohort(10, 1, practices=0)
