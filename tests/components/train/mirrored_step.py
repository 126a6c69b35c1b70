"""One training step under MirroredStrategy over two logical CPUs against one replica, as JSON.

Run as `python -m tests.components.train.mirrored_step MODEL:LOSS:OPTIMIZER[:local_bn] ...` (adam or
sgd; `local_bn` turns batch norm's synchronisation off again, so each replica normalises its own half
of the batch, to show what the synchronisation changes): logical devices must be configured before
TensorFlow starts, so this runs in its own process.
"""

import json
import sys

import numpy as np
import tensorflow as tf

BATCH, HEIGHT, WIDTH = 4, 32, 64
CATEGORY_PIXELS = [900, 4000, 3000, 150, 1200, 2500, 100, 800]


def _batch() -> tuple[np.ndarray, np.ndarray]:
    from tests.components.train.conftest import scene

    rng = np.random.default_rng(0)
    images, masks = zip(*(scene(rng, HEIGHT, WIDTH) for _ in range(BATCH)), strict=True)
    return np.stack(images).astype(np.float32) / 255, np.stack(masks).astype(np.int32)


def _step(
    strategy, model_name: str, loss: str, optimizer: str, batch_norm: str = "synchronized"
) -> tuple[float, float, list[np.ndarray]]:
    """(training loss, validation loss, weights after the step) of one step on the global batch."""
    import keras

    from cityseg.components.train.build import build_model
    from cityseg.components.train.config import TrainConfig

    keras.utils.set_random_seed(0)
    config = TrainConfig(data="", out="", model=model_name, loss=loss, lr_schedule="constant")
    model = build_model(config, strategy, (HEIGHT, WIDTH), 1, CATEGORY_PIXELS)
    if batch_norm == "local_bn":
        for layer in model.layers:
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.synchronized = False
    if optimizer == "sgd":
        # Adam hides a gradient N times too large; plain SGD steps in proportion to it.
        with strategy.scope():
            model.compile(optimizer=keras.optimizers.SGD(0.1), loss=model.loss)
    dataset = tf.data.Dataset.from_tensor_slices(_batch()).batch(BATCH)
    train_loss = model.fit(dataset, epochs=1, verbose=0).history["loss"][0]
    val_loss = model.evaluate(dataset, verbose=0, return_dict=True)["loss"]
    return train_loss, val_loss, model.get_weights()


def main() -> None:
    """Print, per MODEL:LOSS:OPTIMIZER argument, both runs' losses and the largest weight difference."""
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    results, ones = [], {}
    for argument in sys.argv[1:]:
        model, loss, optimizer, *batch_norm = argument.split(":")
        # One replica has no batch norm to synchronise: its step is the same for either setting.
        if (model, loss, optimizer) not in ones:
            ones[model, loss, optimizer] = _step(tf.distribute.get_strategy(), model, loss, optimizer)
        one = ones[model, loss, optimizer]
        two = _step(mirrored, model, loss, optimizer, *batch_norm)
        diff = max(float(np.max(np.abs(a - b))) for a, b in zip(one[2], two[2], strict=True))
        results.append(
            {
                "case": argument,
                "replicas": mirrored.num_replicas_in_sync,
                "one": one[:2],
                "mirrored": two[:2],
                "max_weight_diff": diff,
            }
        )
    print(json.dumps(results))


if __name__ == "__main__":
    main()
