"""Architectures users deploy, re-created as Keras models from their public code, with a
width knob so that tests can build them small: larq-zoo 2.4.0's Bi-Real Net,
BinaryResNetE18, BinaryAlexNet and BinaryDenseNet28, Larq Compute Engine's end-to-end toy
models, and hls4ml's binary CNN test model (REFERENCES.md, "Real architectures").

The layer structure (quantizers, paddings, strides, shortcuts, BatchNorm placement) is the
one of the public code; only the widths (``filters``) and the input size are parameters.
Weights are random: pretrained weights are downloaded at run time there, which bnn2fpga
never does.  ``randomize_batchnorm`` gives every BatchNorm statistics that make its
thresholds non-trivial (negative gammas included), as trained networks have.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np


def _tf() -> Any:
    import tensorflow as tf

    return tf


def randomize_batchnorm(model: Any, seed: int = 0, negative_fraction: float = 0.2) -> Any:
    """Give every BatchNormalization layer random statistics: gamma with a fraction of
    negative entries, beta, moving mean and moving variance (else every threshold is 0 and
    sign or flip bugs stay hidden)."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if "BatchNormalization" not in type(layer).__name__:
            continue
        new = []
        for w in layer.weights:
            name = w.name.split("/")[-1].split(":")[0]
            shape = tuple(w.shape)
            if name == "gamma":
                g = rng.uniform(0.5, 1.5, shape)
                g[rng.random(shape) < negative_fraction] *= -1
                new.append(g)
            elif name == "beta":
                new.append(rng.normal(0.0, 0.3, shape))
            elif name == "moving_mean":
                new.append(rng.normal(0.0, 1.0, shape))
            elif name == "moving_variance":
                new.append(rng.uniform(0.5, 2.0, shape))
            else:
                new.append(w.numpy())
        layer.set_weights([np.asarray(v, np.float32) for v in new])
    return model


def _global_pool(x: Any) -> Any:
    """larq-zoo's utils.global_pool: an AveragePooling2D over the whole map, flattened."""
    tf = _tf()
    size = x.shape[1:3]
    x = tf.keras.layers.AveragePooling2D(pool_size=tuple(size))(x)
    return tf.keras.layers.Flatten()(x)


def birealnet(input_shape: tuple[int, int, int] = (32, 32, 3), filters: int = 64,
              num_classes: int = 10) -> Any:
    """larq-zoo's BiRealNet (Bi-Real Net 18): a float 7x7/2 conv, BN, 3x3/2 max pool;
    16 residual blocks of one binary 3x3 conv (approx_sign inputs, magnitude-aware sign
    kernels) + BN added to a real shortcut (AvgPool 2/2 + float 1x1 conv + BN where the
    channels double); global pool, float Dense, softmax."""
    import larq as lq

    tf = _tf()
    init = "glorot_normal"

    def block(x: Any, out_filters: int) -> Any:
        in_filters = x.shape[-1]
        shortcut = x
        if in_filters != out_filters:
            shortcut = tf.keras.layers.AvgPool2D(2, strides=2, padding="same")(shortcut)
            shortcut = tf.keras.layers.Conv2D(out_filters, (1, 1), kernel_initializer=init,
                                              use_bias=False)(shortcut)
            shortcut = tf.keras.layers.BatchNormalization(momentum=0.8)(shortcut)
        x = lq.layers.QuantConv2D(out_filters, (3, 3),
                                  strides=1 if out_filters == in_filters else 2,
                                  padding="same", input_quantizer="approx_sign",
                                  kernel_quantizer="magnitude_aware_sign",
                                  kernel_constraint="weight_clip", kernel_initializer=init,
                                  use_bias=False)(x)
        x = tf.keras.layers.BatchNormalization(momentum=0.8)(x)
        return tf.keras.layers.add([x, shortcut])

    inp = tf.keras.layers.Input(shape=input_shape)
    out = tf.keras.layers.Conv2D(filters, (7, 7), strides=2, kernel_initializer=init,
                                 padding="same", use_bias=False)(inp)
    out = tf.keras.layers.BatchNormalization(momentum=0.8)(out)
    out = tf.keras.layers.MaxPool2D((3, 3), strides=2, padding="same")(out)
    out = block(out, filters)
    for _ in range(3):
        out = block(out, out.shape[-1])
    for _ in range(3):
        out = block(out, 2 * out.shape[-1])
        for _ in range(3):
            out = block(out, out.shape[-1])
    out = _global_pool(out)
    out = tf.keras.layers.Dense(num_classes)(out)
    out = tf.keras.layers.Activation("softmax", dtype="float32")(out)
    return tf.keras.Model(inputs=inp, outputs=out, name="birealnet18")


def binary_resnet_e18(input_shape: tuple[int, int, int] = (32, 32, 3), filters: int = 64,
                      num_classes: int = 10) -> Any:
    """larq-zoo's BinaryResNetE18: (small inputs) a float 3x3 conv; 4 stages of 4 blocks
    of a binary 3x3 conv (SteSign clip 1.25 on inputs and kernels) + BN added to a real
    shortcut (AvgPool 2/2 + float 1x1 conv + BN where the channels change); ReLU, global
    pool, float Dense, softmax."""
    import larq as lq

    tf = _tf()
    quant = lq.quantizers.SteSign(clip_value=1.25)

    def block(x: Any, out_filters: int, strides: int) -> Any:
        residual = x
        if x.shape[-1] != out_filters:
            residual = tf.keras.layers.AvgPool2D(pool_size=2, strides=2)(x)
            residual = tf.keras.layers.Conv2D(out_filters, kernel_size=1, use_bias=False,
                                              kernel_initializer="glorot_normal")(residual)
            residual = tf.keras.layers.BatchNormalization(momentum=0.9,
                                                          epsilon=1e-5)(residual)
        x = lq.layers.QuantConv2D(out_filters, kernel_size=3, strides=strides,
                                  padding="same", input_quantizer=quant,
                                  kernel_quantizer=quant,
                                  kernel_constraint=lq.constraints.WeightClip(1.25),
                                  kernel_initializer="glorot_normal", use_bias=False)(x)
        x = tf.keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5)(x)
        return tf.keras.layers.add([x, residual])

    inp = tf.keras.layers.Input(shape=input_shape)
    x = tf.keras.layers.Conv2D(filters, kernel_size=3, padding="same",
                               kernel_initializer="he_normal", use_bias=False)(inp)
    for stage, width in enumerate((filters, 2 * filters, 4 * filters, 8 * filters)):
        for layer in range(4):
            x = block(x, width, 1 if stage == 0 or layer != 0 else 2)
    x = tf.keras.layers.Activation("relu")(x)
    x = _global_pool(x)
    x = tf.keras.layers.Dense(num_classes, kernel_initializer="glorot_normal")(x)
    x = tf.keras.layers.Activation("softmax", dtype="float32")(x)
    return tf.keras.Model(inputs=inp, outputs=x, name="binary_resnet_e_18")


def binary_alexnet(input_shape: tuple[int, int, int] = (64, 64, 3), scale: int = 8,
                   num_classes: int = 10) -> Any:
    """larq-zoo's BinaryAlexNet, every width divided by ``scale``: all binary (the first
    conv's input is not quantized), conv -> max pool 3/2 -> BN(scale=False); the dense
    layers as 1x1 binary convs behind a Reshape; softmax."""
    import larq as lq

    tf = _tf()

    def conv(x: Any, features: int, kernel: int, strides: int = 1, pool: bool = False,
             first: bool = False) -> Any:
        x = lq.layers.QuantConv2D(features, kernel_size=kernel, strides=strides,
                                  padding="same",
                                  input_quantizer=None if first else "ste_sign",
                                  kernel_quantizer="ste_sign",
                                  kernel_constraint="weight_clip", use_bias=False)(x)
        if pool:
            x = tf.keras.layers.MaxPool2D(pool_size=3, strides=2)(x)
        return tf.keras.layers.BatchNormalization(scale=False, momentum=0.9)(x)

    def dense(x: Any, units: int) -> Any:
        x = lq.layers.QuantConv2D(units, kernel_size=1, input_quantizer="ste_sign",
                                  kernel_quantizer="ste_sign",
                                  kernel_constraint="weight_clip", use_bias=False)(x)
        return tf.keras.layers.BatchNormalization(scale=False, momentum=0.9)(x)

    inp = tf.keras.layers.Input(shape=input_shape)
    out = conv(inp, 64 // scale, 11, strides=4, pool=True, first=True)
    out = conv(out, 192 // scale, 5, pool=True)
    out = conv(out, 384 // scale, 3)
    out = conv(out, 384 // scale, 3)
    out = conv(out, 256 // scale, 3, pool=True)
    channels = out.shape[-1] * out.shape[-2] * out.shape[-3]
    out = tf.keras.layers.Reshape((1, 1, channels))(out)
    out = dense(out, 4096 // scale)
    out = dense(out, 4096 // scale)
    out = dense(out, num_classes)
    out = tf.keras.layers.Flatten()(out)
    out = tf.keras.layers.Activation("softmax", dtype="float32")(out)
    return tf.keras.models.Model(inputs=inp, outputs=out, name="binary_alexnet")


def binary_densenet28(input_shape: tuple[int, int, int] = (32, 32, 3), filters: int = 16,
                      growth_rate: int = 16, layers: tuple[int, ...] = (6, 6, 6, 5),
                      num_classes: int = 10) -> Any:
    """larq-zoo's BinaryDenseNet28 (small inputs): a float 3x3 conv; dense blocks whose
    layers are BN -> binary 3x3 conv (SteSign clip 1.3) concatenated to their input;
    between blocks BN, max pool 2/2, ReLU and a float 1x1 conv (reduction 2.7, 2.7, 2.2,
    rounded to a multiple of 32 there: of 8 here); BN, ReLU, global pool, float Dense,
    softmax."""
    import larq as lq

    tf = _tf()
    quant = lq.quantizers.SteSign(clip_value=1.3)
    reduction = (2.7, 2.7, 2.2)
    inp = tf.keras.layers.Input(shape=input_shape)
    x = tf.keras.layers.Conv2D(filters, kernel_size=3, padding="same",
                               kernel_initializer="he_normal", use_bias=False)(inp)
    for block, n in enumerate(layers):
        for _ in range(n):
            y = tf.keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5)(x)
            y = lq.layers.QuantConv2D(filters=growth_rate, kernel_size=3,
                                      input_quantizer=quant, kernel_quantizer=quant,
                                      kernel_initializer="glorot_normal",
                                      kernel_constraint=lq.constraints.WeightClip(1.3),
                                      padding="same", use_bias=False)(y)
            x = tf.keras.layers.concatenate([x, y])
        if block < len(layers) - 1:
            x = tf.keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5)(x)
            x = tf.keras.layers.MaxPooling2D(2, strides=2)(x)
            x = tf.keras.layers.Activation("relu")(x)
            width = max(8, round(x.shape[-1] // reduction[block] / 8) * 8)
            x = tf.keras.layers.Conv2D(width, kernel_size=1, kernel_initializer="he_normal",
                                       use_bias=False)(x)
    x = tf.keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5)(x)
    x = tf.keras.layers.Activation("relu")(x)
    x = _global_pool(x)
    x = tf.keras.layers.Dense(num_classes, kernel_initializer="he_normal")(x)
    x = tf.keras.layers.Activation("softmax", dtype="float32")(x)
    return tf.keras.Model(inputs=inp, outputs=x, name="binary_densenet28")


def lce_toy_model(input_shape: tuple[int, int, int] = (32, 32, 3)) -> Any:
    """Larq Compute Engine's end-to-end ``toy_model``: a float 3x3/2 conv, three residual
    blocks of a binary 3x3 conv (zero padding + ReLU, one padding + ReLU, one padding and
    no activation) + BN added to the block input, global average pool."""
    import larq as lq

    tf = _tf()

    def block(x: Any, pad_values: float, activation: str | None) -> Any:
        shortcut = x
        x = lq.layers.QuantConv2D(filters=32, kernel_size=3, padding="same",
                                  pad_values=pad_values, input_quantizer="ste_sign",
                                  kernel_quantizer="ste_sign", use_bias=False,
                                  activation=activation)(x)
        x = tf.keras.layers.BatchNormalization(momentum=0.7)(x)
        return tf.keras.layers.add([x, shortcut])

    inp = tf.keras.layers.Input(shape=input_shape)
    out = tf.keras.layers.Conv2D(filters=32, kernel_size=3, strides=2, padding="same")(inp)
    out = block(out, 0.0, "relu")
    out = block(out, 1.0, "relu")
    out = block(out, 1.0, None)
    out = tf.keras.layers.GlobalAvgPool2D()(out)
    return tf.keras.Model(inputs=inp, outputs=out, name="lce_toy_model")


def lce_toy_model_sequential(input_shape: tuple[int, int, int] = (32, 32, 3)) -> Any:
    """Larq Compute Engine's ``toy_model_sequential``: float conv, BN, max pool; binary
    convs with one padding and BNs of negative mean gamma; a (3, 2)/(1, 2) max pool;
    global average pool."""
    import larq as lq

    tf = _tf()
    neg = tf.keras.initializers.RandomNormal(mean=-0.1, seed=0)

    def bconv(strides: tuple[int, int] = (1, 1)) -> Any:
        return lq.layers.QuantConv2D(32, (3, 3), input_quantizer="ste_sign",
                                     kernel_quantizer="ste_sign", strides=strides,
                                     padding="same", pad_values=1.0, use_bias=False)

    return tf.keras.models.Sequential([
        tf.keras.layers.Input(input_shape),
        tf.keras.layers.Conv2D(16, (3, 3), strides=(2, 2), padding="same"),
        tf.keras.layers.BatchNormalization(momentum=0.7),
        tf.keras.layers.MaxPooling2D((2, 2)),
        bconv(),
        tf.keras.layers.BatchNormalization(momentum=0.7, gamma_initializer=neg),
        bconv((2, 2)),
        tf.keras.layers.BatchNormalization(momentum=0.7, gamma_initializer=neg),
        tf.keras.layers.MaxPooling2D((3, 2), strides=(1, 2)),
        bconv(),
        tf.keras.layers.BatchNormalization(momentum=0.7),
        tf.keras.layers.GlobalAvgPool2D(),
    ], name="lce_toy_model_sequential")


def hls4ml_binary_cnn(input_shape: tuple[int, int, int] = (28, 28, 1)) -> Any:
    """hls4ml's binary CNN test model (test/pytest/test_binary_cnn.py): QConv2D binary
    4/8/8 with QBatchNormalization and binary activations, two max pools, QDense binary 10
    + QBatchNormalization + binary_tanh, QDense binary 10 with softmax."""
    import tensorflow as tf
    from qkeras import QActivation, QBatchNormalization, QConv2D, QDense

    x_in = tf.keras.layers.Input(shape=input_shape)
    x = QConv2D(4, (3, 3), kernel_quantizer="binary", name="conv2d_1", use_bias=False)(x_in)
    x = QBatchNormalization()(x)
    x = QActivation("binary", name="act1")(x)
    x = QConv2D(8, (3, 3), kernel_quantizer="binary", name="conv2d_2", use_bias=False)(x)
    x = QBatchNormalization()(x)
    x = QActivation("binary", name="act2")(x)
    x = tf.keras.layers.MaxPooling2D(pool_size=(2, 2))(x)
    x = QConv2D(8, (3, 3), kernel_quantizer="binary", name="conv2d_3", use_bias=False)(x)
    x = QBatchNormalization()(x)
    x = QActivation("binary", name="act3")(x)
    x = tf.keras.layers.MaxPooling2D(pool_size=(2, 2))(x)
    x = tf.keras.layers.Flatten()(x)
    x = QDense(10, kernel_quantizer="binary", name="q_dense_6", use_bias=False)(x)
    x = QBatchNormalization()(x)
    x = QActivation("binary_tanh", name="act4")(x)
    x = QDense(10, kernel_quantizer="binary", activation="softmax", name="q_dense_7",
               use_bias=False)(x)
    return tf.keras.Model(inputs=x_in, outputs=x, name="hls4ml_binary_cnn")


# name -> (builder of a small instance, where it comes from)
ARCHITECTURES: dict[str, tuple[Callable[[], Any], str]] = {
    "birealnet": (lambda: birealnet(filters=8), "larq-zoo 2.4.0 literature.BiRealNet"),
    "binary_resnet_e18": (lambda: binary_resnet_e18(filters=8),
                          "larq-zoo 2.4.0 literature.BinaryResNetE18"),
    "binary_alexnet": (lambda: binary_alexnet(scale=8),
                       "larq-zoo 2.4.0 literature.BinaryAlexNet"),
    "binary_densenet28": (lambda: binary_densenet28(filters=8, growth_rate=8,
                                                    layers=(2, 2, 2, 2)),
                          "larq-zoo 2.4.0 literature.BinaryDenseNet28"),
    "lce_toy_model": (lce_toy_model, "Larq Compute Engine end2end_test.toy_model"),
    "lce_toy_model_sequential": (lce_toy_model_sequential,
                                 "Larq Compute Engine end2end_test.toy_model_sequential"),
    "hls4ml_binary_cnn": (hls4ml_binary_cnn, "hls4ml test/pytest/test_binary_cnn.py"),
}
