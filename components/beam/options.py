"""Beam PipelineOptions for a `RunnerConfig`, checked by Beam's own validator before anything runs."""

import os
import re
import uuid

from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.options.pipeline_options_validator import PipelineOptionsValidator

from cityseg.components import storage
from cityseg.components.runner import RunnerConfig


def job_name(step: str) -> str:
    """A Dataflow job name for `step`, unique per run: `cityseg-remap-1a2b3c4d`."""
    return f"cityseg-{re.sub(r'[^a-z0-9-]', '-', step.lower())}-{uuid.uuid4().hex[:8]}"


def direct_options(workers: int | None, mode: str) -> PipelineOptions:
    """The DirectRunner with `workers` (None: one per core) threads or processes; one runs in this process."""
    workers = workers or os.cpu_count() or 1
    mode = mode if workers > 1 else "in_memory"
    # flags=[]: PipelineOptions would otherwise parse this process's own argv (pytest's, cityseg's).
    return PipelineOptions(
        flags=[], runner="DirectRunner", direct_num_workers=workers, direct_running_mode=mode
    )


def direct_runner(options: PipelineOptions):
    """The DirectRunner's in-process engine (FnApiRunner), built as the DirectRunner builds it.

    Chosen directly because apache-beam 2.77's DirectRunner first tries the Prism runner, which it
    downloads from GitHub on first use: here that fails after a network attempt, elsewhere it would
    run another engine than the one the agreement tests and the benchmark hold.
    """
    from apache_beam.portability.api import beam_provision_api_pb2
    from apache_beam.runners.portability.fn_api_runner import fn_runner
    from apache_beam.runners.portability.portable_runner import JobServiceHandle

    encoded = JobServiceHandle.encode_pipeline_options(options.get_all_options())
    info = fn_runner.ExtendedProvisionInfo(beam_provision_api_pb2.ProvisionInfo(pipeline_options=encoded))
    return fn_runner.FnApiRunner(provision_info=info)


def dataflow_options(runner: RunnerConfig, name: str, *, dry_run: bool = False) -> PipelineOptions:
    """The Dataflow job's options; `dry_run` builds the job request without sending it.

    Raises:
        ValueError: Beam's validator rejects the settings; the message lists its findings.
    """
    from apache_beam.runners.dataflow.dataflow_runner import DataflowRunner

    settings = dict(
        runner="DataflowRunner",
        project=runner.project,
        region=runner.region,
        job_name=name,
        temp_location=storage.join(runner.temp_location, "temp"),
        staging_location=storage.join(runner.temp_location, "staging"),
        machine_type=runner.machine_type,
        max_num_workers=runner.max_workers,
        autoscaling_algorithm="THROUGHPUT_BASED",
        sdk_container_image=runner.sdk_container_image,
        sdk_location="container",
        dry_run=dry_run,
    )
    if runner.service_account:
        settings["service_account_email"] = runner.service_account
    options = PipelineOptions(flags=[], **settings)
    errors = PipelineOptionsValidator(options, DataflowRunner()).validate()
    if errors:
        raise ValueError(f"Dataflow settings for job {name} are invalid: " + "; ".join(errors))
    return options
