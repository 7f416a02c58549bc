"""bnn2fpga."""
