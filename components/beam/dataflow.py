"""The Dataflow job request of a step's pipeline, built and checked here without sending it.

`DataflowRunner` with `dry_run` builds the job (name, type, pipeline) but stops before staging; the
worker environment (machine type, autoscaling, service account, container image, temp location) is
added by the same `apiclient.Environment` that Beam's submission uses, minus the upload.
"""

from collections.abc import Callable, Sequence

import apache_beam as beam
from apache_beam.runners.dataflow.internal import apiclient

from cityseg.components import storage
from cityseg.components.beam import options as beam_options
from cityseg.components.beam.run import RESULT_FILE, build
from cityseg.components.runner import Combiner, RunnerConfig


def job_request(runner: RunnerConfig, step: str, fn: Callable, tasks: Sequence, combiner: Combiner):
    """The `google.cloud.dataflow_v1beta3` Job that `runner` would submit for the step, not sent.

    Raises:
        ValueError: Beam's options validator rejects the settings.
    """
    name = beam_options.job_name(step)
    options = beam_options.dataflow_options(runner, name, dry_run=True)
    pipeline = beam.Pipeline(options=options)
    build(
        pipeline, fn, tasks, combiner, storage.join(runner.temp_location, "results", name, RESULT_FILE), step
    )
    job = pipeline.run().job
    job.proto.environment = apiclient.Environment(
        packages=[],
        options=job.options,
        # The version DataflowApplicationClient submits with (apache-beam 2.77.0, pinned).
        environment_version=apiclient._FNAPI_ENVIRONMENT_MAJOR_VERSION,
        proto_pipeline_staged_url=storage.join(runner.temp_location, "staging", "pipeline.pb"),
        proto_pipeline=job.proto_pipeline,
    ).proto
    return job.proto
