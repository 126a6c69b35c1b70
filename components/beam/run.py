"""Run a step's per-frame function and its combiner as one Beam pipeline, and wait for the job.

The pipeline is `Create(tasks) | Reshuffle | Map(fn) | CombineGlobally(combiner)`: the tasks are
spread over the workers, each result is folded by the step's own combiner (its accumulators merge
across workers), and the one output is written where this process reads it back. A `ValueError`
raised by fn (bad input, naming the file) travels as a value, so the step raises the same error on
every engine.
"""

import contextlib
import logging
import pickle
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence

import apache_beam as beam
from apache_beam.runners.runner import PipelineResult, PipelineState

from cityseg.components import storage
from cityseg.components.beam import options as beam_options
from cityseg.components.runner import Combiner, RunnerConfig

log = logging.getLogger(__name__)

RESULT_FILE = "result.pickle"
POLL_SECONDS = 10.0
_DONE = {PipelineState.DONE}
_FAILED = {PipelineState.FAILED, PipelineState.CANCELLED, PipelineState.DRAINED, PipelineState.UPDATED}


class _Failed:
    """A `ValueError` raised by the step's function, kept as a value: its task index and message."""

    def __init__(self, index: int, message: str):
        self.index, self.message = index, message


def _apply(indexed: tuple[int, object], fn: Callable):
    index, task = indexed
    try:
        return index, task, fn(task)
    except ValueError as err:
        return index, task, _Failed(index, str(err))


class StepCombineFn(beam.CombineFn):
    """A step's `Combiner` as a Beam CombineFn; failed tasks are collected beside its accumulator."""

    def __init__(self, combiner: Combiner):
        self.combiner = combiner

    def create_accumulator(self):
        return [], self.combiner.create_accumulator()

    def add_input(self, accumulator, item):
        failed, inner = accumulator
        if isinstance(item[2], _Failed):
            return [*failed, item[2]], inner
        return failed, self.combiner.add_input(inner, item)

    def merge_accumulators(self, accumulators):
        accumulators = list(accumulators)
        failed = [entry for accumulator in accumulators for entry in accumulator[0]]
        return failed, self.combiner.merge_accumulators([accumulator[1] for accumulator in accumulators])

    def extract_output(self, accumulator):
        failed, inner = accumulator
        if failed:
            return min(failed, key=lambda entry: entry.index), None
        return None, self.combiner.extract_output(inner)


def _save(output, path: str) -> None:
    storage.write_bytes(path, pickle.dumps(output))


@contextlib.contextmanager
def _result_path(runner: RunnerConfig, name: str) -> Iterator[str]:
    """Where the pipeline writes its one output: a local temporary folder, or Dataflow's temp_location."""
    if runner.runner == "dataflow":
        path = storage.join(runner.temp_location, "results", name, RESULT_FILE)
        try:
            yield path
        finally:
            storage.delete(path)
        return
    with tempfile.TemporaryDirectory(prefix="cityseg-beam-") as folder:
        yield storage.join(folder, RESULT_FILE)


def wait_for(result: PipelineResult, name: str, poll_seconds: float = POLL_SECONDS) -> None:
    """Wait for a pipeline, logging each state it passes through; raise when it does not succeed.

    Raises:
        RuntimeError: the job ended FAILED, CANCELLED, DRAINED or UPDATED, with the runner's message.
    """
    seen = None
    while True:
        state = result.state
        if state != seen:
            log.info("%s: %s", name, state)
            seen = state
        if PipelineState.is_terminal(state):
            break
        time.sleep(poll_seconds)
    try:
        result.wait_until_finish()
    except Exception as err:
        # Dataflow's own message (the worker's stack trace, quota or permission errors) is in err.
        raise RuntimeError(f"{name}: Beam job {state}: {err}") from None
    if state not in _DONE:
        raise RuntimeError(f"{name}: Beam job ended {state}")


def build(
    pipeline: beam.Pipeline, fn: Callable, tasks: Sequence, combiner: Combiner, path: str, desc: str
) -> None:
    """Add `Create(tasks) | Reshuffle | Map(fn) | CombineGlobally(combiner) | save(path)` to `pipeline`."""
    _ = (
        pipeline
        | "tasks" >> beam.Create(list(enumerate(tasks)), reshuffle=False)
        | "spread" >> beam.Reshuffle()
        | desc >> beam.Map(_apply, fn)
        | "combine" >> beam.CombineGlobally(StepCombineFn(combiner)).without_defaults()
        | "save" >> beam.Map(_save, path)
    )


def beam_map_combine(
    fn: Callable, tasks: Sequence, combiner: Combiner, *, workers: int | None, runner: RunnerConfig, desc: str
):
    """`parallel.map_combine` on Beam: the DirectRunner (`beam`) or Dataflow (`dataflow`).

    Raises:
        ValueError: the first task (in task order) whose fn raised one, with its message.
        RuntimeError: the Beam job failed, with the runner's message.
    """
    name = beam_options.job_name(desc) if runner.runner == "dataflow" else f"{desc}-{uuid.uuid4().hex[:8]}"
    if runner.runner == "dataflow":
        options = beam_options.dataflow_options(runner, name)
    else:
        options = beam_options.direct_options(workers, runner.direct_mode)
    with _result_path(runner, name) as path:
        runner_object = None if runner.runner == "dataflow" else beam_options.direct_runner(options)
        pipeline = beam.Pipeline(runner=runner_object, options=options)
        build(pipeline, fn, tasks, combiner, path, desc)
        started = time.monotonic()
        wait_for(pipeline.run(), name, poll_seconds=POLL_SECONDS if runner.runner == "dataflow" else 0.1)
        log.info("%s: %d tasks in %.1f s", name, len(tasks), time.monotonic() - started)
        failed, output = pickle.loads(storage.read_bytes(path))
    if failed is not None:
        raise ValueError(failed.message)
    return output
