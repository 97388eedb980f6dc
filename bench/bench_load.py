"""Load test: concurrent signed-in clinicians on gunicorn, over worklist and patient pages, with audit accounting.

Starts the dashboard under gunicorn on 127.0.0.1 (loopback only), signs in ``--users`` simulated GPs and
pharmacists (accounts created for the run, each assigned one practice), and for ``--duration`` seconds each one
loops over: worklist page → worklist rows (AG Grid block) → a patient page of their practice → that patient's
record callback. Every patient page render is one audited "view". At the end it prints request counts, error count,
latency percentiles per step, and checks that the audit table holds exactly one ``view_patient`` record per view.

The database: ``--database-url`` (or ``DATABASE_URL``) must hold a built worklist (``dynairx demo --build-only``);
an SQLite file is copied first so the run never writes into it. Without either, a demo database of
``--build-patients`` synthetic patients is built in a temporary directory (minutes: it trains the model).

    .venv/bin/python bench/bench_load.py [--users 50] [--duration 60] [--workers 2] [--threads 8]

Exit status 0 only if there were no errors and no audit record was lost or duplicated.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from sqlalchemy import select
from sqlalchemy.engine import make_url

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from app.security.passwords import hash_password  # noqa: E402
from data_access.db import make_engine  # noqa: E402
from data_access.queries.audit import AuditFilter, count_audit, utc_now  # noqa: E402
from data_access.schema import Practice, WorklistEntry  # noqa: E402
from data_access.users import disable_user, upsert_user  # noqa: E402

CSRF_INPUT = re.compile(r'name="csrf_token" value="([^"]+)"')
REQUEST_TIMEOUT_S = 60.0
# One connection per request: gunicorn's gthread worker, when saturated, may close a kept-alive connection that
# already carries the next request (the client sees ReadError). In production a reverse proxy owns client
# keep-alive; here a fresh loopback connection per request measures the app, not that race.
CLIENT_LIMITS = httpx.Limits(max_keepalive_connections=0)
ROWS_PER_BLOCK = 100
WSGI_MODULE = """
from app import create_app
from data_access.settings import Settings

# demo=True: plain-http loopback, so cookies are not marked Secure (the bench never leaves 127.0.0.1).
server = create_app(Settings.from_env(demo=True)).server
"""


@dataclass
class Stats:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: list[str] = field(default_factory=list)
    views: int = 0

    def record(self, step: str, seconds: float) -> None:
        self.latencies[step].append(seconds)


@dataclass(frozen=True)
class Callbacks:
    router: dict
    rows: dict
    patient: dict


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _prepare_database(args: argparse.Namespace, workdir: Path) -> str:
    url = args.database_url or os.environ.get("DATABASE_URL")
    if url:
        parsed = make_url(url)
        if parsed.get_backend_name() == "sqlite" and parsed.database and not args.in_place:
            copy = workdir / "bench.sqlite"
            shutil.copy(parsed.database, copy)
            return f"sqlite:///{copy}"
        return url
    from data_access.demo import build_demo_database
    from data_access.migrate import upgrade_database

    url = f"sqlite:///{workdir / 'bench.sqlite'}"
    engine = make_engine(url)
    upgrade_database(engine)
    print(f"Building a demo database of {args.build_patients} patients (this trains the model once)...")
    print(
        build_demo_database(
            engine, patients=args.build_patients, seed=7, epochs=1, model_dir=workdir / "models"
        )
    )
    engine.dispose()
    return url


def _create_accounts(url: str, users: int) -> tuple[list[str], str]:
    """One bench clinician per simulated user, spread over the practices that have worklist entries."""
    engine = make_engine(url)
    with engine.connect() as conn:
        practices = list(
            conn.execute(
                select(Practice.id)
                .where(Practice.id.in_(select(WorklistEntry.practice_id)))
                .order_by(Practice.id)
            ).scalars()
        )
    if not practices:
        raise SystemExit(
            "The database has no worklist: run `dynairx demo --build-only` (or pass no database)."
        )
    password = secrets.token_urlsafe(18)
    password_hash = hash_password(password)
    names = []
    for i in range(users):
        name = f"bench-clinician-{i:03d}"
        role = "gp" if i % 2 == 0 else "pharmacist"
        upsert_user(engine, name, role, [practices[i % len(practices)]], password_hash)
        names.append(name)
    engine.dispose()
    return names, password


def _start_gunicorn(url: str, port: int, workdir: Path, workers: int, threads: int) -> subprocess.Popen:
    (workdir / "bench_wsgi.py").write_text(textwrap.dedent(WSGI_MODULE))
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "SECRET_KEY": secrets.token_urlsafe(48),
        "PYTHONPATH": os.pathsep.join([str(workdir), str(REPO), os.environ.get("PYTHONPATH", "")]),
        "WEB_CONCURRENCY": str(workers),
        "GUNICORN_THREADS": str(threads),
    }
    env.pop("MODEL_SERVICE_URL", None)
    gunicorn = Path(sys.executable).with_name("gunicorn")
    command = [
        str(gunicorn),
        "-c",
        str(REPO / "gunicorn.conf.py"),
        "--bind",
        f"127.0.0.1:{port}",
        "bench_wsgi:server",
    ]
    log = (workdir / "gunicorn.log").open(
        "wb"
    )  # a file, not a pipe nobody reads (a full pipe blocks gunicorn)
    return subprocess.Popen(command, cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT)


def _wait_until_up(base_url: str, process: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit("gunicorn exited early; see its log above")
        try:
            if httpx.get(f"{base_url}/login", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise SystemExit("gunicorn did not start in time")


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _body(spec: dict, values: dict[str, object]) -> dict:
    def items(kind: str) -> list[dict]:
        return [
            {"id": i["id"], "property": i["property"], "value": values.get(f"{i['id']}.{i['property']}")}
            for i in spec.get(kind, [])
        ]

    output = spec["output"]
    if output.startswith(".."):
        outputs: object = [
            {"id": part.rsplit(".", 1)[0], "property": part.rsplit(".", 1)[1]}
            for part in output.strip(".").split("...")
        ]
    else:
        outputs = {"id": output.rsplit(".", 1)[0], "property": output.rsplit(".", 1)[1]}
    inputs = items("inputs")
    return {
        "output": output,
        "outputs": outputs,
        "inputs": inputs,
        "state": items("state"),
        "changedPropIds": [f"{i['id']}.{i['property']}" for i in inputs],
    }


async def _step(client: httpx.AsyncClient, stats: Stats, step: str, method: str, url: str, **kwargs: object):  # noqa: ANN202
    started = time.perf_counter()
    try:
        response = await client.request(method, url, **kwargs)
    except httpx.HTTPError as exc:
        stats.errors.append(f"{step}: {type(exc).__name__}")
        return None
    stats.record(step, time.perf_counter() - started)
    if response.status_code not in (200, 204, 302):
        stats.errors.append(f"{step}: HTTP {response.status_code}")
        return None
    return response


async def _callback(client: httpx.AsyncClient, stats: Stats, step: str, spec: dict, values: dict):  # noqa: ANN202
    headers = {"X-CSRFToken": client.cookies.get("_csrf_token", "")}
    return await _step(
        client, stats, step, "POST", "/_dash-update-component", json=_body(spec, values), headers=headers
    )


async def _clinician(
    base_url: str,
    username: str,
    password: str,
    callbacks: Callbacks,
    deadline: float,
    stats: Stats,
    *,
    start_delay: float = 0.0,
    think_s: float = 0.0,
) -> None:
    await asyncio.sleep(start_delay)  # clinicians arrive over the ramp, as at the start of a clinic session
    async with httpx.AsyncClient(
        base_url=base_url, timeout=REQUEST_TIMEOUT_S, limits=CLIENT_LIMITS
    ) as client:
        page = await _step(client, stats, "sign-in form", "GET", "/login")
        if page is None:
            return
        token = CSRF_INPUT.search(page.text).group(1)
        signed = await _step(
            client,
            stats,
            "sign in",
            "POST",
            "/login",
            data={"username": username, "password": password, "csrf_token": token},
        )
        if signed is None or signed.status_code != 302:
            stats.errors.append(f"sign in refused for {username}")
            return
        start_row = 0
        while time.monotonic() < deadline:
            await _step(client, stats, "worklist page", "GET", "/")
            await _callback(
                client,
                stats,
                "worklist layout",
                callbacks.router,
                {"_pages_location.pathname": "/", "_pages_location.search": ""},
            )
            request = {
                "startRow": start_row,
                "endRow": start_row + ROWS_PER_BLOCK,
                "sortModel": [],
                "filterModel": {},
            }
            rows = await _callback(
                client,
                stats,
                "worklist rows",
                callbacks.rows,
                {"worklist-grid.getRowsRequest": request, "worklist-query.data": ""},
            )
            if rows is None:
                continue
            data = rows.json()["response"]["worklist-grid"]["getRowsResponse"]
            patients = [row["patient_id"] for row in data["rowData"]]
            start_row = (
                0
                if not patients or start_row + ROWS_PER_BLOCK >= data["rowCount"]
                else start_row + ROWS_PER_BLOCK
            )
            if not patients:
                continue
            patient = patients[secrets.randbelow(len(patients))]
            await _step(client, stats, "patient page", "GET", f"/patient/{patient}")
            view = await _callback(
                client,
                stats,
                "patient layout (audited view)",
                callbacks.router,
                {"_pages_location.pathname": f"/patient/{patient}", "_pages_location.search": ""},
            )
            if view is not None and view.status_code == 200:
                stats.views += 1
            await _callback(client, stats, "patient record", callbacks.patient, {"patient-id.data": patient})
            if think_s:
                await asyncio.sleep(think_s)


def _discover_callbacks(base_url: str, username: str, password: str) -> Callbacks:
    with httpx.Client(base_url=base_url, timeout=REQUEST_TIMEOUT_S) as client:
        token = CSRF_INPUT.search(client.get("/login").text).group(1)
        client.post("/login", data={"username": username, "password": password, "csrf_token": token})
        specs = client.get("/_dash-dependencies").json()

    def find(fragment: str) -> dict:
        return next(s for s in specs if fragment in s["output"])

    return Callbacks(
        router=find("_pages_content.children"),
        rows=find("worklist-grid.getRowsResponse"),
        patient=find("patient-header.children"),
    )


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _report(stats: Stats, elapsed: float, audited: int) -> bool:
    everything = [v for values in stats.latencies.values() for v in values]
    browsing = [v for step, values in stats.latencies.items() if not step.startswith("sign") for v in values]
    print(
        f"\n{len(everything):,} requests in {elapsed:.0f} s ({len(everything) / elapsed:,.1f} req/s), "
        f"{len(stats.errors)} errors"
    )
    print(f"{'step':<32}{'count':>8}{'p50 ms':>10}{'p95 ms':>10}{'p99 ms':>10}{'max ms':>10}")
    for step, values in stats.latencies.items():
        print(
            f"{step:<32}{len(values):>8}{statistics.median(values) * 1000:>10.0f}"
            f"{_percentile(values, 0.95) * 1000:>10.0f}{_percentile(values, 0.99) * 1000:>10.0f}"
            f"{max(values) * 1000:>10.0f}"
        )
    if everything:
        print(
            f"{'all requests':<32}{len(everything):>8}{statistics.median(everything) * 1000:>10.0f}"
            f"{_percentile(everything, 0.95) * 1000:>10.0f}{_percentile(everything, 0.99) * 1000:>10.0f}"
            f"{max(everything) * 1000:>10.0f}"
        )
    if browsing:
        print(
            f"{'pages and callbacks (signed in)':<32}{len(browsing):>8}{statistics.median(browsing) * 1000:>10.0f}"
            f"{_percentile(browsing, 0.95) * 1000:>10.0f}{_percentile(browsing, 0.99) * 1000:>10.0f}"
            f"{max(browsing) * 1000:>10.0f}"
        )
    print(f"patient views: {stats.views:,}; view_patient audit records written during the run: {audited:,}")
    for error in sorted(set(stats.errors))[:10]:
        print(f"  error: {error} (x{stats.errors.count(error)})")
    ok = not stats.errors and audited == stats.views
    print("RESULT:", "OK - zero errors, one audit record per view" if ok else "FAILED")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--ramp", type=float, default=10.0, help="seconds over which the clinicians sign in")
    parser.add_argument("--think", type=float, default=0.0, help="pause after each patient, seconds")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--database-url", default=None)
    parser.add_argument(
        "--in-place", action="store_true", help="use an SQLite file directly instead of a copy"
    )
    parser.add_argument("--build-patients", type=int, default=500)
    args = parser.parse_args()
    if not 1 <= args.users <= 500 or not 1 <= args.duration <= 3600 or not 0 <= args.ramp < args.duration:
        parser.error("--users must be 1-500, --duration 1-3600 seconds and --ramp shorter than the duration")

    with tempfile.TemporaryDirectory(prefix="dynairx-bench-") as tmp:
        workdir = Path(tmp)
        url = _prepare_database(args, workdir)
        names, password = _create_accounts(url, args.users)
        port = _free_port()
        base_url = f"http://127.0.0.1:{port}"
        process = _start_gunicorn(url, port, workdir, args.workers, args.threads)
        try:
            _wait_until_up(base_url, process)
            callbacks = _discover_callbacks(base_url, names[0], password)
            stats = Stats()
            started_at = utc_now()
            print(
                f"{args.users} clinicians for {args.duration:.0f} s on gunicorn "
                f"({args.workers} workers x {args.threads} threads) at {base_url}"
            )
            started = time.monotonic()
            deadline = started + args.duration

            async def run_all() -> None:
                await asyncio.gather(
                    *(
                        _clinician(
                            base_url,
                            name,
                            password,
                            callbacks,
                            deadline,
                            stats,
                            start_delay=args.ramp * i / len(names),
                            think_s=args.think,
                        )
                        for i, name in enumerate(names)
                    )
                )

            asyncio.run(asyncio.wait_for(run_all(), timeout=args.duration + 4 * REQUEST_TIMEOUT_S))
            elapsed = time.monotonic() - started
        finally:
            _stop(process)
            if process.returncode not in (0, -signal.SIGTERM) or "stats" not in locals() or stats.errors:
                tail = (workdir / "gunicorn.log").read_text(errors="replace")[-3000:]
                print(f"--- gunicorn log (last lines) ---\n{tail}")
        engine = make_engine(url)
        audited = sum(
            count_audit(
                engine, AuditFilter(username=name, action="view_patient", outcome="allowed", since=started_at)
            )
            for name in names
        )
        if args.database_url or os.environ.get("DATABASE_URL"):
            for name in names:
                disable_user(engine, name)  # the bench accounts never outlive the run
        engine.dispose()
        return 0 if _report(stats, elapsed, audited) else 1


if __name__ == "__main__":
    raise SystemExit(main())
