"""Render ``docs/rules.md``: every safety rule, its source, and the published criteria left out.

The document is generated from the rule files so it cannot drift from what the engine runs; a unit test fails when
the committed copy is out of date. Regenerate with ``python -m clinical.rules_doc``.
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

from clinical.rules import FAMILIES, RuleBook, load_rules

DOC_PATH = Path(__file__).resolve().parent.parent / "docs" / "rules.md"


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def render_rules_markdown(book: RuleBook) -> str:
    """The Markdown text of docs/rules.md for ``book``."""
    counts = Counter(rule.family for rule in book.rules)
    lines = [
        "# Safety rules",
        "",
        "Generated from `clinical/rules/*.yaml` by `python -m clinical.rules_doc`; do not edit by hand.",
        "The rule format is described in `clinical/rules/FORMAT.md`.",
        "",
        f"{len(book.rules)} rules: "
        + ", ".join(f"{family} {counts[family]}" for family in FAMILIES if counts.get(family)),
        "",
        "## Sources",
        "",
        "| file | source | citation |",
        "|---|---|---|",
    ]
    for source in book.sources:
        lines.append(f"| `{source.file}` | {_cell(source.name)} | {_cell(source.citation)} |")
    lines += ["", "## Rules", "", "| id | family | title | severity | source |", "|---|---|---|---|---|"]
    for rule in sorted(
        book.rules, key=lambda r: FAMILIES.index(r.family)
    ):  # stable: file order within a family
        lines.append(
            f"| `{rule.id}` | {rule.family} | {_cell(rule.title)} | {rule.severity} | {_cell(rule.source)} |"
        )
    lines += [
        "",
        "## Published criteria left out",
        "",
        "Criteria that coded primary-care data cannot decide, or that are deliberately not encoded, with the reason.",
        "",
        "| source | criterion | text | reason |",
        "|---|---|---|---|",
    ]
    for item in book.omitted:
        lines.append(
            f"| {_cell(item.source)} | {_cell(item.criterion)} | {_cell(item.text)} | {_cell(item.reason)} |"
        )
    return "\n".join(lines) + "\n"


def write_rules_doc(path: Path = DOC_PATH) -> Path:
    """Write docs/rules.md from the current rule files."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_rules_markdown(load_rules()), encoding="utf-8")
    return path


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m clinical.rules_doc [PATH]``."""
    args = sys.argv[1:] if argv is None else argv
    written = write_rules_doc(Path(args[0]) if args else DOC_PATH)
    print(f"wrote {written}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
