"""Helpers shared by the browser tests (imported by name: ``from e2e_support import sign_in``).

They live outside ``conftest.py`` because ``from conftest import ...`` is ambiguous when several test folders have a
conftest (whichever was imported first wins).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Engine

REPO_ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO_ROOT / "test-artifacts" / "screenshots"
AXE_JS = Path(__file__).resolve().parent / "vendor" / "axe.min.js"
CHROMIUM = "/usr/bin/chromium"
E2E_PATIENTS = 300
E2E_SEED = 20261201
DEMO_PASSWORD = "e2e-demo-password-4815"


@dataclass
class LiveDashboard:
    base_url: str
    engine: Engine
    builder: str
    password: str = DEMO_PASSWORD
    practices: dict[str, tuple[str, ...]] = field(default_factory=dict)


def sign_in(page, username: str, password: str = DEMO_PASSWORD, next_path: str = "/") -> None:  # noqa: ANN001
    page.goto(f"/login?next={next_path}")
    page.get_by_label("User name").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"^(?!.*/login).*$"))


def screenshot(page, name: str) -> Path:  # noqa: ANN001
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
