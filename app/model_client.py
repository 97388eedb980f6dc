"""The dashboard's one door to the model's what-if: in-process by default, over HTTP when MODEL_SERVICE_URL is set.

Why one function: the patient page must not care where the model runs (DESIGN.md: the model service may sit on a
GPU node). ``run_what_if`` returns either a ``WhatIfResult`` or a ``ModelUnavailable`` with a message a clinician can
read; it never raises for a missing model, an unreachable service or an unexpected answer, because the patient page
must stay usable without the model.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine

from data_access.settings import Settings

log = logging.getLogger(__name__)

HTTP_TIMEOUT_S = 30.0
Series = list[tuple[dt.date, float]]


@dataclass(frozen=True)
class Scenario:
    """Medicines to stop, start or switch (drug keys), from a date (default: the model's 'now')."""

    stop: tuple[str, ...] = ()
    start: tuple[str, ...] = ()
    switch: tuple[tuple[str, str], ...] = ()
    from_date: dt.date | None = None

    @classmethod
    def from_controls(
        cls,
        stop: Sequence[str] | None,
        switch_from: str | None,
        switch_to: str | None,
        from_date: str | None,
        none_value: str = "*",
    ) -> Scenario:
        """The scenario the what-if controls describe: a switch needs both ends (``none_value`` is the selects'
        "no choice"); a medicine being switched is not also stopped; an unparseable date is ignored."""
        switch_from = None if switch_from in (None, "", none_value) else switch_from
        switch_to = None if switch_to in (None, "", none_value) else switch_to
        switch = ((switch_from, switch_to),) if switch_from and switch_to and switch_from != switch_to else ()
        try:
            start = dt.date.fromisoformat(from_date) if from_date else None
        except ValueError:
            start = None
        stop_keys = tuple(dict.fromkeys(s for s in stop or () if s and s != none_value and s != switch_from))
        return cls(stop=stop_keys, switch=switch, from_date=start)

    def is_empty(self) -> bool:
        return not (self.stop or self.start or self.switch)

    def as_dict(self) -> dict[str, Any]:
        """The scenario in the shape of ``models.inference.what_if`` and the service's ``/what-if`` body."""
        data: dict[str, Any] = {
            "stop": list(self.stop),
            "start": list(self.start),
            "switch": [list(p) for p in self.switch],
        }
        if self.from_date is not None:
            data["from"] = self.from_date.isoformat()
        return data

    def describe(self) -> str:
        """'stop ibuprofen; switch naproxen → paracetamol' (drug names only: safe for the audit log)."""
        parts = [f"stop {d}" for d in self.stop] + [f"start {d}" for d in self.start]
        parts += [f"switch {a} → {b}" for a, b in self.switch]
        return "; ".join(parts) or "no change"


@dataclass(frozen=True)
class WhatIfResult:
    current: dict[str, Series]
    scenario: dict[str, Series]
    model_version: str | None
    interpretation: str = "associational, not causal"
    notes: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class ModelUnavailable:
    message: str


def run_what_if(
    engine: Engine, settings: Settings, patient_id: str, scenario: Scenario
) -> WhatIfResult | ModelUnavailable:
    """Ask the model for the patient's forward trajectory with and without the scenario."""
    if scenario.is_empty():
        return ModelUnavailable("Choose at least one medicine to stop, start or switch.")
    try:
        if settings.model_service_url:
            raw = _what_if_over_http(settings, patient_id, scenario)
        else:
            raw = _what_if_in_process(engine, patient_id, scenario)
    except ModelUnavailableError as exc:
        return ModelUnavailable(str(exc))
    except Exception:  # noqa: BLE001 - the page must survive any model failure; the trace goes to the log
        log.exception("what-if failed")
        return ModelUnavailable("The model could not answer just now. The rest of this page is unaffected.")
    try:
        return parse_what_if(raw)
    except (KeyError, TypeError, ValueError):
        log.exception("unexpected what-if answer")
        return ModelUnavailable("The model gave an answer this page cannot read. Please report this.")


class ModelUnavailableError(RuntimeError):
    """The model is not installed, not trained, or the service refused the request (message is user-facing)."""


def _what_if_in_process(engine: Engine, patient_id: str, scenario: Scenario) -> Mapping[str, Any]:
    try:
        from models.inference import what_if
    except ImportError as exc:
        raise ModelUnavailableError("The risk model is not installed on this server.") from exc
    try:
        return what_if(engine, patient_id=patient_id, scenario=scenario.as_dict())
    except (FileNotFoundError, LookupError) as exc:
        raise ModelUnavailableError("No trained model is available yet, so a what-if cannot be run.") from exc
    except ValueError as exc:
        raise ModelUnavailableError(f"The model could not use this scenario: {exc}") from exc


def _what_if_over_http(settings: Settings, patient_id: str, scenario: Scenario) -> Mapping[str, Any]:
    import httpx

    url = settings.model_service_url.rstrip("/") + "/what-if"
    headers = (
        {"Authorization": f"Bearer {settings.model_service_token}"} if settings.model_service_token else {}
    )
    try:
        response = httpx.post(
            url,
            json={"patient_id": patient_id, "scenario": scenario.as_dict()},
            headers=headers,
            timeout=HTTP_TIMEOUT_S,
        )
    except httpx.HTTPError as exc:
        raise ModelUnavailableError("The model service cannot be reached just now.") from exc
    if response.status_code == 503:
        raise ModelUnavailableError("No trained model is available yet, so a what-if cannot be run.")
    if response.status_code == 422:
        raise ModelUnavailableError("The model could not use this scenario.")
    if response.status_code >= 400:
        raise ModelUnavailableError(f"The model service answered with an error ({response.status_code}).")
    return response.json()


def parse_what_if(raw: Mapping[str, Any]) -> WhatIfResult:
    """Read the model's answer: ``{"current": {outcome: [points]}, "scenario": {outcome: [points]}, ...}`` where a
    point is ``{"as_of" | "date" | "month": "YYYY-MM-DD", "risk": float}`` or ``["YYYY-MM-DD", risk]``."""
    current, scenario = raw.get("current"), raw.get("scenario")
    if current is None and isinstance(raw.get("trajectories"), Mapping):
        current, scenario = raw["trajectories"].get("current"), raw["trajectories"].get("scenario")
    if not isinstance(current, Mapping) or not isinstance(scenario, Mapping):
        raise ValueError("what-if answer lacks current and scenario trajectories")
    notes = raw.get("notes") or raw.get("warnings") or ()
    return WhatIfResult(
        current={str(k): _series(v) for k, v in current.items()},
        scenario={str(k): _series(v) for k, v in scenario.items()},
        model_version=raw.get("model_version"),
        interpretation=str(raw.get("interpretation") or "associational, not causal"),
        notes=tuple(str(n) for n in notes)
        if isinstance(notes, Sequence) and not isinstance(notes, str)
        else (),
    )


def _series(points: Any) -> Series:
    if isinstance(points, Mapping):  # {"as_of": [...], "risk": [...]} columns
        dates = points.get("as_of") or points.get("dates") or points.get("month") or []
        return [(_date(d), float(r)) for d, r in zip(dates, points.get("risk") or [], strict=False)]
    out: Series = []
    for point in points or []:
        if isinstance(point, Mapping):
            day = point.get("as_of") or point.get("date") or point.get("month")
            out.append((_date(day), float(point["risk"])))
        else:
            out.append((_date(point[0]), float(point[1])))
    return sorted(out)


def _date(value: Any) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value)[:10])
