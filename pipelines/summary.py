"""The closing report of `cityseg run`: a table of the run, the push decision, where things are, what next."""

import json
from dataclasses import dataclass
from pathlib import Path

from cityseg.components.labels import CATEGORY_NAMES, VOID


@dataclass(frozen=True)
class RunSummary:
    """What a local run produced, for the closing table."""

    params: dict
    splits: dict[str, int]
    train_info: dict
    scores: dict
    blessed: bool
    version: str
    aliases: str
    reason: str
    run_dir: str
    log_dir: str
    data_dir: str
    shards_dir: str
    model_dir: str
    evaluation_dir: str
    report: str
    tracking_uri: str
    wall_time_s: float
    cached: list[str]
    # The validate step's verdict: False when the data was unchanged since the champion (no training).
    retrain: bool = True
    fingerprint: str = ""
    outcome: str = ""
    # The validate step's warnings (drift under policy warn, drift that could not be checked).
    warnings: tuple[str, ...] = ()


def summarise(run) -> RunSummary:
    """Read the manifest, train_info and metrics that a `LocalRun` of the training pipeline holds."""
    outputs = run.outputs
    retrain = bool(outputs.get("retrain", True))
    shards_dir = outputs["shards"].path
    model_dir = _artifact(run, "train", "model") if retrain else ""
    evaluation_dir = _artifact(run, "evaluate", "evaluation") if retrain else ""
    manifest = json.loads(Path(shards_dir, "manifest.json").read_text())
    statistics = Path(outputs["statistics"].path, "statistics.json") if "statistics" in outputs else None
    fingerprint = json.loads(statistics.read_text()).get("fingerprint", "") if statistics else ""
    anomalies = json.loads(statistics.with_name("anomalies.json").read_text()) if statistics else {}
    warnings = tuple(
        a["description"] for a in anomalies.get("anomaly_info", []) if a["severity"] == "WARNING"
    )
    return RunSummary(
        params=run.params,
        splits={split: info["examples"] for split, info in manifest["splits"].items()},
        train_info=json.loads(Path(model_dir, "train_info.json").read_text()) if retrain else {},
        scores=json.loads(Path(evaluation_dir, "metrics.json").read_text()) if retrain else {},
        blessed=bool(outputs["blessed"]),
        version=str(outputs["version"]),
        aliases=str(outputs["aliases"]),
        reason=str(outputs["reason"]),
        run_dir=run.run_dir,
        log_dir=run.log_dir,
        data_dir=str(manifest.get("source", "")),
        shards_dir=shards_dir,
        model_dir=model_dir,
        evaluation_dir=evaluation_dir,
        # The evaluation folder's copy has an .html suffix, so it opens in any browser.
        report=str(Path(evaluation_dir, "report.html")) if retrain else "",
        tracking_uri=run.tracking_uri,
        wall_time_s=run.wall_time_s,
        cached=run.cached,
        retrain=retrain,
        fingerprint=fingerprint,
        outcome=str(outputs.get("outcome", "")),
        warnings=warnings,
    )


def _artifact(run, task: str, key: str) -> str:
    """The path of a task's output artifact: a pipeline output, or else found in the run folder.

    Tasks inside a dsl.If return no pipeline outputs locally (kfp.local resolves a dsl.OneOf of
    parameters only); kfp.local keeps a task's outputs in `<run folder>/<pipeline run>/<task>/<key>`.
    """
    if key in run.outputs:
        return run.outputs[key].path
    found = sorted(Path(run.run_dir).glob(f"*/{task}/{key}"))
    if len(found) != 1:
        raise RuntimeError(f"{run.run_dir}: expected one output {key!r} of task {task!r}, found {len(found)}")
    return str(found[0])


def _score(value) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def decision(blessed: bool, name: str, version: str, aliases: str, reason: str) -> str:
    """The push gate's verdict in one line."""
    if blessed:
        return f"BLESSED: registered {name} version {version}, aliases: {aliases or 'none'}"
    registered = f"version {version} registered, " if version else ""
    return f"NOT BLESSED: {registered}aliases unchanged. {reason}"


def mlflow_ui(tracking_uri: str) -> str:
    """How to look at the MLflow store: the `mlflow ui` command for a local store, else its address."""
    if tracking_uri.startswith("sqlite:"):
        return f"mlflow ui --backend-store-uri {tracking_uri}"
    return tracking_uri


def next_steps(summary: RunSummary) -> list[str]:
    """The commands that show this run's model on its validation images, with this run's paths."""
    name = summary.params["registered_model"]
    model = (
        f"models:/{name}@champion --tracking-uri {summary.tracking_uri}"
        if summary.blessed or not summary.retrain
        else summary.model_dir
    )
    return [
        "next steps:",
        f"  cityseg serve --model {model} --images {summary.data_dir} --images-split val",
        "  cityseg app                     (in a second terminal; then open http://127.0.0.1:8501)",
        f"  {mlflow_ui(summary.tracking_uri)}",
        *([f"  open {summary.report}"] if summary.report else []),
    ]


def format_summary(summary: RunSummary) -> str:
    """The closing report of `cityseg run`: a table of the run, the push decision, and where things are."""
    rows = [
        ("splits", ", ".join(f"{split} {count}" for split, count in summary.splits.items())),
        ("fingerprint", summary.fingerprint or "unknown"),
        ("validation", summary.outcome.splitlines()[0] if summary.outcome else "n/a"),
        *(_training_rows(summary) if summary.retrain else ()),
        ("pipeline time", f"{summary.wall_time_s:.1f} s"),
        ("from cache", ", ".join(summary.cached) or "nothing"),
        *(_split_rows(summary) if summary.retrain else ()),
        *(_score_rows(summary.scores) if summary.retrain else ()),
    ]
    width = max(len(key) for key, _ in rows)
    rule = "-" * (width + 40)
    lines = ["", "cityseg run summary", rule, *(f"{key:<{width}}  {value}" for key, value in rows), rule]
    lines += [f"WARNING: {warning}" for warning in summary.warnings]
    if not summary.retrain:
        lines.append(f"SKIPPED: {summary.outcome}; nothing was trained or registered, aliases unchanged.")
    else:
        lines.append(
            decision(
                summary.blessed,
                summary.params["registered_model"],
                summary.version,
                summary.aliases,
                summary.reason,
            )
        )
    lines += [
        "",
        f"run folder     {summary.run_dir}",
        f"task logs      {summary.log_dir}",
        f"data           {summary.data_dir}",
        *(
            [f"model          {summary.model_dir}", f"HTML report    {summary.report}"]
            if summary.retrain
            else []
        ),
        f"MLflow store   {summary.tracking_uri}",
        "",
        *next_steps(summary),
    ]
    return "\n".join(lines)


def _training_rows(summary: RunSummary) -> list[tuple[str, str]]:
    info = summary.train_info
    return [
        ("model", f"{info['model']} ({info['num_params']:,} parameters), loss {info['loss']}"),
        ("size", f"{info['height']}x{info['width']}, batch {info['batch_size']}"),
        ("epochs", f"{info['epochs_run']} of {info['epochs']}"),
        ("training time", f"{info['training_time_s']:.1f} s ({info['train_images_per_s']:.1f} images/s)"),
    ]


def _split_rows(summary: RunSummary) -> list[tuple[str, str]]:
    """Which split chose the model and which judged it: never the same one."""
    chosen, judged = summary.train_info["selection_split"], summary.scores["split"]
    return [
        (
            "chosen on",
            f"{chosen} ({summary.splits.get(chosen, 0)} frames): early stopping, LR plateau, best "
            "weights, int8 calibration",
        ),
        (f"mean_dice ({chosen})", _score(summary.train_info.get("kept_select_mean_dice"))),
        ("judged on", f"{judged} ({summary.scores['examples']} frames): the scores below and the push gate"),
    ]


def _score_rows(scores: dict) -> list[tuple[str, str]]:
    return [
        (f"mean_dice ({scores['split']})", _score(scores["mean_dice"])),
        (f"mean_iou ({scores['split']})", _score(scores["mean_iou"])),
        *(
            (f"  IoU {name}", _score(scores.get(f"iou_{name}")))
            for i, name in enumerate(CATEGORY_NAMES)
            if i != VOID
        ),
    ]
