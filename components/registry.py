"""The one table of pipeline steps: each step's KFP tasks with their image and resources, CLI, config.

Everything else reads it: `container_images` gives each component its image, `cityseg.cli` its
subcommands, and the pipelines' wiring its components and the resources each task requests. A step
is the folder `components/<name>/` with its three layers (core, cli, component) and a `config.py`;
adding one is one `Step` here, its parameters in `pipelines/params.py` and a call in the wiring.
The table holds names, not objects, so reading it imports neither KFP nor TensorFlow.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Task:
    """One KFP component of a step: its function in `<step>/component.py`, the image it runs in, its request.

    The function's name is the task's name in the pipelines.
    """

    name: str
    image: str
    cpu: str
    memory: str


@dataclass(frozen=True)
class Step:
    """A step: its folder under components/, its tasks, its `cityseg` subcommands and its config classes.

    Each command is a click command of that name in `<step>/cli.py`; each config is a frozen
    dataclass in `<step>/config.py`.
    """

    name: str
    tasks: tuple[Task, ...]
    commands: tuple[str, ...]
    configs: tuple[str, ...]

    @property
    def component_module(self) -> str:
        return f"cityseg.components.{self.name}.component"

    @property
    def cli_module(self) -> str:
        return f"cityseg.components.{self.name}.cli"

    @property
    def config_module(self) -> str:
        return f"cityseg.components.{self.name}.config"


STEPS = (
    Step(
        "synth",
        (Task("synth", "synth", "2", "4Gi"), Task("synth_objects", "synth", "2", "4Gi")),
        ("synth",),
        ("SynthConfig",),
    ),
    # The source check runs in the synth image, which already has the storage code.
    Step("source", (Task("check_source", "synth", "500m", "1Gi"),), ("source",), ("SourceConfig",)),
    Step("remap", (Task("remap", "remap", "4", "8Gi"),), ("remap",), ("RemapConfig",)),
    Step("shard", (Task("shard", "shard", "4", "8Gi"),), ("shard",), ("ShardConfig",)),
    Step("crops", (Task("crops", "shard", "2", "4Gi"),), ("crops",), ("CropsConfig",)),
    Step(
        "validate",
        (Task("validate", "validate", "2", "4Gi"), Task("skip_training", "validate", "500m", "1Gi")),
        ("validate",),
        ("ValidateConfig",),
    ),
    Step("train", (Task("train", "train", "4", "16Gi"),), ("train",), ("TrainConfig",)),
    Step("evaluate", (Task("evaluate", "evaluate", "4", "8Gi"),), ("evaluate",), ("EvaluateConfig",)),
    Step("push", (Task("push", "push", "2", "8Gi"),), ("push", "promote", "rollback"), ("PushConfig",)),
    # The deploy step needs only the Kubernetes and MLflow clients, which the push image has.
    Step("deploy", (Task("deploy", "push", "500m", "1Gi"),), ("deploy",), ("DeployConfig",)),
    # The comparison sweep's bookkeeping tasks (MLflow parent run, report) need only the base image.
    Step(
        "sweep",
        (Task("start_sweep", "base", "1", "2Gi"), Task("finish_sweep", "base", "1", "4Gi")),
        ("report",),
        ("SweepConfig",),
    ),
    # The object pipeline's steps (cityseg.pipelines.objects).
    Step(
        "objects",
        (
            Task("train_objects", "train", "4", "8Gi"),
            Task("evaluate_objects", "evaluate", "2", "4Gi"),
            Task("push_objects", "push", "2", "4Gi"),
        ),
        ("objects",),
        ("ObjectsTrainConfig", "ObjectsEvaluateConfig", "ObjectsPushConfig"),
    ),
)
# Task name -> (its step, the task).
TASKS = {task.name: (step, task) for step in STEPS for task in step.tasks}


def task(name: str) -> Task:
    """The task `name` of the table.

    Raises:
        KeyError: no step has such a task, naming the known ones.
    """
    if name not in TASKS:
        raise KeyError(f"no pipeline task {name!r}; known: {', '.join(TASKS)}")
    return TASKS[name][1]


def commands() -> dict[str, str]:
    """`cityseg` subcommand -> "module:attribute" of its click command, for every step of the table."""
    return {command: f"{step.cli_module}:{command}" for step in STEPS for command in step.commands}
