"""Small trained BNNs on scikit-learn's bundled digits (8x8, no download): for the demo, the
tests and the benchmarks.  Seeded, seconds to train on a CPU.

Pixels are 0..16; the models see x = pixel / 16, exactly 5-bit unsigned fixed point with
scale 1/16 (``DIGITS_INPUT_SCALE``, ``DIGITS_INPUT_BITS``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np

DIGITS_INPUT_SCALE = 1.0 / 16.0
DIGITS_INPUT_BITS = 5


@dataclass(frozen=True)
class Digits:
    x_train: np.ndarray  # (N, 8, 8, 1) float32 in [0, 1]
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def digits_data(seed: int = 0, test_fraction: float = 0.25) -> Digits:
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.images.astype(np.float32) / np.float32(16.0))[..., None]
    y = d.target.astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(y))
    n_test = int(len(y) * test_fraction)
    test, train = order[:n_test], order[n_test:]
    return Digits(x[train], y[train], x[test], y[test])


def _seed_everything(seed: int) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    tf.keras.utils.set_random_seed(seed)
    try:
        tf.config.experimental.enable_op_determinism()
    except Exception:  # noqa: BLE001 - older TF: determinism is best effort
        pass


def _fit(model: Any, data: Digits, epochs: int, flat: bool, from_logits: bool = True
         ) -> None:
    """Adam(0.01) on sparse cross-entropy, batches of 64 (``from_logits=False``: a model
    that ends in softmax)."""
    import tensorflow as tf

    x = data.x_train.reshape(len(data.x_train), -1) if flat else data.x_train
    model.compile(optimizer=tf.keras.optimizers.Adam(0.01),
                  loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=from_logits),
                  metrics=["accuracy"])
    model.fit(x, data.y_train, epochs=epochs, batch_size=64, verbose=0, shuffle=True)


def train_qkeras_mlp(seed: int = 0, data: Digits | None = None, epochs: int = 25) -> Any:
    """QKeras MLP: 5-bit input quantizer -> 64 -> 32 -> 10 binary dense layers, BN + binary
    activations, a final BatchNorm on the class scores.  Takes flat (N, 64) inputs."""
    _seed_everything(seed)
    import tensorflow as tf
    from qkeras import QActivation, QDense, binary, quantized_bits

    data = data or digits_data()
    layers = tf.keras.layers
    model = tf.keras.Sequential([
        layers.InputLayer(input_shape=(64,)),
        QActivation(quantized_bits(DIGITS_INPUT_BITS, 1, keep_negative=False), name="in_q"),
        QDense(64, kernel_quantizer=binary(), use_bias=False, name="fc1"),
        layers.BatchNormalization(name="bn1"),
        QActivation(binary(), name="act1"),
        QDense(32, kernel_quantizer=binary(), use_bias=False, name="fc2"),
        layers.BatchNormalization(name="bn2"),
        QActivation(binary(), name="act2"),
        QDense(10, kernel_quantizer=binary(), use_bias=False, name="fc3"),
        layers.BatchNormalization(name="bn3"),
    ], name="qkeras_mlp")
    _fit(model, data, epochs, flat=True)
    return model


def train_qkeras_cnn(seed: int = 0, data: Digits | None = None, epochs: int = 15) -> Any:
    """QKeras CNN: 5-bit input quantizer, binary convolutions, an average pool of binary
    activations ('same', 3x3 stride 2: border windows count fewer positions) followed by a
    binary activation, then a binary dense layer with a final BatchNorm."""
    _seed_everything(seed)
    import tensorflow as tf
    from qkeras import QActivation, QConv2D, QDense, binary, quantized_bits

    data = data or digits_data()
    layers = tf.keras.layers
    model = tf.keras.Sequential([
        layers.InputLayer(input_shape=(8, 8, 1)),
        QActivation(quantized_bits(DIGITS_INPUT_BITS, 1, keep_negative=False), name="in_q"),
        QConv2D(16, 3, padding="same", kernel_quantizer=binary(), use_bias=False,
                name="conv1"),
        layers.BatchNormalization(name="bn1"),
        QActivation(binary(), name="act1"),
        layers.AveragePooling2D(3, strides=2, padding="same", name="avg"),
        QActivation(binary(), name="act_avg"),
        QConv2D(24, 3, padding="valid", kernel_quantizer=binary(),
                use_bias=False, name="conv2"),
        layers.BatchNormalization(name="bn2"),
        QActivation(binary(), name="act2"),
        layers.Flatten(name="flatten"),
        QDense(10, kernel_quantizer=binary(), use_bias=False, name="fc"),
        layers.BatchNormalization(name="bn_out"),
    ], name="qkeras_cnn")
    _fit(model, data, epochs, flat=False)
    return model


def train_qkeras_w1a2(seed: int = 0, data: Digits | None = None, epochs: int = 15,
                      negate: bool = True) -> Any:
    """QKeras W1A2 CNN (FINN's W1A2): 5-bit input, binary-weight convolutions whose
    activations are 2-bit ``quantized_relu`` (BatchNorm, then the quantizer), the second
    convolution reading those 2-bit codes, a binary dense layer with a final BatchNorm.
    ``negate``: after training, two channels of bn1 get negative gamma (decreasing
    quantizer channels, folded by negating their weights)."""
    _seed_everything(seed)
    import tensorflow as tf
    from qkeras import QActivation, QConv2D, QDense, binary, quantized_bits, quantized_relu

    data = data or digits_data()
    layers = tf.keras.layers
    model = tf.keras.Sequential([
        layers.InputLayer(input_shape=(8, 8, 1)),
        QActivation(quantized_bits(DIGITS_INPUT_BITS, 1, keep_negative=False), name="in_q"),
        QConv2D(16, 3, padding="same", kernel_quantizer=binary(), use_bias=False,
                name="conv1"),
        layers.BatchNormalization(name="bn1"),
        QActivation(quantized_relu(2, 1), name="act1"),
        QConv2D(24, 3, strides=2, padding="same", kernel_quantizer=binary(), use_bias=False,
                name="conv2"),
        layers.BatchNormalization(name="bn2"),
        QActivation(quantized_relu(2, 1), name="act2"),
        layers.Flatten(name="flatten"),
        QDense(10, kernel_quantizer=binary(), use_bias=False, name="fc"),
        layers.BatchNormalization(name="bn_out"),
    ], name="qkeras_w1a2")
    _fit(model, data, epochs, flat=False)
    if negate:
        bn = model.get_layer("bn1")
        gamma, beta, mean, var = (w.numpy() for w in bn.weights)
        gamma[[1, 6]] *= -1.0
        bn.set_weights([gamma, beta, mean, var])
    return model


def train_qkeras_quantized(seed: int = 0, data: Digits | None = None, epochs: int = 15
                           ) -> Any:
    """QKeras CNN in which every real tensor is quantized: 5-bit input, a first convolution
    with 4-bit ``quantized_bits`` kernels, 2-bit ``quantized_relu`` activations, a binary
    convolution reading them (W1A2), and a last dense layer with 4-bit kernels."""
    _seed_everything(seed)
    import tensorflow as tf
    from qkeras import QActivation, QConv2D, QDense, binary, quantized_bits, quantized_relu

    data = data or digits_data()
    layers = tf.keras.layers
    model = tf.keras.Sequential([
        layers.InputLayer(input_shape=(8, 8, 1)),
        QActivation(quantized_bits(DIGITS_INPUT_BITS, 1, keep_negative=False), name="in_q"),
        QConv2D(16, 3, padding="same", kernel_quantizer=quantized_bits(4, 0, alpha=1),
                use_bias=False, name="conv1"),
        layers.BatchNormalization(name="bn1"),
        QActivation(quantized_relu(2, 1), name="act1"),
        QConv2D(24, 3, strides=2, padding="same", kernel_quantizer=binary(), use_bias=False,
                name="conv2"),
        layers.BatchNormalization(name="bn2"),
        QActivation(quantized_relu(3, 1), name="act2"),
        layers.Flatten(name="flatten"),
        QDense(10, kernel_quantizer=quantized_bits(4, 0, alpha=1),
               bias_quantizer=quantized_bits(8, 3, alpha=1), name="fc"),
    ], name="qkeras_quantized")
    _fit(model, data, epochs, flat=False)
    return model


def train_qkeras_residual(seed: int = 0, data: Digits | None = None, epochs: int = 15,
                          head: str = "flatten") -> Any:
    """A QKeras ResNet in which every real tensor is quantized (issue 12): 5-bit input, a
    first convolution with 4-bit ``quantized_bits`` kernels + QBatchNormalization + a
    4-bit signed ``quantized_bits`` residual stream s0; two residual blocks
    s' = q(s + q(QBN(QConv2D_binary(a(s))))) whose branch reads the stream binarised
    (block 1: ``binary``) or as 2-bit ``quantized_relu`` codes (block 2: W1A2), and whose
    sum is requantized by ``quantized_bits``; a 3-bit ``quantized_relu`` of the stream,
    Flatten (``head="gap"``: GlobalAveragePooling2D and a 4-bit ``quantized_relu``), a last
    dense layer with 4-bit kernels and a quantized bias, softmax."""
    _seed_everything(seed)
    import tensorflow as tf
    from qkeras import (
        QActivation,
        QBatchNormalization,
        QConv2D,
        QDense,
        binary,
        quantized_bits,
        quantized_relu,
    )

    data = data or digits_data()
    layers = tf.keras.layers

    def stream(name: str) -> Any:
        return QActivation(quantized_bits(4, 2, alpha=1), name=name)

    def block(s: Any, binarise: Any, name: str) -> Any:
        y = QActivation(binarise, name=f"{name}_in")(s)
        y = QConv2D(16, 3, padding="same", kernel_quantizer=binary(), use_bias=False,
                    name=f"{name}_conv")(y)
        y = QBatchNormalization(name=f"{name}_bn")(y)
        y = QActivation(quantized_bits(4, 2, alpha=1), name=f"{name}_q")(y)
        return stream(f"{name}_s")(layers.Add(name=f"{name}_add")([s, y]))

    inp = layers.Input((8, 8, 1), name="image")
    x = QActivation(quantized_bits(DIGITS_INPUT_BITS, 1, keep_negative=False),
                    name="in_q")(inp)
    x = QConv2D(16, 3, padding="same", kernel_quantizer=quantized_bits(4, 0, alpha=1),
                use_bias=False, name="conv0")(x)
    x = QBatchNormalization(name="bn0")(x)
    x = stream("s0")(x)
    x = block(x, binary(), "b1")
    x = block(x, quantized_relu(2, 1), "b2")
    x = QActivation(quantized_relu(3, 2), name="head_q")(x)
    if head == "gap":
        x = layers.GlobalAveragePooling2D(name="gap")(x)
        x = QActivation(quantized_relu(4, 2), name="gap_q")(x)
    elif head == "flatten":
        x = layers.Flatten(name="flatten")(x)
    else:
        raise ValueError(f"head={head!r}: expected 'flatten' or 'gap'")
    x = QDense(10, kernel_quantizer=quantized_bits(4, 0, alpha=1),
               bias_quantizer=quantized_bits(8, 3, alpha=1), name="fc")(x)
    out = layers.Activation("softmax", name="softmax")(x)
    model = tf.keras.Model(inp, out, name="qkeras_residual")
    _fit(model, data, epochs, flat=False, from_logits=False)
    return model


def train_larq_cnn(seed: int = 0, data: Digits | None = None, epochs: int = 25) -> Any:
    """Larq CNN exercising the hard cases: odd channel counts, 'same' padding with
    pad_values 0 and 1, stride 2, a max-pool before BatchNorm, and (set after training)
    negative and zero BatchNorm scales.  Real-valued input: compile with
    --input-scale 0.0625 --input-bits 5."""
    _seed_everything(seed)
    import larq as lq
    import tensorflow as tf

    data = data or digits_data()
    layers = tf.keras.layers
    sign = {"input_quantizer": "ste_sign", "kernel_quantizer": "ste_sign",
            "kernel_constraint": "weight_clip", "use_bias": False}
    model = tf.keras.Sequential([
        layers.InputLayer(input_shape=(8, 8, 1)),
        lq.layers.QuantConv2D(15, 3, padding="same", kernel_quantizer="ste_sign",
                              kernel_constraint="weight_clip", use_bias=False, name="conv1"),
        layers.MaxPooling2D(2, name="pool1"),
        layers.BatchNormalization(name="bn1"),
        lq.layers.QuantConv2D(21, 3, strides=2, padding="same", pad_values=1.0, **sign,
                              name="conv2"),
        layers.BatchNormalization(name="bn2"),
        lq.layers.QuantConv2D(13, 3, padding="same", pad_values=0.0, **sign, name="conv3"),
        layers.BatchNormalization(name="bn3"),
        layers.Flatten(name="flatten"),
        lq.layers.QuantDense(10, **sign, name="fc"),
        layers.BatchNormalization(name="bn_out"),
    ], name="larq_cnn")
    _fit(model, data, epochs, flat=False)
    make_negative_and_zero_scales(model, "bn1", "conv2", negate=(0, 3, 7), zero=(5,))
    make_negative_and_zero_scales(model, "bn2", "conv3", negate=(1, 2), zero=(4,))
    return model


def make_negative_and_zero_scales(model: Any, bn_name: str, next_name: str,
                                  negate: tuple[int, ...], zero: tuple[int, ...]) -> None:
    """Give some channels of a trained BatchNorm a negative or a zero scale.

    Negating gamma and beta negates the channel's BN output, which flips its sign bit; the
    next layer's kernel slice for that input channel is negated too, so the network computes
    (almost) the same function while the compiler must handle the flipped channels.  A zero
    gamma makes the channel a constant sign(beta)."""
    bn = model.get_layer(bn_name)
    gamma, beta, mean, var = (w.copy() for w in bn.get_weights())
    nxt = model.get_layer(next_name)
    kernel = nxt.get_weights()[0].copy()
    for c in negate:
        gamma[c], beta[c] = -gamma[c], -beta[c]
        kernel[..., c, :] = -kernel[..., c, :]
    for c in zero:
        gamma[c] = 0.0
    bn.set_weights([gamma, beta, mean, var])
    nxt.set_weights([kernel, *nxt.get_weights()[1:]])


def keras_accuracy(model: Any, x: np.ndarray, y: np.ndarray) -> float:
    logits = model.predict(x.reshape((len(x),) + tuple(model.input_shape[1:])), verbose=0)
    return float(np.mean(np.argmax(logits, axis=-1) == y))


def train_larq_dorefa(seed: int = 0, data: Digits | None = None, epochs: int = 15,
                      k_bit: int = 2, negate: bool = True, float_first: bool = False) -> Any:
    """Larq CNN with DoReFa k-bit activations into binary weights (larq-zoo's DoReFaNet
    form, W1Ak): every QuantConv2D reads ``DoReFa(k_bit, mode="activations")`` codes (the
    first one quantizes the model input x = pixel / 16 to k bits), BatchNorm before each
    quantizer, a binary dense layer (``ste_sign`` input) and a final BatchNorm.
    ``negate``: after training, two channels of bn1 get a negative gamma (decreasing
    quantizer channels, folded by negating their weights).  ``float_first``: conv1 is a
    float Conv2D, so the first DoReFa quantizes a real-valued tensor (compile with
    --calibration and --input-scale 0.0625 --input-bits 5)."""
    _seed_everything(seed)
    import larq as lq
    import tensorflow as tf

    data = data or digits_data()
    layers = tf.keras.layers

    def conv(filters: int, name: str, strides: int = 1) -> Any:
        return lq.layers.QuantConv2D(
            filters, 3, strides=strides, padding="same",
            input_quantizer=lq.quantizers.DoReFa(k_bit=k_bit, mode="activations"),
            kernel_quantizer="ste_sign", kernel_constraint="weight_clip", use_bias=False,
            name=name)

    model = tf.keras.Sequential([
        layers.InputLayer(input_shape=(8, 8, 1)),
        layers.Conv2D(16, 3, padding="same", use_bias=False, name="conv1") if float_first
        else conv(16, "conv1"),
        layers.BatchNormalization(name="bn1"),
        conv(24, "conv2", strides=2),
        layers.BatchNormalization(name="bn2"),
        conv(24, "conv3"),
        layers.BatchNormalization(name="bn3"),
        layers.Flatten(name="flatten"),
        lq.layers.QuantDense(10, input_quantizer="ste_sign", kernel_quantizer="ste_sign",
                             kernel_constraint="weight_clip", use_bias=False, name="fc"),
        layers.BatchNormalization(name="bn_out"),
    ], name=f"larq_dorefa_a{k_bit}")
    _fit(model, data, epochs, flat=False)
    if negate:
        bn = model.get_layer("bn1")
        gamma, beta, mean, var = (w.copy() for w in bn.get_weights())
        gamma[[2, 9]] *= -1.0
        bn.set_weights([gamma, beta, mean, var])
    return model


def train_larq_resnet(seed: int = 0, data: Digits | None = None, epochs: int = 12) -> Any:
    """A Bi-Real/ReActNet-style residual BNN (Larq + bnn2fpga.layers) with real-valued
    shortcuts: a float first conv + BN; binary 3x3 convs whose BN output is added to the
    real stream; a stride-2 block whose shortcut is AvgPool2D + concat(x, x) and one whose
    shortcut is a float 1x1 conv + BN; RSign before every binary conv; RPReLU and PReLU
    (some slopes negative, set at initialisation); GlobalAveragePooling2D, a float Dense
    and a softmax.  Compile with --input-scale 0.0625 --input-bits 5 --calibration."""
    _seed_everything(seed)
    import larq as lq
    import tensorflow as tf

    from bnn2fpga.layers import RPReLU, RSign

    data = data or digits_data()
    layers = tf.keras.layers
    binary = {"kernel_quantizer": "ste_sign", "kernel_constraint": "weight_clip",
              "use_bias": False, "padding": "same"}

    def main_path(x: Any, channels: int, stride: int, name: str) -> Any:
        y = RSign(name=f"{name}_rsign")(x)
        y = lq.layers.QuantConv2D(channels, 3, strides=stride, name=f"{name}_conv",
                                  **binary)(y)
        return layers.BatchNormalization(name=f"{name}_bn")(y)

    def mixed_slopes(channels: int) -> Any:
        return tf.keras.initializers.Constant(
            [0.25 if c % 3 else -0.25 for c in range(channels)])

    inp = layers.Input((8, 8, 1), name="image")
    x = layers.Conv2D(16, 3, padding="same", use_bias=False, name="stem")(inp)
    x = layers.BatchNormalization(name="stem_bn")(x)
    # block 1: identity shortcut, RPReLU
    x = layers.Add(name="b1_add")([x, main_path(x, 16, 1, "b1")])
    x = RPReLU(name="b1_rprelu")(x)
    # block 2: stride 2, shortcut AvgPool2D + concat(x, x), PReLU with negative slopes
    p = layers.AveragePooling2D(2, name="b2_pool")(x)
    s = layers.Concatenate(name="b2_cat")([p, p])
    x = layers.Add(name="b2_add")([s, main_path(x, 32, 2, "b2")])
    x = layers.PReLU(shared_axes=[1, 2], alpha_initializer=mixed_slopes(32),
                     name="b2_prelu")(x)
    # block 3: stride 2, shortcut a float 1x1 conv + BN, RPReLU
    s = layers.Conv2D(32, 1, strides=2, use_bias=True, name="b3_short")(x)
    s = layers.BatchNormalization(name="b3_short_bn")(s)
    x = layers.Add(name="b3_add")([s, main_path(x, 32, 2, "b3")])
    x = RPReLU(name="b3_rprelu")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    x = layers.Dense(10, name="fc")(x)
    out = layers.Activation("softmax", name="softmax")(x)
    model = tf.keras.Model(inp, out, name="larq_resnet")
    for layer in model.layers:  # RPReLU slopes: some negative from the start
        if isinstance(layer, RPReLU):
            c = layer.slope.shape[0]
            layer.slope.assign([0.25 if i % 4 else -0.2 for i in range(c)])
    _fit(model, data, epochs, flat=False, from_logits=False)
    return model


def digits_pixels(seed: int = 0, test_fraction: float = 0.25) -> Digits:
    """The digits as 8-bit pixels p = round(v * 255 / 16) (v in 0..16) divided by 255, the
    input of FracBNN's Thermometer (float32 p / 255 times 255 is exactly p)."""
    d = digits_data(seed, test_fraction)

    def pixels(x: np.ndarray) -> np.ndarray:
        p = np.rint(x.astype(np.float64) * 255.0).astype(np.float32)
        return (p / np.float32(255)).astype(np.float32)

    return Digits(pixels(d.x_train), d.y_train, pixels(d.x_test), d.y_test)


def train_fracbnn_chain(seed: int = 0, data: Digits | None = None, epochs: int = 6) -> Any:
    """FracBNN's chain (issue 13): Thermometer -> binary conv -> BN -> PGConv2D -> BN ->
    PGConv2D (stride 2) -> BN -> binary dense -> BN.  Every tensor between the layers is
    quantized (thermometer bits, 2-bit codes, signs), so the design equals Keras exactly.
    Input: pixels / 255 (``digits_pixels``); no input flags needed."""
    _seed_everything(seed)
    import larq as lq
    import tensorflow as tf

    from bnn2fpga.layers import PGConv2D, Thermometer

    data = data or digits_pixels()
    layers = tf.keras.layers
    model = tf.keras.Sequential([
        layers.InputLayer(input_shape=(8, 8, 1)),
        Thermometer(resolution=16, name="thermo"),              # 16 levels
        lq.layers.QuantConv2D(12, 3, padding="same", kernel_quantizer="ste_sign",
                              kernel_constraint="weight_clip", use_bias=False, name="conv1"),
        layers.BatchNormalization(name="bn1"),
        PGConv2D(16, 3, gate_init=3.0, name="pg1"),
        layers.BatchNormalization(name="bn2"),
        PGConv2D(15, 3, strides=2, gate_init=2.0, name="pg2"),
        layers.BatchNormalization(name="bn3"),
        layers.Flatten(name="flatten"),
        lq.layers.QuantDense(10, input_quantizer="ste_sign", kernel_quantizer="ste_sign",
                             kernel_constraint="weight_clip", use_bias=False, name="fc"),
        layers.BatchNormalization(name="bn_out"),
    ], name="fracbnn_chain")
    _fit(model, data, epochs, flat=False)
    return model


def train_fracbnn_resnet(seed: int = 0, data: Digits | None = None, epochs: int = 15) -> Any:
    """FracBNN's residual blocks (issue 13) on digits: Thermometer -> binary conv -> BN, then
    two blocks x = BN(RPReLU(BN(PGConv2D(x)))) + shortcut(x), the second with stride 2 and
    the shortcut AvgPool2D + concat(x, x); GlobalAveragePooling2D and a float Dense.  The
    residual stream is real-valued: compile with --calibration (pixels / 255)."""
    _seed_everything(seed)
    import larq as lq
    import tensorflow as tf

    from bnn2fpga.layers import PGConv2D, RPReLU, Thermometer

    data = data or digits_pixels()
    layers = tf.keras.layers

    def branch(x: Any, channels: int, stride: int, name: str) -> Any:
        y = PGConv2D(channels, 3, strides=stride, gate_init=1.0, name=f"{name}_pg")(x)
        y = layers.BatchNormalization(name=f"{name}_bn1")(y)
        y = RPReLU(name=f"{name}_rprelu")(y)
        return layers.BatchNormalization(name=f"{name}_bn2")(y)

    inp = layers.Input((8, 8, 1), name="image")
    x = Thermometer(resolution=16, name="thermo")(inp)
    x = lq.layers.QuantConv2D(16, 3, padding="same", kernel_quantizer="ste_sign",
                              kernel_constraint="weight_clip", use_bias=False,
                              name="stem")(x)
    x = layers.BatchNormalization(name="stem_bn")(x)
    x = layers.Add(name="b1_add")([branch(x, 16, 1, "b1"), x])
    p = layers.AveragePooling2D(2, name="b2_pool")(x)
    s = layers.Concatenate(name="b2_cat")([p, p])
    x = layers.Add(name="b2_add")([branch(x, 32, 2, "b2"), s])
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    out = layers.Dense(10, name="fc")(x)
    model = tf.keras.Model(inp, out, name="fracbnn_resnet")
    _fit(model, data, epochs, flat=False)
    return model
