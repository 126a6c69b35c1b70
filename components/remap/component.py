"""KFP interface of the remap step."""

from kfp.dsl import Dataset, Output

from cityseg.components import container_images


@container_images.component
def remap(
    *,
    cityscapes: str,
    fingerprint: str,
    categories: Output[Dataset],
    workers: int,
    data_runner: str,
    dataflow_project: str,
    dataflow_region: str,
    dataflow_temp_location: str,
    dataflow_machine_type: str,
    dataflow_max_workers: int,
    dataflow_image: str,
    dataflow_service_account: str,
) -> None:
    """Remap the 34 Cityscapes label ids to the 8 categories (void, flat, ..., vehicle), one PNG per frame.

    Args:
        cityscapes: Cityscapes root, folder of the official zips, or gs:// prefix.
        fingerprint: the source's fingerprint; only in the cache key, so new data is remapped again.
        categories: {split}/{city}/{stem}_gtFine_categoryIds.png, uint8 category ids.
        workers: parallel worker processes.
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
    from cityseg.components.remap.config import RemapConfig
    from cityseg.components.remap.core import remap as remap_to_categories
    from cityseg.components.runner import runner_from_params

    config = step_config(
        RemapConfig,
        params,
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
        out=categories.path,
        runner=runner_from_params(params),
    )
    summary = remap_to_categories(config)
    categories.metadata.update(frames=summary["frames"], pixel_share=summary["pixel_share"])
