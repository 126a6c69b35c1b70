"""The closing summary of `cityseg run`, on a hand-built run."""

import json

from cityseg.pipelines.local import pipeline_inputs
from cityseg.pipelines.summary import RunSummary, format_summary

INFO = {
    "model": "unet_mini",
    "loss": "ce_dice",
    "num_params": 482152,
    "height": 128,
    "width": 256,
    "batch_size": 8,
    "epochs": 12,
    "epochs_run": 12,
    "training_time_s": 401.25,
    "train_images_per_s": 5.98,
    "selection_split": "select",
    "kept_select_mean_dice": 0.8571,
}
SCORES = {
    "split": "val",
    "examples": 40,
    "mean_dice": 0.8312,
    "mean_iou": 0.7305,
    "iou_void": 0.5,
    "iou_flat": 0.95,
    "iou_construction": 0.81,
    "iou_object": 0.42,
    "iou_nature": 0.88,
    "iou_sky": 0.97,
    "iou_human": None,
    "iou_vehicle": 0.76,
}


def _summary(**overrides) -> RunSummary:
    fields = {
        "params": {"registered_model": "cityseg"},
        "splits": {"train": 136, "select": 24, "val": 40, "test": 40},
        "train_info": INFO,
        "scores": SCORES,
        "blessed": True,
        "version": "3",
        "aliases": "champion",
        "reason": "",
        "run_dir": "/w/runs/r",
        "log_dir": "/w/runs/r/logs",
        "data_dir": "/w/runs/r/synth/cityscapes",
        "shards_dir": "/w/kfp/r/shard/shards",
        "model_dir": "/w/kfp/r/train/model",
        "evaluation_dir": "/w/kfp/r/evaluate/evaluation",
        "report": "/w/kfp/r/evaluate/report",
        "tracking_uri": "sqlite:////w/mlflow/mlflow.db",
        "wall_time_s": 590.0,
        "cached": ["synth", "remap", "shard"],
    }
    return RunSummary(**{**fields, **overrides})


def test_blessed_summary_lists_scores_registry_and_places():
    lines = format_summary(_summary()).splitlines()
    assert "splits              train 136, select 24, val 40, test 40" in lines
    chosen = "select (24 frames): early stopping, LR plateau, best weights, int8 calibration"
    assert f"chosen on           {chosen}" in lines
    assert "mean_dice (select)  0.8571" in lines
    assert "judged on           val (40 frames): the scores below and the push gate" in lines
    assert "model               unet_mini (482,152 parameters), loss ce_dice" in lines
    assert "epochs              12 of 12" in lines
    assert "training time       401.2 s (6.0 images/s)" in lines
    assert "from cache          synth, remap, shard" in lines
    assert "mean_dice (val)     0.8312" in lines
    assert "mean_iou (val)      0.7305" in lines
    assert "  IoU human         n/a" in lines
    assert not [line for line in lines if "IoU void" in line]
    assert "BLESSED: registered cityseg version 3, aliases: champion" in lines
    assert "HTML report    /w/kfp/r/evaluate/report" in lines
    assert "task logs      /w/runs/r/logs" in lines
    assert lines[-5:] == [
        "next steps:",
        "  cityseg serve --model models:/cityseg@champion --tracking-uri sqlite:////w/mlflow/mlflow.db "
        "--images /w/runs/r/synth/cityscapes --images-split val",
        "  cityseg app                     (in a second terminal; then open http://127.0.0.1:8501)",
        "  mlflow ui --backend-store-uri sqlite:////w/mlflow/mlflow.db",
        "  open /w/kfp/r/evaluate/report",
    ]


def test_validation_warnings_are_shown_after_the_table():
    unread = "drift against the data of champion v2 not checked (policy warn): cannot read data_statistics x"
    lines = format_summary(_summary(warnings=(unread,))).splitlines()
    assert lines[lines.index(f"WARNING: {unread}") + 1].startswith("BLESSED: registered cityseg version 3")
    assert not [line for line in format_summary(_summary()).splitlines() if "WARNING" in line]


def test_a_run_summary_reads_the_warnings_of_the_validate_step(tmp_path):
    from types import SimpleNamespace

    from cityseg.pipelines.local import LocalRun
    from cityseg.pipelines.summary import summarise

    (tmp_path / "shards").mkdir()
    (tmp_path / "shards/manifest.json").write_text(json.dumps({"splits": {"val": {"examples": 2}}}))
    (tmp_path / "statistics").mkdir()
    (tmp_path / "statistics/statistics.json").write_text(json.dumps({"fingerprint": "f1"}))
    anomalies = [
        {"severity": "WARNING", "description": "train: image brightness shift -60"},
        {"severity": "ERROR", "description": "never reached: an error stops the run"},
    ]
    (tmp_path / "statistics/anomalies.json").write_text(json.dumps({"anomaly_info": anomalies}))
    outputs = {
        "shards": SimpleNamespace(path=str(tmp_path / "shards")),
        "statistics": SimpleNamespace(path=str(tmp_path / "statistics")),
        **{"retrain": False, "blessed": False, "version": "", "aliases": "", "reason": "", "outcome": "same"},
    }
    run = LocalRun({"registered_model": "cityseg"}, outputs, "r", "l", "sqlite:///m.db", 1.0, [])
    assert summarise(run).warnings == ("train: image brightness shift -60",)


def test_refused_model_says_why_and_that_aliases_stay():
    text = format_summary(
        _summary(blessed=False, aliases="", reason="absolute gate: mean_dice 0.7000 < min_dice 0.8000")
    )
    assert "NOT BLESSED: version 3 registered, aliases unchanged. absolute gate: mean_dice 0.7000" in text
    # No champion to serve: the next steps serve this run's model folder.
    assert "  cityseg serve --model /w/kfp/r/train/model --images /w/runs/r/synth/cityscapes" in text


def test_run_flags_match_the_pipeline_parameters():
    from cityseg.pipelines.cli import run

    # Options of the command itself, not pipeline parameters: where, how loud, on which runner, which
    # pipeline, and the objects pipeline's KEY=VALUE arguments.
    own = {"work_dir", "verbose", "runner", "pipeline", "pairs"}
    flags = {option.name for option in run.params} - own
    assert flags == set(pipeline_inputs())
    required = {
        "data",
        "model",
        "loss",
        "epochs",
        "height",
        "width",
        "shards",
        "workers",
        "min_dice",
        "synthetic_frames",
    }
    assert required <= flags
