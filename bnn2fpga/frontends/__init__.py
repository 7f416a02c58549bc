"""Frontends: trained Keras models (QKeras, Larq, bnn2fpga.layers) -> float-stage IR."""

from bnn2fpga.frontends.keras import (
    FrontendError,
    UnsupportedError,
    load_model,
    model_to_graph,
)

__all__ = ["FrontendError", "UnsupportedError", "load_model", "model_to_graph"]
