"""What a data step hands the engine that runs its per-frame work: the engine's settings, a combiner.

`RunnerConfig` names the engine (`parallel.map_combine` runs it): `local`, the process pool;
`beam`, Beam's DirectRunner; `dataflow`, Beam on Google Cloud Dataflow (docs/beam.md). A
`Combiner` folds the per-frame results the same way on each, with Beam's CombineFn interface.
"""

import dataclasses
from collections.abc import Callable
from typing import Any, Protocol

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
