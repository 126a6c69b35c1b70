"""The validate step: statistics, schema checks and drift of the shards before training, and the skip.

TFX runs StatisticsGen, SchemaGen and ExampleValidator before its Trainer; this step does their work
on cityseg shards in one pass and adds what a weekly retraining needs: when the source fingerprint
equals the one the current `@champion` was trained on, the run ends here ("nothing to retrain").
"""

import dataclasses
import json
import logging
from pathlib import Path

from cityseg.components import storage, tracking
from cityseg.components.lineage import core as lineage
from cityseg.components.splits import SELECT
from cityseg.components.validate import checks, report
from cityseg.components.validate.config import ValidateConfig
from cityseg.components.validate.statistics import compute_statistics

log = logging.getLogger(__name__)

ANOMALIES_FILE = "anomalies.json"
REPORT_FILE = "statistics.md"


class DataValidationError(ValueError):
    """The data failed a schema check (or drifted under policy `fail`); training must not start."""


@dataclasses.dataclass(frozen=True)
class ValidationResult:
    """The verdict: go on and train (`retrain`), why, and what was found."""

    retrain: bool
    outcome: str
    champion: str
    statistics: dict
    anomalies: list[checks.Anomaly]


def _schema_anomalies(config: ValidateConfig, splits: dict, frames, manifest: dict) -> list[checks.Anomaly]:
    found = checks.check_splits(splits, config.required_splits, config.min_frames)
    found += checks.check_selection(splits, SELECT, config.min_select_frames)
    found += checks.check_frames(
        frames,
        size=f"{manifest['height']}x{manifest['width']}",
        # The select split is train frames held out by the shard step: labelled like them.
        labelled=(*config.required_splits, SELECT),
        max_void_share=config.max_void_share,
        min_std=config.min_image_std,
    )
    return found


def _against_champion(config: ValidateConfig, statistics: dict) -> tuple[list, str, str | None]:
    """(drift anomalies, champion version or "", the skip outcome when the data is unchanged)."""
    if not config.registered_model:
        return [], "", None
    champion = lineage.champion_data(config.registered_model)
    if champion is None:
        return [], "", None
    name = f"champion v{champion.version}"
    if champion.statistics is None:
        statistics["drift"] = {"against": name, "not_checked": champion.unreadable}
        found = [
            checks.drift_not_checked(champion.unreadable, policy=config.drift_policy, baseline_name=name)
        ]
    else:
        found = _drift(config, statistics, champion.statistics, name)
    if config.skip_unchanged and config.fingerprint and champion.fingerprint == config.fingerprint:
        return found, champion.version, f"data unchanged since {name}: nothing to retrain"
    return found, champion.version, None


def _drift(config: ValidateConfig, statistics: dict, baseline: dict, name: str) -> list[checks.Anomaly]:
    """Category and image drift against `baseline`; the distances and shifts go into `statistics`."""
    found, distances = checks.check_drift(
        statistics["splits"],
        baseline,
        metric=config.drift_metric,
        threshold=config.drift_threshold,
        policy=config.drift_policy,
        baseline_name=name,
    )
    image, shifts = checks.check_image_drift(
        statistics["splits"],
        baseline,
        limits=config.image_shift_limits,
        policy=config.drift_policy,
        baseline_name=name,
    )
    statistics["drift"] = {
        "against": name,
        "metric": config.drift_metric,
        "distance": distances,
        "image": shifts,
    }
    return found + image


def _write(
    out: str, statistics: dict, anomalies: list[checks.Anomaly], markdown: str, markdown_out: str | None
) -> None:
    storage.write_text(storage.join(out, lineage.STATISTICS_FILE), json.dumps(statistics, indent=2) + "\n")
    body = {"anomaly_info": [dataclasses.asdict(anomaly) for anomaly in anomalies]}
    storage.write_text(storage.join(out, ANOMALIES_FILE), json.dumps(body, indent=2) + "\n")
    storage.write_text(storage.join(out, REPORT_FILE), markdown)
    if markdown_out:
        storage.write_text(markdown_out, markdown)


def validate(config: ValidateConfig) -> ValidationResult:
    """Compute statistics, run the schema checks and the drift check, write and log the results.

    Raises:
        DataValidationError: an ERROR anomaly; the message names the split, city or frames, the
            check and the numbers. Statistics and anomalies are written and logged first.
    """
    from cityseg.components.dataset import load_manifest, local_shards

    manifest = load_manifest(config.shards)
    # Dataflow's workers read the shards where they are; here they are read from a local copy.
    shards = config.shards if config.runner.runner == "dataflow" else Path(local_shards(config.shards))
    splits, frames = compute_statistics(shards, manifest, config.workers, config.runner)
    tracking.connect(config.tracking_uri)
    statistics = {
        "fingerprint": config.fingerprint,
        "manifest_hash": manifest.get("content_hash"),
        "size": {"height": manifest["height"], "width": manifest["width"]},
        "categories": list(manifest.get("categories", [])),
        "splits": splits,
    }
    anomalies = _schema_anomalies(config, splits, frames, manifest)
    drift, champion, skip = _against_champion(config, statistics)
    anomalies += drift
    errors = [anomaly for anomaly in anomalies if anomaly.severity == checks.ERROR]
    if errors:
        outcome = "data validation failed:\n" + "\n".join(f"- {a.description}" for a in errors)
    else:
        outcome = skip or "data valid: training"
    run_id = report.log_to_mlflow(config, statistics, anomalies, outcome, failed=bool(errors))
    statistics["mlflow_uri"] = f"runs:/{run_id}/data_validation/{lineage.STATISTICS_FILE}"
    _write(
        config.out,
        statistics,
        anomalies,
        report.markdown(statistics, anomalies, outcome),
        config.markdown_out,
    )
    for anomaly in anomalies:
        log.log(logging.ERROR if anomaly.severity == checks.ERROR else logging.WARNING, anomaly.description)
    if errors:
        raise DataValidationError(f"{config.shards}: {outcome}")
    log.info("%s", outcome)
    return ValidationResult(skip is None, outcome, champion, statistics, anomalies)
