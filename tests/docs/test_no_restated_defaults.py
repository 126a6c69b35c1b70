"""The documents restate no default: a synopsis shows `[--epochs E]`, never `[--epochs 30]`.

The values live in the config dataclasses and `RECIPE` (components/defaults.py), and `cityseg COMMAND
--help` prints them; a number copied into a document drifts from them (the README once showed
`--epochs 30 --batch-size 8` while the recipe trained 24 epochs of 4).
"""

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCUMENTS = [REPO / "README.md", REPO / "CONTRIBUTING.md", *sorted((REPO / "docs").glob("*.md"))]
# An optional flag shown with a number (`[--epochs 30]`), or a number called the default ("default 10").
RESTATED = re.compile(
    r"\[--[\w-]+[ =]\d[^\]\n]*\]|\bdefault\s*(?:is|of|:|=)?\s*\d(?:[\d.]*\d)?", re.IGNORECASE
)


def restated_defaults(text: str) -> list[str]:
    """The places in a text that restate a default value."""
    return RESTATED.findall(text)


def test_restated_defaults_finds_optional_flags_with_numbers_and_named_defaults():
    text = (
        "cityseg train [--epochs 30] [--batch-size=8] [--model M] [--height H --width W]\n"
        "canaryTrafficPercent (default 10), the default: 0.5, at the default 6, the default model, "
        "`--height 512` given."
    )
    expected = ["[--epochs 30]", "[--batch-size=8]", "default 10", "default: 0.5", "default 6"]
    assert restated_defaults(text) == expected


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda path: path.relative_to(REPO).as_posix())
def test_no_document_restates_a_default(document):
    found = restated_defaults(document.read_text())
    assert not found, (
        f"{document.relative_to(REPO)} restates defaults: {found}. Show a placeholder (`[--epochs E]`) "
        "and point at `cityseg COMMAND --help` or RECIPE in components/defaults.py."
    )
