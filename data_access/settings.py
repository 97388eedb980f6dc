"""Settings read from the environment (DESIGN.md, "Configuration").

Required settings fail loudly at start-up with a message naming the variable, as job-server's ``get_env_var`` does:
a half-configured clinical system is worse than one that refuses to start.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_VAR_DIR = Path("var")
DEFAULT_SQLITE_FILE = "dynairx.sqlite"


class MissingSettingError(RuntimeError):
    """A required environment variable is not set."""

    def __init__(self, name: str, why: str) -> None:
        super().__init__(f"Environment variable {name} is required: {why}")
        self.name = name


def default_database_url() -> str:
    """The embedded SQLite file under ./var/ (created on first use)."""
    return f"sqlite:///{(DEFAULT_VAR_DIR / DEFAULT_SQLITE_FILE).as_posix()}"


def database_url() -> str:
    return os.environ.get("DATABASE_URL") or default_database_url()


def model_dir() -> Path:
    """Where trained models (checkpoints, metrics reports, model cards) live: DYNAIRX_MODEL_DIR or ./var/models."""
    return Path(os.environ.get("DYNAIRX_MODEL_DIR") or DEFAULT_VAR_DIR / "models")


def require_env(name: str, why: str) -> str:
    value = os.environ.get(name, "").strip()
    if not value:
        raise MissingSettingError(name, why)
    return value


@dataclass(frozen=True)
class Settings:
    database_url: str
    model_service_url: str | None
    model_service_token: str | None
    secret_key: str | None
    device: str
    demo: bool

    @classmethod
    def from_env(cls, *, demo: bool = False) -> Settings:
        device = os.environ.get("DYNAIRX_DEVICE", "auto").strip().lower() or "auto"
        if device not in {"auto", "cpu", "cuda"}:
            raise ValueError(f"DYNAIRX_DEVICE must be auto, cpu or cuda, not {device!r}")
        secret = os.environ.get("SECRET_KEY") or None
        if not demo and not secret:
            raise MissingSettingError("SECRET_KEY", "it signs session cookies outside demo mode")
        return cls(
            database_url=database_url(),
            model_service_url=os.environ.get("MODEL_SERVICE_URL") or None,
            model_service_token=os.environ.get("MODEL_SERVICE_TOKEN") or None,
            secret_key=secret,
            device=device,
            demo=demo,
        )


def pseudonym_key() -> bytes:
    """The site secret that keys the hashing of source ids on import (DESIGN.md)."""
    return require_env(
        "DYNAIRX_PSEUDONYM_KEY", "it keys the HMAC that pseudonymises source patient ids on import"
    ).encode()
