"""KFP interface of the validate step."""

from typing import NamedTuple

from kfp.dsl import Dataset, Input, Markdown, Output

from cityseg.components import container_images


@container_images.component
def validate(
    *,
    shards: Input[Dataset],
    fingerprint: str,
    statistics: Output[Dataset],
    report: Output[Markdown],
    min_frames: int,
    max_void_share: float,
    min_image_std: float,
    drift_metric: str,
    drift_threshold: float,
    drift_policy: str,
    skip_unchanged: bool,
    registered_model: str,
    mlflow_tracking_uri: str,
    mlflow_experiment: str,
    run_id: str,
    data_runner: str,
    dataflow_project: str,
    dataflow_region: str,
    dataflow_temp_location: str,
    dataflow_machine_type: str,
    dataflow_max_workers: int,
    dataflow_image: str,
    dataflow_service_account: str,
) -> NamedTuple("ValidateOutputs", [("retrain", bool), ("outcome", str), ("champion", str)]):
    """Statistics, schema checks and drift of the shards; fails before training on bad data.

    Args:
        shards: the TFRecord shards and manifest.json.
        fingerprint: the source fingerprint from the source or synth step.
        statistics: statistics.json, anomalies.json and statistics.md.
        report: the statistics and anomalies as Markdown, rendered by the KFP UI.
        min_frames: minimum frames of train and val.
        max_void_share: no train/val frame may be more void than this share.
        min_image_std: grey-level std (0..255) below which an image counts as constant.
        drift_metric: js (Jensen-Shannon distance) or linf, between category distributions.
        drift_threshold: distance to the champion's data above which the data has drifted.
        drift_policy: warn (report, go on) or fail.
        skip_unchanged: skip training when the fingerprint equals the champion's.
        registered_model: MLflow registered model whose @champion is compared with.
        mlflow_tracking_uri: MLflow server; empty means MLFLOW_TRACKING_URI or the local store.
        mlflow_experiment: MLflow experiment of the validation run.
        run_id: the KFP run id, tagged on the validation run.
        data_runner: local (process pool), beam (Beam's DirectRunner in this pod) or dataflow.
        dataflow_project: GCP project of the Dataflow job (data_runner dataflow; docs/beam.md).
        dataflow_region: Dataflow region.
        dataflow_temp_location: gs:// prefix for Dataflow's staging and temporary files.
        dataflow_machine_type: machine type of the Dataflow workers.
        dataflow_max_workers: the most Dataflow workers autoscaling may start.
        dataflow_image: container image of the Dataflow workers: the data image.
        dataflow_service_account: the Dataflow workers' service account; empty: the project's default.
    Returns:
        retrain (False when the data is unchanged since the champion), the outcome, the champion version.
    """
    params = dict(locals())
    from cityseg.components.kfp_params import step_config
    from cityseg.components.runner import runner_from_params
    from cityseg.components.validate.config import ValidateConfig
    from cityseg.components.validate.core import validate as validate_data

    config = step_config(
        ValidateConfig,
        params,
        others=(
            "data_runner",
            "dataflow_project",
            "dataflow_region",
            "dataflow_temp_location",
            "dataflow_machine_type",
            "dataflow_max_workers",
            "dataflow_image",
            "dataflow_service_account",
        ),
        # Dataflow's workers read the shards where KFP stored them, on gs://.
        shards=shards.uri if data_runner == "dataflow" else shards.path,
        out=statistics.path,
        markdown_out=report.path,
        runner=runner_from_params(params),
    )
    result = validate_data(config)
    statistics.metadata["fingerprint"] = fingerprint
    return result.retrain, result.outcome, result.champion


@container_images.component
def skip_training(
    outcome: str,
) -> NamedTuple("PushOutputs", [("blessed", bool), ("version", str), ("aliases", str), ("reason", str)]):
    """Stand in for train, evaluate and push when validation found nothing to retrain.

    Args:
        outcome: the validate step's outcome, e.g. "data unchanged since champion v3: nothing to retrain".
    Returns:
        the push step's outputs for no push: not blessed, no version, no aliases, the outcome as reason.
    """
    return False, "", "", outcome
