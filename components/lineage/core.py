"""Lineage: from a registered model version back to its run, its data and the champion before it.

The registry's version tags are the links (ML Metadata's role in TFX): push writes them, validate
reads the champion's to find its data, and `cityseg lineage` follows them for a reader.
"""

import dataclasses
import json
import logging

import mlflow
from mlflow.exceptions import MlflowException

from cityseg.components import storage

log = logging.getLogger(__name__)

STATISTICS_FILE = "statistics.json"
# The tags every registered version carries (push writes them; some come from tracking.run_tags).
TAG_FINGERPRINT = "source_fingerprint"
TAG_MANIFEST = "data_manifest_hash"
TAG_STATISTICS = "data_statistics"
TAG_STATISTICS_ARTIFACT = "data_statistics_artifact"
TAG_PIPELINE = "pipeline_name"
TAG_PIPELINE_VERSION = "pipeline_version"
TAG_KFP_RUN = "kfp_run_id"
TAG_COMMIT = "git_commit"
TAG_COMPARED_WITH = "compared_with_version"
TAG_COMPARED_SCORE = "compared_with_mean_dice"
TAG_SCORE = "eval_mean_dice"
LINEAGE_TAGS = (
    TAG_FINGERPRINT,
    TAG_MANIFEST,
    TAG_STATISTICS,
    TAG_KFP_RUN,
    TAG_PIPELINE,
    TAG_PIPELINE_VERSION,
    TAG_COMMIT,
    TAG_COMPARED_WITH,
    TAG_SCORE,
    TAG_COMPARED_SCORE,
)


@dataclasses.dataclass(frozen=True)
class VersionData:
    """A registered version with the data it was trained on: fingerprint and statistics (None if unknown).

    `unreadable` says why `statistics` is None: the tags it lacks, or each link tried and its error.
    """

    version: str
    fingerprint: str | None
    statistics: dict | None
    unreadable: str = ""


def lineage_tags(statistics_dir: str, *, pipeline_name: str, pipeline_version: str) -> dict[str, str]:
    """The data and pipeline tags of a version, read from the validate step's statistics folder.

    Raises:
        ValueError: the folder holds no readable statistics.json.
    """
    path = storage.join(statistics_dir, STATISTICS_FILE)
    try:
        statistics = json.loads(storage.read_text(path))
    except (FileNotFoundError, json.JSONDecodeError) as err:
        raise ValueError(
            f"{path}: no readable data statistics (written by `cityseg validate`): {err}"
        ) from None
    tags = {
        TAG_STATISTICS_ARTIFACT: path,
        TAG_PIPELINE: pipeline_name,
        TAG_PIPELINE_VERSION: pipeline_version,
    }
    if statistics.get("fingerprint"):
        tags[TAG_FINGERPRINT] = statistics["fingerprint"]
    if statistics.get("mlflow_uri"):
        tags[TAG_STATISTICS] = statistics["mlflow_uri"]
    return {key: str(value) for key, value in tags.items() if value}


def _missing(err: MlflowException) -> bool:
    return err.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE")


def alias_version(name: str, alias: str) -> str | None:
    """The version `@alias` of `name` points at, or None (also when the model is not registered)."""
    try:
        return str(mlflow.MlflowClient().get_model_version_by_alias(name, alias).version)
    except MlflowException as err:
        if _missing(err):
            return None
        raise


def load_statistics(tags: dict[str, str]) -> tuple[dict | None, str]:
    """(the data statistics a version's tags link to, or None; why None).

    The MLflow artifact is tried first, then the KFP artifact. The reason names each link tried and
    what went wrong, or the tags the version lacks; it is empty when the statistics were read.
    """
    failures = []
    if uri := tags.get(TAG_STATISTICS):
        try:
            return mlflow.artifacts.load_dict(uri), ""
        except (MlflowException, OSError, json.JSONDecodeError) as err:
            failures.append(f"{TAG_STATISTICS} {uri}: {err}")
    if path := tags.get(TAG_STATISTICS_ARTIFACT):
        try:
            return json.loads(storage.read_text(path)), ""
        except (OSError, json.JSONDecodeError) as err:
            failures.append(f"{TAG_STATISTICS_ARTIFACT} {path}: {err}")
    if not failures:
        return None, f"no {TAG_STATISTICS} or {TAG_STATISTICS_ARTIFACT} tag"
    reason = "cannot read " + "; ".join(failures)
    log.warning("data statistics: %s", reason)
    return None, reason


def version_data(name: str, version: str) -> VersionData:
    """The fingerprint and statistics that version `version` of `name` was trained on."""
    tags = dict(mlflow.MlflowClient().get_model_version(name, version).tags)
    statistics, unreadable = load_statistics(tags)
    return VersionData(version, tags.get(TAG_FINGERPRINT), statistics, unreadable)


def champion_data(name: str) -> VersionData | None:
    """What the current `@champion` of `name` was trained on, or None when there is no champion."""
    version = alias_version(name, "champion")
    return None if version is None else version_data(name, version)


def data_changes(new: dict | None, old: dict | None) -> dict[str, dict[str, int]]:
    """Frames added (+) or removed (-) per split and city between two statistics; empty when unknown."""
    if not new or not old:
        return {}
    changes = {}
    for split in sorted(set(new["splits"]) | set(old["splits"])):
        now = new["splits"].get(split, {}).get("frames_per_city", {})
        before = old["splits"].get(split, {}).get("frames_per_city", {})
        diff = {
            city: now.get(city, 0) - before.get(city, 0)
            for city in sorted(set(now) | set(before))
            if now.get(city, 0) != before.get(city, 0)
        }
        if diff:
            changes[split] = diff
    return changes


def resolve_version(ref: str, name: str) -> tuple[str, str]:
    """(registered model, version) of `models:/NAME@ALIAS`, `models:/NAME/N` or a bare version `N` of `name`.

    Raises:
        ValueError: an unknown form, model, alias or version.
    """
    if ref.isdigit():
        model, version = name, ref
    elif ref.startswith("models:/"):
        body = ref[len("models:/") :]
        model, at, alias = body.partition("@")
        if at:
            version = alias_version(model, alias)
            if version is None:
                raise ValueError(f"{ref}: registered model {model!r} has no @{alias}")
        else:
            model, _, version = body.partition("/")
            if not version.isdigit():
                raise ValueError(f"{ref}: expected models:/NAME/VERSION or models:/NAME@ALIAS")
    else:
        raise ValueError(f"{ref}: expected models:/NAME@ALIAS, models:/NAME/VERSION or a version number")
    try:
        mlflow.MlflowClient().get_model_version(model, version)
    except MlflowException as err:
        if _missing(err):
            raise ValueError(f"{ref}: registered model {model!r} has no version {version}") from None
        raise
    return model, version


def _run(run_id: str | None) -> dict:
    if not run_id:
        return {}
    run = mlflow.get_run(run_id)
    return {
        "id": run_id,
        "name": run.info.run_name,
        "experiment_id": run.info.experiment_id,
        "status": run.info.status,
        "params": dict(sorted(run.data.params.items())),
    }


def describe(ref: str, name: str = "cityseg") -> dict:
    """The lineage of one version: the version, its run and parameters, its data, the champion before it."""
    model, version = resolve_version(ref, name)
    client = mlflow.MlflowClient()
    record = client.get_model_version(model, version)
    tags = dict(record.tags)
    aliases = sorted(
        alias for alias, v in client.get_registered_model(model).aliases.items() if str(v) == version
    )
    statistics, _ = load_statistics(tags)
    previous_version = tags.get(TAG_COMPARED_WITH)
    previous = version_data(model, previous_version) if previous_version else None
    return {
        "name": model,
        "version": version,
        "aliases": aliases,
        "blessed": tags.get("blessed"),
        "reason": tags.get("blessing_reason", ""),
        "mean_dice": tags.get(TAG_SCORE),
        "run": {
            **_run(record.run_id),
            "kfp_run_id": tags.get(TAG_KFP_RUN),
            "pipeline": tags.get(TAG_PIPELINE),
            "pipeline_version": tags.get(TAG_PIPELINE_VERSION),
            "git_commit": tags.get(TAG_COMMIT),
        },
        "data": {
            "fingerprint": tags.get(TAG_FINGERPRINT),
            "manifest_hash": tags.get(TAG_MANIFEST),
            "statistics": tags.get(TAG_STATISTICS) or tags.get(TAG_STATISTICS_ARTIFACT),
            "frames": {s: v["frames"] for s, v in statistics["splits"].items()} if statistics else None,
            "changes": data_changes(statistics, previous.statistics) if previous else None,
        },
        "previous_champion": None
        if previous is None
        else {
            "version": previous.version,
            "fingerprint": previous.fingerprint,
            "mean_dice": tags.get(TAG_COMPARED_SCORE),
            "same_data": previous.fingerprint is not None
            and previous.fingerprint == tags.get(TAG_FINGERPRINT),
        },
    }
