"""The training pipeline: (synth | check source) -> remap -> shard -> train -> evaluate -> push.

`create_pipeline(...)` is a pure factory: every knob that is not a run-time pipeline parameter
(images, platform, GPU type and pool, secret names) is an explicit argument, and the function it
returns only wires the DAG.
"""

from dataclasses import dataclass
from typing import Literal, NamedTuple

from kfp import dsl, kubernetes
from kfp.dsl import HTML, Dataset, Metrics, Model

from cityseg.components import images
from cityseg.components.evaluate import component as evaluate_component
from cityseg.components.push import component as push_component
from cityseg.components.remap import component as remap_component
from cityseg.components.shard import component as shard_component
from cityseg.components.source import component as source_component
from cityseg.components.synth import component as synth_component
from cityseg.components.train import component as train_component

PIPELINE_NAME = "cityseg-training"
SYNTHETIC_CITIES = 6


class TrainingOutputs(NamedTuple):
    shards: Dataset
    model: Model
    evaluation: Dataset
    metrics: Metrics
    report: HTML
    blessed: bool
    version: str
    aliases: str
    reason: str


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


@dataclass(frozen=True)
class Steps:
    """The components of the DAG, on one registry and tag."""

    synth: object
    check_source: object
    remap: object
    shard: object
    train: object
    evaluate: object
    push: object

    @classmethod
    def build(cls, registry: str = images.DEFAULT_REGISTRY, tag: str = images.DEFAULT_TAG) -> "Steps":
        """Every step's component, rebased onto `registry`/`tag`."""
        return cls(
            synth=images.rebase(synth_component.synth, "synth", registry, tag),
            check_source=images.rebase(source_component.check_source, "source", registry, tag),
            remap=images.rebase(remap_component.remap, "remap", registry, tag),
            shard=images.rebase(shard_component.shard, "shard", registry, tag),
            train=images.rebase(train_component.train, "train", registry, tag),
            evaluate=images.rebase(evaluate_component.evaluate, "evaluate", registry, tag),
            push=images.rebase(push_component.push, "push", registry, tag),
        )


def use_credentials(task, cluster: Cluster):
    """MLflow and GCS credentials from Kubernetes Secrets, never from the pipeline spec."""
    kubernetes.use_secret_as_env(
        task, secret_name=cluster.mlflow_secret, secret_key_to_env={"tracking-uri": "MLFLOW_TRACKING_URI"}
    )
    # A server without authentication has no username/password keys.
    kubernetes.use_secret_as_env(
        task,
        secret_name=cluster.mlflow_secret,
        secret_key_to_env={"username": "MLFLOW_TRACKING_USERNAME", "password": "MLFLOW_TRACKING_PASSWORD"},
        optional=True,
    )
    if cluster.gcs_secret is None:
        return task
    kubernetes.use_secret_as_volume(task, secret_name=cluster.gcs_secret, mount_path=cluster.gcs_key_dir)
    return task.set_env_variable("GOOGLE_APPLICATION_CREDENTIALS", f"{cluster.gcs_key_dir}/key.json")


def use_gpu(task, cluster: Cluster, count):
    """Schedule the task on the GKE GPU pool with `count` GPUs."""
    task.set_accelerator_type(cluster.accelerator).set_accelerator_limit(count)
    kubernetes.add_node_selector(task, label_key=cluster.gpu_node_label, label_value=cluster.gpu_node_value)
    return kubernetes.add_toleration(task, key="nvidia.com/gpu", operator="Exists", effect="NoSchedule")


@dataclass(frozen=True)
class TaskSettings:
    """Resource requests on every task; on the cluster also credentials and, with `gpus`, the GPU pool."""

    on_cluster: bool
    cluster: Cluster = Cluster()

    def __call__(self, task, cpu: str, memory: str, gpus=None):
        task.set_cpu_request(cpu).set_memory_request(memory)
        if self.on_cluster:
            use_credentials(task, self.cluster)
            if gpus is not None:
                use_gpu(task, self.cluster, gpus)
        return task


def prepare_data(
    steps: Steps,
    configure: TaskSettings,
    *,
    data,
    synthetic_frames,
    synthetic_size,
    height,
    width,
    shards,
    seed,
):
    """Wire (synth | check source) -> remap -> shard inside a pipeline; returns the shard task.

    The three data tasks are cached: runs with the same source and sizes share their outputs.
    """
    with dsl.If(data == "", name="no-data-given"):
        synth_task = steps.synth(
            cities=SYNTHETIC_CITIES,
            frames=synthetic_frames,
            height=synthetic_size[0],
            width=synthetic_size[1],
            seed=seed,
        ).set_caching_options(True)
        configure(synth_task, cpu="2", memory="4Gi")
    with dsl.Else(name="data-given"):
        # Not cached: the source may have changed since the last run, and the check costs nothing.
        source_task = steps.check_source(data=data).set_caching_options(False)
        configure(source_task, cpu="500m", memory="1Gi")
    source = dsl.OneOf(synth_task.outputs["Output"], source_task.output)

    remap_task = steps.remap(cityscapes=source).set_caching_options(True)
    configure(remap_task, cpu="4", memory="8Gi")
    shard_task = steps.shard(
        cityscapes=source,
        categories=remap_task.outputs["categories"],
        num_shards=shards,
        height=height,
        width=width,
    ).set_caching_options(True)
    return configure(shard_task, cpu="4", memory="8Gi")


def push_model(
    steps: Steps,
    configure: TaskSettings,
    *,
    model,
    evaluation,
    shards,
    registered_model,
    min_dice,
    min_improvement,
    serving_dir,
    mlflow_tracking_uri,
):
    """Wire the push gate for `model` inside a pipeline; returns the push task (never cached)."""
    push_task = steps.push(
        model=model,
        evaluation=evaluation,
        shards=shards,
        registered_model=registered_model,
        min_dice=min_dice,
        min_improvement=min_improvement,
        serving_dir=serving_dir,
        mlflow_tracking_uri=mlflow_tracking_uri,
        run_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER,
    ).set_caching_options(False)
    return configure(push_task, cpu="2", memory="8Gi")


def create_pipeline(
    *,
    registry: str = images.DEFAULT_REGISTRY,
    tag: str = images.DEFAULT_TAG,
    platform: Literal["gke", "local"] = "gke",
    cluster: Cluster = Cluster(),
    name: str = PIPELINE_NAME,
):
    """The training pipeline for `platform`.

    "gke" adds the cluster settings (GPUs, node pool, secrets) and trains `workers > 1` as a TFJob;
    "local" leaves them out, since kfp.local ignores them, and trains several workers as local processes.
    """
    steps = Steps.build(registry, tag)
    on_cluster = platform == "gke"
    configure = TaskSettings(on_cluster, cluster)

    @dsl.pipeline(
        name=name, description="Train, evaluate and push a Cityscapes street-scene segmentation model."
    )
    def training_pipeline(
        data: str = "",
        synthetic_frames: int = 300,
        synthetic_height: int = 256,
        synthetic_width: int = 512,
        model: str = "unet",
        loss: str = "ce_dice",
        epochs: int = 20,
        batch_size: int = 8,
        learning_rate: float = 0.003,
        class_weighting: str = "median",
        augment: str = "flip",
        height: int = 64,
        width: int = 128,
        shards: int = 4,
        workers: int = 1,
        gpus_per_worker: int = 1,
        min_dice: float = 0.8,
        min_improvement: float = 0.0,
        registered_model: str = "cityseg",
        mlflow_tracking_uri: str = "",
        mlflow_experiment: str = "cityseg",
        serving_dir: str = "",
        seed: int = 0,
    ) -> TrainingOutputs:
        """Train, evaluate and push a Cityscapes street-scene segmentation model.

        Args:
            data: Cityscapes folder, folder of the official zips, or gs:// prefix;
                empty generates a synthetic set.
            synthetic_frames: frames of the synthetic set (split by city into train/val/test)
                when data is empty.
            synthetic_height: height the synthetic frames are rendered at (shard resizes them).
            synthetic_width: width the synthetic frames are rendered at.
            model: model name: unet_mini, unet, mobilenetv2_unet or deeplabv3plus.
            loss: loss name: ce, dice, ce_dice or focal.
            epochs: training epochs.
            batch_size: batch size per training replica.
            learning_rate: initial learning rate (cosine decay).
            class_weighting: loss weights per category from pixel counts: none, median or inverse_log
                (rare categories such as object and human weigh more).
            augment: comma-separated training augmentations (flip, scale_crop, color_jitter, noise,
                rotate); empty for none.
            height: training and evaluation height (a multiple of the model stride).
            width: training and evaluation width (a multiple of the model stride).
            shards: TFRecord shards per split.
            workers: training workers; more than one trains with MultiWorkerMirroredStrategy
                (a TFJob on the cluster).
            gpus_per_worker: GPUs per training worker on the cluster.
            min_dice: absolute gate: a model is blessed only with mean_dice at least this.
            min_improvement: change gate: required mean_dice gain over the current champion.
            registered_model: MLflow registered model name.
            mlflow_tracking_uri: MLflow tracking server; empty uses MLFLOW_TRACKING_URI or the local store.
            mlflow_experiment: MLflow experiment of the training run.
            serving_dir: folder or gs:// prefix that receives a blessed SavedModel; empty skips the copy.
            seed: seed of the synthetic data and of training.
        """
        shard_task = prepare_data(
            steps,
            configure,
            data=data,
            synthetic_frames=synthetic_frames,
            synthetic_size=(synthetic_height, synthetic_width),
            height=height,
            width=width,
            shards=shards,
            seed=seed,
        )

        train_task = steps.train(
            shards=shard_task.outputs["shards"],
            model_name=model,
            loss=loss,
            epochs=epochs,
            batch_size=batch_size,
            learning_rate=learning_rate,
            class_weighting=class_weighting,
            augment=augment,
            height=height,
            width=width,
            workers=workers,
            gpus_per_worker=gpus_per_worker,
            launcher="tfjob" if on_cluster else "local",
            image=images.image("train", registry, tag),
            checkpoint_root=cluster.checkpoint_mount if on_cluster else "",
            mlflow_tracking_uri=mlflow_tracking_uri,
            mlflow_experiment=mlflow_experiment,
            seed=seed,
            run_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER,
        )
        # Spot GPU nodes get preempted; a retry resumes from the checkpoints under the run's folder.
        train_task.set_caching_options(False).set_retry(
            num_retries=3, backoff_duration="60s", backoff_factor=2.0
        )
        configure(train_task, cpu="4", memory="16Gi", gpus=gpus_per_worker)
        if on_cluster:
            kubernetes.mount_pvc(
                train_task, pvc_name=cluster.checkpoint_claim, mount_path=cluster.checkpoint_mount
            )
            # The checkpoint volume is GCS FUSE; GKE injects its sidecar only into annotated pods.
            kubernetes.add_pod_annotation(train_task, "gke-gcsfuse/volumes", "true")

        evaluate_task = steps.evaluate(
            shards=shard_task.outputs["shards"],
            model=train_task.outputs["model"],
            split="val",
            mlflow_tracking_uri=mlflow_tracking_uri,
        ).set_caching_options(False)
        configure(evaluate_task, cpu="4", memory="8Gi", gpus=1)

        push_task = push_model(
            steps,
            configure,
            model=train_task.outputs["model"],
            evaluation=evaluate_task.outputs["evaluation"],
            shards=shard_task.outputs["shards"],
            registered_model=registered_model,
            min_dice=min_dice,
            min_improvement=min_improvement,
            serving_dir=serving_dir,
            mlflow_tracking_uri=mlflow_tracking_uri,
        )

        return TrainingOutputs(
            shards=shard_task.outputs["shards"],
            model=train_task.outputs["model"],
            evaluation=evaluate_task.outputs["evaluation"],
            metrics=evaluate_task.outputs["metrics"],
            report=evaluate_task.outputs["report"],
            blessed=push_task.outputs["blessed"],
            version=push_task.outputs["version"],
            aliases=push_task.outputs["aliases"],
            reason=push_task.outputs["reason"],
        )

    return training_pipeline


training_pipeline = create_pipeline()
