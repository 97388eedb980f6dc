"""The ``dynairx`` command line (DESIGN.md, "Command line").

Each sub-command is a thin shell over one plain function in the package that owns the work; imports are lazy so
that quick commands (``flags``, ``users``) do not pay for torch or Dash.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import secrets
import sys
import time
from pathlib import Path

log = logging.getLogger("dynairx")

DEFAULT_DEMO_PATIENTS = 2000
# Enough for the demo's model to learn the planted interactions in a few minutes on two CPU cores; `dynairx train`
# uses the full schedule with early stopping.
DEFAULT_DEMO_EPOCHS = 6
DEFAULT_DEMO_SEED = 20241


class CliError(Exception):
    """A user-facing error: printed without a traceback, exit status 2."""


def _engine():
    from data_access.db import make_engine
    from data_access.migrate import upgrade_database

    engine = make_engine()
    upgrade_database(engine)
    return engine


def _model_dir(args: argparse.Namespace) -> Path:
    from data_access.settings import model_dir

    return Path(args.model_dir) if args.model_dir else model_dir()


def cmd_migrate(_args: argparse.Namespace) -> int:
    from data_access.settings import database_url

    _engine().dispose()
    print(f"Database is at the latest schema: {_redact(database_url())}")
    return 0


def cmd_synth(args: argparse.Namespace) -> int:
    from data_access.sources.synthetic import generate_cohort, write_cohort

    started = time.perf_counter()
    frames = generate_cohort(args.patients, args.seed, enrich_smr=args.enrich_smr, progress=True)
    write_cohort(frames, Path(args.out))
    rows = ", ".join(f"{table} {frame.height:,}" for table, frame in frames.items())
    print(
        f"Wrote synthetic cohort (seed {args.seed}) to {args.out}: {rows} in {time.perf_counter() - started:.1f} s"
    )
    if args.load:
        return _load_frames(frames)
    return 0


def cmd_load(args: argparse.Namespace) -> int:
    from data_access.loading import read_canonical_dir

    return _load_frames(read_canonical_dir(Path(args.directory)))


def _load_frames(frames) -> int:  # noqa: ANN001 - dict of polars frames
    from data_access.derive import refresh_derived
    from data_access.loading import load_frames

    engine = _engine()
    started = time.perf_counter()
    counts = load_frames(engine, frames)
    ids = frames["patient"]["id"].to_list()
    refresh_derived(engine, patient_ids=ids, progress=True)
    summary = ", ".join(f"{table} {n:,}" for table, n in counts.items())
    print(f"Loaded {summary} and computed flags and scores in {time.perf_counter() - started:.1f} s")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from data_access.sources.importing import run_import

    engine = _engine()
    summary = run_import(
        args.kind,
        Path(args.path),
        engine,
        rejects_path=Path(args.rejects) if args.rejects else None,
        progress=True,
    )
    print(summary.as_text())
    return 0


def cmd_flags(args: argparse.Namespace) -> int:
    from clinical.patient_json import PatientJsonError, flags_report

    path = Path(args.patient_json)
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except FileNotFoundError as exc:
        raise CliError(f"{path}: no such file") from exc
    except json.JSONDecodeError as exc:
        raise CliError(
            f"{path}: not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})"
        ) from exc
    try:
        report = flags_report(data)
    except PatientJsonError as exc:
        raise CliError(f"{path}: {exc}") from exc
    json.dump(report, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from models.training import train_model

    version = train_model(
        _engine(),
        model_dir=_model_dir(args),
        epochs=args.epochs,
        seed=args.seed,
        hpo_trials=args.hpo_trials,
        progress=True,
    )
    print(f"Trained model {version}; report and model card in {_model_dir(args) / version}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from models.evaluation import evaluate_model

    report = evaluate_model(_engine(), model_dir=_model_dir(args), version=args.version)
    if args.json:
        json.dump(report, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    print(f"Model {report['model_version']}")
    for outcome, by_model in report["outcomes"].items():
        print(f"  {outcome}")
        for name, metrics in by_model.items():
            lo, point, hi = metrics["auroc"]
            if point is None:  # no events of this outcome in the test split: AUROC is undefined
                print(f"    {name:<22} AUROC not defined (no events in the test split)")
                continue
            print(
                f"    {name:<22} AUROC {point:.3f} ({_fmt(lo)}-{_fmt(hi)})  Brier {_fmt(metrics['brier'], 4)}  "
                f"ECE {_fmt(metrics['ece'], 4)}"
            )
    return 0


def _fmt(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def cmd_score(args: argparse.Namespace) -> int:
    from data_access.worklist_build import refresh_worklist
    from models.scoring import score_population

    engine = _engine()
    stats = score_population(engine, model_dir=_model_dir(args), version=args.version, progress=True)
    refresh_worklist(engine)
    print(f"Scored {stats.get('patients', 0):,} patients ({stats.get('patients_per_second', 0):,.0f}/s)")
    return 0


def cmd_users(args: argparse.Namespace) -> int:
    from app.security import add_user, disable_user, list_users

    engine = _engine()
    if args.users_command == "add":
        password = os.environ.get("DYNAIRX_NEW_USER_PASSWORD") or _prompt_password()
        practices = [p.strip() for p in (args.practices or "").split(",") if p.strip()]
        add_user(engine, args.username, args.role, practices, password)
        print(f"Added {args.role} account {args.username}")
    elif args.users_command == "list":
        for user in list_users(engine):
            print(
                f"{user['username']:<24} {user['role']:<12} {'active' if user['active'] else 'disabled':<9} "
                f"{','.join(user['practices']) or '-'}"
            )
    else:
        disable_user(engine, args.username)
        print(f"Disabled {args.username}")
    return 0


def _prompt_password() -> str:
    import getpass

    first = getpass.getpass("Password: ")
    if first != getpass.getpass("Repeat password: "):
        raise CliError("passwords differ")
    return first


def cmd_demo(args: argparse.Namespace) -> int:
    from data_access.demo import build_demo_database

    engine = _engine()
    summary = build_demo_database(
        engine, patients=args.patients, seed=args.seed, epochs=args.epochs, progress=True
    )
    print(summary)
    password = _demo_password()
    from app.security import ensure_demo_accounts

    ensure_demo_accounts(engine, password)
    print("Demo accounts: demo-gp, demo-pharmacist, demo-researcher, demo-admin")
    if args.build_only:
        return 0
    return _serve(args.host, args.port, demo=True)


def _demo_password() -> str:
    password = os.environ.get("DYNAIRX_DEMO_PASSWORD")
    if password:
        print("Demo password: as set in DYNAIRX_DEMO_PASSWORD")
        return password
    saved = Path("var/demo-password.txt")
    if saved.exists():
        password = saved.read_text().strip()
    else:
        password = secrets.token_urlsafe(12)
        saved.parent.mkdir(parents=True, exist_ok=True)
        saved.write_text(password + "\n")
        saved.chmod(0o600)
    print(f"Demo password (saved in {saved}): {password}")
    return password


def cmd_serve(args: argparse.Namespace) -> int:
    return _serve(args.host, args.port, demo=args.demo)


def _serve(host: str, port: int, *, demo: bool) -> int:
    from app import create_app
    from data_access.settings import Settings

    app = create_app(Settings.from_env(demo=demo))
    print(f"DynAIRx dashboard on http://{host}:{port}/ (Ctrl+C to stop)")
    app.run(host=host, port=port, debug=False)
    return 0


def cmd_model_service(args: argparse.Namespace) -> int:
    import uvicorn

    from models.service import create_service

    uvicorn.run(create_service(), host=args.host, port=args.port, timeout_keep_alive=5)
    return 0


def _redact(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dynairx", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("demo", help="build the synthetic demo and serve the dashboard")
    p.add_argument("--patients", type=int, default=DEFAULT_DEMO_PATIENTS)
    p.add_argument("--seed", type=int, default=DEFAULT_DEMO_SEED)
    p.add_argument(
        "--epochs", type=int, default=DEFAULT_DEMO_EPOCHS, help="training epochs of the demo model"
    )
    p.add_argument("--port", type=int, default=8050)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--build-only", action="store_true", help="build everything, then exit without serving")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("synth", help="write a synthetic cohort (Parquet, canonical layout)")
    p.add_argument("--patients", type=int, required=True)
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--enrich-smr", action="store_true", help="enrich for older, multimorbid patients")
    p.add_argument("--load", action="store_true", help="also load it into the database (DATABASE_URL)")
    p.set_defaults(func=cmd_synth)

    p = sub.add_parser("load", help="load a canonical cohort directory into the database")
    p.add_argument("directory")
    p.set_defaults(func=cmd_load)

    p = sub.add_parser("import", help="import Synthea CSV, OMOP CDM or FHIR R4 data (all or nothing)")
    p.add_argument("kind", choices=["synthea", "omop", "fhir"])
    p.add_argument("path")
    p.add_argument("--rejects", help="where to write the rejects report (CSV)")
    p.set_defaults(func=cmd_import)

    p = sub.add_parser("flags", help="evaluate one patient (Patient JSON) and print flags and scores")
    p.add_argument("--patient-json", required=True)
    p.set_defaults(func=cmd_flags)

    p = sub.add_parser("migrate", help="apply database migrations")
    p.set_defaults(func=cmd_migrate)

    for name, func, text in (
        ("train", cmd_train, "fit the risk model"),
        ("evaluate", cmd_evaluate, "evaluate the model against baselines"),
        ("score", cmd_score, "fill the prediction cache"),
    ):
        p = sub.add_parser(name, help=text)
        p.add_argument("--model-dir", default=None, help="default: DYNAIRX_MODEL_DIR or var/models")
        if name == "train":
            p.add_argument("--epochs", type=int, default=None)
            p.add_argument("--seed", type=int, default=0)
            p.add_argument("--hpo-trials", type=int, default=0)
        else:
            p.add_argument("--version", default=None)
        if name == "evaluate":
            p.add_argument("--json", action="store_true")
        p.set_defaults(func=func)

    p = sub.add_parser("serve", help="serve the dashboard (production: gunicorn, see Procfile)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8050)
    p.add_argument("--demo", action="store_true")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("model-service", help="serve the model HTTP API")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8060)
    p.set_defaults(func=cmd_model_service)

    p = sub.add_parser("users", help="manage local accounts")
    users = p.add_subparsers(dest="users_command", required=True)
    u = users.add_parser("add")
    u.add_argument("username")
    u.add_argument("--role", required=True, choices=["gp", "pharmacist", "researcher", "admin"])
    u.add_argument("--practices", help="comma-separated practice ids (GPs and pharmacists)")
    users.add_parser("list")
    u = users.add_parser("disable")
    u.add_argument("username")
    p.set_defaults(func=cmd_users)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        return args.func(args)
    except CliError as exc:
        print(f"dynairx {args.command}: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - known user errors get a clean message, the rest re-raise
        from data_access.settings import MissingSettingError

        if isinstance(exc, MissingSettingError | ValueError) and not args.verbose:
            print(f"dynairx {args.command}: {exc}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main())
