"""A small ResNet for object crops, trained from scratch: uint8 crops in, one logit per class out."""

import keras
from keras import layers


def _block(x, filters: int, stride: int):
    """A basic residual block (two 3x3 convolutions), with a 1x1 projection when the shape changes."""
    shortcut = x
    if stride != 1 or x.shape[-1] != filters:
        shortcut = layers.Conv2D(filters, 1, strides=stride, use_bias=False)(x)
        shortcut = layers.BatchNormalization()(shortcut)
    x = layers.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False)(x)
    x = layers.BatchNormalization()(x)
    x = layers.ReLU()(x)
    x = layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
    x = layers.BatchNormalization()(x)
    return layers.ReLU()(layers.Add()([x, shortcut]))


def build_classifier(size: int, num_classes: int, width: int = 32) -> keras.Model:
    """ResNet-style classifier of size x size crops: a strided stem, three stages, pooled logits.

    The stem halves the crop at once and the stages run at 1/2, 1/4 and 1/8 of it, with one block
    each and a second in the last: about 0.1 GFLOP per 48x48 crop, so a CPU trains it in minutes.
    The model takes uint8-range pixels (RGB) and scales them itself, so serving sends crops as they are.
    """
    inputs = keras.Input((size, size, 3), name="crop")
    x = layers.Rescaling(1.0 / 127.5, offset=-1.0)(inputs)
    x = layers.Conv2D(width, 3, strides=2, padding="same", use_bias=False)(x)
    x = layers.BatchNormalization()(x)
    x = layers.ReLU()(x)
    for stage, filters in enumerate((width, 2 * width, 4 * width)):
        x = _block(x, filters, 1 if stage == 0 else 2)
    x = _block(x, 4 * width, 1)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dropout(0.2)(x)
    outputs = layers.Dense(num_classes, name="logits", dtype="float32")(x)
    return keras.Model(inputs, outputs, name="objects_resnet")
