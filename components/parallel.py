"""Fanning per-file work out, with errors that read like local ones: a process pool or Apache Beam.

The data steps hand their per-frame (or per-shard) function and a combiner to `map_combine`, which
runs them on the engine a `RunnerConfig` names: `local`, this process pool (the default, no service);
`beam`, Beam's DirectRunner with one worker process per core; `dataflow`, the same Beam pipeline on
Google Cloud Dataflow (docs/beam.md). The work and the combining are the same functions on every
engine, so the three give the same files and the same summaries.
"""

import concurrent.futures
import contextlib
import dataclasses
import logging
import multiprocessing
import os
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol, TypeVar

from tqdm import tqdm

from cityseg.components import storage

Task = TypeVar("Task")
Result = TypeVar("Result")

log = logging.getLogger(__name__)

RUNNERS = ("local", "beam", "dataflow")
DIRECT_MODES = ("multi_threading", "multi_processing")


@dataclasses.dataclass(frozen=True)
class RunnerConfig:
    """Which engine runs a data step's per-frame work, and the Dataflow job's settings.

    Attributes:
        runner: `local` (process pool), `beam` (Beam's DirectRunner, one worker per core) or
            `dataflow` (Beam on Google Cloud Dataflow; needs the settings below but the service account).
        direct_mode: the DirectRunner's workers: `multi_threading` (the default: the per-frame work
            is OpenCV and NumPy, which release the GIL, and threads start at once) or
            `multi_processing` (SDK worker processes, as on a cluster; seconds to start).
        project: the GCP project the Dataflow job runs in.
        region: the Dataflow region, e.g. `europe-west4`.
        temp_location: a gs:// prefix for Dataflow's staging and temporary files.
        machine_type: the Compute Engine machine type of each Dataflow worker.
        max_workers: the most workers Dataflow's autoscaling may start.
        sdk_container_image: the image the Dataflow workers run: the data image, which holds
            cityseg and apache-beam at the pinned versions.
        service_account: the workers' service account e-mail; empty means the project's default.
    """

    runner: str = "local"
    direct_mode: str = "multi_threading"
    project: str = ""
    region: str = ""
    temp_location: str = ""
    machine_type: str = "n2-standard-4"
    max_workers: int = 20
    sdk_container_image: str = ""
    service_account: str = ""

    def __post_init__(self):
        if self.runner not in RUNNERS:
            raise ValueError(f"runner must be one of {', '.join(RUNNERS)}, got {self.runner!r}")
        if self.direct_mode not in DIRECT_MODES:
            raise ValueError(
                f"direct_mode must be one of {', '.join(DIRECT_MODES)}, got {self.direct_mode!r}"
            )
        if self.max_workers < 1:
            raise ValueError(f"max_workers must be at least 1, got {self.max_workers}")
        if self.runner != "dataflow":
            return
        missing = [
            name
            for name in ("project", "region", "temp_location", "sdk_container_image")
            if not getattr(self, name)
        ]
        if missing:
            raise ValueError(f"runner dataflow needs {', '.join(missing)}")
        if not self.temp_location.startswith("gs://"):
            raise ValueError(
                f"temp_location must be a gs:// prefix for runner dataflow, got {self.temp_location!r}"
            )


# The data steps' KFP parameters that make their RunnerConfig -> its fields; the pipelines pass them.
RUNNER_PARAMS = {
    "data_runner": "runner",
    "dataflow_project": "project",
    "dataflow_region": "region",
    "dataflow_temp_location": "temp_location",
    "dataflow_machine_type": "machine_type",
    "dataflow_max_workers": "max_workers",
    "dataflow_image": "sdk_container_image",
    "dataflow_service_account": "service_account",
}


def runner_from_params(params: dict) -> RunnerConfig:
    """The RunnerConfig a data step's component parameters (`RUNNER_PARAMS`) describe.

    Raises:
        ValueError: the settings are incomplete or out of range (see RunnerConfig).
    """
    return RunnerConfig(**{field: params[param] for param, field in RUNNER_PARAMS.items()})


class Combiner(Protocol):
    """Beam's CombineFn interface, without Beam: what folds `(index, task, result)` items into one value.

    Accumulators merge in any order and on any worker; `extract_output` must give the same value
    whatever the order the items arrived in.
    """

    def create_accumulator(self) -> Any: ...

    def add_input(self, accumulator: Any, item: tuple[int, Any, Any]) -> Any: ...

    def merge_accumulators(self, accumulators) -> Any: ...

    def extract_output(self, accumulator: Any) -> Any: ...


class InTaskOrder:
    """A combiner that collects every `(index, task, result)` and hands `finish` the pairs in task order.

    For per-shard results (a few hundred bytes each): any order of arrival gives the same output.
    """

    def __init__(self, finish: Callable[[list[tuple[Any, Any]]], Any]):
        self.finish = finish

    def create_accumulator(self) -> list:
        return []

    def add_input(self, accumulator: list, item: tuple[int, Any, Any]) -> list:
        accumulator.append(item)
        return accumulator

    def merge_accumulators(self, accumulators) -> list:
        return [item for accumulator in accumulators for item in accumulator]

    def extract_output(self, accumulator: list):
        return self.finish(
            [(task, result) for _, task, result in sorted(accumulator, key=lambda item: item[0])]
        )


def check_reachable(runner: RunnerConfig | None, **locations: str | os.PathLike | None) -> None:
    """On Dataflow, the workers read only gs://: refuse a local input before a job is started.

    Raises:
        ValueError: naming the input and its location.
    """
    if runner is None or runner.runner != "dataflow":
        return
    for name, location in locations.items():
        if location is not None and not storage.is_gcs(location):
            raise ValueError(f"{name}: {location} is not a gs:// location; Dataflow's workers cannot read it")


@contextlib.contextmanager
def output_root(runner: RunnerConfig | None, staging: Path, step: str) -> Iterator[str]:
    """Where the workers write a step's files: `staging` itself, or on Dataflow a gs:// prefix.

    Dataflow's workers cannot reach this machine's disk, so they write below `temp_location`; when
    the block succeeds, those files are copied into `staging` (through this machine, which is what
    publishes the step's output) and, succeed or fail, removed from `temp_location`.
    """
    if runner is None or runner.runner != "dataflow":
        yield str(staging)
        return
    root = storage.join(runner.temp_location, "output", f"{step}-{uuid.uuid4().hex[:8]}")
    try:
        yield root
        copied = storage.copy_tree(root, staging)
        log.info("%s: copied %d files from %s", step, len(copied), root)
    finally:
        for path in storage.list_files(root):
            storage.delete(path)


def map_combine(
    fn: Callable[[Task], Result],
    tasks: Sequence[Task],
    combiner: Combiner,
    *,
    workers: int | None,
    runner: RunnerConfig | None,
    desc: str,
    unit: str = "frame",
):
    """fn over tasks on the engine `runner` names (None: the local pool), folded by `combiner`.

    Raises:
        ValueError: the message of the first task (in task order) whose fn raised a `ValueError`.
    """
    if runner is not None and runner.runner != "local" and tasks:
        from cityseg.components.beam.run import beam_map_combine

        return beam_map_combine(fn, tasks, combiner, workers=workers, runner=runner, desc=desc)
    accumulator = combiner.create_accumulator()
    results = map_in_processes(fn, tasks, workers, desc, unit)
    for index, (task, result) in enumerate(zip(tasks, results, strict=True)):
        accumulator = combiner.add_input(accumulator, (index, task, result))
    return combiner.extract_output(accumulator)


def map_in_processes(
    fn: Callable[[Task], Result], tasks: Sequence[Task], workers: int | None, desc: str, unit: str = "frame"
) -> Iterator[Result]:
    """fn over tasks in `workers` processes (None: one per core; 1: here), in order, with a progress bar.

    A `ValueError` raised by fn in a worker (bad input, naming the file) is raised here as a plain
    `ValueError` with the same message, not under a pool traceback, and the remaining tasks are
    cancelled.
    """
    progress = tqdm(total=len(tasks), desc=desc, unit=unit, mininterval=1.0)
    workers = max(1, min(workers or os.cpu_count() or 1, len(tasks)))
    if workers == 1:
        with progress:
            for task in tasks:
                yield fn(task)
                progress.update()
        return
    # spawn, not fork: the parent may hold TensorFlow or OpenCV thread pools, which a forked child
    # inherits in a locked state.
    executor = concurrent.futures.ProcessPoolExecutor(
        workers, mp_context=multiprocessing.get_context("spawn")
    )
    chunksize = max(1, min(16, len(tasks) // (workers * 8)))
    log.debug("%s: %d tasks over %d processes, %d per chunk", desc, len(tasks), workers, chunksize)
    try:
        with progress:
            for result in executor.map(fn, tasks, chunksize=chunksize):
                yield result
                progress.update()
    except ValueError as err:
        raise ValueError(str(err)) from None
    finally:
        executor.shutdown(wait=True, cancel_futures=True)
