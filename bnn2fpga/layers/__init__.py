"""bnn2fpga's own Keras training layers (tf.keras, Keras 2).

Class names, weight names and shapes, initial values, constructor arguments and forward
formulas are a public contract: other tools build models with exactly these.

- ``RSign()``: ``+1 if x + shift >= 0 else -1``; weight ``shift`` (C,), init 0.
- ``RPReLU()``: ``f(x + shift_in) + shift_out``, ``f(u) = u`` (u >= 0) else ``slope * u``;
  weights ``shift_in`` (0), ``slope`` (0.25, unconstrained), ``shift_out`` (0), each (C,).
- ``Thermometer(resolution=8)``: (H, W, C) in [0, 1] -> (H, W, C*L) bits ±1,
  ``L = round(255 / resolution)``; no weights.
- ``PGConv2D(filters, kernel_size, strides=1, padding="same", gate_init=-1.0)``: FracBNN's
  precision-gated binary convolution with its 2-bit input quantizer, no bias; weights
  ``kernel`` (kh, kw, C_in, filters) and ``threshold`` (filters,), init ``gate_init``.

Training: every sign and quantizer is a straight-through estimator (STE). RSign passes the
gradient where ``|x + shift| <= 1``; PGConv2D's bit planes pass it where ``|x| <= 1``, its
kernel sign passes it unchanged, and its gate is hard in the forward pass with the gradient
of FracBNN's sigmoid relaxation ``sigmoid(5 (msb - threshold))`` (an STE with a sigmoid
surrogate): the forward pass is the same in training and inference.

Every layer is registered for Keras serialisation (package ``bnn2fpga``), so
``tf.keras.models.load_model`` reads ``.h5`` and ``.keras`` files once this package is
imported, or with ``custom_objects=custom_objects()``. The compiler does not convert these
layers yet: its frontend refuses them as an unsupported layer class.
"""

from __future__ import annotations

from typing import Any

from bnn2fpga.layers.fracbnn import PGConv2D, Thermometer
from bnn2fpga.layers.residual import RPReLU, RSign

LAYERS = (RSign, RPReLU, Thermometer, PGConv2D)


def custom_objects() -> dict[str, Any]:
    """The layers by class name and by registered name (``bnn2fpga>RSign``, ...), for
    ``tf.keras.models.load_model(path, custom_objects=...)``."""
    objects: dict[str, Any] = {}
    for cls in LAYERS:
        objects[cls.__name__] = cls
        objects[f"bnn2fpga>{cls.__name__}"] = cls
    return objects


__all__ = ["LAYERS", "PGConv2D", "RPReLU", "RSign", "Thermometer", "custom_objects"]
