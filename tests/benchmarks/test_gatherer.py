import dataclasses
import json

import pytest

from tests.benchmarks.__main__ import stale_figures
from tests.benchmarks.common import Result
from tests.benchmarks.render import goal_met, render


@pytest.mark.parametrize(
    ("value", "baseline", "goal", "met"),
    [
        (1.05, 1.0, "ratio <= 1.10 (under 10% overhead)", True),
        (1.25, 1.0, "ratio <= 1.10 (under 10% overhead)", False),
        (0.85, None, "value >= 0.80", True),
        (0.75, None, "mean Dice value >= 0.8 on val", False),
        (2.0, None, "ratio >= 2 faster", None),  # no baseline, so no ratio to check
        (3.0, 1.0, "as fast as possible", None),  # no bound named
    ],
)
def test_goal_met_checks_the_bound_the_goal_names(value, baseline, goal, met):
    assert goal_met(Result("x", value, "s", "base", baseline, goal)) is met


def _gpu_row(policy: str, images_per_s: float) -> dict:
    """One row of gpu_results.json: unet at 512x1024, batch 16, under `policy`."""
    return {
        "model": "unet",
        "params": 1234,
        "policy": policy,
        "batch_size": 16,
        "height": 512,
        "width": 1024,
        "images_per_s": images_per_s,
    }


def test_render_lists_every_area_figure_and_failure(tmp_path):
    ok = Result(
        "images/s through shards",
        90.0,
        "img/s",
        "in-memory fit",
        100.0,
        "ratio >= 0.9",
        "python -m tests.benchmarks --only data",
        "box",
        "two epochs",
    )
    records = [
        {
            "area": "data",
            "module": "tests/benchmarks/bench_data.py",
            "date": "2026-11-23 01:00 UTC",
            "seconds": 12.5,
            "error": None,
            "log_tail": "",
            "results": [ok.__dict__],
        },
        {
            "area": "train",
            "module": "tests/benchmarks/bench_train.py",
            "date": "2026-11-23 01:01 UTC",
            "seconds": 3.0,
            "error": "exited with status 1",
            "log_tail": "ValueError: boom",
            "results": [],
        },
    ]
    gpu = tmp_path / "gpu_results.json"
    rows = [_gpu_row("mixed_float16", 300.0), _gpu_row("float32", 100.0)]
    gpu.write_text(
        json.dumps({"device": "NVIDIA H100", "date": "2026-11-23", "command": "python -m x", "results": rows})
    )
    text = render(records, gpu)
    assert "| data | ok | 1 | 12.5 | 2026-11-23 01:00 UTC |" in text
    assert "| train | **failed**: exited with status 1 | 0 | 3.0 | 2026-11-23 01:01 UTC |" in text
    assert (
        "| images/s through shards | 90 img/s | 100 img/s (in-memory fit) | 0.900 | ratio >= 0.9 | yes | "
        "`python -m tests.benchmarks --only data` | box | 2026-11-23 01:00 UTC |"
    ) in text
    assert "- **images/s through shards**: two epochs" in text
    assert "ValueError: boom" in text
    assert "- device: NVIDIA H100" in text
    assert (
        "| unet training images/s, mixed precision, 512x1024 | 300 img/s | 100 img/s (float32) | 3.000 | "
        "ratio > 1 (tensor cores pay off) | yes | `python -m x` | NVIDIA H100 | 2026-11-23 |"
    ) in text
    assert "| unet | 1234 | float32 | 16 | 512 | 1024 | 100.0 |" in text
    assert "gpu_results" not in render(records, tmp_path / "absent.json")


def test_stale_figures_names_each_document_quoting_a_figure_the_benchmarks_lost(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "README.md").write_text("Four bombs peak at 2,086 MiB.\n")
    (tmp_path / "docs" / "serving.md").write_text("Four bombs peak at 2,086 MiB, once 1.9 GB.\n")
    benchmarks = "| peak RSS | 2,086 MiB | 2,786 MiB |\n"
    assert stale_figures(benchmarks, tmp_path) == {"docs/serving.md": ["1.9 GB"]}


def _record(area: str, value: float) -> dict:
    result = Result(f"{area} figure", value, "s", "base", 1.0, "ratio <= 2")
    return {
        "area": area,
        "module": f"tests/benchmarks/bench_{area}.py",
        "error": None,
        "results": [dataclasses.asdict(result)],
        "seconds": 1.0,
        "date": "2026-12-03 10:00 UTC",
        "log_tail": "",
    }


def test_an_area_not_run_again_keeps_its_section_and_a_run_one_is_replaced(tmp_path):
    gpu = tmp_path / "none.json"
    previous = render([_record("data", 1.25), _record("train", 1.5)], gpu_path=gpu)
    updated = render([_record("train", 1.75)], gpu_path=gpu, previous=previous)
    assert "data figure" in updated and "1.25" in updated
    assert "1.75" in updated and "1.5 s" not in updated
    assert updated.index("## data") < updated.index("## train")
    assert [line.split("|")[1].strip() for line in updated.splitlines() if line.startswith("| data |")] == [
        "data"
    ]
