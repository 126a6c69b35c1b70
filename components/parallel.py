"""Fanning per-file work out, with errors that read like local ones: a process pool or Apache Beam.

The data steps hand their per-frame (or per-shard) function and a combiner to `map_combine`, which
runs them on the engine a `RunnerConfig` names: `local`, this process pool (the default, no service);
`beam`, Beam's DirectRunner with one worker process per core; `dataflow`, the same Beam pipeline on
Google Cloud Dataflow (docs/beam.md). The work and the combining are the same functions on every
engine, so the three give the same files and the same summaries.
"""

import concurrent.futures
import contextlib
import logging
import multiprocessing
import os
import tempfile
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TypeVar

from tqdm import tqdm

from cityseg.components import storage
from cityseg.components.runner import Combiner, RunnerConfig

Task = TypeVar("Task")
Result = TypeVar("Result")

log = logging.getLogger(__name__)


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
def written_here(path: str) -> Iterator[str]:
    """A local path to write `path` at: itself, or for gs:// (Dataflow's workers) a file uploaded after."""
    if not storage.is_gcs(path):
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="cityseg-") as folder:
        local = str(Path(folder, Path(path).name))
        yield local
        storage.copy_file(local, path)


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
