"""Running a step's work on Beam: errors read as on the local pool, and a failed job says why."""

import logging
import time

import apache_beam as beam
import numpy as np
import pytest
from apache_beam.options.pipeline_options import PipelineOptions

from cityseg.components import parallel
from cityseg.components.beam.run import wait_for
from cityseg.components.runner import InTaskOrder, RunnerConfig


def square_or_refuse(task: int) -> int:
    if task % 3 == 2:
        raise ValueError(f"frame {task}: refused")
    return task * task


def _sum(pairs) -> int:
    return sum(result for _, result in pairs)


def _fail(element):
    time.sleep(0.5)  # still running when wait_for first looks
    raise RuntimeError(f"worker lost element {element}")


# One local worker runs in this process (the pool's own errors are tested with the steps); two Beam threads.
ENGINES = pytest.mark.parametrize(
    ("runner", "workers"), [(RunnerConfig(), 1), (RunnerConfig("beam"), 2)], ids=["local", "beam"]
)


@ENGINES
def test_the_first_bad_task_in_task_order_is_the_error(runner, workers):
    with pytest.raises(ValueError, match=r"^frame 2: refused$"):
        parallel.map_combine(
            square_or_refuse,
            list(range(9)),
            InTaskOrder(_sum),
            workers=workers,
            runner=runner,
            desc="t",
        )


@ENGINES
def test_results_fold_in_task_order_on_every_runner(runner, workers):
    tasks = [0, 1, 3, 4, 6, 7]
    combiner = InTaskOrder(lambda pairs: [(task, result) for task, result in pairs])
    pairs = parallel.map_combine(square_or_refuse, tasks, combiner, workers=workers, runner=runner, desc="t")
    assert pairs == [(task, task * task) for task in tasks]


def test_a_failed_job_streams_its_states_and_raises_with_the_runners_message(caplog):
    # The portable runner returns while the job runs, as Dataflow's does, and reports its states.
    options = PipelineOptions(
        flags=[], runner="PortableRunner", job_endpoint="embed", environment_type="LOOPBACK"
    )
    pipeline = beam.Pipeline(options=options)
    _ = pipeline | beam.Create([7]) | beam.Map(_fail)
    caplog.set_level(logging.INFO, logger="cityseg.components.beam.run")
    with pytest.raises(RuntimeError, match=r"(?s)^failing-job: Beam job FAILED: .*worker lost element 7"):
        wait_for(pipeline.run(), "failing-job", poll_seconds=0.05)
    states = [
        record.getMessage() for record in caplog.records if record.name == "cityseg.components.beam.run"
    ]
    assert states[-1] == "failing-job: FAILED"
    assert set(states[:-1]) <= {"failing-job: STARTING", "failing-job: RUNNING"}


def test_an_empty_task_list_combines_to_the_empty_output():
    output = parallel.map_combine(
        np.square, [], InTaskOrder(_sum), workers=2, runner=RunnerConfig("beam"), desc="t"
    )
    assert output == 0
