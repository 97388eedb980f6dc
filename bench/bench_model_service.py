"""Latency of the model service's /predict, cached and uncached (issue 7), against a built demo database.

Starts the real service (uvicorn, one process) on a free loopback port, then measures:
- cached:   /predict for patients whose trajectory is in the prediction cache;
- uncached: /predict after that patient's cached rows for the active model are deleted, so the service computes
            and caches the trajectory again (the first call per patient).
Prints p50/p95 in milliseconds and the ratio uncached/cached. Loopback only; bounded request counts.

    python bench/bench_model_service.py --database-url sqlite:///var/dynairx.sqlite --model-dir var/models
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time

import httpx
from sqlalchemy import delete, select

from data_access.db import make_engine
from data_access.schema import ModelRun, Prediction

TOKEN = "bench-token"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--database-url", default=os.environ.get("DATABASE_URL", "sqlite:///var/dynairx.sqlite")
    )
    parser.add_argument("--model-dir", default=os.environ.get("DYNAIRX_MODEL_DIR", "var/models"))
    parser.add_argument("--patients", type=int, default=40)
    args = parser.parse_args()

    engine = make_engine(args.database_url)
    with engine.connect() as conn:
        version = conn.execute(select(ModelRun.version).where(ModelRun.active.is_(True))).scalar()
        patients = [
            r[0]
            for r in conn.execute(
                select(Prediction.patient_id)
                .where(Prediction.model_version == version)
                .distinct()
                .limit(args.patients)
            )
        ]
    if not version or not patients:
        print(
            "no active model or no cached predictions: run `dynairx demo --build-only` first", file=sys.stderr
        )
        return 2
    port = _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": args.database_url,
        "MODEL_SERVICE_TOKEN": TOKEN,
        "DYNAIRX_MODEL_DIR": args.model_dir,
        "DYNAIRX_DEVICE": os.environ.get("DYNAIRX_DEVICE", "cpu"),
    }
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "models.service:create_service",
                "--factory",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--log-level",
                "warning",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        try:
            client = httpx.Client(
                base_url=f"http://127.0.0.1:{port}", timeout=120, headers={"Authorization": f"Bearer {TOKEN}"}
            )
            deadline = time.monotonic() + 90
            while True:
                try:
                    if client.get("/health").status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline or process.poll() is not None:
                    print("service did not start", file=sys.stderr)
                    return 1
                time.sleep(0.3)
            client.post("/predict", json={"patient_id": patients[0]})  # warm the model
            cached = []
            for pid in patients:
                started = time.perf_counter()
                assert client.post("/predict", json={"patient_id": pid}).status_code == 200
                cached.append((time.perf_counter() - started) * 1000)
            uncached = []
            for pid in patients:
                with engine.begin() as conn:
                    conn.execute(
                        delete(Prediction).where(
                            Prediction.patient_id == pid, Prediction.model_version == version
                        )
                    )
                started = time.perf_counter()
                assert client.post("/predict", json={"patient_id": pid}).status_code == 200
                uncached.append((time.perf_counter() - started) * 1000)
            client.close()
        finally:
            process.terminate()
            process.wait(timeout=10)
    c50, c95 = _percentiles(cached)
    u50, u95 = _percentiles(uncached)
    print(f"model {version}, {len(patients)} patients, load average {os.getloadavg()[0]:.1f}")
    print(f"/predict cached:   p50 {c50:7.1f} ms  p95 {c95:7.1f} ms")
    print(
        f"/predict uncached: p50 {u50:7.1f} ms  p95 {u95:7.1f} ms  (uncached/cached p50 = {u50 / c50:.1f}x)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
