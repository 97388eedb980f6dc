"""The in-app tour's steps (only the pages the user can open) and the user guides rendered in the app (Markdown and
screenshots from docs/images, links between guides rewritten, missing screenshots said so, every guide present)."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path

import pytest
from dash import dcc, html

from app.components import guides
from app.components.guides import GUIDES, ImageBlock, TextBlock, guide_blocks, guide_components
from app.components.tour import CLOSING_STEP, PATIENT_STEP, WELCOME_STEP, tour_dialog, tour_steps

# The smallest valid PNG (1 x 1 pixel).
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII="
)


@dataclass(frozen=True)
class Item:
    path: str
    label: str


def test_tour_steps_follow_the_users_navigation() -> None:
    researcher = tour_steps(
        [Item("/patterns", "Patterns"), Item("/workshop", "Workshop"), Item("/help", "Help")]
    )
    assert researcher[0] == WELCOME_STEP and researcher[-1] == CLOSING_STEP
    assert [s.title for s in researcher[1:-1]] == ["Patterns", "Workshop", "Help"]
    assert PATIENT_STEP not in researcher
    gp = tour_steps([Item("/", "Worklist"), Item("/help", "Help")])
    assert [s.title for s in gp] == [
        WELCOME_STEP.title,
        "Worklist",
        PATIENT_STEP.title,
        "Help",
        CLOSING_STEP.title,
    ]
    unknown = tour_steps([Item("/future", "Future page")])[1]
    assert "Future page" in unknown.text and unknown.path == "/future"


def test_only_the_first_tour_step_is_shown_at_first_and_the_flag_lives_in_local_storage() -> None:
    store, _step, dialog = tour_dialog(tour_steps([Item("/help", "Help")]))
    assert store.storage_type == "local" and getattr(store, "data", None) is None
    panels = dialog.children[1].children
    assert [panel.hidden for panel in panels] == [False, True, True]
    assert dialog.is_open is False


def test_guide_blocks_split_images_and_rewrite_guide_links() -> None:
    text = "# Title\nSee the [GP guide](user-guide-gp.md#the-worklist).\n\n![The worklist](images/gp-worklist.png)\nAfter."
    blocks = guide_blocks(text)
    assert blocks == [
        TextBlock("# Title\nSee the [GP guide](/help/guides/gp#the-worklist).\n"),
        ImageBlock("gp-worklist.png", "The worklist"),
        TextBlock("After."),
    ]
    # Only plain names under images/ are images; anything else stays Markdown text and is never read from disk.
    assert guide_blocks("![x](images/../secret.png)") == [TextBlock("![x](images/../secret.png)")]
    assert guide_blocks("![x](/etc/passwd)") == [TextBlock("![x](/etc/passwd)")]


def test_guide_components_inline_screenshots_and_say_when_one_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "here.png").write_bytes(PNG)
    (tmp_path / "user-guide-gp.md").write_text(
        "# Guide\n\n![Present](images/here.png)\n\n![Absent](images/missing.png)\n", encoding="utf-8"
    )
    monkeypatch.setattr(guides, "DOCS_DIR", tmp_path)
    monkeypatch.setattr(guides, "IMAGES_DIR", tmp_path / "images")
    markdown, image, missing = guide_components(guides.guide_for("gp"))
    assert isinstance(markdown, dcc.Markdown)
    assert isinstance(image, html.Img) and image.alt == "Present"
    assert image.src == "data:image/png;base64," + base64.b64encode(PNG).decode()
    assert missing.children == "(Screenshot not available: Absent)"
    monkeypatch.setattr(guides, "DOCS_DIR", tmp_path / "nowhere")
    assert guide_components(guides.guide_for("gp"))[0].children == "This guide is not installed."


def test_every_role_has_a_guide_that_references_only_regenerated_screenshots() -> None:
    assert {g.role for g in GUIDES} == {"gp", "pharmacist", "researcher", "admin"}
    for guide in GUIDES:
        text = guide.path.read_text(encoding="utf-8")
        assert text.startswith("# "), guide.role
        images = [b for b in guide_blocks(text) if isinstance(b, ImageBlock)]
        assert images, f"{guide.role} guide has no screenshots"
        assert all(b.alt for b in images), "every screenshot needs alternative text"
