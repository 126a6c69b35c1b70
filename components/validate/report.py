"""The validate step's outputs for people: a Markdown view (the KFP UI renders it) and the MLflow run."""

import dataclasses

import mlflow

from cityseg.components import tracking
from cityseg.components.lineage.core import STATISTICS_FILE
from cityseg.components.validate.checks import WARNING, Anomaly
from cityseg.components.validate.config import IMAGE_SHIFTS

ARTIFACT_DIR = "data_validation"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def markdown(statistics: dict, anomalies: list[Anomaly], outcome: str) -> str:
    """The statistics and anomalies as Markdown: one table per topic, splits as columns."""
    splits = statistics["splits"]
    names = list(splits)
    lines = ["# Data validation", "", f"**{outcome.splitlines()[0]}**", ""]
    warnings = [a for a in anomalies if a.severity == WARNING]
    lines += [f"**WARNING**: {a.description}" for a in warnings] + ([""] if warnings else [])
    lines += [
        f"Source fingerprint `{statistics['fingerprint'] or 'unknown'}`, "
        f"shards `{statistics['manifest_hash']}`",
        "",
    ]
    rows = [["frames", *(str(splits[s]["frames"]) for s in names)]]
    rows += [
        [f"{name} share", *(f"{splits[s]['pixel_share'][name]:.2%}" for s in names)]
        for name in statistics["categories"]
    ]
    for key in ("min", "mean", "max"):
        rows.append([f"void share per frame, {key}", *(_share(splits[s]["void_share"][key]) for s in names)])
    rows.append(
        ["image mean R,G,B", *(", ".join(f"{v:.1f}" for v in splits[s]["image_mean"]) for s in names)]
    )
    rows.append(["image std R,G,B", *(", ".join(f"{v:.1f}" for v in splits[s]["image_std"]) for s in names)])
    rows.append(["image sizes", *(_counts(splits[s]["image_sizes"]) for s in names)])
    rows.append(["frames per city", *(_counts(splits[s]["frames_per_city"]) for s in names)])
    lines += ["## Statistics", "", *_table(["", *names], rows), ""]
    if drift := statistics.get("drift"):
        lines += ["## Drift", "", *_drift(drift), ""]
    lines += ["## Anomalies", ""]
    if anomalies:
        rows = [[a.feature, a.kind, a.severity, a.short_description, a.description] for a in anomalies]
        lines += _table(["feature", "kind", "severity", "short description", "description"], rows)
    else:
        lines.append("none")
    return "\n".join(lines) + "\n"


def _drift(drift: dict) -> list[str]:
    """The drift section's lines: the distances and image shifts, or why drift was not checked."""
    if "not_checked" in drift:
        return [f"**not checked** against {drift['against']}: {drift['not_checked']}"]
    distances = ", ".join(f"{split} {value:.4f}" for split, value in drift["distance"].items())
    lines = [f"{drift['metric']} distance to the data of {drift['against']}: {distances}"]
    if image := drift.get("image"):
        rows = [
            [split, f"{s['brightness']:+.2f}", f"{s['colour']:.4f}", f"{s['contrast']:+.1%}"]
            for split, s in image.items()
        ]
        lines += [
            "",
            *_table(["image shift", "brightness (grey levels)", "colour (share)", "contrast"], rows),
        ]
    return lines


def _share(value) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def _counts(counts: dict) -> str:
    return ", ".join(f"{key} {value}" for key, value in counts.items())


def log_to_mlflow(config, statistics: dict, anomalies: list[Anomaly], outcome: str, *, failed: bool) -> str:
    """Log the statistics as metrics and artifacts of a `data-validation` MLflow run; returns its id."""
    tracking.set_experiment(config.experiment)
    tags = {"cityseg.step": "validate", **tracking.run_tags(config.kfp_run_id)}
    with mlflow.start_run(run_name="data-validation", tags=tags) as run:
        mlflow.log_params(
            {
                "fingerprint": config.fingerprint or "unknown",
                "manifest_hash": statistics["manifest_hash"],
                "max_void_share": config.max_void_share,
                "drift_metric": config.drift_metric,
                "drift_threshold": config.drift_threshold,
                "drift_policy": config.drift_policy,
                **{name: getattr(config, name) for name in IMAGE_SHIFTS},
            }
        )
        metrics = {"anomalies": len(anomalies)}
        for split, stats in statistics["splits"].items():
            metrics[f"{split}_frames"] = stats["frames"]
            metrics.update({f"{split}_share_{name}": share for name, share in stats["pixel_share"].items()})
            if stats["void_share"]["max"] is not None:
                metrics[f"{split}_void_share_max"] = stats["void_share"]["max"]
            for channel, mean, std in zip("rgb", stats["image_mean"], stats["image_std"], strict=True):
                metrics[f"{split}_image_mean_{channel}"] = mean
                metrics[f"{split}_image_std_{channel}"] = std
        drift = statistics.get("drift", {})
        for split, value in drift.get("distance", {}).items():
            metrics[f"{split}_drift"] = value
        for split, shifts in drift.get("image", {}).items():
            metrics.update({f"{split}_image_{key}_shift": value for key, value in shifts.items()})
        mlflow.log_metrics(metrics)
        mlflow.log_dict(statistics, f"{ARTIFACT_DIR}/{STATISTICS_FILE}")
        mlflow.log_dict(
            {"anomaly_info": [dataclasses.asdict(a) for a in anomalies]}, f"{ARTIFACT_DIR}/anomalies.json"
        )
        mlflow.log_text(markdown(statistics, anomalies, outcome), f"{ARTIFACT_DIR}/statistics.md")
        mlflow.set_tag("outcome", outcome.splitlines()[0])
        if failed:
            mlflow.set_tag("validation_errors", outcome[:5000])
        run_id = run.info.run_id
    if failed:
        mlflow.MlflowClient().set_terminated(run_id, status="FAILED")
    return run_id
