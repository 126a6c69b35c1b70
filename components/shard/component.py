"""KFP interface of the shard step."""

from kfp.dsl import Dataset, Input, Output

from cityseg.components import container_images


@container_images.component
def shard(
    *,
    cityscapes: str,
    fingerprint: str,
    categories: Input[Dataset],
    shards: Output[Dataset],
    num_shards: int,
    height: int,
    width: int,
    select_fraction: float,
    data_runner: str,
    dataflow_project: str,
    dataflow_region: str,
    dataflow_temp_location: str,
    dataflow_machine_type: str,
    dataflow_max_workers: int,
    dataflow_image: str,
    dataflow_service_account: str,
) -> None:
    """Write TFRecord shards per split (DeepLab keys) with manifest.json and TFDS metadata.

    Args:
        cityscapes: the Cityscapes source of the images.
        fingerprint: the source's fingerprint; only in the cache key, so new data is sharded again.
        categories: the category masks from the remap step.
        shards: {split}-{i:05d}-of-{n:05d}.tfrecord files and manifest.json.
        num_shards: shards per split.
        height: stored image height.
        width: stored image width.
        select_fraction: share of the source's train frames written as the select split.
        data_runner: local (process pool), beam (Beam's DirectRunner in this pod) or dataflow.
        dataflow_project: GCP project of the Dataflow job (data_runner dataflow; docs/beam.md).
        dataflow_region: Dataflow region.
        dataflow_temp_location: gs:// prefix for Dataflow's staging and temporary files.
        dataflow_machine_type: machine type of the Dataflow workers.
        dataflow_max_workers: the most Dataflow workers autoscaling may start.
        dataflow_image: container image of the Dataflow workers: the data image.
        dataflow_service_account: the Dataflow workers' service account; empty: the project's default.
    """
    params = dict(locals())
    from cityseg.components.kfp_params import step_config
    from cityseg.components.runner import runner_from_params
    from cityseg.components.shard.config import ShardConfig
    from cityseg.components.shard.core import write_shards

    config = step_config(
        ShardConfig,
        params,
        rename={"num_shards": "shards"},
        others=(
            "fingerprint",
            "data_runner",
            "dataflow_project",
            "dataflow_region",
            "dataflow_temp_location",
            "dataflow_machine_type",
            "dataflow_max_workers",
            "dataflow_image",
            "dataflow_service_account",
        ),
        # Dataflow's workers read the masks where KFP stored them, on gs://.
        categories=categories.uri if data_runner == "dataflow" else categories.path,
        out=shards.path,
        runner=runner_from_params(params),
    )
    manifest = write_shards(config)
    shards.metadata["content_hash"] = manifest["content_hash"]
    shards.metadata["examples"] = {split: info["examples"] for split, info in manifest["splits"].items()}
