"""Every figure README.md and docs/*.md quote is one that BENCHMARKS.md (written by `make bench`) holds."""

from pathlib import Path

import pytest

from tests.docs.figures import figures, unbacked

REPO = Path(__file__).resolve().parents[2]
BENCHMARKS = (REPO / "BENCHMARKS.md").read_text()
DOCUMENTS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def test_figures_are_numbers_with_a_decimal_point_or_a_unit():
    text = (
        "Mean Dice 0.894 after 24 epochs; a peak of 2,086 MiB (1.9 GB); listing took 0.24 s and "
        "950 frames/min, 1.32x faster, 99.9% of pixels, 184 s and 3 min."
    )
    assert figures(text) == [
        "0.894",
        "2,086 MiB",
        "1.9 GB",
        "0.24 s",
        "950 frames/min",
        "1.32x",
        "99.9%",
        "184 s",
        "3 min",
    ]


def test_versions_sizes_names_and_option_values_are_not_figures():
    text = (
        "KFP 2.5.0 and v0.20.0 (?ref=2.5.0); shards at 96x192, model_float16.tflite, "
        "e2-standard-8, `cityseg train --lr 0.003 --epochs=30`, 8 categories, 34 label ids, 3 seeds."
    )
    assert figures(text) == []


def test_a_figure_is_backed_only_when_written_as_benchmarks_writes_it():
    benchmarks = "| peak RSS | 2,086 MiB | 0.749 |\n- idle 794 MiB, 19 us per file; medians 1325.1 ms"
    text = (
        "Peaks at 2,086 MiB (1.9 GB), ratio 0.749 (0.749x), idle 794 MiB, 0.75 of the bound, 1325 ms, "
        "1,325.1 ms, 19 s, 2,086 MB."
    )
    assert unbacked(text, benchmarks) == ["1.9 GB", "0.75", "1325 ms", "1,325.1 ms", "19 s", "2,086 MB"]


def test_a_number_after_a_named_package_is_a_version():
    text = "Keras 3.15 on TF 2.21; `python3` is 3.11; pandas 3.1 to 2.3; Dice 3.15 and 2.21 s."
    assert figures(text) == ["3.15", "2.21 s"]


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda path: path.relative_to(REPO).as_posix())
def test_every_figure_in_the_documents_is_in_benchmarks(document):
    missing = unbacked(document.read_text(), BENCHMARKS)
    assert not missing, (
        f"{document.relative_to(REPO)} quotes figures that BENCHMARKS.md does not hold: {missing}. "
        "Quote them as BENCHMARKS.md writes them (regenerate it with `make bench`), or leave them out."
    )
