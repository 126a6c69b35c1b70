"""The object pipeline: (synth objects | check source) -> crops -> train -> evaluate -> push.

Training launches as the training pipeline's does (`steps.launched_training`): on GKE as a TFJob
of `workers` GPU workers on the checkpoint volume, whose waiting task asks for no GPU; locally in
the task, or as `workers` local processes.

`create_pipeline(...)` is a pure factory like the training pipeline's: where it runs is an explicit
`Target`, the parameters and their defaults come from the steps' config dataclasses, and `wire` only
connects steps of `cityseg.pipelines.steps`. `run_local` runs it in kfp.local for `cityseg run
--pipeline objects`.
"""

from pathlib import Path
from typing import NamedTuple

from kfp import dsl
from kfp.dsl import Dataset

from cityseg.components import tracking
from cityseg.components.crops.config import CropsConfig
from cityseg.components.defaults import defaults
from cityseg.components.objects.config import ObjectsEvaluateConfig, ObjectsPushConfig, ObjectsTrainConfig
from cityseg.components.synth.config import SynthConfig
from cityseg.components.train.launch import Launch
from cityseg.pipelines.local import LocalRun, run_in_kfp_local
from cityseg.pipelines.params import Param, build_pipeline
from cityseg.pipelines.steps import DATA_WORKERS, GKE, LOCAL, Target, launched_training

PIPELINE_NAME = "cityseg-objects"
DESCRIPTION = "Crop Cityscapes object instances, train, evaluate and push an object-type classifier."


class ObjectsOutputs(NamedTuple):
    crops: Dataset
    macro_f1: float
    blessed: bool
    version: str
    aliases: str
    reason: str


def objects_params() -> tuple[Param, ...]:
    """The object pipeline's parameters, defaults read from the steps' dataclasses."""
    synth, crops = defaults(SynthConfig), defaults(CropsConfig)
    train, push, launch = defaults(ObjectsTrainConfig), defaults(ObjectsPushConfig), defaults(Launch)
    return (
        Param(
            "data",
            str,
            "",
            "Cityscapes folder, zips folder or gs:// prefix (with instanceIds); empty: synthetic.",
        ),
        Param(
            "synthetic_frames",
            int,
            synth.cities * synth.frames_per_city,
            "frames of the synthetic object set.",
        ),
        Param("synthetic_height", int, synth.height, "height the synthetic frames are rendered at."),
        Param("synthetic_width", int, synth.width, "width the synthetic frames are rendered at."),
        Param("crop_size", int, crops.size, "side of the square crops, pixels."),
        Param("crop_margin", float, crops.margin, "context around each box, as a share of its longer side."),
        Param(
            "min_box",
            int,
            crops.min_box,
            "drop instances whose visible box is smaller (longer side, pixels).",
        ),
        Param("min_pixels", int, crops.min_pixels, "drop instances with fewer visible pixels."),
        Param(
            "min_visible", float, crops.min_visible, "drop instances with a smaller visible share (occluded)."
        ),
        Param("shards", int, crops.shards, "TFRecord shards per split."),
        Param("epochs", int, train.epochs, "training epochs."),
        Param("batch_size", int, train.batch_size, "global batch size."),
        Param("learning_rate", float, train.learning_rate, "initial learning rate (cosine decay)."),
        Param("model_width", int, train.width, "channels of the classifier's first stage."),
        Param("augment", str, ",".join(train.augment), "comma-separated: flip, shift, color, scale."),
        Param("class_weighting", str, train.class_weighting, "none or balanced."),
        Param("seed", int, train.seed, "seed of the synthetic data and of training."),
        Param(
            "workers",
            int,
            launch.workers,
            "training workers; on the cluster the training is a TFJob of that many GPU workers.",
        ),
        Param("gpus_per_worker", int, launch.gpus_per_worker, "GPUs per training worker on the cluster."),
        Param("registered_model", str, push.name, "MLflow registered model name."),
        Param("min_macro_f1", float, push.min_macro_f1, "absolute gate on val macro-F1."),
        Param("min_improvement", float, push.min_improvement, "required macro-F1 gain over the champion."),
        Param(
            "mlflow_tracking_uri",
            str,
            "",
            "MLflow tracking server; empty: MLFLOW_TRACKING_URI or the local store.",
        ),
        Param("mlflow_experiment", str, train.experiment, "MLflow experiment of the training runs."),
    )


def _source(steps, configure, p):
    """(data, fingerprint) of the synthetic object set, or of the given source."""
    with dsl.If(p.data == "", name="no-data-given"):
        synth_task = steps.synth_objects(
            cities=defaults(SynthConfig).cities,
            frames=p.synthetic_frames,
            height=p.synthetic_height,
            width=p.synthetic_width,
            seed=p.seed,
            workers=DATA_WORKERS,
        )
        configure(synth_task, "synth_objects", cache=True)
    with dsl.Else(name="data-given"):
        source_task = configure(steps.check_source(data=p.data), "check_source", cache=False)
    return (
        dsl.OneOf(synth_task.outputs["data"], source_task.outputs["data"]),
        dsl.OneOf(synth_task.outputs["fingerprint"], source_task.outputs["fingerprint"]),
    )


def _train(steps, configure, p, crops):
    """The train task: the run's only training, so on the cluster a TFJob on the checkpoint volume."""
    return launched_training(
        steps,
        configure,
        "train_objects",
        on_volume=configure.on_cluster,
        gpus=p.gpus_per_worker,
        crops=crops,
        epochs=p.epochs,
        batch_size=p.batch_size,
        learning_rate=p.learning_rate,
        width=p.model_width,
        augment=p.augment,
        class_weighting=p.class_weighting,
        seed=p.seed,
        workers=p.workers,
        gpus_per_worker=p.gpus_per_worker,
        mlflow_tracking_uri=p.mlflow_tracking_uri,
        mlflow_experiment=p.mlflow_experiment,
    )


def create_pipeline(target: Target = GKE, name: str = PIPELINE_NAME):
    """The object pipeline for `target`: crops are cached on the source's fingerprint, as shards are."""
    steps, configure = target.wiring()

    def wire(p) -> ObjectsOutputs:
        source, fingerprint = _source(steps, configure, p)
        crops_task = steps.crops(
            cityscapes=source,
            fingerprint=fingerprint,
            size=p.crop_size,
            margin=p.crop_margin,
            min_box=p.min_box,
            min_pixels=p.min_pixels,
            min_visible=p.min_visible,
            num_shards=p.shards,
            workers=DATA_WORKERS,
        )
        crops = configure(crops_task, "crops", cache=True).outputs["shards"]
        tracking_uri = p.mlflow_tracking_uri
        train_task = _train(steps, configure, p, crops)
        model = train_task.outputs["model"]
        evaluate_task = steps.evaluate_objects(
            crops=crops,
            model=model,
            split=defaults(ObjectsEvaluateConfig).split,
            mlflow_tracking_uri=tracking_uri,
        )
        configure(evaluate_task, "evaluate_objects", cache=False)
        push_task = steps.push_objects(
            model=model,
            evaluation=evaluate_task.outputs["evaluation"],
            crops=crops,
            registered_model=p.registered_model,
            min_macro_f1=p.min_macro_f1,
            min_improvement=p.min_improvement,
            mlflow_tracking_uri=tracking_uri,
            run_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER,
            pipeline_name=name,
            pipeline_version=steps.tag,
        )
        configure(push_task, "push_objects", cache=False)
        return ObjectsOutputs(
            crops=crops,
            macro_f1=evaluate_task.outputs["Output"],
            **{key: push_task.outputs[key] for key in ("blessed", "version", "aliases", "reason")},
        )

    return build_pipeline(name, DESCRIPTION, objects_params(), wire, ObjectsOutputs)


def pipeline_inputs() -> dict:
    """The object pipeline's parameters: name -> KFP InputSpec (type, default, description)."""
    return dict(create_pipeline(LOCAL).component_spec.inputs)


def validate_params(params: dict) -> None:
    """Check the parameters through the steps' own configs before any step runs.

    Raises:
        ValueError: naming the parameter's config field and what is wrong with it.
    """
    augment = tuple(name.strip() for name in params["augment"].split(",") if name.strip())
    for name, minimum in (("workers", 1), ("gpus_per_worker", 0)):
        if params[name] < minimum:
            raise ValueError(f"{name} must be at least {minimum}, got {params[name]}")
    CropsConfig(
        "data",
        "out",
        size=params["crop_size"],
        margin=params["crop_margin"],
        min_box=params["min_box"],
        min_pixels=params["min_pixels"],
        min_visible=params["min_visible"],
        shards=params["shards"],
    )
    ObjectsTrainConfig(
        "data",
        "out",
        epochs=params["epochs"],
        batch_size=params["batch_size"],
        learning_rate=params["learning_rate"],
        width=params["model_width"],
        augment=augment,
        class_weighting=params["class_weighting"],
    )
    ObjectsPushConfig(
        "model",
        "metrics",
        "data",
        min_macro_f1=params["min_macro_f1"],
        min_improvement=params["min_improvement"],
    )


def run_local(
    params: dict,
    work_dir: Path = tracking.DEFAULT_WORK_DIR,
    verbose: bool = False,
    runner: str = "subprocess",
) -> LocalRun:
    """Validate `params` and run the object pipeline in kfp.local under `work_dir`."""
    return run_in_kfp_local(
        lambda: create_pipeline(LOCAL), params, work_dir, validate_params, verbose, runner
    )


def format_run(run: LocalRun) -> str:
    """What a local run of the object pipeline did, in a few lines."""
    outputs = run.outputs
    verdict = "blessed" if outputs["blessed"] else "not blessed"
    return "\n".join(
        [
            f"cityseg-objects: val macro-F1 {outputs['macro_f1']:.3f}; {run.params['registered_model']} "
            f"v{outputs['version']} {verdict} ({outputs['reason']})",
            f"aliases: {outputs['aliases'] or 'none'}",
            f"run folder: {run.run_dir}  (logs: {run.log_dir})",
            f"MLflow: {run.tracking_uri}",
            f"wall time: {run.wall_time_s:.0f} s",
        ]
    )
