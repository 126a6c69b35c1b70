"""Training images/s of one cityseg model under the Keras backend that KERAS_BACKEND names, as JSON.

Run as `KERAS_BACKEND=jax python -m tests.benchmarks.backend_step MODEL HEIGHT WIDTH BATCH POLICY STEPS`:
Keras reads the backend once, when it is first imported, so each backend runs in its own process.
The model is cityseg's own (`models.build_model`); the loss is Keras's sparse cross-entropy, since
cityseg's losses reduce across replicas with tf.distribute and so run on TensorFlow only.
"""

import json
import sys
import time

import keras
import numpy as np

from cityseg.components.train.models import build_model


def images_per_s(name: str, height: int, width: int, batch: int, policy: str, steps: int) -> dict:
    """Best of two timed runs of `steps` train_on_batch calls after a compiling warm-up step."""
    keras.mixed_precision.set_dtype_policy(policy)
    keras.utils.set_random_seed(0)
    model = build_model(name, height, width)
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    rng = np.random.default_rng(0)
    x = rng.random((batch, height, width, 3), dtype=np.float32)
    y = rng.integers(0, 8, (batch, height, width)).astype(np.int32)
    started = time.perf_counter()
    model.train_on_batch(x, y)
    warm_up = time.perf_counter() - started
    best = float("inf")
    for _ in range(2):
        started = time.perf_counter()
        for _ in range(steps):
            model.train_on_batch(x, y)
        best = min(best, time.perf_counter() - started)
    return {
        "backend": keras.backend.backend(),
        "images_per_s": batch * steps / best,
        "warm_up_s": warm_up,
        "params": model.count_params(),
    }


if __name__ == "__main__":
    name, height, width, batch, policy, steps = sys.argv[1:7]
    print(json.dumps(images_per_s(name, int(height), int(width), int(batch), policy, int(steps))))
