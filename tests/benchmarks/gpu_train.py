"""Mixed-precision training images/s per model at 512x1024 on a GPU, written to gpu_results.json.

Run on a GPU machine: `python -m tests.benchmarks.gpu_train --out tests/benchmarks/gpu_results.json`.
It trains on random device-resident batches, so it measures the model's step and nothing of the
input pipeline. The models are backend-neutral Keras, so the run takes whichever backend
KERAS_BACKEND names (the GPU images of this project carry TensorFlow; the lent test machine
had only JAX).
"""

import argparse
import datetime
import json
import subprocess
import time
from pathlib import Path

import keras
import numpy as np

from cityseg.components.train.losses import build_loss
from cityseg.components.train.models import MODELS, build_model


def gpu_name() -> str:
    """The GPU as nvidia-smi names it, with its memory."""
    result = subprocess.run(
        ["nvidia-smi", "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"],
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.strip()


def images_per_s(name: str, height: int, width: int, *, batch: int, steps: int, policy: str) -> dict:
    """Train steps of `name` on one random batch held on the device; returns timing and params."""
    keras.mixed_precision.set_dtype_policy(policy)
    keras.utils.set_random_seed(0)
    model = build_model(name, height, width)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=build_loss("ce_dice"))
    rng = np.random.default_rng(0)
    x = rng.random((batch, height, width, 3), dtype=np.float32)
    y = rng.integers(0, 8, (batch, height, width)).astype(np.int32)
    start = time.perf_counter()
    for _ in range(3):  # compile and warm up
        model.train_on_batch(x, y)
    warmup_s = time.perf_counter() - start
    timings = []
    for _ in range(steps):
        start = time.perf_counter()
        model.train_on_batch(x, y)  # returns host floats, so each step is synchronised
        timings.append(time.perf_counter() - start)
    median = float(np.median(timings))
    return {
        "model": name,
        "params": int(model.count_params()),
        "policy": policy,
        "batch_size": batch,
        "height": height,
        "width": width,
        "median_step_s": round(median, 5),
        "images_per_s": round(batch / median, 1),
        "warmup_s": round(warmup_s, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--height", type=int, default=512)
    parser.add_argument("--width", type=int, default=1024)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--policies", default="mixed_float16")
    parser.add_argument("--models", default=",".join(MODELS))
    args = parser.parse_args()
    # Results already in --out are kept (one compile per model can take a minute or more, so a
    # run may be split over several calls); a re-measured model replaces its old entry.
    report = json.loads(args.out.read_text()) if args.out.exists() else {"results": []}
    report.update(
        device=gpu_name(),
        date=datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d"),
        keras=keras.__version__,
        backend=keras.backend.backend(),
        command="python -m tests.benchmarks.gpu_train --out tests/benchmarks/gpu_results.json",
    )
    for policy in args.policies.split(","):
        for name in args.models.split(","):
            result = images_per_s(
                name, args.height, args.width, batch=args.batch_size, steps=args.steps, policy=policy
            )
            print(json.dumps(result), flush=True)
            report["results"] = [
                r for r in report["results"] if (r["model"], r["policy"]) != (name, policy)
            ] + [result]
            args.out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
