"""KFP interface of the comparison sweep's own steps: open the MLflow parent run; report and pick the best."""

from typing import NamedTuple

from kfp.dsl import HTML, Dataset, Input, Model, Output

from cityseg.components import container_images


@container_images.component
def start_sweep(
    models: list,
    losses: list,
    augment: list,
    seeds: list,
    crossed: bool,
    epochs: int,
    early_stopping_patience: int,
    batch_size: int,
    height: int,
    width: int,
    mlflow_tracking_uri: str,
    mlflow_experiment: str,
    run_id: str,
) -> list:
    """Open the sweep's MLflow parent run and list its configurations, once per seed.

    Args:
        models: model names, e.g. ["unet_mini", "unet"].
        losses: loss names, e.g. ["ce", "ce_dice"].
        augment: augmentation settings: none, all, a technique, or several joined by +.
        seeds: every configuration trains once per seed.
        crossed: every model x loss x augment setting instead of one factor at a time.
        epochs: the budget's most epochs of every configuration.
        early_stopping_patience: the budget's early stopping on select_mean_dice; 0 trains every epoch.
        batch_size: batch size of every configuration (logged on the parent run).
        height: training height (logged on the parent run).
        width: training width (logged on the parent run).
        mlflow_tracking_uri: MLflow server; empty means MLFLOW_TRACKING_URI or the local store.
        mlflow_experiment: MLflow experiment of the parent run and its child runs.
        run_id: the KFP run id, tagged on the parent run.
    Returns:
        One dict per configuration and seed: name, model, loss, augment, augmentations, seed, studies
        and parent_run_id.
    """
    from cityseg.components.sweep.core import start_sweep as start
    from cityseg.components.sweep.presets import sweep_config

    sweep = sweep_config(models, losses, augment, seeds, crossed, epochs, early_stopping_patience)
    params = {"epochs": epochs, "batch_size": batch_size, "height": height, "width": width}
    return start(
        sweep,
        experiment=mlflow_experiment,
        params=params,
        tracking_uri=mlflow_tracking_uri or None,
        kfp_run_id=run_id or None,
    )


@container_images.component
def finish_sweep(
    sweep: list,
    models: Input[list[Model]],
    evaluations: Input[list[Dataset]],
    report: Output[HTML],
    best_model: Output[Model],
    best_evaluation: Output[Dataset],
    mlflow_tracking_uri: str,
) -> NamedTuple(
    "SweepOutputs",
    [("parent_run_id", str), ("best_run_id", str), ("best_config", str), ("best_mean_dice", float)],
):
    """Write the comparison report, log it to the parent run, and hand the best configuration on.

    Args:
        sweep: the configurations from start-sweep (they name the parent run).
        models: every configuration's model folder.
        evaluations: every configuration's evaluation folder.
        report: the technical note: models, setup, results with intervals, robustness, conclusion.
        best_model: the model folder of the best seed of the configuration with the highest mean_dice.
        best_evaluation: its evaluation folder, for the push gate.
        mlflow_tracking_uri: MLflow server; empty means MLFLOW_TRACKING_URI or the local store.
    Returns:
        The parent run id, the best child run id, its configuration and its mean_dice.
    """
    from cityseg.components.sweep.core import sweep_parent
    from cityseg.components.sweep.report import finish_sweep as finish

    best = finish(
        sweep,
        [model.path for model in models],
        [evaluation.path for evaluation in evaluations],
        report_path=report.path,
        best_model_dir=best_model.path,
        best_evaluation_dir=best_evaluation.path,
        tracking_uri=mlflow_tracking_uri or None,
    )
    return sweep_parent(sweep), best.run_id, best.label, best.mean_dice
