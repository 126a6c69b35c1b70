"""Models by name: shapes, dtypes, parameter counts and the stride check."""

import keras
import numpy as np
import pytest

from cityseg.components.train.models import MODELS, build_model, model_stride

# Regression values: a change here changes every trained model's size, so it must be deliberate.
PARAMS = {"unet_mini": 482_152, "unet": 1_945_640, "mobilenetv2_unet": 3_373_576, "deeplabv3plus": 3_198_344}


@pytest.mark.parametrize("name", list(MODELS))
def test_model_outputs_float32_logits_at_input_size(name):
    stride = model_stride(name)
    height, width = 2 * stride, 4 * stride
    model = build_model(name, height, width)
    logits = model(np.random.default_rng(0).random((2, height, width, 3), dtype=np.float32))
    assert tuple(logits.shape) == (2, height, width, 8)
    assert logits.dtype == "float32"
    assert model.count_params() == PARAMS[name]


def test_mixed_precision_keeps_float32_logits():
    keras.mixed_precision.set_dtype_policy("mixed_float16")
    try:
        model = build_model("unet_mini", 32, 64)
    finally:
        keras.mixed_precision.set_dtype_policy("float32")
    assert model.get_layer("classifier").compute_dtype == "float16"
    assert model(np.zeros((1, 32, 64, 3), np.float32)).dtype == "float32"


def test_size_not_divisible_by_stride_names_size_and_stride():
    with pytest.raises(ValueError, match=r"size 100x128 .*'unet'.* stride 16"):
        build_model("unet", 100, 128)


def test_unknown_model_lists_the_known_ones():
    with pytest.raises(ValueError, match="unknown model 'segformer'; choose one of unet_mini, unet"):
        build_model("segformer", 64, 64)


def test_plain_unet_refuses_pretrained_weights():
    with pytest.raises(ValueError, match="no pretrained encoder"):
        build_model("unet_mini", 32, 32, weights="imagenet")


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_batch_norm_follows_the_data_within_a_short_run(name):
    # keras.applications' MobileNetV2 comes with momentum 0.999: after a quick preset's few hundred
    # steps its moving statistics were still mostly initial, and the models scored val Dice 0.07.
    momenta = {
        layer.name: layer.momentum
        for layer in build_model(name, 64, 64).layers
        if isinstance(layer, keras.layers.BatchNormalization)
    }
    assert all(momentum <= 0.99 for momentum in momenta.values()), momenta


def test_precision_is_float32_when_off_and_low_precision_where_native():
    from cityseg.components.train.build import _cpu_has_bfloat16, set_precision

    try:
        assert set_precision(False) == "float32"
        assert keras.mixed_precision.dtype_policy().name == "float32"
        assert set_precision(True) == "mixed_bfloat16"  # no GPU here: bfloat16 on the CPU
        assert set_precision(None) == ("mixed_bfloat16" if _cpu_has_bfloat16() else "float32")
        model = build_model("unet_mini", 32, 64)
        assert model.get_layer("logits").compute_dtype == "float32"
    finally:
        keras.mixed_precision.set_dtype_policy("float32")


def test_xla_is_chosen_on_a_gpu_only():
    import tensorflow as tf

    from cityseg.components.train.build import build_model as build_compiled
    from cityseg.components.train.build import choose_jit_compile
    from cityseg.components.train.config import TrainConfig

    assert not tf.config.list_physical_devices("GPU")  # this suite runs on CPUs
    strategy = tf.distribute.get_strategy()
    assert choose_jit_compile(strategy) is False
    config = TrainConfig(data="", out="", model="unet_mini")
    assert build_compiled(config, strategy, (32, 64), 1, [1] * 8).jit_compile is False
