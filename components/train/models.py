"""Segmentation models chosen by name, from the course projects' U-Net mini up to DeepLabV3+.

Every model takes (H, W, 3) float32 images in [0, 1], scales them to [-1, 1] itself, and returns
(H, W, NUM_CLASSES) float32 logits at input resolution. Only built-in Keras layers are used, so
the models run on any Keras backend and load without custom objects.
"""

import dataclasses
from collections.abc import Callable

import keras
from keras import layers

from cityseg.components.labels import NUM_CLASSES
from cityseg.components.train.config import MODEL_STRIDES, check_size


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """A model family: its builder, its output stride and one line for the docs."""

    build: Callable[[keras.KerasTensor, str | None], keras.KerasTensor]
    stride: int
    description: str


def _normalised(inputs: keras.KerasTensor) -> keras.KerasTensor:
    # [0, 1] -> [-1, 1]: the range MobileNetV2 was trained on, and centred for the plain U-Nets.
    return layers.Rescaling(2.0, offset=-1.0, name="normalise")(inputs)


def _logits(x: keras.KerasTensor) -> keras.KerasTensor:
    x = layers.Conv2D(NUM_CLASSES, 1, name="classifier")(x)
    # Under mixed precision the softmax/loss must see float32 logits, or float16 overflows.
    return layers.Activation("linear", dtype="float32", name="logits")(x)


def _conv_block(x, filters: int, name: str, batch_norm: bool):
    for i in (1, 2):
        x = layers.Conv2D(filters, 3, padding="same", use_bias=not batch_norm, name=f"{name}_conv{i}")(x)
        if batch_norm:
            x = layers.BatchNormalization(name=f"{name}_bn{i}")(x)
        x = layers.ReLU(name=f"{name}_relu{i}")(x)
    return x


def _unet(inputs, filters: tuple[int, ...], bottleneck: int, batch_norm: bool):
    x = _normalised(inputs)
    skips = []
    for level, f in enumerate(filters):
        x = _conv_block(x, f, f"down{level}", batch_norm)
        skips.append(x)
        x = layers.MaxPooling2D(name=f"pool{level}")(x)
    x = _conv_block(x, bottleneck, "bottleneck", batch_norm)
    for level, f in reversed(list(enumerate(filters))):
        x = layers.Conv2DTranspose(f, 2, strides=2, name=f"up{level}_transpose")(x)
        x = layers.Concatenate(name=f"up{level}_concat")([x, skips[level]])
        x = _conv_block(x, f, f"up{level}", batch_norm)
    return _logits(x)


def _unet_mini(inputs, weights):
    return _unet(inputs, (16, 32, 64), 128, batch_norm=False)


def _unet_full(inputs, weights):
    # One level deeper than unet_mini and batch-normalised; 16 base filters keep a CPU epoch short,
    # and on the synthetic data it beat a 32-filter version per CPU-second.
    return _unet(inputs, (16, 32, 64, 128), 256, batch_norm=True)


# keras.applications builds MobileNetV2's batch norm with momentum 0.999, made for ImageNet's long
# schedules. A run of a few hundred steps then ends with moving statistics far behind the weights,
# and the model scores in inference mode as if untrained (val Dice 0.07 while the training batches
# score 0.67). 0.9 (PyTorch's default) follows within an epoch of the quick preset's 50 steps.
BACKBONE_BN_MOMENTUM = 0.9


def _mobilenetv2(inputs, weights):
    backbone = keras.applications.MobileNetV2(
        input_tensor=_normalised(inputs), include_top=False, weights=weights, alpha=1.0
    )
    for layer in backbone.layers:
        if isinstance(layer, layers.BatchNormalization):
            layer.momentum = BACKBONE_BN_MOMENTUM
    return backbone


def _conv_bn_relu(x, filters: int, name: str, kernel: int = 3, dilation: int = 1):
    x = layers.Conv2D(
        filters, kernel, padding="same", dilation_rate=dilation, use_bias=False, name=f"{name}_conv"
    )(x)
    x = layers.BatchNormalization(momentum=BACKBONE_BN_MOMENTUM, name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x)


def _mobilenetv2_unet(inputs, weights):
    backbone = _mobilenetv2(inputs, weights)
    # Encoder features at strides 2, 4, 8, 16 (skips) and 32 (bottom), as in the TF segmentation tutorial.
    skip_names = ["block_1_expand_relu", "block_3_expand_relu", "block_6_expand_relu", "block_13_expand_relu"]
    skips = [backbone.get_layer(name).output for name in skip_names]
    x = backbone.get_layer("block_16_project").output
    for level, (skip, filters) in reversed(list(enumerate(zip(skips, (48, 64, 96, 128), strict=True)))):
        x = layers.UpSampling2D(2, interpolation="bilinear", name=f"up{level}_resize")(x)
        x = layers.Concatenate(name=f"up{level}_concat")([x, skip])
        x = _conv_bn_relu(x, filters, f"up{level}")
    x = layers.UpSampling2D(2, interpolation="bilinear", name="up_full_resize")(x)
    x = _conv_bn_relu(x, 32, "head")
    return _logits(x)


def _deeplabv3plus(inputs, weights):
    backbone = _mobilenetv2(inputs, weights)
    # Output stride 16 for the ASPP input and stride 4 for the low-level decoder features (DeepLabV3+ paper).
    high = backbone.get_layer("block_13_expand_relu").output
    low = backbone.get_layer("block_3_expand_relu").output
    height, width = high.shape[1], high.shape[2]
    pooled = layers.GlobalAveragePooling2D(keepdims=True, name="aspp_pool")(high)
    # No batch norm on the image-pooling branch: over a small batch's 1x1 maps its statistics are a
    # few values per channel, and inference (moving statistics) then disagrees with training.
    pooled = layers.Conv2D(128, 1, activation="relu", name="aspp_pool_proj_conv")(pooled)
    pooled = layers.UpSampling2D((height, width), name="aspp_pool_resize")(pooled)
    branches = [pooled, _conv_bn_relu(high, 128, "aspp_1x1", kernel=1)]
    # Rates 6/12/18 are the paper's for output stride 16.
    branches += [_conv_bn_relu(high, 128, f"aspp_rate{r}", dilation=r) for r in (6, 12, 18)]
    x = layers.Concatenate(name="aspp_concat")(branches)
    x = _conv_bn_relu(x, 128, "aspp_proj", kernel=1)
    x = layers.UpSampling2D(4, interpolation="bilinear", name="decoder_resize")(x)
    low = _conv_bn_relu(low, 48, "decoder_low", kernel=1)
    x = layers.Concatenate(name="decoder_concat")([x, low])
    x = _conv_bn_relu(x, 128, "decoder1")
    x = _conv_bn_relu(x, 128, "decoder2")
    x = layers.UpSampling2D(4, interpolation="bilinear", name="output_resize")(x)
    return _logits(x)


MODELS: dict[str, ModelSpec] = {
    "unet_mini": ModelSpec(
        _unet_mini,
        MODEL_STRIDES["unet_mini"],
        "the course projects' small U-Net: 3 levels of 16-64 filters, no BN",
    ),
    "unet": ModelSpec(
        _unet_full, MODEL_STRIDES["unet"], "deeper U-Net: 4 levels of 16-128 filters with batch norm"
    ),
    "mobilenetv2_unet": ModelSpec(
        _mobilenetv2_unet,
        MODEL_STRIDES["mobilenetv2_unet"],
        "keras.applications MobileNetV2 encoder with a U-Net decoder",
    ),
    "deeplabv3plus": ModelSpec(
        _deeplabv3plus,
        MODEL_STRIDES["deeplabv3plus"],
        "MobileNetV2 backbone (output stride 16), ASPP head and DeepLabV3+ decoder",
    ),
}


def model_stride(name: str) -> int:
    """How many times the model downsamples: input height and width must be multiples of it."""
    return _spec(name).stride


def _spec(name: str) -> ModelSpec:
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}")
    return MODELS[name]


def build_model(name: str, height: int, width: int, weights: str | None = None) -> keras.Model:
    """Build model `name` for (height, width, 3) inputs in [0, 1], returning float32 logits.

    Args:
        weights: None (random initialisation) or "imagenet" for the MobileNetV2 encoder, which
            Keras downloads on first use.

    Raises:
        ValueError: unknown name, a size that is not a multiple of the stride, or weights for a
            model without a pretrained encoder.
    """
    spec = _spec(name)
    check_size(name, height, width)
    if weights not in (None, "imagenet"):
        raise ValueError(f"weights must be None or 'imagenet', got {weights!r}")
    if weights and name in ("unet_mini", "unet"):
        raise ValueError(f"model {name!r} has no pretrained encoder; use weights=None")
    inputs = keras.Input((height, width, 3), name="image")
    return keras.Model(inputs, spec.build(inputs, weights), name=name)
