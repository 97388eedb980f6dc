"""The model service: an HTTP API (FastAPI) over the prediction cache and the model (DESIGN.md, issue 7).

In production it runs on the GPU node, apart from the web servers; the dashboard calls it when
``MODEL_SERVICE_URL`` is set. Why it is built this way:
- Every answer carries the model version (body and ``X-Model-Version`` header) so a reader can always tell which
  model produced a number.
- Service-to-service authentication is a bearer token from the environment (``MODEL_SERVICE_TOKEN``); the service
  refuses to start without one, because an unauthenticated endpoint that returns per-patient risk is a data leak.
- Model calls run in a worker thread under a timeout, so one slow request answers 504 instead of hanging a client;
  requests above ``MAX_REQUEST_BYTES`` are refused with 413 before they are parsed; unexpected errors answer a
  generic 500 without a stack trace (the trace goes to the log, which carries no patient details).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import json
import logging
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Engine, func, select, text

from data_access.db import make_engine
from data_access.migrate import upgrade_database
from data_access.schema import ModelRun, Patient, Prediction, WhatIfCache
from data_access.settings import model_dir as default_model_dir
from data_access.settings import require_env

log = logging.getLogger(__name__)

MAX_REQUEST_BYTES = 256 * 1024
REQUEST_TIMEOUT_S = 30.0
JOB_BATCH_PATIENTS = 500


class ServiceError(Exception):
    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


# ---------------------------------------------------------------- request bodies (the OpenAPI document)
class PredictRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    patient_id: str = Field(min_length=1, max_length=64)
    as_of: dt.date | None = None


class Scenario(BaseModel):
    model_config = ConfigDict(extra="forbid")
    stop: list[str] = Field(default_factory=list, max_length=50)
    start: list[str] = Field(default_factory=list, max_length=50)
    switch: list[tuple[str, str]] = Field(default_factory=list, max_length=50)
    from_: dt.date | None = Field(default=None, alias="from")

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "stop": self.stop,
            "start": self.start,
            "switch": [list(p) for p in self.switch],
        }
        if self.from_ is not None:
            data["from"] = self.from_.isoformat()
        return data

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(self.as_dict(), sort_keys=True).encode()).hexdigest()[:32]


class WhatIfRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    patient_id: str | None = Field(default=None, min_length=1, max_length=64)
    patient: dict[str, Any] | None = Field(default=None, description="Patient JSON (DESIGN.md)")
    scenario: Scenario


class ScoreJobRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    practice_id: str | None = Field(
        default=None, description="refresh one practice; omit for the whole population"
    )


# ---------------------------------------------------------------- jobs
@dataclass
class Job:
    id: str
    practice_id: str | None
    status: Literal["queued", "running", "finished", "failed"] = "queued"
    total: int = 0
    done: int = 0
    error: str | None = None
    started_at: str = field(default_factory=lambda: dt.datetime.now(dt.UTC).isoformat())
    finished_at: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "practice_id": self.practice_id,
            "status": self.status,
            "total": self.total,
            "done": self.done,
            "error": self.error,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
        }


class JobRunner:
    """Score jobs run one at a time in a background thread, in batches so progress is visible."""

    def __init__(self, engine: Engine, model_dir: Path) -> None:
        self.engine = engine
        self.model_dir = model_dir
        self.jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self._run_lock = threading.Lock()

    def submit(self, practice_id: str | None) -> Job:
        job = Job(id=uuid.uuid4().hex, practice_id=practice_id)
        with self._lock:
            self.jobs[job.id] = job
        threading.Thread(target=self._run, args=(job,), daemon=True, name=f"score-{job.id[:8]}").start()
        return job

    def _run(self, job: Job) -> None:
        from data_access.worklist_build import refresh_worklist
        from models.scoring import score_population

        with self._run_lock:
            job.status = "running"
            try:
                query = select(Patient.id).order_by(Patient.id)
                if job.practice_id is not None:
                    query = query.where(Patient.practice_id == job.practice_id)
                with self.engine.connect() as conn:
                    ids = [r[0] for r in conn.execute(query)]
                job.total = len(ids)
                for start in range(0, len(ids), JOB_BATCH_PATIENTS):
                    batch = ids[start : start + JOB_BATCH_PATIENTS]
                    score_population(self.engine, model_dir=self.model_dir, patient_ids=batch)
                    job.done += len(batch)
                refresh_worklist(self.engine, patient_ids=ids)
                job.status = "finished"
            except Exception:  # noqa: BLE001 - a failed job is reported through its status, not a crash
                log.exception("score job %s failed", job.id)
                job.status = "failed"
                job.error = "scoring failed; see the service log"
            finally:
                job.finished_at = dt.datetime.now(dt.UTC).isoformat()


# ---------------------------------------------------------------- the application
def create_service(
    engine: Engine | None = None,
    *,
    token: str | None = None,
    model_dir: Path | None = None,
    timeout_s: float = REQUEST_TIMEOUT_S,
) -> FastAPI:
    """Build the service. Without arguments it reads DATABASE_URL and MODEL_SERVICE_TOKEN (required)."""
    token = token or require_env("MODEL_SERVICE_TOKEN", "the model service authenticates its callers with it")
    if engine is None:
        engine = make_engine()
        upgrade_database(engine)
    model_dir = model_dir or default_model_dir()
    jobs = JobRunner(engine, model_dir)

    service = FastAPI(
        title="DynAIRx model service",
        version="1",
        description="Risk trajectories, drivers and what-if scenarios from the DynAIRx temporal graph model. "
        "What-if answers are associations learned by the model, not causal effects.",
    )
    service.state.engine = engine

    def active_version() -> str | None:
        with engine.connect() as conn:
            return conn.execute(
                select(ModelRun.version).where(ModelRun.active.is_(True)).order_by(ModelRun.created_at.desc())
            ).scalar()

    def check_token(request: Request) -> None:
        supplied = request.headers.get("authorization", "")
        expected = f"Bearer {token}"
        if not hmac.compare_digest(supplied.encode(), expected.encode()):
            raise ServiceError(401, "missing or wrong bearer token")

    async def run_with_timeout(fn, *args, **kwargs):  # noqa: ANN001, ANN202
        try:
            return await asyncio.wait_for(asyncio.to_thread(fn, *args, **kwargs), timeout=timeout_s)
        except TimeoutError as exc:
            raise ServiceError(504, f"the model did not answer within {timeout_s:.0f} s") from exc

    @service.middleware("http")
    async def limits_and_version(request: Request, call_next):  # noqa: ANN001, ANN202
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > MAX_REQUEST_BYTES):
            return _error(413, f"request body larger than {MAX_REQUEST_BYTES} bytes", None)
        if request.method in ("POST", "PUT", "PATCH") and length is None:
            body = await request.body()
            if len(body) > MAX_REQUEST_BYTES:
                return _error(413, f"request body larger than {MAX_REQUEST_BYTES} bytes", None)
        try:
            response = await call_next(request)
        except Exception:  # noqa: BLE001 - never leak a trace to a client
            log.exception("unhandled error on %s", request.url.path)
            response = _error(500, "internal error", None)
        version = await asyncio.to_thread(_safe_version, active_version)
        response.headers["X-Model-Version"] = version or "none"
        return response

    @service.exception_handler(ServiceError)
    async def service_error(_request: Request, exc: ServiceError) -> JSONResponse:
        return _error(exc.status, exc.detail, _safe_version(active_version))

    @service.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = []
        for err in exc.errors():
            location = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
            problems.append(f"{location or 'body'}: {err.get('msg', 'invalid')}")
        return _error(422, "; ".join(problems), _safe_version(active_version))

    @service.exception_handler(HTTPException)
    async def http_error(_request: Request, exc: HTTPException) -> JSONResponse:
        return _error(exc.status_code, str(exc.detail), _safe_version(active_version))

    @service.get("/health")
    async def health() -> dict[str, Any]:
        import torch

        from models.device import select_device

        def cache_size() -> int:
            with engine.connect() as conn:
                return conn.execute(select(func.count()).select_from(Prediction)).scalar_one()

        version = await asyncio.to_thread(active_version)
        return {
            "status": "ok" if version else "no-model",
            "model_version": version,
            "device": str(select_device()),
            "cuda_available": torch.cuda.is_available(),
            "cache_size": await asyncio.to_thread(cache_size),
        }

    @service.get("/model", dependencies=[Depends(check_token)])
    async def model_card() -> dict[str, Any]:
        def load() -> dict[str, Any]:
            query = (
                select(ModelRun.version, ModelRun.created_at, ModelRun.card_json, ModelRun.metrics_json)
                .where(ModelRun.active.is_(True))
                .order_by(ModelRun.created_at.desc())
            )
            with engine.connect() as conn:
                run = conn.execute(query).first()
            if run is None:
                raise ServiceError(404, "no trained model")
            return {
                "model_version": run.version,
                "created_at": run.created_at.isoformat(),
                "card": json.loads(run.card_json or "{}"),
                "metrics": json.loads(run.metrics_json or "{}"),
            }

        return await run_with_timeout(load)

    @service.post("/predict", dependencies=[Depends(check_token)])
    async def predict(body: PredictRequest) -> dict[str, Any]:
        from models.inference import predict_patient

        await run_with_timeout(_require_patient, engine, body.patient_id)
        version = await asyncio.to_thread(active_version)
        if version is None:
            raise ServiceError(503, "no trained model")
        result = await run_with_timeout(predict_patient, engine, body.patient_id, as_of=body.as_of)
        result.setdefault("model_version", version)
        return result

    @service.post("/what-if", dependencies=[Depends(check_token)])
    async def what_if_endpoint(body: WhatIfRequest) -> dict[str, Any]:
        from models.inference import what_if

        if (body.patient_id is None) == (body.patient is None):
            raise ServiceError(422, "patient_id or patient: give exactly one")
        version = await asyncio.to_thread(active_version)
        if version is None:
            raise ServiceError(503, "no trained model")
        if body.patient_id is not None:
            await run_with_timeout(_require_patient, engine, body.patient_id)
            subject = f"patient:{body.patient_id}"
        else:
            subject = (
                "json:" + hashlib.sha256(json.dumps(body.patient, sort_keys=True).encode()).hexdigest()[:32]
            )
        scenario_hash = body.scenario.digest()
        key = hashlib.sha256(f"{subject}|{version}|{scenario_hash}".encode()).hexdigest()
        cached = await asyncio.to_thread(_cache_get, engine, key)
        if cached is not None:
            cached["cached"] = True
            return cached
        try:
            result = await run_with_timeout(
                what_if,
                engine,
                patient_id=body.patient_id,
                patient_json=body.patient,
                scenario=body.scenario.as_dict(),
            )
        except (ValueError, KeyError) as exc:
            raise ServiceError(422, f"scenario or patient: {exc}") from exc
        result.setdefault("model_version", version)
        result.setdefault("interpretation", "associational, not causal")
        await asyncio.to_thread(_cache_put, engine, key, body.patient_id, version, scenario_hash, result)
        result["cached"] = False
        return result

    @service.post("/jobs/score", dependencies=[Depends(check_token)], status_code=202)
    async def submit_score_job(body: ScoreJobRequest) -> dict[str, Any]:
        if body.practice_id is not None:
            known = await asyncio.to_thread(_practice_exists, engine, body.practice_id)
            if not known:
                raise ServiceError(404, f"no practice {body.practice_id}")
        return jobs.submit(body.practice_id).as_dict()

    @service.get("/jobs/{job_id}", dependencies=[Depends(check_token)])
    async def job_status(job_id: str) -> dict[str, Any]:
        job = jobs.jobs.get(job_id)
        if job is None:
            raise ServiceError(404, "no such job")
        return job.as_dict()

    return service


def _safe_version(active_version) -> str | None:  # noqa: ANN001
    try:
        return active_version()
    except Exception:  # noqa: BLE001 - the version header must never turn an answer into an error
        return None


def _error(status: int, detail: str, version: str | None) -> JSONResponse:
    return JSONResponse({"detail": detail, "model_version": version}, status_code=status)


def _require_patient(engine: Engine, patient_id: str) -> None:
    with engine.connect() as conn:
        found = conn.execute(select(Patient.id).where(Patient.id == patient_id)).first()
    if found is None:
        raise ServiceError(404, "unknown patient")


def _practice_exists(engine: Engine, practice_id: str) -> bool:
    with engine.connect() as conn:
        return (
            conn.execute(text("SELECT 1 FROM practice WHERE id = :p"), {"p": practice_id}).first() is not None
        )


def _cache_get(engine: Engine, key: str) -> dict[str, Any] | None:
    with engine.connect() as conn:
        row = conn.execute(select(WhatIfCache.result_json).where(WhatIfCache.cache_key == key)).first()
    return json.loads(row[0]) if row else None


def _cache_put(
    engine: Engine, key: str, patient_id: str | None, version: str, scenario_hash: str, result: dict[str, Any]
) -> None:
    with engine.begin() as conn:
        conn.execute(WhatIfCache.__table__.delete().where(WhatIfCache.cache_key == key))
        conn.execute(
            WhatIfCache.__table__.insert().values(
                cache_key=key,
                patient_id=patient_id,
                model_version=version,
                scenario_hash=scenario_hash,
                result_json=json.dumps(result, default=str),
                created_at=dt.datetime.now(dt.UTC).replace(tzinfo=None),
            )
        )
