"""The user guides (``docs/user-guide-<role>.md``) shown inside the app at ``/help/guides/<role>``.

Why they are rendered from the Markdown files: one text serves the repository reader and the signed-in user, and
the screenshots they show are written to ``docs/images/`` by ``tests/e2e/test_guide_screenshots.py`` on every test
run, so the pictures never go stale. Images are inlined as ``data:`` URIs (the Content-Security-Policy allows
``img-src data:``), so no extra route has to serve the docs folder; only file names matching ``IMAGE_LINE`` from
``docs/images/`` are ever read.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from dash import dcc, html

DOCS_DIR = Path(__file__).resolve().parents[2] / "docs"
IMAGES_DIR = DOCS_DIR / "images"


@dataclass(frozen=True)
class Guide:
    role: str
    title: str
    audience: str

    @property
    def path(self) -> Path:
        return DOCS_DIR / f"user-guide-{self.role}.md"

    @property
    def href(self) -> str:
        return f"/help/guides/{self.role}"


GUIDES: tuple[Guide, ...] = (
    Guide("gp", "Guide for GPs", "choosing who to review and preparing a Structured Medication Review"),
    Guide("pharmacist", "Guide for clinical pharmacists", "planning reviews and working through medicines"),
    Guide(
        "researcher", "Guide for researchers", "population views, patterns of care, the model and workshops"
    ),
    Guide("admin", "Guide for administrators", "accounts, the audit trail and running DynAIRx"),
)

# A line holding only an image from docs/images: ![alt text](images/name.png)
IMAGE_LINE = re.compile(r"^!\[(?P<alt>[^\]]*)\]\(images/(?P<name>[a-z0-9][a-z0-9-]*\.png)\)\s*$")
# Links between guides: (user-guide-gp.md) → (/help/guides/gp)
GUIDE_LINK = re.compile(r"\(user-guide-(?P<role>[a-z]+)\.md(?P<anchor>#[a-z0-9-]+)?\)")


def guide_for(role: str | None) -> Guide | None:
    return next((g for g in GUIDES if g.role == role), None)


@dataclass(frozen=True)
class TextBlock:
    markdown: str


@dataclass(frozen=True)
class ImageBlock:
    name: str
    alt: str


def guide_blocks(text: str) -> list[TextBlock | ImageBlock]:
    """Split a guide into Markdown text and the images on lines of their own (in order)."""
    blocks: list[TextBlock | ImageBlock] = []
    lines: list[str] = []
    for line in text.splitlines():
        match = IMAGE_LINE.match(line.strip())
        if match:
            _flush(lines, blocks)
            lines = []
            blocks.append(ImageBlock(match["name"], match["alt"]))
        else:
            lines.append(GUIDE_LINK.sub(lambda m: f"(/help/guides/{m['role']}{m['anchor'] or ''})", line))
    _flush(lines, blocks)
    return blocks


def _flush(lines: list[str], blocks: list[TextBlock | ImageBlock]) -> None:
    """Append the pending Markdown lines as one block (blank runs between images are not blocks)."""
    text = "\n".join(lines)
    if text.strip():
        blocks.append(TextBlock(text))


@lru_cache(maxsize=64)
def _image_data_uri(name: str, modified: float) -> str | None:
    path = IMAGES_DIR / name
    try:
        return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")
    except OSError:
        return None


def image_data_uri(name: str) -> str | None:
    """The PNG ``docs/images/<name>`` as a data URI (cached until the file changes), or None if missing."""
    path = IMAGES_DIR / name
    if path.parent != IMAGES_DIR or not path.is_file():
        return None
    return _image_data_uri(name, path.stat().st_mtime)


def guide_components(guide: Guide) -> list:
    """The guide as Dash components: Markdown (no raw HTML) and images; a missing image says so."""
    try:
        text = guide.path.read_text(encoding="utf-8")
    except OSError:
        return [html.P("This guide is not installed.", className="dx-notice")]
    out: list = []
    for block in guide_blocks(text):
        if isinstance(block, TextBlock):
            out.append(dcc.Markdown(block.markdown, link_target="_self"))
            continue
        uri = image_data_uri(block.name)
        if uri is None:
            out.append(html.P(f"(Screenshot not available: {block.alt})", className="dx-muted"))
        else:
            out.append(html.Img(src=uri, alt=block.alt))
    return out


def guide_links() -> html.Ul:
    """Links to every guide, for the help page."""
    return html.Ul(
        [html.Li([dcc.Link(g.title, href=g.href), f": {g.audience}."]) for g in GUIDES],
        className="dx-guide-links",
    )
