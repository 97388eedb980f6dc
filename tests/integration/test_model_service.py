"""The model service as a real process: every endpoint, bad input, auth, limits, caching and jobs."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from data_access.db import make_engine
from data_access.schema import Patient, Prediction, WhatIfCache

TOKEN = "test-service-token"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_service(database_url: str, model_dir: Path, port: int, log_path: Path) -> subprocess.Popen:
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "MODEL_SERVICE_TOKEN": TOKEN,
        "DYNAIRX_MODEL_DIR": str(model_dir),
        "DYNAIRX_DEVICE": "cpu",
    }
    with log_path.open("wb") as log_file:
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
            stderr=log_file,
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"service exited: {log_path.read_text()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.3)
    process.kill()
    raise RuntimeError("service did not start within 60 s")


@pytest.fixture(scope="module")
def service(
    built_demo: dict[str, object], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, object]]:
    port = _free_port()
    log_path = tmp_path_factory.mktemp("service") / "service.log"
    process = start_service(str(built_demo["url"]), Path(str(built_demo["model_dir"])), port, log_path)
    engine = make_engine(str(built_demo["url"]))
    with engine.connect() as conn:
        patient_ids = [r[0] for r in conn.execute(select(Patient.id).order_by(Patient.id).limit(3))]
    client = httpx.Client(
        base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60
    )
    yield {"client": client, "patients": patient_ids, "engine": engine, "port": port}
    client.close()
    process.terminate()
    process.wait(timeout=10)
    engine.dispose()


def test_health_reports_version_device_and_cache(service: dict) -> None:
    response = httpx.get(f"http://127.0.0.1:{service['port']}/health", timeout=10)
    body = response.json()
    assert response.status_code == 200
    assert body["status"] == "ok" and body["model_version"] and body["device"] == "cpu"
    assert body["cache_size"] > 0
    assert response.headers["X-Model-Version"] == body["model_version"]


def test_requests_without_the_token_are_refused(service: dict) -> None:
    url = f"http://127.0.0.1:{service['port']}"
    assert httpx.get(f"{url}/model", timeout=10).status_code == 401
    wrong = httpx.post(
        f"{url}/predict", json={"patient_id": "x"}, headers={"Authorization": "Bearer nope"}, timeout=10
    )
    assert wrong.status_code == 401 and "token" in wrong.json()["detail"]


def test_model_card_and_metrics(service: dict) -> None:
    body = service["client"].get("/model").json()
    assert body["model_version"]
    assert "outcomes" in body["metrics"]


def test_predict_returns_trajectory_with_bounds(service: dict) -> None:
    response = service["client"].post("/predict", json={"patient_id": service["patients"][0]})
    assert response.status_code == 200
    body = response.json()
    assert body["model_version"] == response.headers["X-Model-Version"]
    assert body["trajectory"], "a trajectory per outcome"


def test_unknown_patient_is_404(service: dict) -> None:
    response = service["client"].post("/predict", json={"patient_id": "NO-SUCH-PATIENT"})
    assert response.status_code == 404
    assert response.json() == {
        "detail": "unknown patient",
        "model_version": response.headers["X-Model-Version"],
    }


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "patient_id"),
        ({"patient_id": ""}, "patient_id"),
        ({"patient_id": "S1", "as_of": "not-a-date"}, "as_of"),
        ({"patient_id": "S1", "unexpected": 1}, "unexpected"),
    ],
)
def test_bad_predict_input_is_422_naming_the_field(service: dict, body: dict, field: str) -> None:
    response = service["client"].post("/predict", json=body)
    assert response.status_code == 422
    assert field in response.json()["detail"]
    assert "Traceback" not in response.text


def test_oversized_request_is_413(service: dict) -> None:
    response = service["client"].post(
        "/what-if", content=b"{" + b" " * 300_000 + b"}", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413


def test_what_if_is_labelled_associational_and_cached(service: dict) -> None:
    patient_id = service["patients"][1]
    predicted = service["client"].post("/predict", json={"patient_id": patient_id}).json()
    drugs = [d for d in predicted.get("active_drugs", [])] or ["ibuprofen"]
    body = {"patient_id": patient_id, "scenario": {"stop": drugs[:1]}}
    first = service["client"].post("/what-if", json=body)
    assert first.status_code == 200, first.text
    assert first.json()["interpretation"] == "associational, not causal"
    assert first.json()["cached"] is False
    second = service["client"].post("/what-if", json=body)
    assert second.json()["cached"] is True
    with service["engine"].connect() as conn:
        assert conn.execute(
            select(WhatIfCache.patient_id).where(WhatIfCache.patient_id == patient_id)
        ).first()


def test_what_if_needs_exactly_one_subject(service: dict) -> None:
    response = service["client"].post("/what-if", json={"scenario": {"stop": ["ibuprofen"]}})
    assert response.status_code == 422 and "patient_id or patient" in response.json()["detail"]


def test_score_job_reports_progress_until_finished(service: dict) -> None:
    with service["engine"].connect() as conn:
        practice = conn.execute(select(Patient.practice_id).limit(1)).scalar_one()
    submitted = service["client"].post("/jobs/score", json={"practice_id": practice})
    assert submitted.status_code == 202
    job_id = submitted.json()["id"]
    deadline = time.monotonic() + 120
    status = {}
    while time.monotonic() < deadline:
        status = service["client"].get(f"/jobs/{job_id}").json()
        if status["status"] in ("finished", "failed"):
            break
        time.sleep(0.5)
    assert status["status"] == "finished", status
    assert status["done"] == status["total"] > 0


def test_unknown_job_and_practice_are_404(service: dict) -> None:
    assert service["client"].get("/jobs/nope").status_code == 404
    assert service["client"].post("/jobs/score", json={"practice_id": "NOPE"}).status_code == 404


def test_service_refuses_to_start_without_token(monkeypatch: pytest.MonkeyPatch) -> None:
    from data_access.settings import MissingSettingError
    from models.service import create_service

    monkeypatch.delenv("MODEL_SERVICE_TOKEN", raising=False)
    with pytest.raises(MissingSettingError, match="MODEL_SERVICE_TOKEN"):
        create_service()


def test_schemathesis_finds_no_server_error(service: dict) -> None:
    """Property-based requests generated from the service's own OpenAPI document never produce a 5xx."""
    schemathesis_cli = Path(sys.executable).with_name("st")
    result = subprocess.run(
        [
            str(schemathesis_cli),
            "run",
            f"http://127.0.0.1:{service['port']}/openapi.json",
            "--checks",
            "not_a_server_error",
            "--max-examples",
            "25",
            "--generation-deterministic",
            "--request-timeout",
            "60",
            "-H",
            f"Authorization: Bearer {TOKEN}",
            "--exclude-path",
            "/jobs/score",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]


def test_dashboard_falls_back_to_the_cache_when_the_service_dies(
    built_demo: dict[str, object], tmp_path: Path
) -> None:
    """Kill the service mid-session: what-if says it is unavailable, the patient page still reads the cache."""
    from app.model_client import ModelUnavailable, Scenario, WhatIfResult, run_what_if
    from data_access.queries.patient import patient_record
    from data_access.queries.scope import Scope
    from data_access.settings import Settings

    port = _free_port()
    process = start_service(
        str(built_demo["url"]), Path(str(built_demo["model_dir"])), port, tmp_path / "svc.log"
    )
    engine = make_engine(str(built_demo["url"]))
    settings = Settings(
        database_url=str(built_demo["url"]),
        model_service_url=f"http://127.0.0.1:{port}",
        model_service_token=TOKEN,
        secret_key="fallback-test-secret-0123456789",
        device="cpu",
        demo=True,
    )
    try:
        with engine.connect() as conn:
            patient_id = conn.execute(
                select(Prediction.patient_id).order_by(Prediction.patient_id).limit(1)
            ).scalar_one()
        view = patient_record(engine, Scope(None), patient_id)
        drug = next((m.ingredients[0] for m in view.medications if m.ingredients), "paracetamol")
        scenario = Scenario(stop=(drug,))
        assert isinstance(run_what_if(engine, settings, patient_id, scenario), WhatIfResult)

        process.kill()
        process.wait(timeout=10)

        answer = run_what_if(engine, settings, patient_id, scenario)
        assert isinstance(answer, ModelUnavailable)
        assert "cannot be reached" in answer.message
        after = patient_record(engine, Scope(None), patient_id)
        assert after.trajectory.model_version == view.trajectory.model_version
        assert any(after.trajectory.points.values()), "risk trajectory still served from the prediction cache"
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
        engine.dispose()
