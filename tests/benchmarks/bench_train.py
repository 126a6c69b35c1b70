"""Training benchmarks: at the recipe's model, size and batch, the input pipeline against the train
step, XLA against none and bfloat16 against float32, and Keras on JAX against Keras on TensorFlow;
CPU images/s and parameters per model at 256x512, and logging the model to MLflow.

The GPU figures (mixed precision at 512x1024) come from `tests/benchmarks/gpu_train.py`, run on a
lent GPU machine; they are read from gpu_results.json beside this file and reported as they are.
"""

import importlib.metadata
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from cityseg.components.dataset import AugmentConfig, make_dataset
from cityseg.components.defaults import RECIPE
from cityseg.components.train.losses import build_loss
from cityseg.components.train.models import MODELS, build_model
from tests.benchmarks.common import Result, machine, timed
from tests.components.train.conftest import write_shards

COMMAND = "make bench (tests/benchmarks/bench_train.py)"
GPU_RESULTS = Path(__file__).with_name("gpu_results.json")


def _compiled(name: str, height: int, width: int, jit_compile: bool = False) -> keras.Model:
    keras.utils.set_random_seed(0)
    model = build_model(name, height, width)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=build_loss("ce"), jit_compile=jit_compile)
    return model


def _random_batch(batch: int, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.random((batch, height, width, 3), dtype=np.float32)
    return x, rng.integers(0, 8, (batch, height, width)).astype(np.int32)


def _fit_seconds(model: keras.Model, data) -> float:
    start = time.perf_counter()
    model.fit(data, epochs=1, verbose=0)
    return time.perf_counter() - start


def _read_seconds(dataset) -> float:
    start = time.perf_counter()
    for _ in dataset:
        pass
    return time.perf_counter() - start


def pipeline_overhead(work_dir: Path, examples: int = 48, rounds: int = 3) -> Result:
    """At the recipe's model, size and batch: fit() fed by make_dataset (with flip) against fit() on
    the same batches in memory, and the input pipeline alone."""
    name, height, width, batch = RECIPE.model, RECIPE.height, RECIPE.width, RECIPE.batch_size
    shards = write_shards(work_dir / "shards", {"train": examples}, height, width)
    dataset = make_dataset(shards, "train", batch, augment=AugmentConfig(flip=True), shuffle=True)
    in_memory = (
        tf.data.Dataset.from_tensor_slices(
            tuple(
                np.concatenate(parts)
                for parts in zip(*((x.numpy(), y.numpy()) for x, y in dataset), strict=True)
            )
        )
        .batch(batch)
        .cache()
    )
    model = _compiled(name, height, width)
    _fit_seconds(model, dataset)  # trace and warm up both inputs
    _fit_seconds(model, in_memory)
    # Alternate the three, best of each: other load on the machine hits them alike.
    timings = [
        (_read_seconds(dataset), _fit_seconds(model, dataset), _fit_seconds(model, in_memory))
        for _ in range(rounds)
    ]
    read, fed, step = (examples / min(t[i] for t in timings) for i in range(3))
    return Result(
        name=f"train images/s through make_dataset ({name}, {height}x{width}, batch {batch})",
        value=round(fed, 2),
        unit="images/s",
        baseline_name="model.fit on the same batches held in memory (the train step alone)",
        baseline_value=round(step, 2),
        goal="ratio >= 0.90 (input pipeline overhead under 10%)",
        command=COMMAND,
        machine=machine(),
        detail=f"overhead {1 - fed / step:.1%}; the input pipeline alone gives {read:.0f} images/s, "
        f"{read / step:.0f}x what the train step takes; {examples} examples, best of {rounds} alternated",
    )


def model_throughput(
    name: str, height: int = 256, width: int = 512, batch: int = 2, steps: int = 3
) -> Result:
    """Training images/s of one model on random batches, and its parameter count."""
    model = _compiled(name, height, width)
    x, y = _random_batch(batch, height, width)
    model.train_on_batch(x, y)
    start, cpu_start = time.perf_counter(), time.process_time()
    for _ in range(steps):
        model.train_on_batch(x, y)
    images_per_s = batch * steps / (time.perf_counter() - start)
    # CPU seconds do not grow when other processes share the cores, so they give the figure for an
    # otherwise idle machine too (an estimate: it assumes TensorFlow keeps every core busy).
    idle_estimate = batch * steps / (time.process_time() - cpu_start) * os.cpu_count()
    return Result(
        name=f"train images/s, {name} at {height}x{width} on CPU",
        value=round(images_per_s, 2),
        unit="images/s",
        command=COMMAND,
        machine=machine(),
        detail=f"{model.count_params():,} params; batch {batch}, {steps} steps after one warm-up step; "
        f"{idle_estimate:.2f} images/s from CPU time on an idle machine",
    )


def _images_per_s(model: keras.Model, x: np.ndarray, y: np.ndarray, steps: int) -> float:
    start = time.perf_counter()
    for _ in range(steps):
        model.train_on_batch(x, y)
    return len(x) * steps / (time.perf_counter() - start)


def compute_choices(steps: int = 5, rounds: int = 3) -> list[Result]:
    """At the recipe's model, size and batch: XLA against none, in float32 and in the policy that
    `set_precision` picks here, and that policy against float32, without XLA (what training runs)."""
    from cityseg.components.train.build import set_precision

    name, height, width, batch = RECIPE.model, RECIPE.height, RECIPE.width, RECIPE.batch_size
    x, y = _random_batch(batch, height, width)
    policies = tuple(dict.fromkeys(("float32", set_precision(None))))
    models = {}
    try:
        for policy in policies:
            keras.mixed_precision.set_dtype_policy(policy)  # layers keep the policy they are built under
            for jit in (False, True):
                models[policy, jit] = _compiled(name, height, width, jit_compile=jit)
                models[policy, jit].train_on_batch(x, y)  # compile
    finally:
        keras.mixed_precision.set_dtype_policy("float32")
    # Alternate the four, best of each: other load on the machine hits them alike.
    best = dict.fromkeys(models, 0.0)
    for _ in range(rounds):
        for key, model in models.items():
            best[key] = max(best[key], _images_per_s(model, x, y, steps))
    where = f"{name} at {height}x{width}, batch {batch}"
    common = {
        "unit": "images/s",
        "command": COMMAND,
        "machine": machine(),
        "detail": f"{steps} train_on_batch steps after a compiling one, best of {rounds} alternated",
    }
    results = [
        Result(
            name=f"train images/s, {where}, {policy}, XLA (jit_compile=True) on CPU",
            value=round(best[policy, True], 2),
            baseline_name=f"{policy} without XLA (what choose_jit_compile picks on a CPU)",
            baseline_value=round(best[policy, False], 2),
            goal="ratio < 1.0 on a CPU, where training runs without XLA",
            **common,
        )
        for policy in policies
    ]
    if len(policies) > 1:
        results.append(
            Result(
                name=f"train images/s, {where}, {policies[1]} (the default here) on CPU",
                value=round(best[policies[1], False], 2),
                baseline_name="float32 (--no-mixed-precision)",
                baseline_value=round(best["float32", False], 2),
                goal="ratio > 1.0 where the CPU computes bfloat16 natively",
                **common,
            )
        )
    return results


def keras_backends(steps: int = 5) -> Result:
    """Training images/s of the same model on Keras's JAX backend against its TensorFlow one, float32.

    Each backend runs `tests.benchmarks.backend_step` in its own process: Keras picks its backend
    once, at import.
    """
    name, height, width, batch = RECIPE.model, RECIPE.height, RECIPE.width, RECIPE.batch_size
    argv = [sys.executable, "-m", "tests.benchmarks.backend_step", name, str(height), str(width)]
    argv += [str(batch), "float32", str(steps)]
    measured = {}
    for backend in ("tensorflow", "jax"):
        env = {**os.environ, "KERAS_BACKEND": backend}
        completed = subprocess.run(argv, env=env, capture_output=True, text=True, check=False, timeout=1200)
        if completed.returncode:
            raise RuntimeError(f"backend_step under KERAS_BACKEND={backend}: {completed.stderr[-2000:]}")
        measured[backend] = json.loads(completed.stdout.splitlines()[-1])
    return Result(
        name=f"train images/s, {name} at {height}x{width}, batch {batch}, float32, Keras on JAX on CPU",
        value=round(measured["jax"]["images_per_s"], 2),
        unit="images/s",
        baseline_name="the same model and step on Keras's TensorFlow backend",
        baseline_value=round(measured["tensorflow"]["images_per_s"], 2),
        goal="ratio > 1.0 would make JAX the faster choice",
        command=COMMAND,
        machine=machine(),
        detail=f"jax {importlib.metadata.version('jax')}, XLA-compiled; Keras's sparse cross-entropy in "
        "both (cityseg's losses reduce across replicas with tf.distribute, on TensorFlow only); best of 2 "
        f"runs of {steps} steps after a compiling one, each backend in its own process",
    )


def model_logging(work_dir: Path, rounds: int = 2) -> Result:
    """Seconds to log a model to MLflow with its requirements stated (the train step) or inferred."""
    import mlflow

    from cityseg.components import tracking

    mlflow.set_tracking_uri(f"sqlite:///{work_dir / 'mlflow.db'}")
    # A sqlite store's default artifact root is ./mlruns in the working directory, the repository.
    tracking.set_experiment("bench-model-logging", work_dir)
    model = build_model("unet_mini", 64, 128)
    sample = np.zeros((1, 64, 128, 3), np.float32)
    signature = mlflow.models.infer_signature(sample, model.predict(sample, verbose=0))
    stated, inferred = [], []
    for _ in range(rounds):
        with mlflow.start_run():
            stated.append(timed(tracking.log_keras_model, model, sample)[0])
        with mlflow.start_run():
            inferred.append(timed(mlflow.keras.log_model, model, name="model", signature=signature)[0])
    return Result(
        name="seconds to log the trained model to MLflow (unet_mini), requirements stated",
        value=round(min(stated), 3),
        unit="s",
        baseline_name="mlflow.keras.log_model inferring the requirements (loads the model in a subprocess)",
        baseline_value=round(min(inferred), 3),
        goal="ratio < 0.2",
        command=COMMAND,
        machine=machine(),
        detail=f"local sqlite store, best of {rounds} alternated",
    )


def gpu_results() -> list[Result]:
    """The mixed-precision GPU figures recorded by gpu_train.py, with the device they ran on."""
    if not GPU_RESULTS.exists():
        return []
    report = json.loads(GPU_RESULTS.read_text())
    return [
        Result(
            name=f"train images/s, {r['model']} at {r['height']}x{r['width']}, {r['policy']}",
            value=r["images_per_s"],
            unit="images/s",
            command=report.get("command", ""),
            machine=f"{report['device']} ({report['date']}, Keras on {report['backend']})",
            detail=f"{r['params']:,} params; batch {r['batch_size']}; {r.get('note', report['note'])}",
        )
        for r in report["results"]
    ]


def run(work_dir: Path) -> list[Result]:
    """All training benchmarks; several minutes on a free 2-core machine, most of it compiling XLA."""
    work_dir.mkdir(parents=True, exist_ok=True)
    return [
        pipeline_overhead(work_dir),
        *(model_throughput(name) for name in MODELS),
        *compute_choices(),
        keras_backends(),
        model_logging(work_dir),
        *gpu_results(),
    ]


if __name__ == "__main__":
    for result in run(Path("work/bench/train")):
        print(result)
