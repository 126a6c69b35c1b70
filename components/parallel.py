"""Fanning per-file work out over processes, with a progress bar and errors that read like local ones."""

import concurrent.futures
import logging
import multiprocessing
import os
from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

from tqdm import tqdm

Task = TypeVar("Task")
Result = TypeVar("Result")

log = logging.getLogger(__name__)


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
