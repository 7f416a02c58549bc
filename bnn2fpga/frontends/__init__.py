"""Frontends: trained Keras models (QKeras, Larq) -> float-stage IR.  Models using
bnn2fpga.layers load (custom objects), but their layers are not converted yet."""

from bnn2fpga.frontends.keras import (
    FrontendError,
    UnsupportedError,
    load_model,
    model_to_graph,
)

__all__ = ["FrontendError", "UnsupportedError", "load_model", "model_to_graph"]
