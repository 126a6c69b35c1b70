"""The wiring the pipelines share: the steps on a registry, task settings, data, training, evaluate, push.

A pipeline's DAG is built from these pieces inside its `wire(p)` function, where `p.<name>` is a
pipeline parameter (see `cityseg.pipelines.params`). The components and the resources their tasks
request come from the table of steps, `cityseg.components.registry`.
"""

import importlib
from dataclasses import dataclass, field
from typing import Literal, NamedTuple

from kfp import dsl, kubernetes

from cityseg.components import container_images
from cityseg.components.defaults import defaults
from cityseg.components.deploy.config import DeployConfig
from cityseg.components.evaluate.config import EvaluateConfig
from cityseg.components.registry import TASKS
from cityseg.pipelines import pod_security
from cityseg.pipelines.params import PipelineParams


def _component(name: str):
    """The KFP component of task `name`: the function of that name in its step's component.py."""
    step, _ = TASKS[name]
    return getattr(importlib.import_module(step.component_module), name)


# Task -> its KFP component, for every task in the table of steps (`cityseg.components.registry`).
COMPONENTS = {name: _component(name) for name in TASKS}
# Task -> (CPU, memory) it requests.
RESOURCES = {name: (task.cpu, task.memory) for name, (_, task) in TASKS.items()}
# Processes of the synth and remap tasks: a free 2-core machine's worth, which the cluster's request covers.
DATA_WORKERS = 2
# Spot GPU nodes get preempted; a retry resumes from the checkpoints under the run's folder.
TRAIN_RETRY = {"num_retries": 3, "backoff_duration": "60s", "backoff_factor": 2.0}
# Pipeline parameters that are TrainConfig fields shared by every training of a run, what else
# those trainings share, and the push gate's parameters.
SHARED_TRAIN_FIELDS = (
    "epochs",
    "early_stopping_patience",
    "batch_size",
    "learning_rate",
    "class_weighting",
    "height",
    "width",
)
TRAINING_SETTINGS = (*SHARED_TRAIN_FIELDS, "gpus_per_worker", "mlflow_tracking_uri", "mlflow_experiment")
DEPLOY_SETTINGS = (
    "registered_model",
    "canary_traffic_percent",
    "ready_timeout_s",
    "serving_dir",
    "mlflow_tracking_uri",
)
GATE_SETTINGS = (
    "registered_model",
    "min_dice",
    "min_improvement",
    "max_int8_iou_drop",
    "serving_dir",
    "mlflow_tracking_uri",
)


def settings(p: PipelineParams, names: tuple[str, ...]) -> dict:
    """The pipeline parameters `names` of `p`, as keyword arguments for a step."""
    return {name: getattr(p, name) for name in names}


@dataclass(frozen=True)
class Cluster:
    """Where the cluster runs GPU work and keeps credentials (ignored by the local run)."""

    accelerator: str = "NVIDIA_L4"
    gpu_node_label: str = "cloud.google.com/gke-accelerator"
    gpu_node_value: str = "nvidia-l4"
    mlflow_secret: str = "mlflow-credentials"
    # None for Workload Identity, where pods need no key file.
    gcs_secret: str | None = "gcs-credentials"
    gcs_key_dir: str = "/var/secrets/google"
    # A ReadWriteMany volume (GCS FUSE, see manifests/) that outlives a retried train task.
    checkpoint_claim: str = "cityseg-checkpoints"
    checkpoint_mount: str = "/mnt/checkpoints"


DEFAULT_CLUSTER = Cluster()


@dataclass(frozen=True)
class Steps:
    """The components of the DAG, on one registry and tag: `steps.train(...)` makes a train task."""

    registry: str = container_images.DEFAULT_REGISTRY
    tag: str = container_images.DEFAULT_TAG
    components: dict = field(default_factory=dict)

    @classmethod
    def build(
        cls, registry: str = container_images.DEFAULT_REGISTRY, tag: str = container_images.DEFAULT_TAG
    ) -> "Steps":
        """Every step's component, rebased onto `registry`/`tag`."""
        rebased = {
            step: container_images.rebase(component, registry, tag) for step, component in COMPONENTS.items()
        }
        return cls(registry, tag, rebased)

    def __getattr__(self, step: str):
        try:
            return self.__dict__["components"][step]
        except KeyError:
            raise AttributeError(f"no step {step!r}; known: {', '.join(COMPONENTS)}") from None

    def image(self, step: str) -> str:
        """The image reference that `step` runs in."""
        return container_images.image(step, self.registry, self.tag)


@dataclass(frozen=True)
class Target:
    """Where a pipeline runs and on which images.

    "gke" adds the cluster settings (GPUs, node pool, secrets); "local" leaves them out, since
    kfp.local ignores them.
    """

    platform: Literal["gke", "local"] = "gke"
    registry: str = container_images.DEFAULT_REGISTRY
    tag: str = container_images.DEFAULT_TAG
    cluster: Cluster = DEFAULT_CLUSTER

    def wiring(self) -> tuple["Steps", "TaskSettings"]:
        """The steps on this target's images, and the task settings for its platform."""
        return Steps.build(self.registry, self.tag), TaskSettings(self.platform == "gke", self.cluster)


GKE = Target()
LOCAL = Target(platform="local")


def use_gpu(task, cluster: Cluster, count):
    """Schedule the task on the GKE GPU pool with `count` GPUs."""
    task.set_accelerator_type(cluster.accelerator).set_accelerator_limit(count)
    kubernetes.add_node_selector(task, label_key=cluster.gpu_node_label, label_value=cluster.gpu_node_value)
    return kubernetes.add_toleration(task, key="nvidia.com/gpu", operator="Exists", effect="NoSchedule")


@dataclass(frozen=True)
class TaskSettings:
    """Caching on every task; on the cluster also resources, credentials and, with `gpus`, the GPU pool.

    kfp.local ignores resources and warns about each, so local pipelines leave them out.
    """

    on_cluster: bool
    cluster: Cluster = DEFAULT_CLUSTER

    def __call__(self, task, step: str, *, cache: bool, gpus=None):
        task.set_caching_options(cache)
        if self.on_cluster:
            pod_security.harden(task, RESOURCES[step])
            pod_security.use_credentials(task, self.cluster)
            if gpus is not None:
                use_gpu(task, self.cluster, gpus)
        return task


class Trainee(NamedTuple):
    """What one training varies: model, loss, augmentations (comma-separated) and seed; channels or values."""

    model: object
    loss: object
    augment: object
    seed: object


def launched_training(
    steps: Steps, configure: TaskSettings, name: str, *, on_volume: bool, gpus, **arguments
):
    """A task of the training component `name` (uncached, retried) with its launch settings; returns it.

    With `on_volume` the task launches its workers as a TFJob of its own image and only waits for
    it, so it asks for no GPU (its workers get them); the checkpoint volume is mounted, where the
    workers write under the run id and a retried task finds its TFJob's work
    (`cityseg.components.train.launch`). Otherwise the task runs its workers itself (launcher
    "local"), on `gpus` GPUs on the cluster. `arguments` are the component's other parameters.
    """
    cluster = configure.cluster
    task = getattr(steps, name)(
        launcher="tfjob" if on_volume else "local",
        image=steps.image(name),
        checkpoint_root=cluster.checkpoint_mount if on_volume else "",
        run_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER,
        **arguments,
    )
    configure(task, name, cache=False, gpus=None if on_volume else gpus).set_retry(**TRAIN_RETRY)
    if on_volume:
        kubernetes.mount_pvc(task, pvc_name=cluster.checkpoint_claim, mount_path=cluster.checkpoint_mount)
        # The checkpoint volume is GCS FUSE; GKE injects its sidecar only into annotated pods.
        kubernetes.add_pod_annotation(task, "gke-gcsfuse/volumes", "true")
    return task


def train_and_evaluate(
    steps: Steps,
    configure: TaskSettings,
    p: PipelineParams,
    shards,
    trainee: Trainee,
    *,
    workers,
    one_per_run: bool,
    parent_run_id="",
):
    """Wire train (retried, on GPUs) -> evaluate on the val split; returns both tasks.

    The other training settings are the pipeline's parameters `TRAINING_SETTINGS`.

    Args:
        one_per_run: this is the run's only training. On the cluster it then resumes across retries
            from the checkpoint volume under the run id, and several workers train as a TFJob. A sweep's
            configurations would share that folder and TFJob name: each keeps checkpoints in its output.
    """
    on_volume = configure.on_cluster and one_per_run
    train_task = launched_training(
        steps,
        configure,
        "train",
        on_volume=on_volume,
        gpus=p.gpus_per_worker,
        shards=shards,
        model_name=trainee.model,
        loss=trainee.loss,
        augment=trainee.augment,
        seed=trainee.seed,
        workers=workers,
        parent_run_id=parent_run_id,
        **settings(p, TRAINING_SETTINGS),
    )
    evaluate_task = steps.evaluate(
        shards=shards,
        model=train_task.outputs["model"],
        split=defaults(EvaluateConfig).split,
        **settings(p, ("corruptions", "mlflow_tracking_uri")),
    )
    configure(evaluate_task, "evaluate", cache=False, gpus=1)
    return train_task, evaluate_task


def push_model(
    steps: Steps, configure: TaskSettings, p: PipelineParams, *, model, evaluation, shards, **lineage
):
    """Wire the push gate for `model`, then deploy (which acts only on a blessed version); returns push.

    `lineage` (statistics, pipeline_name, pipeline_version) goes into the version's tags. Neither
    task is cached: both act on the registry and the cluster as they are now.
    """
    push_task = steps.push(
        model=model,
        evaluation=evaluation,
        shards=shards,
        run_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER,
        **settings(p, GATE_SETTINGS),
        **lineage,
    )
    configure(push_task, "push", cache=False)
    deploy = defaults(DeployConfig)
    deploy_task = steps.deploy(
        blessed=push_task.outputs["blessed"],
        version=push_task.outputs["version"],
        target="kserve" if configure.on_cluster else "local",
        service=deploy.service,
        namespace=deploy.namespace,
        **settings(p, DEPLOY_SETTINGS),
    )
    configure(deploy_task, "deploy", cache=False)
    return push_task
