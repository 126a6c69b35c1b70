"""The Dataflow option: settings checked, and the job request built and validated without sending it."""

import pytest

from cityseg.components.beam.dataflow import job_request
from cityseg.components.beam.options import dataflow_options, job_name
from cityseg.components.remap.core import remap_frame
from cityseg.components.remap.summary import CategoryPixels
from cityseg.components.runner import RunnerConfig

SETTINGS = dict(
    runner="dataflow",
    project="cityseg-prod",
    region="europe-west4",
    temp_location="gs://cityseg-dataflow/tmp",
    machine_type="n2-highcpu-8",
    max_workers=50,
    sdk_container_image="europe-docker.pkg.dev/cityseg-prod/cityseg/data:0.1.0",
    service_account="dataflow-worker@cityseg-prod.iam.gserviceaccount.com",
)


def test_the_job_request_carries_every_setting():
    job = job_request(RunnerConfig(**SETTINGS), "remap", remap_frame, ["a", "b"], CategoryPixels())
    assert job.name.startswith("cityseg-remap-")
    assert job.type_.name == "JOB_TYPE_BATCH"
    environment = job.environment
    # Beam adds a folder per job below temp_location.
    assert environment.temp_storage_prefix.startswith(
        f"storage.googleapis.com/cityseg-dataflow/tmp/temp/{job.name}."
    )
    assert environment.service_account_email == SETTINGS["service_account"]
    (pool,) = environment.worker_pools
    assert pool.machine_type == "n2-highcpu-8"
    assert pool.autoscaling_settings.max_num_workers == 50
    assert pool.autoscaling_settings.algorithm.name == "AUTOSCALING_ALGORITHM_BASIC"
    assert [image.container_image for image in pool.sdk_harness_container_images] == [
        SETTINGS["sdk_container_image"]
    ]


def test_the_options_name_the_project_and_region():
    options = dataflow_options(RunnerConfig(**SETTINGS), job_name("shard"), dry_run=True).get_all_options()
    assert (options["project"], options["region"]) == ("cityseg-prod", "europe-west4")
    assert options["staging_location"] == "gs://cityseg-dataflow/tmp/staging"
    assert options["job_name"].startswith("cityseg-shard-")


def test_beams_validator_rejects_a_bad_project_id():
    with pytest.raises(
        ValueError, match=r"Dataflow settings for job cityseg-remap-\w+ are invalid: .*Project ID"
    ):
        dataflow_options(
            RunnerConfig(**{**SETTINGS, "project": "Not_A_Project"}), job_name("remap"), dry_run=True
        )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"project": "", "sdk_container_image": ""}, "runner dataflow needs project, sdk_container_image"),
        ({"temp_location": "/tmp/x"}, "temp_location must be a gs:// prefix"),
        ({"max_workers": 0}, "max_workers must be at least 1, got 0"),
        ({"runner": "spark"}, "runner must be one of local, beam, dataflow, got 'spark'"),
        ({"runner": "beam", "direct_mode": "in_memory"}, "direct_mode must be one of"),
    ],
)
def test_bad_runner_settings_name_the_field(change, message):
    with pytest.raises(ValueError, match=message):
        RunnerConfig(**{**SETTINGS, **change})
