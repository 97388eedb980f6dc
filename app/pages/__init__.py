"""Dash pages, one per file, each registered with ``dash.register_page`` and guarded by ``requires``.

``import_pages()`` imports them as ordinary modules of this package (re-executing them for each new app, so each
app gets fresh callbacks) instead of Dash's file loader: Dash executes a page file before putting it in
``sys.modules``, which breaks dataclasses and other module-level code that looks the module up while it runs.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import dash

PAGES_DIR = Path(__file__).resolve().parent


def page_module_names() -> list[str]:
    """Every module of this package that registers a page (files starting with '_' are helpers)."""
    names = []
    for path in sorted(PAGES_DIR.glob("*.py")):
        if path.name.startswith("_") or "register_page" not in path.read_text(encoding="utf-8"):
            continue
        names.append(f"{__name__}.{path.stem}")
    return names


def import_pages() -> list[str]:
    """Import (or re-import) every page module and give each registered page its module's ``layout``."""
    imported = []
    for name in page_module_names():
        module = importlib.reload(sys.modules[name]) if name in sys.modules else importlib.import_module(name)
        page = dash.page_registry.get(name)
        if page is not None and not page.get("supplied_layout") and hasattr(module, "layout"):
            page["layout"] = module.layout
        imported.append(name)
    return imported
