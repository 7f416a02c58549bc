"""FracBNN's CIFAR-10 ResNet-20 (cornell-zhang/FracBNN ``model/fracbnn_cifar10.py``) as a
Keras model of ``bnn2fpga.layers``, with random weights (bench/fracbnn.py).

Thermometer (resolution 8: 96 bits) -> binary 3x3 conv 96 -> 16 -> BN -> 3 stages x 3
BasicBlocks at 16/32/64 channels (32x32, 16x16, 8x8); each BasicBlock twice
x = BN(RPReLU(BN(PGConv2D(x)))) + shortcut(x), 18 PG convs in all; the first conv of stages 2
and 3 has stride 2 and the shortcut AvgPool2D(2) + concat(x, x) -> global average pool ->
float Dense 64 -> 10.  281,088 binary weights (2,592 + 18 PG convs)."""

from __future__ import annotations

from typing import Any

import numpy as np

STAGES = (16, 32, 64)
BLOCKS = 3


def fracbnn_resnet20(seed: int = 0, calibration: np.ndarray | None = None,
                     density: float = 0.25) -> tuple[Any, dict[str, float]]:
    """The model, and the fraction of gates on per PG layer on ``calibration``.

    Random weights; with ``calibration`` (pixels / 255), while the model is built, every
    layer also runs on those frames, so each BatchNorm and PGConv2D is set from its actual
    input (``set_statistics``)."""
    import larq as lq
    import tensorflow as tf

    from bnn2fpga.layers import PGConv2D, RPReLU, Thermometer

    tf.keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    layers = tf.keras.layers
    gates: dict[str, float] = {}

    def apply(layer: Any, x: Any) -> Any:
        """``layer`` on the symbolic tensor(s) and on the calibration values."""
        sym, val = x
        out = layer(sym)
        if val is None:
            return out, None
        if isinstance(layer, RPReLU):   # random shifts and slopes (some negative)
            c = layer.slope.shape[0]
            layer.set_weights([rng.normal(0, 0.2, c), rng.uniform(-0.1, 0.4, c),
                               rng.normal(0, 0.2, c)])
        elif isinstance(layer, (layers.BatchNormalization, PGConv2D)):
            g = set_statistics(layer, val, rng, density)
            if g is not None:
                gates[layer.name] = g
        return out, np.asarray(layer(val, training=False))

    def pair(items: list) -> tuple:
        return [s for s, _ in items], (None if items[0][1] is None else [v for _, v in items])

    def unit(x: Any, channels: int, stride: int, name: str) -> Any:
        y = apply(PGConv2D(channels, 3, strides=stride, name=f"{name}_pg"), x)
        y = apply(layers.BatchNormalization(name=f"{name}_bn1"), y)
        y = apply(RPReLU(name=f"{name}_rprelu"), y)
        y = apply(layers.BatchNormalization(name=f"{name}_bn2"), y)
        if stride == 1:
            s = x
        else:
            p = apply(layers.AveragePooling2D(2, name=f"{name}_pool"), x)
            s = apply(layers.Concatenate(name=f"{name}_cat"), pair([p, p]))
        return apply(layers.Add(name=f"{name}_add"), pair([y, s]))

    inp = layers.Input((32, 32, 3), name="image")
    x = apply(Thermometer(resolution=8, name="thermo"), (inp, calibration))
    x = apply(lq.layers.QuantConv2D(STAGES[0], 3, padding="same", kernel_quantizer="ste_sign",
                                    kernel_constraint="weight_clip", use_bias=False,
                                    name="conv0"), x)
    x = apply(layers.BatchNormalization(name="conv0_bn"), x)
    for s, channels in enumerate(STAGES, 1):
        for b in range(1, BLOCKS + 1):
            stride = 2 if s > 1 and b == 1 else 1
            x = unit(x, channels, stride, f"s{s}b{b}a")
            x = unit(x, channels, 1, f"s{s}b{b}b")
    x = apply(layers.GlobalAveragePooling2D(name="gap"), x)
    out, _ = apply(layers.Dense(10, name="fc"), x)
    return tf.keras.Model(inp, out, name="fracbnn_resnet20"), gates


def binary_weights(model: Any) -> int:
    from bnn2fpga.layers import PGConv2D
    return sum(int(np.prod(layer.kernel.shape)) for layer in model.layers
               if isinstance(layer, PGConv2D) or layer.name == "conv0")


def random_pixels(n: int, seed: int = 1, shape: tuple[int, ...] = (32, 32, 3)) -> np.ndarray:
    """Random 8-bit pixel frames divided by 255 (float32 p / 255 * 255 is exactly p)."""
    p = np.random.default_rng(seed).integers(0, 256, (n, *shape)).astype(np.float32)
    return (p / np.float32(255)).astype(np.float32)


def msb_term(layer: Any, x: np.ndarray) -> np.ndarray:
    """(2/3) M of a PGConv2D on input ``x``, as the layer computes it for its gate."""
    import tensorflow as tf
    q = np.round((np.clip(x, -1, 1) + 1) * 1.5)
    m = np.where(q >= 2, 1.0, -1.0).astype(np.float32)
    w = np.where(layer.kernel.numpy() >= 0, 1.0, -1.0).astype(np.float32)
    s = tf.nn.conv2d(m, w, strides=layer.strides, padding=layer.padding.upper())
    return layer.msb_term(s).numpy()


def gate_threshold(values: np.ndarray, target: float) -> float:
    """A threshold t for which the fraction of ``values`` > t is nearest to ``target``
    (half-way between neighbouring distinct values, so float rounding cannot move it)."""
    u, counts = np.unique(values, return_counts=True)
    above = 1.0 - np.cumsum(counts) / values.size       # fraction > u[i]
    i = int(np.argmin(np.abs(above - target)))
    if abs(1.0 - target) < abs(above[i] - target):
        return float(u[0] - 1.0)
    return float((u[i] + u[i + 1]) / 2) if i + 1 < len(u) else float(u[i] + 1.0)


def set_statistics(layer: Any, x: np.ndarray, rng: np.random.Generator,
                   density: float) -> float | None:
    """Random but plausible statistics from the layer's input ``x``: a BatchNorm gets moving
    statistics near those of ``x`` (mean + N(0, 0.2) std, variance x U(0.5, 2)), gamma
    U(0.5, 1.5) with 20% negative, beta N(0, 0.3) (``architectures.randomize_batchnorm``'s
    distributions, scaled to the data so that the 2-bit quantizers see values inside
    [-1, 1], not only saturated ones); a PGConv2D gets per-channel gate thresholds for a
    fraction ``density`` of its gates on ``x`` (returned: the fraction reached)."""
    from bnn2fpga.layers import PGConv2D

    if isinstance(layer, PGConv2D):
        a = msb_term(layer, x).reshape(-1, layer.filters)
        t = np.array([gate_threshold(a[:, c], density) for c in range(layer.filters)])
        layer.threshold.assign(t.astype(np.float32))
        return float(np.mean(a > t))
    v = x.reshape(-1, x.shape[-1])
    mean, var = v.mean(0), v.var(0) + 1e-3
    c = mean.size
    gamma = rng.uniform(0.5, 1.5, c)
    gamma[rng.random(c) < 0.2] *= -1
    layer.set_weights([np.asarray(a, np.float32) for a in (
        gamma, rng.normal(0, 0.3, c), mean + rng.normal(0, 0.2, c) * np.sqrt(var),
        var * rng.uniform(0.5, 2.0, c))])
    return None
