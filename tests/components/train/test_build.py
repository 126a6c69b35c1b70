"""The callbacks that choose among epochs read the selection split's scores, never val's."""

import keras
import pytest

from cityseg.components.train.build import build_callbacks
from cityseg.components.train.config import TrainConfig
from cityseg.components.train.distribute import Task


def test_early_stopping_plateau_and_history_read_the_selection_split(tmp_path):
    config = TrainConfig(data="", out=str(tmp_path), early_stopping_patience=1, lr_schedule="plateau")
    # A worker that is not the chief: the recorder keeps its history in memory and logs nowhere.
    callbacks, recorder = build_callbacks(config, Task(index=1, num_workers=2), tmp_path, 1, False)
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
    stopping = next(c for c in callbacks if isinstance(c, keras.callbacks.EarlyStopping))
    callback_list = keras.callbacks.CallbackList(callbacks, model=model, epochs=4)
    callback_list.on_train_begin()
    # What `fit` logs for its validation data, which is the selection split.
    for epoch, dice in enumerate([0.5, 0.6, 0.55, 0.5]):
        callback_list.on_epoch_begin(epoch)
        callback_list.on_epoch_end(epoch, {"loss": 1.0, "val_loss": 1.0 - dice, "val_mean_dice": dice})
    assert (stopping.monitor, stopping.best, stopping.best_epoch) == ("select_mean_dice", 0.6, 1)
    assert model.stop_training
    # Two epochs without a better select_mean_dice halve the rate.
    assert recorder.history["lr"] == pytest.approx([0.01, 0.01, 0.01, 0.005])
    assert recorder.history["select_mean_dice"] == [0.5, 0.6, 0.55, 0.5]
    assert not [key for key in recorder.history if key.startswith("val_")]
