"""A short load test (the 30-second cousin of bench/bench_load.py): concurrent signed-in users browse worklists
and patient pages over real HTTP; no request fails and the audit trail holds exactly one record per patient view.
"""

from __future__ import annotations

import re
import statistics
import threading
import time
from dataclasses import dataclass, field

import httpx
from security_support import PASSWORD, PATIENTS, USERS, security_app, seed_practices, seed_users
from sqlalchemy import Engine
from werkzeug.serving import make_server

from data_access.queries.audit import AuditFilter, count_audit

CONCURRENT_USERS = 16
DURATION_S = 4.0
CSRF_INPUT = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class Tally:
    views: int = 0
    requests: int = 0
    errors: list[str] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _timed(
    tally: Tally, client: httpx.Client, method: str, url: str, **kwargs: object
) -> httpx.Response | None:
    started = time.perf_counter()
    try:
        response = client.request(method, url, **kwargs)
    except httpx.HTTPError as exc:
        with tally.lock:
            tally.errors.append(f"{method} {url}: {type(exc).__name__}")
        return None
    elapsed = time.perf_counter() - started
    with tally.lock:
        tally.requests += 1
        tally.latencies.append(elapsed)
        if response.status_code not in {200, 204, 302}:
            tally.errors.append(f"{method} {url}: {response.status_code}")
    return response


def _callback(client: httpx.Client, output: str, component: str, prop: str, value: object) -> dict:
    body = {
        "output": output,
        "outputs": [
            {"id": o.rsplit(".", 1)[0], "property": o.rsplit(".", 1)[1]}
            for o in output.strip(".").split("...")
        ]
        if output.startswith("..")
        else {"id": output.rsplit(".", 1)[0], "property": output.rsplit(".", 1)[1]},
        "inputs": [{"id": component, "property": prop, "value": value}],
        "changedPropIds": [f"{component}.{prop}"],
        "state": [],
    }
    if component == "_pages_location":
        body["inputs"].append({"id": "_pages_location", "property": "search", "value": ""})
    return {"json": body, "headers": {"X-CSRFToken": client.cookies.get("_csrf_token", "")}}


def _simulated_user(base_url: str, username: str, router: str, deadline: float, tally: Tally) -> None:
    practices = set(USERS[username][1])
    mine = [pid for pid, practice in PATIENTS.items() if practice in practices]
    with httpx.Client(base_url=base_url, timeout=30, follow_redirects=False) as client:
        page = _timed(tally, client, "GET", "/login")
        token = CSRF_INPUT.search(page.text).group(1) if page is not None else ""
        signed = _timed(
            tally,
            client,
            "POST",
            "/login",
            data={"username": username, "password": PASSWORD, "csrf_token": token},
        )
        if signed is None or signed.status_code != 302:
            return
        turn = 0
        while time.monotonic() < deadline:
            patient = mine[turn % len(mine)]
            turn += 1
            _timed(tally, client, "GET", "/sec-worklist")
            _timed(
                tally,
                client,
                "POST",
                "/_dash-update-component",
                **_callback(client, "sec-list.children", "sec-filter", "value", ""),
            )
            _timed(tally, client, "GET", f"/sec-patient/{patient}")
            view = _timed(
                tally,
                client,
                "POST",
                "/_dash-update-component",
                **_callback(client, router, "_pages_location", "pathname", f"/sec-patient/{patient}"),
            )
            if view is not None and view.status_code == 200:
                with tally.lock:
                    tally.views += 1
            _timed(
                tally,
                client,
                "POST",
                "/_dash-update-component",
                **_callback(client, "sec-patient-detail.children", "sec-patient-id", "data", patient),
            )


def test_concurrent_users_lose_no_audit_record(db_engine: Engine) -> None:
    seed_practices(db_engine)
    seed_users(db_engine)
    with security_app(db_engine) as app:
        server = make_server("127.0.0.1", 0, app.server, threaded=True)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        base_url = f"http://127.0.0.1:{server.server_port}"
        try:
            with httpx.Client(base_url=base_url) as probe:
                page = probe.get("/login")
                token = CSRF_INPUT.search(page.text).group(1)
                probe.post("/login", data={"username": "admin", "password": PASSWORD, "csrf_token": token})
                router = next(
                    s["output"]
                    for s in probe.get("/_dash-dependencies").json()
                    if "_pages_content" in s["output"]
                )
            tally = Tally()
            clinicians = [u for u, (role, _) in USERS.items() if role in {"gp", "pharmacist"}]
            deadline = time.monotonic() + DURATION_S
            users = [
                threading.Thread(
                    target=_simulated_user,
                    args=(base_url, clinicians[i % len(clinicians)], router, deadline, tally),
                )
                for i in range(CONCURRENT_USERS)
            ]
            for user in users:
                user.start()
            for user in users:
                user.join(timeout=DURATION_S + 60)
        finally:
            server.shutdown()
            thread.join(timeout=10)
    assert not tally.errors, tally.errors[:5]
    assert tally.views >= CONCURRENT_USERS
    recorded = count_audit(db_engine, AuditFilter(action="view_patient", outcome="allowed"))
    assert recorded == tally.views
    p95 = statistics.quantiles(tally.latencies, n=20)[-1]
    print(f"{tally.requests} requests, {tally.views} patient views, p95 {p95 * 1000:.0f} ms")
    assert p95 < 5.0, p95
