"""bnn2fpga: compile trained binarized neural networks to bit-exact FPGA accelerators."""

__version__ = "0.1.0"
